"""Keep API keys out of the provider SDKs' own log lines.

LiteLLM, ``openai`` and ``anthropic`` log requests, responses and error bodies at DEBUG; a
provider that echoes a key (a 401 body quoting it) would put it in a log line. Building a
hosted backend adds a filter to those SDK loggers that removes its key and anything shaped
like a credential (:class:`shardscope.tracer.redact.Redactor`) from every record they emit.
"""

from __future__ import annotations

import logging
import threading

from shardscope.scaffolds.backends.provider_errors import scrub
from shardscope.tracer.redact import Redactor

SDK_LOGGER_PREFIXES = ("LiteLLM", "litellm", "openai", "anthropic", "httpx", "httpcore")
_secrets: set[str] = set()
_lock = threading.Lock()


class RedactSecrets(logging.Filter):
    """Rewrites a record's message without the registered keys and credential shapes."""

    def __init__(self) -> None:
        super().__init__()
        self._redactor = Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = self._redactor.text(scrub(message, *_secrets))
        if clean != message:
            record.msg, record.args = clean, None
        return True


_filter = RedactSecrets()


def protect_logs(*secrets: str | None) -> None:
    """Register ``secrets`` and make sure every SDK logger that exists now carries the filter."""
    with _lock:
        _secrets.update(s for s in secrets if s and len(s) >= 8)
        names = [
            name
            for name in list(logging.root.manager.loggerDict)
            if name.split(".", 1)[0] in SDK_LOGGER_PREFIXES
        ]
        for name in [*SDK_LOGGER_PREFIXES, *names]:
            logger = logging.getLogger(name)
            if _filter not in logger.filters:
                logger.addFilter(_filter)
