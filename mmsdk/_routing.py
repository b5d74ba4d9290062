"""Routing: try candidate providers in policy order, retry and fall back.

The decisions (skip, bind, retry, wait for ``Retry-After``, fall back, give
up) live in one place, :class:`mmsdk._run.Run`, written as generators that
*yield* steps (:mod:`mmsdk._steps`) and receive outcomes. A sync driver and an
async driver (:mod:`mmsdk._drivers`) execute the steps, so both paths follow
exactly the same rules; the async driver runs anything that may take more than
a moment (first imports, availability checks, input preparation) off the event loop.

Routing is lazy: a candidate is bound (availability checked, inputs prepared
for its limits) only when the route reaches it, so a call answered by the
first candidate costs what a single-provider call costs.

The parts: replica pools (:mod:`mmsdk._replicas`), hedging
(:mod:`mmsdk._hedging`), costs, ``max_cost_usd`` and the cache
(:mod:`mmsdk._accounting`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._accounting import cheapest
from ._drivers import adrive, bounded, drive
from ._hedging import ahedged, hedged, hedges
from ._jobs import Job
from ._policy import Policy
from ._registry import Registry
from ._run import RouteContext, Run
from ._steps import Candidates

__all__ = ["aexecute", "execute"]


def _run(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
         streaming: bool, started: float | None, context: RouteContext | None) -> Run:
    context = context or RouteContext()
    if policy.order == "cheapest":
        candidates = cheapest(job, candidates, context.prices)
    return Run(job, candidates, policy, registry, streaming, started or time.monotonic(),
               context)


def execute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
            *, streaming: bool = False, started: float | None = None,
            context: RouteContext | None = None) -> Any:
    """Run *job* on the first candidate that succeeds (sync)."""
    run = _run(job, candidates, policy, registry, streaming, started, context)
    if policy.hedge_after is not None and not streaming and hedges(run.candidates):
        result = hedged(run)
    else:
        result = drive(run.sequential(), run)
    run.ledger.store()
    return result


async def aexecute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
                   *, streaming: bool = False, started: float | None = None,
                   context: RouteContext | None = None) -> Any:
    """Run *job* on the first candidate that succeeds (async).

    ``Policy.deadline`` bounds the whole call here: when it passes, the call in
    flight is cancelled (local work stops at its next step) and recorded as
    ``"abandoned"``.
    """
    run = _run(job, candidates, policy, registry, streaming, started, context)
    hedge = policy.hedge_after is not None and not streaming and hedges(run.candidates)
    work = ahedged(run) if hedge else adrive(run.sequential(), run)
    try:
        result = await bounded(work, run.remaining())
    except TimeoutError:
        raise run.deadline_passed() from None
    if run.ledger.to_store is not None:
        await asyncio.to_thread(run.ledger.store)
    return result
