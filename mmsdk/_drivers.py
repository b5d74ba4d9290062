"""The two drivers that execute a routed call's steps: sync and async.

Both receive the same :mod:`mmsdk._steps` from :class:`mmsdk._run.Run` and send
back the same outcomes (an exception is sent, not raised: the steps decide).
The async driver runs anything that may take more than a moment (first
imports, availability checks, input preparation, cache reads) off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._errors import MMSDKError
from ._jobs import Bound, Skip, acall, astream, call, check_model, stream
from ._registry import Resolved
from ._run import Run
from ._steps import Bind, Call, Lookup, Sleep, Steps

__all__ = ["adrive", "bounded", "drive"]


def _bind(run: Run, resolved: Resolved) -> Bound | Skip:
    try:
        return run.job.bind(resolved, lenient=run.policy.lenient,
                            check=not run.registry.is_loaded(resolved.provider,
                                                             resolved.credential))
    except Skip as skip:
        return skip
    except MMSDKError as error:  # a plugin's check or describe failed: skip it, keep routing
        return Skip(error)


def drive(steps: Steps, run: Run) -> Any:
    outcome: Any = None
    capability = run.job.capability
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            outcome = None
            continue
        if isinstance(step, Bind):
            outcome = _bind(run, step.resolved)
            continue
        if isinstance(step, Lookup):
            outcome = run.ledger.lookup(step.bound)
            continue
        try:
            model = run.registry.model(step.bound.resolved)
            check_model(model, capability, step.bound.resolved.provider)
            if step.streaming:
                iterator = iter(stream(model, step.request))
                outcome = ((next(iterator), iterator), step.bound)
            else:
                outcome = (call(model, capability, step.request), step.bound)
        except BaseException as exc:  # handed to the step generator, which decides
            outcome = exc


async def _abind(run: Run, resolved: Resolved) -> Bound | Skip:
    if run.registry.is_loaded(resolved.provider, resolved.credential) and run.job.light():
        return _bind(run, resolved)
    return await asyncio.to_thread(_bind, run, resolved)


async def _amodel(run: Run, resolved: Resolved) -> Any:
    if run.registry.is_loaded(resolved.provider, resolved.credential):
        return run.registry.model(resolved)
    return await asyncio.to_thread(run.registry.model, resolved)  # first import, factory


async def bounded(awaitable: Any, seconds: float | None) -> Any:
    """Await *awaitable*, cancelling it after *seconds* (raises ``TimeoutError``)."""
    if seconds is None:
        return await awaitable
    if hasattr(asyncio, "timeout"):  # Python 3.11+: no extra task
        async with asyncio.timeout(max(seconds, 0.0)):
            return await awaitable
    try:  # pragma: no cover - Python 3.10
        return await asyncio.wait_for(awaitable, max(seconds, 0.0))
    except asyncio.TimeoutError:  # pragma: no cover
        raise TimeoutError from None


async def _acall(model: Any, capability: Any, step: Call) -> Any:
    request = step.request  # bounded by the attempt's deadline, set when it started
    if step.streaming:
        iterator = astream(model, request).__aiter__()
        return (await bounded(iterator.__anext__(), request.time_left()), iterator)
    return await bounded(acall(model, capability, request), request.time_left())


async def adrive(steps: Steps, run: Run) -> Any:
    outcome: Any = None
    capability = run.job.capability
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            outcome = None
            continue
        if isinstance(step, Bind):
            outcome = await _abind(run, step.resolved)
            continue
        if isinstance(step, Lookup):
            outcome = await asyncio.to_thread(run.ledger.lookup, step.bound)
            continue
        try:
            model = await _amodel(run, step.bound.resolved)
            check_model(model, capability, step.bound.resolved.provider)
            outcome = (await _acall(model, capability, step), step.bound)
        except asyncio.CancelledError:
            run.abandon()
            raise
        except BaseException as exc:
            outcome = exc
