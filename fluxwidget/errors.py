"""The errors fluxwidget raises, as one hierarchy under `FluxwidgetError`.

::

    FluxwidgetError
    ├── InputError              bad input, raised before any request (also a ValueError)
    │   └── SweepError          a bad sweep axis or cell
    ├── MissingKeyError         no key and no emulator: nothing can be sent
    ├── RunFolderError          a run folder that cannot be used (also a ValueError)
    │   └── SweepFolderMismatch the folder holds a different sweep
    │   └── RunFolderBusy       another process (or run) is writing the folder
    ├── CostNotConfirmed        a sweep over its cost threshold, unconfirmed (also a ValueError)
    ├── StorageError            a file could not be written or read (also an OSError)
    │   └── DiskFullError       the disk or the quota is full (with the free space)
    ├── UnsafeURLError          a URL the download policy refuses (also a ValueError)
    └── FalError                anything that went wrong talking to fal, a proxy or the emulator
        ├── AuthenticationError 401: the key was refused
        │   └── ForbiddenError  403: fal's own refusal (account locked, balance exhausted)
        │       └── PaymentRequiredError  402: the account must pay (balance, billing)
        ├── UploadsUnavailableError  no storage behind the proxy: give a URL instead
        ├── ValidationFailedError  422
        ├── RateLimitError      429, or a Retry-After longer than the client waits
        ├── ServerError         5xx
        ├── NotFoundError       404
        │   ├── ResultExpiredError  410 / 404 after completion
        │   └── ImageGoneError  404 / 410 on an image download
        ├── ResultNotReadyError 400 from the result call
        ├── RequestTimeoutError 504 with X-Fal-Request-Timeout-Type: user
        ├── GenerationTimeout   generate(timeout=...) ran out (also a TimeoutError)
        ├── JobCancelledError   the job was cancelled
        ├── TransportError      the network failed after the retries
        │   └── DownloadTooSlowError  a download missed its deadline or minimum rate
        └── ProtocolError       a reply that cannot be read (says which call and what)
            └── ResponseTooLargeError  a reply larger than the configured cap

This module imports nothing from fluxwidget, so every other module may import it.
`CancelledError` is a deprecated alias of `JobCancelledError` (it shadowed asyncio's).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "CostNotConfirmed",
    "DiskFullError",
    "DownloadTooSlowError",
    "FalError",
    "FieldProblem",
    "FluxwidgetError",
    "ForbiddenError",
    "GenerationTimeout",
    "ImageGoneError",
    "InputError",
    "JobCancelledError",
    "MissingKeyError",
    "NotFoundError",
    "PaymentRequiredError",
    "ProtocolError",
    "RateLimitError",
    "RatingError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ResultExpiredError",
    "ResultNotReadyError",
    "RunFolderBusy",
    "RunFolderError",
    "ServerError",
    "StorageError",
    "SweepError",
    "SweepFolderMismatch",
    "TransportError",
    "UnsafeURLError",
    "UploadsUnavailableError",
    "ValidationFailedError",
]


class FluxwidgetError(Exception):
    """The root of every error fluxwidget raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: where it is, what was given, and what is allowed."""

    field: str
    """Dotted path, e.g. ``num_images`` or ``loras[0].scale``."""
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InputError(FluxwidgetError, ValueError):
    """The input is invalid; raised before any request is sent."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid flux-lora input:\n{lines}")

    def for_field(self, field: str) -> list[FieldProblem]:
        """The problems of one top-level field (e.g. all of ``loras[...]``)."""
        return [p for p in self.problems if p.field.split("[")[0].split(".")[0] == field]


class SweepError(InputError):
    """A sweep axis or cell is invalid; raised before any request is sent.

    It is an `InputError`, so ``except InputError`` catches it; `problems` lists each problem
    and `hidden` counts those left out of the message.
    """

    def __init__(
        self, problems: list[FieldProblem], *, heading: str = "invalid sweep", hidden: int = 0
    ) -> None:
        super().__init__(problems)
        self.hidden = hidden
        lines = "\n".join(f"  - {p}" for p in problems)
        more = f"\n  ... and {hidden} more" if hidden else ""
        self.args = (f"{heading}:\n{lines}{more}",)

    def __str__(self) -> str:
        return str(self.args[0])


class RunFolderError(FluxwidgetError, ValueError):
    """A run folder that cannot be used: not a run folder, unreadable, or named unsafely."""


class RunFolderBusy(RunFolderError):
    """The run folder is being written by another process (or another run in this one): one
    writer at a time, so nothing is submitted twice. `owner` says who (pid, host, since)."""

    def __init__(self, message: str, *, owner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.owner = owner or {}


class RatingError(FluxwidgetError, ValueError):
    """A rating or a vote that cannot be stored: stars outside 1–5, an unknown verdict or
    winner, an image the run folder does not hold."""


class StorageError(FluxwidgetError, OSError):
    """A file of a run could not be written or read; `path` names it. What was saved before
    stays saved, and the journal stays readable."""

    def __init__(self, message: str, *, path: Any = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class DiskFullError(StorageError):
    """The disk (or the quota) is full; `free_bytes` is what was left, when known."""

    def __init__(self, message: str, *, path: Any = None, free_bytes: int | None = None) -> None:
        super().__init__(message, path=path)
        self.free_bytes = free_bytes


class SweepFolderMismatch(RunFolderError):
    """The folder holds a different sweep; resuming it would mix two definitions."""


class CostNotConfirmed(FluxwidgetError, ValueError):
    """The estimated cost is above the threshold and the sweep was not confirmed."""


class MissingKeyError(FluxwidgetError):
    """No key is set and no emulator was asked for: nothing can be sent."""


class UnsafeURLError(FluxwidgetError, ValueError):
    """A URL the download policy refuses (scheme, host or address); nothing was fetched."""


class FalError(FluxwidgetError):
    """An error reported by fal (or the proxy / emulator in front of it), or met talking to it.

    `status_code` is the HTTP status (None for transport problems), `detail` fal's `detail`
    field as sent (the key redacted), `request_id` the job concerned when known.
    `maybe_accepted` is True when a submit may have been accepted (and billed) although no
    usable reply came: it must not be sent again blindly.
    """

    maybe_accepted: bool = False

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
    """401 (or 403): the key was refused."""


class ForbiddenError(AuthenticationError):
    """403: fal refused the call for the account (locked, balance exhausted); fal's message
    is in the text and in `detail`."""


class PaymentRequiredError(ForbiddenError):
    """402: fal refused the call until the account pays (balance exhausted, billing); fal's
    message is in the text and in `detail`. No call on this account can succeed until then."""


AccountLockedError = ForbiddenError
"""Another name for `ForbiddenError` (fal's 403 for a locked or exhausted account)."""


class UploadsUnavailableError(FalError):
    """The storage host does not take uploads (a proxy without fal's storage, a refused token
    call): a local file cannot be sent. Raised before the submit: nothing was paid."""


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


class ResultExpiredError(NotFoundError):
    """The job completed but its result is no longer kept by fal (410, or 404 after it)."""


class ImageGoneError(NotFoundError):
    """404/410 on an image download: the image URL no longer serves the image."""


class ResultNotReadyError(FalError):
    """400 from the result call: the job has not finished yet."""


class RequestTimeoutError(FalError):
    """504 with `X-Fal-Request-Timeout-Type: user`: the job did not start in time. Final."""


class GenerationTimeout(FalError, TimeoutError):
    """`generate(timeout=...)` ran out; the job was cancelled best-effort."""


class JobCancelledError(FalError):
    """The job was cancelled before it produced a result."""


class TransportError(FalError):
    """The network failed (refused, reset, timed out) after all retries.

    `maybe_accepted` is True when a submit was sent but no reply came: the server may have
    accepted (and billed) it, so it must not be sent again blindly.
    """

    def __init__(self, message: str, *, maybe_accepted: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_accepted = maybe_accepted


class DownloadTooSlowError(TransportError):
    """A download missed its overall deadline or stayed under its minimum rate."""


class ProtocolError(FalError):
    """A reply that cannot be read: `call` names the call, `problem` says what was wrong."""

    def __init__(self, call: str, problem: str, **kwargs: Any) -> None:
        super().__init__(f"unreadable reply to {call}: {problem}", **kwargs)
        self.call = call
        self.problem = problem


class ResponseTooLargeError(ProtocolError):
    """A reply (JSON, SSE event, error body, image bytes or pixels) over its configured cap."""

    def __init__(self, call: str, what: str, limit: int, **kwargs: Any) -> None:
        super().__init__(call, f"{what} is larger than the limit of {limit:,}", **kwargs)
        self.limit = limit


def __getattr__(name: str) -> Any:
    if name == "CancelledError":
        warnings.warn(
            "fluxwidget.errors.CancelledError is deprecated (it shadowed asyncio.CancelledError);"
            " use JobCancelledError",
            DeprecationWarning,
            stacklevel=2,
        )
        return JobCancelledError
    raise AttributeError(f"module 'fluxwidget.errors' has no attribute {name!r}")
