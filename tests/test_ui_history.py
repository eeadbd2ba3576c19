"""The History tab over earlier sessions (issue 17): one row per run folder, not one per job.

- a panel session's run and a sweep are one row each, newest first, with counts, the main
  parameters (a sweep's axes) and a thumbnail the browser asks for;
- a row expands to its jobs (a sweep's cells with their axis values), sent when asked for;
- Restore of a job inside a sweep puts that cell's exact input into the form;
- 50 earlier runs add at most 50 kB to the saved widget state (thumbnails never saved);
- prompts are shown as text, never as HTML.

Run folders are written with the store API (`Run`, `JobRecord`, `SavedImage`), images are
512 px noise JPEGs; the widgets are the real ipywidgets/anywidget objects.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

from fluxwidget.client.journal import Journal
from fluxwidget.schema import ENDPOINT_ID, FluxLoraInput
from fluxwidget.store import JobRecord, Run, SavedImage
from fluxwidget.sweeps.axes import plan_sweep
from fluxwidget.ui import FluxPanel
from fluxwidget.ui.history import (
    PAST_RUNS,
    PAST_THUMB_SIDE,
    HistoryList,
    HistoryView,
    past_runs,
)
from fluxwidget.ui.records import RunRecord

MAX_SAVED_FOR_50_RUNS = 50_000
T0 = 1_700_000_000.0
STATIC = Path(__file__).parents[1] / "fluxwidget" / "ui" / "static"


def noise_jpeg(rng: random.Random, side: int = 512) -> bytes:
    """A photo-sized JPEG of random noise (the worst case for a thumbnail's size)."""
    picture = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures() -> list[bytes]:
    rng = random.Random(17)
    return [noise_jpeg(rng) for _ in range(6)]


def write_run(
    folder: Path,
    inputs: list[dict[str, Any]],
    pictures: list[bytes],
    *,
    created: float,
    kind: str = "panel",
    definition: dict[str, Any] | None = None,
    cells: list[tuple[str, dict[str, Any], list[int]]] | None = None,
) -> Run:
    """A finished run folder: every job done, one image each, written as the pipeline does."""
    run = Run.create(path=folder, kind=kind, definition=definition)
    jobs = cells or [(f"j{n + 1:04d}", {}, []) for n in range(len(inputs))]
    for n, (payload, (job_id, axes, coords)) in enumerate(zip(inputs, jobs, strict=True)):
        data = pictures[n % len(pictures)]
        record = JobRecord(
            job_id=job_id,
            input=payload,
            endpoint=ENDPOINT_ID,
            state="done",
            request_id=f"req-{folder.name}-{job_id}",
            seed=1000 + n,
            axes=axes,
            coords=coords or None,
        )
        path = run.image_path(job_id, 0, "image/jpeg", data)
        path.write_bytes(data)
        record.images = [SavedImage(0, path.name, 512, 512, "image/jpeg")]
        run.add(record)
    run.created = created
    run.save()
    Journal.flush()
    return run


def write_sweep(folder: Path, pictures: list[bytes], *, created: float, grid: bool) -> Run:
    """A finished 3 × 2 sweep (guidance × steps), optionally with its exported grid."""
    plan = plan_sweep(
        FluxLoraInput(prompt="a lighthouse at dusk", image_size="square", seed=5),
        x=("guidance_scale", [2.0, 3.5, 5.0]),
        y=("num_inference_steps", [10, 20]),
    )
    run = write_run(
        folder,
        [cell.input.to_payload() for cell in plan.cells],
        pictures,
        created=created,
        kind="sweep",
        definition={"sweep": plan.to_json(), "fingerprint": "test"},
        cells=[(cell.id, dict(cell.axis_values), list(cell.coords)) for cell in plan.cells],
    )
    if grid:
        (run.path / "grid.jpg").write_bytes(pictures[0])
    return run


def panel_inputs(*prompts: str, steps: int = 28) -> list[dict[str, Any]]:
    return [
        FluxLoraInput(prompt=p, num_inference_steps=steps, image_size="landscape_4_3").to_payload()
        for p in prompts
    ]


@pytest.fixture
def root(tmp_path: Path, pictures: list[bytes]) -> Path:
    """Three earlier runs: a panel session (3 jobs), a sweep (6 cells), a panel session (1)."""
    runs = tmp_path / "runs"
    write_run(runs / "a", panel_inputs("first", "second", "third"), pictures, created=T0)
    write_sweep(runs / "s", pictures, created=T0 + 10, grid=True)
    write_run(runs / "b", panel_inputs("newest", steps=12), pictures, created=T0 + 20)
    return runs


@pytest.fixture
def view(root: Path) -> Iterator[HistoryView]:
    restored: list[Any] = []
    history = HistoryView(restored.append, restored.append)
    history.add_past(past_runs(root))
    yield history
    history.close()


def sent_by(history: HistoryList) -> list[tuple[dict[str, Any], list[bytes]]]:
    """Record what the kernel sends to the browser (instead of a comm without a front end)."""
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    history.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    return sent


def ask(history: HistoryList, **message: Any) -> None:
    """A message from the browser, as the comm delivers it."""
    history._received(history, message, [])


def saved_size(history: HistoryList) -> int:
    """The synced state of the widget as JSON plus its binary buffers, in bytes."""
    state, _paths, buffers = _remove_buffers(history.get_state())
    return len(json.dumps(state)) + sum(len(bytes(b)) for b in buffers)


def html_values(widget: widgets.Widget) -> list[str]:
    """Every HTML value in a widget tree."""
    found = [widget.value] if isinstance(widget, widgets.HTML) else []
    for child in getattr(widget, "children", ()):
        found += html_values(child)
    return found


# --- grouping ---------------------------------------------------------------------------------


def test_one_row_per_run_folder_newest_first(view: HistoryView) -> None:
    runs = view.past
    assert [run.name for run in runs] == ["b", "s", "a"]
    assert [len(run.jobs) for run in runs] == [1, 6, 3]
    entries = view.list.entries
    assert len(entries) == 3  # one row per run, not one per job or cell
    by_id = {entry["id"]: entry for entry in entries}
    assert [by_id[run.entry_id]["group"] for run in runs] == ["1", "6", "3"]
    assert [float(by_id[run.entry_id]["when"]) for run in runs] == [T0 + 20, T0 + 10, T0]

    newest, sweep, oldest = (run.text for run in runs)
    assert "panel · 1 job · 1 image · 'newest' · landscape_4_3 · 12 steps · guidance 3.5" in newest
    assert "sweep · guidance_scale (3) × num_inference_steps (2) · 6 cells, 6 done" in sweep
    assert "6 images · 'a lighthouse at dusk' · square" in sweep
    assert "steps" not in sweep.split("6 images")[1]  # swept: the axes name it
    assert "3 jobs · 3 images · 'third' (+2 more) · landscape_4_3 · 28 steps" in oldest
    assert [job.params.prompt for job in runs[2].jobs if job.params] == [
        "third",
        "second",
        "first",
    ]  # a panel session's jobs newest first


def test_limit_and_unusable_folders(tmp_path: Path, pictures: list[bytes]) -> None:
    runs = tmp_path / "runs"
    for n in range(4):
        write_run(runs / f"r{n}", panel_inputs(f"run {n}"), pictures, created=T0 + n)
    Run.create(path=runs / "empty", kind="panel")  # a session that never generated
    write_run(runs / "broken", [{"prompt": ""}], pictures, created=T0 + 9)  # invalid input
    (runs / "not-a-run").mkdir()
    assert PAST_RUNS == 50
    assert [run.name for run in past_runs(runs)] == ["r3", "r2", "r1", "r0"]
    assert [run.name for run in past_runs(runs, limit=2)] == ["r3", "r2"]


# --- expanding, restoring ---------------------------------------------------------------------


def test_expanding_a_sweep_sends_its_cells_with_axis_values(view: HistoryView) -> None:
    history = view.list
    sweep = view.past[1]
    before = json.dumps(history.get_state()["entries"])
    sent = sent_by(history)
    ask(history, kind="jobs", id=sweep.entry_id)
    ((message, buffers),) = sent
    assert message["kind"] == "jobs"
    assert message["ok"] is True
    assert buffers == []
    cells = message["jobs"]
    assert [cell["detail"] for cell in cells] == [
        f"guidance_scale={g}, num_inference_steps={s}" for s in (10, 20) for g in ("2", "3.5", "5")
    ]
    assert all(cell["lazy"] == "yes" for cell in cells)
    assert "seed 1004" in cells[4]["text"]
    assert json.dumps(history.get_state()["entries"]) == before  # not in the saved state

    ask(history, kind="jobs", id="past-nope")
    assert sent[-1][0] == {"kind": "jobs", "id": "past-nope", "ok": False, "jobs": []}


def test_restore_a_cell_inside_a_sweep_run(root: Path) -> None:
    panel = FluxPanel(runs_root=root)
    try:
        history = panel.history.list
        sweep = next(run for run in panel.history.past if run.kind == "sweep")
        cell = sweep.jobs[4]  # guidance 3.5, 20 steps
        ask(history, kind="restore", id=cell.entry_id)  # not shown yet: nothing happens
        ask(history, kind="restore", id=sweep.entry_id)  # a run's row has no Restore
        assert panel.form.prompt.value == ""
        sent_by(history)
        ask(history, kind="jobs", id=sweep.entry_id)  # the row is expanded
        ask(history, kind="restore", id=cell.entry_id)
        params = panel.params
        assert params.prompt == "a lighthouse at dusk"
        assert params.guidance_scale == 3.5
        assert params.num_inference_steps == 20
        assert panel.form.seed.value == "1004"  # the seed the server used
        assert cell.axes == {"guidance_scale": 3.5, "num_inference_steps": 20}
    finally:
        panel.close()


def test_restore_of_this_sessions_run_still_works() -> None:
    restored: list[RunRecord] = []
    view = HistoryView(restored.append)
    try:
        from fluxwidget.schema import FluxLoraOutput

        record = RunRecord(
            1,
            FluxLoraInput(prompt="now"),
            FluxLoraOutput.model_validate({"images": [], "seed": 3}),
            (),
            "req-1",
            1.0,
        )
        entry_id = view.add(record)
        ask(view.list, kind="restore", id=entry_id)
        assert restored == [record]
        assert "group" not in view.list.entry(entry_id)
    finally:
        view.close()


# --- thumbnails on demand ---------------------------------------------------------------------


def test_thumbnails_arrive_only_when_asked_for(view: HistoryView, pictures: list[bytes]) -> None:
    history = view.list
    newest, sweep, _oldest = view.past
    assert history.thumbs == []
    assert all(entry["lazy"] == "yes" for entry in history.entries)
    sent = sent_by(history)
    ask(history, kind="thumb", id=newest.entry_id)
    ask(history, kind="thumb", id=sweep.jobs[0].entry_id)  # a cell not shown yet
    ask(history, kind="jobs", id=sweep.entry_id)
    ask(history, kind="thumb", id=sweep.jobs[0].entry_id)
    ask(history, kind="thumb", id=sweep.entry_id)
    (row, row_bytes), (hidden, _), _jobs, (cell, cell_bytes), (grid, grid_bytes) = sent
    assert row == {"kind": "thumb", "id": newest.entry_id, "ok": True}
    assert hidden["ok"] is False
    assert cell["ok"] is True
    assert grid["ok"] is True
    for buffers in (row_bytes, cell_bytes, grid_bytes):
        (data,) = buffers
        assert max(Image.open(io.BytesIO(data)).size) <= PAST_THUMB_SIDE
        assert len(data) < 8_000
    assert sweep.cover is not None
    assert sweep.cover.name == "grid.jpg"  # a sweep's row shows its grid
    assert history.thumbs == []  # still nothing in the saved state
    # made once, then kept: the file going away does not matter any more
    newest.jobs[0].files[0].unlink()
    ask(history, kind="thumb", id=newest.entry_id)
    assert sent[-1][0]["ok"] is True


# --- the saved state --------------------------------------------------------------------------


def test_fifty_earlier_runs_add_at_most_50_kb(tmp_path: Path, pictures: list[bytes]) -> None:
    runs = tmp_path / "runs"
    long_prompt = "a very detailed photograph of a red fox in the snow, golden hour, " * 4
    for n in range(PAST_RUNS + 5):  # more than the history shows
        if n % 10 == 0:
            write_sweep(runs / f"run-{n:02d}", pictures, created=T0 + n, grid=n % 20 == 0)
        else:
            prompts = [f"{long_prompt} #{n}.{k}" for k in range(3)]
            write_run(runs / f"run-{n:02d}", panel_inputs(*prompts), pictures, created=T0 + n)

    empty = HistoryView(lambda _record: None)
    full = HistoryView(lambda _record: None)
    try:
        full.add_past(past_runs(runs))
        assert full.list.entry_count == PAST_RUNS
        assert full.list.thumbs == []
        added = saved_size(full.list) - saved_size(empty.list)
        manager = widgets.Widget.get_manager_state(drop_defaults=True, widgets=[full.list])
        empty_manager = widgets.Widget.get_manager_state(drop_defaults=True, widgets=[empty.list])
        added_manager = len(json.dumps(manager)) - len(json.dumps(empty_manager))
        print(f"50 earlier runs add {added / 1000:.1f} kB ({added_manager / 1000:.1f} kB saved)")
        assert added <= MAX_SAVED_FOR_50_RUNS, added
        assert added_manager <= MAX_SAVED_FOR_50_RUNS, added_manager
        state = json.dumps(full.list.get_state()["entries"])
        assert "-j0" not in state  # no job of a run in the state: they are asked for
    finally:
        full.close()
        empty.close()


# --- escaping ---------------------------------------------------------------------------------


def test_prompts_are_text_never_html(tmp_path: Path, pictures: list[bytes]) -> None:
    prompt = "<img src=x onerror=alert(1)> & <script>alert('x')</script>"
    runs = tmp_path / "runs"
    write_run(runs / "x", panel_inputs(prompt), pictures, created=T0)
    panel = FluxPanel(runs_root=runs)
    try:
        history = panel.history.list
        (entry,) = history.entries
        assert "<img src=x" in entry["text"]  # plain text: the browser sets it as textContent
        sent = sent_by(history)
        ask(history, kind="jobs", id=entry["id"])
        assert "<script>" in sent[0][0]["jobs"][0]["text"]
        html = html_values(panel.widget)
        assert html
        assert all("<img src=x" not in value and "<script>" not in value for value in html)
    finally:
        panel.close()
    script = (STATIC / "history.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script
    assert "textContent" in (STATIC / "thumbs.js").read_text(encoding="utf-8")  # fwEl
