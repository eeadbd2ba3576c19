"""Retry rules, carried out by tenacity: what may be retried, and how long to wait.

- Idempotent calls (status, result, cancel, downloads) are retried on transport errors, 408,
  429 and 502/503/504 — but a 5xx that carries ``x-fal-request-id`` is the model's own answer,
  and a 504 with ``X-Fal-Request-Timeout-Type: user`` is final.
- A submit is retried only when the server certainly did not accept it: the connection was never
  made (refused, connect timeout, no pooled connection), or it answered 429 or 503. Never after a
  read timeout or a dropped connection: a retried submit gets a new request id and pays twice.
- A status call (read-only) is also retried on any other 5xx.
- Waits grow exponentially with jitter; a ``Retry-After`` header is honoured up to
  `RetryPolicy.max_retry_after`: a longer one is not waited for, and the reply (a 429 becomes a
  `RateLimitError` carrying the server's value) is returned at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from ..errors import FluxwidgetError
from .responses import is_user_timeout, parse_retry_after

__all__ = ["RetryPolicy", "RetryableResponse", "is_retryable", "retrying"]

log = logging.getLogger("fluxwidget.client")

_RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
_SUBMIT_RETRY_STATUSES = frozenset({429, 503})
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them (seconds)."""

    max_attempts: int = 5
    initial_wait: float = 0.1
    max_wait: float = 10.0
    """The longest backoff between attempts when the server did not say."""
    max_retry_after: float = 120.0
    """The longest ``Retry-After`` honoured; past it the call fails with the server's value."""


class RetryableResponse(FluxwidgetError):
    """Raised inside an attempt for an error reply that deserves another try (it never leaves
    the transport: the last reply is mapped to its typed error)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


def should_retry_response(
    response: httpx.Response,
    *,
    submit: bool,
    policy: RetryPolicy | None = None,
    any_5xx: bool = False,
    rate_limits: bool = True,
) -> bool:
    """Whether an error reply is worth another attempt under the rules above; `rate_limits`
    False leaves a 429 to the caller (which shows the wait)."""
    if not rate_limits and response.status_code == 429:
        return False
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    limit = (policy or RetryPolicy()).max_retry_after
    if retry_after is not None and retry_after > limit:
        return False
    needs_retry = response.headers.get("x-fal-needs-retry")
    if needs_retry is not None and not submit:
        return needs_retry.strip() in ("1", "true")
    if is_user_timeout(response):
        return False
    if submit:
        return response.status_code in _SUBMIT_RETRY_STATUSES
    if any_5xx and response.status_code >= 500:
        return True
    if response.status_code >= 500 and "x-fal-request-id" in response.headers:
        return False  # the model's own error, not the ingress's
    return response.status_code in _RETRY_STATUSES


def is_retryable(exc: BaseException, *, submit: bool) -> bool:
    """Whether an exception raised by an attempt may be retried."""
    if isinstance(exc, RetryableResponse):
        return True
    if submit:
        return isinstance(exc, _NEVER_SENT)
    return isinstance(exc, httpx.TransportError)


class _wait_retry_after(wait_base):
    """Wait what ``Retry-After`` says (capped), else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.max_retry_after = policy.max_retry_after
        self.backoff = wait_exponential_jitter(
            multiplier=policy.initial_wait, max=policy.max_wait, jitter=policy.initial_wait
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return float(self.backoff(retry_state))


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.info(
        "retrying after %s (attempt %d, waiting %.2f s)",
        type(exc).__name__ if not isinstance(exc, RetryableResponse) else exc,
        retry_state.attempt_number,
        wait,
    )


def retrying(policy: RetryPolicy, *, submit: bool) -> AsyncRetrying:
    """A tenacity controller for one call; the last error is re-raised when it gives up."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_wait_retry_after(policy),
        retry=retry_if_exception(lambda exc: is_retryable(exc, submit=submit)),
        before_sleep=_log_retry,
        reraise=True,
    )
