"""Exports: the labelled grid image (size, labels, missing cells, pixel cap) and the HTML report."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from fluxwidget.sweeps.axes import SweepPlan, plan_sweep
from fluxwidget.sweeps.export import (
    ExportCell,
    GridLayout,
    grid_image,
    grid_images,
    html_report,
    write_exports,
)

HOSTILE = 'a cat <script>alert("x")</script> & "friends"'


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def _plan(*axes: str) -> SweepPlan:
    base = {"prompt": HOSTILE, "loras": [{"path": "owner/lora", "scale": 1.0}]}
    return plan_sweep(base, *axes, seed=3)


def _cells(plan: SweepPlan, tmp_path: Path, *, failed: int | None = None) -> list[ExportCell]:
    cells = []
    for cell in plan.cells:
        if cell.index == failed:
            cells.append(ExportCell.from_cell(cell, state="error", error="422: <b>bad</b>"))
            continue
        path = tmp_path / f"{cell.id}.png"
        Image.new("RGB", (64, 48), (10 + 20 * cell.index, 200, 90)).save(path)
        cells.append(
            ExportCell.from_cell(cell, state="done", image_path=path, request_id=f"req-{cell.id}")
        )
    return cells


def _blank(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    region = image.crop(box).convert("L")
    return region.getextrema() == (255, 255)


def test_grid_has_every_tile_and_its_labels(tmp_path: Path) -> None:
    plan = _plan("guidance_scale=2,3.5,5", "loras[0].scale=0.4-1.2 [3]")
    cells = _cells(plan, tmp_path, failed=4)
    layout = GridLayout.from_plan(plan, title="LoRA × guidance")
    assert layout.x_values == ("2", "3.5", "5")
    assert layout.y_values == ("0.4", "0.8", "1.2")
    image = grid_image(cells, layout)
    width, height = image.size
    # 3 × 3 tiles of 64 × 48 plus a row-label column and the title and header strips
    assert width > 3 * 64
    assert height > 3 * 48
    tile_top = height - 3 * (48 + 2)  # tiles sit 2 px apart, inside a 2 px margin
    tile_left = width - 3 * (64 + 2)
    # each image sits in its cell: the bottom-right tile has cell c0008's colour
    assert image.getpixel((width - 2 - 32, height - 2 - 24)) == pytest.approx(
        (10 + 20 * 8, 200, 90), abs=3
    )
    # the failed centre cell is a grey tile with its state written on it
    centre = image.crop((tile_left + 66, tile_top + 50, tile_left + 66 + 64, tile_top + 50 + 48))
    darkest, lightest = centre.convert("L").getextrema()
    assert lightest == 200  # the grey tile
    assert darkest < 120  # with its state text
    # labels are drawn: the header strip above the tiles and the row-label column are not blank
    assert not _blank(image, (tile_left, tile_top - 20, width, tile_top - 2))
    assert not _blank(image, (0, tile_top, tile_left - 2, height))
    assert _blank(image, (0, tile_top - 20, tile_left - 2, tile_top - 2))  # the empty corner
    assert not _blank(image, (0, 0, width, 20))  # the title/legend


def test_labels_change_the_picture(tmp_path: Path) -> None:
    plan = _plan("guidance_scale=2,3", "num_inference_steps=10,20")
    cells = _cells(plan, tmp_path)
    layout = GridLayout.from_plan(plan)
    relabelled = GridLayout(
        layout.x_label, ("7", "8"), layout.y_label, layout.y_values, legend=layout.legend
    )
    one, two = grid_image(cells, layout), grid_image(cells, relabelled)
    assert one.size == two.size
    diff = ImageChops.difference(one, two).getbbox()
    assert diff is not None  # only the column headers differ
    tile_top = one.height - 2 * (48 + 2)
    assert diff[3] <= tile_top


def test_pixel_cap_scales_tiles_down(tmp_path: Path) -> None:
    plan = _plan("seed=1-6", "guidance_scale=1-4")
    cells = [
        ExportCell.from_cell(c, state="done", thumbnail=_jpeg((1024, 768), (0, 0, 255)))
        for c in plan.cells
    ]
    layout = GridLayout.from_plan(plan)
    full = grid_image(cells, layout)
    assert 6 * 400 < full.width < 6 * 600  # tiles capped at DEFAULT_MAX_TILE_SIDE (512)
    capped = grid_image(cells, layout, max_pixels=2_000_000)
    assert capped.width * capped.height <= 2_000_000
    assert capped.width < full.width
    assert capped.width > 6 * 100  # scaled, not collapsed


def test_one_image_per_z_value(tmp_path: Path) -> None:
    plan = _plan("guidance_scale=2,3", "seed=1,2", "num_inference_steps=10,20,30")
    layout = GridLayout.from_plan(plan)
    assert layout.shape == (2, 2, 3)
    images = grid_images(_cells(plan, tmp_path), layout)
    assert len(images) == 3
    assert images[0].tobytes() != images[2].tobytes()  # different tiles and Z label


def test_missing_cells_and_no_images_at_all() -> None:
    plan = _plan("guidance_scale=2,3")
    layout = GridLayout.from_plan(plan)
    image = grid_image([ExportCell.from_cell(plan.cells[0], state="queued")], layout)
    assert image.width >= 2 * 256  # fallback tile size
    assert image.getpixel((image.width - 10, image.height - 10)) == (200, 200, 200)


def test_html_report_is_escaped_and_self_contained(tmp_path: Path) -> None:
    plan = _plan("guidance_scale=2,3.5", 'prompt_sr=cat,"<img src=x onerror=alert(1)>"')
    cells = _cells(plan, tmp_path, failed=1)
    text = html_report(cells, GridLayout.from_plan(plan, title="<b>title</b>"), summary=["9 <i>"])
    assert "<script>" not in text
    assert "&lt;script&gt;alert(" in text
    assert "<img src=x" not in text
    assert "&lt;b&gt;title&lt;/b&gt;" in text
    assert "422: &lt;b&gt;bad&lt;/b&gt;" in text
    # no external resources: every src is inline data, no http(s) link or stylesheet
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 3  # the three cells with images
    assert all(s.startswith("data:image/jpeg;base64,") for s in sources)
    assert "http" not in text.replace("http-equiv", "")
    thumb = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert thumb.size == (64, 48)
    for cell in cells:
        assert cell.id in text
    assert "req-c0000" in text
    assert "&quot;seed&quot;: 3" in text


def test_write_exports_into_the_run_folder(tmp_path: Path) -> None:
    plan = _plan("guidance_scale=2,3", "seed=1,2", "num_inference_steps=10,20")
    run = tmp_path
    (run / "images").mkdir()
    cells = _cells(plan, run / "images")
    written = write_exports(run, cells, GridLayout.from_plan(plan), summary=["4 cells"])
    assert [p.name for p in written] == ["grid-z1.jpg", "grid-z2.jpg", "report.html"]
    assert Image.open(written[0]).format == "JPEG"
    report = written[2].read_text()
    assert 'href="images/c0000.png"' in report  # thumbnails link to the full images
    assert not list(run.glob(".*.tmp"))


def test_report_thumbnails_are_small() -> None:
    plan = _plan("guidance_scale=2,3")
    big = ExportCell.from_cell(plan.cells[0], state="done", thumbnail=_jpeg((1024, 768), (9, 9, 9)))
    small_jpeg = _jpeg((128, 96), (9, 9, 9))
    small = ExportCell.from_cell(plan.cells[1], state="done", thumbnail=small_jpeg)
    text = html_report([big, small], GridLayout.from_plan(plan))
    sources = re.findall(r'src="data:image/jpeg;base64,([^"]*)"', text)
    assert Image.open(io.BytesIO(base64.b64decode(sources[0]))).size == (256, 192)
    assert base64.b64decode(sources[1]) == small_jpeg  # a small JPEG is embedded as it is


def test_the_prompt_is_not_written_twice_when_it_is_the_title(tmp_path: Path) -> None:
    plan = plan_sweep({"prompt": "a fox"}, "guidance_scale=2,3", seed=3)
    cells = _cells(plan, tmp_path)
    assert plan.legend()["prompt"] == "a fox"
    as_title = grid_image(cells, GridLayout.from_plan(plan, title="a fox"))
    other_title = grid_image(cells, GridLayout.from_plan(plan, title="a cat"))
    assert as_title.width == other_title.width
    assert as_title.height < other_title.height  # one legend line fewer


def test_a_grid_too_big_for_one_image_is_split_by_rows_and_tiles_are_capped(
    tmp_path: Path,
) -> None:
    from PIL import Image

    from fluxwidget.sweeps.export import DEFAULT_MAX_TILE_SIDE, ExportCell, GridLayout, grid_images

    big = tmp_path / "big.png"
    Image.new("RGB", (1024, 1024), (200, 30, 30)).save(big)
    layout = GridLayout("seed", tuple(str(i) for i in range(4)), "guidance", ("1", "2", "3", "4"))
    cells = [
        ExportCell(f"c{x}{y}", (x, y, 0), {}, {}, state="done", image_path=big)
        for x in range(4)
        for y in range(4)
    ]
    (one,) = grid_images(cells, layout)
    assert max(one.size) < 4 * DEFAULT_MAX_TILE_SIDE + 1000  # tiles capped, not 1024 px each
    parts = grid_images(cells, layout, max_pixels=20_000)
    assert len(parts) > 1  # split by rows instead of failing
    assert all(part.width * part.height <= 20_000 for part in parts)
