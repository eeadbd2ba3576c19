"""FluxPanel end to end: widgets without a browser, against a real emulator on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import ipywidgets as widgets
import pytest
from ipywidgets.widgets.widget import _instances

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator
from fluxwidget.errors import AuthenticationError, JobCancelledError
from fluxwidget.images import open_image
from fluxwidget.schema import FluxLoraInput, InputError
from fluxwidget.ui import FluxPanel
from fluxwidget.ui._widgets import is_shared
from fluxwidget.ui.jobs import Job

SECRET = "sk-live-0123:do-not-leak-this-secret"


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` while the loop runs the panel's tasks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def record(job: Job) -> list[tuple[str, str]]:
    """Every (state, text) the job's status line shows from now on."""
    seen = [(job.row.state, job.row.text)]
    job.row.status.observe(lambda _change: seen.append((job.row.state, job.row.text)), "value")
    return seen


def states(seen: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for state, _ in seen:
        if not out or out[-1] != state:
            out.append(state)
    return out


def live_states() -> list[str]:
    return [json.dumps(w.get_state(), default=str) for w in list(_instances.values())]


def html_values(widget: widgets.Widget) -> list[str]:
    """Every HTML value in a widget tree."""
    found = [widget.value] if isinstance(widget, widgets.HTML) else []
    for child in getattr(widget, "children", ()):
        found += html_values(child)
    return found


@pytest.fixture
def single() -> Iterator[Emulator]:
    """One worker: a second job waits in the queue."""
    with Emulator(workers=1, seconds_per_step=0.005, keepalive_interval=0.2) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[FluxClient]:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as flux:
        yield flux


@pytest.fixture
async def panel(client: FluxClient) -> AsyncIterator[FluxPanel]:
    flux_panel = FluxPanel(client)
    yield flux_panel
    await flux_panel.wait()
    flux_panel.close()


async def test_status_goes_queued_running_done_and_jobs_run_side_by_side(
    single: Emulator,
) -> None:
    async with FluxClient(api_key=single.api_key, base_url=single.url) as flux:
        panel = FluxPanel(flux)
        panel.set(prompt="blocker", num_inference_steps=40, num_images=2, image_size="square")
        panel.generate_button.click()
        assert panel.jobs[0].row.text == "Submitting…"  # click() returned at once
        await until(lambda: panel.jobs[0].row.state == "running")
        panel.set(prompt="a tiger eye", num_inference_steps=10, num_images=1, seed=3)
        panel.generate_button.click()  # while the first one runs
        first, second = panel.jobs
        seen = record(second)
        assert len(panel.tasks) == 2
        await panel.wait()
        assert states(seen) == ["submitting", "queued", "running", "done"]
        texts = [text for _, text in seen]
        assert "Queued — next in line" in texts
        assert "Running" in texts[3]
        assert any(text.endswith("— step 10/10") for text in texts)
        assert texts[-1].startswith("Done in ")
        assert "(inference " in texts[-1]
        assert texts[-1].endswith("· seed 3 · 1 image")
        assert first.row.state == "done"
        # a finished row is one line: no progress bar, no dead Cancel; its log opens on click
        assert second.row.line.children[:2] == (second.row.label, second.row.status)
        assert second.row.cancel_button not in second.row.line.children
        assert second.row.cancel_button.comm is None
        assert second.row.progress.comm is None
        assert "step 10/10" in second.row.log.value
        assert second.row.box.children == (second.row.line,)
        second.row.log_button.value = True
        assert second.row.box.children == (second.row.line, second.row.log)
        assert len(panel.jobs_box.children) == 2
        # in the order they finished (the short one may overtake while the first downloads)
        assert sorted(r.prompt or "" for r in panel.results) == ["a tiger eye", "blocker"]
        assert panel.last_result is panel.results[-1]
        assert not panel.tasks
        panel.close()


async def test_gallery_holds_thumbnails_and_full_images_load_on_request(
    panel: FluxPanel,
) -> None:
    panel.set(prompt="a fox", num_images=2, image_size="portrait_4_3", num_inference_steps=4)
    output = await panel.generate(seed=11)
    assert output is panel.last_result
    assert len(output.images) == 2
    ids = panel.gallery.entry_ids()
    assert len(ids) == 2
    assert len(panel.gallery.thumbs) == 2
    for entry_id, thumb_bytes in zip(ids, panel.gallery.thumbs, strict=True):
        entry = panel.gallery.entry(entry_id)
        thumb = open_image(thumb_bytes)
        assert max(thumb.size) <= 256
        assert thumb.size == (180, 240)  # THUMB_SIDE: sized for a gallery tile
        assert thumb.format == "WEBP"  # ~half the bytes of a JPEG at the same look
        assert "seed 11 · 4 steps · cfg 3.5 · 768×1024" in entry["caption"]
        assert entry["seed"] == "11"
        assert entry["nsfw"] == ""
        full = panel._full_image(entry_id)  # what a click in the large view asks for
        assert full is not None
        assert open_image(full).size == (768, 1024)
    await panel.generate(seed=12, num_images=1)
    assert panel.gallery.entry_ids()[0].startswith(panel.gallery.run_ids[0])  # newest first
    assert [panel.gallery.entry(i)["index"] for i in panel.gallery.entry_ids()] == ["0", "0", "1"]


async def test_nsfw_is_said_plainly(panel: FluxPanel) -> None:
    await panel.generate(prompt="nsfw-test", num_inference_steps=2, image_size="square")
    entry = panel.gallery.entry(panel.gallery.entry_ids()[0])
    assert entry["nsfw"].startswith("NSFW: flagged by the safety checker")
    assert "flagged NSFW" in panel.jobs[-1].row.text


async def test_cancel_while_queued(single: Emulator) -> None:
    async with FluxClient(api_key=single.api_key, base_url=single.url) as flux:
        panel = FluxPanel(flux)
        panel.set(prompt="blocker", num_inference_steps=50, num_images=2)
        panel.generate_button.click()
        await until(lambda: panel.jobs[0].row.state == "running")
        panel.set(prompt="waiting", num_inference_steps=5)
        panel.generate_button.click()
        blocker, waiting = panel.jobs
        await until(lambda: waiting.row.state == "queued")
        waiting.row.cancel_button.click()
        await until(lambda: waiting.finished)
        assert waiting.row.text == "Cancelled"
        assert waiting.row.state == "cancelled"
        assert waiting.row.note == ""  # nothing stale beneath a cancelled row
        assert "Cancel requested" not in waiting.row.status.value
        assert single.job(waiting.request_id or "").state == "COMPLETED"  # type: ignore[union-attr]
        assert await blocker.cancel() == "CANCELLATION_REQUESTED"
        await panel.wait()
        assert blocker.row.text == "Cancelled"
        assert panel.results == []
        panel.close()


async def test_cancel_while_running(panel: FluxPanel) -> None:
    panel.set(prompt="slow", num_inference_steps=50, num_images=4)
    panel.generate_button.click()
    job = panel.jobs[-1]
    await until(lambda: job.row.state == "running")
    job.row.cancel_button.click()
    await panel.wait()
    assert job.row.text == "Cancelled"
    assert job.row.note == ""
    assert "Cancelled at step" in job.row.log.value
    assert panel.gallery.entry_count == 0


async def test_cancel_when_done_says_so(panel: FluxPanel) -> None:
    panel.set(prompt="quick", num_inference_steps=20)
    panel.generate_button.click()
    assert await panel.jobs[-1].cancel() == "PENDING_SUBMIT"  # sent once the submit returns
    with pytest.raises(JobCancelledError):
        await asyncio.gather(*panel.tasks)
    assert panel.jobs[-1].row.text == "Cancelled"
    await panel.generate(num_inference_steps=2)
    done = panel.jobs[-1]
    assert done.row.cancel_button not in done.row.line.children
    assert await done.cancel() == "ALREADY_COMPLETED"
    assert "Already finished — nothing to cancel" in done.row.status.value
    assert done.row.state == "done"


async def test_wrong_key_shows_401(emu: Emulator) -> None:
    async with FluxClient(api_key="emulator-x:wrong", base_url=emu.url) as flux:
        panel = FluxPanel(flux)
        panel.set(prompt="x")
        panel.generate_button.click()
        await panel.wait()
        text = panel.jobs[-1].row.text
        assert text.startswith("401: the key was refused — set FAL_KEY")
        assert panel.jobs[-1].row.state == "error"
        assert await panel.jobs[-1].cancel() == "NOT_SUBMITTED"
        assert "never submitted" in panel.jobs[-1].row.note
        with pytest.raises(AuthenticationError):
            await panel.generate()
        assert emu.submit_count == 0
        panel.close()


async def test_server_422_shows_in_status(panel: FluxPanel, emu: Emulator) -> None:
    emu.inject("submit", status=422)
    panel.set(prompt="x")
    panel.generate_button.click()
    await panel.wait()
    assert panel.jobs[-1].row.text.startswith("422: the server rejected the input")
    assert panel.jobs[-1].row.state == "error"


async def test_failure_inside_the_task_is_reported(
    panel: FluxPanel, client: FluxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(image: object) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(client, "download", broken)
    panel.set(prompt="x", num_inference_steps=2)
    panel.generate_button.click()
    await panel.wait()
    assert panel.jobs[-1].row.text == "Error: RuntimeError: disk on fire"


async def test_invalid_form_disables_generate_and_sends_nothing(
    panel: FluxPanel, emu: Emulator
) -> None:
    assert panel.generate_button.disabled  # no prompt yet
    assert "Type a prompt" in panel.form_message.value
    panel.set(prompt="x")
    assert not panel.generate_button.disabled
    panel.form.seed.value = "-5"
    assert panel.generate_button.disabled
    assert "&#x27;-5&#x27; is not a seed" in panel.form.errors["seed"].value
    panel.generate_button.click()  # click() ignores `disabled`; the handler checks again
    with pytest.raises(InputError):
        panel.params  # noqa: B018
    with pytest.raises(InputError):
        await panel.generate()
    await panel.wait()
    assert panel.jobs == []
    assert "seed" in panel.form_message.value
    assert emu.submit_count == 0


async def test_set_rejects_invalid_values_and_changes_nothing(panel: FluxPanel) -> None:
    panel.set(prompt="a", num_images=2)
    with pytest.raises(InputError) as info:
        panel.set(num_images=7, guidance_scale=2.0)
    assert [p.field for p in info.value.for_field("num_images")] == ["num_images"]
    assert "from 1 to 4" in str(info.value)
    with pytest.raises(InputError):
        panel.set(colour="red")
    assert panel.params.num_images == 2
    assert panel.params.guidance_scale == 3.5
    whole = FluxLoraInput(prompt="whole", image_size=(320, 240), num_images=3, seed=1)
    panel.set(whole)
    assert panel.params == whole


async def test_restore_and_reuse_seed(panel: FluxPanel) -> None:
    assert panel.form.reuse_seed.disabled
    first = await panel.generate(
        prompt="first", num_inference_steps=3, guidance_scale=7.0, loras=[{"path": "a/b"}]
    )
    panel.set(prompt="second", loras=[], image_size=(300, 200), seed=9)
    await panel.generate()
    assert len(panel.history.records) == 2
    assert panel.history.records[0].params.prompt == "second"  # newest first
    first_id = panel.history.list.entries[0]["id"]  # the browser lists entries newest first
    panel.history.list._received(panel.history.list, {"kind": "restore", "id": first_id}, [])
    restored = panel.params
    assert restored.prompt == "first"
    assert restored.guidance_scale == 7.0
    assert restored.num_inference_steps == 3
    assert [lora.path for lora in restored.loras] == ["a/b"]
    assert restored.image_size == "landscape_4_3"
    assert restored.seed == first.seed  # the seed it ran with: Generate makes the same images
    panel.set(seed=None)
    assert not panel.form.reuse_seed.disabled
    panel.form.reuse_seed.click()
    assert panel.params.seed == 9
    # Restore on a run of the gallery does the same
    run_id = panel.gallery.run_ids[-1]
    panel.gallery._received(panel.gallery, {"kind": "restore", "run": run_id}, [])
    assert panel.params.prompt == "first"


async def test_show_code_writes_fal_key_never_the_key(panel: FluxPanel, emu: Emulator) -> None:
    panel.set(prompt="a tiger", seed=4)
    panel.code.toggle.value = True
    assert panel.code.box.layout.display is None
    code = panel.code.code
    assert 'os.environ["FAL_KEY"]' in code["fluxwidget"]
    assert "$FAL_KEY" in code["cURL"]
    # the client points at an emulator: the banner says so, the code calls fal itself
    assert "emulator" in panel.banner.value
    assert emu.url not in code["httpx"]
    assert "https://queue.fal.run/fal-ai/flux-lora" in code["httpx"]
    for text in [*code.values(), *html_values(panel.code.box)]:
        assert emu.api_key not in text
    panel.set(num_images=3)
    assert "num_images=3" in panel.code.code["fluxwidget"]
    panel.set(prompt="changed")
    panel.form.prompt.value = ""
    assert panel.code.code == {}
    assert "invalid" in panel.code.pages[0].value


async def test_user_and_server_text_is_escaped(panel: FluxPanel, emu: Emulator) -> None:
    prompt = "<script>alert('x')</script>"
    path = "https://x.example/<img/src=x/onerror=alert(1)>"
    await panel.generate(prompt=prompt, loras=[{"path": path}], num_inference_steps=2)
    values = html_values(panel.widget)
    assert all("<script>" not in value and "<img" not in value for value in values)
    assert any("&lt;script&gt;" in value for value in values)  # job label, history
    assert "&lt;img/src=x/onerror=alert(1)&gt;" in panel.jobs[-1].row.log.value
    panel.code.toggle.value = True
    assert all("<script>" not in page.value for page in panel.code.pages)


async def test_key_never_reaches_a_widget_trait(emu: Emulator) -> None:
    direct = FluxPanel(api_key=SECRET)
    assert direct.mode == "fal"
    assert "fal" in direct.banner.value
    direct.keys.field.value = SECRET + "-typed"  # as the browser sends it on Enter
    assert direct.keys.field.value == ""
    assert "kept in Python only" in direct.keys.message.value
    direct.set(prompt="x")
    direct.code.toggle.value = True
    async with FluxClient(api_key="emulator-x:wrong", base_url=emu.url) as flux:
        typed = FluxPanel(flux)
        typed.keys.field.value = emu.api_key
        typed.keys.button.click()
        assert typed.client is not flux
        assert typed.client.config.base_url == emu.url
        await typed.generate(prompt="typed key works", num_inference_steps=2)
        typed.code.toggle.value = True
        for state in live_states():
            assert SECRET not in state
            assert emu.api_key not in state
        assert typed.jobs[-1].row.state == "done"
        typed.close()
        await typed.client.aclose()  # type: ignore[attr-defined]
    direct.close()


async def test_without_a_key_the_panel_runs_on_the_emulator() -> None:
    panel = FluxPanel()
    assert panel.mode == "emulator"
    assert "built-in emulator" in panel.banner.value
    assert "FAL_KEY" in panel.banner.value
    output = await panel.generate(prompt="offline", num_inference_steps=2, image_size="square")
    assert panel.gallery.entry_count == len(output.images) == 1
    panel.code.toggle.value = True
    # Show code on the emulator prints the code for fal, never the loopback URL
    for snippet in panel.code.code.values():
        assert "https://queue.fal.run" in snippet
        assert panel.client.config.base_url not in snippet
        assert "FAL_KEY" in snippet
    panel.close()
    await panel.client.aclose()  # type: ignore[attr-defined]


async def test_close_releases_every_widget(client: FluxClient) -> None:
    before = set(_instances)
    panel = FluxPanel(client)
    panel.form.loras.add("a/b")
    await panel.generate(prompt="x", num_inference_steps=2, num_images=2, image_size="square")
    assert len(set(_instances) - before) > 20
    panel.close()
    left = [_instances[i] for i in set(_instances) - before]
    # only the shared Layout/style models (one per distinct look, reused by the next panel)
    assert all(is_shared(widget) for widget in left)
    assert panel._repr_mimebundle_() == {"text/plain": "FluxPanel (closed)"}


async def test_closing_the_panel_cancels_its_running_jobs(
    client: FluxClient, emu: Emulator
) -> None:
    panel = FluxPanel(client)
    panel.set(prompt="left running", num_inference_steps=50, num_images=4)
    panel.generate_button.click()
    job = panel.jobs[-1]
    await until(lambda: job.row.state == "running")
    tasks = panel.tasks
    panel.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    info = emu.job(job.request_id or "")
    assert info is not None
    assert info.cancel_requested
    assert "Cancel requested" in job.row.note


def test_click_without_a_running_loop_runs_the_job_in_a_thread(emu: Emulator) -> None:
    panel = FluxPanel(FluxClient(api_key=emu.api_key, base_url=emu.url))
    panel.set(prompt="from a script", num_inference_steps=2)
    panel.generate_button.click()
    threads = list(panel._tasks.threads)
    assert len(threads) == 1
    threads[0].join(10)
    assert panel.jobs[-1].row.state == "done"
    assert panel.gallery.entry_count == 1
    panel.close()


async def test_history_survives_a_restart_read_from_the_runs_folder(
    client: FluxClient, tmp_path: Path
) -> None:
    """Jobs run by the pipeline into a runs folder (an earlier session) show in a new panel's
    history as one row for that run (its jobs newest first when expanded, a small thumbnail
    made when asked for), and Restore of a job puts back its exact seed."""
    from fluxwidget.pipeline import JobPipeline
    from fluxwidget.store.runs import Run

    root = tmp_path / "runs"
    pipeline = JobPipeline(client, Run.create(root))
    big = 5361202149059313751
    await pipeline.run(FluxLoraInput(prompt="older", num_inference_steps=2, seed=big))
    await pipeline.run(FluxLoraInput(prompt="newer", num_inference_steps=2, num_images=2))
    pipeline.run_folder.save()

    panel = FluxPanel(client, runs_root=root)
    await panel.wait()
    (run,) = panel.history.past
    jobs = run.jobs
    assert [job.params.prompt for job in jobs if job.params] == ["newer", "older"]
    assert jobs[1].params is not None
    assert jobs[1].params.seed == big
    assert "2 jobs · 3 images" in run.text
    thumbnail = run.thumbnail()
    assert thumbnail
    assert max(open_image(thumbnail).size) <= 64
    (entry,) = panel.history.list.entries
    assert entry["id"] == run.entry_id
    assert entry["group"] == "2"
    assert [item.entry_id for item in panel.history.list.items(run.entry_id)] == [
        job.entry_id for job in jobs
    ]  # what expanding the row shows
    panel.tabs.selected_index = 2  # Restore is clicked in the History tab
    panel.history.list._received(
        panel.history.list, {"kind": "restore", "id": jobs[1].entry_id}, []
    )
    assert panel.tabs.selected_index == 0  # the form it filled is shown
    assert panel.params.prompt == "older"
    assert panel.form.seed.value == str(big)
    panel.open_folder_button.click()
    assert str(root.resolve()) in panel.folder_message.value
    panel.close()


async def test_open_in_panel_puts_a_cell_input_with_its_exact_seed(client: FluxClient) -> None:
    from fluxwidget.ui.sweep_view import _latest_opener

    panel = FluxPanel(client)
    assert _latest_opener() is panel
    panel.tabs.selected_index = 2
    panel.restore_input(
        {"prompt": "cell", "guidance_scale": 5.0, "seed": 5361202149059313751, "loras": []}
    )
    assert panel.tabs.selected_index == 0
    assert panel.form.seed.value == "5361202149059313751"
    assert panel.params.guidance_scale == 5.0
    panel.close()


async def test_jobs_started_together_share_one_run_folder_made_off_the_loop(
    client: FluxClient, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    panel = FluxPanel(client, runs_root=root)
    panel.set(prompt="two at once", num_inference_steps=2)
    panel.generate_button.click()
    panel.generate_button.click()
    assert panel.runs_folder is None  # a click makes no folder on the event loop
    assert not root.exists()
    await panel.wait()
    assert panel.runs_folder is not None
    assert [path.name for path in root.iterdir()] == [panel.runs_folder.path.name]
    assert [job.row.state for job in panel.jobs] == ["done", "done"]
    assert (
        len(list(panel.runs_folder.path.glob("*.jpg")) + list(panel.runs_folder.path.glob("*.png")))
        == 2
    )
    panel.close()
