"""What routing remembers between calls: circuit breakers and retry budgets.

**Breakers.** The *facts* about a provider (consecutive transient failures,
when the last one happened, whether a half-open probe is in flight, calls in
flight) are kept once per process, per provider string (or pooled endpoint)
and per credential, so every router sees the same outage. Each router applies
its own ``Policy.breaker_threshold`` and ``Policy.breaker_cooldown`` to those
facts: after *threshold* consecutive transient failures the provider is open
(skipped) for *cooldown* seconds, then one probe call is let through
(half-open); its success closes the breaker, its failure opens it again.

**Retry budgets.** A token bucket per router and provider, in the manner of
gRPC retry throttling and Finagle's ``RetryBudget``: it starts with
:data:`RESERVE` retries, each first attempt adds ``Policy.retry_budget``, each
retry takes one, and at most :data:`MAX_TOKENS` are held. With the bucket
empty a transient failure falls back at once instead of retrying, so retries
add at most that fraction to the load on a provider that is down.

**Replica pools.** A pool's replicas (``ModelInfo.endpoints``) each have their
own facts, named ``"NAME:MODEL@BASE_URL"``, so a failing replica is ejected
through its own breaker while its siblings keep serving (in the manner of
Envoy's outlier detection). :meth:`HealthBook.pick` chooses the replica for an
attempt among those not open, and admits it in the same step:
``"least_in_flight"`` takes the less busy of two random replicas (the "power of
two choices"; on a tie, the one chosen less recently), ``"round_robin"`` the
one chosen least recently.

Time comes from :func:`time.monotonic` and chance from :class:`random.Random`
unless a test hands the book a clock or an ``rng``.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

__all__ = ["MAX_TOKENS", "RESERVE", "HealthBook", "ProviderHealth", "RetryBudgets", "health_book",
           "new_budgets", "reset_health"]

logger = logging.getLogger("mmsdk.routing")

RESERVE = 5.0
MAX_TOKENS = 10.0

State = Literal["closed", "open", "half_open"]
Balance = Literal["least_in_flight", "round_robin"]


class ProviderHealth(BaseModel):
    """What the breaker knows of one provider (or one endpoint of a pool).

    Attributes:
        state: ``"closed"`` (calls go through), ``"open"`` (skipped until
            ``retry_in`` passes) or ``"half_open"`` (one probe may go through).
        consecutive_failures: transient failures since the last success.
        retry_in: seconds until an open breaker lets a probe through, else ``None``.
        in_flight: calls to it in flight now, from every router in the process.
    """

    state: State
    consecutive_failures: int
    retry_in: float | None
    in_flight: int


@dataclass
class _Facts:
    failures: int = 0
    last_failure: float = 0.0
    probing: bool = False
    in_flight: int = 0
    picked: int = 0  # when pick() last chose it (a sequence number; 0: never)


_UNCALLED = _Facts()  # what pick() reads for a replica never called (never written)


class HealthBook:
    """The process-wide breaker facts, keyed by ``(provider, credential)``.

    Attributes:
        clock: where time comes from (``time.monotonic``).
        rng: what ``"least_in_flight"`` samples replicas with.
        choices: how many random replicas ``"least_in_flight"`` compares: 2, the
            "power of two choices"; ``None`` compares every healthy replica.
    """

    choices: int | None = 2

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self._facts: dict[tuple[str, Hashable], _Facts] = {}
        self._lock = threading.Lock()
        self._picks = itertools.count(1)

    def _state(self, facts: _Facts, threshold: int, cooldown: float,
               now: float) -> tuple[State, float | None]:
        if facts.failures < threshold:
            return "closed", None
        retry_in = facts.last_failure + cooldown - now
        if retry_in > 0:
            return "open", retry_in
        return "half_open", None

    def open_for(self, provider: str, credential: Hashable, threshold: int | None,
                 cooldown: float) -> float | None:
        """Seconds until an open breaker lets a probe through; ``None`` when not open."""
        if threshold is None:
            return None
        facts = self._facts.get((provider, credential))
        if facts is None or facts.failures < threshold:  # the common case, without the lock
            return None
        with self._lock:
            state, retry_in = self._state(facts, threshold, cooldown, self.clock())
        return retry_in if state == "open" else None

    def admit(self, provider: str, credential: Hashable, threshold: int | None,
              cooldown: float) -> float | None:
        """Let a call through (``None``), or say in how many seconds it may be tried.

        A half-open breaker admits one probe at a time; the others wait as if open.
        """
        with self._lock:
            facts = self._facts.setdefault((provider, credential), _Facts())
            if threshold is not None:
                state, retry_in = self._state(facts, threshold, cooldown, self.clock())
                if state == "open":
                    return retry_in
                if state == "half_open":
                    if facts.probing:
                        return max(cooldown / 10, 0.1)  # a probe is deciding; ask again soon
                    facts.probing = True
            facts.in_flight += 1
            return None

    def pick(self, replicas: Sequence[str], credential: Hashable, threshold: int | None,
             cooldown: float, *, balance: Balance = "least_in_flight",
             exclude: Collection[str] = ()) -> tuple[str | None, float | None]:
        """Choose one replica of a pool for a call and admit it, as :meth:`admit` does.

        Args:
            replicas: the replicas' names (``"NAME:MODEL@BASE_URL"``), in declared order.
            exclude: replicas this call is using or has just seen fail.

        Returns:
            ``(replica, None)``, or ``(None, seconds)`` when none can take a call:
            every one is excluded, open or probing (*seconds*: until the soonest
            may be tried; ``None`` when all were excluded).
        """
        with self._lock:
            now = self.clock()
            ready: list[tuple[int, str, _Facts, bool]] = []  # order, name, facts, probe
            soonest: float | None = None
            for order, name in enumerate(replicas):
                if name in exclude:
                    continue
                facts = self._facts.get((name, credential), _UNCALLED)
                probe = False
                if threshold is not None and facts.failures >= threshold:
                    state, retry_in = self._state(facts, threshold, cooldown, now)
                    if state == "half_open" and facts.probing:
                        state, retry_in = "open", max(cooldown / 10, 0.1)
                    if state == "open":
                        assert retry_in is not None
                        soonest = retry_in if soonest is None else min(soonest, retry_in)
                        continue
                    probe = True
                ready.append((order, name, facts, probe))
            if not ready:
                return None, soonest
            if balance == "round_robin" or len(ready) == 1:
                chosen = min(ready, key=lambda r: (r[2].picked, r[0]))
            else:  # power of two choices: the less busy of two random replicas
                choices = self.choices
                sample = ready if choices is None or choices >= len(ready) \
                    else self.rng.sample(ready, choices)
                chosen = min(sample, key=lambda r: (r[2].in_flight, r[2].picked, r[0]))
            _, name, _, probe = chosen
            facts = self._facts.setdefault((name, credential), _Facts())
            facts.probing = facts.probing or probe
            facts.in_flight += 1
            facts.picked = next(self._picks)
            return name, None

    def ready(self, replicas: Sequence[str], credential: Hashable, threshold: int | None,
              cooldown: float, exclude: Collection[str] = ()) -> bool:
        """Whether :meth:`pick` would find a replica now (it admits nothing)."""
        for name in replicas:
            if name in exclude:
                continue
            facts = self._facts.get((name, credential))
            if threshold is None or facts is None or facts.failures < threshold:
                return True
            with self._lock:
                state, _ = self._state(facts, threshold, cooldown, self.clock())
                if state == "half_open" and not facts.probing:
                    return True
        return False

    def open_for_all(self, replicas: Sequence[str], credential: Hashable,
                     threshold: int | None, cooldown: float) -> float | None:
        """Seconds until the first of a pool's replicas may be tried when every one is open;
        ``None`` when any is not."""
        soonest: float | None = None
        for name in replicas:
            retry_in = self.open_for(name, credential, threshold, cooldown)
            if retry_in is None:
                return None
            soonest = retry_in if soonest is None else min(soonest, retry_in)
        return soonest

    def settle(self, provider: str, credential: Hashable, *, failed: bool | None,
               threshold: int | None) -> None:
        """Record how an admitted call ended.

        Args:
            failed: ``True`` for a transient failure, ``False`` for a success,
                ``None`` for an outcome that says nothing of the provider's
                health (a caller mistake, a cancelled call, a local queue timeout).
            threshold: the caller's threshold, to log the moment a breaker opens.
        """
        with self._lock:
            facts = self._facts.setdefault((provider, credential), _Facts())
            facts.in_flight = max(0, facts.in_flight - 1)
            probe, facts.probing = facts.probing, False
            if failed is None:
                return
            if not failed:
                facts.failures = 0
                return
            facts.failures += 1
            facts.last_failure = self.clock()
            opened = threshold is not None and (facts.failures == threshold or probe)
        if opened:
            logger.warning("mmsdk: circuit breaker for %s opened after %d consecutive "
                           "transient failure(s)", provider, facts.failures)

    def health(self, provider: str, credential: Hashable, threshold: int | None,
               cooldown: float) -> ProviderHealth:
        with self._lock:
            facts = self._facts.get((provider, credential), _Facts())
            state, retry_in = ("closed", None) if threshold is None else \
                self._state(facts, threshold, cooldown, self.clock())
            return ProviderHealth(state=state, consecutive_failures=facts.failures,
                                  retry_in=retry_in, in_flight=facts.in_flight)

    def providers(self, credential: Hashable = None) -> list[str]:
        """Provider strings with facts recorded (for one credential)."""
        with self._lock:
            return sorted(p for p, c in self._facts if c == credential)

    def clear(self) -> None:
        with self._lock:
            self._facts.clear()


class RetryBudgets:
    """One token bucket per provider, for one router."""

    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def deposit(self, provider: str, budget: float | None) -> None:
        """A first attempt was made: it earns *budget* of a retry."""
        if budget is None:
            return
        with self._lock:
            self._tokens[provider] = min(MAX_TOKENS,
                                         self._tokens.get(provider, RESERVE) + budget)

    def withdraw(self, provider: str, budget: float | None) -> bool:
        """Take one retry; ``False`` when the bucket cannot pay for it."""
        if budget is None:
            return True
        with self._lock:
            tokens = self._tokens.get(provider, RESERVE)
            if tokens < 1.0:
                return False
            self._tokens[provider] = tokens - 1.0
            return True

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_book = HealthBook()
_budgets: weakref.WeakSet[RetryBudgets] = weakref.WeakSet()  # every router's, for reset_health
_budgets_lock = threading.Lock()


def health_book() -> HealthBook:
    """The process-wide breaker facts."""
    return _book


def new_budgets() -> RetryBudgets:
    """A router's retry budgets, registered for :func:`reset_health`."""
    budgets = RetryBudgets()
    with _budgets_lock:
        _budgets.add(budgets)
    return budgets


def reset_health() -> None:
    """Forget every breaker fact and refill every retry budget (tests call it between tests)."""
    _book.clear()
    with _budgets_lock:
        budgets = list(_budgets)
    for bucket in budgets:
        bucket.clear()
