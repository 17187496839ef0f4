"""Secret redaction, always on: nothing that looks like a credential reaches a span.

Two nets: the values of environment variables whose names say they are secrets
(``*_API_KEY``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``), and well-known key shapes
(``sk-...``, ``sk-ant-...``, ``Bearer ...``, AWS access key ids).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_KEY_SHAPES = (
    r"sk-ant-[A-Za-z0-9_\-]{16,}",
    r"sk-(?:proj-)?[A-Za-z0-9_\-]{16,}",
    r"(?<=Bearer )[A-Za-z0-9_\-\.=]{16,}",
    r"AKIA[0-9A-Z]{16}",
)
_MIN_SECRET_LENGTH = 8


@lru_cache(maxsize=8)
def _pattern(secret_values: frozenset[str]) -> re.Pattern[str]:
    literals = sorted((re.escape(v) for v in secret_values), key=len, reverse=True)
    return re.compile("|".join([*literals, *_KEY_SHAPES]))


def secret_values(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Values of environment variables whose names mark them as secrets."""
    env = os.environ if environ is None else environ
    return frozenset(
        v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LENGTH
    )


class Redactor:
    """Redacts secrets from strings and attribute values; built from one environment snapshot."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.refresh(environ)

    def refresh(self, environ: Mapping[str, str] | None = None) -> None:
        """Re-read the environment (call after setting a new key)."""
        self._pattern = _pattern(secret_values(environ))

    def text(self, text: str) -> str:
        if len(text) < _MIN_SECRET_LENGTH:
            return text
        return self._pattern.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """Redact strings inside an attribute value (str, sequences, mappings)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value
