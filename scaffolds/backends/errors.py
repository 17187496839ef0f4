"""Backend errors, normalized across providers so one retry layer can decide."""

from __future__ import annotations

from shardscope.config.errors import ShardscopeError


class BackendError(ShardscopeError):
    """A model call failed. ``error_type`` is what lands in the span's ``error.type``."""

    error_type = "backend_error"
    retryable = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RateLimitError(BackendError):
    error_type = "rate_limited"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = 429
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(BackendError):
    error_type = "server_error"
    retryable = True


class OverloadedError(ServerError):
    error_type = "overloaded"

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = 529
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class CallTimeoutError(BackendError):
    error_type = "timeout"
    retryable = True


class BackendConnectionError(BackendError):
    error_type = "connection_error"
    retryable = True


class MalformedResponseError(BackendError):
    """The provider answered with something that is not the protocol (bad JSON, bad shape)."""

    error_type = "malformed_response"
    retryable = True


class StreamInterruptedError(BackendError):
    error_type = "stream_interrupted"
    retryable = True


class AuthenticationError(BackendError):
    error_type = "authentication_error"


class BadRequestError(BackendError):
    error_type = "bad_request"


class ModelNotFoundError(BackendError):
    error_type = "model_not_found"


class MissingDependencyError(BackendError):
    """A provider SDK or local package is not installed: the message names the extra."""

    error_type = "missing_dependency"


class ModelIntegrityError(BackendError):
    """Local weights failed their SHA-256 check."""

    error_type = "model_integrity"


class ScriptExhaustedError(BackendError):
    """The scripted backend was called more often than responses were queued."""

    error_type = "script_exhausted"
