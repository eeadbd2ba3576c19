"""The inpainting mask painter: a canvas over the input image's thumbnail, in one anywidget model.

The browser draws strokes on a canvas at the thumbnail's size and sends each finished stroke as
a few numbers (points normalised to 0–1, the brush as a percentage of the image's longer side,
paint or erase). The kernel rasterises every stroke with Pillow onto a mask of the image's FULL
size (white = repaint, black = keep), so the mask sent to fal has exactly the image's size
whatever the size of the canvas. Invert and Clear act on that mask too.

What the model holds stays small: the thumbnail (≤ 256 px JPEG) and a preview of the mask at
the thumbnail's size (a 1-bit PNG, a few kB) that the canvas redraws from, so a reloaded page
or a saved notebook shows the same mask. The full-size mask lives in Python only.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import traitlets
from PIL import Image, ImageDraw, ImageOps

from ._thumbs import static_text

__all__ = ["BRUSH_RANGE", "MaskPainter", "mask_to_png"]

BRUSH_RANGE = (1, 25)
"""The brush's diameter as a percentage of the image's longer side (min, max)."""
MAX_POINTS = 4096
"""Points kept of one stroke (a longer one is thinned): a stroke message stays small."""


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def mask_to_png(mask: Image.Image) -> bytes:
    """A mask as a black-and-white PNG of its size (CPU work: run it in a thread)."""
    return _png(mask.point(lambda v: 255 if v >= 128 else 0).convert("L"))


class MaskPainter(anywidget.AnyWidget):
    """Paint the area to repaint over the input image; `mask_png()` is the mask at full size."""

    _esm = static_text("mask_painter.js")
    _css = static_text("mask_painter.css")

    image = traitlets.Bytes(b"").tag(sync=True)
    """The input image's thumbnail (JPEG, longer side ≤ 256 px) drawn under the canvas."""
    image_width = traitlets.Int(0).tag(sync=True)
    """The input image's full width: the mask's width."""
    image_height = traitlets.Int(0).tag(sync=True)
    preview = traitlets.Bytes(b"").tag(sync=True)
    """The mask at the thumbnail's size (1-bit PNG): what the canvas shows."""
    brush = traitlets.Int(6).tag(sync=True)
    """The brush's diameter in percent of the image's longer side."""
    erase = traitlets.Bool(False).tag(sync=True)
    """True: strokes erase (paint black) instead of painting white."""
    message = traitlets.Unicode("").tag(sync=True)
    """A line under the canvas (e.g. why there is nothing to paint on)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mask: Image.Image | None = None
        self._thumb_size = (0, 0)
        self._callbacks: list[Callable[[MaskPainter], None]] = []
        self.version = 0
        """Counts changes of the mask (a writer keeps only its newest version)."""
        self.on_msg(self._received)
        self._show_empty()

    # --- the image -------------------------------------------------------------------------

    def set_image(self, thumbnail: bytes, width: int, height: int) -> None:
        """Paint over this image (its thumbnail, and its full size): the mask starts empty."""
        with Image.open(io.BytesIO(thumbnail)) as thumb:
            self._thumb_size = thumb.size
        self._mask = Image.new("L", (width, height), 0)
        with self.hold_sync():
            self.image = bytes(thumbnail)
            self.image_width, self.image_height = width, height
            self.message = ""
        self._changed(notify=False)

    def load_mask(self, data: bytes) -> None:
        """Show (and edit) an existing mask of the image's size, e.g. one uploaded; ValueError
        when it is not an image of that size. Listeners are not called (nothing new to save)."""
        if self._mask is None:
            raise ValueError("no input image: nothing to paint a mask on")
        with Image.open(io.BytesIO(data)) as image:
            if image.size != self._mask.size:
                raise ValueError(f"the mask is {image.size}, the image {self._mask.size}")
            self._mask = image.convert("L").point(lambda v: 255 if v >= 128 else 0)
        self._changed(notify=False)

    def unset_image(self, message: str = "") -> None:
        """Nothing to paint on (no image, or one given only by URL): say `message`."""
        self._mask = None
        self._thumb_size = (0, 0)
        with self.hold_sync():
            self.image = b""
            self.image_width = self.image_height = 0
            self.preview = b""
            self.message = message
        self._show_empty(message)
        self.version += 1

    def _show_empty(self, message: str = "") -> None:
        if not self.message:
            self.message = message or "Choose an input image to paint its mask."

    @property
    def size(self) -> tuple[int, int] | None:
        """The mask's (width, height): the input image's size; None without an image."""
        return self._mask.size if self._mask is not None else None

    @property
    def painted(self) -> bool:
        """True when some of the mask is white (something to repaint)."""
        return self._mask is not None and self._mask.getbbox() is not None

    # --- editing (the browser's buttons call these through messages) ----------------------

    def stroke(
        self, points: Sequence[tuple[float, float]], *, brush: float | None = None,
        erase: bool = False,
    ) -> None:  # fmt: skip
        """Draw one stroke: `points` normalised to 0–1 over the image, `brush` the diameter in
        percent of the longer side (default: the slider's)."""
        if self._mask is None or not points:
            return
        width, height = self._mask.size
        percent = min(max(float(self.brush if brush is None else brush), 0.1), 100.0)
        diameter = max(1.0, percent / 100.0 * max(width, height))
        scaled = [
            (min(max(x, 0.0), 1.0) * width, min(max(y, 0.0), 1.0) * height) for x, y in points
        ]
        fill = 0 if erase else 255
        draw = ImageDraw.Draw(self._mask)
        radius = diameter / 2
        # the brush stamped densely along the path (no line: a line's edge and the round caps
        # round differently, which leaves bumps at every point); a stamp at most every
        # radius/4, so the edge's scallops stay under 1 % of the radius
        for x, y in _stamps(scaled, max(radius / 4, 0.5)):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
        self._changed()

    def invert(self) -> None:
        """Swap what is repainted and what is kept."""
        if self._mask is not None:
            self._mask = ImageOps.invert(self._mask)
            self._changed()

    def clear(self) -> None:
        """Nothing repainted: an all-black mask."""
        if self._mask is not None:
            self._mask = Image.new("L", self._mask.size, 0)
            self._changed()

    def snapshot(self) -> Image.Image:
        """A copy of the mask at the image's full size (mode "L"); ValueError without image."""
        if self._mask is None:
            raise ValueError("no input image: nothing to paint a mask on")
        return self._mask.copy()

    def mask_png(self) -> bytes:
        """The mask as a PNG of the image's full size (white = repaint, black = keep)."""
        return mask_to_png(self.snapshot())

    def on_change(self, callback: Callable[[MaskPainter], None]) -> None:
        """Call `callback(painter)` after every stroke, invert or clear."""
        self._callbacks.append(callback)

    # --- internals ------------------------------------------------------------------------

    def _changed(self, *, notify: bool = True) -> None:
        self.version += 1
        if self._mask is not None and self._thumb_size[0] > 0:
            small = self._mask.resize(self._thumb_size, Image.Resampling.BILINEAR)
            self.preview = _png(small.point(lambda v: 255 if v >= 128 else 0).convert("1"))
        if notify:
            for callback in list(self._callbacks):
                callback(self)

    def _received(self, _widget: Any, content: Any, _buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        if kind == "stroke":
            points = _points(content.get("points"))
            brush = content.get("brush")
            size = float(brush) if isinstance(brush, (int, float)) else None
            self.stroke(points, brush=size, erase=bool(content.get("erase")))
        elif kind == "invert":
            self.invert()
        elif kind == "clear":
            self.clear()


MAX_STAMPS = 20_000
"""Brush stamps of one stroke at most (the spacing grows for a very long, thin stroke)."""


def _stamps(points: Sequence[tuple[float, float]], spacing: float) -> list[tuple[float, float]]:
    """Points along the polyline `points`, about `spacing` apart (the ends included)."""
    length = sum(math.dist(a, b) for a, b in itertools.pairwise(points))
    spacing = max(spacing, length / MAX_STAMPS)
    out = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        count = max(1, math.ceil(math.dist((x0, y0), (x1, y1)) / spacing))
        out += [
            (x0 + (x1 - x0) * n / count, y0 + (y1 - y0) * n / count) for n in range(1, count + 1)
        ]
    return out


def _points(raw: Any) -> list[tuple[float, float]]:
    """[x0, y0, x1, y1, ...] from the browser as (x, y) pairs of finite numbers (thinned)."""
    if not isinstance(raw, list):
        return []
    numbers = [float(v) for v in raw if isinstance(v, (int, float)) and math.isfinite(v)]
    pairs = list(zip(numbers[0::2], numbers[1::2], strict=False))
    if len(pairs) > MAX_POINTS:
        step = math.ceil(len(pairs) / MAX_POINTS)
        pairs = [*pairs[::step], pairs[-1]]
    return pairs
