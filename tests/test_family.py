"""The flux-lora family (image-to-image, inpainting) end to end against a real emulator on a
loopback socket: local images and masks uploaded, each input sent to its endpoint, the
emulator's strictness and rendering, run folders and `recover`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fluxwidget import ImageToImageInput, InpaintingInput
from fluxwidget.client import RetryPolicy
from fluxwidget.emulator import Emulator
from fluxwidget.errors import FalError, InputError
from fluxwidget.images import read_metadata
from fluxwidget.pipeline import JobPipeline
from fluxwidget.schema import IMAGE_TO_IMAGE_ID, INPAINTING_ID
from fluxwidget.store.lost import _fallback_hash, find_lost_submits
from fluxwidget.store.records import record_input
from fluxwidget.store.runs import Run
from fluxwidget.sweeps import SweepRunner, plan_sweep
from fluxwidget.sweeps.cost import estimate_cost
from fluxwidget.sweeps.export import GridLayout
from tests.clients import client_for

FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.2)


def photo(path: Path, size: tuple[int, int] = (320, 240), colour: str = "royalblue") -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def mask(path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    """Black, with a white rectangle in the left half (the area to repaint)."""
    image = Image.new("L", size, 0)
    image.paste(255, (0, 0, size[0] // 2, size[1]))
    image.save(path)
    return path


def submits(emu: Emulator) -> list[str]:
    return [path for method, path, _ in emu.calls if method == "POST" and "/fal-ai/" in path]


async def fetch(url: str) -> Image.Image:
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    assert reply.status_code == 200
    return Image.open(io.BytesIO(reply.content)).convert("RGB")


# --- the client -----------------------------------------------------------------------------


async def test_image_to_image_uploads_the_photo_and_goes_to_its_endpoint(
    emu: Emulator, tmp_path: Path
) -> None:
    file = photo(tmp_path / "photo.png")
    async with client_for(emu) as client:
        handle = await client.submit(
            ImageToImageInput(prompt="a watercolour", image_url=str(file), strength=0.6)
        )
        assert handle.status_url.endswith(f"/fal-ai/flux-lora/requests/{handle.request_id}/status")
        assert "/image-to-image/" not in handle.response_url
        result = await handle.result()
    [info] = emu.uploads
    [job] = emu.jobs.values()
    assert job.subpath == "image-to-image"
    assert job.input["image_url"] == info.url
    assert job.input["strength"] == 0.6
    assert submits(emu) == ["/fal-ai/flux-lora/image-to-image"]
    [image] = result.images
    assert (image.width, image.height) == (320, 240)  # no image_size: the photo's size
    picture = await fetch(image.url)
    assert picture.size == (320, 240)
    # the output derives from the photo: blue shows through the placeholder
    r, _g, b = picture.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    assert b > r


async def test_generate_with_keywords_picks_image_to_image(emu: Emulator, tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.jpg")
    async with client_for(emu) as client:
        result = await client.generate(
            prompt="x", image_url=str(file), image_size="square", num_inference_steps=2
        )
    assert (result.images[0].width, result.images[0].height) == (512, 512)
    assert submits(emu) == ["/fal-ai/flux-lora/image-to-image"]
    # status and result went to the app id, without the sub-path
    others = [p for _, p, _ in emu.calls if "/requests/" in p]
    assert others
    assert all(p.startswith("/fal-ai/flux-lora/requests/") for p in others)


async def test_inpainting_uploads_both_and_changes_only_the_masked_area(
    emu: Emulator, tmp_path: Path
) -> None:
    image_file = photo(tmp_path / "photo.png", colour="white")
    mask_file = mask(tmp_path / "mask.png")
    async with client_for(emu) as client:
        result = await client.generate(
            InpaintingInput(
                prompt="a cat",
                image_url=str(image_file),
                mask_url=str(mask_file),
                strength=1.0,
                output_format="png",
                num_inference_steps=2,
            )
        )
    assert len(emu.uploads) == 2
    [job] = emu.jobs.values()
    assert job.subpath == "inpainting"
    urls = {info.name: info.url for info in emu.uploads}
    assert job.input["image_url"] == urls["photo.png"]
    assert job.input["mask_url"] == urls["mask.png"]
    picture = await fetch(result.images[0].url)
    assert picture.size == (320, 240)
    right = picture.crop((170, 0, 320, 240))  # black in the mask: kept
    assert right.getextrema() == ((255, 255), (255, 255), (255, 255))
    left = picture.crop((0, 0, 150, 240))  # white in the mask: repainted
    assert left.getextrema() != ((255, 255), (255, 255), (255, 255))


async def test_a_mask_of_another_size_is_refused_before_any_request(
    emu: Emulator, tmp_path: Path
) -> None:
    image_file = photo(tmp_path / "photo.png")
    mask_file = mask(tmp_path / "mask.png", size=(100, 100))
    async with client_for(emu) as client:
        with pytest.raises(InputError) as caught:
            await client.generate(prompt="x", image_url=str(image_file), mask_url=str(mask_file))
    [problem] = caught.value.problems
    assert problem.field == "mask_url"
    assert "100×100" in problem.message
    assert "320×240" in problem.message
    assert emu.calls == []


async def test_an_image_that_does_not_decode_is_refused(emu: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not an image at all" * 20)
    async with client_for(emu) as client:
        with pytest.raises(InputError) as caught:
            await client.generate(prompt="x", image_url=str(bad))
    assert [p.field for p in caught.value.problems] == ["image_url"]
    assert emu.calls == []


async def test_data_uris_and_urls_are_sent_as_they_are(emu: Emulator) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, format="PNG")
    import base64

    uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    async with client_for(emu) as client:
        result = await client.generate(prompt="x", image_url=uri, num_inference_steps=2)
        remote = await client.generate(
            prompt="x", image_url="https://example.org/a.png", num_inference_steps=2
        )
    assert emu.uploads == []
    assert (result.images[0].width, result.images[0].height) == (64, 48)
    assert (remote.images[0].width, remote.images[0].height) == (1024, 1024)  # not fetched


# --- the emulator's strictness ----------------------------------------------------------------


def _post(emu: Emulator, endpoint: str, body: dict[str, object]) -> httpx.Response:
    headers = {"Authorization": f"Key {emu.api_key}"}
    return httpx.post(f"{emu.url}/{endpoint}", json=body, headers=headers)


def test_the_emulator_refuses_images_it_cannot_download(emu: Emulator, tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.png")
    for value in (str(file), "./photo.png", f"{emu.url}/uploads/abc/photo.png"):
        reply = _post(emu, IMAGE_TO_IMAGE_ID, {"prompt": "x", "image_url": value})
        assert reply.status_code == 422, value
        [item] = reply.json()["detail"]
        assert item["loc"] == ["body", "image_url"]
    reply = _post(
        emu,
        INPAINTING_ID,
        {"prompt": "x", "image_url": "https://example.org/a.png", "mask_url": str(file)},
    )
    assert reply.status_code == 422
    assert [i["loc"] for i in reply.json()["detail"]] == [["body", "mask_url"]]
    assert emu.submit_count == 0


async def test_the_emulator_refuses_a_mask_of_another_size(emu: Emulator, tmp_path: Path) -> None:
    async with client_for(emu) as client:
        image_url = await client.upload(photo(tmp_path / "photo.png"), kind="image")
        mask_url = await client.upload(mask(tmp_path / "mask.png", (50, 50)), kind="image")
    reply = _post(emu, INPAINTING_ID, {"prompt": "x", "image_url": image_url, "mask_url": mask_url})
    assert reply.status_code == 422
    [item] = reply.json()["detail"]
    assert item["loc"] == ["body", "mask_url"]
    assert "same size" in item["msg"]
    assert emu.submit_count == 0


async def test_a_missing_mask_fails_the_job_with_fals_detail(emu: Emulator, tmp_path: Path) -> None:
    async with client_for(emu) as client:
        image_url = await client.upload(photo(tmp_path / "photo.png"), kind="image")
    reply = _post(emu, INPAINTING_ID, {"prompt": "x", "image_url": image_url})
    assert reply.status_code == 200  # fal accepts, then the job fails with a 422 result
    request_id = reply.json()["request_id"]
    headers = {"Authorization": f"Key {emu.api_key}"}
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            url = f"{emu.url}/fal-ai/flux-lora/requests/{request_id}"
            result = await http.get(url, headers=headers)
            if result.status_code != 400:
                break
            await asyncio.sleep(0.02)
    assert result.status_code == 422
    assert [i["loc"] for i in result.json()["detail"]] == [["body", "mask_url"]]


def test_the_emulator_prices_the_family_like_flux_lora(emu: Emulator) -> None:
    headers = {"Authorization": f"Key {emu.api_key}"}
    reply = httpx.get(
        f"{emu.url}/v1/models/pricing",
        params={"endpoint_id": IMAGE_TO_IMAGE_ID},
        headers=headers,
    )
    assert reply.status_code == 200
    [price] = reply.json()["prices"]
    assert price["endpoint_id"] == IMAGE_TO_IMAGE_ID
    assert price["unit_price"] == 0.035


# --- run folders and recover ----------------------------------------------------------------


async def test_a_run_folder_keeps_the_endpoint_and_recover_collects_it(
    emu: Emulator, tmp_path: Path
) -> None:
    file = photo(tmp_path / "photo.png")
    emu.inject("result", status=500, times=40)  # the process "dies" before the result
    run = Run.create(tmp_path / "run", kind="generate")
    async with client_for(emu) as client:
        with pytest.raises(FalError):
            await JobPipeline(client, run).run(
                {"prompt": "x", "image_url": str(file), "strength": 0.5, "num_inference_steps": 2}
            )
    await run.flush()
    run.release()
    emu.clear_faults()
    [info] = emu.uploads
    [stored] = Run.open(run.path).records()
    assert stored.endpoint == IMAGE_TO_IMAGE_ID
    assert stored.uploads == {str(file): info.url}
    assert stored.input["image_url"] == str(file)  # what the user asked for
    rebuilt = record_input(stored)
    assert isinstance(rebuilt, ImageToImageInput)
    assert _fallback_hash(stored) is not None
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["jobs"][0]["endpoint"] == IMAGE_TO_IMAGE_ID

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fluxwidget", "recover", str(run.path), "--base-url", emu.url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FAL_KEY": emu.api_key},
    )
    assert done.returncode == 0, done.stderr
    (saved,) = [Path(line) for line in done.stdout.split()]
    metadata = read_metadata(saved)
    assert metadata is not None
    assert metadata["endpoint"] == IMAGE_TO_IMAGE_ID
    assert metadata["uploads"] == {str(file): info.url}
    assert Image.open(saved).size == (320, 240)
    assert emu.submit_count == 1
    results = [p for _, p, _ in emu.calls if "/requests/" in p]
    assert results
    assert all(p.startswith("/fal-ai/flux-lora/requests/") for p in results)


# --- the command line -------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxwidget", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_generate_image_to_image_with_a_local_photo(tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.png", size=(200, 150))
    done = run_cli(
        "generate", "a watercolour", "--image", str(file), "--strength", "0.6",
        "--emulator", "--out", str(tmp_path / "run"), "--steps", "2", "--format", "png",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (saved,) = [Path(line) for line in done.stdout.split()]
    assert Image.open(saved).size == (200, 150)
    metadata = read_metadata(saved)
    assert metadata is not None
    assert metadata["endpoint"] == IMAGE_TO_IMAGE_ID
    assert metadata["input"]["image_url"] == str(file)
    assert metadata["input"]["strength"] == 0.6
    assert metadata["uploads"][str(file)].startswith("http://127.0.0.1")


def test_cli_generate_inpainting_and_its_refusals(tmp_path: Path) -> None:
    image_file = photo(tmp_path / "photo.png")
    mask_file = mask(tmp_path / "mask.png")
    done = run_cli(
        "generate", "a cat", "--image", str(image_file), "--mask", str(mask_file),
        "--emulator", "--out", str(tmp_path / "run"), "--steps", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (saved,) = [Path(line) for line in done.stdout.split()]
    metadata = read_metadata(saved)
    assert metadata is not None
    assert metadata["endpoint"] == INPAINTING_ID
    assert set(metadata["uploads"]) == {str(image_file), str(mask_file)}

    small = mask(tmp_path / "small.png", size=(10, 10))
    refused = run_cli(
        "generate", "a cat", "--image", str(image_file), "--mask", str(small), "--emulator",
        "--out", str(tmp_path / "refused"),
    )  # fmt: skip
    assert refused.returncode != 0
    assert "mask_url" in refused.stderr
    without_image = run_cli("generate", "a cat", "--strength", "0.5", "--emulator")
    assert without_image.returncode != 0
    assert "image_url" in without_image.stderr


def test_cli_shows_the_upload_of_a_big_file_unless_quiet(tmp_path: Path) -> None:
    from tests.test_uploads import safetensors

    big = safetensors(tmp_path / "big.safetensors", 17 * 1024 * 1024)
    args = ["generate", "x", "--lora", str(big), "--image-size", "square", "--emulator",
            "--steps", "1"]  # fmt: skip
    env = {"FLUXWIDGET_UPLOAD_CACHE": "off"}
    shown = run_cli(*args, "--out", str(tmp_path / "a"), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "uploading big.safetensors" in shown.stderr
    assert "100%" in shown.stderr
    quiet = run_cli(*args, "--out", str(tmp_path / "b"), "--quiet", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "uploading" not in quiet.stderr


def test_cli_help_names_the_family_options() -> None:
    done = run_cli("sweep", "--help")
    assert done.returncode == 0
    for flag in ("--image PATH|URL", "--strength X", "--mask PATH|URL", "image_url"):
        assert flag in done.stdout


# --- sweeps -----------------------------------------------------------------------------------


async def test_a_2x2_sweep_over_two_local_photos_uploads_each_once(
    emu: Emulator, tmp_path: Path
) -> None:
    a = photo(tmp_path / "a.png", colour="red")
    b = photo(tmp_path / "b.jpg", size=(160, 120), colour="green")
    plan = plan_sweep(
        {"prompt": "as a watercolour", "num_inference_steps": 2},
        f"image_url={a},{b}",
        "strength=0.4,0.9",
        seed=3,
    )
    assert all(isinstance(cell.input, ImageToImageInput) for cell in plan.cells)
    assert all(cell.input.image_size is None for cell in plan.cells)  # type: ignore[attr-defined]
    layout = GridLayout.from_plan(plan)
    assert layout.x_values == ("a.png", "b.jpg")  # file names, not whole paths
    assert layout.y_values == ("0.4", "0.9")
    estimate = estimate_cost(plan.inputs)
    assert estimate.unknown_sizes == 0  # read from the local files
    assert estimate.megapixels == 4
    async with client_for(emu) as client:
        runner = SweepRunner(client, plan, out=tmp_path / "sweep", concurrency=4)
        await runner.run_all()
    assert runner.progress().done == 4
    assert len(emu.uploads) == 2  # each distinct file once for the whole sweep
    assert sorted(info.name for info in emu.uploads) == ["a.png", "b.jpg"]
    sent = {job.input["image_url"] for job in emu.jobs.values()}
    assert sent == {info.url for info in emu.uploads}
    assert {job.subpath for job in emu.jobs.values()} == {"image-to-image"}
    sizes = set()
    for record in runner.records.values():
        assert record.endpoint == IMAGE_TO_IMAGE_ID
        sizes.add((record.images[0].width, record.images[0].height))
    assert sizes == {(320, 240), (160, 120)}


def test_sweep_cells_are_all_validated_before_anything_is_sent(tmp_path: Path) -> None:
    a = photo(tmp_path / "a.png")
    with pytest.raises(InputError) as caught:
        plan_sweep({"prompt": "x"}, f"image_url={a},{tmp_path / 'missing.png'}")
    assert "missing.png" in str(caught.value)
    with pytest.raises(InputError) as strength:
        plan_sweep({"prompt": "x", "image_url": str(a)}, "strength=0.5,1.5")
    assert "strength" in str(strength.value)


def test_a_lora_path_axis_over_local_files_labels_file_names(tmp_path: Path) -> None:
    from tests.test_uploads import safetensors

    one = safetensors(tmp_path / "one.safetensors")
    two = safetensors(tmp_path / "two.safetensors")
    plan = plan_sweep({"prompt": "x", "loras": [{"path": str(one)}]}, f"loras[0].path={one},{two}")
    assert GridLayout.from_plan(plan).x_values == ("one.safetensors", "two.safetensors")


def test_the_estimate_of_an_image_at_an_url_says_its_size_is_assumed() -> None:
    item = ImageToImageInput(prompt="x", image_url="https://example.org/a.png")
    estimate = estimate_cost([item, item])
    assert estimate.unknown_sizes == 2
    assert estimate.megapixels == 4  # 1024×1024 bills as 2 MP each
    assert "assumed 1024×1024" in estimate.describe()


def test_cli_sweep_over_strength_with_a_local_photo(tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.png", size=(96, 64))
    done = run_cli(
        "sweep", "as a watercolour", "--image", str(file), "--axis", "strength=0.3,0.9",
        "--emulator", "--yes", "--out", str(tmp_path / "sweep"), "--steps", "1", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "sweep" / "manifest.json").read_text())
    jobs = manifest["jobs"]
    assert len(jobs) == 2
    assert {job["endpoint"] for job in jobs} == {IMAGE_TO_IMAGE_ID}
    assert sorted(job["input"]["strength"] for job in jobs) == [0.3, 0.9]
    assert len({url for job in jobs for url in job["uploads"].values()}) == 1


async def test_a_lost_image_to_image_submit_is_found_by_its_endpoint(tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.png")
    with Emulator(workers=2, seconds_per_step=0.002, keepalive_interval=0.2) as emu:
        emu.inject("submit", drop=True, after_accept=True)
        run = Run.create(tmp_path / "run", kind="generate")
        async with client_for(emu) as client:
            pipeline = JobPipeline(client, run)
            with pytest.raises(FalError):
                await pipeline.run(
                    {"prompt": "x", "image_url": str(file), "num_inference_steps": 2}
                )
            await run.flush()
            [record] = run.records()
            assert record.state == "unknown"
            assert record.endpoint == IMAGE_TO_IMAGE_ID
            assert _fallback_hash(record) == next(
                e["payload_sha256"] for e in run.journal.records() if e["event"] == "submitting"
            )
            found = await find_lost_submits(client, run)
            collected = await pipeline.collect(run.jobs[record.job_id])
        assert emu.submit_count == 1
    assert record.job_id in found.found
    assert collected.state == "done"


def test_a_sweep_over_a_file_that_is_no_image_is_refused_when_planned(tmp_path: Path) -> None:
    good = photo(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image" * 50)
    with pytest.raises(InputError) as caught:
        plan_sweep({"prompt": "x"}, f"image_url={good},{bad}")
    text = str(caught.value)
    assert "bad.png" in text
    assert "Pillow" in text
    small_mask = mask(tmp_path / "mask.png", size=(8, 8))
    with pytest.raises(InputError) as masks:
        plan_sweep(
            {"prompt": "x", "mask_url": str(small_mask)}, f"image_url={good}", "strength=0.5,0.7"
        )
    assert "mask_url" in str(masks.value)


def test_one_mask_over_swept_photos_makes_inpainting_cells(tmp_path: Path) -> None:
    a, b = photo(tmp_path / "a.png"), photo(tmp_path / "b.png", colour="red")
    shared = mask(tmp_path / "mask.png")
    plan = plan_sweep({"prompt": "x", "mask_url": str(shared)}, f"image_url={a},{b}")
    assert [type(cell.input) for cell in plan.cells] == [InpaintingInput, InpaintingInput]
    assert [cell.input.image_url for cell in plan.cells] == [str(a), str(b)]  # type: ignore[attr-defined]


def test_the_estimate_reads_the_size_of_a_data_uri_image() -> None:
    import base64

    out = io.BytesIO()
    Image.new("RGB", (2000, 1000), "red").save(out, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    estimate = estimate_cost([ImageToImageInput(prompt="x", image_url=uri)])
    assert estimate.unknown_sizes == 0
    assert estimate.megapixels == 2  # 2,000,000 pixels


async def test_the_pipeline_reports_upload_progress(emu: Emulator, tmp_path: Path) -> None:
    file = photo(tmp_path / "photo.png")
    heard: list[tuple[str, int, int]] = []
    run = Run.create(tmp_path / "run", kind="generate")
    async with client_for(emu) as client:
        pipeline = JobPipeline(client, run, on_upload=lambda *a: heard.append(a))
        record = await pipeline.run(
            {"prompt": "x", "image_url": str(file), "num_inference_steps": 1}
        )
    size = file.stat().st_size
    assert record.state == "done"
    assert heard[0] == (str(file), 0, size)
    assert heard[-1] == (str(file), size, size)


def test_an_emulator_for_own_urls_only_refuses_foreign_images() -> None:
    with Emulator(seconds_per_step=0.005, lora_urls="own") as strict:
        body = {"prompt": "x", "image_url": "https://example.org/a.png"}
        reply = _post(strict, IMAGE_TO_IMAGE_ID, body)
        assert reply.status_code == 422
        assert reply.json()["detail"][0]["loc"] == ["body", "image_url"]
        assert strict.submit_count == 0
