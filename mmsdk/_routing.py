"""Routing: try candidate providers in policy order, retry and fall back.

The decisions (skip, retry, wait for ``Retry-After``, fall back, give up) live
in one place, :class:`_Run`, written as generators that *yield* steps
(:class:`_Call`, :class:`_Sleep`) and receive outcomes. A sync driver and an
async driver execute the steps, so both paths follow exactly the same rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ._errors import (
    AllProvidersFailedError,
    CapabilityError,
    ContentPolicyError,
    InvalidInputError,
    MMSDKError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    UnknownProviderError,
)
from ._jobs import Bound, Job, Skip, acall, astream, call, check_model, finish, stream
from ._policy import Policy
from ._registry import Registry, Resolved
from ._types import Attempt

__all__ = ["Opened", "aexecute", "execute"]

_CALLER_MISTAKES = (InvalidInputError, UnknownProviderError, CapabilityError)


@dataclass
class _Call:
    bound: Bound
    request: Any
    streaming: bool


@dataclass
class _Sleep:
    seconds: float


@dataclass
class Opened:
    """A stream that produced its first event: routing is settled from here on."""

    first: Any
    iterator: Any
    bound: Bound
    run: _Run


Steps = Generator[Any, Any, Any]
Candidates = list[Resolved | ProviderUnavailableError]


class _Run:
    """The state of one routed call: candidates, attempts, clock."""

    def __init__(self, job: Job, candidates: Candidates, policy: Policy,
                 registry: Registry, streaming: bool) -> None:
        self.job = job
        self.candidates = candidates
        self.policy = policy
        self.registry = registry
        self.streaming = streaming
        self.attempts: list[Attempt] = []
        self.started = time.monotonic()
        self.errors: list[MMSDKError] = []

    # -- planning ---------------------------------------------------------
    def bound_candidates(self) -> list[Bound]:
        """Bind every candidate; skipped ones are recorded and left out."""
        bounds: list[Bound] = []
        for resolved in self.candidates:
            if isinstance(resolved, MMSDKError):  # plugin not installed
                self._skip(resolved.provider or "?", resolved)
                continue
            if self.policy.local_only and not resolved.info.local:
                self._skip(resolved.provider, CapabilityError(
                    f"{resolved.provider} sends data off this machine and the policy is "
                    "local_only.", provider=resolved.provider))
                continue
            try:
                loaded = self.registry.is_loaded(resolved.provider)
                bounds.append(self.job.bind(resolved, lenient=self.policy.lenient,
                                            check=not loaded))
            except Skip as skip:
                if isinstance(skip.error, ProviderUnavailableError):
                    self.registry.forget(resolved.provider)
                self._skip(resolved.provider, skip.error)
        # An options key no candidate accepts is the caller's mistake, not a skip.
        if not bounds and self.errors and all(isinstance(e, InvalidInputError)
                                              for e in self.errors):
            raise self.attach(self.errors[0])
        return bounds

    def _skip(self, provider: str, error: MMSDKError) -> None:
        self.attempts.append(Attempt.model_construct(provider=provider, outcome="skipped",
                                                     error=error.message, seconds=0.0))
        self.errors.append(error)

    def remaining(self) -> float | None:
        if self.policy.deadline is None:
            return None
        return self.policy.deadline - (time.monotonic() - self.started)

    # -- one candidate, with retries ---------------------------------------
    def candidate(self, bound: Bound) -> Steps:
        """Steps for one provider: call, and retry transient failures. Returns a result."""
        provider = bound.resolved.provider
        for attempt in range(self.policy.retries + 1):
            timeout = self.policy.timeout
            remaining = self.remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise ProviderTimeoutError(
                        f"The {self.policy.deadline}s deadline passed before {provider} could be "
                        "tried; raise Policy(deadline=...).", provider=provider)
                timeout = min(timeout or remaining, remaining)
            request = bound.request if timeout is None else \
                bound.request.model_copy(update={"timeout": timeout})
            began = time.monotonic()
            outcome = yield _Call(bound, request, self.streaming)
            seconds = time.monotonic() - began
            if not isinstance(outcome, BaseException):
                self.attempts.append(Attempt.model_construct(provider=provider, outcome="ok",
                                                             error=None, seconds=seconds))
                return outcome
            error = self._normalise(outcome, provider)
            skipped = isinstance(error, ProviderUnavailableError)
            self.attempts.append(Attempt.model_construct(
                provider=provider, outcome="skipped" if skipped else "error",
                error=f"{type(error).__name__}: {error.message}", seconds=seconds))
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise error
            yield _Sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _normalise(self, exc: BaseException, provider: str) -> MMSDKError:
        if isinstance(exc, MMSDKError):
            if exc.provider is None:
                exc.provider = provider
            return exc
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt, SystemExit, CancelledError
        wrapped = ProviderError(
            f"{provider} failed unexpectedly: {type(exc).__name__}: {exc}. This is a bug in "
            "its plugin; please report it.", provider=provider)
        wrapped.__cause__ = exc
        return wrapped

    def _retry_delay(self, error: MMSDKError, attempt: int) -> float | None:
        if not isinstance(error, ProviderError) or not error.transient:
            return None
        if attempt >= self.policy.retries:
            return None
        delay: float = self.policy.backoff * 2.0 ** attempt
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.policy.max_retry_after:
                return None
            delay = float(error.retry_after)
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            return None
        return delay

    # -- every candidate in order ----------------------------------------------
    def sequential(self, bounds: list[Bound]) -> Steps:
        for bound in bounds:
            try:
                result = yield from self.candidate(bound)
            except MMSDKError as error:
                self.errors.append(error)
                if not self.falls_back(error):
                    raise self.attach(error) from None
                continue
            return self.finished(result, bound)
        raise self.give_up()

    def falls_back(self, error: MMSDKError) -> bool:
        if isinstance(error, _CALLER_MISTAKES):
            return False
        if isinstance(error, ContentPolicyError):
            return self.policy.fallback_on_policy_refusal
        return isinstance(error, (ProviderError, ProviderUnavailableError))

    def attach(self, error: MMSDKError) -> MMSDKError:
        error.attempts = list(self.attempts)
        return error

    def give_up(self) -> MMSDKError:
        if len(self.candidates) == 1 and self.errors:
            return self.attach(self.errors[-1])
        return AllProvidersFailedError(self.attempts, self.job.capability.value)

    def finished(self, result: Any, bound: Bound) -> Any:
        if self.streaming:
            first, iterator = result
            return Opened(first, iterator, bound, self)
        elapsed = time.monotonic() - self.started
        for item in result if isinstance(result, list) else [result]:
            finish(item, bound)
            item.attempts = list(self.attempts)
            item.elapsed = elapsed
        return result


# -- drivers -------------------------------------------------------------------
def _drive(steps: Steps, registry: Registry, capability: Any) -> Any:
    outcome: Any = None
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, _Sleep):
            time.sleep(step.seconds)
            outcome = None
            continue
        try:
            model = registry.model(step.bound.resolved)
            check_model(model, capability, step.bound.resolved.provider)
            if step.streaming:
                iterator = iter(stream(model, step.request))
                outcome = (next(iterator), iterator)
            else:
                outcome = call(model, capability, step.request)
        except BaseException as exc:  # handed to the step generator, which decides
            outcome = exc


async def _adrive(steps: Steps, registry: Registry, capability: Any) -> Any:
    outcome: Any = None
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, _Sleep):
            await asyncio.sleep(step.seconds)
            outcome = None
            continue
        try:
            model = registry.model(step.bound.resolved)
            check_model(model, capability, step.bound.resolved.provider)
            if step.streaming:
                iterator = astream(model, step.request).__aiter__()
                outcome = (await iterator.__anext__(), iterator)
            else:
                outcome = await acall(model, capability, step.request)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            outcome = exc


def _hedged(run: _Run, bounds: list[Bound]) -> Any:
    """Start the next candidate whenever ``hedge_after`` passes without an answer."""
    assert run.policy.hedge_after is not None
    pool = ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="mmsdk-hedge")
    pending: dict[Future[Any], Bound] = {}
    queue = list(bounds)
    try:
        while queue or pending:
            if queue:
                bound = queue.pop(0)
                steps = run.candidate(bound)
                pending[pool.submit(_drive, steps, run.registry, run.job.capability)] = bound
            timeout = run.policy.hedge_after if queue else None
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                bound = pending.pop(future)
                error = future.exception()
                if error is None:
                    return run.finished(future.result(), bound)
                assert isinstance(error, MMSDKError)
                run.errors.append(error)
                if not run.falls_back(error):
                    raise run.attach(error)
        raise run.give_up()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


async def _ahedged(run: _Run, bounds: list[Bound]) -> Any:
    assert run.policy.hedge_after is not None
    pending: dict[asyncio.Task[Any], Bound] = {}
    queue = list(bounds)
    try:
        while queue or pending:
            if queue:
                bound = queue.pop(0)
                task = asyncio.ensure_future(_adrive(run.candidate(bound), run.registry,
                                                     run.job.capability))
                pending[task] = bound
            timeout = run.policy.hedge_after if queue else None
            done, _ = await asyncio.wait(pending, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                bound = pending.pop(task)
                error = task.exception()
                if error is None:
                    return run.finished(task.result(), bound)
                assert isinstance(error, MMSDKError)
                run.errors.append(error)
                if not run.falls_back(error):
                    raise run.attach(error)
        raise run.give_up()
    finally:
        for task in pending:
            task.cancel()


def _start(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
           streaming: bool) -> tuple[_Run, list[Bound]]:
    run = _Run(job, candidates, policy, registry, streaming)
    bounds = run.bound_candidates()
    if not bounds:
        raise run.give_up()
    return run, bounds


def execute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
            *, streaming: bool = False) -> Any:
    """Run *job* on the first candidate that succeeds (sync)."""
    run, bounds = _start(job, candidates, policy, registry, streaming)
    if policy.hedge_after is not None and len(bounds) > 1 and not streaming:
        return _hedged(run, bounds)
    return _drive(run.sequential(bounds), registry, job.capability)


async def aexecute(job: Job, candidates: Candidates, policy: Policy, registry: Registry,
                   *, streaming: bool = False) -> Any:
    """Run *job* on the first candidate that succeeds (async)."""
    run, bounds = _start(job, candidates, policy, registry, streaming)
    if policy.hedge_after is not None and len(bounds) > 1 and not streaming:
        return await _ahedged(run, bounds)
    return await _adrive(run.sequential(bounds), registry, job.capability)
