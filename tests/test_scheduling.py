"""Who streams and how often the others poll: stream slots by priority, polling by queue
position, a warm connection for the result, the completion record off the critical path."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpcore
import pytest
import uvicorn

from fluxwidget.client import Completed, Limits, RetryPolicy, StatusUpdate
from fluxwidget.client.journal import Journal
from fluxwidget.client.scheduling import QueuePace, StreamSlots, poll_delay
from fluxwidget.emulator import Emulator
from tests.clients import client_for

FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.5)


def stream_paths(emu: Emulator, request_id: str) -> list[str]:
    return [p for _m, p, _c in emu.calls if p.endswith(f"{request_id}/status/stream")]


def status_paths(emu: Emulator, request_id: str) -> list[str]:
    return [p for _m, p, _c in emu.calls if p.endswith(f"{request_id}/status")]


# --- pure parts ------------------------------------------------------------------------------


async def test_a_running_job_takes_the_slot_of_the_deepest_queued_one() -> None:
    slots = StreamSlots(2)
    near = slots.take(running=False, position=1)
    deep = slots.take(running=False, position=40)
    assert near is not None
    assert deep is not None
    assert slots.take(running=False, position=None) is None  # unknown position: no claim
    assert slots.take(running=False, position=30) is None  # not much nearer than 40
    running = slots.take(running=True)
    assert running is not None
    assert deep.preempted.done()
    assert not near.preempted.done()
    assert len(slots) == 2
    near.seen(running=True)
    assert slots.take(running=True) is None  # running jobs are never displaced
    running.release()
    running.release()  # idempotent
    assert len(slots) == 1


async def test_a_queued_job_displaces_one_much_deeper() -> None:
    slots = StreamSlots(1)
    deep = slots.take(running=False, position=100)
    assert deep is not None
    front = slots.take(running=False, position=2)
    assert front is not None
    assert deep.preempted.done()


def test_polling_by_queue_position() -> None:
    def delay(position: int | None, pace: float | None = None, interval: float = 0.25) -> float:
        return poll_delay(
            position=position,
            interval=interval,
            poll_interval=0.25,
            max_queue_poll_interval=30.0,
            pace=pace,
        )

    assert delay(None, interval=0.4) == 0.4  # running: the backed-off interval
    assert delay(0) == 0.25
    assert delay(3) == 1.0
    assert delay(499) == 30.0  # capped
    assert delay(100, pace=10.0) == 5.0  # a fast queue: halfway to the front
    assert delay(3, pace=0.01) == 1.0  # a slow queue never stretches it
    assert delay(0, pace=100.0) == 0.25  # never below poll_interval
    # 1,000 jobs queued: a few dozen status calls per second in all
    assert sum(1 / delay(p) for p in range(32, 1000)) < 50


def test_queue_pace_from_sightings() -> None:
    pace = QueuePace()
    assert pace.rate is None
    pace.observe("a", 10, now=0.0)
    pace.observe("b", 20, now=0.0)
    pace.observe("a", 8, now=1.0)
    pace.observe("b", 16, now=2.0)
    assert pace.rate == pytest.approx(6 / 3)
    pace.forget("a")
    pace.observe("a", 5, now=3.0)  # a fresh start, not a sample
    assert pace.rate == pytest.approx(2.0)


# --- against the emulator ------------------------------------------------------------------


async def test_the_result_reuses_the_stream_connection(emu: Emulator) -> None:
    async with client_for(emu, journal=False) as client:
        await client.generate(prompt="warm up", num_inference_steps=4)
        opened = emu.connections.opened
        calls = len(emu.calls)
        for seed in range(3):
            await client.generate(prompt="x", num_inference_steps=4, seed=seed)
        new_calls = emu.calls[calls:]
        assert emu.connections.opened == opened  # warm: no new connection at all
    routes = sorted(p.rsplit("/", 1)[-1] for _m, p, _c in new_calls)
    assert len(new_calls) == 9  # submit, stream, result per job
    assert routes.count("stream") == 3


def test_idle_connections_expire_before_a_5_s_server_closes_them() -> None:
    # uvicorn (the emulator) and Node close idle connections after 5 s; a submit sent on a
    # connection the server is closing gets no reply and is "maybe accepted" (never retried).
    server_idle_timeout = uvicorn.Config(app=None).timeout_keep_alive
    assert Limits().keepalive_expiry < server_idle_timeout


class PoolClock:
    """`time` as httpcore's HTTP/1.1 connections see it, moved forward by the test instead of
    waiting (the pool's keep-alive expiry reads ``time.monotonic()``)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


async def test_an_idle_connection_is_not_reused_past_its_expiry(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = PoolClock()
    monkeypatch.setattr(httpcore._async.http11, "time", clock)
    async with client_for(emu, journal=False, limits=Limits(keepalive_expiry=1.0)) as client:
        handle = await client.submit(prompt="warm up", num_inference_steps=2)
        await handle.status()
        opened = emu.connections.opened
        await handle.status()  # at once: the pooled connection
        assert emu.connections.opened == opened
        clock.ahead = 1.3  # idle past the expiry: a fresh connection, not a stale one
        await handle.status()
        assert emu.connections.opened == opened + 1
        await handle.result()


async def test_logs_are_asked_for_only_when_someone_reads_the_updates(emu: Emulator) -> None:
    async with client_for(emu, journal=False) as client:
        quiet = await client.submit(prompt="nobody listens", num_inference_steps=4)
        await quiet.result()
        assert quiet.completed is not None
        assert quiet.completed.logs == ()  # fewer, smaller events: no log line per step
        seen: list[StatusUpdate] = []
        listened = await client.submit(prompt="a listener", num_inference_steps=4)
        await listened.result(seen.append)
        assert listened.completed is not None
        assert len(listened.completed.logs) >= 4  # one line per step
        asked = await client.submit(prompt="asked", num_inference_steps=4)
        await asked.result(logs=True)
        assert asked.completed is not None
        assert len(asked.completed.logs) >= 4


async def test_a_running_job_takes_the_stream_from_a_queued_one() -> None:
    with Emulator(workers=1, seconds_per_step=0.01) as emu:
        async with client_for(emu, journal=False, max_streams=1, poll_interval=0.02) as client:
            first = await client.submit(prompt="runs first", num_inference_steps=30)
            second = await client.submit(prompt="queued", num_inference_steps=3)
            seen: dict[str, list[StatusUpdate]] = {first.request_id: [], second.request_id: []}

            async def follow(handle: object, delay: float) -> None:
                await asyncio.sleep(delay)
                async for update in handle.updates():  # type: ignore[attr-defined]
                    seen[update.request_id].append(update)

            # the queued job asks first and gets the only slot; the running one polls, sees
            # it runs, and takes the slot over
            await asyncio.gather(follow(second, 0.0), follow(first, 0.05))
        assert isinstance(seen[first.request_id][-1], Completed)
        assert isinstance(seen[second.request_id][-1], Completed)
        assert stream_paths(emu, first.request_id)  # it got the stream
        assert len(stream_paths(emu, second.request_id)) >= 1
        assert status_paths(emu, second.request_id)  # and the queued one polled meanwhile
        first_stream = next(
            i
            for i, (_m, p, _c) in enumerate(emu.calls)
            if p.endswith("/status/stream") and first.request_id in p
        )
        first_poll = next(
            i
            for i, (_m, p, _c) in enumerate(emu.calls)
            if p.endswith("/status") and first.request_id in p
        )
        assert first_poll < first_stream  # polled while the slot was held, then streamed


async def test_completion_is_journaled_without_waiting_for_the_disk(
    emu: Emulator, isolated_env: Path
) -> None:
    client = client_for(emu)
    handle = await client.submit(prompt="paid image", seed=3)
    assert [r["request_id"] for r in Journal(isolated_env).pending()] == [handle.request_id]
    await handle.result()
    # reading the journal waits for the background writer: no longer pending
    assert Journal(isolated_env).pending() == []
    assert Journal(isolated_env).records()[-1]["event"] == "completed"
    await client.aclose()
    assert not Journal.has_unwritten()


async def test_a_stream_ended_with_connection_close_leaves_the_result_to_the_warm_call() -> None:
    """A server may end the status stream with ``Connection: close``: the result then goes on
    the submit's warm connection, not on a new one in the streams' pool."""
    with Emulator(seconds_per_step=0.004, stream_connection_close=True) as emu:
        for _ in range(200):  # the emulator's own check that it listens is counted soon
            if emu.connections.opened:
                break
            await asyncio.sleep(0.01)
        before = emu.connections.opened
        async with client_for(emu, journal=False) as client:
            await client.generate(prompt="one job", num_inference_steps=4)
            assert emu.connections.opened == before + 2  # the submit's (result too), the stream's
            opened = emu.connections.opened
            for seed in range(3):
                await client.generate(prompt="x", num_inference_steps=4, seed=seed)
            assert emu.connections.opened == opened + 3  # one per stream, none for a result
        streams = [p for _m, p, _c in emu.calls if p.endswith("/status/stream")]
        assert len(streams) == 4  # every job streamed (no fallback to polling)
