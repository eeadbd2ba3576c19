"""Exports of a sweep run, from plain data: a labelled grid image and a self-contained HTML report.

Both take `ExportCell` rows (what the run folder's manifest knows about each cell) and a
`GridLayout` (axis labels, values and the legend); nothing here needs widgets or a network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps, features

from ..disk import write_atomically
from .axes import Cell, SweepPlan
from .ranges import format_value

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ExportCell",
    "GridLayout",
    "ReportSection",
    "grid_image",
    "grid_images",
    "html_report",
    "thumbnail_jpeg",
    "write_exports",
]

DEFAULT_MAX_PIXELS = 16_000_000
"""A grid image's pixel cap (4000 × 4000): a bigger grid is split into several images by rows."""
DEFAULT_MAX_TILE_SIDE = 512
"""The longer side of one image in a grid image (the full images are in the run folder)."""
"""Largest grid image, in pixels; tiles are scaled down to stay under it."""

_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
_MISSING = (200, 200, 200)
_MISSING_INK = (70, 70, 70)
_GAP = 2
_FALLBACK_TILE = (256, 256)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class ExportCell:
    """What an export needs to know about one cell of a run."""

    id: str
    coords: tuple[int, int, int]
    axis_values: Mapping[str, Any]
    input: Mapping[str, Any]
    """The input payload the cell sent (or will send)."""
    state: str = "waiting"
    image_path: Path | None = None
    """The full image on disk (the first, when a cell has several)."""
    thumbnail: bytes | None = None
    """A small JPEG/PNG of the image, used by the HTML report when given."""
    seed: int | None = None
    request_id: str | None = None
    error: str | None = None

    @classmethod
    def from_cell(cls, cell: Cell, **fields: Any) -> ExportCell:
        """An export row for a planned cell; `fields` set the state, image path and so on."""
        fields.setdefault("seed", cell.seed)
        return cls(cell.id, cell.coords, dict(cell.axis_values), cell.input.to_payload(), **fields)

    @property
    def title(self) -> str:
        """The axis values as ``label=value, ...``."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.axis_values.items())


@dataclass(frozen=True)
class GridLayout:
    """Labels of a sweep grid: X columns, Y rows, Z grids, and the fixed parameters."""

    x_label: str | None = None
    x_values: tuple[str, ...] = ("",)
    y_label: str | None = None
    y_values: tuple[str, ...] = ("",)
    z_label: str | None = None
    z_values: tuple[str, ...] = ("",)
    legend: Mapping[str, str] = field(default_factory=dict)
    title: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, grids)."""
        return (len(self.x_values), len(self.y_values), len(self.z_values))

    @classmethod
    def from_plan(cls, plan: SweepPlan, title: str = "") -> GridLayout:
        """The layout of a planned sweep (zip mode: one row, each column labelled by its cell)."""
        if plan.mode == "zip":
            return cls(
                x_label=" / ".join(a.label for a in plan.axes if a is not None) or None,
                x_values=tuple(
                    " / ".join(format_value(v) for v in c.axis_values.values()) for c in plan.cells
                ),
                legend=plan.legend(),
                title=title,
            )

        def values(index: int) -> tuple[str | None, tuple[str, ...]]:
            axis = plan.axes[index]
            if axis is None:
                return None, ("",)
            return axis.label, tuple(format_value(v) for v in axis.values)

        (xl, xv), (yl, yv), (zl, zv) = values(0), values(1), values(2)
        return cls(xl, xv, yl, yv, zl, zv, plan.legend(), title)


# --- drawing ---------------------------------------------------------------------------------


def _font(size: int) -> Font:
    if features.check("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()


def _line_height(font: Font) -> int:
    _, top, _, bottom = font.getbbox("Ag|")
    return int(bottom - top) + max(2, int((bottom - top) * 0.3))


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """`text` broken into lines no wider than `width` (long words split), at most `max_lines`."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:  # a word wider than the line is split
                if font.getlength(line + char) > width and line:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "...") > width:
            last = last[:-1]
        lines[-1] = last + "..."
    return lines


def _open(cell: ExportCell) -> Image.Image | None:
    """The cell's image (from disk, else its thumbnail) as RGB, or None."""
    sources: list[Any] = []
    if cell.image_path is not None and Path(cell.image_path).is_file():
        sources.append(Path(cell.image_path))
    if cell.thumbnail:
        sources.append(io.BytesIO(cell.thumbnail))
    for source in sources:
        try:
            with Image.open(source) as image:
                converted: Image.Image = image.convert("RGB")
                return converted
        except (OSError, ValueError):
            continue
    return None


def _named(axis: str | None, value: str) -> str:
    return f"{axis}: {value}" if axis and value else value


@dataclass
class _Geometry:
    scale: float
    font: Font
    line: int
    pad: int
    tile: tuple[int, int]
    title_lines: list[str]
    header_lines: list[list[str]]
    row_lines: list[list[str]]
    title_h: int
    header_h: int
    row_w: int
    size: tuple[int, int]


def _geometry(layout: GridLayout, z: int, tile: tuple[int, int], scale: float) -> _Geometry:
    nx, ny, _ = layout.shape
    tw, th = max(16, int(tile[0] * scale)), max(16, int(tile[1] * scale))
    font_size = max(10, min(48, tw // 14))
    font = _font(font_size)
    line, pad = _line_height(font), max(4, font_size // 2)
    row_width = max(120, min(tw, 400))
    # each label names its axis, as Automatic1111 writes them ("guidance_scale: 3.5")
    head_lines = [_wrap(_named(layout.x_label, v), font, tw - 2 * pad, 3) for v in layout.x_values]
    row_lines = [
        _wrap(_named(layout.y_label, v), font, row_width - 2 * pad, 6) for v in layout.y_values
    ]
    has_rows = layout.y_label is not None
    row_w = (
        max((int(font.getlength(s)) for lines in row_lines for s in lines), default=0) + 2 * pad
        if has_rows
        else 0
    )
    width = row_w + nx * (tw + _GAP) + _GAP
    axes = [
        f"{name}: {label}"
        for name, label in (("X", layout.x_label), ("Y", layout.y_label))
        if label is not None
    ]
    if layout.z_label is not None:
        axes.append(f"Z: {layout.z_label} = {layout.z_values[z]}")
    texts = [layout.title] if layout.title else []
    texts.append("   ".join(axes) if axes else "sweep")
    # the title is usually the prompt: not written twice
    texts.extend(f"{k}: {v}" for k, v in layout.legend.items() if v != layout.title)
    title_lines = [s for text in texts for s in _wrap(text, font, width - 2 * pad, 4)]
    title_h = len(title_lines) * line + 2 * pad
    header_h = (
        max(len(lines) for lines in head_lines) * line + 2 * pad
        if layout.x_label is not None
        else 0
    )
    height = title_h + header_h + ny * (th + _GAP) + _GAP
    return _Geometry(
        scale,
        font,
        line,
        pad,
        (tw, th),
        title_lines,
        head_lines,
        row_lines,
        title_h,
        header_h,
        row_w,
        (width, height),
    )


def _fit(layout: GridLayout, z: int, tile: tuple[int, int], max_pixels: int) -> _Geometry:
    nx, ny, _ = layout.shape
    scale = min(1.0, math.sqrt(max_pixels / max(1, nx * ny * tile[0] * tile[1])))
    geometry = _geometry(layout, z, tile, scale)
    while geometry.size[0] * geometry.size[1] > max_pixels and geometry.tile[0] > 16:
        scale *= 0.9
        geometry = _geometry(layout, z, tile, scale)
    if geometry.size[0] * geometry.size[1] > max_pixels:
        raise ValueError(f"a {nx}×{ny} grid cannot fit in {max_pixels} pixels")
    return geometry


def _center_text(
    draw: ImageDraw.ImageDraw, lines: list[str], box: tuple[int, int, int, int], g: _Geometry
) -> None:
    left, top, right, bottom = box
    y = top + (bottom - top - len(lines) * g.line) // 2
    for text in lines:
        x = left + (right - left - int(g.font.getlength(text))) // 2
        draw.text((x, y), text, font=g.font, fill=_INK)
        y += g.line


def grid_image(
    cells: Sequence[ExportCell],
    layout: GridLayout,
    *,
    z: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """One labelled grid (grid `z`): X values over the columns, Y values beside the rows, the
    axes and fixed parameters on top; a missing or failed cell is a grey tile with its state.

    Tiles take the size of the largest image, scaled down so the whole stays under
    `max_pixels`.
    """
    nx, ny, _ = layout.shape
    here = {(c.coords[0], c.coords[1]): c for c in cells if c.coords[2] == z}
    images = {key: _open(cell) for key, cell in here.items()}
    loaded = [im for im in images.values() if im is not None]
    tile = (
        (max(im.width for im in loaded), max(im.height for im in loaded))
        if loaded
        else _FALLBACK_TILE
    )
    shrink = min(1.0, DEFAULT_MAX_TILE_SIDE / max(tile))
    tile = (max(16, round(tile[0] * shrink)), max(16, round(tile[1] * shrink)))
    g = _fit(layout, z, tile, max_pixels)
    canvas = Image.new("RGB", g.size, _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = g.pad
    for text in g.title_lines:
        draw.text((g.pad, y), text, font=g.font, fill=_INK)
        y += g.line
    tw, th = g.tile
    top = g.title_h + g.header_h + _GAP
    for col in range(nx):
        left = g.row_w + _GAP + col * (tw + _GAP)
        if g.header_h:
            box = (left, g.title_h, left + tw, g.title_h + g.header_h)
            _center_text(draw, g.header_lines[col], box, g)
        for row in range(ny):
            y0 = top + row * (th + _GAP)
            image = images.get((col, row))
            if image is not None:
                fitted = ImageOps.contain(image, (tw, th), Image.Resampling.LANCZOS)
                canvas.paste(
                    fitted, (left + (tw - fitted.width) // 2, y0 + (th - fitted.height) // 2)
                )
                continue
            draw.rectangle((left, y0, left + tw - 1, y0 + th - 1), fill=_MISSING)
            cell = here.get((col, row))
            state = cell.state if cell is not None else "missing"
            words = [state] + ([cell.error] if cell is not None and cell.error else [])
            lines = _wrap(": ".join(words), g.font, tw - 2 * g.pad, max(1, th // g.line - 1))
            y_text = y0 + (th - len(lines) * g.line) // 2
            for text in lines:
                x = left + (tw - int(g.font.getlength(text))) // 2
                draw.text((x, y_text), text, font=g.font, fill=_MISSING_INK)
                y_text += g.line
    if g.row_w:
        for row in range(ny):
            y0 = top + row * (th + _GAP)
            _center_text(draw, g.row_lines[row], (0, y0, g.row_w, y0 + th), g)
    return canvas


def grid_images(
    cells: Sequence[ExportCell], layout: GridLayout, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[Image.Image]:
    """One grid image per Z value, each split by rows into several when it cannot fit in
    `max_pixels` (so no image hits a viewer's or a format's size limit)."""
    out: list[Image.Image] = []
    for z in range(layout.shape[2]):
        out.extend(_split_rows(cells, layout, z, max_pixels))
    return out


def _split_rows(
    cells: Sequence[ExportCell], layout: GridLayout, z: int, max_pixels: int
) -> list[Image.Image]:
    try:
        return [grid_image(cells, layout, z=z, max_pixels=max_pixels)]
    except ValueError:
        ny = layout.shape[1]
        if ny < 2:
            raise
    half = ny // 2
    parts = []
    for rows in (range(half), range(half, ny)):
        part = replace(layout, y_values=tuple(layout.y_values[r] for r in rows))
        moved = [
            replace(c, coords=(c.coords[0], c.coords[1] - rows.start, c.coords[2]))
            for c in cells
            if c.coords[1] in rows
        ]
        parts.extend(_split_rows(moved, part, z, max_pixels))
    return parts


# --- the HTML report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSection:
    """More of the report: a heading, lines of text, and a table (header, rows), all escaped."""

    title: str
    lines: Sequence[str] = ()
    header: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()
    css_class: str = "section"

    def html(self) -> str:
        """The section as HTML."""
        parts = [f'<section class="{_e(self.css_class)}"><h2>{_e(self.title)}</h2>']
        if self.lines:
            parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in self.lines) + "</ul>")
        if self.rows:
            head = "".join(f"<th>{_e(h)}</th>" for h in self.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in self.rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        parts.append("</section>")
        return "".join(parts)


def thumbnail_jpeg(cell: ExportCell, size: int = 256) -> bytes | None:
    """A JPEG thumbnail of the cell's image (its own thumbnail when it has one), or None."""
    if cell.thumbnail and cell.thumbnail[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(cell.thumbnail)) as small:
                if max(small.size) <= size:
                    return cell.thumbnail  # already a small JPEG: embedded as it is
        except OSError:
            pass
    image = _open(cell)
    if image is None:
        return None
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#141414}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:4px;vertical-align:top}
th{background:#f4f4f4}
.grid td{text-align:center}
.grid img{max-width:256px;max-height:256px;display:block;margin:auto}
.missing{width:160px;height:120px;background:#c8c8c8;color:#464646;display:flex;
 align-items:center;justify-content:center}
.cells pre{white-space:pre-wrap;max-width:40em;margin:0;font-size:85%}
.legend th{text-align:left}
small{color:#555}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _figure(cell: ExportCell | None, link_base: Path | None) -> str:
    if cell is None:
        return '<div class="missing">missing</div>'
    data = thumbnail_jpeg(cell)
    caption = f"<br><small>{_e(cell.id)} · {_e(cell.state)}</small>"
    if data is None:
        return f'<div class="missing">{_e(cell.state)}</div>{caption}'
    src = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    img = f'<img src="{src}" alt="{_e(cell.title)}" title="{_e(cell.title)}">'
    if link_base is not None and cell.image_path is not None:
        try:
            href = Path(cell.image_path).resolve().relative_to(link_base.resolve()).as_posix()
            img = f'<a href="{_e(href)}">{img}</a>'
        except ValueError:
            pass  # outside the report's folder: no link
    return img + caption


def html_report(
    cells: Sequence[ExportCell],
    layout: GridLayout,
    *,
    summary: Sequence[str] = (),
    link_base: Path | None = None,
    sections: Sequence[ReportSection] = (),
) -> str:
    """A self-contained HTML report: each grid with inline thumbnails, then every cell's axis
    values, state, seed, request id, error and parameters. Every string is escaped; nothing is
    loaded from elsewhere (thumbnails link to the full images when under `link_base`).
    `sections` (e.g. the ranking and win rates) come after the summary, before the grids."""
    nx, ny, nz = layout.shape
    title = layout.title or "fluxwidget sweep"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    parts.extend(f"<p>{_e(line)}</p>" for line in summary)
    if layout.legend:
        rows = "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in layout.legend.items()
        )
        parts.append(f'<table class="legend">{rows}</table>')
    for section in sections:
        parts.append(section.html())
    by_coords = {c.coords: c for c in cells}
    for z in range(nz):
        if layout.z_label is not None:
            parts.append(f"<h2>{_e(layout.z_label)} = {_e(layout.z_values[z])}</h2>")
        corner = " ↓ / → ".join(_e(a) for a in (layout.y_label, layout.x_label) if a is not None)
        head = "".join(f"<th>{_e(v)}</th>" for v in layout.x_values)
        parts.append(f'<table class="grid"><tr><th>{corner}</th>{head}</tr>')
        for y in range(ny):
            tds = "".join(
                f"<td>{_figure(by_coords.get((x, y, z)), link_base)}</td>" for x in range(nx)
            )
            parts.append(f"<tr><th>{_e(layout.y_values[y])}</th>{tds}</tr>")
        parts.append("</table>")
    parts.append("<h2>Cells</h2>")
    parts.append(
        '<table class="cells"><tr><th>cell</th><th>axis values</th><th>state</th><th>seed</th>'
        "<th>request id</th><th>error</th><th>parameters</th></tr>"
    )
    for cell in cells:
        params = json.dumps(dict(cell.input), indent=1, ensure_ascii=False, default=str)
        parts.append(
            f"<tr><td>{_e(cell.id)}</td><td>{_e(cell.title)}</td><td>{_e(cell.state)}</td>"
            f"<td>{_e(cell.seed)}</td><td>{_e(cell.request_id)}</td><td>{_e(cell.error)}</td>"
            f"<td><pre>{_e(params)}</pre></td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)


# --- writing into a run folder -----------------------------------------------------------------


def write_exports(
    folder: str | os.PathLike[str],
    cells: Sequence[ExportCell],
    layout: GridLayout,
    *,
    summary: Sequence[str] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sections: Sequence[ReportSection] = (),
) -> list[Path]:
    """Write ``grid.jpg`` (``grid-z1.jpg``, ... with several Z values, or a grid too big for one
    image split by rows) and ``report.html`` into
    `folder`, each atomically; returns their paths."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images = grid_images(cells, layout, max_pixels=max_pixels)
    for z, image in enumerate(images):
        path = root / ("grid.jpg" if len(images) == 1 else f"grid-z{z + 1}.jpg")
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        write_atomically(path, out.getvalue())
        written.append(path)
    report = root / "report.html"
    text = html_report(cells, layout, summary=summary, link_base=root, sections=sections)
    write_atomically(report, text.encode())
    written.append(report)
    return written
