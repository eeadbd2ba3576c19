"""The image grid: thumbnails with captions, a full-size viewer and save buttons."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets

from ._widgets import close_tree, error_html, esc, muted
from .records import ImageRecord, RunRecord

__all__ = ["ResultGrid", "caption", "file_name"]

NSFW_NOTE = "⚠ NSFW: flagged by the safety checker (fal returns it blacked out)"


def caption(
    run: int, index: int, count: int, seed: int | None, size: tuple[int, int], nsfw: bool
) -> str:
    """Plain caption text: ``#3 · 2/4 · seed 123 · 1024×768`` (+ the NSFW flag)."""
    parts = [f"#{run}"]
    if count > 1:
        parts.append(f"{index + 1}/{count}")
    parts.append("random seed" if seed is None else f"seed {seed}")
    parts.append(f"{size[0]}×{size[1]}")
    text = " · ".join(parts)
    return f"{text} · {NSFW_NOTE}" if nsfw else text


def file_name(record: RunRecord, image: ImageRecord) -> str:
    """A file name that says which run, seed and image it is."""
    seed = "random" if record.seed is None else str(record.seed)
    return f"flux-{record.number:03d}-seed{seed}-{image.index}.{image.extension}"


class Tile:
    """One thumbnail with its caption and buttons."""

    def __init__(self, record: RunRecord, image: ImageRecord) -> None:
        self.record, self.image = record, image
        text = caption(
            record.number,
            image.index,
            len(record.images),
            record.seed,
            (image.width, image.height),
            image.nsfw,
        )
        self.text = text
        self.picture = widgets.Image(
            value=image.thumbnail, format="jpeg", layout=widgets.Layout(max_width="100%")
        )
        colour = "#b00020" if image.nsfw else "#444"
        self.caption = widgets.HTML(
            f'<span style="color:{colour};font-size:90%">{esc(text)}</span>'
        )
        self.view_button = widgets.Button(
            description="Full size",
            icon="search-plus",
            tooltip="Show the full-size image",
            layout=widgets.Layout(width="auto"),
        )
        self.save_button = widgets.Button(
            description="Save",
            icon="save",
            tooltip="Save the full image with its metadata",
            layout=widgets.Layout(width="auto"),
        )
        self.box = widgets.VBox(
            [self.picture, self.caption, widgets.HBox([self.view_button, self.save_button])],
            layout=widgets.Layout(border="1px solid #ddd", padding="4px"),
        )


class ResultGrid:
    """Thumbnails of every run (newest first), a viewer for one full image, saving."""

    def __init__(self, folder: str = "flux-images") -> None:
        self.tiles: list[Tile] = []
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns="repeat(auto-fill, minmax(180px, 1fr))", grid_gap="8px"
            )
        )
        self.viewer_title = widgets.HTML()
        self.viewer_image = widgets.Image(format="png")
        self.viewer_close = widgets.Button(description="Close", icon="times")
        self.viewer_close.on_click(lambda _button: self.hide_full())
        self.viewer = widgets.VBox(
            [widgets.HBox([self.viewer_title, self.viewer_close]), self.viewer_image],
            layout=widgets.Layout(display="none"),
        )
        self.folder = widgets.Text(
            value=folder, description="Save to", tooltip="Folder the Save buttons write to"
        )
        self.save_all_button = widgets.Button(
            description="Save all", icon="save", tooltip="Save every image in the grid"
        )
        self.save_all_button.on_click(lambda _button: self.save_all())
        self.clear_button = widgets.Button(
            description="Clear", icon="trash", tooltip="Remove every thumbnail from the grid"
        )
        self.clear_button.on_click(lambda _button: self.clear())
        self.message = widgets.HTML()
        self.shown: ImageRecord | None = None
        tools = widgets.HBox([self.folder, self.save_all_button, self.clear_button, self.message])
        self.box = widgets.VBox([tools, self.viewer, self.grid])

    def add_run(self, record: RunRecord) -> list[Tile]:
        """Put a run's thumbnails in front of the grid."""
        tiles = [Tile(record, image) for image in record.images]
        for tile in tiles:
            tile.view_button.on_click(lambda _button, t=tile: self.show_full(t))
            tile.save_button.on_click(lambda _button, t=tile: self.save(t))
        self.tiles[:0] = tiles
        self.grid.children = tuple(tile.box for tile in self.tiles)
        return tiles

    def show_full(self, tile: Tile) -> None:
        """Send one image at full size to the viewer (only on request)."""
        self.shown = tile.image
        self.viewer_image.format = "png" if tile.image.extension == "png" else "jpeg"
        self.viewer_image.value = tile.image.data
        self.viewer_title.value = f"<b>{esc(tile.text)}</b>"
        self.viewer.layout.display = None

    def hide_full(self) -> None:
        """Hide the viewer and drop its bytes from the browser."""
        self.shown = None
        self.viewer_image.value = b""
        self.viewer.layout.display = "none"

    def save(self, tile: Tile) -> Path | None:
        """Save one image (metadata inside and a JSON sidecar); the path or None on failure."""
        from .. import images

        path = Path(self.folder.value or ".").expanduser() / file_name(tile.record, tile.image)
        try:
            saved = images.save_image(tile.image.data, path, tile.record.metadata(tile.image))
        except OSError as exc:
            self.message.value = error_html(f"Could not save {path}: {exc}")
            return None
        self.message.value = muted(f"Saved {saved}")
        return saved

    def save_all(self) -> list[Path]:
        """Save every image in the grid."""
        saved = [path for tile in self.tiles if (path := self.save(tile)) is not None]
        if saved:
            self.message.value = muted(f"Saved {len(saved)} images to {saved[0].parent}")
        return saved

    def clear(self) -> None:
        """Remove and close every tile."""
        self.hide_full()
        for tile in self.tiles:
            close_tree(tile.box)
        self.tiles = []
        self.grid.children = ()

    def close(self) -> None:
        """Close every widget of the grid."""
        self.clear()
        close_tree(self.box)
