"""`python -m shardscope` runs the CLI."""

from shardscope.cli import main

main()
