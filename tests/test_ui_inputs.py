"""The panel's input modes (text → image, image → image, inpaint), the image picker (path, URL,
browser upload), the mask painter and what Show code and the job rows say about input files.
Real ipywidgets objects, no browser; jobs against a real emulator on loopback."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ipywidgets.widgets.widget import _instances
from PIL import Image

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator
from fluxwidget.schema import FluxLoraInput, ImageToImageInput, InpaintingInput, InputError
from fluxwidget.ui import FluxPanel
from fluxwidget.ui.controls import SAME_SIZE, ParameterForm
from fluxwidget.ui.image_input import PREVIEW_SIDE, inspect_image, save_input
from fluxwidget.ui.mask_painter import MaskPainter
from fluxwidget.ui.panel import UPLOADING

SECRET = "sk-live-0123:do-not-leak-this-secret"


def png(size: tuple[int, int] = (640, 480), colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def browser_upload(data: bytes, name: str = "photo.png") -> tuple[dict[str, object], ...]:
    """A FileUpload value as ipywidgets 8 sets it from the browser."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


async def until(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(png())
    return path


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[FluxClient]:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as flux:
        yield flux


@pytest.fixture
async def panel(client: FluxClient, tmp_path: Path) -> AsyncIterator[FluxPanel]:
    flux_panel = FluxPanel(client, runs_root=tmp_path / "runs")
    yield flux_panel
    await flux_panel.wait()
    flux_panel.close()


# --- modes ------------------------------------------------------------------------------------


async def test_switching_modes_changes_the_form_and_the_params_type(
    panel: FluxPanel, photo: Path
) -> None:
    form = panel.form
    panel.set(prompt="a tiger eye")
    assert panel.input_mode == "text-to-image"
    assert type(panel.params) is FluxLoraInput
    assert form.image_row.layout.display == "none"
    assert form.mask_row.layout.display == "none"

    panel.input_mode = "image-to-image"
    assert form.image_row.layout.display is None
    assert form.mask_row.layout.display == "none"
    assert form.image_size.value == SAME_SIZE  # the default: the input image's size
    assert panel.generate_button.disabled  # no image yet
    assert "required" in form.errors["image_url"].value
    strength = form.controls["strength"]
    assert (strength.min, strength.max, strength.value) == (0.01, 1.0, 0.85)  # from the schema
    assert strength.slider.step == 0.01
    form.pickers["image_url"].value = str(photo)
    params = panel.params
    assert type(params) is ImageToImageInput
    assert params.image_url == str(photo)
    assert params.image_size is None
    assert panel.input_model.endpoint_id == "fal-ai/flux-lora/image-to-image"

    panel.input_mode = "inpainting"
    assert form.mask_row.layout.display is None
    with pytest.raises(InputError) as raised:
        _ = panel.params
    assert [p.field for p in raised.value.problems] == ["mask_url"]

    panel.input_mode = "text-to-image"
    assert type(panel.params) is FluxLoraInput
    assert form.image_size.value == "landscape_4_3"
    with pytest.raises(ValueError, match="input_mode"):
        panel.input_mode = "video"


async def test_set_switches_the_mode_from_the_fields(panel: FluxPanel, photo: Path) -> None:
    panel.set(prompt="a cat", image_url=str(photo), strength=0.4)
    assert panel.input_mode == "image-to-image"
    assert panel.params == ImageToImageInput(prompt="a cat", image_url=str(photo), strength=0.4)
    panel.set(strength=0.3)  # stays image → image
    assert panel.params.strength == 0.3  # type: ignore[attr-defined]
    panel.set(mask_url=str(photo))
    assert panel.input_mode == "inpainting"
    assert isinstance(panel.params, InpaintingInput)
    with pytest.raises(InputError):
        panel.set(strength=0)  # out of range: nothing changes
    assert panel.params.strength == 0.3  # type: ignore[attr-defined]
    panel.set(FluxLoraInput(prompt="back to text"))  # a model switches to its own mode
    assert panel.input_mode == "text-to-image"
    assert type(panel.params) is FluxLoraInput
    panel.restore_input({"prompt": "b", "image_url": "https://example.com/a.png"})
    assert panel.input_mode == "image-to-image"
    assert panel.form.pickers["image_url"].value == "https://example.com/a.png"


# --- the picker -------------------------------------------------------------------------------


async def test_invalid_inputs_show_an_error_next_to_the_field_before_any_request(
    panel: FluxPanel, emu: Emulator, tmp_path: Path
) -> None:
    panel.set(prompt="x")
    panel.input_mode = "image-to-image"
    picker = panel.form.pickers["image_url"]
    picker.value = str(tmp_path / "missing.png")
    assert "no such file" in picker.error.value
    assert panel.generate_button.disabled
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    picker.value = str(text)
    assert "is not an image" in picker.error.value
    assert panel.generate_button.disabled
    panel.generate_button.click()
    await panel.wait()
    assert panel.jobs == []
    assert emu.submit_count == 0
    picker.value = "https://example.com/photo.png"  # a URL: fal fetches it, no preview
    assert picker.error.value == ""
    assert picker.image is None
    assert not panel.generate_button.disabled


async def test_a_browser_upload_lands_in_inputs_and_becomes_image_url(panel: FluxPanel) -> None:
    panel.set(prompt="x")
    panel.input_mode = "image-to-image"
    picker = panel.form.pickers["image_url"]
    data = png((800, 600), "orange")
    picker.upload.value = browser_upload(data)
    assert picker.upload.value == ()  # cleared at once: no large bytes kept in the state
    await panel.wait()
    assert panel.runs_folder is not None
    saved = Path(picker.value)
    assert saved.parent == panel.runs_folder.path / "inputs"
    assert await asyncio.to_thread(saved.read_bytes) == data
    assert saved.suffix == ".png"
    assert panel.params.image_url == str(saved)  # type: ignore[attr-defined]
    # a preview thumbnail of at most 256 px, and the image's size
    assert picker.image is not None
    assert (picker.image.width, picker.image.height) == (800, 600)
    preview = Image.open(io.BytesIO(picker.preview.value))
    assert max(preview.size) <= PREVIEW_SIDE
    # the same image again is written once (content-addressed)
    picker.upload.value = browser_upload(data, "again.png")
    await panel.wait()
    assert len(list(saved.parent.iterdir())) == 1

    picker.upload.value = browser_upload(b"%PDF-1.7 not an image", "paper.png")
    await panel.wait()
    assert "paper.png is not an image" in picker.error.value
    assert panel.generate_button.disabled
    assert len(list(saved.parent.iterdir())) == 1


def test_save_input_refuses_non_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an image"):
        save_input(tmp_path, b"hello")
    path = save_input(tmp_path, png((10, 10)), prefix="mask-")
    assert path.name.startswith("mask-")
    assert path.parent.name == "inputs"
    assert inspect_image(path.read_bytes()).width == 10


# --- the mask painter -------------------------------------------------------------------------


def test_the_painter_rasterises_strokes_at_the_image_full_size() -> None:
    painter = MaskPainter()
    try:
        info = inspect_image(png((1200, 800)))
        painter.set_image(info.thumbnail, 1200, 800)
        assert painter.size == (1200, 800)
        assert not painter.painted
        # what the browser sends at the end of a stroke: normalised points, brush in percent
        painter._received(
            painter,
            {"kind": "stroke", "points": [0.1, 0.5, 0.9, 0.5], "brush": 10, "erase": False},
            [],
        )
        mask = Image.open(io.BytesIO(painter.mask_png()))
        assert mask.size == (1200, 800)
        assert mask.getpixel((600, 400)) == 255  # on the stroke
        assert mask.getpixel((600, 400 + 50)) == 255  # within the brush (120 px across)
        assert mask.getpixel((600, 400 + 70)) == 0  # outside it
        assert mask.getpixel((10, 10)) == 0
        assert {value for _count, value in mask.getcolors()} == {0, 255}  # black and white
        # the preview the canvas shows: the thumbnail's size, 1 bit
        preview = Image.open(io.BytesIO(painter.preview))
        assert preview.size == Image.open(io.BytesIO(painter.image)).size
        assert len(painter.preview) < 4000
        painter._received(painter, {"kind": "stroke", "points": [0.5, 0.5], "brush": 4,
                                    "erase": True}, [])  # fmt: skip
        mask = Image.open(io.BytesIO(painter.mask_png()))
        assert mask.getpixel((600, 400)) == 0  # erased
        painter._received(painter, {"kind": "invert"}, [])
        mask = Image.open(io.BytesIO(painter.mask_png()))
        assert mask.getpixel((10, 10)) == 255
        assert mask.getpixel((600, 400)) == 255
        assert mask.getpixel((300, 400)) == 0
        painter._received(painter, {"kind": "clear"}, [])
        assert not painter.painted
        assert Image.open(io.BytesIO(painter.mask_png())).getextrema() == (0, 0)
        # junk from the browser is ignored, never an exception
        painter._received(painter, {"kind": "stroke", "points": ["x", None, 1e400]}, [])
        painter._received(painter, "nonsense", [])
    finally:
        painter.close()


async def test_painting_writes_the_mask_into_inputs_as_mask_url(
    panel: FluxPanel, photo: Path
) -> None:
    panel.set(prompt="a hat", image_url=str(photo), mask_url="https://example.com/m.png")
    panel.input_mode = "inpainting"
    painter = panel.mask_painter
    assert painter.size == (640, 480)  # the picker's image, at its full size
    painter.stroke([(0.25, 0.25), (0.75, 0.75)], brush=8)
    await panel.wait()
    mask_path = Path(panel.form.pickers["mask_url"].value)
    assert mask_path.parent == panel.runs_folder.path / "inputs"  # type: ignore[union-attr]
    assert mask_path.name.startswith("mask-")
    mask = Image.open(mask_path)
    assert mask.size == (640, 480)
    assert mask.getpixel((320, 240)) == 255
    assert mask.getpixel((600, 40)) == 0
    params = panel.params
    assert isinstance(params, InpaintingInput)
    assert params.mask_url == str(mask_path)
    # a new input image starts a new (empty) mask: the painted one is dropped
    other = photo.with_name("other.png")
    other.write_bytes(png((300, 200), "navy"))
    panel.form.pickers["image_url"].value = str(other)
    assert painter.size == (300, 200)
    assert panel.form.pickers["mask_url"].value == ""
    assert panel.generate_button.disabled


async def test_a_mask_of_another_size_is_refused(panel: FluxPanel, photo: Path) -> None:
    small = photo.with_name("small.png")
    small.write_bytes(png((64, 64), "white"))
    panel.set(prompt="x", image_url=str(photo), mask_url=str(small))
    assert "same size" in panel.form.pickers["mask_url"].error.value
    assert panel.generate_button.disabled


# --- running, code, state ---------------------------------------------------------------------


async def test_generate_image_to_image_sends_the_input_to_its_endpoint(
    panel: FluxPanel, emu: Emulator
) -> None:
    """The submit goes to fal-ai/flux-lora/image-to-image with the image and strength. An
    emulator that serves image-to-image (the backend branch) completes it with images; one that
    serves only text-to-image refuses it: then only the submitted request is checked here."""
    image = "https://example.com/photo.png"
    panel.set(prompt="a watercolour", image_url=image, strength=0.5, num_inference_steps=2)
    try:
        output = await panel.generate()
    except Exception as exc:
        print("image-to-image on this emulator:", exc)
        output = None
    posts = [path for method, path, _status in emu.calls if method == "POST"]
    assert "/fal-ai/flux-lora/image-to-image" in posts
    job = panel.jobs[0]
    assert job.job is not None
    assert job.job.endpoint == "fal-ai/flux-lora/image-to-image"
    assert job.job.input["image_url"] == image
    assert job.job.input["strength"] == 0.5
    if output is not None:
        assert output.images
        assert panel.gallery.entry_count >= 1


async def test_rows_say_uploading_for_local_inputs_and_results_show_the_input(
    panel: FluxPanel, photo: Path
) -> None:
    panel.set(prompt="x", image_url=str(photo), num_inference_steps=2)
    job = panel._start(panel.params)
    assert job.row.text == UPLOADING
    assert panel._input_tiles[job.number][0][0] == "input"
    # the results area shows the input beside the images (a tile marked as input)
    from fluxwidget.schema import FluxLoraOutput
    from fluxwidget.ui.records import ImageRecord, RunRecord

    thumb = inspect_image(png((64, 48))).thumbnail
    record = RunRecord(
        job.number, panel.params, FluxLoraOutput(images=[], seed=3),
        (ImageRecord(0, b"", thumb, 640, 480),), "req-1", 0.1,
    )  # fmt: skip
    panel._add_record(record)
    entries = [panel.gallery.entry(i) for i in panel.gallery.entry_ids()]
    assert entries[0]["role"] == "input"
    assert entries[0]["caption"] == "input · 640×480"
    assert "role" not in entries[1]


async def test_show_code_uploads_local_files_and_uses_the_right_model_and_endpoint(
    emu: Emulator, photo: Path, tmp_path: Path
) -> None:
    panel = FluxPanel(api_key=SECRET, runs_root=tmp_path / "runs")
    try:
        panel.set(prompt="a cat", image_url=str(photo), mask_url=str(photo), strength=0.6)
        panel.code.toggle.value = True
        code = panel.code.code
        assert f"image_url = await client.upload({str(photo)!r})" in code["fluxwidget"]
        assert "InpaintingInput(" in code["fluxwidget"]
        assert "image_url=image_url" in code["fluxwidget"]
        assert "/fal-ai/flux-lora/inpainting'" in code["httpx"]
        assert "/storage/auth/token" in code["httpx"]
        assert "payload['image_url'] = upload(http," in code["httpx"]
        assert "'\"$IMAGE_URL\"'" in code["cURL"]
        assert "fal-ai/flux-lora/inpainting" in code["cURL"]
        assert "--data-binary @" in code["cURL"]
        for text in code.values():
            assert SECRET not in text
        compile(code["fluxwidget"], "<snippet>", "exec", flags=0x2000)  # top-level await
    finally:
        panel.close()


async def test_no_key_and_no_large_bytes_in_widget_state(
    emu: Emulator, photo: Path, tmp_path: Path
) -> None:
    panel = FluxPanel(api_key=SECRET, runs_root=tmp_path / "runs")
    try:
        panel.set(prompt="x", image_url=str(photo))
        panel.input_mode = "inpainting"
        panel.form.pickers["image_url"].upload.value = browser_upload(png((2000, 1500)))
        await panel.wait()
        panel.mask_painter.stroke([(0.5, 0.5)], brush=20)
        await panel.wait()
        states = [w.get_state() for w in list(_instances.values())]
        text = json.dumps(states, default=lambda v: f"<{len(v)} bytes>")
        assert SECRET not in text
        for state in states:
            for value in state.values():
                if isinstance(value, (bytes, memoryview)):
                    assert len(value) < 64_000  # thumbnails and a 1-bit preview only
    finally:
        panel.close()


def test_form_alone_has_no_store_and_says_so() -> None:
    form = ParameterForm()
    try:
        form.mode.value = "image-to-image"
        picker = form.pickers["image_url"]
        picker.upload.value = browser_upload(png((10, 10)))
        assert "need a panel" in picker.error.value
        assert picker.upload.value == ()
    finally:
        form.close()


def test_strength_slider_snaps_to_the_value_not_float_noise() -> None:
    form = ParameterForm()
    try:
        strength = form.controls["strength"]
        strength.slider.value = 0.01 + 84 * 0.01  # what a browser slider sends: 0.85000…01
        assert strength.value == 0.85
    finally:
        form.close()


async def test_a_mask_file_of_the_image_size_shows_in_the_painter(
    panel: FluxPanel, photo: Path
) -> None:
    mask = Image.new("L", (640, 480), 0)
    mask.paste(255, (0, 0, 320, 480))  # the left half
    path = photo.with_name("mask.png")
    await asyncio.to_thread(mask.save, path)
    panel.set(prompt="x", image_url=str(photo), mask_url=str(path))
    painter = panel.mask_painter
    assert painter.painted
    shown = Image.open(io.BytesIO(painter.mask_png()))
    assert shown.getpixel((10, 10)) == 255
    assert shown.getpixel((630, 10)) == 0
    assert panel.form.pickers["mask_url"].preview.layout.display == "none"  # the painter shows it


async def test_a_job_row_shows_the_upload_in_megabytes(panel: FluxPanel, photo: Path) -> None:
    panel.set(prompt="x", image_url=str(photo), num_inference_steps=2)
    job = panel._start(panel.params)
    job._upload_progress(str(photo), 40_000_000, 120_000_000)  # as the client reports it
    assert job.row.text == f"Uploading {photo.name}: 40/120 MB"
    await panel.wait()
