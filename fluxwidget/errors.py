"""The errors fluxwidget raises, as one hierarchy. Messages are written for a person.

`InputError` (bad input, raised before any request) lives in `fluxwidget.schema` and is
re-exported here. Every error from fal derives from `FalError`.
"""

from __future__ import annotations

from typing import Any

from .schema import FieldProblem, InputError

__all__ = [
    "AuthenticationError",
    "CancelledError",
    "FalError",
    "FieldProblem",
    "GenerationTimeout",
    "InputError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResultExpiredError",
    "ResultNotReadyError",
    "ServerError",
    "TransportError",
    "ValidationFailedError",
]


class FalError(Exception):
    """An error reported by fal (or the proxy / emulator in front of it).

    `status_code` is the HTTP status (None for transport problems), `detail` fal's `detail`
    field as sent, `request_id` the job concerned when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class AuthenticationError(FalError):
    """401/403: the key was refused."""


class ValidationFailedError(FalError):
    """422: the server rejected the input; `problems` lists fal's fields."""

    def __init__(self, message: str, *, problems: list[FieldProblem], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.problems = problems


class RateLimitError(FalError):
    """429: too many requests; `retry_after` seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(FalError):
    """5xx from fal, the proxy or the model."""


class NotFoundError(FalError):
    """404: no such request (or the endpoint path is wrong)."""


class ResultNotReadyError(FalError):
    """400 from the result call: the job has not finished yet."""


class ResultExpiredError(NotFoundError):
    """The job completed but its result is no longer kept by fal."""


class RequestTimeoutError(FalError):
    """504 with `X-Fal-Request-Timeout-Type: user`: the job did not start in time. Final."""


class GenerationTimeout(FalError, TimeoutError):
    """`generate(timeout=...)` ran out; the job was cancelled best-effort."""


class CancelledError(FalError):
    """The job was cancelled before it produced a result."""


class TransportError(FalError):
    """The network failed (refused, reset, timed out) after all retries.

    `maybe_accepted` is True when a submit was sent but no reply came: the server may have
    accepted (and billed) it, so it must not be sent again blindly.
    """

    def __init__(self, message: str, *, maybe_accepted: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_accepted = maybe_accepted
