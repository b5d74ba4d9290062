"""Routing: try candidate providers in policy order, retry and fall back.

The decisions (skip, bind, retry, wait for ``Retry-After``, fall back, give
up) live in one place, :class:`_Run`, written as generators that *yield* steps
(:class:`_Bind`, :class:`_Call`, :class:`_Sleep`) and receive outcomes. A sync
driver and an async driver execute the steps, so both paths follow exactly the
same rules; the async driver runs anything that may take more than a moment
(first imports, availability checks, input preparation) off the event loop.

Routing is lazy: a candidate is bound (availability checked, inputs prepared
for its limits) only when the route reaches it, so a call answered by the
first candidate costs what a single-provider call costs.

A provider that declares a replica pool (``ModelInfo.endpoints``) is a pool
here: routing chooses the replica for each attempt (:meth:`HealthBook.pick`,
one breaker per replica), hands it to the model as ``Request.endpoint``, moves
a call that fails transiently to another healthy replica at once (drawing on
the retry budget, not on ``Policy.retries``), and, with ``hedge_after``, hedges
to a sibling replica before the next provider. Each replica tried is an
:class:`Attempt` naming its ``endpoint``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Generator, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from ._cache import cache_key, restored, stored
from ._cost import cost_of, estimate, price_of
from ._errors import (
    AllProvidersFailedError,
    CancelledError,
    CapabilityError,
    CircuitOpenError,
    ContentPolicyError,
    InvalidInputError,
    MMSDKError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnknownProviderError,
)
from ._health import HealthBook, RetryBudgets, health_book, new_budgets
from ._jobs import Bound, Job, Skip, acall, astream, call, check_model, finish, stream
from ._observe import CallObserver
from ._plugin_helpers import from_network
from ._policy import Policy
from ._registry import Registry, Replica, Resolved
from ._types import Attempt, Price

__all__ = ["Opened", "RouteContext", "aexecute", "bounded", "cheapest", "execute"]

logger = logging.getLogger("mmsdk.routing")

_CALLER_MISTAKES = (InvalidInputError, UnknownProviderError, CapabilityError)
_SKIPPED = object()  # what a candidate's steps return when it was skipped without a call


@dataclass
class _Bind:
    resolved: Resolved


@dataclass
class _Call:
    bound: Bound
    request: Any
    streaming: bool


@dataclass
class _Sleep:
    seconds: float


@dataclass
class _Lookup:
    """Look *bound* up in the cache (the drivers run it: disk I/O stays off the loop)."""

    bound: Bound


@dataclass
class Opened:
    """A stream that produced its first event: routing is settled from here on."""

    first: Any
    iterator: Any
    bound: Bound
    run: _Run
    release: Any = None  # gives the router's concurrency slot back when the stream ends


@dataclass
class _InFlight:
    provider: str
    credential: Hashable
    started: float
    request: Any
    key: str | None = None  # a pool replica's breaker facts ("NAME:MODEL@BASE_URL")
    endpoint: str | None = None  # that replica's base URL, as attempts show it


@dataclass
class _Pool:
    """One routed call's use of a replica pool (shared by its hedged lanes)."""

    keys: tuple[str, ...]
    replicas: dict[str, Replica]
    bound: Bound | None = None  # set once the pool's provider is bound
    busy: set[str] = field(default_factory=set)  # replicas this call has in flight
    failed: set[str] = field(default_factory=set)  # replicas that failed it this round
    lock: threading.Lock = field(default_factory=threading.Lock)

    def excluded(self) -> set[str]:
        return self.busy | self.failed


@dataclass
class _Lane:
    """A queued hedge to another replica of *resolved*'s pool (hedged calls only)."""

    resolved: Resolved


Steps = Generator[Any, Any, Any]
Outcome = Literal["ok", "error", "skipped", "abandoned"]
Candidates = list[Resolved | MMSDKError]  # an error: skipped (plugin missing, no per-router key)


@dataclass
class RouteContext:
    """What a router carries from call to call: retry budgets, breaker facts, callbacks.

    Attributes:
        budgets: this router's retry token buckets.
        book: the process-wide breaker facts.
        credential: keeps one tenant's breaker facts apart from another's, for
            candidates that carry no credential of their own (a candidate made
            with a per-router key is kept apart by its ``Resolved.credential``).
        hooks: ``on_attempt`` callbacks (the router's and the configured one).
        cache: the :class:`mmsdk.Cache` repeatable calls are looked up in and
            stored to (``None``: no cache).
        prices: this router's prices (``Router(prices=...)``), before the
            configured ones and the plugins' tables.
        verifier: this call cross-checks another (``verify_with=``): its
            attempts are marked ``Attempt.verifier``.
    """

    budgets: RetryBudgets = field(default_factory=new_budgets)
    book: HealthBook = field(default_factory=health_book)
    credential: Hashable = None
    hooks: Sequence[Callable[[Attempt], Any]] = ()
    cache: Any = None
    prices: Mapping[str, Price] = field(default_factory=dict)
    verifier: bool = False


@dataclass
class _Run:
    """The state of one routed call: candidates, attempts, clock."""

    job: Job
    candidates: Candidates
    policy: Policy
    registry: Registry
    streaming: bool
    started: float = field(default_factory=time.monotonic)
    context: RouteContext = field(default_factory=RouteContext)
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[MMSDKError] = field(default_factory=list)
    in_flight: dict[int, _InFlight] = field(default_factory=dict)
    _failed: dict[int, MMSDKError] = field(default_factory=dict)  # id(attempt) -> its error
    _ids: Any = field(default_factory=lambda: iter(range(1 << 62)))
    _observer: CallObserver | None = None
    _pools: dict[str, _Pool] | None = None  # provider -> its pool's state (pools only)
    _keys: dict[int, str] = field(default_factory=dict)  # id(bound) -> its cache key
    _billed: list[tuple[Any, float | None]] = field(default_factory=list)  # (result, cost)
    _to_store: tuple[str, Any] | None = None  # (key, result) once a call answered

    def __post_init__(self) -> None:
        self._observer = CallObserver(self.job.capability, self.context.hooks, self.started)

    # -- bookkeeping -------------------------------------------------------
    def _record(self, provider: str, outcome: Outcome, began: float, seconds: float, *,
                error: MMSDKError | None = None, waited: float = 0.0, usage: Any = None,
                endpoint: str | None = None) -> None:
        attempt = Attempt(  # validating is faster than model_construct in pydantic 2.x
            provider=provider, outcome=outcome,
            error=None if error is None else
            (error.message if outcome == "skipped" else f"{type(error).__name__}: {error.message}"),
            error_type=None if error is None else type(error).__name__,
            status=getattr(error, "status", None), retry_after=getattr(error, "retry_after", None),
            endpoint=endpoint or getattr(error, "endpoint", None), started=began - self.started,
            waited=waited, seconds=seconds, verifier=self.context.verifier)
        self.attempts.append(attempt)
        if error is not None:
            self._failed[id(attempt)] = error
        assert self._observer is not None
        self._observer.attempt(attempt, usage)

    def _skip(self, provider: str, error: MMSDKError) -> None:
        self._record(provider, "skipped", time.monotonic(), 0.0, error=error)
        self.errors.append(error)

    def remaining(self) -> float | None:
        if self.policy.deadline is None:
            return None
        return self.policy.deadline - (time.monotonic() - self.started)

    def abandon(self) -> None:
        """Stop every call still in flight: it lost a hedge, or the caller left."""
        now = time.monotonic()
        for key in list(self.in_flight):
            flight = self.in_flight.pop(key, None)
            if flight is None:
                continue
            if flight.request.cancel is not None:
                flight.request.cancel.set()
            self.context.book.settle(flight.key or flight.provider, flight.credential,
                                     failed=None, threshold=self.policy.breaker_threshold)
            self._record(flight.provider, "abandoned", flight.started, now - flight.started,
                         error=CancelledError(f"{flight.provider} was abandoned: another "
                                              "attempt answered first or the call ended.",
                                              provider=flight.provider),
                         endpoint=flight.endpoint)

    def ordered_attempts(self) -> list[Attempt]:
        """Attempts in the order they started (hedged calls finish out of order)."""
        return sorted(self.attempts, key=lambda a: a.started)

    def attempt_errors(self) -> list[MMSDKError]:
        """One typed error per attempt that was not ``"ok"``, in attempt order."""
        return [self._failed[id(a)] for a in self.ordered_attempts() if id(a) in self._failed]

    # -- one candidate: bind, call, retry ------------------------------------
    def credential(self, resolved: Resolved) -> Hashable:
        """Whose breaker facts a call to *resolved* reads and writes."""
        return resolved.credential if resolved.credential is not None \
            else self.context.credential

    def candidate(self, resolved: Resolved | MMSDKError) -> Steps:
        """Steps for one provider. Returns a result, or ``_SKIPPED``."""
        if isinstance(resolved, MMSDKError):  # plugin not installed, or takes no router key
            self._skip(resolved.provider or "?", resolved)
            return _SKIPPED
        provider = resolved.provider
        if self.policy.local_only and not resolved.info.local:
            self._skip(provider, CapabilityError(
                f"{provider} sends data off this machine and the policy is local_only.",
                provider=provider))
            return _SKIPPED
        replicas = resolved.replicas
        if replicas:  # a pool is down when every replica is
            retry_in = self.context.book.open_for_all(
                [r.key for r in replicas], self.credential(resolved),
                self.policy.breaker_threshold, self.policy.breaker_cooldown)
        else:
            retry_in = self.context.book.open_for(provider, self.credential(resolved),
                                                  self.policy.breaker_threshold,
                                                  self.policy.breaker_cooldown)
        if retry_in is not None:  # no preparation for a provider that is down
            self._skip(provider, _circuit_open(provider, retry_in))
            return _SKIPPED
        if replicas:
            pool = self._pool(resolved)  # a hedge to a sibling waits until it is bound
        outcome = yield _Bind(resolved)
        if replicas and isinstance(outcome, (Skip, BaseException)):
            self._drop_pool(provider)
        if isinstance(outcome, Skip):
            if isinstance(outcome.error, ProviderUnavailableError):
                self.registry.forget(provider)
            self._skip(provider, outcome.error)
            return _SKIPPED
        if isinstance(outcome, BaseException):
            raise outcome
        if self.context.cache is not None and not self.streaming:
            hit = yield _Lookup(outcome)
            if hit is not None:
                if replicas:
                    self._drop_pool(provider)
                self._record(provider, "ok", time.monotonic(), 0.0)  # nothing consumed
                self._billed.append((hit, 0.0))
                return (hit, outcome)
        over = self._over_budget(resolved)
        if over is not None:
            if replicas:
                self._drop_pool(provider)
            self._skip(provider, over)
            return _SKIPPED
        if replicas:
            pool.bound = outcome
            try:
                return (yield from self._pool_calls(pool))
            except BaseException:
                self._drop_pool(provider)  # failed: no hedge to its replicas starts after
                raise
        return (yield from self._calls(outcome))

    def _calls(self, bound: Bound) -> Steps:
        provider = bound.resolved.provider
        policy, context = self.policy, self.context
        credential = self.credential(bound.resolved)
        waited = 0.0
        error: MMSDKError | None = None
        for attempt in range(policy.retries + 1):
            timeout = policy.timeout
            remaining = self.remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise ProviderTimeoutError(
                        f"The {policy.deadline}s deadline passed before {provider} could be "
                        "tried; raise Policy(deadline=...).", provider=provider)
                timeout = min(timeout or remaining, remaining)
            retry_in = context.book.admit(provider, credential,
                                          policy.breaker_threshold, policy.breaker_cooldown)
            if retry_in is not None:  # opened meanwhile (by this or another router)
                if error is not None:
                    raise error
                self._skip(provider, _circuit_open(provider, retry_in))
                return _SKIPPED
            if attempt == 0:
                context.budgets.deposit(provider, policy.retry_budget)
            began = time.monotonic()
            request = bound.request.model_copy(update={
                "timeout": timeout, "deadline": None if timeout is None else began + timeout,
                "cancel": threading.Event()})
            key = next(self._ids)
            self.in_flight[key] = _InFlight(provider, credential, began, request)
            try:
                outcome = yield _Call(bound, request, self.streaming)
            finally:
                flight = self.in_flight.pop(key, None)
            if flight is None:  # abandoned meanwhile: recorded and settled already
                raise CancelledError(f"{provider} was abandoned.", provider=provider)
            seconds = time.monotonic() - began
            if not isinstance(outcome, BaseException):
                context.book.settle(provider, credential, failed=False,
                                    threshold=policy.breaker_threshold)
                self._record(provider, "ok", began, seconds, waited=waited,
                             usage=_usage(outcome[0]))
                self._bill(bound.resolved, outcome[0])
                return outcome
            error = self._normalise(outcome, provider, timeout, request)
            self._bill_error(bound.resolved, error)
            context.book.settle(provider, credential, failed=_counts(error),
                                threshold=policy.breaker_threshold)
            skipped = isinstance(error, ProviderUnavailableError)
            self._record(provider, "skipped" if skipped else "error", began, seconds,
                         error=error, waited=waited)
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise error
            if context.book.open_for(provider, credential, policy.breaker_threshold,
                                     policy.breaker_cooldown) is not None:
                raise error  # this failure opened its breaker: fall back now, no wait
            if not context.budgets.withdraw(provider, policy.retry_budget):
                logger.info("mmsdk: not retrying %s: its retry budget is spent (falling back "
                            "at once)", provider)
                raise error
            assert self._observer is not None
            self._observer.retry(provider, type(error).__name__, delay)
            yield _Sleep(delay)
            waited = delay
        raise AssertionError("unreachable")  # pragma: no cover

    # -- a replica pool: choose a replica per attempt, move on transient failures ----
    def _pool(self, resolved: Resolved) -> _Pool:
        """This call's state for *resolved*'s pool (made when the route reaches it)."""
        if self._pools is None:
            self._pools = {}
        pool = self._pools.get(resolved.provider)
        if pool is None:
            replicas = {r.key: r for r in resolved.replicas}
            pool = self._pools[resolved.provider] = _Pool(tuple(replicas), replicas)
        return pool

    def _drop_pool(self, provider: str) -> None:
        if self._pools is not None:
            self._pools.pop(provider, None)

    def lane(self, resolved: Resolved) -> Steps:
        """Steps for a hedge to another replica of *resolved*'s pool (bound already)."""
        assert self._pools is not None
        return self._pool_calls(self._pools[resolved.provider], hedge=True)

    def lane_ready(self, resolved: Resolved) -> bool | None:
        """Whether a hedge to a sibling replica may start now: ``None`` while the pool is
        still being bound (ask again), ``False`` when it was skipped or has no healthy
        replica free."""
        pool = None if self._pools is None else self._pools.get(resolved.provider)
        if pool is None:
            return False
        if pool.bound is None:
            return None
        with pool.lock:
            excluded = pool.excluded()
        return self.context.book.ready(pool.keys, self.credential(resolved),
                                       self.policy.breaker_threshold,
                                       self.policy.breaker_cooldown, excluded)

    def _pool_calls(self, pool: _Pool, hedge: bool = False) -> Steps:
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
        policy, context, book = self.policy, self.context, self.context.book
        credential = self.credential(resolved)
        threshold, cooldown = policy.breaker_threshold, policy.breaker_cooldown
        balance = resolved.info.balance
        waited = 0.0
        rounds = 0
        error: MMSDKError | None = None
        first = not hedge
        while True:
            timeout = policy.timeout
            remaining = self.remaining()
            if remaining is not None:
                if remaining <= 0:
                    if error is not None:
                        raise error
                    raise ProviderTimeoutError(
                        f"The {policy.deadline}s deadline passed before {provider} could be "
                        "tried; raise Policy(deadline=...).", provider=provider)
                timeout = min(timeout or remaining, remaining)
            with pool.lock:
                key, retry_in = book.pick(pool.keys, credential, threshold, cooldown,
                                          balance=balance, exclude=pool.excluded())
                if key is not None:
                    pool.busy.add(key)
            if key is None:
                if error is not None:  # no healthy replica left
                    raise error
                if hedge:
                    return _SKIPPED
                self._skip(provider, _circuit_open(provider, retry_in))
                return _SKIPPED
            if first:
                context.budgets.deposit(provider, policy.retry_budget)
                first = False
            replica = pool.replicas[key]
            began = time.monotonic()
            request = bound.request.model_copy(update={
                "timeout": timeout, "deadline": None if timeout is None else began + timeout,
                "cancel": threading.Event(), "endpoint": replica.url})
            ident = next(self._ids)
            self.in_flight[ident] = _InFlight(provider, credential, began, request, key,
                                              replica.shown)
            try:
                outcome = yield _Call(bound, request, self.streaming)
            finally:
                flight = self.in_flight.pop(ident, None)
                with pool.lock:
                    pool.busy.discard(key)
            if flight is None:  # abandoned meanwhile: recorded and settled already
                raise CancelledError(f"{provider} was abandoned.", provider=provider)
            seconds = time.monotonic() - began
            if not isinstance(outcome, BaseException):
                book.settle(key, credential, failed=False, threshold=threshold)
                self._record(provider, "ok", began, seconds, waited=waited,
                             usage=_usage(outcome[0]), endpoint=replica.shown)
                self._bill(resolved, outcome[0])
                return outcome
            error = self._normalise(outcome, provider, timeout, request)
            self._bill_error(resolved, error)
            book.settle(key, credential, failed=_counts(error), threshold=threshold)
            skipped = isinstance(error, ProviderUnavailableError)
            self._record(provider, "skipped" if skipped else "error", began, seconds,
                         error=error, waited=waited, endpoint=replica.shown)
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
            delay = self._retry_delay(error, rounds)  # no replica left: the provider failed
            if delay is None:
                raise error
            if not context.budgets.withdraw(provider, policy.retry_budget):
                logger.info("mmsdk: not retrying %s: its retry budget is spent (falling back "
                            "at once)", provider)
                raise error
            assert self._observer is not None
            self._observer.retry(provider, type(error).__name__, delay)
            rounds += 1
            with pool.lock:
                pool.failed.clear()
            yield _Sleep(delay)
            waited = delay

    def _local(self, provider: str) -> bool:
        return any(not isinstance(r, MMSDKError) and r.provider == provider and r.info.local
                   for r in self.candidates)

    def _normalise(self, exc: BaseException, provider: str, timeout: float | None,
                   request: Any = None) -> MMSDKError:
        if isinstance(exc, MMSDKError):
            if exc.provider is None:
                exc.provider = provider
            return exc
        if isinstance(exc, TimeoutError):  # the async driver's own bound on the attempt
            error = ProviderTimeoutError(f"{provider} did not answer within its {timeout}s "
                                         "timeout; raise Policy(timeout=...).", provider=provider)
            # still queued behind a busy local model: not the provider's failure
            error.queued = request is not None and not request._started and \
                request.cancel is not None and self._local(provider)
            return error
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt, SystemExit, CancelledError
        wrapped = ProviderError(
            f"{provider} failed unexpectedly: {type(exc).__name__}: {exc}. This is a bug in "
            "its plugin; please report it.", provider=provider)
        if not from_network(exc):  # an SDK or HTTP exception holds the request, so the key
            wrapped.__cause__ = exc
        return wrapped

    def _retry_delay(self, error: MMSDKError, attempt: int) -> float | None:
        if not isinstance(error, ProviderError) or not error.transient:
            return None
        if attempt >= self.policy.retries:
            return None
        delay: float = self.policy.backoff * 2.0 ** attempt
        retry_after = getattr(error, "retry_after", None)  # 429, 503, 529
        if retry_after is not None:
            if retry_after > self.policy.max_retry_after:
                return None
            delay = float(retry_after)
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            return None
        return delay

    # -- every candidate in order ----------------------------------------------
    def sequential(self) -> Steps:
        for resolved in self.candidates:
            try:
                result = yield from self.candidate(resolved)
            except MMSDKError as error:
                self.errors.append(error)
                if not self.falls_back(error):
                    raise self.attach(error) from None
                assert self._observer is not None
                self._observer.fallback(error.provider or "?", type(error).__name__)
                continue
            if result is _SKIPPED:
                continue
            return self.finished(result)
        raise self.give_up()

    def falls_back(self, error: MMSDKError) -> bool:
        if isinstance(error, _CALLER_MISTAKES):
            return False
        if isinstance(error, ContentPolicyError):
            return self.policy.fallback_on_policy_refusal
        return isinstance(error, (ProviderError, ProviderUnavailableError))

    def attach(self, error: MMSDKError) -> MMSDKError:
        error.attempts = self.ordered_attempts()
        self._end(error)
        return error

    def _end(self, error: BaseException | None) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.end(error)
            self._observer = _SILENT

    def give_up(self) -> MMSDKError:
        # An options key no candidate accepts is the caller's mistake, not a skip.
        if self.errors and all(isinstance(e, InvalidInputError) for e in self.errors):
            return self.attach(self.errors[0])
        if len(self.candidates) == 1 and self.errors:
            return self.attach(self.errors[-1])
        error = AllProvidersFailedError(self.ordered_attempts(), self.job.capability.value,
                                        errors=self.attempt_errors())
        self._end(error)
        return error

    def deadline_passed(self) -> MMSDKError:
        self.abandon()
        error = ProviderTimeoutError(f"The {self.policy.deadline}s deadline passed; raise "
                                     "Policy(deadline=...).")
        return self.attach(error)

    def finished(self, outcome: tuple[Any, Bound]) -> Any:
        result, bound = outcome
        if self.streaming:
            first, iterator = result
            self._end(None)
            return Opened(first, iterator, bound, self)
        self._end(None)
        elapsed = time.monotonic() - self.started
        attempts = self.ordered_attempts()
        items = result if isinstance(result, list) else [result]
        fresh = not items[0].cached
        key = self._keys.get(id(bound))
        if fresh and key is not None:
            self._to_store = (key, result)
        costs = self._costs(result, bound)
        for item, cost in zip(items, costs, strict=True):
            if not item.cached:
                finish(item, bound)
            item.attempts = list(attempts)
            item.elapsed = elapsed
            item.usage.cost_usd = cost
        return result

    # -- costs ---------------------------------------------------------------------
    def _bill(self, resolved: Resolved, result: Any) -> None:
        """Count an answer that came back (the call was billed, whoever wins)."""
        if self.streaming:  # a stream's answer is counted when it ends (stream_cost)
            return
        price = price_of(resolved, self.context.prices)
        capability = self.job.capability
        costs = [cost_of(item.usage, price, capability)
                 for item in (result if isinstance(result, list) else [result])]
        self._billed.append((result, None if None in costs else sum(c or 0.0 for c in costs)))

    def _bill_error(self, resolved: Resolved, error: MMSDKError) -> None:
        """Count a failed attempt whose answer arrived (billed) but was rejected."""
        usage = getattr(error, "usage", None)
        if usage is not None:
            self._billed.append((error, cost_of(usage, price_of(resolved, self.context.prices),
                                                self.job.capability)))

    def _costs(self, result: Any, bound: Bound) -> list[float | None]:
        """``usage.cost_usd`` for each item of *result*: its own cost, plus on the first
        one what the call's other billed attempts cost (retries, hedges, rejected answers)."""
        items = result if isinstance(result, list) else [result]
        price = price_of(bound.resolved, self.context.prices)
        capability = self.job.capability
        costs = [0.0 if item.cached else cost_of(item.usage, price, capability)
                 for item in items]
        others = [cost for billed, cost in list(self._billed) if billed is not result]
        if others:
            first = costs[0]
            costs[0] = None if first is None or None in others else \
                first + sum(c or 0.0 for c in others)
        return costs

    def stream_cost(self, final: Any, bound: Bound) -> float | None:
        """``usage.cost_usd`` of a stream's whole answer (and the attempts billed before it)."""
        return self._costs(final, bound)[0]

    def _over_budget(self, resolved: Resolved) -> MMSDKError | None:
        """Why *resolved* is skipped under ``Policy(max_cost_usd=...)``, or ``None``."""
        limit = self.policy.max_cost_usd
        if limit is None:
            return None
        provider = resolved.provider
        guess = estimate(self.job, resolved, self.context.prices)
        if guess is None:
            return CapabilityError(
                f"{provider} is skipped: its price is unknown and the policy has "
                f"max_cost_usd={limit}. Give it one with mmsdk.configure(prices={{{provider!r}: "
                "{...}}) or drop max_cost_usd.", provider=provider)
        if guess > limit:
            return CapabilityError(
                f"{provider} is skipped: the call's estimated cost ${guess:.6f} exceeds "
                f"max_cost_usd={limit}. Raise the budget, shorten the prompt or set "
                "max_tokens.", provider=provider)
        return None

    # -- cache -----------------------------------------------------------------------
    def lookup(self, bound: Bound) -> Any:
        """The stored result for *bound*, marked cached, or ``None`` (a miss)."""
        key = cache_key(self.job.capability, bound)
        if key is None:
            return None
        self._keys[id(bound)] = key
        value = self.context.cache.get(key)
        return None if value is None else restored(value, bound.request)

    def store(self) -> None:
        """Keep the answer of a repeatable call (after it was handed over)."""
        pending, self._to_store = self._to_store, None
        if pending is not None:
            self.context.cache.set(pending[0], stored(pending[1]))


def _circuit_open(provider: str, retry_in: float | None) -> CircuitOpenError:
    wait = f" for {retry_in:.1f}s more" if retry_in is not None else ""
    return CircuitOpenError(
        f"{provider} is skipped{wait}: its circuit breaker opened after repeated transient "
        "failures. Wait, or tune Policy(breaker_threshold=..., breaker_cooldown=...).",
        provider=provider, retry_after=retry_in)


def _counts(error: MMSDKError) -> bool | None:
    """Whether *error* counts against the provider's health (``None``: says nothing)."""
    if getattr(error, "queued", False):  # waited for a busy local model: not the provider's fault
        return None
    if isinstance(error, ProviderError) and error.transient:
        return True
    return None


def _usage(result: Any) -> Any:
    first = result[0] if isinstance(result, list) and result else result
    return getattr(first, "usage", None)


class _Silent(CallObserver):
    """An observer for a call that has ended: late attempts (a hedge's loser) still log."""

    def __init__(self) -> None:  # no span, no callbacks
        pass

    def attempt(self, attempt: Attempt, usage: Any = None) -> None:
        pass

    def end(self, error: BaseException | None = None) -> None:
        pass


_SILENT = _Silent()


# -- drivers -------------------------------------------------------------------
def _bind(run: _Run, resolved: Resolved) -> Bound | Skip:
    try:
        return run.job.bind(resolved, lenient=run.policy.lenient,
                            check=not run.registry.is_loaded(resolved.provider,
                                                             resolved.credential))
    except Skip as skip:
        return skip
    except MMSDKError as error:  # a plugin's check or describe failed: skip it, keep routing
        return Skip(error)


def _drive(steps: Steps, run: _Run) -> Any:
    outcome: Any = None
    capability = run.job.capability
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, _Sleep):
            time.sleep(step.seconds)
            outcome = None
            continue
        if isinstance(step, _Bind):
            outcome = _bind(run, step.resolved)
            continue
        if isinstance(step, _Lookup):
            outcome = run.lookup(step.bound)
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


async def _abind(run: _Run, resolved: Resolved) -> Bound | Skip:
    if run.registry.is_loaded(resolved.provider, resolved.credential) and run.job.light():
        return _bind(run, resolved)
    return await asyncio.to_thread(_bind, run, resolved)


async def _amodel(run: _Run, resolved: Resolved) -> Any:
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


async def _acall(model: Any, capability: Any, step: _Call) -> Any:
    request = step.request  # bounded by the attempt's deadline, set when it started
    if step.streaming:
        iterator = astream(model, request).__aiter__()
        return (await bounded(iterator.__anext__(), request.time_left()), iterator)
    return await bounded(acall(model, capability, request), request.time_left())


async def _adrive(steps: Steps, run: _Run) -> Any:
    outcome: Any = None
    capability = run.job.capability
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, _Sleep):
            await asyncio.sleep(step.seconds)
            outcome = None
            continue
        if isinstance(step, _Bind):
            outcome = await _abind(run, step.resolved)
            continue
        if isinstance(step, _Lookup):
            outcome = await asyncio.to_thread(run.lookup, step.bound)
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


def _pooled(candidate: Resolved | MMSDKError) -> bool:
    return not isinstance(candidate, MMSDKError) and bool(candidate.replicas)


def _hedges(candidates: Candidates) -> bool:
    """Whether a call may hedge: several candidates, or a replica pool."""
    return len(candidates) > 1 or (len(candidates) == 1 and _pooled(candidates[0]))


def _next_steps(run: _Run, queue: list[Resolved | MMSDKError | _Lane]) -> Steps | None:
    """Steps for what the next hedge starts: another replica of the pool just started,
    while it has a healthy one free, else the next candidate; ``None``: nothing left."""
    while queue:
        item = queue.pop(0)
        if isinstance(item, _Lane):
            ready = run.lane_ready(item.resolved)
            if ready is not False:
                queue.insert(0, item)  # its further replicas come before the next provider
            if ready is None:
                return None  # still binding: ask again after hedge_after
            if ready:
                return run.lane(item.resolved)
            continue
        if _pooled(item):
            assert not isinstance(item, MMSDKError)
            queue.insert(0, _Lane(item))
        return run.candidate(item)
    return None


def _hedged(run: _Run) -> Any:
    """Start the next candidate (or another replica of a pool) whenever ``hedge_after``
    passes without an answer."""
    assert run.policy.hedge_after is not None
    pool = _hedge_pool()
    pending: set[Future[Any]] = set()
    queue: list[Resolved | MMSDKError | _Lane] = list(run.candidates)
    try:
        while queue or pending:
            steps = _next_steps(run, queue)
            if steps is not None:
                pending.add(pool.submit(_drive, steps, run))
            if not pending:
                continue
            timeout = run.policy.hedge_after if queue else None
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                error = future.exception()
                if error is None:
                    if future.result() is _SKIPPED:
                        continue
                    run.abandon()
                    return run.finished(future.result())
                assert isinstance(error, MMSDKError)
                run.errors.append(error)
                if not run.falls_back(error):
                    run.abandon()
                    raise run.attach(error)
        raise run.give_up()
    finally:
        for future in pending:
            future.cancel()  # not started yet: never will be


_hedge_workers: ThreadPoolExecutor | None = None
_hedge_lock = threading.Lock()


def _hedge_pool() -> ThreadPoolExecutor:
    """Threads for sync hedged calls, shared by every call (starting threads per call is slow)."""
    global _hedge_workers
    if _hedge_workers is None:
        with _hedge_lock:
            if _hedge_workers is None:
                _hedge_workers = ThreadPoolExecutor(max_workers=64,
                                                    thread_name_prefix="mmsdk-hedge")
    return _hedge_workers


async def _ahedged(run: _Run) -> Any:
    assert run.policy.hedge_after is not None
    pending: set[asyncio.Task[Any]] = set()
    queue: list[Resolved | MMSDKError | _Lane] = list(run.candidates)
    try:
        while queue or pending:
            steps = _next_steps(run, queue)
            if steps is not None:
                pending.add(asyncio.ensure_future(_adrive(steps, run)))
            if not pending:
                continue
            timeout = run.policy.hedge_after if queue else None
            done, _ = await asyncio.wait(pending, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                error = task.exception()
                if error is None:
                    if task.result() is _SKIPPED:
                        continue
                    run.abandon()
                    return run.finished(task.result())
                assert isinstance(error, MMSDKError)
                run.errors.append(error)
                if not run.falls_back(error):
                    run.abandon()
                    raise run.attach(error)
        raise run.give_up()
    finally:
        for task in pending:
            task.cancel()


def execute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
            *, streaming: bool = False, started: float | None = None,
            context: RouteContext | None = None) -> Any:
    """Run *job* on the first candidate that succeeds (sync)."""
    context = context or RouteContext()
    if policy.order == "cheapest":
        candidates = cheapest(job, candidates, context.prices)
    run = _Run(job, candidates, policy, registry, streaming, started or time.monotonic(),
               context)
    if policy.hedge_after is not None and not streaming and _hedges(candidates):
        result = _hedged(run)
    else:
        result = _drive(run.sequential(), run)
    run.store()
    return result


async def aexecute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
                   *, streaming: bool = False, started: float | None = None,
                   context: RouteContext | None = None) -> Any:
    """Run *job* on the first candidate that succeeds (async).

    ``Policy.deadline`` bounds the whole call here: when it passes, the call in
    flight is cancelled (local work stops at its next step) and recorded as
    ``"abandoned"``.
    """
    context = context or RouteContext()
    if policy.order == "cheapest":
        candidates = cheapest(job, candidates, context.prices)
    run = _Run(job, candidates, policy, registry, streaming, started or time.monotonic(),
               context)
    hedged = policy.hedge_after is not None and not streaming and _hedges(candidates)
    work = _ahedged(run) if hedged else _adrive(run.sequential(), run)
    try:
        result = await bounded(work, run.remaining())
    except TimeoutError:
        raise run.deadline_passed() from None
    if run._to_store is not None:
        await asyncio.to_thread(run.store)
    return result


def cheapest(job: Job, candidates: Candidates,
             prices: Mapping[str, Price] | None = None) -> Candidates:
    """*candidates* by the estimated cost of *job* (unknown prices, then skips, last).

    The sort is stable: equal estimates keep the order they came in (by ``cost_hint``).
    """
    def key(candidate: Resolved | MMSDKError) -> tuple[int, float]:
        if isinstance(candidate, MMSDKError):
            return (2, 0.0)
        guess = estimate(job, candidate, prices)
        return (1, 0.0) if guess is None else (0, guess)

    return sorted(candidates, key=key)
