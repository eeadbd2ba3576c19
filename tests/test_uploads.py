"""Local files to fal's storage: `client.upload`, the content cache, automatic LoRA uploads in
`generate` and the pipeline, the checks before any request, and the emulator's strictness —
against a real emulator on a loopback socket."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fluxwidget import FluxClient
from fluxwidget.client import RetryPolicy, UploadOptions
from fluxwidget.client.uploads import UploadCache, check_local_file
from fluxwidget.emulator import Emulator
from fluxwidget.errors import (
    FalError,
    InputError,
    ProtocolError,
    ServerError,
    ValidationFailedError,
)
from fluxwidget.files import content_type_for, safetensors_problem
from fluxwidget.pipeline import JobPipeline
from fluxwidget.store.runs import Run
from tests.clients import client_for

FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.2)
KiB = 1024
STORAGE_PREFIXES = ("/files/upload", "/uploads/")


def safetensors(path: Path, data_size: int = 4 * KiB, *, seed: bytes = b"") -> Path:
    """A small but well-formed safetensors file (random tensor bytes)."""
    header = {
        "__metadata__": {"format": "pt"},
        "lora.weight": {"dtype": "F32", "shape": [data_size // 4], "data_offsets": [0, data_size]},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + seed + os.urandom(data_size - len(seed)))
    return path


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        reply = await http.get(url)
    assert reply.status_code == 200
    return reply.content


def storage_calls(emu: Emulator) -> list[tuple[str, str, str]]:
    return [c for c in emu.authorizations if c[1].startswith(STORAGE_PREFIXES)]


# --- client.upload ------------------------------------------------------------------------------


async def test_a_small_file_comes_back_byte_identical(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "my style.safetensors")
    progress: list[tuple[int, int]] = []
    async with client_for(emu) as client:
        url = await client.upload(
            file, on_progress=lambda sent, total: progress.append((sent, total))
        )
    assert url.startswith(f"{emu.url}/uploads/")
    assert await fetch(url) == file.read_bytes()
    [info] = emu.uploads
    assert info.url == url
    assert info.parts == 0
    assert info.name == "my_style.safetensors"
    assert info.content_type == "application/octet-stream"
    assert info.lifetime == 7 * 86400
    assert progress[-1] == (file.stat().st_size, file.stat().st_size)


async def test_the_key_goes_to_the_token_call_only(emu: Emulator, tmp_path: Path) -> None:
    small = safetensors(tmp_path / "a.safetensors")
    big = safetensors(tmp_path / "b.safetensors", 300 * KiB)
    options = UploadOptions(multipart_threshold=100 * KiB, part_size=64 * KiB)
    async with client_for(emu, upload_options=options) as client:
        await client.upload(small)
        await client.upload(big)
    token_calls = [c for c in emu.authorizations if c[1] == "/storage/auth/token"]
    assert [auth for _, _, auth in token_calls] == [f"Key {emu.api_key}"]
    calls = storage_calls(emu)
    assert len(calls) >= 1 + 1 + 5 + 1  # upload, multipart create, 5 parts, complete
    for _, _, auth in calls:
        assert auth.startswith("Bearer ")
        assert emu.api_key not in auth
        assert emu.api_key.split(":")[1] not in auth
    # and the emulator's storage refuses the key outright, as a leak would need
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{emu.url}/files/upload", content=b"x", headers={"Authorization": f"Key {emu.api_key}"}
        )
    assert reply.status_code == 401


async def test_a_multipart_upload_retries_a_failed_part_alone(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "big.safetensors", 1200 * KiB)
    size = file.stat().st_size
    options = UploadOptions(multipart_threshold=1024 * KiB, part_size=256 * KiB, part_concurrency=2)
    emu.inject("part", status=503, times=1)
    progress: list[tuple[int, int]] = []
    async with client_for(emu, upload_options=options) as client:
        url = await client.upload(file, on_progress=lambda s, t: progress.append((s, t)))
    assert await fetch(url) == file.read_bytes()
    [info] = emu.uploads
    assert info.parts == 5  # ceil((1200 KiB + header) / 256 KiB)
    parts: dict[str, list[int]] = {}
    for method, path, status in emu.calls:
        if method == "PUT" and "/multipart/" in path:
            parts.setdefault(path.rsplit("/", 1)[1], []).append(status)
    assert sorted(parts) == ["1", "2", "3", "4", "5"]
    assert sorted(parts.values()) == [[200]] * 4 + [[503, 200]]  # one part, retried alone
    assert [p for m, p, _ in emu.calls if p.endswith("/complete")] != []
    assert progress[0] == (0, size)
    assert progress[-1] == (size, size)
    assert [s for s, _ in progress] == sorted(s for s, _ in progress)


async def test_an_image_goes_up_with_its_type(emu: Emulator, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    photo = tmp_path / "photo.png"
    photo.write_bytes(buffer.getvalue())
    async with client_for(emu) as client:
        url = await client.upload(photo, kind="image")
    assert emu.uploads[0].content_type == "image/png"
    assert await fetch(url) == buffer.getvalue()


# --- the cache ----------------------------------------------------------------------------------


async def test_the_same_bytes_go_up_once_across_clients(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    async with client_for(emu) as first:
        url = await first.upload(file)
    async with client_for(emu) as second:  # a new client (another kernel): same cache file
        assert await second.upload(file) == url
    assert len(emu.uploads) == 1
    assert len([c for c in emu.calls if c[1] == "/storage/auth/token"]) == 1

    safetensors(file)  # new random bytes, same name
    async with client_for(emu) as third:
        changed = await third.upload(file)
    assert changed != url
    assert len(emu.uploads) == 2
    assert await fetch(changed) == file.read_bytes()


async def test_concurrent_uploads_of_one_file_share_one_upload(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "style.safetensors", 256 * KiB)
    async with client_for(emu, upload_cache=False) as client:
        urls = await asyncio.gather(*(client.upload(file) for _ in range(6)))
    assert len(set(urls)) == 1
    assert len(emu.uploads) == 1


async def test_an_entry_near_its_expiry_is_not_used(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    cache = tmp_path / "cache.json"
    async with client_for(emu, upload_cache=cache) as client:
        await client.upload(file)
        data = json.loads(cache.read_text())
        [entry] = data["entries"].values()
        assert entry["size"] == file.stat().st_size
        entry["expires_at"] = time.time() + 60  # inside the default margin of a day
        cache.write_text(json.dumps(data))
        await client.upload(file)
    assert len(emu.uploads) == 2


async def test_the_cache_is_kept_per_storage_host(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    with Emulator(seconds_per_step=0.005) as other:
        async with client_for(emu) as one, client_for(other) as two:
            first, second = await one.upload(file), await two.upload(file)
        assert first.startswith(emu.url)
        assert second.startswith(other.url)
        assert len(other.uploads) == 1
    assert len(emu.uploads) == 1


async def test_no_cache_uploads_every_time(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    async with client_for(emu, upload_cache=False) as client:
        await client.upload(file)
        await client.upload(file)
    assert len(emu.uploads) == 2


def test_a_damaged_cache_file_counts_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    cache = UploadCache(path)
    assert cache.get("http://h", "0" * 64, 1) is None


# --- automatic uploads --------------------------------------------------------------------------


async def test_generate_uploads_a_local_lora_and_sends_its_url(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    async with client_for(emu) as client:
        result = await client.generate(
            prompt="a tiger eye", image_size="square", loras=[{"path": str(file), "scale": 0.8}]
        )
    assert result.images
    [info] = emu.uploads
    [job] = emu.jobs.values()
    assert job.input["loras"] == [{"path": info.url, "scale": 0.8}]
    assert job.result_status == 200


async def test_the_pipeline_records_the_local_path_and_the_url(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    run = Run.create(tmp_path / "runs", kind="generate")
    async with client_for(emu) as client:
        record = await JobPipeline(client, run).run(
            {"prompt": "x", "image_size": "square", "loras": [{"path": str(file)}]}
        )
    await run.flush()
    [info] = emu.uploads
    assert record.state == "done"
    assert record.input["loras"][0]["path"] == str(file)  # what the user asked for
    assert record.uploads == {str(file): info.url}  # and what was sent
    assert next(iter(emu.jobs.values())).input["loras"][0]["path"] == info.url
    submitting = [r for r in run.journal.records() if r["event"] == "submitting"]
    assert submitting[0]["uploads"] == {str(file): info.url}
    assert Run.open(run.path).jobs[record.job_id].uploads == {str(file): info.url}


async def test_a_failed_upload_fails_the_job_before_any_submit(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    emu.inject("upload", status=500, times=FAST.max_attempts)
    run = Run.create(tmp_path / "runs", kind="generate")
    async with client_for(emu) as client:
        with pytest.raises(ServerError) as caught:
            await JobPipeline(client, run).run({"prompt": "x", "loras": [{"path": str(file)}]})
    assert emu.api_key not in str(caught.value)
    assert "upload" in str(caught.value)
    assert emu.submit_count == 0
    [record] = run.jobs.values()
    assert record.state == "error"
    assert record.request_id is None
    assert "submitting" not in [r["event"] for r in run.journal.records()]


# --- checks before any request ------------------------------------------------------------------


async def test_a_file_that_is_not_safetensors_is_refused_before_any_request(
    emu: Emulator, tmp_path: Path
) -> None:
    bad = tmp_path / "style.safetensors"
    bad.write_bytes(b"<html>not a model</html>" * 10)
    async with client_for(emu) as client:
        with pytest.raises(InputError) as caught:
            await client.generate(prompt="x", loras=[{"path": str(bad)}])
    [problem] = caught.value.problems
    assert problem.field == "loras[0].path"
    assert "safetensors" in problem.message
    assert emu.calls == []


async def test_a_missing_file_is_refused_before_any_request(emu: Emulator, tmp_path: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    async with client_for(emu) as client:
        with pytest.raises(InputError) as caught:
            await client.generate(prompt="x", loras=[{"path": str(missing)}])
        assert [p.field for p in caught.value.problems] == ["loras[0].path"]
        with pytest.raises(InputError) as direct:
            await client.upload(missing)
        assert [p.field for p in direct.value.problems] == ["path"]
        assert "no such file" in direct.value.problems[0].message
    assert emu.calls == []


def test_local_file_checks(tmp_path: Path) -> None:
    good = safetensors(tmp_path / "ok.safetensors")
    assert check_local_file(good, kind="lora") == good.stat().st_size
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        check_local_file(empty)
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="image"):
        check_local_file(picture, field="image_url")
    with pytest.raises(InputError, match="not a file"):
        check_local_file(tmp_path)


def test_safetensors_problem_reads_the_header() -> None:
    header = json.dumps({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    good = struct.pack("<Q", len(header)) + header
    assert safetensors_problem(good, len(good) + 4) is None
    assert "too short" in (safetensors_problem(b"abc", 3) or "")
    assert "header" in (safetensors_problem(struct.pack("<Q", 10**12) + header, 100) or "")
    assert "not JSON" in (safetensors_problem(struct.pack("<Q", 4) + b"abcd", 12) or "")
    listed = struct.pack("<Q", 2) + b"[]"
    assert "not a JSON object" in (safetensors_problem(listed, len(listed)) or "")
    assert "past the end" in (safetensors_problem(good, len(good) + 2) or "")
    assert content_type_for("x.safetensors") == "application/octet-stream"
    assert content_type_for("x.JPG") == "image/jpeg"


# --- replies that cannot be used ----------------------------------------------------------------


async def test_a_malformed_token_reply_is_a_protocol_error(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    emu.inject("token", body='{"token": 42, "note": "{key}"}')
    async with client_for(emu) as client:
        with pytest.raises(ProtocolError, match="token") as caught:
            await client.upload(file)
    assert emu.api_key not in str(caught.value)
    assert emu.uploads == []


async def test_storage_errors_never_show_the_key(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    emu.inject("upload", status=400, body='{"detail": "bad request from {key}"}')
    async with client_for(emu) as client:
        with pytest.raises(FalError) as caught:
            await client.upload(file)
    text = f"{caught.value} {getattr(caught.value, 'detail', '')}"
    assert emu.api_key not in text
    assert emu.api_key.split(":")[1] not in text


# --- the emulator's strictness ------------------------------------------------------------------


def _submit(emu: Emulator, path: str) -> httpx.Response:
    body = {"prompt": "x", "loras": [{"path": path}]}
    headers = {"Authorization": f"Key {emu.api_key}"}
    return httpx.post(f"{emu.url}/fal-ai/flux-lora", json=body, headers=headers)


def test_the_emulator_refuses_a_local_path_at_submit(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")  # exists, yet fal could never read it
    for path in (str(file), "./style.safetensors", "file:///tmp/style.safetensors"):
        reply = _submit(emu, path)
        assert reply.status_code == 422, path
        [item] = reply.json()["detail"]
        assert item["loc"] == ["body", "loras", 0, "path"]
        assert item["input"] == path
    own_but_missing = _submit(emu, f"{emu.url}/uploads/abc/style.safetensors")
    assert own_but_missing.status_code == 422
    assert emu.submit_count == 0
    for accepted in ("https://example.org/style.safetensors", "owner/name"):
        assert _submit(emu, accepted).status_code == 200, accepted
    assert emu.submit_count == 2


async def test_a_validation_error_from_a_raw_path_reaches_the_client(
    emu: Emulator, tmp_path: Path
) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    headers = {"Authorization": f"Key {emu.api_key}"}
    body = {"prompt": "x", "loras": [{"path": str(file)}]}
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{emu.url}/fal-ai/flux-lora", json=body, headers=headers)
    assert reply.status_code == 422
    async with client_for(emu) as client:
        error = client.error_for(reply)
    assert isinstance(error, ValidationFailedError)
    assert "loras" in error.problems[0].field


def test_an_emulator_for_own_urls_only_refuses_foreign_ones() -> None:
    with Emulator(seconds_per_step=0.005, lora_urls="own") as strict:
        assert _submit(strict, "https://example.org/style.safetensors").status_code == 422
        assert _submit(strict, "owner/name").status_code == 200


async def test_an_emulator_accepts_its_own_uploads(emu: Emulator, tmp_path: Path) -> None:
    file = safetensors(tmp_path / "style.safetensors")
    async with client_for(emu) as client:
        url = await client.upload(file)
    assert _submit(emu, url).status_code == 200


def test_storage_url_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FluxClient(api_key="k:s").config.storage_url == "https://rest.fal.ai"
    proxy = FluxClient(api_key="k:s", base_url="https://proxy.example")
    assert proxy.config.storage_url == "https://proxy.example"  # the key stays on known hosts
    monkeypatch.setenv("FLUXWIDGET_STORAGE_URL", "https://storage.example/")
    assert FluxClient(api_key="k:s").config.storage_url == "https://storage.example"
    explicit = FluxClient(api_key="k:s", storage_url="http://127.0.0.1:9")
    assert explicit.config.storage_url == "http://127.0.0.1:9"
    monkeypatch.delenv("FLUXWIDGET_STORAGE_URL")
    moved = FluxClient(api_key="k:s").with_options(base_url="https://proxy.example")
    assert moved.config.storage_url == "https://proxy.example"


def test_the_emulator_speaks_the_multipart_protocol_as_fal_clients_use_it(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.url, timeout=10) as http:
        key = {"Authorization": f"Key {emu.api_key}"}
        token = http.post(
            "/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}, headers=key
        ).json()
        assert token["base_url"] == emu.url
        auth = {"Authorization": f"{token['token_type']} {token['token']}"}
        created = http.post(
            f"{token['base_url']}/files/upload/multipart",
            headers={**auth, "X-Fal-File-Name": "w.bin", "Content-Type": "application/x-test"},
        ).json()
        root = f"{created['access_url']}/multipart/{created['uploadId']}"
        etags = {n: http.put(f"{root}/{n}", content=bytes([n]) * 3, headers=auth).headers["etag"]
                 for n in (1, 2)}  # fmt: skip
        wrong = [{"partNumber": 1, "etag": '"nope"'}, {"partNumber": 2, "etag": etags[2]}]
        assert http.post(f"{root}/complete", json={"parts": wrong}, headers=auth).status_code == 400
        unordered = [{"partNumber": n, "etag": etags[n]} for n in (2, 1)]  # as they finished
        done = http.post(f"{root}/complete", json={"parts": unordered}, headers=auth)
        assert done.json()["access_url"] == created["access_url"]
        served = http.get(created["access_url"])
    assert served.content == b"\x01\x01\x01\x02\x02\x02"
    assert served.headers["content-type"] == "application/x-test"
    assert emu.uploads[0].parts == 2


async def test_a_proxy_without_storage_says_so_before_anything_is_paid(
    emu: Emulator, tmp_path: Path
) -> None:
    from fluxwidget.errors import UploadsUnavailableError

    lora = safetensors(tmp_path / "style.safetensors")
    emu.inject("token", status=404, times=5)  # a queue-only proxy: no /storage here
    async with client_for(emu, auth_scheme="Bearer", upload_cache=False) as client:
        with pytest.raises(UploadsUnavailableError, match="Give a URL instead") as error:
            await client.generate(prompt="x", loras=[{"path": str(lora)}])
    assert "nothing was" in str(error.value)
    assert emu.submit_count == 0
