"""Parsing the options the matrix commands share: lists, ``key=value`` pairs, parameters."""

from __future__ import annotations

from collections.abc import Sequence

from shardscope.config.errors import ConfigError


def split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Options may be repeated or comma-separated: ``-m a,b -m c`` is (a, b, c)."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)


def parse_assignments(values: Sequence[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> {"a": "1", "b": "2"}; anything else is a ConfigError naming ``what``."""
    parsed: dict[str, str] = {}
    for value in values or ():
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} must look like key=value, got {value!r}")
        parsed[key.strip()] = val.strip()
    return parsed


def scaffold_params(values: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """``--param react-tools.max_steps=4`` -> {"react-tools": {"max_steps": "4"}}."""
    params: dict[str, dict[str, str]] = {}
    for key, value in parse_assignments(values, "--param").items():
        scaffold, dot, name = key.partition(".")
        if not dot or not name:
            raise ConfigError(f"--param must look like scaffold.parameter=value, got {key}={value}")
        params.setdefault(scaffold, {})[name] = value
    return params


def whole_number(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what} values must be whole numbers, got {value!r}") from None
