"""The image components (ImageGallery, SweepGrid): one model each, thumbnails sent once.

A counting Comm stands in for the kernel's comm (ipywidgets asks `comm.create_comm` for one), so
the bytes each component sends to the browser are measured, not guessed. Where a cell's end
matters (headless execution), cells run in a real IPython shell.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import comm
import ipywidgets as widgets
import pytest
from comm.base_comm import BaseComm
from ipywidgets.widgets.widget import _instances
from PIL import Image

from fluxwidget.ui.gallery import GalleryImage, ImageGallery
from fluxwidget.ui.sweep_grid import SweepGrid


class CountingComm(BaseComm):
    """A comm that keeps every message it would publish (JSON size and buffer sizes)."""

    sent: ClassVar[list[tuple[str, int, int]]] = []
    data: ClassVar[list[tuple[str, dict[str, Any], list[bytes]]]] = []
    """The same messages in full: (comm id, data, buffers)."""

    def publish_msg(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        text = json.dumps(data or {}, default=str)
        CountingComm.sent.append(
            (msg_type, len(text), sum(len(memoryview(b).cast("B")) for b in buffers or ()))
        )
        CountingComm.data.append(
            (
                self.comm_id,
                dict(data or {}),
                [bytes(memoryview(b).cast("B")) for b in buffers or ()],
            )
        )


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int, int]]]:
    CountingComm.sent = []
    CountingComm.data = []
    monkeypatch.setattr(comm, "create_comm", CountingComm)
    return CountingComm.sent


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython shell: its cells end with ``post_execute``, as in a kernel."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    try:
        yield ip
    finally:
        InteractiveShell.clear_instance()


def state_updates(widget: widgets.Widget) -> list[tuple[dict[str, Any], list[bytes]]]:
    """The state updates (not custom messages) a widget sent: (state, buffers)."""
    return [
        (data["state"], buffers)
        for comm_id, data, buffers in CountingComm.data
        if comm_id == widget.model_id and data.get("method") == "update"
    ]


def run_cell(ip: Any, code: str) -> None:
    result = ip.run_cell(code)
    result.raise_error()


def jpeg(seed: int, size: tuple[int, int] = (192, 144)) -> bytes:
    """A real JPEG thumbnail with enough detail to weigh like one (about 10 kB)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), (x * 7) % 256, 90) for x in range(size[0] * size[1])])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


def saved_state_bytes(*parts: widgets.Widget) -> int:
    """Size of the saved widget state (what a notebook stores) of these models."""
    state = widgets.Widget.get_manager_state(drop_defaults=True, widgets=list(parts))
    return len(json.dumps(state))


def test_sweep_grid_sends_each_thumbnail_once_and_saves_light(
    counted: list[tuple[str, int, int]],
) -> None:
    before = set(_instances)
    grid = SweepGrid(
        "guidance_scale",
        [str(v) for v in range(8)],
        "loras[0].scale",
        [f"0.{v}" for v in range(8)],
        legend={"prompt": "a tiger eye", "seed": "5361202149059313751"},
    )
    opened: list[str] = []
    grid.on_open(opened.append)
    grid._received(grid, {"kind": "hello", "have": []}, [])  # a browser shows the grid
    thumbs = [jpeg(n) for n in range(64)]
    for n in range(64):
        cell = f"c{n}"
        coords = (n % 8, n // 8, 0)
        grid.set_cell_state(cell, coords, "waiting")
        grid.set_cell_state(cell, coords, "queued", "queued #3")
        for step in range(1, 5):
            grid.set_cell_state(cell, coords, "running", f"running {step}/4")
        grid.set_cell_state(cell, coords, "done", "done")
        grid.set_cell_image(cell, thumbs[n], {"seed": "5361202149059313751", "request_id": cell})
    grid.finish()

    total = sum(json_size + buffer_size for _, json_size, buffer_size in counted)
    thumbs_total = sum(map(len, thumbs))
    assert sum(buffer for _, _, buffer in counted) == thumbs_total  # each thumbnail once
    assert total <= 1.5 * thumbs_total, (total, thumbs_total)
    print(f"sent {total} bytes for {thumbs_total} bytes of thumbnails")

    # the Python traits hold the full state (saved notebooks, page reloads) without resending
    assert len(grid.entries) == 64
    assert len(grid.thumbs) == 64
    assert grid.entries[5]["info"]["seed"] == "5361202149059313751"
    assert grid.entries[5]["state"] == "done"
    assert grid.finished
    new_models = set(_instances) - before
    assert len(new_models) <= 10
    per_cell = saved_state_bytes(grid) / 64
    assert per_cell <= 25_000, per_cell
    print(f"saved state per cell: {per_cell:.0f} bytes")
    assert grid.thumbs[5] == thumbs[5]

    # a click in the browser on "Open in panel" reaches the callback with the cell id
    grid._received(grid, {"kind": "open", "id": "c7"}, [])
    grid._received(grid, {"kind": "open", "id": "unknown"}, [])
    assert opened == ["c7"]
    grid.close()


def test_sweep_grid_checks_states_and_cells() -> None:
    grid = SweepGrid("x", ["1", "2"])
    with pytest.raises(ValueError, match="waiting, queued"):
        grid.set_cell_state("a", (0, 0, 0), "sleeping", "")
    with pytest.raises(KeyError, match="set its state first"):
        grid.set_cell_image("b", jpeg(1), {})
    grid.set_cell_state("a", (1, 0, 0), "error", "422: bad LoRA")
    assert grid.entry("a")["text"] == "422: bad LoRA"
    assert grid.axes["x_values"] == ["1", "2"]
    assert grid.axes["y_values"] == []
    grid.close()


def test_gallery_orders_runs_newest_first_and_sends_once(
    counted: list[tuple[str, int, int]],
) -> None:
    gallery = ImageGallery()
    first = [GalleryImage(jpeg(n), 1024, 768) for n in range(2)]
    second = [GalleryImage(jpeg(10 + n), 1024, 768, nsfw=n == 1) for n in range(3)]
    gallery.add_run("r1", "1", first, seed=5361202149059313751)
    gallery.add_run("r2", "2", second, seed=None)
    assert gallery.run_ids == ["r2", "r1"]
    assert gallery.entry_ids() == ["r2/0", "r2/1", "r2/2", "r1/0", "r1/1"]
    assert gallery.entry("r1/0")["seed"] == "5361202149059313751"
    assert "seed 5361202149059313751" in gallery.entry("r1/1")["caption"]
    assert gallery.entry("r2/1")["nsfw"].startswith("NSFW")
    assert gallery.entry("r2/0")["nsfw"] == ""
    thumbs_total = sum(len(i.thumbnail) for i in first + second)
    assert sum(buffer for _, _, buffer in counted) == thumbs_total
    assert len(gallery.thumbs) == 5
    assert gallery.runs == ["r2", "r1"]
    gallery.close()


def test_gallery_sends_the_full_image_on_request(counted: list[tuple[str, int, int]]) -> None:
    gallery = ImageGallery()
    full = jpeg(99, (640, 480))
    gallery.on_full(lambda entry_id: full if entry_id == "r/0" else None)
    restored: list[str] = []
    gallery.on_restore(restored.append)
    gallery.add_run("r", "1", [GalleryImage(jpeg(1), 640, 480, path="/x.jpg")], restore=True)
    counted.clear()
    gallery._received(gallery, {"kind": "full", "id": "r/0"}, [])
    assert counted[-1][2] == len(full)
    gallery._received(gallery, {"kind": "full", "id": "nope"}, [])
    assert counted[-1][2] == 0
    gallery._received(gallery, {"kind": "restore", "run": "r"}, [])
    assert restored == ["r"]
    gallery.close()


def test_a_browser_model_that_started_late_gets_only_what_it_lacks(
    counted: list[tuple[str, int, int]],
) -> None:
    """Messages sent while the browser was loading the component are lost; its "hello" (the
    thumbnails it has) is answered with every entry and only the missing thumbnails."""
    gallery = ImageGallery()
    images = [GalleryImage(jpeg(n), 640, 480) for n in range(3)]
    gallery.add_run("r1", "1", images[:2])
    gallery.add_run("r2", "2", images[2:])
    counted.clear()
    gallery._received(gallery, {"kind": "hello", "have": [0, 1]}, [])
    (kind, _json_size, buffer_size) = counted[-1]
    assert kind == "comm_msg"
    assert buffer_size == len(images[2].thumbnail)  # only the one it lacks
    gallery._received(gallery, {"kind": "hello", "have": [0, 1, 2]}, [])
    assert counted[-1][2] == 0
    gallery.close()


def test_a_grid_nobody_displays_sends_its_state_once_at_the_end(
    counted: list[tuple[str, int, int]],
) -> None:
    """Headless (nbclient saves only what the kernel sent): finish() sends the full state once,
    so a notebook executed without a browser still saves every thumbnail."""
    grid = SweepGrid("seed", ["1", "2"])
    thumbs = [jpeg(n) for n in range(2)]
    for n in range(2):
        grid.set_cell_state(f"c{n}", (n, 0, 0), "done", "done")
        grid.set_cell_image(f"c{n}", thumbs[n], {"seed": str(n)})
    before = sum(buffer for _, _, buffer in counted)
    grid.finish()
    assert sum(buffer for _, _, buffer in counted) - before == sum(map(len, thumbs))
    assert any(kind == "comm_msg" and size > 0 for kind, size, _ in counted)


def test_a_gallery_nobody_displays_sends_its_state_at_the_end_of_each_cell(
    counted: list[tuple[str, int, int]], shell: Any
) -> None:
    """Headless (nbclient saves only state the kernel sent, never custom messages): each cell
    that changed the gallery ends with one state update holding every entry and thumbnail."""
    gallery = ImageGallery()
    images = [GalleryImage(jpeg(n), 640, 480) for n in range(4)]
    shell.user_ns.update(gallery=gallery, images=images)
    run_cell(
        shell, "gallery.add_run('r1', '1', images[:2])\n_ = gallery.add_run('r2', '2', images[2:3])"
    )
    ((state, buffers),) = state_updates(gallery)  # two runs, one cell: one update
    assert [e["id"] for e in state["entries"]] == ["r1/0", "r1/1", "r2/0"]
    assert state["runs"] == ["r2", "r1"]
    assert buffers == [image.thumbnail for image in images[:3]]

    run_cell(shell, "x = 1")  # a cell that changes nothing sends nothing
    assert len(state_updates(gallery)) == 1
    run_cell(shell, "_ = gallery.add_run('r3', '3', images[3:])")
    state, buffers = state_updates(gallery)[-1]
    assert len(state["entries"]) == 4
    assert state["runs"] == ["r3", "r2", "r1"]
    assert buffers == [image.thumbnail for image in images]
    assert len(state_updates(gallery)) == 2
    gallery.add_run("r4", "4", images[:1])  # outside a cell: waits for the next cell's end
    assert gallery._cell_end._ended in shell.events.callbacks["post_execute"]
    gallery.close()  # a closed gallery is no longer called (nor kept alive) by the shell
    assert gallery._cell_end._ended not in shell.events.callbacks["post_execute"]


def test_after_hello_the_gallery_sends_each_thumbnail_once(
    counted: list[tuple[str, int, int]], shell: Any
) -> None:
    """A browser said hello: from then on every thumbnail travels once, as a message; cells
    end without state updates, and the saved traits still hold everything."""
    gallery = ImageGallery()
    images = [GalleryImage(jpeg(n), 640, 480) for n in range(6)]
    shell.user_ns.update(gallery=gallery, images=images)
    run_cell(shell, "_ = gallery.add_run('r1', '1', images[:2])")  # before any browser
    assert len(state_updates(gallery)) == 1
    gallery._received(gallery, {"kind": "hello", "have": [0, 1]}, [])  # it has the state
    counted.clear()
    CountingComm.data.clear()
    for n in range(2, 6):
        run_cell(shell, f"_ = gallery.add_run('r{n}', '{n}', images[{n}:{n + 1}])")
    assert state_updates(gallery) == []
    assert sum(buffer for _, _, buffer in counted) == sum(len(i.thumbnail) for i in images[2:])
    assert len(gallery.thumbs) == 6
    assert gallery.runs == ["r5", "r4", "r3", "r2", "r1"]
    gallery.close()


def test_a_grid_that_finished_in_a_cell_is_not_sent_again_at_its_end(
    counted: list[tuple[str, int, int]], shell: Any
) -> None:
    grid = SweepGrid("seed", ["1", "2"])
    shell.user_ns.update(grid=grid, thumbs=[jpeg(n) for n in range(2)])
    run_cell(
        shell,
        "for n in range(2):\n"
        "    grid.set_cell_state(f'c{n}', (n, 0, 0), 'done', 'done')\n"
        "    grid.set_cell_image(f'c{n}', thumbs[n], {'seed': str(n)})\n"
        "grid.finish()",
    )
    ((state, buffers),) = state_updates(grid)
    assert state["finished"] is True
    assert len(buffers) == 2
    grid.close()
