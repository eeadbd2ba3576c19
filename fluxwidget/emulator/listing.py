"""fal's request listing (platform API), as the emulator serves it.

``GET /v1/models/requests/by-endpoint?endpoint_id=...&start=...&end=...&status=...
&request_id=...&expand=payloads&limit=...&cursor=...`` answers ``{"items": [...], "next_cursor":
..., "has_more": ...}``, oldest first. Each item has ``request_id``, ``endpoint_id``,
``sent_at``, ``started_at``, ``ended_at`` (UTC ISO 8601), ``status_code`` (None until the job
ends), ``duration`` and, with ``expand=payloads``, ``json_input`` (the exact JSON body the submit
carried, as accepted) and ``json_output`` (the result's body once completed). Every accepted job
is listed, also one whose submit reply was never delivered. The cursor is the offset of the next
item (opaque to clients). ``start`` defaults to 24 hours ago, ``end`` to now.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from fluxwidget.emulator.jobs import Job, JobState, Scheduler
from fluxwidget.schema import ENDPOINT_ID

MAX_LIMIT = 100
STATUSES = ("success", "error", "user_error")


def _problem(message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=422)


def _time(value: str | None, default: datetime) -> datetime | None:
    if value is None:
        return default
    text = value.strip()
    text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _endpoint(job: Job) -> str:
    return f"{ENDPOINT_ID}/{job.subpath}" if job.subpath else ENDPOINT_ID


def _status_class(code: int | None) -> str | None:
    if code is None:
        return None
    if code < 400:
        return "success"
    return "user_error" if code < 500 else "error"


def _item(job: Job, wall: Any, payloads: bool) -> dict[str, Any]:
    code = job.outcome.status_code if job.state is JobState.COMPLETED and job.outcome else None
    ended = wall(job.completed_at)
    sent = wall(job.submitted_at)
    item: dict[str, Any] = {
        "request_id": job.request_id,
        "endpoint_id": _endpoint(job),
        "sent_at": _iso(sent),
        "started_at": _iso(wall(job.started_at)),
        "ended_at": _iso(ended),
        "status_code": code,
        "duration": (ended - sent).total_seconds() if ended and sent else None,
    }
    if payloads:
        item["json_input"] = job.payload
        item["json_output"] = job.outcome.body if code is not None and job.outcome else None
    return item


def listing(scheduler: Scheduler, query: QueryParams) -> JSONResponse:
    """The reply to one listing call (auth is checked by the caller)."""
    endpoint = query.get("endpoint_id")
    if not endpoint:
        return _problem("endpoint_id is required")
    now = datetime.now(timezone.utc)
    start = _time(query.get("start"), now - timedelta(hours=24))
    end = _time(query.get("end"), now)
    if start is None or end is None:
        return _problem("start and end must be ISO 8601 times")
    status = query.get("status")
    if status is not None and status not in STATUSES:
        return _problem(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(query.get("limit", "50"))
        offset = int(query.get("cursor") or "0")
    except ValueError:
        return _problem("limit and cursor must be integers")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        return _problem(f"limit must be 1 to {MAX_LIMIT}; the cursor must come from a reply")
    payloads = "payloads" in query.get("expand", "").split(",")
    wanted_id = query.get("request_id")
    # the jobs keep monotonic times: turn them into wall-clock times, once for this reply
    offset_s = time.time() - time.monotonic()

    def wall(moment: float | None) -> datetime | None:
        if moment is None:
            return None
        return datetime.fromtimestamp(moment + offset_s, timezone.utc)

    matching = []
    for job in list(scheduler.jobs.values()):  # submit order: new jobs join at the end
        sent = wall(job.submitted_at)
        if _endpoint(job) != endpoint or sent is None or not start <= sent <= end:
            continue
        if wanted_id is not None and job.request_id != wanted_id:
            continue
        code = job.outcome.status_code if job.state is JobState.COMPLETED and job.outcome else None
        if status is not None and _status_class(code) != status:
            continue
        matching.append(job)
    page = matching[offset : offset + limit]
    more = offset + limit < len(matching)
    body = {
        "items": [_item(job, wall, payloads) for job in page],
        "next_cursor": str(offset + limit) if more else None,
        "has_more": more,
    }
    return JSONResponse(body)
