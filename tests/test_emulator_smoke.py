"""The emulator answers submit, status and result over a real loopback socket."""

from __future__ import annotations

import time

import httpx

from fluxwidget.emulator import Emulator


def test_submit_status_result_roundtrip() -> None:
    with Emulator(seconds_per_step=0.001) as emu:
        headers = {"Authorization": f"Key {emu.api_key}"}
        with httpx.Client(headers=headers, timeout=5) as http:
            submitted = http.post(f"{emu.url}/fal-ai/flux-lora", json={"prompt": "a fox"}).json()
            assert submitted["status"] == "IN_QUEUE"
            deadline = time.monotonic() + 5
            while http.get(submitted["status_url"]).status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            result = http.get(submitted["response_url"])
    assert result.status_code == 200
    assert result.json()["images"][0]["width"] == 1024
    assert result.json()["emulator"] is True
