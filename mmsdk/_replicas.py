"""A replica pool's attempts: choose a replica per attempt, move on transient failures.

A provider that declares a replica pool (``ModelInfo.endpoints``) is a pool
here: routing chooses the replica for each attempt (:meth:`HealthBook.pick`,
one breaker per replica), hands it to the model as ``Request.endpoint``, moves
a call that fails transiently to another healthy replica at once (drawing on
the retry budget, not on ``Policy.retries``), and, with ``hedge_after``, hedges
to a sibling replica before the next provider (:mod:`mmsdk._hedging`). Each
replica tried is an :class:`Attempt` naming its ``endpoint``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._errors import MMSDKError, ProviderError
from ._jobs import Bound
from ._registry import Replica, Resolved
from ._steps import SKIPPED, Sleep, Steps

if TYPE_CHECKING:
    from ._run import Run

__all__ = ["Pool", "drop_pool", "lane", "lane_ready", "pool_calls", "pool_of"]

logger = logging.getLogger("mmsdk.routing")


@dataclass
class Pool:
    """One routed call's use of a replica pool (shared by its hedged lanes)."""

    keys: tuple[str, ...]
    replicas: dict[str, Replica]
    bound: Bound | None = None  # set once the pool's provider is bound
    busy: set[str] = field(default_factory=set)  # replicas this call has in flight
    failed: set[str] = field(default_factory=set)  # replicas that failed it this round
    lock: threading.Lock = field(default_factory=threading.Lock)

    def excluded(self) -> set[str]:
        return self.busy | self.failed


def pool_of(run: Run, resolved: Resolved) -> Pool:
    """*run*'s state for *resolved*'s pool (made when the route reaches it)."""
    if run.pools is None:
        run.pools = {}
    pool = run.pools.get(resolved.provider)
    if pool is None:
        replicas = {r.key: r for r in resolved.replicas}
        pool = run.pools[resolved.provider] = Pool(tuple(replicas), replicas)
    return pool


def drop_pool(run: Run, provider: str) -> None:
    if run.pools is not None:
        run.pools.pop(provider, None)


def lane(run: Run, resolved: Resolved) -> Steps:
    """Steps for a hedge to another replica of *resolved*'s pool (bound already)."""
    assert run.pools is not None
    return pool_calls(run, run.pools[resolved.provider], hedge=True)


def lane_ready(run: Run, resolved: Resolved) -> bool | None:
    """Whether a hedge to a sibling replica may start now: ``None`` while the pool is
    still being bound (ask again), ``False`` when it was skipped or has no healthy
    replica free."""
    pool = None if run.pools is None else run.pools.get(resolved.provider)
    if pool is None:
        return False
    if pool.bound is None:
        return None
    with pool.lock:
        excluded = pool.excluded()
    return run.context.book.ready(pool.keys, run.credential(resolved),
                                  run.policy.breaker_threshold,
                                  run.policy.breaker_cooldown, excluded)


def pool_calls(run: Run, pool: Pool, hedge: bool = False) -> Steps:
    """Attempts on a pool's replicas until one answers.

    A transient failure moves the call at once to another healthy replica
    this call has not tried (each move takes a retry-budget token; none
    left: the provider fails now). With none left the provider failed this
    round: ``Policy.retries`` and backoff apply as for any provider, and the
    next round may try every replica again. Other errors end it at once.
    A hedge lane (*hedge*) makes no rounds and, finding no replica free, ends
    without a record.
    """
    bound = pool.bound
    assert bound is not None
    resolved = bound.resolved
    provider = resolved.provider
    policy, context, book = run.policy, run.context, run.context.book
    credential = run.credential(resolved)
    threshold, cooldown = policy.breaker_threshold, policy.breaker_cooldown
    balance = resolved.info.balance
    waited = 0.0
    rounds = 0
    error: MMSDKError | None = None
    first = not hedge
    while True:
        timeout = run.timeout(provider, error)
        with pool.lock:
            key, retry_in = book.pick(pool.keys, credential, threshold, cooldown,
                                      balance=balance, exclude=pool.excluded())
            if key is not None:
                pool.busy.add(key)
        if key is None:
            if error is not None:  # no healthy replica left
                raise error
            if hedge:
                return SKIPPED
            run.skip_open(provider, retry_in)
            return SKIPPED
        if first:
            context.budgets.deposit(provider, policy.retry_budget)
            first = False
        replica = pool.replicas[key]
        try:
            outcome = yield from run.attempt(bound, provider, credential, timeout, waited,
                                             replica)
        finally:
            with pool.lock:
                pool.busy.discard(key)
        if not isinstance(outcome, MMSDKError):
            return outcome
        error = outcome
        if not isinstance(error, ProviderError) or not error.transient:
            raise error  # a caller mistake, a refusal, a bad key: no replica helps
        with pool.lock:
            pool.failed.add(key)
            excluded = pool.excluded()
        waited = 0.0
        if book.ready(pool.keys, credential, threshold, cooldown, excluded):
            if not context.budgets.withdraw(provider, policy.retry_budget):
                logger.info("mmsdk: not moving %s to another replica: its retry budget is "
                            "spent (falling back at once)", provider)
                raise error
            logger.info("mmsdk: moving %s from %s to another replica after %s", provider,
                        replica.shown, type(error).__name__)
            continue
        if hedge:  # the first lane decides on retries
            raise error
        waited = run.retry_wait(provider, error, rounds)  # no replica left: the provider failed
        rounds += 1
        with pool.lock:
            pool.failed.clear()
        yield Sleep(waited)
