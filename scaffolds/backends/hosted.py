"""What the hosted backends (openai, anthropic, litellm) share: key, base URL, clients.

An :class:`Endpoint` says where a hosted model is and how it is reached: the API key, read
from the environment only and kept out of the SDK loggers; the host and port the spans
record; the names its error messages give. :class:`LoopClients` keeps one SDK client per
event loop. :func:`availability` and :func:`probe` answer "can it run here" without calling
the provider. Nothing here imports an SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shardscope.scaffolds.backends.errors import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    CallTimeoutError,
    MalformedResponseError,
    StreamInterruptedError,
)
from shardscope.scaffolds.backends.log_redaction import protect_logs
from shardscope.scaffolds.backends.provider_errors import error_for_status, error_kind, scrub

NO_KEY = "no-key-required"  # local OpenAI-compatible servers accept any key


@dataclass(frozen=True)
class Endpoint:
    """A hosted backend's base URL and API-key variable (the NAME of one, never a key)."""

    name: str  # how messages name the backend: "openai", "anthropic", "litellm", "vllm", ...
    base_url: str | None = None
    api_key_env: str | None = None
    default_url: str | None = None  # where the SDK goes without a base_url
    keyless: str | None = None  # the key sent when no variable is named (None: the SDK's own)

    def api_key(self) -> str | None:
        """The key from the named variable (AuthenticationError when it is unset), else ``keyless``.

        A key that is found is registered with the filter that keeps it out of SDK log lines.
        """
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if self.api_key_env and not key:
            raise AuthenticationError(
                f"{self.name}: no API key: set the environment variable {self.api_key_env} "
                "(keys are read from the environment only)"
            )
        protect_logs(key)
        return key or self.keyless

    @property
    def url(self) -> str | None:
        return self.base_url or self.default_url

    @property
    def server_address(self) -> str | None:
        return urlsplit(self.url).hostname if self.url else None

    @property
    def server_port(self) -> int | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def host(self) -> str:
        """What a connection error says it could not reach: the base URL, else the default host."""
        return self.base_url or self.server_address or self.name

    def hint(self, fallback: str = "") -> str:
        """The advice an authentication failure gives."""
        return f"check {self.api_key_env}" if self.api_key_env else fallback


class LoopClients:
    """One SDK client per running event loop: an httpx client is bound to the loop that opened
    its connections, so a client made under another ``asyncio.run`` is not reused."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        # Keyed by the loop object itself, held here: a loop's id() is its address, which a
        # new loop reuses once the old one is freed (and the old client would come back).
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            self._clients.clear()
            client = self._clients[loop] = self._make()
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # its event loop is gone: nothing to release
                await client.close()


def error_text(exc: BaseException) -> str:
    """The provider's own message from an SDK exception's JSON body, else the exception's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
    return str(exc) or type(exc).__name__


def sdk_error(
    exc: Exception,
    sdk: Any,
    *,
    name: str,
    endpoint: Endpoint,
    api_key: str | None,
    streaming: bool,
    malformed: tuple[type[Exception], ...],
) -> BackendError:
    """Our error for an exception of the openai or anthropic SDK (they share one exception
    hierarchy: ``APITimeoutError``, ``APIStatusError``, ``APIResponseValidationError``,
    ``APIConnectionError``), with the key scrubbed out. ``malformed`` adds the exception types
    the SDK raises on a body it cannot parse; ``streaming`` says chunks had already arrived.
    """
    text = scrub(error_text(exc), api_key)
    if isinstance(exc, sdk.APITimeoutError):
        return CallTimeoutError(f"{name}: the request timed out ({text})")
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(
            name,
            exc.status_code,
            text,
            headers=exc.response.headers,
            kind=error_kind(exc.body),
            hint=endpoint.hint(),
        )
    if isinstance(exc, (sdk.APIResponseValidationError, *malformed)):
        return MalformedResponseError(f"{name}: malformed response: {text}")
    cause = scrub(error_text(exc.__cause__), api_key) if exc.__cause__ else text
    if streaming:
        return StreamInterruptedError(f"{name}: the stream broke off: {cause}")
    if isinstance(exc, sdk.APIConnectionError):
        return BackendConnectionError(f"{name}: cannot reach {endpoint.host}: {cause}")
    return MalformedResponseError(f"{name}: unexpected {type(exc).__name__}: {text}")


def as_dict(obj: Any, name: str) -> dict[str, Any]:
    """An SDK response object (pydantic) or a plain dict, as a dict."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise MalformedResponseError(f"{name}: the response is not JSON: {str(obj)[:200]}")
    dumped: dict[str, Any] = dump()
    return dumped


def availability(
    key_env: str | None, base_url: str | None, *, unchecked: str = "credentials are not checked here"
) -> tuple[bool, str]:
    """(can run here, why) from the key's variable and a TCP probe of the base URL, if any."""
    if key_env and not os.environ.get(key_env):
        return False, f"API key not set: export {key_env}=..."
    if base_url:
        reachable, why = probe(base_url)
        if not reachable:
            return False, why
        return True, f"endpoint {base_url} reachable" + (f", {key_env} set" if key_env else "")
    if not key_env:
        return True, unchecked
    return True, f"{key_env} set"


def probe(base_url: str, timeout_s: float = 0.3) -> tuple[bool, str]:
    """A TCP connect to the URL's host and port (no HTTP request, no credentials)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, f"{host}:{port} reachable"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return False, f"endpoint {base_url} not reachable ({reason}); is the server running?"
