"""The panel's results as ONE widget: thumbnails by run, a large view and a compare view.

Newest run first; the images of one run together in submission order. Captions are plain
text (the browser puts them in ``textContent``, never parsed as HTML); seeds travel as strings
because a 64-bit seed does not survive a JavaScript number. A click opens a large view as an
overlay over the page (←/→ and Previous/Next step through the results, Esc closes); it may ask
Python for the full image (``on_full`` reads it from disk), and any two images can be compared
with a slider or side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import traitlets

from ._thumbs import ThumbnailWidget, static_text

__all__ = ["NSFW_NOTE", "GalleryImage", "ImageGallery", "caption"]

NSFW_NOTE = "NSFW: flagged by the safety checker (fal returns it blacked out)"


def caption(
    run: int | str,
    index: int,
    count: int,
    seed: int | str | None,
    size: tuple[int, int],
    *,
    steps: int | None = None,
    guidance: float | None = None,
) -> str:
    """Plain caption text, as Automatic1111 writes parameters under an image:
    ``#3 · 2/4 · seed 123 · 28 steps · cfg 3.5 · 1024×768``."""
    parts = [f"#{run}"]
    if count > 1:
        parts.append(f"{index + 1}/{count}")
    parts.append("random seed" if seed is None else f"seed {seed}")
    if steps is not None:
        parts.append(f"{steps} step{'' if steps == 1 else 's'}")
    if guidance is not None:
        parts.append(f"cfg {guidance:g}")
    parts.append(f"{size[0]}×{size[1]}")
    return " · ".join(parts)


@dataclass(frozen=True)
class GalleryImage:
    """One image to show: its thumbnail and what the caption says."""

    thumbnail: bytes
    width: int
    height: int
    nsfw: bool = False
    path: str | None = None
    """Where the full image is on disk (asked for on a click), if saved."""


class ImageGallery(ThumbnailWidget):
    """Runs of images, newest first, in one widget model."""

    _esm = static_text("thumbs.js") + static_text("gallery.js")
    _css = static_text("thumbs.css") + static_text("gallery.css")
    runs = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Run ids, newest first (the order the browser draws them in)."""
    max_height = traitlets.Unicode("640px").tag(sync=True)
    _snapshot_keys = ("entries", "thumbs", "runs")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._run_order: list[str] = []
        self._full: Callable[[str], bytes | None] | None = None
        self._restore: Callable[[str], None] | None = None
        self._on("full", self._full_asked)
        self._on("restore", self._restore_asked)

    def add_run(
        self,
        run_id: str,
        title: str,
        images: Sequence[GalleryImage],
        *,
        seed: int | str | None = None,
        summary: str = "",
        restore: bool = False,
        details: Mapping[str, str] | None = None,
        inputs: Sequence[tuple[str, GalleryImage]] = (),
        steps: int | None = None,
        guidance: float | None = None,
    ) -> list[str]:
        """Put a run's images in front (newest first); returns their entry ids.

        `summary` is the run's one-line header; `restore` shows a Restore button on it.
        `inputs` are (label, image) tiles shown first and marked as the run's inputs (the input
        image of image → image, its mask); their ids are not returned. `steps` and `guidance`
        go into each caption (``seed 7 · 28 steps · cfg 3.5 · 1024×768``).
        """
        ids: list[str] = []
        self._run_order.insert(0, run_id)
        self._set_runs()
        for number, (label, image) in enumerate(inputs):
            entry = {
                "id": f"{run_id}/{label}",
                "run": run_id,
                "index": str(number - len(inputs)),  # before the results
                "caption": f"{label} · {image.width}×{image.height}",
                "role": "input",
                "seed": "",
                "nsfw": "",
                "full": "",
                "size": f"{image.width}×{image.height}",
                "summary": summary,
                "restore": "yes" if restore else "",
            }
            self._add_entry(entry, image.thumbnail)
        for index, image in enumerate(images):
            entry_id = f"{run_id}/{index}"
            text = caption(
                title,
                index,
                len(images),
                seed,
                (image.width, image.height),
                steps=steps,
                guidance=guidance,
            )
            entry = {
                "id": entry_id,
                "run": run_id,
                "index": str(index),
                "caption": text,
                "seed": "" if seed is None else str(seed),
                "nsfw": NSFW_NOTE if image.nsfw else "",
                "full": "yes" if image.path else "",
                "size": f"{image.width}×{image.height}",
                "summary": summary,
                "restore": "yes" if restore else "",
                **{k: str(v) for k, v in (details or {}).items()},
            }
            self._add_entry(entry, image.thumbnail)
            ids.append(entry_id)
        return ids

    def append_run(
        self, run_id: str, title: str, images: Sequence[GalleryImage], **kw: Any
    ) -> None:
        """Put an older run (e.g. read from the runs folder) at the end."""
        self.add_run(run_id, title, images, **kw)
        self._run_order.remove(run_id)
        self._run_order.append(run_id)
        self._set_runs()

    def _sync_extra(self) -> dict[str, Any]:
        return {"runs": list(self._run_order)}

    def _set_runs(self) -> None:
        order = list(self._run_order)
        with self._lock_property(runs=order):
            self.runs = order
        self.send({"kind": "runs", "runs": order}, [])
        self._state_changed()

    @property
    def run_ids(self) -> list[str]:
        """Run ids, newest first."""
        return list(self._run_order)

    def entry_ids(self, run_id: str | None = None) -> list[str]:
        """The entry ids in display order (or of one run)."""
        order = {run: n for n, run in enumerate(self._run_order)}
        items = [e for e in self._entries if run_id is None or e["run"] == run_id]
        items.sort(key=lambda e: (order.get(e["run"], 0), int(e["index"])))
        return [str(e["id"]) for e in items]

    def clear(self) -> None:
        """Remove every image."""
        self._run_order = []
        self._set_runs()
        self._clear_entries()

    # --- full images and restore -------------------------------------------------------------

    def on_full(self, reader: Callable[[str], bytes | None]) -> None:
        """`reader(entry_id)` returns the full image bytes (read from disk) or None."""
        self._full = reader

    def on_restore(self, callback: Callable[[str], None]) -> None:
        """`callback(run_id)` when the user clicks Restore on a run."""
        self._restore = callback

    def _full_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        if entry_id not in self._index or self._full is None:
            self.send({"kind": "full", "id": entry_id, "ok": False}, [])
            return
        try:
            data = self._full(entry_id)
        except OSError:
            data = None
        if not data:
            self.send({"kind": "full", "id": entry_id, "ok": False}, [])
            return
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        self.send({"kind": "full", "id": entry_id, "ok": True, "mime": mime}, [data])

    def _restore_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        run_id = str(content.get("run", ""))
        if self._restore is not None and run_id in self._run_order:
            self._restore(run_id)
