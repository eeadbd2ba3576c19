"""The account's request history, from fal's platform API: finding a submit whose reply was lost.

``GET {platform_url}/models/requests/by-endpoint?endpoint_id=...&start=...&end=...
&expand=payloads&limit=...&cursor=...`` lists an endpoint's requests in a time window, with
(``expand=payloads``) the JSON body each was submitted with (``json_input``) and its output
(``json_output``); pages are followed by ``next_cursor`` while ``has_more``. This follows fal's
documentation of its platform API; it has not been tried with a real key.

A submit whose reply never came (a dropped connection, a crash) leaves a job with no request id.
The pipeline journals the sha256 of the canonical JSON of the exact body it sent
(`payload_sha256`) with the ``submitting`` event; a request in the listing whose ``json_input``
has the same hash is that submit (see `fluxwidget.store.lost`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import httpx

from ..errors import FalError, ProtocolError
from .responses import read_object

__all__ = [
    "LISTING_PATH",
    "MAX_PAGES",
    "PAGE_LIMIT",
    "RequestListing",
    "RequestSummary",
    "canonical_json",
    "isoformat",
    "list_requests",
    "parse_time",
    "payload_sha256",
]

LISTING_PATH = "/models/requests/by-endpoint"
PAGE_LIMIT = 100
"""fal's largest page."""
MAX_PAGES = 50
"""Pages followed at most (5,000 requests at fal's largest page): a listing that goes on is
reported incomplete, never followed forever."""
STATUSES = ("success", "error", "user_error")
_CALL = "request listing"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_MAX_CURSOR = 2048


def canonical_json(payload: Any) -> str:
    """The one text of a JSON value: keys sorted, no spaces."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def payload_sha256(payload: Any) -> str:
    """The sha256 (hex) of `canonical_json(payload)`: what identifies a submitted body."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def isoformat(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` (a naive datetime counts as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive counts as UTC) as an aware datetime, or None
    for anything else."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class RequestSummary:
    """One request of the listing. Fields the server left out or sent in another shape are
    None; `input_sha256` is the hash of `json_input` (None without an object payload)."""

    request_id: str
    endpoint_id: str | None = None
    sent_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    status_code: int | None = None
    json_input: Any = field(default=None, repr=False, compare=False)
    json_output: Any = field(default=None, repr=False, compare=False)
    input_sha256: str | None = None

    @classmethod
    def from_json(cls, item: Any) -> RequestSummary:
        """Read one listed item; `ProtocolError` when it is not an object with a request id."""
        if not isinstance(item, dict):
            raise ProtocolError(_CALL, "an item is not a JSON object")
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not _SAFE_ID.match(request_id):
            raise ProtocolError(_CALL, "an item has no usable 'request_id'")
        endpoint = item.get("endpoint_id")
        code = item.get("status_code")
        payload = item.get("json_input")
        return cls(
            request_id=request_id,
            endpoint_id=endpoint if isinstance(endpoint, str) else None,
            sent_at=parse_time(item.get("sent_at")),
            started_at=parse_time(item.get("started_at")),
            ended_at=parse_time(item.get("ended_at")),
            status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            json_input=payload,
            json_output=item.get("json_output"),
            input_sha256=payload_sha256(payload) if isinstance(payload, dict) else None,
        )


@dataclass(frozen=True)
class RequestListing:
    """The requests of one endpoint in a time window. `complete` is False when the page cap
    stopped the listing before its end: a request missing from it may still exist."""

    endpoint_id: str
    start: datetime
    end: datetime | None
    requests: tuple[RequestSummary, ...]
    complete: bool = True
    pages: int = 1


class PlatformCaller(Protocol):
    """What the listing needs of a client (`FluxClient` provides it)."""

    async def platform_get(self, path: str, params: dict[str, str]) -> httpx.Response: ...

    def error_for(self, response: httpx.Response) -> FalError: ...


def _page(body: dict[str, Any]) -> tuple[list[Any], str | None, bool]:
    """The items, the next cursor and whether more pages follow, or `ProtocolError`."""
    items = next((body[key] for key in ("items", "requests", "data") if key in body), None)
    if not isinstance(items, list):
        raise ProtocolError(_CALL, "the reply has no 'items' list")
    cursor = body.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR):
        raise ProtocolError(_CALL, "'next_cursor' is not a string of a sane length")
    more = body.get("has_more", cursor is not None)
    if not isinstance(more, bool):
        raise ProtocolError(_CALL, "'has_more' is not true or false")
    if more and not cursor:
        raise ProtocolError(_CALL, "'has_more' is true but there is no 'next_cursor'")
    return items, cursor, more


async def list_requests(
    client: PlatformCaller,
    endpoint_id: str,
    *,
    start: datetime,
    end: datetime | None = None,
    status: str | None = None,
    request_id: str | None = None,
    with_payloads: bool = True,
    limit: int = PAGE_LIMIT,
    max_pages: int = MAX_PAGES,
) -> RequestListing:
    """The requests of `endpoint_id` sent from `start` to `end` (default: now), every page up
    to `max_pages`.

    `status` filters by outcome (``success``, ``error``, ``user_error``), `request_id` asks for
    one request; `with_payloads` adds each request's ``json_input``/``json_output``. An error
    reply raises the client's typed error (`NotFoundError` from a proxy without the platform
    API, `AuthenticationError`, ...), an unreadable one `ProtocolError`, the network
    `TransportError`.
    """
    if not 1 <= limit <= PAGE_LIMIT:
        raise ValueError(f"limit: {limit} is not allowed; use 1 to {PAGE_LIMIT}")
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: {status!r} is not allowed; use one of {', '.join(STATUSES)}")
    params = {"endpoint_id": endpoint_id, "start": isoformat(start), "limit": str(limit)}
    if end is not None:
        params["end"] = isoformat(end)
    if status is not None:
        params["status"] = status
    if request_id is not None:
        params["request_id"] = request_id
    if with_payloads:
        params["expand"] = "payloads"
    found: dict[str, RequestSummary] = {}
    seen_cursors: set[str] = set()
    cursor: str | None = None
    for page in range(1, max_pages + 1):
        query = dict(params, cursor=cursor) if cursor is not None else params
        response = await client.platform_get(LISTING_PATH, query)
        if response.is_error:
            raise client.error_for(response)
        items, cursor, more = _page(read_object(response, _CALL))
        for item in items:
            summary = RequestSummary.from_json(item)
            found.setdefault(summary.request_id, summary)
        if not more:
            return RequestListing(endpoint_id, start, end, tuple(found.values()), True, page)
        assert cursor is not None  # _page insists on one
        if cursor in seen_cursors:
            raise ProtocolError(_CALL, "the pages loop (a 'next_cursor' came back twice)")
        seen_cursors.add(cursor)
    return RequestListing(endpoint_id, start, end, tuple(found.values()), False, max_pages)
