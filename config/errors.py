"""The exception hierarchy. Every error a user can cause is one of these, with a message
that says what to do; the CLI prints the message on one line instead of a traceback."""

from __future__ import annotations


class ShardscopeError(Exception):
    """Base class for errors whose message is meant for the user."""


class ConfigError(ShardscopeError):
    """A settings value, config file, catalog or suite file is wrong."""


class StoreError(ShardscopeError):
    """The DuckDB store cannot be opened, read or written."""


class StoreNotFoundError(StoreError):
    """No store exists at the given path."""


class StoreVersionError(StoreError):
    """The store was written by a newer schema version than this shardscope knows."""


class StoreBusyError(StoreError):
    """The store stayed locked by another writer for longer than the timeout."""


class QueryError(StoreError):
    """A user's SQL failed (syntax, unknown column, not read-only, ...)."""
