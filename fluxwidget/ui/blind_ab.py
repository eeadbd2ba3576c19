"""A blind A/B test of a run's images: two side by side, parameters hidden, pick one (or a tie).

``blind_ab(run_or_path)`` (or ``run.compare()`` on a notebook sweep, or the "Blind A/B" button
under its grid) shows two images of a run folder with nothing that tells them apart. The user
picks ← / → or "tie" (keys or buttons); the vote is stored in the run folder's
``ratings.jsonl`` (`store.ratings`) and only then are both images' parameters sent to the
browser and shown. "Next" (Enter) shows the next pair (`sweeps.ranking.next_pair`: the
least-compared image against its nearest rival in the current ranking, never a pair twice).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from .. import images
from ..errors import FluxwidgetError
from ..store.ratings import Vote
from ..sweeps.ranges import format_value
from ..sweeps.results import RunImage, RunResults, load_run
from ._thumbs import static_text

if TYPE_CHECKING:
    from ..sweeps.run import SweepRun

__all__ = ["AB_IMAGE_SIDE", "BlindAB", "blind_ab"]

AB_IMAGE_SIDE = 512
"""Longer side of the images shown side by side."""

SIDES = {"left": "a", "right": "b", "tie": "tie"}


def _parameters(image: RunImage) -> dict[str, str]:
    """What is revealed after the vote: axis values, seed, then the rest of the input."""
    shown = {str(k): format_value(v) for k, v in image.axes.items()}
    shown["seed"] = "random" if image.seed is None else str(image.seed)
    for key, value in image.input.items():
        if key != "seed":
            shown.setdefault(f"input.{key}", str(value))
    shown["image"] = image.key
    return shown


class BlindAB(anywidget.AnyWidget):
    """Two images of a run, parameters hidden until the vote (which is stored in the folder)."""

    _esm = static_text("thumbs.js") + static_text("blind_ab.js")
    _css = static_text("blind_ab.css")
    left = traitlets.Bytes(b"").tag(sync=True)
    right = traitlets.Bytes(b"").tag(sync=True)
    phase = traitlets.Unicode("vote").tag(sync=True)
    """``"vote"`` (parameters hidden), ``"revealed"`` (after the vote) or ``"done"``."""
    revealed = traitlets.Dict().tag(sync=True)
    """Empty until the vote: then ``{"left": {...}, "right": {...}, "winner": side}``."""
    round = traitlets.Int(0).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        run: str | Path | RunResults,
        *,
        on_vote: Callable[[Vote], None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.folder = run.path if isinstance(run, RunResults) else Path(run)
        self._on_vote = on_vote
        self._rng = random.Random(seed)
        self.pair: tuple[RunImage, RunImage] | None = None
        self.votes_here = 0
        self.on_msg(self._received)
        self.next()

    def _results(self) -> RunResults:
        return load_run(self.folder)  # fresh: votes from other views count too

    def next(self) -> None:
        """Show the next pair, parameters hidden (``phase == "done"`` when all pairs met)."""
        results = self._results()
        pair = results.next_pair()
        self.round += 1
        self.revealed = {}
        if pair is None:
            self.pair = None
            self.left = self.right = b""
            self.phase = "done"
            self.message = (
                "Every pair has been compared."
                if len(results) >= 2
                else "A blind test needs at least two images in the run."
            )
            self.progress = self._progress(results)
            return
        try:
            left, right = (
                images.thumbnail(image.path.read_bytes(), AB_IMAGE_SIDE, 85) for image in pair
            )
        except (OSError, ValueError) as exc:
            self.message = f"Could not read an image: {exc}"
            return
        self.pair = pair
        self.left, self.right = left, right
        self.phase = "vote"
        self.message = ""
        self.progress = self._progress(results)

    @staticmethod
    def _progress(results: RunResults) -> str:
        n = len(results)
        votes = len(results.votes)
        return f"{votes} vote{'' if votes == 1 else 's'} so far · {n * (n - 1) // 2} possible pairs"

    def vote(self, side: str) -> Vote | None:
        """Vote ``"left"``, ``"right"`` or ``"tie"``: stored in the run folder, then the
        parameters of both images are revealed. None (and a message) when it cannot be stored."""
        if self.phase != "vote" or self.pair is None:
            return None
        if side not in SIDES:
            raise ValueError(f"side: {side!r} is not allowed; use 'left', 'right' or 'tie'")
        left, right = self.pair
        try:
            stored = self._results().vote(left.key, right.key, SIDES[side])  # type: ignore[arg-type]
        except FluxwidgetError as exc:  # RunFolderBusy: a sweep writes it in another process
            self.message = f"Not saved: {exc}"
            return None
        self.votes_here += 1
        self.progress = self._progress(self._results())
        self.revealed = {"left": _parameters(left), "right": _parameters(right), "winner": side}
        self.phase = "revealed"
        self.message = "Saved. Next pair: Enter (or the Next button)."
        if self._on_vote is not None:
            self._on_vote(stored)
        return stored

    def _received(self, _widget: Any, content: Any, _buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        if kind == "vote" and content.get("round") == self.round:
            self.vote(str(content.get("side")))
        elif kind == "next" and self.phase == "revealed":
            self.next()


def blind_ab(run: str | Path | RunResults | SweepRun, *, seed: int | None = None) -> BlindAB:
    """A blind A/B test of a run's images (a run folder, `load_run`'s result or a sweep)."""
    if isinstance(run, (str, Path, RunResults)):
        return BlindAB(run, seed=seed)
    folder = getattr(run, "folder", None)
    if folder is None:
        raise TypeError(f"blind_ab: {type(run).__name__} is not a run folder, a run or a sweep")
    return BlindAB(Path(folder), seed=seed)
