"""Light saved notebooks and one notice without a kernel (issue 17, items 2–4), without a browser.

- a photo-like 1024² image adds ≤ 15 kB of saved widget state to the gallery;
- thumbnails of earlier sessions' runs are asked for by the browser, never saved;
- the panel and a sweep view are marked as snapshot roots with one `LiveNotice` first;
- each tab page has its own Layout (lighten shares equal ones).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import ipywidgets as widgets
import pytest
from PIL import Image

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator
from fluxwidget.schema import FluxLoraInput
from fluxwidget.ui import FluxPanel
from fluxwidget.ui import _widgets as quiet
from fluxwidget.ui.gallery import GalleryImage, ImageGallery
from fluxwidget.ui.jobs import make_thumbnail
from fluxwidget.ui.live_notice import LiveNotice

MAX_SAVED_PER_IMAGE = 15_000


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[FluxClient]:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as flux:
        yield flux


def photo_like(side: int = 1024, seed: int = 7) -> bytes:
    """Noise at four scales blended: smooth areas and fine detail, like a photograph."""
    rng = random.Random(seed)
    picture: Image.Image | None = None
    for scale, weight in ((8, 0.35), (32, 0.3), (128, 0.2), (side, 0.15)):
        raw = bytes(rng.getrandbits(8) for _ in range(scale * scale * 3))
        layer = Image.frombytes("RGB", (scale, scale), raw).resize(
            (side, side), Image.Resampling.BICUBIC
        )
        picture = layer if picture is None else Image.blend(picture, layer, weight / (weight + 0.5))
    assert picture is not None
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def saved(models: list[widgets.Widget]) -> int:
    state = widgets.Widget.get_manager_state(drop_defaults=True, widgets=models)
    return len(json.dumps(state))


def test_a_photo_like_image_adds_at_most_15_kb_of_saved_state() -> None:
    thumb, width, height = make_thumbnail(photo_like())
    gallery = ImageGallery()
    try:
        empty = saved([gallery])
        summary = "#1 · seed 7 · 'a tiger eye' · landscape_4_3 · 28 steps · guidance 3.5"
        gallery.add_run("r1", "1", [GalleryImage(thumb, width, height)] * 4, summary=summary)
        per_image = (saved([gallery]) - empty) / 4
        assert per_image <= MAX_SAVED_PER_IMAGE, per_image
    finally:
        gallery.close()


async def test_earlier_runs_thumbnails_are_asked_for_not_saved(
    client: FluxClient, tmp_path: Path
) -> None:
    from fluxwidget.pipeline import JobPipeline
    from fluxwidget.store.runs import Run

    root = tmp_path / "runs"
    pipeline = JobPipeline(client, Run.create(root))
    for n in range(3):
        await pipeline.run(FluxLoraInput(prompt=f"earlier {n}", num_inference_steps=2))
    pipeline.run_folder.save()

    panel = FluxPanel(client, runs_root=root)
    try:
        await panel.wait()
        history = panel.history.list
        assert history.entry_count == 1  # one row for the run folder, its 3 jobs inside
        assert history.thumbs == []  # nothing of them in the saved state
        assert all(entry["lazy"] == "yes" for entry in history.entries)
        sent: list[tuple[object, list[bytes]]] = []
        history.send = lambda content, buffers=None: sent.append((content, buffers or []))  # type: ignore[method-assign]
        entry_id = history.entries[0]["id"]
        history._received(history, {"kind": "thumb", "id": entry_id}, [])
        history._received(history, {"kind": "thumb", "id": "nope"}, [])
        (first, first_buffers), (second, _) = sent
        assert first == {"kind": "thumb", "id": entry_id, "ok": True}
        assert max(Image.open(io.BytesIO(first_buffers[0])).size) <= 64
        assert second == {"kind": "thumb", "id": "nope", "ok": False}
    finally:
        panel.close()


def test_panel_is_a_snapshot_root_with_one_notice(tmp_path: Path) -> None:
    panel = FluxPanel(runs_root=tmp_path)
    try:
        root = panel.widget
        assert "fw-snapshot-root" in root._dom_classes
        assert isinstance(root.children[0], LiveNotice)
        assert sum(isinstance(child, LiveNotice) for child in root.children) == 1
        assert "fw-live-only" in panel.banner._dom_classes
        assert "fw-live-only" in panel.keys.box._dom_classes
    finally:
        panel.close()


def test_notice_css_hides_disconnected_icons_only_inside_roots() -> None:
    css = LiveNotice._css
    assert ".fw-snapshot-root .jupyter-widgets-disconnected::before" in css
    assert ".fw-snapshot-root.jupyter-widgets-disconnected::before" in css
    assert "\n.jupyter-widgets-disconnected::before" not in css


def test_a_new_panel_sends_only_the_models_it_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbclient saves every model whose comm was ever opened: a Layout made and then replaced
    by a shared one would still weigh ~1.2 kB in the file. Built quietly, none is sent."""
    import ipywidgets.widgets.widget as widget_module

    opened: list[str] = []
    create = widget_module.comm.create_comm

    def counting(**kwargs: object) -> object:
        made = create(**kwargs)
        opened.append(made.comm_id)
        return made

    monkeypatch.setattr(widget_module.comm, "create_comm", counting)
    panel = FluxPanel(runs_root=tmp_path)
    try:
        live = set(widget_module._instances)
        closed = [comm_id for comm_id in opened if comm_id not in live]
        assert opened
        assert closed == [], f"{len(closed)} of {len(opened)} models were sent, then closed"
    finally:
        panel.close()


def test_component_source_is_saved_without_comments_or_indentation(tmp_path: Path) -> None:
    """Each instance's state holds its component's JS and CSS: stripped, still the same code."""
    import re
    import shutil
    import subprocess

    from fluxwidget.ui._thumbs import _STATIC, static_text, strip_js

    node = shutil.which("node")
    for path in sorted(_STATIC.iterdir()):
        raw, saved = path.read_text(encoding="utf-8"), static_text(path.name)
        assert len(saved) <= len(raw)
        if path.suffix != ".js":
            continue
        assert saved != raw, f"{path.name}: the scan gave up"
        code = "\n".join(line for line in raw.splitlines() if not line.strip().startswith("//"))
        assert re.sub(r"\s", "", saved) == re.sub(r"\s", "", code)
        if node is not None:
            copy = tmp_path / f"{path.stem}.mjs"
            copy.write_text(saved, encoding="utf-8")
            check = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
            assert check.returncode == 0, f"{path.name} stripped: {check.stderr}"
    # a template literal's own lines are kept as they are; a regular expression stops the scan
    source = "const a = `one\n    two ${x + `\n  three`}\n  // four`;\n  // gone\n  b();\n"
    assert strip_js(source) == "const a = `one\n    two ${x + `\n  three`}\n  // four`;\nb();\n"
    assert strip_js("  x = s.replace(/`/g, '');\n") == "  x = s.replace(/`/g, '');\n"


def test_hidden_parts_are_sent_when_first_shown(tmp_path: Path) -> None:
    """The image modes' rows and the Show code tabs weigh nothing in a saved notebook until
    they are first shown; then they are in the panel's tree with their state sent."""
    panel = FluxPanel(runs_root=tmp_path)
    try:
        form, code = panel.form, panel.code
        assert form.image_row not in form.widget.children
        assert form.image_row.comm is None  # not sent yet
        assert form.mask_painter.comm is None
        assert code.tabs is None
        assert code.pages == []
        assert code.box.children == ()

        panel.input_mode = "image-to-image"
        assert form.widget.children[2:4] == (form.image_row, form.mask_row)
        assert form.image_row.comm is not None
        assert form.image_row.layout.display is None
        assert form.pickers["image_url"].box.comm is not None
        assert form.mask_painter.comm is not None  # sent with its (still hidden) row
        panel.input_mode = "inpainting"
        panel.input_mode = "text-to-image"
        assert list(form.widget.children).count(form.image_row) == 1  # added once

        panel.set(prompt="a tiger eye")
        code.toggle.value = True
        assert code.tabs is not None
        assert code.box.children == (code.tabs,)
        assert len(code.pages) == 3
        assert all(page.comm is not None for page in code.pages)
        assert "FAL_KEY" in code.pages[0].value
    finally:
        panel.close()
    assert form.mask_painter.comm is None


def test_other_widgets_behave_as_usual_while_a_panel_holds_parts(tmp_path: Path) -> None:
    """While a panel's image rows wait unsent, ipywidgets' open/close/model_id are ours: any
    other widget (another library's, the user's own) still opens at once, has its model id
    and closes as usual; once nothing is held, ipywidgets' own methods are back."""
    panel = FluxPanel(runs_root=tmp_path)
    try:
        assert panel.form.image_row.comm is None  # held
        assert widgets.Widget.open is not quiet._real_open
        slider = widgets.IntSlider(value=3)
        assert slider.comm is not None
        assert slider.model_id == slider.comm.comm_id
        box = widgets.VBox([slider])
        assert box.get_state()["children"] == [f"IPY_MODEL_{slider.model_id}"]
        box.close()
        slider.close()
        assert slider.comm is None
    finally:
        panel.close()
    if not quiet._held:  # (another test's panel left open would still hold its parts)
        assert widgets.Widget.open is quiet._real_open  # nothing held: ipywidgets' own again


def test_a_script_with_a_panel_exits_cleanly(tmp_path: Path) -> None:
    """Widgets still held at exit are dropped before the interpreter shuts down (finalized
    later, through this package's half torn-down module, the process crashed: SIGSEGV)."""
    import subprocess
    import sys

    script = (
        "from fluxwidget import FluxPanel\n"
        f"closed = FluxPanel(runs_root={str(tmp_path)!r}); closed.close()\n"
        f"left_open = FluxPanel(runs_root={str(tmp_path)!r})\n"
        "print('made')\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "made"
