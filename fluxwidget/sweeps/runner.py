"""Run a sweep plan on the job pipeline: a cap on cells in flight, resume, stops and storms.

`SweepRunner` owns one run folder. Every cell is a job of the pipeline (its id is the cell id),
so every image is saved as it arrives with its record embedded, and the manifest holds one row per
cell. Running the same plan on the same folder again resumes: done cells are skipped, submitted
ones are collected by request id (never submitted twice), the rest are submitted. A different
plan on an existing folder is refused (`SweepFolderMismatch`) unless ``force_new``.

Storms (`StormPolicy`): a submit refused for the account (401, 402, 403) stops further submits; a
429 on submit (after the client's own retries) pauses every submit of the run for the server's
Retry-After — one shared pause, the refused cell goes back in line — and stops the run when the
server asks for longer than `StormPolicy.max_rate_limit_wait` or keeps refusing; consecutive 5xx
on submit pause briefly, then stop. Cells already submitted are always collected, and the cells
not sent resume on the next run of the same folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client.protocols import JobClient
from ..client.status import StatusUpdate
from ..errors import (
    AuthenticationError,
    FalError,
    PaymentRequiredError,
    RateLimitError,
    ServerError,
    SweepFolderMismatch,
    ValidationFailedError,
)
from ..pipeline import JobPipeline
from ..schema import FluxLoraOutput
from ..store.lost import find_lost_submits
from ..store.records import ACTIVE_STATES, JobRecord, SavedImage
from ..store.runs import Run
from .axes import SweepPlan
from .cost import DEFAULT_PRICE, CostEstimate, UnitPrice, estimate_cost

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CellListener",
    "ImageListener",
    "StormPolicy",
    "SweepProgress",
    "SweepRunner",
]

log = logging.getLogger("fluxwidget.sweep")

DEFAULT_CONCURRENCY = 8
"""Cells submitted and not yet done on the server at once (a cell whose result is in hand only
downloads). fal runs 2–40 of an account's jobs at a time, so more only costs status requests."""

CellListener = Callable[[JobRecord, StatusUpdate | None], None]
ImageListener = Callable[[JobRecord, SavedImage, bytes], Awaitable[None] | None]


@dataclass(frozen=True)
class StormPolicy:
    """How a sweep meets a server that refuses submits in bulk (seconds and counts)."""

    max_rate_limit_wait: float = 60.0
    """The longest Retry-After the run pauses for; a longer one stops the run at once."""
    default_rate_limit_wait: float = 10.0
    """The pause after a 429 whose reply did not say how long to wait."""
    max_rate_limit_pauses: int = 3
    """Pauses in a row (no submit accepted in between) before the run stops. After each pause
    one cell's submit goes first; the others follow once it is accepted."""
    max_server_errors: int = 3
    """5xx replies to submits in a row (no submit accepted in between) before the run stops;
    the replies to submits sent together (before the last pause) count once."""
    server_error_pause: float = 5.0
    """The pause of every submit after a 5xx reply to one."""

    def __post_init__(self) -> None:
        if self.max_rate_limit_pauses < 1 or self.max_server_errors < 1:
            raise ValueError("max_rate_limit_pauses and max_server_errors must be 1 or more")
        if min(self.max_rate_limit_wait, self.default_rate_limit_wait) < 0:
            raise ValueError("rate-limit waits must not be negative")
        if self.server_error_pause < 0:
            raise ValueError("server_error_pause must not be negative")


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands: counts by state, elapsed time and an estimate of what is left."""

    total: int
    done: int
    failed: int
    cancelled: int
    in_flight: int
    waiting: int
    unknown: int
    elapsed: float
    eta: float | None

    @property
    def finished(self) -> int:
        """Cells that will not change any more (done, failed or cancelled)."""
        return self.done + self.failed + self.cancelled + self.unknown

    def describe(self) -> str:
        """``5/9 done · 2 running · 1 failed · 12 s elapsed · about 8 s left``."""
        parts = [f"{self.done}/{self.total} done"]
        if self.in_flight:
            parts.append(f"{self.in_flight} in flight")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        if self.unknown:
            parts.append(f"{self.unknown} unknown (submit in flight at a crash)")
        parts.append(f"{self.elapsed:.0f} s elapsed")
        if self.eta is not None and self.finished < self.total:
            parts.append(f"about {self.eta:.0f} s left")
        return " · ".join(parts)


_COLLECTED = "Cells already submitted are still collected."


def definition_key(plan: SweepPlan) -> str:
    """What makes two sweeps the same sweep: the base input, the axes, the modes and any seed
    the user gave — not seeds drawn at random (a resumed sweep reuses the stored ones)."""
    explicit_seeds = plan.base.seed is not None or any(
        axis is not None and axis.field == "seed" for axis in plan.axes
    )
    request = {
        "base": plan.base.to_payload(),
        "axes": [axis.to_json() if axis is not None else None for axis in plan.axes],
        "mode": plan.mode,
        "seed_mode": plan.seed_mode,
        "seed": plan.seed if explicit_seeds else None,
    }
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stops_everything(exc: BaseException, plan: SweepPlan) -> str | None:
    """Why an error means no further cell can succeed (the account, the key, or an input that
    every cell shares), else None."""
    if isinstance(exc, PaymentRequiredError):
        return f"the account must pay before fal runs more jobs — {exc}"
    if isinstance(exc, AuthenticationError):
        return f"the server refused the account or key ({exc.status_code}): {exc}"
    if isinstance(exc, ValidationFailedError):
        swept = {axis.field.split("[")[0].split(".")[0] for axis in plan.axes if axis is not None}
        swept |= {"prompt"} if "prompt_sr" in swept else set()
        fields = {str(getattr(p, "field", "")).split("[")[0].split(".")[0] for p in exc.problems}
        if not fields or not fields & swept:
            return f"the server refused an input that every cell shares: {exc}"
    return None


class SweepRunner:
    """Runs the cells of a plan through the pipeline into one run folder."""

    def __init__(
        self,
        client: JobClient,
        plan: SweepPlan,
        *,
        out: str | Path | None = None,
        root: str | Path | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        price: UnitPrice = DEFAULT_PRICE,
        force_new: bool = False,
        cell_timeout: float | None = None,
        resubmit_unknown: bool = False,
        step_logs: bool = True,
        storms: StormPolicy | None = None,
    ) -> None:
        """Cells whose submit reply was lost (``unknown``) are looked for in fal's request
        listing when the run starts (`fluxwidget.store.lost`): found, they are collected; absent
        from a complete listing, `resubmit_unknown` sends them again; when the listing is not
        available they are left alone.
        `step_logs=False` leaves out the step counts of running cells ("running 12/28"): fewer
        events per cell, for a display that shows only counts of cells (the CLI's bar).
        `storms` says how long to pause and when to stop when the server refuses submits in
        bulk (429, 5xx); see `StormPolicy`."""
        if concurrency < 1:
            raise ValueError(f"concurrency: {concurrency} is not allowed; use 1 or more")
        self.client = client
        self.plan = plan
        self.concurrency = concurrency
        self.cell_timeout = cell_timeout
        self.storms = storms or StormPolicy()
        self.run = self._open_folder(out, root, force_new)
        self.pipeline = JobPipeline(
            client,
            self.run,
            on_change=self._cell_changed,
            on_image=self._image_saved,
            on_result=self._server_done,
            step_logs=step_logs,
        )
        self.records: dict[str, JobRecord] = {}
        for cell in self.plan.cells:
            record = self.run.jobs.get(cell.id)
            if record is None:
                record = self.pipeline.plan(
                    cell.input, job_id=cell.id, axes=cell.axis_values, coords=list(cell.coords)
                )
            elif record.request_id is None and (
                record.state == "cancelled" or (record.state == "error" and not record.final)
            ):
                record.state = "pending"  # never accepted by the server: resuming sends it
            self.records[cell.id] = record
        self.run.save()  # every cell is in the manifest before the first submit
        self.resubmit_unknown = resubmit_unknown
        sent = ("pending", "unknown") if resubmit_unknown else ("pending",)
        self.estimate: CostEstimate = estimate_cost(
            [c.input for c in self.plan.cells if self.records[c.id].state in sent], price
        )
        self.stopped: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.max_in_flight = 0
        self._in_flight = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._releases: dict[str, Callable[[], None]] = {}
        self._cell_listeners: list[CellListener] = []
        self._image_listeners: list[ImageListener] = []
        self._durations: list[float] = []
        self._queue: deque[JobRecord] = deque()
        self._wake: asyncio.Event | None = None
        self._attempts: dict[str, float] = {}  # cells whose submit is on its way: its start
        self._probe: str | None = None  # the cell whose submit tests the water after a pause
        self._resume_at = 0.0  # monotonic time before which no cell is submitted
        self._paused_at = float("-inf")  # when the current (or last) pause began
        self._pause_reason = ""
        self._rate_limit_pauses = 0  # pauses in a row without an accepted submit
        self._server_errors = 0  # 5xx replies to submits in a row
        self.pauses = 0
        """Shared pauses of the submits in this runner's life (rate limits, server errors)."""

    def __repr__(self) -> str:
        return f"SweepRunner({self.run.path}, {self.progress().describe()})"

    def _open_folder(self, out: str | Path | None, root: str | Path | None, force: bool) -> Run:
        key = definition_key(self.plan)
        definition = {"sweep": self.plan.to_json(), "fingerprint": key}
        if out is None:
            return Run.create(root, kind="sweep", definition=definition, claim=True)
        folder = Path(out)
        if not Run.is_run_folder(folder):
            return Run.create(kind="sweep", definition=definition, path=folder, claim=True)
        existing = Run.open(folder, claim=True)
        stored = existing.definition or {}
        if existing.kind == "sweep" and stored.get("fingerprint") == key:
            # the same request: run the stored plan, whose seeds were drawn the first time
            self.plan = SweepPlan.from_json(stored["sweep"])
            return existing
        existing.release()
        if not force:
            raise SweepFolderMismatch(
                f"{folder} holds a different {existing.kind} (its definition differs from this "
                "sweep's): use another folder, or force_new=True (--force-new) to start a new "
                "run in a fresh folder next to it"
            )
        return Run.create(folder.parent, kind="sweep", definition=definition, claim=True)

    # --- listening --------------------------------------------------------------------------

    def subscribe(
        self, on_cell: CellListener | None = None, on_image: ImageListener | None = None
    ) -> None:
        """Hear every cell change and every saved image (both run on the event loop)."""
        if on_cell is not None:
            self._cell_listeners.append(on_cell)
        if on_image is not None:
            self._image_listeners.append(on_image)

    def _cell_changed(self, record: JobRecord, update: StatusUpdate | None) -> None:
        if record.request_id is not None and self._attempts.pop(record.job_id, None) is not None:
            self._rate_limit_pauses = self._server_errors = 0  # a submit was accepted
            self._wake_up()  # the others may go
        for listener in self._cell_listeners:
            try:
                listener(record, update)
            except Exception:  # a display must never stop a paid sweep
                log.exception("sweep listener failed")

    async def _image_saved(self, record: JobRecord, image: SavedImage, data: bytes) -> None:
        for listener in self._image_listeners:
            try:
                outcome = listener(record, image, data)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("sweep image listener failed")

    # --- running ----------------------------------------------------------------------------

    def progress(self) -> SweepProgress:
        """Counts by state, elapsed time and a rough estimate of the time left."""
        states = [record.state for record in self.records.values()]
        done = states.count("done")
        failed = states.count("error")
        cancelled = states.count("cancelled")
        unknown = states.count("unknown")
        in_flight = sum(state in ACTIVE_STATES for state in states)
        waiting = states.count("pending")
        end = self.finished_at or time.monotonic()
        elapsed = end - self.started_at if self.started_at is not None else 0.0
        eta = None
        left = waiting + in_flight
        if self._durations and left:
            mean = sum(self._durations) / len(self._durations)
            eta = mean * left / max(1, min(self.concurrency, left))
        return SweepProgress(
            len(states), done, failed, cancelled, in_flight, waiting, unknown, elapsed, eta
        )

    @property
    def paused(self) -> str | None:
        """``Paused: rate limited by the server — resuming in 30 s`` while submits are paused
        (cells in flight go on), else None."""
        left = self._resume_at - time.monotonic()
        if self.stopped is not None or left <= 0:
            return None
        return f"Paused: {self._pause_reason} — resuming in {max(1, round(left))} s"

    @property
    def notice(self) -> str | None:
        """What the run's status line should lead with: why it stopped, or why it is paused."""
        return self.stopped or self.paused

    async def run_all(self) -> None:
        """Run every cell that is not done: collect the submitted ones, submit the rest, at most
        `concurrency` in flight. Returns when every cell has ended (done, failed, cancelled, or
        not sent because the run stopped)."""
        self.started_at = time.monotonic()
        self.finished_at = None
        self.run.claim()  # held from the folder's opening; again after an earlier run_all
        slots = asyncio.Semaphore(self.concurrency)
        wake = self._wake = asyncio.Event()
        try:
            await self._find_lost_submits()  # before the queue: found cells are collected
            collect = [r for r in self.records.values() if r.collectable]
            submit = [r for r in self.records.values() if r.state == "pending"]
            self._queue = deque(collect + submit)
            while self.stopped is None and (self._queue or self._tasks):
                if not self._queue:  # a refused cell may come back in line: wait for news
                    wake.clear()
                    await wake.wait()
                    continue
                await slots.acquire()
                wait = self._resume_at - time.monotonic()
                if self.stopped is None and self._queue and wait > 0:
                    record = self._queue[0]
                    if record.request_id is None:  # a cell to submit: wait out the pause
                        slots.release()
                        self._cell_changed(record, None)  # the status line shows the pause
                        wake.clear()
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(wake.wait(), wait)
                        continue
                if self._probing() and self._queue and self._queue[0].request_id is None:
                    slots.release()  # after a pause one submit tests the water: wait for it
                    wake.clear()
                    await wake.wait()
                    continue
                if self.stopped is not None or not self._queue:
                    slots.release()
                    continue
                record = self._queue.popleft()
                if not (record.state == "pending" or record.collectable):
                    slots.release()  # ended meanwhile (e.g. cancelled)
                    continue
                if record.request_id is None and self._storming():
                    self._probe = record.job_id
                self._start(record, slots)
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        finally:
            self._wake = None
            self.finished_at = time.monotonic()
            try:
                await self.run.flush()
            finally:
                self.run.release()  # the folder is free for the next run (a resume, a retry)

    async def _find_lost_submits(self) -> None:
        """Look for the unknown cells in fal's request listing: found ones are collected,
        absent ones are sent again only with `resubmit_unknown`."""
        unknown = [r for r in self.records.values() if r.state == "unknown"]
        if not unknown:
            return
        check = await find_lost_submits(self.client, self.run, unknown)
        for record in unknown:
            if record.job_id in check.absent and self.resubmit_unknown:
                record.state, record.error = "pending", None
            self._cell_changed(record, None)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _storming(self) -> bool:
        """Submits were refused (429, 5xx) and none accepted since."""
        return bool(self._rate_limit_pauses or self._server_errors)

    def _probing(self) -> bool:
        """A submit sent after a pause has not been answered yet: the others wait for it, so
        a storm that goes on costs one cell's submit per pause, not one per slot."""
        return self._probe is not None and self._probe in self._attempts

    def _start(self, record: JobRecord, slots: asyncio.Semaphore) -> None:
        """Run a cell; its slot frees when the server is done with it (its result is in hand,
        the downloads need no slot) or when it ends, whichever comes first."""
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight -= 1
                slots.release()

        self._releases[record.job_id] = release
        if record.request_id is None:
            self._attempts[record.job_id] = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._run_cell(record))
        self._tasks[record.job_id] = task

        def finished(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(record.job_id, None)
            self._releases.pop(record.job_id, None)
            self._attempts.pop(record.job_id, None)
            release()
            self._wake_up()

        task.add_done_callback(finished)

    def _server_done(self, record: JobRecord, _output: FluxLoraOutput | None) -> None:
        release = self._releases.get(record.job_id)
        if release is not None:
            release()

    async def _run_cell(self, record: JobRecord) -> None:
        started = time.monotonic()
        try:
            await self.pipeline.run(record, timeout=self.cell_timeout)
        except asyncio.CancelledError:
            return  # the pipeline cancelled the job on the server and marked the cell
        except FalError as exc:
            started_at = self._attempts.pop(record.job_id, None)
            refused = record.request_id is None and not exc.maybe_accepted
            not_sent = refused and isinstance(exc, (AuthenticationError, RateLimitError))
            if not_sent:
                self._back_in_line(record)  # refused for the account, not the cell: not sent
            if refused and isinstance(exc, RateLimitError):
                self._rate_limited(exc, started_at)
            elif refused and isinstance(exc, ServerError):
                self._server_failed(exc, started_at)
            else:
                reason = _stops_everything(exc, self.plan)
                if reason is not None and self.stopped is None:
                    self.stop(f"Stopped: {reason}. {_COLLECTED}")
            if not_sent:  # the journal, read on resume, says so over the pipeline's "failed"
                await self.run.log("not_sent", record)
            return
        except Exception as exc:  # recorded in the cell by the pipeline; the sweep goes on
            log.info("cell %s failed: %s", record.job_id, type(exc).__name__)
            return
        self._durations.append(time.monotonic() - started)

    # --- storms -----------------------------------------------------------------------------

    def _back_in_line(self, record: JobRecord) -> None:
        """A submit the server refused for the whole account: the cell was not sent, and is
        sent after the pause (or on the next run, when this one stops)."""
        record.error, record.error_type, record.final = None, None, False
        if self.stopped is not None:  # the run stopped meanwhile: sent on the next run
            record.state, record.detail = "cancelled", "Not submitted"
        else:
            record.state = "pending"
            record.detail = "Not sent yet (the server refused the submit for now)"
            self._queue.appendleft(record)
        self.run.changed()
        self._cell_changed(record, None)
        self._wake_up()

    def _pause(self, seconds: float, reason: str) -> None:
        """Hold every submit of the run for `seconds` (one shared pause, never shortened)."""
        now = time.monotonic()
        if now >= self._resume_at:
            self._paused_at = now
            self.pauses += 1
        self._resume_at = max(self._resume_at, now + seconds)
        self._pause_reason = reason
        log.info("sweep paused for %.1f s: %s", seconds, reason)
        self._wake_up()

    def _rate_limited(self, exc: RateLimitError, started_at: float | None) -> None:
        policy = self.storms
        if self.stopped is not None:
            return
        wait = exc.retry_after if exc.retry_after is not None else policy.default_rate_limit_wait
        if wait > policy.max_rate_limit_wait:
            self.stop(
                f"Stopped: rate limited by the server, which asks to wait {wait:.0f} s (more "
                f"than the {policy.max_rate_limit_wait:.0f} s this sweep waits). {_COLLECTED} "
                "Run the sweep again on the same folder later to send the rest"
            )
            return
        same_storm = started_at is not None and started_at < self._paused_at
        if not same_storm:  # a submit sent after the last pause was refused too
            self._rate_limit_pauses += 1
        if self._rate_limit_pauses > policy.max_rate_limit_pauses:
            self.stop(
                f"Stopped: the server kept rate limiting submits ({policy.max_rate_limit_pauses}"
                f" pauses in a row). {_COLLECTED} Run the sweep again on the same folder later "
                "to send the rest"
            )
            return
        self._pause(wait, "rate limited by the server")

    def _server_failed(self, exc: ServerError, started_at: float | None) -> None:
        policy = self.storms
        if self.stopped is not None:
            return
        if started_at is None or started_at >= self._paused_at:  # not sent with the last ones
            self._server_errors += 1
        if self._server_errors >= policy.max_server_errors:
            self.stop(
                f"Stopped: the server answered submits with an error {self._server_errors} "
                f"times in a row (last: {exc}). {_COLLECTED} Run the sweep again on the same "
                "folder later to send the rest (retry_failed sends the failed cells too)"
            )
            return
        self._pause(policy.server_error_pause, f"server error ({exc.status_code})")

    def stop(self, reason: str = "Stopped: no more cells are submitted.") -> None:
        """Submit no more cells; cells in flight are still collected ("cancel remaining")."""
        self.stopped = reason
        self._resume_at = 0.0
        for record in self.records.values():
            if record.state == "pending":
                record.state = "cancelled"
                record.detail = "Not submitted"
                self._cell_changed(record, None)
        self.run.changed()
        self._wake_up()

    def cancel_all(self) -> None:
        """Stop submitting and cancel every cell in flight (on the server too)."""
        self.stop("Cancelled: cells in flight were cancelled on the server.")
        for task in list(self._tasks.values()):
            task.cancel()

    async def retry_failed(self) -> None:
        """Run again the cells that failed or were not submitted: collectable ones are collected
        by request id; the others are submitted afresh."""
        self.stopped = None
        self._rate_limit_pauses = self._server_errors = 0
        for record in self.records.values():
            if record.state == "cancelled" and record.request_id is None:
                record.state = "pending"
            elif record.state == "error" and (record.final or record.request_id is None):
                record.state, record.request_id, record.error = "pending", None, None
                record.final = False
                record.images, record.image_urls = [], []
        await self.run_all()

    def rows(self) -> list[dict[str, Any]]:
        """One row per cell: axis values, state, seed, request id, files, timings, billing."""
        rows = []
        for cell in self.plan.cells:
            record = self.records[cell.id]
            rows.append(
                {
                    "cell": cell.id,
                    "x": cell.coords[0],
                    "y": cell.coords[1],
                    "z": cell.coords[2],
                    **{f"axis:{k}": v for k, v in cell.axis_values.items()},
                    "state": record.state,
                    "seed": record.seed,
                    "request_id": record.request_id,
                    "files": [str(self.run.path / image.file) for image in record.images],
                    "nsfw": any(record.nsfw),
                    "billable_units": record.billable_units,
                    "seconds": record.timings.get("total"),
                    "error": record.error,
                    "input": record.input,
                }
            )
        return rows

    def billed_units(self) -> float | None:
        """The sum of the billable units the server reported, when it reported any."""
        units = [r.billable_units for r in self.records.values() if r.billable_units is not None]
        return sum(units) if units else None
