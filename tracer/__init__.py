"""Tracing core: OpenTelemetry setup, attribute names, the span pipeline, the DuckDB store,
its schema and its query functions, and the OTLP collector.

Import the module you need (``shardscope.tracer.attributes``, ``shardscope.tracer.store``,
...): this package imports nothing, so reading attribute names never loads DuckDB.
"""
