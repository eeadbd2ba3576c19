"""Run a sweep plan on the job pipeline: a cap on cells in flight, resume, stop on account errors.

`SweepRunner` owns one run folder. Every cell is a job of the pipeline (its id is the cell id),
so every image is saved as it arrives with its record embedded, and the manifest holds one row per
cell. Running the same plan on the same folder again resumes: done cells are skipped, submitted
ones are collected by request id (never submitted twice), the rest are submitted. A different
plan on an existing folder is refused (`SweepFolderMismatch`) unless ``force_new``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client.protocols import JobClient
from ..client.status import StatusUpdate
from ..errors import (
    AuthenticationError,
    FalError,
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
    ) -> None:
        """Cells whose submit reply was lost (``unknown``) are looked for in fal's request
        listing when the run starts (`fluxwidget.store.lost`): found, they are collected; absent
        from a complete listing, `resubmit_unknown` sends them again; when the listing is not
        available they are left alone.
        `step_logs=False` leaves out the step counts of running cells ("running 12/28"): fewer
        events per cell, for a display that shows only counts of cells (the CLI's bar)."""
        if concurrency < 1:
            raise ValueError(f"concurrency: {concurrency} is not allowed; use 1 or more")
        self.client = client
        self.plan = plan
        self.concurrency = concurrency
        self.cell_timeout = cell_timeout
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

    async def run_all(self) -> None:
        """Run every cell that is not done: collect the submitted ones, submit the rest, at most
        `concurrency` in flight. Returns when every cell has ended (done, failed, cancelled)."""
        self.started_at = time.monotonic()
        self.finished_at = None
        self.run.claim()  # held from the folder's opening; again after an earlier run_all
        slots = asyncio.Semaphore(self.concurrency)
        try:
            await self._find_lost_submits()
            collect = [r for r in self.records.values() if r.collectable]
            submit = [r for r in self.records.values() if r.state == "pending"]
            for record in collect + submit:
                await slots.acquire()
                if self.stopped is not None:
                    slots.release()
                    break
                self._start(record, slots)
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        finally:
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
        task = asyncio.get_running_loop().create_task(self._run_cell(record))
        self._tasks[record.job_id] = task

        def finished(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(record.job_id, None)
            self._releases.pop(record.job_id, None)
            release()

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
            reason = _stops_everything(exc, self.plan)
            if reason is not None and self.stopped is None:
                self.stop(f"Stopped: {reason}. Cells already submitted are still collected.")
            return
        except Exception as exc:  # recorded in the cell by the pipeline; the sweep goes on
            log.info("cell %s failed: %s", record.job_id, type(exc).__name__)
            return
        self._durations.append(time.monotonic() - started)

    def stop(self, reason: str = "Stopped: no more cells are submitted.") -> None:
        """Submit no more cells; cells in flight are still collected ("cancel remaining")."""
        self.stopped = reason
        for record in self.records.values():
            if record.state == "pending":
                record.state = "cancelled"
                record.detail = "Not submitted"
                self._cell_changed(record, None)
        self.run.changed()

    def cancel_all(self) -> None:
        """Stop submitting and cancel every cell in flight (on the server too)."""
        self.stop("Cancelled: cells in flight were cancelled on the server.")
        for task in list(self._tasks.values()):
            task.cancel()

    async def retry_failed(self) -> None:
        """Run again the cells that failed or were not submitted: collectable ones are collected
        by request id; the others are submitted afresh."""
        self.stopped = None
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
