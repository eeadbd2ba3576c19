"""Who gets a status stream, and how often the others poll.

A stream notices a change at once and costs one socket; a poll costs a request each time. So:

- `StreamSlots`: at most ``max_streams`` streams per event loop. A running job always gets one
  when it asks: if every slot is held, the queued job deepest in the queue gives its slot up
  (it goes back to polling); a queued job takes a free slot, or that of a job much deeper in
  the queue than itself.
- `poll_delay`: a running job (or one whose position is unknown) polls every ``poll_interval``,
  backing off to ``max_poll_interval`` while nothing changes; a queued job polls by its queue
  position: every ``poll_interval × (1 + position)``, sooner when the queue has been moving fast
  (`QueuePace`: about when the job may be halfway to the front), and at least every
  ``max_queue_poll_interval``. With 1,000 jobs queued that is a few dozen status
  requests per second, not hundreds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["QueuePace", "StreamSlot", "StreamSlots", "poll_delay"]


class StreamSlot:
    """One held stream: what the job was last seen doing, and whether it must give way."""

    def __init__(self, owner: StreamSlots, *, running: bool, position: int | None) -> None:
        self._owner = owner
        self.running = running
        self.position = position
        self._preempted: asyncio.Future[None] | None = None

    def _key(self) -> float:
        """Higher gives way first: unknown position counts as deepest."""
        return float("inf") if self.position is None else float(self.position)

    def seen(self, *, running: bool, position: int | None = None) -> None:
        """Record the job's latest state (running jobs are never asked to give way)."""
        self.running = running
        self.position = None if running else position

    @property
    def preempted(self) -> asyncio.Future[None]:
        """Done when a job with a better claim took this slot: stop streaming and poll."""
        if self._preempted is None:
            self._preempted = asyncio.get_running_loop().create_future()
        return self._preempted

    def preempt(self) -> None:
        if not self.preempted.done():
            self.preempted.set_result(None)

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        self._owner._held.discard(self)


class StreamSlots:
    """Stream slots of one event loop, handed out by priority (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: set[StreamSlot] = set()

    def __len__(self) -> int:
        return len(self._held)

    def take(self, *, running: bool, position: int | None = None) -> StreamSlot | None:
        """A slot for a job in this state, or None (the job polls and asks again later)."""
        if self.limit <= 0:
            return None
        if len(self._held) >= self.limit:
            victim = self._victim(running, position)
            if victim is None:
                return None
            victim.preempt()
            victim.release()
        slot = StreamSlot(self, running=running, position=position)
        self._held.add(slot)
        return slot

    def _victim(self, running: bool, position: int | None) -> StreamSlot | None:
        queued = [slot for slot in self._held if not slot.running]
        if not queued:
            return None
        deepest = max(queued, key=StreamSlot._key)
        if running:
            return deepest
        if position is None:
            return None
        # a queued job displaces only one much deeper in the queue (no ping-pong)
        return deepest if deepest._key() > 2 * position + 8 else None


class QueuePace:
    """How fast queue positions have been falling (positions per second), from what the jobs of
    one client saw; None until two sightings of one job show it."""

    def __init__(self, window: int = 64) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self._samples: deque[tuple[int, float]] = deque(maxlen=window)

    def observe(self, request_id: str, position: int, now: float | None = None) -> None:
        """A job was seen at `position` (0 = next in line)."""
        now = time.monotonic() if now is None else now
        last = self._last.get(request_id)
        if last is not None and now > last[0] and position <= last[1]:
            self._samples.append((last[1] - position, now - last[0]))
        self._last[request_id] = (now, position)

    def forget(self, request_id: str) -> None:
        """The job left the queue."""
        self._last.pop(request_id, None)

    @property
    def rate(self) -> float | None:
        """Positions per second over the recent sightings (0.0 when the queue stood still)."""
        seconds = sum(dt for _dp, dt in self._samples)
        if seconds <= 0:
            return None
        return sum(dp for dp, _dt in self._samples) / seconds


def poll_delay(
    *,
    position: int | None,
    interval: float,
    poll_interval: float,
    max_queue_poll_interval: float,
    pace: float | None,
) -> float:
    """Seconds until the next status call. `interval` is the running job's current (backed-off)
    interval, used when the job is not queued at a known position."""
    if position is None:
        return interval
    wait = poll_interval * (1 + position)
    if pace is not None and pace > 0:  # a fast queue: about when it may be halfway to the front
        wait = min(wait, 0.5 * position / pace)
    return min(max(wait, poll_interval), max_queue_poll_interval)
