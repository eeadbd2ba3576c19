"""The JSON bodies of fal's queue protocol: submit reply, status, 422 details."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from fluxwidget.emulator.jobs import Job, JobState
from fluxwidget.schema import ENDPOINT_ID


def request_urls(base_url: str, request_id: str) -> dict[str, str]:
    """response/status/cancel URLs: owner/app only, never the submit subpath."""
    root = f"{base_url.rstrip('/')}/{ENDPOINT_ID}/requests/{request_id}"
    return {
        "response_url": root,
        "status_url": f"{root}/status",
        "cancel_url": f"{root}/cancel",
    }


def submit_body(job: Job, position: int) -> dict[str, Any]:
    """The reply to an accepted submit."""
    return {
        "status": JobState.IN_QUEUE.value,
        "request_id": job.request_id,
        "queue_position": position,
        **request_urls(job.base_url, job.request_id),
        "logs": None,
        "metrics": {},
    }


def status_body(job: Job, position: int | None, *, logs: bool) -> dict[str, Any]:
    """The status of a job, as the status call and the status stream report it."""
    body: dict[str, Any] = {
        "status": job.state.value,
        "request_id": job.request_id,
        **request_urls(job.base_url, job.request_id),
    }
    if job.state is JobState.IN_QUEUE:
        body["queue_position"] = position if position is not None else 0
        body["logs"] = None
        body["metrics"] = {}
    elif job.state is JobState.IN_PROGRESS:
        body["logs"] = list(job.logs) if logs else None
        body["metrics"] = {}
    else:
        body["logs"] = list(job.logs) if logs else None
        body["metrics"] = {"inference_time": job.inference_time}
        outcome = job.outcome
        if outcome is not None and outcome.error is not None:
            body["error"] = outcome.error
            body["error_type"] = outcome.error_type
    return body


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as fal's 422 ``detail`` list (``loc`` starts with ``"body"``)."""
    detail: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "loc": ["body", *err["loc"]],
            "msg": err["msg"],
            "type": err["type"],
        }
        if "ctx" in err:
            item["ctx"] = {key: _json_safe(value) for key, value in err["ctx"].items()}
        detail.append(item)
    return detail


def body_problem(message: str, kind: str) -> list[dict[str, Any]]:
    """A 422 detail for a body that is not a JSON object at all."""
    return [{"loc": ["body"], "msg": message, "type": kind}]
