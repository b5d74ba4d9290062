"""Hedging (``Policy.hedge_after``): start the next candidate, or another replica of a
pool, whenever ``hedge_after`` passes without an answer; the first answer wins and
the others are abandoned.

Sync hedged calls run their lanes on one thread pool shared by every call
(:func:`hedge_pool`; starting threads per call is slow); async ones, as tasks.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ._drivers import adrive, drive
from ._errors import MMSDKError
from ._registry import Resolved
from ._replicas import lane, lane_ready
from ._run import Run
from ._steps import SKIPPED, Candidates, Steps

__all__ = ["ahedged", "hedge_pool", "hedged", "hedges"]


@dataclass
class _Lane:
    """A queued hedge to another replica of *resolved*'s pool (hedged calls only)."""

    resolved: Resolved


_Queue = list[Resolved | MMSDKError | _Lane]
_GO_ON = object()  # a lane ended without settling the call: wait for the others


def _pooled(candidate: Resolved | MMSDKError) -> bool:
    return not isinstance(candidate, MMSDKError) and bool(candidate.replicas)


def hedges(candidates: Candidates) -> bool:
    """Whether a call may hedge: several candidates, or a replica pool."""
    return len(candidates) > 1 or (len(candidates) == 1 and _pooled(candidates[0]))


def _next_steps(run: Run, queue: _Queue) -> Steps | None:
    """Steps for what the next hedge starts: another replica of the pool just started,
    while it has a healthy one free, else the next candidate; ``None``: nothing left."""
    while queue:
        item = queue.pop(0)
        if isinstance(item, _Lane):
            ready = lane_ready(run, item.resolved)
            if ready is not False:
                queue.insert(0, item)  # its further replicas come before the next provider
            if ready is None:
                return None  # still binding: ask again after hedge_after
            if ready:
                return lane(run, item.resolved)
            continue
        if _pooled(item):
            assert not isinstance(item, MMSDKError)
            queue.insert(0, _Lane(item))
        return run.candidate(item)
    return None


def _landed(run: Run, error: BaseException | None, result: Any) -> Any:
    """What a lane that ended means for the call: its answer (the others are
    abandoned), an error raised (one not to fall back on), or ``_GO_ON``."""
    if error is None:
        if result is SKIPPED:
            return _GO_ON
        run.abandon()
        return run.finished(result)
    assert isinstance(error, MMSDKError)
    run.errors.append(error)
    if not run.falls_back(error):
        run.abandon()
        raise run.attach(error)
    return _GO_ON


def hedged(run: Run) -> Any:
    """Run *run*'s candidates hedged, on the shared threads (sync)."""
    assert run.policy.hedge_after is not None
    pool = hedge_pool()
    pending: set[Future[Any]] = set()
    queue: _Queue = list(run.candidates)
    try:
        while queue or pending:
            steps = _next_steps(run, queue)
            if steps is not None:
                pending.add(pool.submit(drive, steps, run))
            if not pending:
                continue
            timeout = run.policy.hedge_after if queue else None
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                error = future.exception()
                landed = _landed(run, error, None if error is not None else future.result())
                if landed is not _GO_ON:
                    return landed
        raise run.give_up()
    finally:
        for future in pending:
            future.cancel()  # not started yet: never will be


async def ahedged(run: Run) -> Any:
    """Run *run*'s candidates hedged, as tasks (async)."""
    assert run.policy.hedge_after is not None
    pending: set[asyncio.Task[Any]] = set()
    queue: _Queue = list(run.candidates)
    try:
        while queue or pending:
            steps = _next_steps(run, queue)
            if steps is not None:
                pending.add(asyncio.ensure_future(adrive(steps, run)))
            if not pending:
                continue
            timeout = run.policy.hedge_after if queue else None
            done, _ = await asyncio.wait(pending, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                error = task.exception()
                landed = _landed(run, error, None if error is not None else task.result())
                if landed is not _GO_ON:
                    return landed
        raise run.give_up()
    finally:
        for task in pending:
            task.cancel()


_hedge_workers: ThreadPoolExecutor | None = None
_hedge_lock = threading.Lock()


def hedge_pool() -> ThreadPoolExecutor:
    """Threads for sync hedged calls, shared by every call (starting threads per call is slow)."""
    global _hedge_workers
    if _hedge_workers is None:
        with _hedge_lock:
            if _hedge_workers is None:
                _hedge_workers = ThreadPoolExecutor(max_workers=64,
                                                    thread_name_prefix="mmsdk-hedge")
    return _hedge_workers
