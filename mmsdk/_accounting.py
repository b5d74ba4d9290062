"""What one routed call costs and keeps: billed attempts, ``max_cost_usd``, the cache.

A :class:`Ledger` belongs to one call: it counts each answer that came back
(billed, whoever wins: retries, hedges, rejected answers), sets
``usage.cost_usd`` on the result, skips a candidate over ``Policy.max_cost_usd``,
and looks the call up in (and stores it to) the router's cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cache import cache_key, restored, stored
from ._cost import cost_of, estimate, price_of
from ._errors import CapabilityError, MMSDKError
from ._jobs import Bound, Job
from ._policy import Policy
from ._registry import Resolved
from ._steps import Candidates
from ._types import Price

if TYPE_CHECKING:
    from ._run import RouteContext

__all__ = ["Ledger", "cheapest"]


@dataclass(slots=True)
class Ledger:
    """One routed call's costs and cache use."""

    job: Job
    context: RouteContext
    streaming: bool
    # (result or error, the cost of each of its items): every answer billed so far
    billed: list[tuple[Any, list[float | None]]] = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)  # id(bound) -> its cache key
    to_store: tuple[str, Any] | None = None  # (key, result) once a call answered

    # -- costs ---------------------------------------------------------------------
    def bill(self, resolved: Resolved, result: Any) -> None:
        """Count an answer that came back (the call was billed, whoever wins)."""
        if self.streaming:  # a stream's answer is counted when it ends (stream_cost)
            return
        self.billed.append((result, self._item_costs(result, resolved)))

    def bill_error(self, resolved: Resolved, error: MMSDKError) -> None:
        """Count a failed attempt whose answer arrived (billed) but was rejected."""
        usage = getattr(error, "usage", None)
        if usage is not None:
            self.billed.append((error, [cost_of(usage, price_of(resolved, self.context.prices),
                                                self.job.capability)]))

    def hit(self, result: Any) -> None:
        """Count a cache hit: nothing was consumed."""
        self.billed.append((result, [0.0] * len(result if isinstance(result, list) else [result])))

    def costs(self, result: Any, bound: Bound) -> list[float | None]:
        """``usage.cost_usd`` for each item of *result*: its own cost, plus on the first
        one what the call's other billed attempts cost (retries, hedges, rejected answers).

        The costs :meth:`bill` or :meth:`hit` counted for *result* are reused; a stream's
        whole answer (never billed) is priced here."""
        billed = list(self.billed)  # hedged lanes may still be billing
        own = next((costs for item, costs in billed if item is result), None)
        costs = list(own) if own is not None else self._item_costs(result, bound.resolved)
        others = [_total(cost) for item, cost in billed if item is not result]
        if others:
            first = costs[0]
            costs[0] = None if first is None or None in others else \
                first + sum(c or 0.0 for c in others)
        return costs

    def _item_costs(self, result: Any, resolved: Resolved) -> list[float | None]:
        price = price_of(resolved, self.context.prices)
        capability = self.job.capability
        return [0.0 if item.cached else cost_of(item.usage, price, capability)
                for item in (result if isinstance(result, list) else [result])]

    def over_budget(self, resolved: Resolved, policy: Policy) -> MMSDKError | None:
        """Why *resolved* is skipped under ``Policy(max_cost_usd=...)``, or ``None``."""
        limit = policy.max_cost_usd
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
        self.keys[id(bound)] = key
        value = self.context.cache.get(key)
        return None if value is None else restored(value, bound.request)

    def keep(self, result: Any, bound: Bound) -> None:
        """Mark a fresh answer of a repeatable call to be stored (by :meth:`store`)."""
        key = self.keys.get(id(bound))
        if key is not None:
            self.to_store = (key, result)

    def store(self) -> None:
        """Keep the answer of a repeatable call (after it was handed over)."""
        pending, self.to_store = self.to_store, None
        if pending is not None:
            self.context.cache.set(pending[0], stored(pending[1]))


def _total(costs: list[float | None]) -> float | None:
    return None if None in costs else sum(c or 0.0 for c in costs)


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
