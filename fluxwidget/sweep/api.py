"""`sweep()`: an X/Y/Z parameter sweep in a notebook cell, running in the background.

``run = sweep("a fox", x="guidance_scale=2,3.5,5", y="loras[0].scale=0.4-1.2 [3]", ...)``
starts the sweep on the kernel's loop and returns at once; ``run`` displays as the live grid, and
``result = await run`` (or ``result = await sweep(...)``, which shows the live grid while it
waits) gives the finished sweep: ``result.to_records()``, ``result.to_pandas()``, the run folder
with every image, the manifest, the exported grid image and the HTML report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..pipeline import PipelineClient
from ..schema import FluxLoraInput
from .axes import AxisSpec, Mode, SeedMode, SweepPlan, plan_sweep
from .cost import CONFIRM_ABOVE_USD, DEFAULT_PRICE, UnitPrice, estimate_cost
from .runner import DEFAULT_CONCURRENCY, SweepProgress, SweepRunner

if TYPE_CHECKING:
    from ..records import JobRecord

__all__ = ["CostNotConfirmed", "SweepRun", "sweep"]

log = logging.getLogger("fluxwidget.sweep")


class CostNotConfirmed(ValueError):
    """The estimated cost is above the threshold and the sweep was not confirmed."""


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


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
        self._view: Any = None
        self._shown_live = False
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
        if self._fetch_price:
            await self._reprice()
        if not self.confirmed:
            self._say(self._waiting_text())
            raise CostNotConfirmed(self._waiting_text())
        self._say(f"Running: {self.runner.estimate.describe()}")
        self.runner.subscribe(on_cell=lambda _record, _update: self._progress_changed())
        await self.runner.run_all()
        if self._export:
            await self._export_files()
        self._say(self._final_text())

    async def _reprice(self) -> None:
        from ..client.pricing import fetch_unit_price

        client: Any = self.runner.client
        try:
            price = await fetch_unit_price(client)
        except Exception:  # a price is a nicety: the documented default stands in
            price = None
        if price is not None:
            self.reprice(price)

    def reprice(self, price: UnitPrice) -> None:
        """Recompute the estimate with another unit price."""
        pending = [c.input for c in self.plan.cells if self.runner.records[c.id].state == "pending"]
        self.runner.estimate = estimate_cost(pending, price)
        if not self.confirmed:
            self.confirmed = not self.runner.estimate.needs_confirmation(self.confirm_above)

    def _progress_changed(self) -> None:
        if self.runner.stopped:
            self._say(f"{self.runner.stopped} — {self.progress().describe()}")
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
            from .report import export_run

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
        if _in_kernel() and not self._shown_live:
            from IPython.display import display

            self._shown_live = True
            display(self)  # type: ignore[no-untyped-call]
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

    def view(self) -> Any:
        """The live grid widget (made once)."""
        if self._view is None:
            from ..ui.sweep_view import SweepView

            self._view = SweepView(self)
        return self._view.widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        try:
            widget = self.view()
        except ImportError:
            return {"text/plain": repr(self)}
        self._shown_live = True  # shown already: `await run` in a later cell shows no second grid
        return widget._repr_mimebundle_(**kwargs)


def sweep(
    base: FluxLoraInput | dict[str, Any] | str | None = None,
    x: AxisSpec | None = None,
    y: AxisSpec | None = None,
    z: AxisSpec | None = None,
    *,
    client: PipelineClient | None = None,
    out: str | Path | None = None,
    root: str | Path | None = None,
    mode: Mode = "grid",
    seed_mode: SeedMode = "fixed",
    seed: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    confirm: bool = False,
    confirm_above: float = CONFIRM_ABOVE_USD,
    price: UnitPrice | None = None,
    force_new: bool = False,
    cell_timeout: float | None = None,
    export: bool = True,
    resubmit_unknown: bool = False,
    **fields: Any,
) -> SweepRun:
    """Sweep up to three axes over a base input; every cell is validated before anything is sent.

    `base` is a prompt, a dict or a `FluxLoraInput`; `fields` add or override input fields. Axes
    are ``"field=values"`` text (``"guidance_scale=2,3.5,5"``, ``"loras[0].scale=0.4-1.2 [3]"``,
    ``"prompt_sr=tiger,lion"``), ``(field, values)`` or `Axis`. ``mode="zip"`` pairs values
    instead of crossing them. Seeds: ``"fixed"`` (one for every cell), ``"per_cell"``,
    ``"per_row"``. `out` is the run folder (the same folder again resumes); by default a new one
    under ``./fluxwidget-runs``. At most `concurrency` cells are in flight. Above `confirm_above`
    dollars (estimated) the sweep waits for ``confirm=True`` or `SweepRun.confirm()`. A cell
    whose submit was in flight when an earlier run stopped is left alone (it may have been
    billed) unless ``resubmit_unknown=True``.

    Starts at once when a loop is running (a notebook); else when awaited.
    """
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
    plan = plan_sweep(payload, x, y, z, mode=mode, seed_mode=seed_mode)
    if client is None:
        from ..defaults import default_client

        client = default_client()
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
    )
    run = SweepRun(
        runner,
        confirm=confirm,
        confirm_above=confirm_above,
        fetch_price=price is None,
        export=export,
    )
    with contextlib.suppress(RuntimeError):  # no running loop: starts when awaited
        run.start()
    return run
