"""One concurrency limit shared by threads and by tasks on any event loop.

``threading.Semaphore`` blocks an event loop; ``asyncio.Semaphore`` binds to
the first loop that waits on it and knows nothing of threads. :class:`Slots`
is one counter with a FIFO of waiters: a thread waits on a
``threading.Event``, a task on a future of its own loop, and a released slot
is handed straight to the next waiter (woken thread-safely on its loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

__all__ = ["Slots"]


class _Waiter:
    __slots__ = ("event", "future", "gone", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.event = None if loop else threading.Event()
        self.granted = False
        self.gone = False

    def grant(self) -> bool:
        """Hand this waiter the slot; ``False`` when its event loop is gone."""
        if self.event is not None:
            self.granted = True
            self.event.set()
            return True
        assert self.loop is not None and self.future is not None
        future = self.future

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        try:
            self.loop.call_soon_threadsafe(wake)
        except RuntimeError:  # the loop was closed while its task waited
            return False
        self.granted = True
        return True


class Slots:
    """At most *limit* holders at once, sync or async, FIFO.

    Example:
        >>> slots = Slots(2)
        >>> with slots:             # a thread
        ...     ...
        >>> async with slots:       # a task, on any event loop
        ...     ...
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self._used

    def _try(self) -> bool:
        if self._used < self.limit and not self._waiters:
            self._used += 1
            return True
        return False

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot, waiting up to *timeout* seconds; ``False`` when none came."""
        with self._lock:
            if self._try():
                return True
            waiter = _Waiter()
            self._waiters.append(waiter)
        assert waiter.event is not None
        if waiter.event.wait(timeout):
            return True
        with self._lock:
            if waiter.granted:  # granted just as the wait ran out
                return True
            waiter.gone = True
        return False

    async def aacquire(self) -> None:
        """Take a slot without blocking the event loop."""
        with self._lock:
            if self._try():
                return
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
        assert waiter.future is not None
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                waiter.gone = True
                granted = waiter.granted
            if granted:  # handed a slot while being cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back, handing it to the next waiter still waiting."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.gone and waiter.grant():
                    return  # the slot moves to it; _used stays
            self._used -= 1

    def __enter__(self) -> Slots:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    async def __aenter__(self) -> Slots:
        await self.aacquire()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.release()
