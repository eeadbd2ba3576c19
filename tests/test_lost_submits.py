"""Submits whose reply was lost: fal's request listing (client and emulator), the matching
function, and resume / recover finding the request instead of paying twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxwidget.client.history import (
    RequestSummary,
    canonical_json,
    list_requests,
    payload_sha256,
)
from fluxwidget.emulator import Emulator
from fluxwidget.errors import AuthenticationError, NotFoundError, ProtocolError, ServerError
from fluxwidget.pipeline import JobPipeline
from fluxwidget.schema import FluxLoraInput
from fluxwidget.store.lost import InFlightSubmit, find_lost_submits, match_lost_submits
from fluxwidget.store.runs import Run
from fluxwidget.sweeps import SweepRunner, plan_sweep
from tests.clients import client_for

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
BASE = {"prompt": "a fox", "image_size": "square", "num_inference_steps": 4}


@pytest.fixture
def fast_emu() -> Iterator[Emulator]:
    with Emulator(workers=4, seconds_per_step=0.003, keepalive_interval=0.2) as emulator:
        yield emulator


def _request(rid: str, body: Any, sent: datetime | None) -> RequestSummary:
    item: dict[str, Any] = {"request_id": rid, "json_input": body}
    if sent is not None:
        item["sent_at"] = sent.isoformat().replace("+00:00", "Z")
    return RequestSummary.from_json(item)


# --- the matching function (pure) -------------------------------------------------------------


def test_the_hash_is_of_the_canonical_json() -> None:
    body = {"prompt": "ü", "seed": 2**70, "guidance_scale": 3.5, "loras": []}
    reordered = json.loads(json.dumps(dict(reversed(list(body.items())))))
    assert canonical_json(body) == canonical_json(reordered)
    assert payload_sha256(body) == payload_sha256(reordered)
    assert payload_sha256(body) != payload_sha256({**body, "seed": 2**70 + 1})


def test_an_exact_input_matches_and_another_does_not() -> None:
    body = {"prompt": "a fox", "seed": 1}
    lost = [InFlightSubmit("c1", payload_sha256(body), T0)]
    requests = [
        _request("other", {"prompt": "a fox", "seed": 2}, T0 + timedelta(seconds=1)),
        _request("mine", body, T0 + timedelta(seconds=2)),
    ]
    assert {k: v.request_id for k, v in match_lost_submits(lost, requests).items()} == {
        "c1": "mine"
    }
    assert match_lost_submits(lost, requests[:1]) == {}
    assert match_lost_submits([], requests) == {}


def test_two_identical_inputs_take_one_request_each_in_time_order() -> None:
    body = {"prompt": "same"}
    digest = payload_sha256(body)
    lost = [
        InFlightSubmit("late", digest, T0 + timedelta(seconds=10)),
        InFlightSubmit("early", digest, T0),
    ]
    requests = [
        _request("r2", body, T0 + timedelta(seconds=10.5)),
        _request("r1", body, T0 + timedelta(seconds=0.5)),
    ]
    matched = match_lost_submits(lost, requests)
    assert {k: v.request_id for k, v in matched.items()} == {"early": "r1", "late": "r2"}
    # one request for two jobs: one job gets it, the other none — never both
    (only,) = match_lost_submits(lost, requests[1:]).values()
    assert only.request_id == "r1"
    assert len(match_lost_submits(lost, requests[1:])) == 1
    # a request the run already holds is never matched again
    assert match_lost_submits(lost[1:], requests, claimed={"r1"})["early"].request_id == "r2"


def test_a_request_sent_before_the_window_is_not_the_lost_submit() -> None:
    body = {"prompt": "a fox"}
    lost = [InFlightSubmit("c1", payload_sha256(body), T0)]
    older = _request("yesterday", body, T0 - timedelta(hours=3))
    assert match_lost_submits(lost, [older]) == {}
    skewed = _request("skewed", body, T0 - timedelta(seconds=30))  # fal's clock a bit behind
    assert match_lost_submits(lost, [older, skewed])["c1"].request_id == "skewed"
    assert match_lost_submits(lost, [skewed], skew=timedelta(seconds=5)) == {}


def test_malformed_items_never_match_and_bad_ones_are_refused() -> None:
    body = {"prompt": "a fox"}
    lost = [InFlightSubmit("c1", payload_sha256(body), T0)]
    later = T0 + timedelta(seconds=1)
    odd = [
        _request("no-time", body, None),
        RequestSummary.from_json({"request_id": "bad-time", "json_input": body, "sent_at": 5}),
        _request("no-body", None, later),
        _request("list-body", [body], later),
        _request("string-body", json.dumps(body), later),
        RequestSummary.from_json(
            {"request_id": "junk", "sent_at": "yesterday", "status_code": "200", "json_input": body}
        ),
    ]
    assert match_lost_submits(lost, odd) == {}
    assert odd[-1].status_code is None
    assert odd[-1].sent_at is None
    for item in ([], "x", {"request_id": 5}, {"request_id": "../etc"}, {"json_input": body}):
        with pytest.raises(ProtocolError, match="request listing"):
            RequestSummary.from_json(item)


# --- the listing: client against the emulator ----------------------------------------------


async def test_the_listing_follows_every_page(fast_emu: Emulator) -> None:
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    async with client_for(fast_emu) as client:
        handles = [await client.submit(prompt=f"fox {i}", seed=i) for i in range(5)]
        await handles[0].result()
        listing = await client.list_requests(start=start, limit=2)
        capped = await client.list_requests(start=start, limit=2, max_pages=2)
        one = await client.list_requests(start=start, request_id=handles[3].request_id)
        bare = await client.list_requests(start=start, with_payloads=False)
        future = await client.list_requests(start=start + timedelta(hours=1))
    assert listing.complete
    assert listing.pages == 3
    assert [r.request_id for r in listing.requests] == [h.request_id for h in handles]
    first = listing.requests[0]
    assert first.endpoint_id == "fal-ai/flux-lora"
    assert first.input_sha256 == payload_sha256(handles[0].input.to_payload())  # type: ignore[union-attr]
    assert first.status_code == 200
    assert isinstance(first.json_output, dict)
    assert first.sent_at is not None
    assert first.sent_at >= start
    assert first.ended_at is not None
    assert first.ended_at >= first.sent_at
    assert not capped.complete
    assert len(capped.requests) == 4
    assert [r.request_id for r in one.requests] == [handles[3].request_id]
    assert all(r.json_input is None and r.input_sha256 is None for r in bare.requests)
    assert future.requests == ()


HOSTILE = [
    ({"body": "[]"}, ProtocolError, "not an object"),
    ({"body": "{"}, ProtocolError, "not valid JSON"),
    ({"body": '{"items": "everything"}'}, ProtocolError, "no 'items' list"),
    ({"body": '{"items": [{"request_id": "../../x"}]}'}, ProtocolError, "request_id"),
    ({"body": '{"items": [], "has_more": true}'}, ProtocolError, "no 'next_cursor'"),
    ({"body": '{"items": [], "has_more": "yes", "next_cursor": "a"}'}, ProtocolError, "has_more"),
    ({"body": '{"items": [], "has_more": true, "next_cursor": "a"}', "times": 5}, ProtocolError,
     "came back twice"),
    ({"body": '{"items": [], "next_cursor": 7}'}, ProtocolError, "next_cursor"),
    ({"truncate": 9}, ProtocolError, "not valid JSON"),
    ({"status": 404}, NotFoundError, "404"),
    ({"status": 401}, AuthenticationError, "401"),
    ({"status": 500, "times": 10}, ServerError, "500"),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "error", "match"), HOSTILE)
async def test_hostile_listing_replies_are_typed_errors(
    fast_emu: Emulator, fault: dict[str, Any], error: type[Exception], match: str
) -> None:
    fast_emu.inject("listing", **fault)
    async with client_for(fast_emu) as client:
        with pytest.raises(error, match=match) as info:
            await client.list_requests(start=datetime.now(timezone.utc) - timedelta(minutes=1))
    assert fast_emu.api_key not in str(info.value)


async def test_a_proxy_without_the_listing_is_a_404_and_a_bad_limit_is_refused(
    fast_emu: Emulator,
) -> None:
    start = datetime.now(timezone.utc)
    async with client_for(fast_emu, platform_url=f"{fast_emu.url}/nowhere") as client:
        with pytest.raises(NotFoundError):
            await client.list_requests(start=start)
        with pytest.raises(ValueError, match="limit"):
            await list_requests(client, "fal-ai/flux-lora", start=start, limit=101)
        with pytest.raises(ValueError, match="status"):
            await list_requests(client, "fal-ai/flux-lora", start=start, status="ok")


def test_the_emulator_listing_checks_its_key_and_parameters(fast_emu: Emulator) -> None:
    url = f"{fast_emu.url}/v1/models/requests/by-endpoint"
    key = {"Authorization": f"Key {fast_emu.api_key}"}
    ok = {"endpoint_id": "fal-ai/flux-lora"}
    with httpx.Client(timeout=10) as http:
        assert http.get(url, params=ok).status_code == 401
        assert http.get(url, params=ok, headers={"Authorization": "Key nope"}).status_code == 401
        assert http.get(url, params=ok, headers=key).json() == {
            "items": [],
            "next_cursor": None,
            "has_more": False,
        }
        for bad in ({}, {**ok, "limit": "0"}, {**ok, "limit": "101"}, {**ok, "start": "x"},
                    {**ok, "status": "fine"}, {**ok, "cursor": "-1"}):  # fmt: skip
            assert http.get(url, params=bad, headers=key).status_code == 422, bad
        assert http.post(url, params=ok, headers=key).status_code == 405


# --- resume and recover --------------------------------------------------------------------


def _journal_events(run_path: Path) -> list[dict[str, Any]]:
    lines = (run_path / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


async def test_a_sweep_whose_submit_reply_was_dropped_finds_it_on_resume(
    fast_emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    plan = plan_sweep(BASE, "guidance_scale=2,3", seed=4)
    fast_emu.inject("submit", drop=True, after_accept=True)
    async with client_for(fast_emu) as client:
        first = SweepRunner(client, plan, out=folder, concurrency=1)
        await first.run_all()
    assert fast_emu.submit_count == 2  # the dropped one was accepted all the same
    (lost,) = [r for r in first.records.values() if r.state == "unknown"]
    submitting = [
        e for e in _journal_events(folder)
        if e["event"] == "submitting" and e["job_id"] == lost.job_id
    ]  # fmt: skip
    assert submitting[-1]["payload_sha256"] == payload_sha256(
        FluxLoraInput.model_validate(lost.input).to_payload()
    )
    assert datetime.fromisoformat(submitting[-1]["sent_at"].replace("Z", "+00:00"))
    accepted = {job.request_id for job in fast_emu.jobs.values()}
    async with client_for(fast_emu) as client:
        again = SweepRunner(client, plan, out=folder)
        assert again.records[lost.job_id].state == "unknown"
        await again.run_all()
    assert again.progress().done == 2
    assert fast_emu.submit_count == 2  # collected, not submitted again
    found = again.records[lost.job_id]
    assert found.request_id in accepted
    assert len(found.images) == 1
    assert (folder / found.images[0].file).exists()
    events = _journal_events(folder)
    assert any(
        e["event"] == "submitted" and e.get("found_by") == "request listing"
        and e["request_id"] == found.request_id
        for e in events
    )  # fmt: skip
    assert Run.open(folder).jobs[lost.job_id].state == "done"


async def test_without_the_listing_an_unknown_cell_is_left_alone(
    fast_emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    plan = plan_sweep(BASE, "guidance_scale=2,3", seed=4)
    fast_emu.inject("submit", drop=True, after_accept=True)
    async with client_for(fast_emu) as client:
        await SweepRunner(client, plan, out=folder, concurrency=1).run_all()
    assert fast_emu.submit_count == 2
    proxy = client_for(fast_emu, platform_url=f"{fast_emu.url}/nowhere")
    async with proxy as client:
        again = SweepRunner(client, plan, out=folder, resubmit_unknown=True)
        await again.run_all()  # no exception escapes
    (lost,) = [r for r in again.records.values() if r.state == "unknown"]
    assert fast_emu.submit_count == 2  # not sent again, even with resubmit_unknown
    assert "request listing" in (lost.error or "")
    assert "404" in (lost.error or "")
    assert "left alone" in (lost.error or "")
    assert again.progress().done == 1
    assert again.progress().unknown == 1
    fast_emu.inject("listing", drop=True, times=20)  # the network fails: the same
    async with client_for(fast_emu) as client:
        third = SweepRunner(client, plan, out=folder, resubmit_unknown=True)
        await third.run_all()
    assert third.records[lost.job_id].state == "unknown"
    assert "could not be reached" in (third.records[lost.job_id].error or "")
    assert fast_emu.submit_count == 2


async def test_a_submit_never_accepted_is_sent_again_only_when_asked(
    fast_emu: Emulator, tmp_path: Path
) -> None:
    run = Run.create(tmp_path)
    async with client_for(fast_emu) as client:
        pipeline = JobPipeline(client, run)
        record = pipeline.plan(BASE)
        # the process died before the submit left: journaled, never accepted
        body = FluxLoraInput.model_validate(record.input).to_payload()
        sent = datetime.now(timezone.utc).isoformat()
        await run.log("submitting", record, payload_sha256=payload_sha256(body), sent_at=sent)
        await run.flush()
        run.release()  # as when the process that lost them ended
        reopened = Run.open(run.path)
        check = await find_lost_submits(client, reopened)
    assert check.absent == [record.job_id]
    assert not check.found
    job = reopened.jobs[record.job_id]
    assert job.state == "unknown"
    assert "not accepted" in (job.error or "")
    assert fast_emu.submit_count == 0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fluxwidget", *args]


def test_generate_with_a_dropped_reply_then_recover_collects_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with Emulator(workers=2, seconds_per_step=0.002, keepalive_interval=0.2) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        emu.inject("submit", drop=True, after_accept=True)
        first = subprocess.run(
            _cli("generate", "a tiger eye", "--image-size", "square", "--steps", "4",
                 "--out", str(out), "--quiet", "--base-url", emu.url),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert first.returncode != 0
        assert Run.open(out).records()[0].state == "unknown"
        proxy = subprocess.run(
            _cli("recover", str(out), "--resubmit-unknown", "--base-url", emu.url),
            env={**env, "FLUXWIDGET_PLATFORM_URL": f"{emu.url}/proxy/v1"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proxy.returncode == 1
        assert "no request listing" in proxy.stderr
        done = subprocess.run(
            _cli("recover", str(out), "--base-url", emu.url),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        submits = emu.submit_count
    assert done.returncode == 0, done.stderr
    assert "found" in done.stderr
    (saved,) = [Path(line) for line in done.stdout.split()]
    assert saved.exists()
    assert submits == 1
    assert Run.open(out).records()[0].state == "done"


async def test_identical_cells_lost_together_get_one_request_each(
    fast_emu: Emulator, tmp_path: Path
) -> None:
    run = Run.create(tmp_path)
    async with client_for(fast_emu) as client:
        pipeline = JobPipeline(client, run)
        records = [pipeline.plan({**BASE, "seed": 9}) for _ in range(2)]
        fast_emu.inject("submit", drop=True, after_accept=True, times=2)
        for record in records:
            with pytest.raises(Exception, match="may have"):
                await pipeline.run(record)
            await asyncio.sleep(0.01)
        await run.flush()
        run.release()  # as when the process that lost them ended
        reopened = Run.open(run.path)
        check = await find_lost_submits(client, reopened)
        for job_id in check.found:
            await JobPipeline(client, reopened).collect(reopened.jobs[job_id])
    assert sorted(check.found) == sorted(r.job_id for r in records)
    assert len(set(check.found.values())) == 2
    assert fast_emu.submit_count == 2
    assert all(reopened.jobs[r.job_id].state == "done" for r in records)
