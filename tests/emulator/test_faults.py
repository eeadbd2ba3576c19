"""Fault injection (errors, drops, delays, lost submit replies) and the server's lifecycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from fluxwidget.emulator import Emulator, shared_emulator

APP = "/fal-ai/flux-lora"


def finished(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A completed job's submit reply."""
    body: dict[str, Any] = http.post(APP, json={"num_inference_steps": 1, **fields}).json()
    deadline = time.monotonic() + 5
    while http.get(body["status_url"]).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return body


# --- errors ---------------------------------------------------------------------------------


def test_submit_429_with_retry_after_is_not_accepted(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("submit", status=429, retry_after=0.2)
    before = emu.submit_count
    reply = http.post(APP, json={"prompt": "limited"})
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "0.2"
    assert "detail" in reply.json()
    assert "x-fal-request-id" not in reply.headers
    assert emu.submit_count == before
    assert emu.calls[-1] == ("POST", APP, 429)
    assert http.post(APP, json={"prompt": "retried"}).status_code == 200
    assert emu.submit_count == before + 1


def test_integer_retry_after_and_extra_headers(emu: Emulator, http: httpx.Client) -> None:
    body = finished(http, prompt="headers")
    emu.inject("result", status=504, retry_after=2, headers={"X-Fal-Request-Timeout-Type": "user"})
    reply = http.get(body["response_url"])
    assert reply.status_code == 504
    assert reply.headers["Retry-After"] == "2"
    assert reply.headers["X-Fal-Request-Timeout-Type"] == "user"
    assert http.get(body["response_url"]).status_code == 200


@pytest.mark.parametrize("code", [500, 502, 503])
def test_status_5xx_for_the_next_n_calls(emu: Emulator, http: httpx.Client, code: int) -> None:
    body = finished(http, prompt="5xx")
    emu.inject("status", status=code, times=2)
    codes = [http.get(body["status_url"]).status_code for _ in range(3)]
    assert codes == [code, code, 200]


def test_faults_on_stream_cancel_and_file(emu: Emulator, http: httpx.Client) -> None:
    body = finished(http, prompt="routes")
    url = http.get(body["response_url"]).json()["images"][0]["url"]
    emu.inject("stream", status=429, retry_after=1)
    emu.inject("cancel", status=500)
    emu.inject("file", status=503)
    assert http.get(f"{body['status_url']}/stream").status_code == 429
    assert http.put(body["cancel_url"]).status_code == 500
    assert httpx.get(url).status_code == 503
    assert httpx.get(url).status_code == 200
    assert emu.calls[-2:] == [
        ("GET", url.split(emu.url)[1], 503),
        ("GET", url[len(emu.url) :], 200),
    ]


def test_clear_faults_and_bad_arguments(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("submit", status=500, times=5)
    emu.clear_faults()
    assert http.post(APP, json={"prompt": "clean"}).status_code == 200
    with pytest.raises(ValueError, match="route"):
        emu.inject("nowhere", status=500)
    with pytest.raises(ValueError, match="after_accept"):
        emu.inject("status", status=500, after_accept=True)
    with pytest.raises(ValueError, match="times"):
        emu.inject("status", status=500, times=0)


# --- drops ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["submit", "status", "stream", "result", "cancel", "file"])
def test_drop_closes_the_connection_without_a_response(
    emu: Emulator, http: httpx.Client, route: str
) -> None:
    body = finished(http, prompt="drop")
    url = http.get(body["response_url"]).json()["images"][0]["url"]
    calls = {
        "submit": lambda: http.post(APP, json={"prompt": "dropped"}),
        "status": lambda: http.get(body["status_url"]),
        "stream": lambda: http.get(f"{body['status_url']}/stream"),
        "result": lambda: http.get(body["response_url"]),
        "cancel": lambda: http.put(body["cancel_url"]),
        "file": lambda: http.get(url),
    }
    before = emu.submit_count
    emu.inject(route, drop=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        calls[route]()
    assert emu.calls[-1][2] == 0  # logged as dropped
    assert emu.submit_count == before  # a submit dropped before acceptance is not counted
    assert calls[route]().status_code in {200, 202, 400}  # the next call is served


async def test_drop_with_an_async_client(emu: Emulator) -> None:
    emu.inject("status", drop=True)
    headers = {"Authorization": f"Key {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.url, headers=headers) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.get(f"{APP}/requests/{uuid.uuid4()}/status")
        assert (await http.get(f"{APP}/requests/{uuid.uuid4()}/status")).status_code == 404


# --- delays ---------------------------------------------------------------------------------


def test_delay_slows_the_reply_then_answers_normally(emu: Emulator, http: httpx.Client) -> None:
    body = finished(http, prompt="slow")
    emu.inject("status", delay=0.3)
    started = time.monotonic()
    reply = http.get(body["status_url"])
    assert time.monotonic() - started >= 0.3
    assert reply.status_code == 200
    emu.inject("status", delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        http.get(body["status_url"], timeout=0.1)


def test_delay_then_error(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("submit", delay=0.15, status=503)
    started = time.monotonic()
    assert http.post(APP, json={"prompt": "x"}).status_code == 503
    assert time.monotonic() - started >= 0.15


# --- lost submit replies (the job was accepted and will be paid) ----------------------------


@pytest.mark.parametrize("fault", [{"drop": True}, {"status": 500}, {"delay": 0.5}])
def test_after_accept_faults_count_the_job(
    emu: Emulator, http: httpx.Client, fault: dict[str, Any]
) -> None:
    before = emu.submit_count
    jobs_before = set(emu.jobs)
    emu.inject("submit", after_accept=True, **fault)
    with pytest.raises(httpx.TransportError) if "status" not in fault else _no_error():
        reply = http.post(APP, json={"prompt": "paid", "num_inference_steps": 1}, timeout=0.25)
        assert reply.status_code == 500
        assert "x-fal-request-id" not in reply.headers
    assert emu.submit_count == before + 1
    (new_id,) = set(emu.jobs) - jobs_before
    deadline = time.monotonic() + 5
    while emu.jobs[new_id].state != "COMPLETED":  # the accepted job runs anyway
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert emu.jobs[new_id].result_status == 200


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


# --- lifecycle ------------------------------------------------------------------------------


def test_repr_hides_the_key_and_keys_look_like_fals() -> None:
    emu = Emulator()
    assert emu.api_key.startswith("emulator-")
    assert ":" in emu.api_key
    assert emu.api_key not in repr(emu)
    assert Emulator().api_key != emu.api_key
    assert Emulator(api_key="id:secret").api_key == "id:secret"


def test_stop_is_fast_and_clean_even_with_an_open_stream() -> None:
    threads_before = set(threading.enumerate())
    # a job of 50 × 10 s: were stop() to wait for its stream, the test would time out
    emu = Emulator(seconds_per_step=10).start()
    headers = {"Authorization": f"Key {emu.api_key}"}
    job = {"prompt": "long", "num_inference_steps": 50}
    body = httpx.post(f"{emu.url}{APP}", json=job, headers=headers).json()
    lines: list[str] = []

    def read() -> None:
        try:
            with httpx.stream("GET", f"{body['status_url']}/stream", headers=headers) as reply:
                lines.extend(reply.iter_lines())
        except httpx.TransportError:
            lines.append("<transport error>")

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 30
    while not any(line.startswith("data: ") for line in lines):  # the stream is open
        assert time.monotonic() < deadline
        time.sleep(0.01)
    emu.stop()
    reader.join(30)
    assert not reader.is_alive()
    assert any(line.startswith("data: ") for line in lines)
    assert not emu.running
    assert set(threading.enumerate()) - threads_before == set()
    with pytest.raises(httpx.ConnectError):
        httpx.get(emu.url)


def test_an_emulator_can_be_restarted() -> None:
    emu = Emulator(seconds_per_step=0.001)
    with emu:
        first = emu.url
    with emu:
        reply = httpx.post(
            f"{emu.url}{APP}",
            json={"prompt": "again"},
            headers={"Authorization": f"Key {emu.api_key}"},
        )
    assert reply.status_code == 200
    assert emu.url.startswith("http://127.0.0.1:")
    assert first.startswith("http://127.0.0.1:")


def test_public_url_overrides_the_returned_urls() -> None:
    with Emulator(public_url="https://queue.example.invalid") as emu:
        reply = httpx.post(
            f"{emu.url}{APP}", json={"prompt": "x"}, headers={"Authorization": f"Key {emu.api_key}"}
        )
    assert reply.json()["status_url"].startswith("https://queue.example.invalid/fal-ai/flux-lora/")


def test_shared_emulator_is_one_running_instance() -> None:
    first = shared_emulator()
    assert first is shared_emulator()
    assert first.running
    reply = httpx.get(f"{first.url}{APP}/requests/{uuid.uuid4()}/status")
    assert reply.status_code == 401


def test_serve_prints_url_and_key_then_stops_on_ctrl_c() -> None:
    code = "from fluxwidget.emulator import serve; serve(port=0, seconds_per_step=0.001)"
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background job starts with SIGINT ignored, and children inherit that: restore it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            key = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            auth = {"Authorization": f"Key {key}"}
            reply = httpx.post(f"{url}{APP}", json={"prompt": "cli"}, headers=auth)
            assert reply.status_code == 200
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=5) == 0
            assert proc.stderr is not None
            assert "Traceback" not in proc.stderr.read()
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
