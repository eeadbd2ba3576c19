"""The input image (and mask) of image-to-image and inpainting: a path/URL field, an upload
button and a small preview, with a clear error next to the field before any request.

A file uploaded from the browser arrives as bytes in the `FileUpload`'s value; the picker hands
them to its `store` (the panel writes them into its run folder as ``inputs/<sha256>.<ext>``),
puts that path into the field and clears the `FileUpload` at once, so no large bytes stay in the
widget state. The pipeline uploads the local file to fal by its path. The preview is a
thumbnail (longer side ≤ 256 px).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from .. import images
from ..disk import write_atomically
from ..schema import image_url_problem
from ._widgets import error_html, muted, shared_layout

__all__ = [
    "PREVIEW_SIDE",
    "ImagePicker",
    "InputImage",
    "inspect_image",
    "is_local_path",
    "save_input",
]

PREVIEW_SIDE = 256
"""The preview's longer side in pixels (the thumbnail sent to the browser)."""
MAX_INPUT_BYTES = 50 * 1024 * 1024
"""A larger file is refused before it is read (fal's inputs are photos, not archives)."""
_URL = re.compile(r"^https?://", re.IGNORECASE)
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


@dataclass(frozen=True)
class InputImage:
    """What the picker knows of a readable image: its thumbnail and full size."""

    thumbnail: bytes
    width: int
    height: int
    format: str


def is_local_path(value: str) -> bool:
    """True when an image field's value names a local file (not a URL, not a data: URI)."""
    text = value.strip()
    return bool(text) and not _URL.match(text) and not text.startswith("data:")


def inspect_image(data: bytes) -> InputImage:
    """Decode image bytes into a preview and its size; ValueError (in words) when they are not
    an image Pillow can read."""
    try:
        image = images.open_image(data)
    except Exception as exc:  # Pillow raises many kinds for bytes that are not an image
        raise ValueError("is not an image (PNG, JPEG or WebP expected)") from exc
    width, height = image.size
    fmt = (image.format or "PNG").upper()
    image.close()
    return InputImage(images.thumbnail(data, max_side=PREVIEW_SIDE), width, height, fmt)


def read_local_image(path: str) -> tuple[bytes, InputImage]:
    """The bytes and preview of a local image file, or ValueError naming the problem."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"no such file: {path}")
    size = file.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"{path} is {size // (1024 * 1024)} MB; at most 50 MB")
    data = file.read_bytes()
    return data, inspect_image(data)


def save_input(folder: Path, data: bytes, *, prefix: str = "") -> Path:
    """Write image bytes to ``folder/inputs/<prefix><sha256 prefix>.<ext>`` (content-addressed:
    the same image is written once) and return the path. ValueError when not an image."""
    info = inspect_image(data)
    digest = hashlib.sha256(data).hexdigest()[:16]
    ext = _EXTENSIONS.get(info.format, "png")
    target = folder / "inputs" / f"{prefix}{digest}.{ext}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)
    return target


StoreUpload = Callable[["ImagePicker", bytes, str], None]
"""What the panel does with bytes uploaded in the browser (write them, then `picker.value =`)."""


class ImagePicker:
    """One image field: text (path or URL), an upload button, a preview and an error line."""

    def __init__(self, name: str, title: str, tooltip: str, *, store: StoreUpload | None = None):
        self.name = name
        self.store = store
        self.text = widgets.Text(
            placeholder="path or https:// URL",
            description=title,
            tooltip=tooltip,
            style={"description_width": "84px"},
            layout=shared_layout(width="300px"),
        )
        self.upload = widgets.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload",
            tooltip="Upload an image from this computer (saved in the run folder's inputs/)",
            layout=shared_layout(width="96px"),
        )
        self.preview = widgets.Image(
            format="jpeg", layout=widgets.Layout(display="none", max_width="160px", margin="2px")
        )
        self.note = widgets.HTML()
        self.error = widgets.HTML(layout=shared_layout(margin="0 0 0 4px"))
        self.show_preview = True
        """False: no preview under the field (the mask's: the painter shows it)."""
        self.problem: str | None = None
        """Why the current value cannot be used (shown next to the field), or None."""
        self.image: InputImage | None = None
        """The preview and full size of a local (or data:) image; None for a URL or nothing."""
        self._callbacks: list[Callable[[ImagePicker], None]] = []
        self.box = widgets.VBox(
            [
                widgets.HBox(
                    [self.text, self.upload, self.error],
                    layout=shared_layout(flex_flow="row wrap", align_items="center"),
                ),
                widgets.HBox([self.preview, self.note], layout=shared_layout(align_items="center")),
            ]
        )
        self.text.observe(self._typed, "value")
        self.upload.observe(self._uploaded, "value")
        self._check()

    @property
    def description(self) -> str:
        """The field's label (the schema's title)."""
        return str(self.text.description)

    @property
    def tooltip(self) -> str:
        """The field's tooltip (the schema's description)."""
        return str(self.text.tooltip)

    @property
    def value(self) -> str:
        """The field's value (a path, a URL or a data: URI), stripped."""
        return str(self.text.value).strip()

    @value.setter
    def value(self, new: str) -> None:
        self.text.value = new

    def on_change(self, callback: Callable[[ImagePicker], None]) -> None:
        """Call `callback(picker)` after the value (and its check) changed."""
        self._callbacks.append(callback)

    def show_message(self, text: str, *, error: bool = False) -> None:
        """A line under the field (e.g. "Saving photo.png…", or an upload's error)."""
        if error:
            self.problem = text
            self.error.value = error_html(text)
            self.note.value = ""
            for callback in list(self._callbacks):
                callback(self)
        else:
            self.note.value = muted(text) if text else ""

    def read_bytes(self) -> bytes:
        """The image's bytes (a local file or a data: URI); ValueError for a URL or nothing."""
        value = self.value
        if value.startswith("data:"):
            return images.decode_data_uri(value)[0]
        if not value or _URL.match(value):
            raise ValueError("not a local image")
        return read_local_image(value)[0]

    def refresh(self) -> None:
        """Check the value again (the file may have changed) and tell the listeners."""
        self._typed()

    def _typed(self, _change: Any = None) -> None:
        self._check()
        for callback in list(self._callbacks):
            callback(self)

    def _check(self) -> None:
        value = self.value
        self.image = None
        self.problem = None
        note = ""
        if not value:
            note = "Type a path or URL, or upload an image."
        elif _URL.match(value):
            note = "A URL: fal fetches it (no preview here)."
        else:
            try:
                if value.startswith("data:"):
                    data, _type = images.decode_data_uri(value)
                    self.image = inspect_image(data)
                else:
                    problem = image_url_problem(value)
                    if problem is not None:
                        raise ValueError(f"no such file: {value}")
                    _data, self.image = read_local_image(value)
            except (ValueError, OSError) as exc:
                self.problem = str(exc) if str(exc) else "cannot be read"
        if self.image is not None:
            note = f"{self.image.width}×{self.image.height}"
            if is_local_path(value):
                note += " · a local file: uploaded to fal when you generate"
        if self.image is not None and self.show_preview:
            self.preview.value = self.image.thumbnail
            self.preview.layout.display = None
        else:
            self.preview.value = b""
            self.preview.layout.display = "none"
        self.note.value = muted(note) if note else ""
        self.error.value = error_html(self.problem or "")

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        data = bytes(item["content"])
        name = str(item.get("name", "upload"))
        self.upload.value = ()  # no large bytes kept in the widget state
        if self.store is None:
            self.show_message("Uploads need a panel to save them to", error=True)
            return
        self.show_message(f"Saving {name}…")
        self.store(self, data, name)

    def close(self) -> None:
        """Close the picker's widgets."""
        from ._widgets import close_tree

        close_tree(self.box)
