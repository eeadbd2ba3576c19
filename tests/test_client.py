"""FluxClient against the emulator over a real loopback socket: every call, status and error."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fluxwidget.client import (
    Completed,
    FluxClient,
    InProgress,
    Queued,
    RequestHandle,
    StatusUpdate,
)
from fluxwidget.client.journal import Journal
from fluxwidget.emulator import Emulator
from fluxwidget.errors import (
    AuthenticationError,
    GenerationTimeout,
    InputError,
    JobCancelledError,
    RateLimitError,
    RequestTimeoutError,
    ResultExpiredError,
    ResultNotReadyError,
    ServerError,
    TransportError,
    UnsafeURLError,
    ValidationFailedError,
)
from fluxwidget.images import open_image
from tests.clients import FAST_RETRY as FAST
from tests.clients import client_for


def paths(emu: Emulator, method: str, fragment: str) -> list[str]:
    return [p for m, p, _ in emu.calls if m == method and p.endswith(fragment)]


async def test_generate_returns_images_of_the_requested_size(emu: Emulator) -> None:
    async with client_for(emu) as client:
        result = await client.generate(prompt="a tiger eye", image_size="portrait_16_9", seed=7)
        assert result.seed == 7
        assert (result.images[0].width, result.images[0].height) == (576, 1024)
        data = await client.download(result.images[0])
    assert open_image(data).size == (576, 1024)
    assert open_image(data).format == "JPEG"


async def test_custom_size_png_and_several_images(emu: Emulator) -> None:
    async with client_for(emu) as client:
        result = await client.generate(
            prompt="x", image_size={"width": 300, "height": 200}, num_images=3, output_format="png"
        )
        images = [open_image(await client.download(image)) for image in result.images]
    assert [(i.format, i.size) for i in images] == [("PNG", (300, 200))] * 3


async def test_sync_mode_returns_data_uris(emu: Emulator) -> None:
    async with client_for(emu) as client:
        result = await client.generate(prompt="x", image_size="square", sync_mode=True)
        assert result.images[0].url.startswith("data:image/jpeg;base64,")
        assert open_image(await client.download(result.images[0])).size == (512, 512)
    assert paths(emu, "GET", ".jpeg") == []  # nothing fetched over HTTP


async def test_updates_go_queued_running_completed_over_sse() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu:
        async with client_for(emu) as client:
            first = await client.submit(prompt="first", num_inference_steps=10)
            second = await client.submit(prompt="second", num_inference_steps=10)
            updates = [u async for u in second.updates()]
            await first.result()
        assert isinstance(updates[0], Queued)
        assert updates[0].position == 0  # one job ahead of it is running
        running = [u for u in updates if isinstance(u, InProgress)]
        assert running
        assert running[-1].step == (10, 10)
        assert isinstance(updates[-1], Completed)
        assert updates[-1].inference_time is not None
        assert [type(u).__name__ for u in updates] == sorted(
            (type(u).__name__ for u in updates), key=["Queued", "InProgress", "Completed"].index
        )
        assert paths(emu, "GET", f"{second.request_id}/status/stream")
        assert not paths(emu, "GET", f"{second.request_id}/status")  # no polling needed


async def test_broken_stream_falls_back_to_polling(emu: Emulator) -> None:
    emu.inject("stream", drop=True)
    async with client_for(emu) as client:
        handle = await client.submit(prompt="x")
        updates = [u async for u in handle.updates()]
    assert isinstance(updates[-1], Completed)
    assert paths(emu, "GET", f"{handle.request_id}/status")


async def test_polling_only_when_sse_is_off(emu: Emulator) -> None:
    async with client_for(emu, use_sse=False, poll_interval=0.02) as client:
        result = await client.generate(prompt="x")
    assert result.images
    assert not [p for _, p, _ in emu.calls if p.endswith("/stream")]


async def test_wrong_key_is_refused_without_showing_it(emu: Emulator) -> None:
    secret = "wrong-id:wrong-secret-1234567890"
    client = FluxClient(api_key=secret, base_url=emu.url, retry=FAST)
    with pytest.raises(AuthenticationError) as info:
        await client.generate(prompt="x")
    assert str(info.value).startswith("401: the key was refused — set FAL_KEY")
    assert secret not in str(info.value)
    assert secret not in repr(client)
    assert emu.submit_count == 0
    await client.aclose()


async def test_bearer_scheme_as_for_a_proxy(emu: Emulator) -> None:
    async with client_for(emu, auth_scheme="Bearer") as client:
        assert (await client.generate(prompt="x")).images
    bearer = FluxClient(api_key="nope", base_url=emu.url, auth_scheme="Bearer", retry=FAST)
    with pytest.raises(AuthenticationError, match="check the proxy token"):
        await bearer.submit(prompt="x")
    await bearer.aclose()


async def test_invalid_input_raises_before_any_request(emu: Emulator) -> None:
    async with client_for(emu) as client:
        with pytest.raises(InputError) as info:
            await client.generate(prompt="x", num_images=9, image_size="square pro")
    assert {p.field for p in info.value.problems} == {"num_images", "image_size"}
    assert emu.calls == []


async def test_server_side_422_becomes_validation_failed(emu: Emulator) -> None:
    async with httpx.AsyncClient() as raw:
        reply = await raw.post(
            f"{emu.url}/fal-ai/flux-lora",
            json={"prompt": "x", "num_images": 9},
            headers={"Authorization": f"Key {emu.api_key}"},
        )
    request_id = reply.json()["request_id"]
    async with client_for(emu) as client:
        with pytest.raises(ValidationFailedError) as info:
            await client.result(request_id)
    assert info.value.status_code == 422
    assert [p.field for p in info.value.problems] == ["num_images"]


async def test_result_before_completion_is_not_ready(emu: Emulator) -> None:
    async with client_for(emu) as client:
        handle = await client.submit(prompt="x", num_inference_steps=50)
        with pytest.raises(ResultNotReadyError):
            await handle.fetch_result()
        assert (await handle.result()).images


async def test_status_and_result_retried_on_503_and_429(emu: Emulator) -> None:
    emu.inject("status", status=503, times=2)
    emu.inject("result", status=429, retry_after=0.2)
    async with client_for(emu, use_sse=False, poll_interval=0.02) as client:
        handle = await client.submit(prompt="x")
        await handle.wait()
        started = time.monotonic()
        result = await handle.fetch_result()
    assert result.images
    assert time.monotonic() - started >= 0.2  # Retry-After honoured
    assert [s for m, p, s in emu.calls if p.endswith(handle.request_id)] == [429, 200]


async def test_retries_give_up_with_a_typed_error(emu: Emulator) -> None:
    emu.inject("status", status=502, times=10)
    async with client_for(emu, use_sse=False) as client:
        handle = await client.submit(prompt="x")
        with pytest.raises(ServerError, match="502"):
            await handle.status()
    assert len(paths(emu, "GET", "/status")) == FAST.max_attempts


async def test_user_timeout_504_is_final(emu: Emulator) -> None:
    emu.inject("result", status=504, headers={"X-Fal-Request-Timeout-Type": "user"}, times=3)
    async with client_for(emu) as client:
        handle = await client.submit(prompt="x")
        with pytest.raises(RequestTimeoutError):
            await handle.result()
    assert len(paths(emu, "GET", handle.request_id)) == 1


async def test_submit_retried_when_certainly_not_accepted(emu: Emulator) -> None:
    emu.inject("submit", status=429, retry_after=0.05)
    emu.inject("submit", status=503)
    async with client_for(emu) as client:
        result = await client.generate(prompt="x")
    assert result.images
    assert emu.submit_count == 1
    assert [s for m, _, s in emu.calls if m == "POST"] == [429, 503, 200]


async def test_submit_rate_limit_exhausted_raises_rate_limit(emu: Emulator) -> None:
    emu.inject("submit", status=429, retry_after=0.01, times=10)
    async with client_for(emu) as client:
        with pytest.raises(RateLimitError) as info:
            await client.submit(prompt="x")
    assert info.value.retry_after == pytest.approx(0.01)
    assert emu.submit_count == 0


async def test_dropped_reply_after_acceptance_is_never_resubmitted(emu: Emulator) -> None:
    emu.inject("submit", drop=True, after_accept=True)
    async with client_for(emu) as client:
        with pytest.raises(TransportError, match="may have accepted"):
            await client.submit(prompt="x")
    assert emu.submit_count == 1
    # the server logs a dropped call once its handler returns
    posts: list[tuple[str, int]] = []
    for _ in range(100):
        posts = [(m, s) for m, _, s in emu.calls if m == "POST"]
        if posts:
            break
        await asyncio.sleep(0.05)
    assert posts == [("POST", 0)]


async def test_read_timeout_on_submit_is_never_resubmitted(emu: Emulator) -> None:
    emu.inject("submit", delay=1.5, after_accept=True)
    async with client_for(emu, read_timeout=0.3) as client:
        with pytest.raises(TransportError, match="not retried"):
            await client.submit(prompt="x")
    await asyncio.sleep(1.3)  # let the slow reply land server-side
    assert emu.submit_count == 1


async def test_connection_refused_is_retried_then_reported() -> None:
    # bound but not listening: connections are refused, and no other process can take the port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = FluxClient(api_key="k", base_url=f"http://127.0.0.1:{port}", retry=FAST)
        with pytest.raises(TransportError, match="could not connect"):
            await client.submit(prompt="x")
        await client.aclose()


async def test_cancel_in_each_state() -> None:
    with Emulator(workers=1, seconds_per_step=0.02) as emu:
        async with client_for(emu) as client:
            running = await client.submit(prompt="running", num_inference_steps=50)
            queued = await client.submit(prompt="queued")
            assert await queued.cancel() == "CANCELLATION_REQUESTED"
            with pytest.raises(JobCancelledError):
                await queued.result()
            async for update in running.updates():
                if isinstance(update, InProgress):
                    break
            assert await running.cancel() == "CANCELLATION_REQUESTED"
            with pytest.raises(JobCancelledError):
                await running.result()
            done = await client.submit(prompt="done", num_inference_steps=1)
            await done.result()
            assert await done.cancel() == "ALREADY_COMPLETED"
            assert await client.cancel("00000000-0000-0000-0000-000000000000") == "NOT_FOUND"


async def test_generate_timeout_cancels_the_job(emu: Emulator) -> None:
    async with client_for(emu) as client:
        with pytest.raises(GenerationTimeout) as info:
            await client.generate(prompt="x", num_inference_steps=50, num_images=4, timeout=0.2)
    request_id = info.value.request_id
    assert request_id is not None
    assert paths(emu, "PUT", f"{request_id}/cancel")
    job = emu.job(request_id)
    assert job is not None
    assert job.cancel_requested


async def test_expired_result(emu: Emulator) -> None:
    async with client_for(emu) as client:
        handle = await client.submit(prompt="x")
        await handle.wait()
        emu.expire(handle.request_id)
        with pytest.raises(ResultExpiredError, match="expired"):
            await handle.fetch_result()


async def test_proxy_urls_are_rebuilt_on_the_base_url() -> None:
    # A proxy hands back fal's own URLs, which only fal's host can answer.
    upstream = "http://upstream.invalid"
    with Emulator(seconds_per_step=0.005, public_url=upstream) as emu:
        async with client_for(emu) as client:
            handle = await client.submit(prompt="x")
            assert handle.status_url.startswith(emu.url)
            assert (await handle.result()).images
        async with client_for(emu, url_mode="returned", use_sse=False) as client:
            handle = await client.submit(prompt="x")
            expected = f"{upstream}/fal-ai/flux-lora/requests/{handle.request_id}/status"
            assert handle.status_url == expected
            with pytest.raises(UnsafeURLError):  # plain http to a host that is not the base
                await client.download(handle.status_url)


async def test_subpath_only_on_submit(emu: Emulator) -> None:
    endpoint = "fal-ai/flux-lora/image-to-image"
    async with client_for(emu, endpoint=endpoint) as client:
        # the emulator validates with the endpoint's model, as fal does: an image is required
        handle = await client.submit(prompt="x", image_url="https://example.org/a.png")
        assert "image-to-image" not in handle.status_url
        assert (await handle.result()).images
    assert paths(emu, "POST", "/fal-ai/flux-lora/image-to-image")
    assert not [p for _, p, _ in emu.calls if "image-to-image/requests" in p]


async def test_request_id_is_journaled_before_waiting_and_recoverable(
    emu: Emulator, isolated_env: Path
) -> None:
    async with client_for(emu) as client:
        handle = await client.submit(prompt="paid image", seed=3)
        pending = Journal(isolated_env).pending()
        assert [r["request_id"] for r in pending] == [handle.request_id]
        assert pending[0]["input"]["seed"] == 3
        # a new session recovers it by id alone
    async with client_for(emu) as again:
        result = await again.handle(handle.request_id).result()
    assert result.seed == 3
    assert Journal(isolated_env).pending() == []
    completed = Journal(isolated_env).records()[-1]
    assert completed["event"] == "completed"
    assert completed["image_urls"] == [image.url for image in result.images]


async def test_concurrent_jobs_share_the_limit(emu: Emulator) -> None:
    async with client_for(emu, max_concurrency=2, max_streams=1) as client:
        results = await asyncio.gather(
            *(client.generate(prompt="x", guidance_scale=g) for g in (1, 2, 3, 4, 5))
        )
    assert len({r.images[0].url for r in results}) == 5
    assert emu.submit_count == 5


def test_generate_sync_from_a_script(emu: Emulator) -> None:
    client = client_for(emu)
    assert client.generate_sync(prompt="x", seed=1).seed == 1


async def test_generate_sync_inside_a_running_loop(emu: Emulator) -> None:
    client = client_for(emu)
    await client.generate(prompt="warm up")  # an httpx client now lives on this loop
    assert client.generate_sync(prompt="x", seed=2).seed == 2  # thread + own loop
    assert (await client.generate(prompt="again")).images  # this loop's client still works
    await client.aclose()


def test_generate_sync_nest_asyncio_mode_is_opt_in(emu: Emulator) -> None:
    code = (
        "import asyncio, sys\n"
        "from fluxwidget import FluxClient\n"
        "c = FluxClient(api_key=sys.argv[1], base_url=sys.argv[2])\n"
        "async def cell():\n"
        "    return c.generate_sync(prompt='x', seed=5, mode='nest_asyncio').seed\n"
        "print(asyncio.run(cell()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, emu.api_key, emu.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "5", done.stderr


async def test_key_never_in_logs_or_reprs(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emu.inject("status", status=503)
    async with client_for(emu, use_sse=False) as client:
        handle = await client.submit(prompt="x")
        await handle.result()
        texts = [repr(client), repr(handle), repr(client.config), repr(emu)]
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for text in [r.getMessage() for r in caplog.records] + texts:
        assert emu.api_key not in text
        assert emu.api_key.split(":")[1] not in text


def test_key_from_split_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY_ID", "id")
    monkeypatch.setenv("FAL_KEY_SECRET", "secret")
    monkeypatch.setenv("FLUXWIDGET_BASE_URL", "https://proxy.example/")
    monkeypatch.setenv("FLUXWIDGET_AUTH_SCHEME", "bearer")
    client = FluxClient()
    assert client.has_key
    assert client.config.base_url == "https://proxy.example"
    assert client.config.auth_scheme == "Bearer"
    monkeypatch.setenv("FLUXWIDGET_URL_MODE", "sideways")
    with pytest.raises(ValueError, match="FLUXWIDGET_URL_MODE"):
        FluxClient()


def test_error_bodies_that_echo_the_key_are_redacted() -> None:
    from fluxwidget.client.redact import Redactor
    from fluxwidget.client.responses import error_from_response

    secret = "abc:def-secret"
    reply = httpx.Response(401, json={"detail": f"bad key {secret}"})
    error = error_from_response(reply, redactor=Redactor(secret))
    assert secret not in str(error)
    assert "def-secret" not in str(error.detail)
    assert "***" in str(error)
    assert json.dumps({"status": error.status_code}) == '{"status": 401}'


async def test_a_polling_job_moves_to_the_stream_when_a_slot_frees() -> None:
    with Emulator(workers=2, seconds_per_step=0.01) as emu:
        async with client_for(emu, max_streams=1, poll_interval=0.02) as client:
            short = await client.submit(prompt="short", num_inference_steps=3)
            long = await client.submit(prompt="long", num_inference_steps=40)

            async def follow(handle: RequestHandle) -> list[StatusUpdate]:
                return [u async for u in handle.updates()]

            short_updates, long_updates = await asyncio.gather(follow(short), follow(long))
        assert isinstance(short_updates[-1], Completed)
        assert isinstance(long_updates[-1], Completed)
        streams = {p.split("/")[-3] for _, p, _ in emu.calls if p.endswith("/status/stream")}
        assert streams == {short.request_id, long.request_id}  # the long one upgraded
        assert paths(emu, "GET", f"{long.request_id}/status")  # after polling first
