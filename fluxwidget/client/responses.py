"""Turn an HTTP error reply from fal (or a proxy) into a typed, person-readable FalError."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx
from pydantic import ValidationError

from ..errors import (
    AuthenticationError,
    FalError,
    FieldProblem,
    ForbiddenError,
    ImageGoneError,
    JobCancelledError,
    NotFoundError,
    PaymentRequiredError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ResultExpiredError,
    ResultNotReadyError,
    ServerError,
    ValidationFailedError,
)
from ..schema import FluxLoraOutput
from .redact import Redactor

__all__ = [
    "TOO_LARGE",
    "TRUNCATED",
    "error_from_response",
    "is_user_timeout",
    "parse_result",
    "parse_retry_after",
    "read_json",
    "read_object",
    "response_detail",
]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN: no usable value
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_user_timeout(response: httpx.Response) -> bool:
    """A 504 caused by the caller's own ``X-Fal-Request-Timeout``: final, never retried."""
    timeout_type = response.headers.get("x-fal-request-timeout-type", "")
    return response.status_code == 504 and timeout_type.lower() == "user"


TRUNCATED = "fluxwidget.truncated"
"""`httpx.Response.extensions` key set by the transport when it cut a body at its cap."""
TOO_LARGE = "fluxwidget.too_large"
"""`httpx.Response.extensions` key: the cap a successful body went over (its body is cut)."""


def read_json(response: httpx.Response, call: str) -> Any:
    """The JSON body of a successful reply, or `ProtocolError` (empty, invalid, truncated,
    over its cap) naming `call`."""
    cap = response.extensions.get(TOO_LARGE)
    if cap:
        raise ResponseTooLargeError(call, "the reply", int(cap))
    if not response.content.strip():
        raise ProtocolError(call, "the reply is empty")
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        raise ProtocolError(call, "the reply is not valid JSON (cut short, or not JSON)") from None


def parse_result(data: Any, call: str = "result") -> FluxLoraOutput:
    """A result body as `FluxLoraOutput`, or `ProtocolError` saying which fields were wrong (by
    place and kind only: the values are whatever the server chose)."""
    try:
        return FluxLoraOutput.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False, include_input=False)[:5]:
            where = ".".join(str(part) for part in err["loc"]) or "the body"
            parts.append(f"{where}: {err['type']}")
        problem = "the result does not have fal's shape (" + "; ".join(parts) + ")"
        raise ProtocolError(call, problem) from None


def read_object(response: httpx.Response, call: str) -> dict[str, Any]:
    """`read_json` that also insists on a JSON object."""
    body = read_json(response, call)
    if not isinstance(body, dict):
        kind = "list" if isinstance(body, list) else type(body).__name__
        raise ProtocolError(call, f"the reply is a JSON {kind}, not an object")
    return body


def response_detail(response: httpx.Response, redactor: Redactor | None = None) -> Any:
    """fal's ``detail`` field (string or list), else the body text; the key masked (before any
    shortening), a body that is not text shown as such."""
    redactor = redactor or Redactor(None)
    cut = bool(response.extensions.get(TRUNCATED))
    try:
        body = response.json()
    except ValueError:  # not JSON (HTML from a proxy), truncated, or not UTF-8
        text = redactor.text(response.content.decode("utf-8", "replace").strip(), cut=cut)
        return text[:_SHOWN] + ("…" if len(text) > _SHOWN or cut else "")
    body = redactor.value(body)
    if isinstance(body, dict):
        return body.get("detail", body.get("error", body))
    return body


_SHOWN = 300


def _problems(detail: Any) -> list[FieldProblem]:
    """fal's 422 list as FieldProblems; entries of other shapes are skipped, never fatal."""
    if not isinstance(detail, list):
        return []
    problems = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        parts = loc if isinstance(loc, list) else ([] if loc is None else [loc])
        field = ".".join(str(part) for part in parts if part != "body")
        message = item.get("msg")
        problems.append(
            FieldProblem(
                field[:_SHOWN] or "input",
                item.get("input"),
                (message if isinstance(message, str) else repr(message))[:_SHOWN],
            )
        )
    return problems


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        text = "; ".join(str(p) for p in _problems(detail)) or str(detail)
    elif isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg")
        text = message if isinstance(message, str) else str(detail)
    else:
        text = str(detail)
    return text[:_SHOWN] + ("…" if len(text) > _SHOWN else "")


def _content_policy(detail: Any) -> bool:
    return isinstance(detail, list) and any(
        isinstance(d, dict) and d.get("type") == "content_policy_violation" for d in detail
    )


def error_from_response(
    response: httpx.Response,
    *,
    request_id: str | None = None,
    auth_scheme: str = "Key",
    completed: bool = False,
    download: bool = False,
    redactor: Redactor | None = None,
) -> FalError:
    """The FalError subclass for an error reply, with the key masked everywhere in it.

    `completed`: the job is known to have finished (a 404 then means the result expired);
    `download`: the reply is an image download's (a 404/410 means the image is gone).
    """
    code = response.status_code
    detail = response_detail(response, redactor)
    text = _detail_text(detail)
    common: dict[str, Any] = {"status_code": code, "detail": detail, "request_id": request_id}
    if download and code in (404, 410):
        return ImageGoneError(
            f"{code}: the image URL no longer serves the image ({text})", **common
        )
    if code == 402:
        return PaymentRequiredError(
            f"402: fal refused the request until the account pays (check billing) — {text}",
            **common,
        )
    if code == 403 and auth_scheme == "Key":
        return ForbiddenError(f"403: fal refused the request for this account — {text}", **common)
    if code in (401, 403):
        fix = "set FAL_KEY" if auth_scheme == "Key" else "check the proxy token"
        return AuthenticationError(f"{code}: the key was refused — {fix} ({text})", **common)
    if code == 422:
        kind = "content policy" if _content_policy(detail) else "the input"
        return ValidationFailedError(
            f"422: the server rejected {kind}: {text}", problems=_problems(detail), **common
        )
    if code == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimitError(
            f"429: too many requests{wait} ({text})", retry_after=retry_after, **common
        )
    if is_user_timeout(response):
        return RequestTimeoutError(
            f"504: the job did not start within its X-Fal-Request-Timeout ({text})", **common
        )
    if code >= 500:
        return ServerError(f"{code}: server error ({text})", **common)
    if code == 410 or (code == 404 and (completed or "expire" in text.lower())):
        return ResultExpiredError(
            f"{code}: the result has expired (fal keeps results about an hour) ({text})", **common
        )
    if code == 404:
        return NotFoundError(f"404: no such request or endpoint ({text})", **common)
    if code == 400 and "cancel" in text.lower():
        return JobCancelledError(f"the job was cancelled ({text})", **common)
    if code == 400:
        return ResultNotReadyError(f"400: the result is not ready yet ({text})", **common)
    return FalError(f"{code}: {text}", **common)
