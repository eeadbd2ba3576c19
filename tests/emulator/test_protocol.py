"""The emulator speaks fal's queue protocol: every call and status code, over a real socket."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from fluxwidget.emulator import Emulator

APP = "/fal-ai/flux-lora"


def client_for(emu: Emulator) -> httpx.Client:
    """A client with the key of another emulator than the module's."""
    headers = {"Authorization": f"Key {emu.api_key}"}
    return httpx.Client(base_url=emu.url, headers=headers, timeout=10)


def submit(http: httpx.Client, body: dict[str, Any], path: str = APP, **kw: Any) -> dict[str, Any]:
    reply = http.post(path, json=body, **kw)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def wait_done(http: httpx.Client, status_url: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = http.get(status_url, params={"logs": 1})
        if reply.status_code == 200:
            data: dict[str, Any] = reply.json()
            return data
        assert reply.status_code == 202, reply.text
        assert time.monotonic() < deadline, "job did not complete in time"
        time.sleep(0.01)


def wait_state(http: httpx.Client, status_url: str, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while http.get(status_url).json()["status"] != state:
        assert time.monotonic() < deadline, f"job never reached {state}"
        time.sleep(0.005)


# --- submit ---------------------------------------------------------------------------------


def test_submit_reply_has_fals_exact_shape(emu: Emulator, http: httpx.Client) -> None:
    reply = http.post(APP, json={"prompt": "a fox"})
    body = reply.json()
    rid = body["request_id"]
    assert reply.status_code == 200
    assert uuid.UUID(rid).version == 4
    assert reply.headers["x-fal-request-id"] == rid
    root = f"{emu.url}{APP}/requests/{rid}"
    assert body == {
        "status": "IN_QUEUE",
        "request_id": rid,
        "queue_position": body["queue_position"],
        "response_url": root,
        "status_url": f"{root}/status",
        "cancel_url": f"{root}/cancel",
        "logs": None,
        "metrics": {},
    }
    assert isinstance(body["queue_position"], int)


def test_subpath_is_accepted_on_submit_but_not_in_returned_urls(
    emu: Emulator, http: httpx.Client
) -> None:
    body = submit(
        http,
        {"prompt": "a fox"},
        path=f"{APP}/image-to-image",
        params={"fal_webhook": "https://example.invalid/hook"},
    )
    for key in ("response_url", "status_url", "cancel_url"):
        assert "image-to-image" not in body[key]
        assert body[key].startswith(f"{emu.url}{APP}/requests/")
    info = emu.job(body["request_id"])
    assert info is not None
    assert info.subpath == "image-to-image"
    assert wait_done(http, body["status_url"])["status"] == "COMPLETED"


def test_submit_counts_accepted_jobs_and_keeps_the_input(emu: Emulator, http: httpx.Client) -> None:
    before = emu.submit_count
    body = submit(http, {"prompt": "count me", "seed": 5})
    assert emu.submit_count == before + 1
    info = emu.jobs[body["request_id"]]
    assert info.input == {"prompt": "count me", "seed": 5}
    assert info.valid
    assert emu.calls[-1] == ("POST", APP, 200) or ("POST", APP, 200) in emu.calls


# --- auth and routing -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Key", "Bearer", "key", "bearer"])
def test_key_and_bearer_are_accepted(emu: Emulator, scheme: str) -> None:
    reply = httpx.post(
        f"{emu.url}{APP}",
        json={"prompt": "auth"},
        headers={"Authorization": f"{scheme} {emu.api_key}"},
    )
    assert reply.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Key wrong:key"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
    ],
    ids=["missing", "wrong", "empty", "basic"],
)
def test_missing_or_wrong_key_is_401(emu: Emulator, headers: dict[str, str]) -> None:
    before = emu.submit_count
    reply = httpx.post(f"{emu.url}{APP}", json={"prompt": "x"}, headers=headers)
    assert reply.status_code == 401
    assert reply.json() == {"detail": "No user found for Key ID and Secret"}
    status = httpx.get(f"{emu.url}{APP}/requests/{uuid.uuid4()}/status", headers=headers)
    assert status.status_code == 401
    assert emu.submit_count == before


def test_other_apps_are_404_with_a_detail(http: httpx.Client) -> None:
    reply = http.post("/fal-ai/flux-pro", json={"prompt": "x"})
    assert reply.status_code == 404
    assert "fal-ai/flux-pro" in reply.json()["detail"]
    status = http.get(f"/fal-ai/flux-pro/requests/{uuid.uuid4()}/status")
    assert status.status_code == 404
    assert http.get("/").status_code == 404


def test_wrong_method_is_405(http: httpx.Client) -> None:
    assert http.get(f"{APP}/requests/{uuid.uuid4()}/cancel").status_code == 405


def test_unknown_request_id_is_404_everywhere(http: httpx.Client) -> None:
    rid = uuid.uuid4()
    assert http.get(f"{APP}/requests/{rid}/status").status_code == 404
    assert http.get(f"{APP}/requests/{rid}/status/stream").status_code == 404
    assert http.get(f"{APP}/requests/{rid}").status_code == 404
    cancel = http.put(f"{APP}/requests/{rid}/cancel")
    assert cancel.status_code == 404
    assert cancel.json() == {"status": "NOT_FOUND"}


# --- status ---------------------------------------------------------------------------------


def test_status_goes_202_in_progress_with_logs_then_200_completed(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "logs", "num_inference_steps": 40, "loras": [{"path": "a/b"}]})
    url = body["status_url"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while True:
        reply = http.get(url, params={"logs": "1"})
        data = reply.json()
        assert reply.status_code == (200 if data["status"] == "COMPLETED" else 202)
        for key in ("status", "request_id", "response_url", "status_url", "cancel_url"):
            assert key in data
        seen.append(data)
        if data["status"] == "COMPLETED":
            break
        assert time.monotonic() < deadline
        time.sleep(0.003)
    running = [s for s in seen if s["status"] == "IN_PROGRESS"]
    assert running, "never saw IN_PROGRESS"
    assert all(isinstance(s["logs"], list) for s in running)
    final = seen[-1]
    messages = [entry["message"] for entry in final["logs"]]
    assert messages[0] == "Emulator: loading LoRA a/b (scale 1)"
    assert messages[-1] == "step 40/40"
    assert "step 12/40" in messages
    entry = final["logs"][-1]
    assert entry["level"] == "INFO"
    assert entry["source"] == "USER"
    assert entry["timestamp"].endswith("Z")
    assert isinstance(final["metrics"]["inference_time"], float)
    assert "error" not in final


@pytest.mark.parametrize(
    ("flag", "on"), [("1", True), ("true", True), ("0", False), ("false", False)]
)
def test_logs_flag(http: httpx.Client, flag: str, on: bool) -> None:
    body = submit(http, {"prompt": "flag", "num_inference_steps": 2})
    wait_done(http, body["status_url"])
    data = http.get(body["status_url"], params={"logs": flag}).json()
    assert (data["logs"] is not None) is on
    if on:
        assert data["logs"][-1]["message"] == "step 2/2"


def test_queue_positions_move_honestly_with_one_worker() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu, client_for(emu) as http:
        steps = [30, 30, 1, 1]  # the first two run long enough to look at the queue
        jobs = [
            submit(http, {"prompt": f"job {i}", "num_inference_steps": n})
            for i, n in enumerate(steps)
        ]
        assert [j["queue_position"] for j in jobs] == [0, 0, 1, 2]
        states = [http.get(j["status_url"]).json() for j in jobs]
        assert states[0]["status"] == "IN_PROGRESS"
        assert [s.get("queue_position") for s in states[1:]] == [0, 1, 2]
        assert all(s["status"] == "IN_QUEUE" for s in states[1:])
        assert http.get(jobs[1]["status_url"]).status_code == 202
        wait_done(http, jobs[0]["status_url"])
        states = [http.get(j["status_url"]).json() for j in jobs[1:]]
        assert states[0]["status"] == "IN_PROGRESS"
        assert [s.get("queue_position") for s in states[1:]] == [0, 1]
        assert emu.job(jobs[3]["request_id"]).queue_position == 1  # type: ignore[union-attr]
        wait_done(http, jobs[3]["status_url"])


# --- result ---------------------------------------------------------------------------------


def test_result_before_completion_is_400(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "slow", "num_inference_steps": 50, "num_images": 4})
    reply = http.get(body["response_url"])
    assert reply.status_code == 400
    assert reply.json() == {"detail": "Request is still in progress"}
    http.put(body["cancel_url"])


def test_result_has_fals_output_shape(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "shape", "seed": 42, "num_images": 2, "num_inference_steps": 3})
    wait_done(http, body["status_url"])
    reply = http.get(body["response_url"])
    out = reply.json()
    assert reply.status_code == 200
    assert reply.headers["x-fal-request-id"] == body["request_id"]
    assert out["seed"] == 42
    assert out["prompt"] == "shape"
    assert out["has_nsfw_concepts"] == [False, False]
    assert out["emulator"] is True
    assert isinstance(out["timings"]["inference"], float)
    assert len(out["images"]) == 2
    for image in out["images"]:
        assert set(image) == {"url", "width", "height", "content_type", "file_name", "file_size"}
        assert (image["width"], image["height"]) == (1024, 768)
        assert image["content_type"] == "image/jpeg"
        assert image["file_name"].endswith(".jpeg")


def test_invalid_input_is_accepted_then_completes_with_422(
    emu: Emulator, http: httpx.Client
) -> None:
    before = emu.submit_count
    body = submit(http, {"prompt": "x", "num_images": 9, "image_size": "portrait_3_4"})
    assert emu.submit_count == before + 1
    status = wait_done(http, body["status_url"])
    assert status["status"] == "COMPLETED"
    assert status["error_type"] == "validation_error"
    assert "num_images" in status["error"]
    reply = http.get(body["response_url"])
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    locs = [tuple(item["loc"]) for item in detail]
    assert ("body", "num_images") in locs
    assert any(loc[:2] == ("body", "image_size") for loc in locs)
    num = next(item for item in detail if item["loc"] == ["body", "num_images"])
    assert num["type"] == "less_than_equal"
    assert num["ctx"] == {"le": 4}
    assert isinstance(num["msg"], str)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_unusable_body_completes_with_422(http: httpx.Client, raw: bytes) -> None:
    reply = http.post(APP, content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    body = reply.json()
    wait_done(http, body["status_url"])
    result = http.get(body["response_url"])
    assert result.status_code == 422
    assert result.json()["detail"][0]["loc"][0] == "body"


def test_expire_hook_makes_the_result_404(emu: Emulator, http: httpx.Client) -> None:
    body = submit(http, {"prompt": "old", "num_inference_steps": 1})
    wait_done(http, body["status_url"])
    assert http.get(body["response_url"]).status_code == 200
    emu.expire(body["request_id"])
    reply = http.get(body["response_url"])
    assert reply.status_code == 404
    assert "expired" in reply.json()["detail"]
    with pytest.raises(KeyError):
        emu.expire("no-such-request")


def test_result_ttl_expires_results() -> None:
    with Emulator(seconds_per_step=0.001, result_ttl=0.1) as emu, client_for(emu) as http:
        body = submit(http, {"prompt": "ttl", "num_inference_steps": 1})
        wait_done(http, body["status_url"])
        time.sleep(0.15)
        reply = http.get(body["response_url"])
    assert reply.status_code == 404
    assert reply.json() == {"detail": "Request result has expired"}


def test_start_timeout_completes_with_504_user() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu, client_for(emu) as http:
        blocker = submit(http, {"prompt": "blocker", "num_inference_steps": 30})
        late = submit(http, {"prompt": "late"}, headers={"X-Fal-Request-Timeout": "0.1"})
        status = wait_done(http, late["status_url"], timeout=2)
        assert status["error_type"] == "request_timeout"
        reply = http.get(late["response_url"])
        assert reply.status_code == 504
        assert reply.headers["X-Fal-Request-Timeout-Type"] == "user"
        assert emu.job(late["request_id"]).logs == ()  # type: ignore[union-attr]
        # a job that starts in time is not affected by its timeout
        http.put(blocker["cancel_url"])
        quick = submit(
            http,
            {"prompt": "ok", "num_inference_steps": 2},
            headers={"X-Fal-Request-Timeout": "0.5"},
        )
        wait_done(http, quick["status_url"])
        assert http.get(quick["response_url"]).status_code == 200
        bad = http.post(APP, json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": "soon"})
        assert bad.status_code == 400


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_queued_job_removes_it() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu, client_for(emu) as http:
        running = submit(http, {"prompt": "runs", "num_inference_steps": 30})
        queued = submit(http, {"prompt": "queued"})
        behind = submit(http, {"prompt": "behind", "num_inference_steps": 1})
        assert http.get(behind["status_url"]).json()["queue_position"] == 1
        reply = http.put(queued["cancel_url"])
        assert reply.status_code == 202
        assert reply.json() == {"status": "CANCELLATION_REQUESTED"}
        assert http.get(behind["status_url"]).json()["queue_position"] == 0
        status = http.get(queued["status_url"], params={"logs": 1})
        assert status.status_code == 200
        assert status.json()["error"] == "Request was cancelled"
        assert status.json()["logs"] == []
        result = http.get(queued["response_url"])
        assert result.status_code == 400
        assert result.json() == {"detail": "Request was cancelled"}
        assert http.put(queued["cancel_url"]).json() == {"status": "ALREADY_COMPLETED"}
        http.put(running["cancel_url"])
        wait_done(http, behind["status_url"])


def test_cancel_a_running_job_stops_it_at_its_next_step(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "long", "num_inference_steps": 50, "num_images": 4})
    wait_state(http, body["status_url"], "IN_PROGRESS")
    reply = http.put(body["cancel_url"])
    assert reply.status_code == 202
    assert reply.json() == {"status": "CANCELLATION_REQUESTED"}
    status = wait_done(http, body["status_url"], timeout=2)
    assert status["error"] == "Request was cancelled"
    assert status["error_type"] == "request_cancelled"
    assert "step 50/50" not in [entry["message"] for entry in status["logs"]]
    assert http.get(body["response_url"]).status_code == 400


def test_cancel_a_finished_job_is_400_already_completed(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "done", "num_inference_steps": 1})
    wait_done(http, body["status_url"])
    reply = http.put(body["cancel_url"])
    assert reply.status_code == 400
    assert reply.json() == {"status": "ALREADY_COMPLETED"}
    assert http.get(body["response_url"]).status_code == 200


# --- status stream (SSE) --------------------------------------------------------------------


def read_stream(http: httpx.Client, url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """The events and the number of keep-alive comments, read until the server closes."""
    events: list[dict[str, Any]] = []
    keepalives = 0
    with http.stream("GET", url, params=params) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
            elif line.startswith(":"):
                keepalives += 1
            else:
                assert line == "", f"unexpected line {line!r}"
    return events, keepalives


def test_stream_sends_each_change_in_order_and_closes_after_completed() -> None:
    with Emulator(workers=1, seconds_per_step=0.005) as emu, client_for(emu) as http:
        first = submit(http, {"prompt": "first", "num_inference_steps": 10})
        second = submit(http, {"prompt": "second", "num_inference_steps": 5})
        events, _ = read_stream(http, f"{second['status_url']}/stream", logs=1)
        del first
    order = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
    ranks = [order[e["status"]] for e in events]
    assert ranks == sorted(ranks)
    assert events[0]["status"] == "IN_QUEUE"
    assert events[0]["queue_position"] == 0
    assert events[-1]["status"] == "COMPLETED"
    assert [e["status"] for e in events].count("COMPLETED") == 1
    progress = [len(e["logs"]) for e in events if e["status"] == "IN_PROGRESS"]
    assert len(progress) >= 3, "one event per new log line"
    assert progress == sorted(progress)
    assert events[-1]["logs"][-1]["message"] == "step 5/5"
    assert all(e["request_id"] == second["request_id"] for e in events)


def test_stream_queue_position_moves() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu, client_for(emu) as http:
        for i in range(2):
            submit(http, {"prompt": f"ahead {i}", "num_inference_steps": 15})
        last = submit(http, {"prompt": "last", "num_inference_steps": 1})
        events, _ = read_stream(http, f"{last['status_url']}/stream")
    positions = [e["queue_position"] for e in events if e["status"] == "IN_QUEUE"]
    assert positions == [1, 0]
    assert events[-1]["status"] == "COMPLETED"


def test_stream_sends_keepalive_comments() -> None:
    with (
        Emulator(workers=1, seconds_per_step=0.01, keepalive_interval=0.05) as emu,
        client_for(emu) as http,
    ):
        body = submit(http, {"prompt": "quiet", "num_inference_steps": 25})
        events, keepalives = read_stream(http, f"{body['status_url']}/stream")
    assert keepalives >= 2
    assert [e["status"] for e in events][-1] == "COMPLETED"
    assert events[-1]["logs"] is None  # logs are off unless asked for


def test_stream_of_a_finished_job_is_one_event(http: httpx.Client) -> None:
    body = submit(http, {"prompt": "finished", "num_inference_steps": 1})
    wait_done(http, body["status_url"])
    events, _ = read_stream(http, f"{body['status_url']}/stream")
    assert [e["status"] for e in events] == ["COMPLETED"]


# --- concurrency (async client) -------------------------------------------------------------


async def test_many_concurrent_submits_all_complete(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.url, headers=headers, timeout=10) as http:
        before = emu.submit_count
        replies = await asyncio.gather(
            *(http.post(APP, json={"prompt": f"c{i}", "num_inference_steps": 2}) for i in range(8))
        )
        assert emu.submit_count == before + 8
        ids = {r.json()["request_id"] for r in replies}
        assert len(ids) == 8

        async def done(reply: httpx.Response) -> int:
            url = reply.json()["status_url"]
            for _ in range(500):
                if (await http.get(url)).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            return (await http.get(reply.json()["response_url"])).status_code

        assert await asyncio.gather(*(done(r) for r in replies)) == [200] * 8
