"""Typed status updates of a queued request: queued, in progress, completed.

There is no FAILED state in fal's protocol: a failed job reports COMPLETED and its error comes
from the result call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Completed",
    "InProgress",
    "LogEntry",
    "Queued",
    "StatusUpdate",
    "describe",
    "parse_status",
    "queued_text",
    "running_text",
    "step_progress",
]

_STEP = re.compile(r"(\d+)\s*/\s*(\d+)")


@dataclass(frozen=True)
class LogEntry:
    """One log line of a running job."""

    message: str
    level: str = "INFO"
    timestamp: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> LogEntry:
        if isinstance(data, str):
            return cls(message=data)
        return cls(
            message=str(data.get("message", "")),
            level=str(data.get("level") or "INFO"),
            timestamp=data.get("timestamp"),
        )


def _logs(data: dict[str, Any]) -> tuple[LogEntry, ...]:
    return tuple(LogEntry.from_json(item) for item in (data.get("logs") or []))


def step_progress(logs: tuple[LogEntry, ...]) -> tuple[int, int] | None:
    """The last "step N/M" (or "N/M") seen in the logs, as (N, M)."""
    for entry in reversed(logs):
        match = _STEP.search(entry.message)
        if match and int(match.group(2)) > 0:
            return int(match.group(1)), int(match.group(2))
    return None


@dataclass(frozen=True)
class Queued:
    """IN_QUEUE: waiting; `position` is 0 when next in line."""

    request_id: str
    position: int | None = None


@dataclass(frozen=True)
class InProgress:
    """IN_PROGRESS: running; `logs` are the job's log lines so far."""

    request_id: str
    logs: tuple[LogEntry, ...] = field(default_factory=tuple)

    @property
    def step(self) -> tuple[int, int] | None:
        """(current step, total steps) from the logs, when they say."""
        return step_progress(self.logs)


@dataclass(frozen=True)
class Completed:
    """COMPLETED: finished; the result (or its error) comes from the result call."""

    request_id: str
    logs: tuple[LogEntry, ...] = field(default_factory=tuple)
    inference_time: float | None = None
    error: str | None = None
    error_type: str | None = None


StatusUpdate = Queued | InProgress | Completed


def parse_status(data: dict[str, Any], request_id: str = "") -> StatusUpdate:
    """Turn a status JSON body (or one SSE event) into a typed update."""
    rid = str(data.get("request_id") or request_id)
    status = data.get("status")
    if status == "IN_QUEUE":
        position = data.get("queue_position")
        return Queued(rid, int(position) if position is not None else None)
    if status == "IN_PROGRESS":
        return InProgress(rid, _logs(data))
    if status == "COMPLETED":
        metrics = data.get("metrics") or {}
        return Completed(
            rid,
            _logs(data),
            inference_time=metrics.get("inference_time"),
            error=data.get("error"),
            error_type=data.get("error_type"),
        )
    raise ValueError(f"unknown status {status!r} from the server")


def queued_text(position: int | None) -> str:
    """``Queued — position 3``; position 0 is next in line."""
    if position is None:
        return "Queued"
    if position <= 0:
        return "Queued — next in line"
    return f"Queued — position {position}"


def running_text(elapsed: float | None = None, step: tuple[int, int] | None = None) -> str:
    """``Running 4.2 s — step 12/28`` (each part only when known)."""
    text = "Running" + (f" {elapsed:.1f} s" if elapsed is not None else "")
    if step is not None:
        text += f" — step {step[0]}/{step[1]}"
    return text


def describe(update: StatusUpdate, elapsed: float | None = None) -> str:
    """A one-line, plain-text account of an update: "Queued — position 3", "Running 4.2 s —
    step 12/28", "Completed (inference 6.1 s)". Callers escape it before showing it as HTML."""
    if isinstance(update, Queued):
        return queued_text(update.position)
    if isinstance(update, InProgress):
        return running_text(elapsed, update.step)
    text = "Completed"
    if update.inference_time is not None:
        text += f" (inference {update.inference_time:.1f} s)"
    if update.error:
        text += f" with error: {update.error}"
    return text
