"""The bodies of the `shardscope` commands: typed options in, exit code out (the top floor)."""
