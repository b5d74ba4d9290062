"""One routed call: its candidates, attempts and clock, and the rules it follows.

:class:`Run` decides (skip, bind, retry, wait for ``Retry-After``, fall back,
give up) in generators that yield :mod:`mmsdk._steps`; a replica pool's
attempts are in :mod:`mmsdk._replicas`, costs and the cache in
:mod:`mmsdk._accounting`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._accounting import Ledger
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
from ._jobs import Bound, Job, Skip, finish
from ._observe import CallObserver
from ._plugin_helpers import from_network
from ._policy import Policy
from ._redact import redact
from ._registry import Registry, Replica, Resolved
from ._replicas import Pool, drop_pool, pool_calls, pool_of
from ._steps import SKIPPED, Bind, Call, Candidates, Lookup, Sleep, Steps
from ._types import Attempt, Price

__all__ = ["InFlight", "Opened", "RouteContext", "Run", "circuit_open"]

logger = logging.getLogger("mmsdk.routing")

_CALLER_MISTAKES = (InvalidInputError, UnknownProviderError, CapabilityError)

Outcome = Literal["ok", "error", "skipped", "abandoned"]


@dataclass
class Opened:
    """A stream that produced its first event: routing is settled from here on."""

    first: Any
    iterator: Any
    bound: Bound
    run: Run
    release: Any = None  # gives the router's concurrency slot back when the stream ends


@dataclass
class InFlight:
    provider: str
    credential: Hashable
    started: float
    request: Any
    key: str | None = None  # a pool replica's breaker facts ("NAME:MODEL@BASE_URL")
    endpoint: str | None = None  # that replica's base URL, as attempts show it


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
class Run:
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
    in_flight: dict[int, InFlight] = field(default_factory=dict)
    _failed: dict[int, MMSDKError] = field(default_factory=dict)  # id(attempt) -> its error
    ids: Any = field(default_factory=lambda: iter(range(1 << 62)))
    observer: CallObserver | None = None
    pools: dict[str, Pool] | None = None  # provider -> its pool's state (pools only)
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        self.observer = CallObserver(self.job.capability, self.context.hooks, self.started)
        self.ledger = Ledger(self.job, self.context, self.streaming)

    # -- bookkeeping -------------------------------------------------------
    def record(self, provider: str, outcome: Outcome, began: float, seconds: float, *,
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
        assert self.observer is not None
        self.observer.attempt(attempt, usage)

    def skip(self, provider: str, error: MMSDKError) -> None:
        self.record(provider, "skipped", time.monotonic(), 0.0, error=error)
        self.errors.append(error)

    def skip_open(self, provider: str, retry_in: float | None) -> None:
        """Skip *provider*: its circuit breaker is open (for *retry_in* seconds more)."""
        self.skip(provider, circuit_open(provider, retry_in))

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
            self.record(flight.provider, "abandoned", flight.started, now - flight.started,
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
        """Steps for one provider. Returns a result, or ``SKIPPED``."""
        if isinstance(resolved, MMSDKError):  # plugin not installed, or takes no router key
            self.skip(resolved.provider or "?", resolved)
            return SKIPPED
        provider = resolved.provider
        if self.policy.local_only and not resolved.info.local:
            self.skip(provider, CapabilityError(
                f"{provider} sends data off this machine and the policy is local_only.",
                provider=provider))
            return SKIPPED
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
            self.skip_open(provider, retry_in)
            return SKIPPED
        if replicas:
            pool = pool_of(self, resolved)  # a hedge to a sibling waits until it is bound
        outcome = yield Bind(resolved)
        if replicas and isinstance(outcome, (Skip, BaseException)):
            drop_pool(self, provider)
        if isinstance(outcome, Skip):
            if isinstance(outcome.error, ProviderUnavailableError):
                self.registry.forget(provider)
            self.skip(provider, outcome.error)
            return SKIPPED
        if isinstance(outcome, BaseException):
            raise outcome
        if self.context.cache is not None and not self.streaming:
            hit = yield Lookup(outcome)
            if hit is not None:
                if replicas:
                    drop_pool(self, provider)
                self.record(provider, "ok", time.monotonic(), 0.0)  # nothing consumed
                self.ledger.hit(hit)
                return (hit, outcome)
        over = self.ledger.over_budget(resolved, self.policy)
        if over is not None:
            if replicas:
                drop_pool(self, provider)
            self.skip(provider, over)
            return SKIPPED
        if replicas:
            pool.bound = outcome
            try:
                return (yield from pool_calls(self, pool))
            except BaseException:
                drop_pool(self, provider)  # failed: no hedge to its replicas starts after
                raise
        return (yield from self._calls(outcome))

    def _calls(self, bound: Bound) -> Steps:
        provider = bound.resolved.provider
        policy, context = self.policy, self.context
        credential = self.credential(bound.resolved)
        waited = 0.0
        error: MMSDKError | None = None
        for attempt in range(policy.retries + 1):
            timeout = self.timeout(provider)
            retry_in = context.book.admit(provider, credential,
                                          policy.breaker_threshold, policy.breaker_cooldown)
            if retry_in is not None:  # opened meanwhile (by this or another router)
                if error is not None:
                    raise error
                self.skip_open(provider, retry_in)
                return SKIPPED
            if attempt == 0:
                context.budgets.deposit(provider, policy.retry_budget)
            outcome = yield from self.attempt(bound, provider, credential, timeout, waited)
            if not isinstance(outcome, MMSDKError):
                return outcome
            error = outcome
            if context.book.open_for(provider, credential, policy.breaker_threshold,
                                     policy.breaker_cooldown) is not None:
                raise error  # this failure opened its breaker: fall back now, no wait
            waited = self.retry_wait(provider, error, attempt)
            yield Sleep(waited)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- one attempt, shared by a provider's calls and a pool's ---------------------
    def timeout(self, provider: str, error: MMSDKError | None = None) -> float | None:
        """The next attempt's timeout: ``Policy.timeout`` within what is left of the
        deadline. Once it has passed: raises *error* (the last attempt's), if any."""
        timeout = self.policy.timeout
        remaining = self.remaining()
        if remaining is not None:
            if remaining <= 0:
                if error is not None:
                    raise error
                raise ProviderTimeoutError(
                    f"The {self.policy.deadline}s deadline passed before {provider} could be "
                    "tried; raise Policy(deadline=...).", provider=provider)
            timeout = min(timeout or remaining, remaining)
        return timeout

    def attempt(self, bound: Bound, provider: str, credential: Hashable,
                timeout: float | None, waited: float, replica: Replica | None = None) -> Steps:
        """Call *bound* (*provider*) once, on *replica* of its pool if given: returns the
        outcome, or the attempt's typed error; either way recorded, billed and settled."""
        key = endpoint = None
        began = time.monotonic()
        update: dict[str, Any] = {
            "timeout": timeout, "deadline": None if timeout is None else began + timeout,
            "cancel": threading.Event()}
        if replica is not None:
            key, endpoint = replica.key, replica.shown
            update["endpoint"] = replica.url
        request = bound.request.model_copy(update=update)
        ident = next(self.ids)
        self.in_flight[ident] = InFlight(provider, credential, began, request, key, endpoint)
        try:
            outcome = yield Call(bound, request, self.streaming)
        finally:
            flight = self.in_flight.pop(ident, None)
        if flight is None:  # abandoned meanwhile: recorded and settled already
            raise CancelledError(f"{provider} was abandoned.", provider=provider)
        seconds = time.monotonic() - began
        book, threshold = self.context.book, self.policy.breaker_threshold
        if not isinstance(outcome, BaseException):
            book.settle(key or provider, credential, failed=False, threshold=threshold)
            self.record(provider, "ok", began, seconds, waited=waited,
                        usage=_usage(outcome[0]), endpoint=endpoint)
            self.ledger.bill(bound.resolved, outcome[0])
            return outcome
        error = self.normalise(outcome, provider, timeout, request)
        self.ledger.bill_error(bound.resolved, error)
        book.settle(key or provider, credential, failed=counts(error), threshold=threshold)
        skipped = isinstance(error, ProviderUnavailableError)
        self.record(provider, "skipped" if skipped else "error", began, seconds,
                    error=error, waited=waited, endpoint=endpoint)
        return error

    def retry_wait(self, provider: str, error: MMSDKError, attempt: int) -> float:
        """The wait before retrying *provider* after *error* (a retry-budget token taken);
        raises *error* when it is not retried."""
        delay = self._retry_delay(error, attempt)
        if delay is None:
            raise error
        if not self.context.budgets.withdraw(provider, self.policy.retry_budget):
            logger.info("mmsdk: not retrying %s: its retry budget is spent (falling back "
                        "at once)", provider)
            raise error
        assert self.observer is not None
        self.observer.retry(provider, type(error).__name__, delay)
        return delay

    def _local(self, provider: str) -> bool:
        return any(not isinstance(r, MMSDKError) and r.provider == provider and r.info.local
                   for r in self.candidates)

    def normalise(self, exc: BaseException, provider: str, timeout: float | None,
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
        # The plugin's own exception stays as the cause (its traceback is the bug report)
        # unless it may hold a key: an SDK or HTTP exception holds the request, and a
        # message the redactor changes named a secret.
        if not from_network(exc) and redact(str(exc)) == str(exc):
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
                assert self.observer is not None
                self.observer.fallback(error.provider or "?", type(error).__name__)
                continue
            if result is SKIPPED:
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
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.end(error)
            self.observer = _SILENT

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
        if not items[0].cached:
            self.ledger.keep(result, bound)
        costs = self.ledger.costs(result, bound)
        for item, cost in zip(items, costs, strict=True):
            if not item.cached:
                finish(item, bound)
            item.attempts = list(attempts)
            item.elapsed = elapsed
            item.usage.cost_usd = cost
        return result

    def stream_cost(self, final: Any, bound: Bound) -> float | None:
        """``usage.cost_usd`` of a stream's whole answer (and the attempts billed before it)."""
        return self.ledger.costs(final, bound)[0]


def circuit_open(provider: str, retry_in: float | None) -> CircuitOpenError:
    wait = f" for {retry_in:.1f}s more" if retry_in is not None else ""
    return CircuitOpenError(
        f"{provider} is skipped{wait}: its circuit breaker opened after repeated transient "
        "failures. Wait, or tune Policy(breaker_threshold=..., breaker_cooldown=...).",
        provider=provider, retry_after=retry_in)


def counts(error: MMSDKError) -> bool | None:
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
