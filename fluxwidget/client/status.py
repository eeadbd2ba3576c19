"""Typed status updates of a queued request: queued, in progress, completed (and waiting, when
the server asks the client to slow down).

There is no FAILED state in fal's protocol: a failed job reports COMPLETED and its error comes
from the result call.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError

__all__ = [
    "Completed",
    "InProgress",
    "JobStatus",
    "LogEntry",
    "Queued",
    "StatusUpdate",
    "Waiting",
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
    def from_json(cls, data: Any, call: str = "status") -> LogEntry:
        """A log entry from fal's JSON (an object, or a bare string); ProtocolError else."""
        if isinstance(data, str):
            return cls(message=data)
        if not isinstance(data, dict):
            raise ProtocolError(call, f"a log entry is a {_kind(data)}, not an object")
        message, level, timestamp = (
            data.get("message", ""),
            data.get("level"),
            data.get("timestamp"),
        )
        return cls(
            message=message if isinstance(message, str) else _json_text(message),
            level=level if isinstance(level, str) and level else "INFO",
            timestamp=timestamp if isinstance(timestamp, str) else None,
        )


def _kind(value: Any) -> str:
    """A JSON value's kind, for error messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _json_text(value: Any) -> str:
    return "" if value is None else str(value)


def _logs(data: dict[str, Any], call: str) -> tuple[LogEntry, ...]:
    logs = data.get("logs")
    if logs is None:
        return ()
    if not isinstance(logs, list):
        raise ProtocolError(call, f"'logs' is a {_kind(logs)}, not a list")
    return tuple(LogEntry.from_json(item, call) for item in logs)


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


@dataclass(frozen=True)
class Waiting:
    """The server asked the client to wait (429 with ``Retry-After``) before asking again;
    the next status call comes after `seconds`. Not a state of the job."""

    request_id: str
    seconds: float
    status_code: int = 429


JobStatus = Queued | InProgress | Completed
"""What the status call reports: a state of the job."""
StatusUpdate = JobStatus | Waiting


_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")


def _position(value: Any, call: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProtocolError(call, f"'queue_position' is a {_kind(value)}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ProtocolError(call, "'queue_position' is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ProtocolError(call, "'queue_position' is not a whole number ≥ 0")
    return int(number)


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else value if isinstance(value, str) else str(value)


def parse_status(data: Any, request_id: str = "", call: str = "status") -> JobStatus:
    """Turn a status JSON body (or one SSE event) into a typed update; anything else than the
    protocol's shape raises `ProtocolError` naming `call` and what was wrong."""
    if not isinstance(data, dict):
        raise ProtocolError(call, f"the reply is a {_kind(data)}, not an object")
    rid = data.get("request_id")
    rid = rid if isinstance(rid, str) and rid else request_id
    status = data.get("status")
    if status == "IN_QUEUE":
        return Queued(rid, _position(data.get("queue_position"), call))
    if status == "IN_PROGRESS":
        return InProgress(rid, _logs(data, call))
    if status == "COMPLETED":
        metrics = data.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        inference: Any = metrics.get("inference_time")
        valid = isinstance(inference, (int, float)) and not isinstance(inference, bool)
        inference_time = float(inference) if valid else None
        return Completed(
            rid,
            _logs(data, call),
            inference_time=inference_time
            if inference_time is not None and math.isfinite(inference_time)
            else None,
            error=_optional_text(data, "error"),
            error_type=_optional_text(data, "error_type"),
        )
    if status is None:
        raise ProtocolError(call, "the reply has no 'status'")
    if not isinstance(status, str):
        raise ProtocolError(call, f"'status' is a {_kind(status)}, not a string")
    shown = status if len(status) <= 40 else status[:39] + "…"
    raise ProtocolError(call, f"unknown status {shown!r}; expected one of {', '.join(_STATUSES)}")


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
    if isinstance(update, Waiting):
        return f"Waiting {update.seconds:.0f} s — the server asked to slow down"
    text = "Completed"
    if update.inference_time is not None:
        text += f" (inference {update.inference_time:.1f} s)"
    if update.error:
        text += f" with error: {update.error}"
    return text
