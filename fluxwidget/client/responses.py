"""Turn an HTTP error reply from fal (or a proxy) into a typed, person-readable FalError."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from ..errors import (
    AuthenticationError,
    CancelledError,
    FalError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResultExpiredError,
    ResultNotReadyError,
    ServerError,
    ValidationFailedError,
)
from ..schema import FieldProblem

__all__ = ["error_from_response", "is_user_timeout", "parse_retry_after", "response_detail"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_user_timeout(response: httpx.Response) -> bool:
    """A 504 caused by the caller's own ``X-Fal-Request-Timeout``: final, never retried."""
    timeout_type = response.headers.get("x-fal-request-timeout-type", "")
    return response.status_code == 504 and timeout_type.lower() == "user"


def response_detail(response: httpx.Response) -> Any:
    """fal's ``detail`` field (string or list), else the body text, shortened."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] + ("…" if len(text) > 300 else "")
    if isinstance(body, dict):
        return body.get("detail", body.get("error", body))
    return body


def _problems(detail: Any) -> list[FieldProblem]:
    if not isinstance(detail, list):
        return []
    problems = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc", []) if part != "body"]
        problems.append(
            FieldProblem(".".join(loc) or "input", item.get("input"), item.get("msg", ""))
        )
    return problems


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(str(p) for p in _problems(detail)) or str(detail)[:300]
    return str(detail)[:300]


def error_from_response(
    response: httpx.Response,
    *,
    request_id: str | None = None,
    auth_scheme: str = "Key",
    completed: bool = False,
    redact: str | None = None,
) -> FalError:
    """The FalError subclass for an error reply; `redact` is a secret never to be echoed."""
    code = response.status_code
    detail = response_detail(response)
    text = _detail_text(detail)
    if redact:
        text = text.replace(redact, "***")
    common: dict[str, Any] = {"status_code": code, "detail": detail, "request_id": request_id}
    if code in (401, 403):
        fix = "set FAL_KEY" if auth_scheme == "Key" else "check the proxy token"
        return AuthenticationError(f"{code}: the key was refused — {fix} ({text})", **common)
    if code == 422:
        problems = _problems(detail)
        kind = (
            "content policy"
            if any(
                isinstance(d, dict) and d.get("type") == "content_policy_violation"
                for d in detail or []
            )
            else "the input"
        )
        return ValidationFailedError(
            f"422: the server rejected {kind}: {text}", problems=problems, **common
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
    if code == 404:
        if completed or "expire" in text.lower():
            return ResultExpiredError(
                f"404: the result has expired (fal keeps results about an hour) ({text})", **common
            )
        return NotFoundError(f"404: no such request or endpoint ({text})", **common)
    if code == 400 and "cancel" in text.lower():
        return CancelledError(f"the job was cancelled ({text})", **common)
    if code == 400:
        return ResultNotReadyError(f"400: the result is not ready yet ({text})", **common)
    return FalError(f"{code}: {text}", **common)
