"""Errors of task suites: a malformed suite file, an unknown suite, a bad ablation."""

from __future__ import annotations

from shardscope.config.errors import ConfigError


class SuiteError(ConfigError):
    """A suite file is malformed. The message names the file, the task and the field."""


class UnknownSuiteError(ConfigError):
    """No suite has the requested name; the message lists the known ones."""


class AblationError(ConfigError):
    """An ablation names a shard the task does not have, or an unknown mode."""


class UnknownTaskError(ConfigError):
    """A suite has no task with the requested id."""


class BenchmarkDataError(ConfigError):
    """A benchmark's data cannot be read or converted (package missing, bad line, bad type)."""
