"""The emulated link: round trips per request, extra round trips per new connection, counters,
and replies that are sent whole."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from fluxwidget.emulator import Emulator


def test_each_request_waits_a_round_trip_and_a_new_connection_more() -> None:
    with Emulator(seconds_per_step=0.002) as emu:
        emu.set_link(rtt=0.05, connect_rtts=2)
        headers = {"Authorization": f"Key {emu.api_key}"}
        with httpx.Client(headers=headers) as http:
            start = time.monotonic()
            submit = http.post(f"{emu.url}/fal-ai/flux-lora", json={"prompt": "x"})
            cold = time.monotonic() - start
            start = time.monotonic()
            status = http.get(submit.json()["status_url"])
            warm = time.monotonic() - start
        assert status.status_code in (200, 202)
        assert cold >= 3 * 0.05  # the request's round trip and two for the new connection
        assert warm >= 0.05
        opened = emu.connections.opened
        with httpx.Client(headers=headers) as http:
            http.get(submit.json()["status_url"])
            http.get(submit.json()["status_url"])
            assert emu.connections.opened == opened + 1  # one per client, kept alive
        emu.set_link()  # back to loopback
        with pytest.raises(ValueError, match=">= 0"):
            emu.set_link(rtt=-1)


def test_a_reply_leaves_in_one_write() -> None:
    with Emulator(seconds_per_step=0.002) as emu:
        emu.set_link(rtt=0.02)
        with socket.create_connection((emu.host, emu.port)) as sock:
            sock.sendall(
                b"GET /fal-ai/flux-lora/requests/nope/status HTTP/1.1\r\n"
                b"Host: x\r\nAuthorization: Key " + emu.api_key.encode() + b"\r\n\r\n"
            )
            sock.settimeout(5)
            first = sock.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")
        assert b"Request not found" in body  # headers and body arrived together


async def test_run_jitter_spreads_completions() -> None:
    with Emulator(workers=4, seconds_per_step=0.001, run_jitter=0.05) as emu:
        async with httpx.AsyncClient(headers={"Authorization": f"Key {emu.api_key}"}) as http:
            ids = []
            for _ in range(4):
                reply = await http.post(
                    f"{emu.url}/fal-ai/flux-lora", json={"prompt": "x", "num_inference_steps": 1}
                )
                ids.append(reply.json()["request_id"])
            for _ in range(200):
                if all(emu.job(i).state == "COMPLETED" for i in ids):  # type: ignore[union-attr]
                    break
                await asyncio.sleep(0.01)
        runs = []
        for request_id in ids:
            job = emu.job(request_id)
            assert job is not None
            assert job.started_at is not None
            assert job.completed_at is not None
            runs.append(job.completed_at - job.started_at)
        assert len({round(r, 4) for r in runs}) > 1  # not all the same length
