"""Background tasks of the panel: held by reference, failures reported, never lost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["TaskSet"]

T = TypeVar("T")


class TaskSet:
    """Runs coroutines on the running loop (the kernel's); keeps them until they end.

    A failure nobody else reported goes to `on_error`. Without a running loop (plain
    Python calling `Button.click()`), the coroutine runs on its own loop in a thread.
    """

    def __init__(
        self,
        on_error: Callable[[BaseException], None],
        thread_cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`thread_cleanup` runs on a thread's own loop before it closes (e.g. close clients)."""
        self._on_error = on_error
        self._thread_cleanup = thread_cleanup
        self.tasks: set[asyncio.Task[Any]] = set()
        self.threads: set[threading.Thread] = set()

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> asyncio.Task[T] | None:
        """Start `coro` in the background; the task, or None when it runs in a thread."""
        report = on_error or self._on_error
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._in_thread(coro, report)
            return None
        task = loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, report))
        return task

    def _done(self, task: asyncio.Task[Any], report: Callable[[BaseException], None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            report(exc)

    def _in_thread(
        self, coro: Coroutine[Any, Any, Any], report: Callable[[BaseException], None]
    ) -> None:
        async def run_then_clean_up() -> None:
            try:
                await coro
            finally:
                if self._thread_cleanup is not None:
                    await self._thread_cleanup()

        def main() -> None:
            try:
                asyncio.run(run_then_clean_up())
            except BaseException as exc:  # reported, never lost
                report(exc)
            finally:
                self.threads.discard(thread)

        thread = threading.Thread(target=main, name="fluxwidget-job", daemon=True)
        self.threads.add(thread)
        thread.start()

    async def wait(self) -> None:
        """Wait until every task (including ones started meanwhile) has ended."""
        while self.tasks or self.threads:
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0.01)

    def cancel_all(self) -> None:
        """Cancel every pending task (used when the panel is closed)."""
        for task in list(self.tasks):
            task.cancel()
