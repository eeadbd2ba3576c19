"""The job pipeline against a real emulator on loopback: files, records, journal, recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxwidget.emulator import Emulator
from fluxwidget.errors import FalError, ValidationFailedError
from fluxwidget.images import read_metadata
from fluxwidget.pipeline import JobPipeline
from fluxwidget.schema import InputError
from fluxwidget.store.records import JobRecord
from fluxwidget.store.runs import MANIFEST, Run, list_runs
from tests.clients import client_for


def _events(run: Run) -> list[tuple[str, str]]:
    return [(r["event"], r.get("job_id", "")) for r in run.journal.records()]


async def test_a_job_ends_with_its_images_on_disk_and_one_record_everywhere(
    emu: Emulator, tmp_path: Path
) -> None:
    run = Run.create(tmp_path, kind="generate")
    async with client_for(emu) as client:
        record = await JobPipeline(client, run).run(
            {"prompt": "a tiger eye", "num_images": 2, "image_size": "square", "seed": 7}
        )
    await run.flush()
    assert record.state == "done"
    assert [image.index for image in record.images] == [0, 1]
    assert record.seed == 7
    assert record.emulator is True
    assert record.billable_units == 2.0  # 512² rounds up to 1 MP per image
    for image in record.images:
        path = run.path / image.file
        assert path.parent == run.path
        assert path.name.startswith(record.job_id)
        embedded = read_metadata(path)
        assert embedded is not None
        assert embedded["request_id"] == record.request_id
        assert embedded["input"]["prompt"] == "a tiger eye"
        assert embedded["seed"] == 7
        assert embedded["index"] == image.index
        assert embedded["emulator"] is True
    manifest = json.loads((run.path / MANIFEST).read_text())
    assert manifest["jobs"][0]["request_id"] == record.request_id
    assert manifest["jobs"][0]["state"] == "done"
    events = [e for e, job in _events(run) if job and e != "planned"]
    assert events[:2] == ["submitting", "submitted"]  # durable before anything waits
    assert sorted(events[2:]) == ["completed", "saved"]  # "completed" is written off the path
    reopened = Run.open(run.path)
    assert reopened.jobs[record.job_id].state == "done"
    assert [i.file for i in reopened.jobs[record.job_id].images] == [i.file for i in record.images]


async def test_files_are_never_overwritten_across_sessions(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    async with client_for(emu) as client:
        first_run = Run.open_or_create(folder, kind="generate")
        first = await JobPipeline(client, first_run).run(
            {"prompt": "one", "image_size": "square", "seed": 1}
        )
        first_run.release()  # the first kernel ended
        again = Run.open_or_create(folder, kind="generate")  # a restarted kernel
        second = await JobPipeline(client, again).run({"prompt": "two", "image_size": "square"})
    assert first.job_id != second.job_id
    files = sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg")
    assert len(files) == 2
    assert read_metadata(folder / first.images[0].file)["input"]["prompt"] == "one"  # type: ignore[index]
    # a job's image has one name, written atomically: a retry replaces a half-written file
    taken = again.image_path(second.job_id, 0, "image/jpeg", b"\xff\xd8")
    assert taken.name == second.images[0].file


async def test_invalid_input_is_refused_before_anything_is_sent(
    emu: Emulator, tmp_path: Path
) -> None:
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        with pytest.raises(InputError, match="num_inference_steps"):
            await JobPipeline(client, run).run({"prompt": "x", "num_inference_steps": 99})
    assert emu.submit_count == 0
    assert run.jobs == {}


async def test_a_refused_submit_is_final_and_says_why(emu: Emulator, tmp_path: Path) -> None:
    emu.inject("submit", status=422)
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        with pytest.raises(ValidationFailedError):
            await JobPipeline(client, run).run({"prompt": "x", "image_size": "square"})
    (record,) = run.records()
    assert record.state == "error"
    assert record.final
    assert record.request_id is None
    assert Run.open(run.path).active() == []


async def test_a_crash_during_download_is_recovered_from_the_journal(
    emu: Emulator, tmp_path: Path
) -> None:
    """The image downloads fail after the result was fetched: the job stays collectable, and
    collecting it later saves the images from the journaled URLs without a new submit."""
    emu.inject("file", status=500, times=50)
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        with pytest.raises(FalError):
            await JobPipeline(client, run).run({"prompt": "x", "image_size": "square"})
    emu.clear_faults()
    run.release()  # the process that crashed no longer holds the folder
    reopened = Run.open(run.path)
    (record,) = reopened.active()
    assert record.state == "fetching"
    assert record.image_urls
    async with client_for(emu) as client:
        collected = await JobPipeline(client, reopened).collect(record)
    assert collected.state == "done"
    assert (reopened.path / collected.images[0].file).exists()
    assert emu.submit_count == 1


async def test_a_transient_result_error_is_not_journaled_as_final(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.inject("result", status=500, times=20)
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        with pytest.raises(FalError):
            await JobPipeline(client, run).run({"prompt": "x", "image_size": "square"})
        emu.clear_faults()
        run.release()
        reopened = Run.open(run.path)
        (record,) = reopened.active()
        done = await JobPipeline(client, reopened).collect(record)
    assert done.state == "done"
    assert emu.submit_count == 1


async def test_an_expired_result_is_collected_from_the_journaled_urls(
    emu: Emulator, tmp_path: Path
) -> None:
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        pipeline = JobPipeline(client, run)
        record = pipeline.plan({"prompt": "x", "image_size": "square"})
        handle = await client.submit(
            record.input, journal=run.journal, journal_fields={"job_id": record.job_id}
        )
        await handle.result()  # fetched (URLs journaled) but never saved: a crash here
        emu.expire(handle.request_id)
        run.release()
        reopened = Run.open(run.path)
        collected = await JobPipeline(client, reopened).collect(reopened.jobs[record.job_id])
    assert collected.state == "done"
    assert len(collected.images) == 1
    assert emu.submit_count == 1


def test_a_submit_in_flight_at_a_crash_is_unknown_not_resubmitted(tmp_path: Path) -> None:
    run = Run.create(tmp_path)
    record = run.add(JobRecord(job_id="c0001", input={"prompt": "x"}, endpoint="fal-ai/flux-lora"))
    run.journal.append("submitting", "", job_id=record.job_id)
    reopened = Run.open(run.path)
    assert reopened.jobs["c0001"].state == "unknown"
    assert "may have accepted" in (reopened.jobs["c0001"].error or "")
    assert reopened.active() == []


def test_job_ids_must_be_safe_file_name_parts(tmp_path: Path) -> None:
    run = Run.create(tmp_path)
    for bad in ("../x", "/tmp/x", "", "a/b"):
        with pytest.raises(ValueError, match="safe"):
            run.add(JobRecord(job_id=bad, input={}, endpoint=""))


def test_runs_are_listed_newest_first(tmp_path: Path) -> None:
    first = Run.create(tmp_path, kind="generate")
    second = Run.create(tmp_path, kind="sweep")
    assert [run.path for run in list_runs(tmp_path)] == [second.path, first.path]
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{not json")
    assert len(list_runs(tmp_path)) == 2


async def test_a_rate_limited_wait_is_shown_in_the_status_line(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.inject("status", status=429, retry_after=0.3, times=1)
    seen: list[str] = []
    run = Run.create(tmp_path)
    async with client_for(emu, use_sse=False) as client:
        pipeline = JobPipeline(client, run, on_change=lambda record, _u: seen.append(record.detail))
        record = await pipeline.run({"prompt": "x", "image_size": "square"})
    assert record.state == "done"
    assert any(text.startswith("Waiting") and "slow down" in text for text in seen)
    assert emu.submit_count == 1


async def test_the_key_is_in_no_file_of_a_run_folder(emu: Emulator, tmp_path: Path) -> None:
    """Manifest, journal and images (with their embedded records) never hold the key, nor
    either half of a ``key_id:key_secret`` key."""
    run = Run.create(tmp_path)
    async with client_for(emu) as client:
        await JobPipeline(client, run).run({"prompt": "x", "image_size": "square", "num_images": 2})
    await run.flush()
    key = emu.api_key.encode()
    halves = [part for part in key.split(b":") if len(part) >= 8]
    files = list(run.path.iterdir())
    assert len(files) >= 4  # manifest, journal, two images
    for path in files:
        data = path.read_bytes()
        assert key not in data, path.name
        for half in halves:
            assert half not in data, path.name
