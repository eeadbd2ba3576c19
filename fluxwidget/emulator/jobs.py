"""The time model: a FIFO queue served by a fixed number of workers, as asyncio tasks.

A job waits ``IN_QUEUE`` (its 0-based position moves as earlier jobs start), runs
``IN_PROGRESS`` for ``num_inference_steps × num_images × seconds_per_step`` seconds while it
writes one log line per step (``"step 12/28"``), and ends ``COMPLETED`` — also when it failed,
was cancelled or timed out: there is no FAILED state, the outcome says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from fluxwidget.schema import FluxLoraInput

logger = logging.getLogger(__name__)

CANCELLED_MESSAGE = "Request was cancelled"


class JobState(str, Enum):
    """The three states fal reports."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass
class Outcome:
    """What the result call answers for a finished job."""

    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None


@dataclass(eq=False)
class Job:
    """One accepted request."""

    request_id: str
    payload: Any
    """The submitted JSON body, as received."""
    input: FluxLoraInput | None
    """The validated input, or None when the payload is invalid."""
    problems: list[dict[str, Any]] | None
    """fal's 422 ``detail`` list for an invalid payload."""
    base_url: str
    seed: int
    """The input's seed, or the random one drawn at submit."""
    subpath: str = ""
    source: bytes | None = field(default=None, repr=False)
    """The input image's bytes (image-to-image, inpainting) when the emulator holds it."""
    mask: bytes | None = field(default=None, repr=False)
    """The mask's bytes (inpainting) when the emulator holds it."""
    state: JobState = JobState.IN_QUEUE
    logs: list[dict[str, Any]] = field(default_factory=list)
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    completed_at: float | None = None
    inference_time: float | None = None
    outcome: Outcome | None = None
    cancel_requested: bool = False
    expired: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    timeout_handle: asyncio.TimerHandle | None = field(default=None, repr=False)


Producer = Callable[[Job, float], Awaitable[Outcome]]
"""Builds the successful outcome (renders the images) once the steps are done."""


def log_entry(message: str, level: str = "INFO") -> dict[str, Any]:
    """A log line as fal reports it."""
    stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return {"message": message, "level": level, "source": "USER", "timestamp": stamp}


class Scheduler:
    """Owns the jobs, the queue and the workers; lives on the server's event loop."""

    def __init__(
        self,
        *,
        workers: int,
        seconds_per_step: float,
        result_ttl: float,
        produce: Producer,
        run_jitter: float = 0.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.seconds_per_step = seconds_per_step
        self.result_ttl = result_ttl
        self._produce = produce
        self.run_jitter = run_jitter
        """Up to this many seconds (uniformly drawn) are added to each valid job's run time."""
        self.jobs: dict[str, Job] = {}
        self.queue: deque[Job] = deque()
        self.running: set[Job] = set()
        self._pulse: asyncio.Event | None = None
        self.closed = False

    # --- changes ------------------------------------------------------------------------

    def _event(self) -> asyncio.Event:
        if self._pulse is None:
            self._pulse = asyncio.Event()
        return self._pulse

    def pulse(self) -> asyncio.Event:
        """The event set at the next change: take it *before* reading the state."""
        return self._event()

    def changed(self) -> None:
        """Wake everyone waiting for a change (status streams)."""
        event = self._event()
        self._pulse = asyncio.Event()
        event.set()

    @staticmethod
    async def wait(pulse: asyncio.Event, timeout: float) -> bool:
        """Wait until ``pulse`` is set (something changed); False on timeout."""
        try:
            await asyncio.wait_for(pulse.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # --- queries --------------------------------------------------------------------------

    def position(self, job: Job) -> int | None:
        """The 0-based queue position of a queued job."""
        if job.state is not JobState.IN_QUEUE:
            return None
        for index, queued in enumerate(self.queue):
            if queued is job:
                return index
        return None

    def is_expired(self, job: Job) -> bool:
        """True when the result is no longer kept."""
        if job.expired:
            return True
        if job.completed_at is None:
            return False
        return time.monotonic() - job.completed_at > self.result_ttl

    # --- commands -------------------------------------------------------------------------

    def submit(self, job: Job, start_timeout: float | None = None) -> None:
        """Accept a job at the end of the queue."""
        self.jobs[job.request_id] = job
        self.queue.append(job)
        if start_timeout is not None:
            loop = asyncio.get_running_loop()
            job.timeout_handle = loop.call_later(start_timeout, self._start_timeout, job)
        self._dispatch()
        self.changed()

    def cancel(self, job: Job) -> str:
        """Cancel a job; the status string of fal's cancel reply."""
        if job.state is JobState.COMPLETED:
            return "ALREADY_COMPLETED"
        if job.state is JobState.IN_QUEUE:
            self.queue.remove(job)
            self._finish(job, _cancelled())
            self._dispatch()
        else:
            job.cancel_requested = True  # the worker stops at its next step
        return "CANCELLATION_REQUESTED"

    def expire(self, job: Job) -> None:
        """Make the job's result expire now."""
        job.expired = True

    async def close(self) -> None:
        """Stop every running job (server shutdown)."""
        self.closed = True
        tasks = [job.task for job in self.running if job.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in self.jobs.values():
            if job.timeout_handle is not None:
                job.timeout_handle.cancel()
        self.changed()

    # --- the workers ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self.queue and len(self.running) < self.workers and not self.closed:
            job = self.queue.popleft()
            if job.timeout_handle is not None:
                job.timeout_handle.cancel()
                job.timeout_handle = None
            job.state = JobState.IN_PROGRESS
            job.started_at = time.monotonic()
            self.running.add(job)
            job.task = asyncio.get_running_loop().create_task(self._run(job))
        self.changed()

    def _start_timeout(self, job: Job) -> None:
        job.timeout_handle = None
        if job.state is not JobState.IN_QUEUE:
            return
        self.queue.remove(job)
        outcome = Outcome(
            504,
            {"detail": "Request timed out before it started"},
            headers={"X-Fal-Request-Timeout-Type": "user"},
            error="Request timed out",
            error_type="request_timeout",
        )
        self._finish(job, outcome)
        self.changed()

    def _log(self, job: Job, message: str, level: str = "INFO") -> None:
        job.logs.append(log_entry(message, level))
        self.changed()

    async def _run(self, job: Job) -> None:
        try:
            outcome = await self._work(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("emulator job %s failed", job.request_id)
            self._log(job, f"Emulator: internal error: {exc}", "ERROR")
            outcome = Outcome(
                500,
                {"detail": f"Internal error in the emulator: {exc}"},
                error="Internal error",
                error_type="internal_error",
            )
        self._finish(job, outcome)
        self.running.discard(job)
        self._dispatch()

    async def _work(self, job: Job) -> Outcome:
        data = job.input
        if data is None:
            await asyncio.sleep(self.seconds_per_step)
            problems = job.problems or []
            fields = ", ".join(".".join(map(str, p["loc"][1:])) or "body" for p in problems)
            self._log(job, f"Invalid input: {fields}", "ERROR")
            return Outcome(
                422,
                {"detail": problems},
                error=f"Unprocessable input: {fields}",
                error_type="validation_error",
            )
        for lora in data.loras:
            self._log(job, f"Emulator: loading LoRA {lora.path} (scale {lora.scale:g})")
            await asyncio.sleep(self.seconds_per_step)
            if job.cancel_requested:
                return _cancelled()
        began = time.monotonic()
        total = data.num_inference_steps
        for step in range(1, total + 1):
            await asyncio.sleep(self.seconds_per_step * data.num_images)
            if job.cancel_requested:
                self._log(job, f"Cancelled at step {step}/{total}", "WARN")
                return _cancelled()
            self._log(job, f"step {step}/{total}")
        if self.run_jitter > 0:
            await asyncio.sleep(random.uniform(0, self.run_jitter))
        job.inference_time = time.monotonic() - began
        return await self._produce(job, job.inference_time)

    def _finish(self, job: Job, outcome: Outcome) -> None:
        job.outcome = outcome
        job.state = JobState.COMPLETED
        job.completed_at = time.monotonic()
        self.changed()


def _cancelled() -> Outcome:
    return Outcome(
        400,
        {"detail": CANCELLED_MESSAGE},
        error=CANCELLED_MESSAGE,
        error_type="request_cancelled",
    )
