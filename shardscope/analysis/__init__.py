"""Comparison science over the store: statistics, trajectories, shard influence, clusters,
reports. Used by `shardscope compare`/`ablate` and the app's Compare and Shards pages."""
