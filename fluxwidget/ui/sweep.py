"""`sweep()`: an X/Y/Z parameter sweep in a notebook cell, running in the background.

``run = sweep("a fox", x="guidance_scale=2,3.5,5", y="loras[0].scale=0.4-1.2 [3]", ...)``
starts the sweep on the kernel's loop and returns at once; ``run`` displays as the live grid, and
``result = await run`` (or ``result = await sweep(...)``, which shows the live grid while it
waits) gives the finished sweep: ``result.to_records()``, ``result.to_pandas()``, the run folder
with every image, the manifest, the exported grid image and the HTML report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

from IPython import get_ipython
from IPython.display import display

from ..client.protocols import JobClient
from ..connect import choose_client
from ..schema import FluxLoraInput
from ..sweeps.axes import AxisSpec, Mode, SeedMode, plan_sweep
from ..sweeps.cost import CONFIRM_ABOVE_USD, UnitPrice
from ..sweeps.run import SweepRun, prepare_sweep, sweep_payload
from ..sweeps.runner import DEFAULT_CONCURRENCY
from ._widgets import built_quietly, lighten
from .blind_ab import BlindAB, blind_ab
from .fallback import LiveOutput, grid_fallback_html
from .live_notice import mark_snapshot_root
from .sweep_view import SweepView

__all__ = ["LiveSweep", "sweep"]


def _in_kernel() -> bool:
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveSweep(SweepRun):
    """A `SweepRun` that displays as its live grid; ``await run`` in a kernel shows it once."""

    _view: SweepView | None = None
    _shown_live = False
    _live: LiveOutput | None = None

    def view(self) -> Any:
        """The live grid widget (made once)."""
        if self._view is None:
            with built_quietly():  # only the models left after lighten() are sent
                self._view = SweepView(self)
                mark_snapshot_root(self._view.widget, live_only=[self._view.controls])
                lighten(self._view.widget)
        return self._view.widget

    def compare(self, *, seed: int | None = None) -> BlindAB:
        """A blind A/B test of this sweep's images (votes stored in its run folder)."""
        return blind_ab(self, seed=seed)

    @property
    def live_output(self) -> LiveOutput:
        """The displayed grid with its static fallback (updated when the sweep ends)."""
        if self._live is None:
            self._live = LiveOutput(self.view, self.static_html, self._plain)
            self.on_status(self._status_for_fallback)
        return self._live

    def static_html(self) -> str:
        """The grid as static HTML (thumbnails, axis values, cell states; escaped)."""
        self.view()
        assert self._view is not None
        grid = self._view.grid
        prompt = self.plan.base.prompt
        title = f"Sweep: {self.folder.name}" + (f" · {prompt!r}" if prompt else "")
        return grid_fallback_html(title, self.status, dict(grid.axes), grid._entries, grid._thumbs)

    def _plain(self) -> str:
        return f"<LiveSweep {self.folder.name}: {self.status}>"

    def _status_for_fallback(self, _text: str) -> None:
        if self.done and self._live is not None:
            self._live.changed()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._shown_live = True  # shown already: `await run` in a later cell shows no second grid
        return self.live_output.bundle()

    def _ipython_display_(self) -> None:
        """Shown as the live grid with a static fallback (GitHub, nbconvert), kept current."""
        self._shown_live = True
        self.live_output.display()

    def __await__(self) -> Generator[Any, None, SweepRun]:
        if _in_kernel() and not self._shown_live:
            self._shown_live = True
            display(self)  # type: ignore[no-untyped-call]
        return self.wait().__await__()


def sweep(
    base: FluxLoraInput | dict[str, Any] | str | None = None,
    x: AxisSpec | None = None,
    y: AxisSpec | None = None,
    z: AxisSpec | None = None,
    *,
    client: JobClient | None = None,
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
) -> LiveSweep:
    """Sweep up to three axes over a base input; every cell is validated before anything is sent.

    `base` is a prompt, a dict or a `FluxLoraInput`; `fields` add or override input fields. Axes
    are ``"field=values"`` text (``"guidance_scale=2,3.5,5"``, ``"loras[0].scale=0.4-1.2 [3]"``,
    ``"prompt_sr=tiger,lion"``), ``(field, values)`` or `Axis`. ``mode="zip"`` pairs values
    instead of crossing them. Seeds: ``"fixed"`` (one for every cell), ``"per_cell"``,
    ``"per_row"``. `out` is the run folder (the same folder again resumes); by default a new one
    under ``./fluxwidget-runs``. At most `concurrency` cells are in flight. Above `confirm_above`
    dollars (estimated) the sweep waits for ``confirm=True`` or `SweepRun.confirm()`. A cell
    whose submit was in flight when an earlier run stopped is left alone (it may have been
    billed) unless ``resubmit_unknown=True``. Without a `client`, `choose_client` picks one
    (fal with a key, else the emulator).

    Starts at once when a loop is running (a notebook); else when awaited.
    """
    plan = plan_sweep(sweep_payload(base, fields, seed), x, y, z, mode=mode, seed_mode=seed_mode)
    chosen: JobClient = client if client is not None else choose_client().client
    run = prepare_sweep(
        chosen,
        plan,
        run_class=LiveSweep,
        out=out,
        root=root,
        concurrency=concurrency,
        confirm=confirm,
        confirm_above=confirm_above,
        price=price,
        force_new=force_new,
        cell_timeout=cell_timeout,
        export=export,
        resubmit_unknown=resubmit_unknown,
    )
    with contextlib.suppress(RuntimeError):  # no running loop: starts when awaited
        run.start()
    return run
