"""The client's shape: transport injection, with_options, the prompt as first argument, input
types, the image URL policy, url_mode="auto" and https, the key never sent with a download."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fluxwidget.client import Completed, FluxClient, Limits, RetryPolicy, Waiting
from fluxwidget.client.journal import Journal
from fluxwidget.client.status import describe
from fluxwidget.client.urls import check_image_url
from fluxwidget.emulator.app import EmulatorApp, build_app
from fluxwidget.emulator.faults import Fault
from fluxwidget.errors import (
    InputError,
    ProtocolError,
    RateLimitError,
    ServerError,
    UnsafeURLError,
)

KEY = "shape-key-id:shape-key-secret-abcdef"
BASE = "http://emulator.test"


@pytest.fixture
async def app() -> AsyncIterator[EmulatorApp]:
    app = build_app(api_key=KEY, seconds_per_step=0.001)
    yield app
    await app.scheduler.close()  # no job task outlives the test's loop


@pytest.fixture
async def client(app: EmulatorApp) -> AsyncIterator[FluxClient]:
    async with FluxClient(
        KEY, base_url=BASE, transport=httpx.ASGITransport(app=app), journal=False
    ) as client:
        yield client


async def test_in_process_over_asgi_with_the_prompt_as_first_argument(
    client: FluxClient, app: EmulatorApp
) -> None:
    result = await client.generate("a tiger eye", seed=7, image_size="square")
    assert result.seed == 7
    data = await client.download(result.images[0])
    assert data[:2] == b"\xff\xd8"
    assert app.submit_count == 1
    job = next(iter(app.scheduler.jobs.values()))
    assert job.payload["prompt"] == "a tiger eye"


@pytest.mark.parametrize("bad", [42, ["a tiger"], b"bytes", {1: "x"}, 3.5])
async def test_wrong_input_types_are_input_errors_before_any_request(
    client: FluxClient, app: EmulatorApp, bad: object
) -> None:
    with pytest.raises(InputError) as info:
        await client.submit(bad)  # type: ignore[arg-type]
    assert info.value.problems[0].field == "input"
    assert "allowed" in str(info.value)
    assert app.calls == []


async def test_with_options_keeps_every_setting_and_changes_the_key(
    app: EmulatorApp, tmp_path: object
) -> None:
    journal = Journal(f"{tmp_path}/j.jsonl")
    retry = RetryPolicy(max_attempts=2)
    limits = Limits(max_redirects=1)
    original = FluxClient(
        "old-key-1:old-secret-1",
        base_url=BASE,
        url_mode="base",
        journal=journal,
        use_sse=False,
        max_concurrency=3,
        retry=retry,
        limits=limits,
        transport=httpx.ASGITransport(app=app),
    )
    copy = original.with_options(api_key=KEY)
    assert copy is not original
    assert copy.config == original.config
    assert copy.journal is journal
    assert copy.use_sse is False
    assert copy.limits is limits
    assert copy.http.retry is retry
    assert (await copy.generate("x", num_inference_steps=1)).images
    keep_key = copy.with_options(poll_interval=0.5)
    assert keep_key.poll_interval == 0.5
    assert keep_key.has_key
    with pytest.raises(TypeError, match="unknown option"):
        copy.with_options(colour="red")
    await original.aclose()
    await copy.aclose()


async def test_auto_url_mode_never_follows_https_to_http(app: EmulatorApp) -> None:
    app.public_url = "http://downgraded.test"  # the submit reply hands back http URLs
    async with FluxClient(
        KEY, base_url="https://queue.test", transport=httpx.ASGITransport(app=app), journal=False
    ) as client:
        handle = await client.submit("x")
    assert handle.status_url.startswith("https://queue.test/")
    assert handle.response_url.startswith("https://queue.test/")


async def test_downloads_never_carry_the_key(client: FluxClient, app: EmulatorApp) -> None:
    seen: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=app)

    class Spy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await inner.handle_async_request(request)

    app.faults.add(Fault("file", redirect="{path}"))
    async with FluxClient(KEY, base_url=BASE, transport=Spy(), journal=False) as spied:
        result = await spied.generate("x", num_inference_steps=1)
        await spied.download(result.images[0])
    downloads = [r for r in seen if "/files/" in r.url.path]
    assert len(downloads) == 2  # the redirect, then the image
    assert all("authorization" not in r.headers for r in downloads)
    assert all("authorization" in r.headers for r in seen if "/files/" not in r.url.path)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://169.254.169.254/",
        "https://[fe80::1]/x.png",
        "https://[::ffff:169.254.169.254]/x.png",
        "https://[::ffff:a9fe:a9fe]/x.png",
        "https://2852039166/x.png",
        "https://0xa9.0xfe.0xa9.0xfe/x.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://METADATA.GOOGLE.INTERNAL./x",
        "https://10.0.0.1/x.png",
        "https://192.168.1.2/x.png",
        "https://[fd00::1]/x.png",
        "http://cdn.example.com/x.png",
        "ftp://cdn.example.com/x.png",
        "file:///etc/passwd",
        "data:text/html;base64,PGh0bWw+",
        "https:///nohost",
    ],
)
def test_the_image_url_policy_refuses(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_image_url(url, base_url="https://queue.fal.run")


@pytest.mark.parametrize(
    ("url", "base", "allow_private"),
    [
        ("https://v3.fal.media/files/x.png", "https://queue.fal.run", False),
        ("data:image/png;base64,AAAA", "https://queue.fal.run", False),
        ("http://127.0.0.1:8765/files/x/0.png", "https://queue.fal.run", False),
        ("http://localhost/x.png", "https://queue.fal.run", False),
        ("http://[::1]/x.png", "https://queue.fal.run", False),
        ("http://proxy.internal/x.png", "http://proxy.internal:8080", False),
        ("http://10.0.0.7/x.png", "http://10.0.0.7", False),
        ("https://10.0.0.8/x.png", "https://queue.fal.run", True),
    ],
)
def test_the_image_url_policy_allows(url: str, base: str, allow_private: bool) -> None:
    assert check_image_url(url, base_url=base, allow_private=allow_private) == url


async def test_private_hosts_can_be_allowed_but_never_link_local() -> None:
    with pytest.raises(UnsafeURLError):
        check_image_url(
            "https://169.254.1.1/x", base_url="https://queue.fal.run", allow_private=True
        )


async def test_an_unreadable_submit_reply_is_journaled_by_its_header_id(
    app: EmulatorApp, tmp_path: object
) -> None:
    journal = Journal(f"{tmp_path}/j.jsonl")
    app.faults.add(Fault("submit", after_accept=True, truncate=12))
    async with FluxClient(
        KEY, base_url=BASE, transport=httpx.ASGITransport(app=app), journal=journal
    ) as client:
        handle = await client.submit("paid")
        assert handle.request_id in app.scheduler.jobs
        assert [r["request_id"] for r in journal.pending()] == [handle.request_id]
        assert (await handle.result()).images
    assert journal.pending() == []


@pytest.mark.parametrize("request_id", ["../../x", "/tmp/x", "a/b", "", ".hidden", "x" * 200])
def test_ids_that_could_escape_a_url_or_a_folder_are_refused(request_id: str) -> None:
    client = FluxClient(KEY, base_url=BASE, journal=False)
    with pytest.raises(InputError, match="request id"):
        client.handle(request_id)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"body": "", "status": 202}, "OK"),
        ({"body": '{"status": "CANCELLATION_REQUESTED"}', "status": 202}, "CANCELLATION_REQUESTED"),
        ({"body": "[1, 2]", "status": 202}, "OK"),
        ({"body": "{not json", "status": 202}, ProtocolError),
        ({"body": '{"status": 5}', "status": 202}, ProtocolError),
        ({"body": "<html>", "status": 500, "content_type": "text/html"}, ServerError),
        ({"body": '{"status": "NOT_FOUND"}', "status": 404}, "NOT_FOUND"),
    ],
)
async def test_cancel_replies_of_every_shape(
    client: FluxClient, app: EmulatorApp, fault: dict[str, Any], outcome: object
) -> None:
    handle = await client.submit("x", num_inference_steps=50)
    app.faults.add(Fault("cancel", **fault))
    if isinstance(outcome, str):
        assert await handle.cancel() == outcome
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            await handle.cancel()
    assert await handle.cancel_quietly() is not None


async def test_a_rate_limited_poll_is_a_visible_wait(app: EmulatorApp) -> None:
    app.faults.add(Fault("status", status=429, retry_after=0.2, times=2))
    async with FluxClient(
        KEY,
        base_url=BASE,
        transport=httpx.ASGITransport(app=app),
        journal=False,
        use_sse=False,
        poll_interval=0.01,
    ) as client:
        handle = await client.submit("x", num_inference_steps=2)
        started = time.monotonic()
        updates = [update async for update in handle.updates()]
    assert time.monotonic() - started >= 0.4
    assert updates[:2] == [Waiting(handle.request_id, 0.2), Waiting(handle.request_id, 0.2)]
    assert describe(updates[0]) == "Waiting 0 s — the server asked to slow down"
    assert isinstance(updates[-1], Completed)


async def test_a_poll_told_to_wait_too_long_ends_with_the_servers_value(app: EmulatorApp) -> None:
    app.faults.add(Fault("status", status=429, retry_after=3600))
    async with FluxClient(
        KEY, base_url=BASE, transport=httpx.ASGITransport(app=app), journal=False, use_sse=False
    ) as client:
        handle = await client.submit("x", num_inference_steps=2)
        with pytest.raises(RateLimitError) as info:
            await handle.wait()
    assert info.value.retry_after == 3600


def test_the_endpoint_comes_from_the_input_model_unless_the_client_names_one() -> None:
    from fluxwidget.client import ClientConfig
    from fluxwidget.schema import ENDPOINT_ID, FluxLoraInput

    class StreamInput(FluxLoraInput):
        endpoint_id = "fal-ai/flux-lora/stream"

    default = ClientConfig.resolve()
    assert default.endpoint_for(FluxLoraInput(prompt="x")) == ENDPOINT_ID
    assert default.endpoint_for(StreamInput(prompt="x")) == "fal-ai/flux-lora/stream"
    assert default.submit_url("fal-ai/flux-lora/stream").endswith("/fal-ai/flux-lora/stream")
    pinned = ClientConfig.resolve(endpoint="owner/proxy-app")
    assert pinned.endpoint_for(StreamInput(prompt="x")) == "owner/proxy-app"
