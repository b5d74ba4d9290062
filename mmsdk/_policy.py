"""Routing policy: which providers to try, in what order, and how hard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import InvalidInputError

__all__ = ["Policy"]


class Policy(BaseModel):
    """How a :class:`mmsdk.Router` picks providers and reacts to failures.

    Attributes:
        order: ``"given"`` (list order), ``"local_first"``, ``"cloud_first"``,
            ``"cheapest"`` (by the call's estimated cost, from the providers'
            prices; unknown prices last, ties by ``cost_hint``) or ``"fastest"``
            (by the providers' declared ``speed_hint``).
        local_only: skip every provider that would send data off this machine.
        timeout: seconds per attempt, counted from its start (waiting for a
            busy local model and loading it included), passed down to the
            SDK or pipeline.
        deadline: seconds for the whole call: reading inputs, retries and
            fallbacks included.
        retries: extra attempts per provider on transient errors (rate limit,
            5xx, overload, timeout, connection).
        backoff: first retry delay in seconds when the server gives no
            ``Retry-After``; doubles per retry.
        max_retry_after: longest ``Retry-After`` honoured; a longer one moves
            on to the next provider at once.
        hedge_after: seconds after which the next provider is started in
            parallel if the current one has not answered; the first answer wins
            and the slower call is stopped (local work at its next step, an
            async HTTP request closed) and recorded as ``"abandoned"``. Streams
            are not hedged: they fall back only before their first chunk.
        fallback_on_policy_refusal: fall back when a provider refuses on
            content-policy grounds (off: the refusal is raised).
        max_concurrency: calls in flight at once through this router.
        breaker_threshold: consecutive transient failures after which a
            provider is skipped for ``breaker_cooldown`` seconds (then one
            probe call is let through). ``None`` disables the breaker here.
        breaker_cooldown: seconds an open breaker skips its provider.
        retry_budget: retries may add at most this fraction to a provider's
            requests (a token bucket with 5 retries in reserve); past it,
            transient failures fall back at once. ``None`` disables it.
        max_cost_usd: skip providers whose estimated cost for the call exceeds
            this (estimated with ``max_tokens``, or 1,024 output tokens when
            unset; see "Costs and budgets" in the README), and providers whose
            price is unknown. Each skip is an attempt saying why. A cached
            answer is served whatever its provider's estimate (it costs nothing).
        lenient: drop first-class options a provider cannot honour and report
            them in ``result.warnings`` instead of raising ``CapabilityError``.

    Example:
        >>> import mmsdk
        >>> policy = mmsdk.Policy(order="local_first", retries=2, deadline=30)
    """

    # strict: retries="2" or timeout=True is a mistake, not a number
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'Policy'}: {e['msg']}"
                                 for e in exc.errors(include_url=False))
            raise InvalidInputError(f"Invalid Policy: {problems}.") from None

    order: Literal["given", "local_first", "cloud_first", "cheapest", "fastest"] = "given"
    local_only: bool = False
    timeout: float | None = Field(default=None, gt=0)
    deadline: float | None = Field(default=None, gt=0)
    retries: int = Field(default=1, ge=0, le=10)
    backoff: float = Field(default=0.25, ge=0)
    max_retry_after: float = Field(default=30.0, ge=0)
    hedge_after: float | None = Field(default=None, ge=0)
    fallback_on_policy_refusal: bool = False
    max_concurrency: int | None = Field(default=None, ge=1)
    breaker_threshold: int | None = Field(default=5, ge=1)
    breaker_cooldown: float = Field(default=30.0, ge=0)
    retry_budget: float | None = Field(default=0.2, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    lenient: bool = False
