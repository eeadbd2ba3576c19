"""`SweepRun`: one sweep's life on an event loop — price, confirm, run, export, retry.

Pure asyncio: no IPython, no widgets. `prepare_sweep` builds one from a base input and axes;
`fluxwidget.sweep()` (in the ui) adds the live grid and the notebook's display, and the
``fluxwidget sweep`` command a progress bar. Both price and confirm through `SweepRun.price`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..client.pricing import fetch_unit_price
from ..client.protocols import JobClient
from ..errors import CostNotConfirmed
from ..schema import FluxLoraInput
from .axes import SweepPlan
from .cost import CONFIRM_ABOVE_USD, DEFAULT_PRICE, UnitPrice, estimate_cost
from .report import export_run
from .runner import DEFAULT_CONCURRENCY, StormPolicy, SweepProgress, SweepRunner

if TYPE_CHECKING:
    from ..store.records import JobRecord

__all__ = ["SweepRun", "prepare_sweep", "sweep_payload"]

log = logging.getLogger("fluxwidget.sweep")


class SweepRun:
    """A sweep started with `sweep()`: awaitable, displayed as its live grid, resumable.

    Its state is in its run folder (`folder`): run the same `sweep()` with ``out=folder`` after a
    crash or a kernel restart and it resumes without paying twice.
    """

    def __init__(
        self,
        runner: SweepRunner,
        *,
        confirm: bool = False,
        confirm_above: float = CONFIRM_ABOVE_USD,
        fetch_price: bool = True,
        export: bool = True,
    ) -> None:
        self.runner = runner
        self.confirmed = confirm or not runner.estimate.needs_confirmation(confirm_above)
        self.confirm_above = confirm_above
        self.error: BaseException | None = None
        self.exported: list[Path] = []
        self._fetch_price = fetch_price
        self._export = export
        self._task: asyncio.Task[None] | None = None
        self._status_listeners: list[Callable[[str], None]] = []
        self.status = self._waiting_text()

    def __repr__(self) -> str:
        return f"SweepRun({str(self.folder)!r}, {self.progress().describe()})"

    # --- what it is -------------------------------------------------------------------------

    @property
    def plan(self) -> SweepPlan:
        """The cells and axes."""
        return self.runner.plan

    @property
    def folder(self) -> Path:
        """The run folder: images, manifest.json, journal.jsonl, grid image, report."""
        return self.runner.run.path

    @property
    def records(self) -> list[JobRecord]:
        """One record per cell, in cell order."""
        return [self.runner.records[cell.id] for cell in self.plan.cells]

    @property
    def estimate(self) -> Any:
        """The cost estimate of the cells still to submit (`CostEstimate`)."""
        return self.runner.estimate

    @property
    def done(self) -> bool:
        """True once the sweep's task has ended."""
        return self._task is not None and self._task.done()

    def progress(self) -> SweepProgress:
        """Counts by state, elapsed time, time left."""
        return self.runner.progress()

    def on_status(self, listener: Callable[[str], None]) -> None:
        """Hear every change of the one-line status (progress, stop reasons, errors)."""
        self._status_listeners.append(listener)

    def _say(self, text: str) -> None:
        self.status = text
        for listener in self._status_listeners:
            with contextlib.suppress(Exception):
                listener(text)

    def _waiting_text(self) -> str:
        estimate = self.runner.estimate
        if not self.confirmed:
            return (
                f"Not started: {estimate.describe()} is above ${self.confirm_above:g}. "
                "Confirm to start (confirm=True)."
            )
        return f"Ready: {estimate.describe()}"

    # --- running ----------------------------------------------------------------------------

    def start(self) -> SweepRun:
        """Start on the running loop (the kernel's) if not started yet; returns self."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._main())
            self._task.add_done_callback(self._ended)
        return self

    def confirm(self) -> SweepRun:
        """Confirm the cost and start."""
        self.confirmed = True
        if (
            self._task is not None
            and self._task.done()
            and isinstance(self.error, CostNotConfirmed)
        ):
            self._task = None
        self.error = None
        return self.start()

    async def _main(self) -> None:
        await self.price()
        if not self.confirmed:
            self._say(self._waiting_text())
            raise CostNotConfirmed(self._waiting_text())
        self._say(f"Running: {self.runner.estimate.describe()}")
        self.runner.subscribe(on_cell=lambda _record, _update: self._progress_changed())
        await self.runner.run_all()
        if self._export:
            await self._export_files()
        self._say(self._final_text())

    async def price(self) -> bool:
        """Ask the server for the unit price once (unless a price was given), re-estimate, and
        say whether the sweep may start (confirmed, or under the threshold)."""
        if self._fetch_price:
            self._fetch_price = False
            try:
                price = await fetch_unit_price(self.runner.client)
            except Exception:  # a price is a nicety: the documented default stands in
                price = None
            if price is not None:
                self.reprice(price)
        return self.confirmed

    def reprice(self, price: UnitPrice) -> None:
        """Recompute the estimate with another unit price."""
        pending = [c.input for c in self.plan.cells if self.runner.records[c.id].state == "pending"]
        self.runner.estimate = estimate_cost(pending, price)
        if not self.confirmed:
            self.confirmed = not self.runner.estimate.needs_confirmation(self.confirm_above)

    def _progress_changed(self) -> None:
        notice = self.runner.notice  # stopped, or paused by a storm of refused submits
        if notice:
            self._say(f"{notice} — {self.progress().describe()}")
        else:
            self._say(self.progress().describe())

    def _final_text(self) -> str:
        text = self.progress().describe()
        if self.runner.stopped:
            text = f"{self.runner.stopped} — {text}"
        billed = self.runner.billed_units()
        if billed is not None:
            price = self.runner.estimate.price
            text += f" · billed {billed:g} units (≈ ${billed * price.usd_per_unit:.2f})"
        return f"{text} · {self.folder}"

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._say("Cancelled — " + self.progress().describe())
            return
        error = task.exception()
        if error is not None:
            self.error = error
            if not isinstance(error, CostNotConfirmed):
                self._say(f"Failed: {type(error).__name__}: {error}")
                return
        self._say(self.status)  # listeners see the task ended (buttons, final grid state)

    async def _export_files(self) -> None:
        try:
            self.exported = await asyncio.to_thread(export_run, self.runner)
        except Exception as exc:  # the images are safe on disk; say what went wrong
            log.warning("exporting the sweep's grid failed: %s", exc)
            self._say(f"Exporting the grid failed: {exc}")

    async def wait(self) -> SweepRun:
        """Wait for the sweep to end; raises CostNotConfirmed when it needs confirming."""
        self.start()
        assert self._task is not None
        await asyncio.shield(self._task)
        return self

    def __await__(self) -> Generator[Any, None, SweepRun]:
        return self.wait().__await__()

    def cancel_all(self) -> None:
        """Stop submitting and cancel every cell in flight, on the server too."""
        self.runner.cancel_all()

    def cancel_remaining(self) -> None:
        """Submit no more cells; cells in flight are still collected."""
        self.runner.stop()
        self._progress_changed()

    def retry_failed(self) -> SweepRun:
        """Run failed and unsent cells again (collecting by request id where possible)."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("the sweep is still running: wait for it or cancel it first")
        self._task = asyncio.get_running_loop().create_task(self._retry())
        self._task.add_done_callback(self._ended)
        return self

    async def _retry(self) -> None:
        self._say("Retrying failed cells…")
        await self.runner.retry_failed()
        if self._export:
            await self._export_files()
        self._say(self._final_text())

    # --- results ----------------------------------------------------------------------------

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per cell: axis values, state, seed, request id, files, timings, billing."""
        return self.runner.rows()

    def to_pandas(self) -> Any:
        """`to_records` as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_records())


def sweep_payload(
    base: FluxLoraInput | dict[str, Any] | str | None, fields: dict[str, Any], seed: int | None
) -> dict[str, Any]:
    """The base input of a sweep as a dict: a prompt, a dict or a model, `fields` on top."""
    payload: dict[str, Any]
    if isinstance(base, str):
        payload = {"prompt": base}
    elif isinstance(base, FluxLoraInput):
        payload = base.model_dump()
    elif base is None:
        payload = {}
    elif isinstance(base, dict):
        payload = dict(base)
    else:
        raise TypeError(f"base: {type(base).__name__} is not a prompt, a dict or FluxLoraInput")
    payload.update(fields)
    if seed is not None:  # a seed the user gave is part of the definition (see definition_key)
        payload["seed"] = seed
    return payload


R = TypeVar("R", bound=SweepRun)


def prepare_sweep(
    client: JobClient,
    plan: SweepPlan,
    *,
    run_class: type[R],
    out: str | Path | None = None,
    root: str | Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    confirm: bool = False,
    confirm_above: float = CONFIRM_ABOVE_USD,
    price: UnitPrice | None = None,
    force_new: bool = False,
    cell_timeout: float | None = None,
    export: bool = True,
    resubmit_unknown: bool = False,
    step_logs: bool = True,
    storms: StormPolicy | None = None,
) -> R:
    """A `SweepRun` (of `run_class`) of `plan` on `client`, its run folder opened; not started.

    Without a `price` the server's is asked for when the run is priced (`SweepRun.price`);
    `storms` says when refused submits pause or stop the run (`StormPolicy`).
    """
    runner = SweepRunner(
        client,
        plan,
        out=out,
        root=root,
        concurrency=concurrency,
        price=price or DEFAULT_PRICE,
        force_new=force_new,
        cell_timeout=cell_timeout,
        resubmit_unknown=resubmit_unknown,
        step_logs=step_logs,
        storms=storms,
    )
    return run_class(
        runner,
        confirm=confirm,
        confirm_above=confirm_above,
        fetch_price=price is None,
        export=export,
    )
