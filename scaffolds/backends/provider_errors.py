"""What every provider module shares: HTTP status -> our errors, ``Retry-After``, imports.

Provider modules map their SDK's exceptions through :func:`error_for_status`, so a 429 is a
:class:`RateLimitError` whichever SDK raised it, and the one retry layer in
:mod:`shardscope.scaffolds.backends.traced` decides the same way for all of them.
"""

from __future__ import annotations

import email.utils
import importlib
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from shardscope.scaffolds.backends.errors import (
    AuthenticationError,
    BackendError,
    BadRequestError,
    CallTimeoutError,
    MissingDependencyError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    ServerError,
)

REDACTED = "[REDACTED]"

# Error "type" strings in providers' JSON error bodies that decide the class on their own
# (Anthropic sends overloaded_error with HTTP 529, or inside a 200 stream as an error event).
_KIND_TO_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "api_error": 500,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "invalid_request_error": 400,
    "request_too_large": 413,
}


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import a provider SDK, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the Python package {module!r}, which is not installed: "
            f"pip install 'shardscope[{extra}]' ({exc})"
        ) from None


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(
    provider: str,
    status: int | None,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    kind: str | None = None,
    hint: str = "",
) -> BackendError:
    """Our error for an HTTP status (or a provider's error ``type`` when it is more precise)."""
    code = status
    if kind == "overloaded_error" or not status or status < 400:
        # Error events inside a 200 stream, or a status the body's type refines.
        code = _KIND_TO_STATUS.get(kind or "", status)
    text = f"{provider}: {message}"
    retry_after = parse_retry_after(headers)
    if code == 429:
        return RateLimitError(f"{text} (rate limited, HTTP 429)", retry_after=retry_after, status_code=status)
    if code == 529:
        return OverloadedError(f"{text} (overloaded)", retry_after=retry_after, status_code=status)
    if code in (401, 403):
        return AuthenticationError(
            f"{text} (HTTP {code}: authentication failed{'; ' + hint if hint else ''})",
            status_code=status,
        )
    if code == 404:
        return ModelNotFoundError(
            f"{text} (HTTP 404: model or endpoint not found; check the model name and base URL)",
            status_code=status,
        )
    if code == 408:
        return CallTimeoutError(f"{text} (HTTP 408: request timeout)", status_code=status)
    if code is not None and 400 <= code < 500 and code != 409:
        return BadRequestError(f"{text} (HTTP {code}: the request was rejected)", status_code=status)
    where = f"HTTP {code}" if code else "no status"
    return ServerError(f"{text} ({where}: server error)", status_code=status)


def error_kind(body: Any) -> str | None:
    """The ``error.type`` of a provider's JSON error body, when it has one."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("type"), str):
            return str(inner["type"])
    return None


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret replaced, for messages built from provider replies."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
