"""Secret redaction, always on: nothing that looks like a credential reaches a span.

Two nets: the values of environment variables whose names say they are secrets
(``*_API_KEY``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``), and well-known key shapes
(``sk-...``, ``sk-ant-...``, ``Bearer ...``, AWS, GitHub, Google, Slack, Hugging Face keys).
Both match case-insensitively (a model that echoes ``Sk-Audit-...`` is still caught), and a
token stream is redacted as the text it spells (:meth:`Redactor.tokens`), so a key streamed
a few characters per token does not slip through token by token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_KEY_SHAPES = (
    r"sk-ant-[A-Za-z0-9_\-]{16,}",
    r"sk-(?:proj-)?[A-Za-z0-9_\-]{16,}",
    r"(?<=Bearer )[A-Za-z0-9_\-\.=]{16,}",
    r"AKIA[0-9A-Z]{16}",
    r"gh[pousr]_[A-Za-z0-9]{30,}",
    r"github_pat_[A-Za-z0-9_]{30,}",
    r"AIza[0-9A-Za-z_\-]{35}",
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",
    r"hf_[A-Za-z0-9]{30,}",
)
_MIN_SECRET_LENGTH = 8


@lru_cache(maxsize=8)
def _pattern(secret_values: frozenset[str]) -> re.Pattern[str]:
    literals = sorted((re.escape(v) for v in secret_values), key=len, reverse=True)
    return re.compile("|".join([*literals, *_KEY_SHAPES]), re.IGNORECASE)


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

    def tokens(self, texts: Sequence[str]) -> list[str]:
        """Redact a token stream as the text it spells: a secret spread over several tokens
        becomes ``[REDACTED]`` in the first of them and is cut from the rest, so the stream
        still has one entry per token and joins to the redacted text."""
        joined = "".join(texts)
        matches = [m.span() for m in self._pattern.finditer(joined)]
        if not matches:
            return [self.text(t) for t in texts]
        out: list[str] = []
        start = 0
        for text in texts:
            end = start + len(text)
            out.append(_cut(text, start, end, matches))
            start = end
        return out

    def streams(self, names: Sequence[str], records: Sequence[dict[str, Any]]) -> set[int]:
        """Redact, in place, each stream in a span's events: the values of one string
        attribute across the events of one name, in order, redacted as the text they spell
        together (:meth:`tokens`), so a key sent one token per event is caught. Returns the
        indexes of the records changed."""
        streams: dict[tuple[str, str], list[int]] = {}
        for index, (name, record) in enumerate(zip(names, records, strict=True)):
            for key, value in record.items():
                if isinstance(value, str):
                    streams.setdefault((name, key), []).append(index)
        changed: set[int] = set()
        for (_, key), indexes in streams.items():
            if len(indexes) < 2:
                continue
            texts = [records[i][key] for i in indexes]
            for i, old, new in zip(indexes, texts, self.tokens(texts), strict=True):
                if new != old:
                    records[i][key] = new
                    changed.add(i)
        return changed

    def value(self, value: Any) -> Any:
        """Redact strings inside an attribute value (str, sequences, mappings)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value


def _cut(text: str, start: int, end: int, matches: list[tuple[int, int]]) -> str:
    """``text`` (which spans ``start:end`` of the stream) without the parts inside a match;
    the token where a match begins gets the marker."""
    pieces: list[str] = []
    at = start
    for m_start, m_end in matches:
        if m_end <= at or m_start >= end:
            continue
        pieces.append(text[at - start:max(m_start, at) - start])
        if m_start >= start:
            pieces.append(REDACTED)
        at = min(m_end, end)
    pieces.append(text[at - start:])
    return "".join(pieces)
