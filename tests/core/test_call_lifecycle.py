"""What an app relies on around each call: lazy routes, bounds, cancellation, one limit.

No test here measures speed: they count calls, record order, and bound waits
by generous multiples of the configured timeouts.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import mmsdk
from mmsdk.testing import TestProvider

FAST = mmsdk.Policy(backoff=0)


# -- lazy routing -------------------------------------------------------------
def test_a_route_answered_by_its_first_candidate_never_checks_or_prepares_the_rest(
        primary: TestProvider, png_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    with TestProvider("later", available=False, limits=mmsdk._types.MediaLimits(
            formats=("jpeg",), max_long_edge=8)) as later:
        original = later._check
        monkeypatch.setattr(later, "_check", lambda model: checked.append(model) or original(model))
        router = mmsdk.Router(["primary:m", "later:m"])
        for _ in range(3):
            result = router.understand("hi", images=[png_bytes])
    assert checked == []  # never asked whether it is available
    assert [(a.provider, a.outcome) for a in result.attempts] == [("primary:m", "ok")]
    assert [s.format for s in result.sent] == [None]  # prepared for primary only


def test_a_later_candidate_is_checked_only_when_the_route_reaches_it(
        primary: TestProvider, backup: TestProvider) -> None:
    primary.failures = [mmsdk.AuthenticationError]
    with TestProvider("offline", available=False):
        result = mmsdk.Router(["primary:m", "offline:m", "backup:m"], FAST).understand("hi")
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary:m", "error"), ("offline:m", "skipped"), ("backup:m", "ok")]
    starts = [a.started for a in result.attempts]
    assert starts == sorted(starts)


# -- hedging and cancellation -------------------------------------------------------
def test_a_hedged_loser_is_recorded_as_abandoned_and_stops(primary: TestProvider,
                                                           backup: TestProvider) -> None:
    primary.latency = 30.0  # stops early only if its cancel event is set
    router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = router.understand("x")
    assert result.provider == "backup:m"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary:m", "abandoned"), ("backup:m", "ok")]
    assert primary.calls[0].cancel is not None and primary.calls[0].cancel.is_set()


async def test_async_hedging_abandons_and_stops_the_loser(primary: TestProvider,
                                                          backup: TestProvider) -> None:
    primary.latency = 30.0
    router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = await router.aunderstand("x")
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary:m", "abandoned"), ("backup:m", "ok")]
    assert primary.calls[0].cancel is not None and primary.calls[0].cancel.is_set()


async def test_cancelling_an_async_call_stops_its_local_work(backup: TestProvider) -> None:
    backup.latency = 30.0
    task = asyncio.ensure_future(mmsdk.aunderstand("long", provider="backup:m"))
    while not backup.calls:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancel = backup.calls[0].cancel
    assert cancel is not None and cancel.is_set()
    # The model's worker thread is free again: the next call is not queued behind 30 s of work.
    backup.latency = 0.0
    result = await asyncio.wait_for(mmsdk.aunderstand("next", provider="backup:m"), 10)
    assert result.text.startswith("echo: next")


async def test_a_deadline_bounds_an_async_call_and_abandons_the_attempt(
        backup: TestProvider) -> None:
    backup.latency = 30.0
    policy = mmsdk.Policy(deadline=0.2)
    started = time.monotonic()
    with pytest.raises(mmsdk.ProviderTimeoutError) as info:
        await mmsdk.Router("backup:m", policy).aunderstand("x")
    assert time.monotonic() - started < 0.2 + 10  # bounded by the deadline, not the 30 s
    assert [a.outcome for a in info.value.attempts] == ["abandoned"]
    assert backup.calls[0].cancel is not None and backup.calls[0].cancel.is_set()


def test_the_timeout_counts_from_the_start_of_the_attempt(backup: TestProvider) -> None:
    router = mmsdk.Router("backup:m", mmsdk.Policy(timeout=5.0, retries=0))
    before = time.monotonic()
    router.understand("x")
    request = backup.calls[0]
    assert request.timeout == 5.0
    assert request.deadline is not None and before <= request.deadline - 5.0 <= time.monotonic()


def test_a_sync_call_past_its_timeout_fails_with_a_timeout(backup: TestProvider) -> None:
    backup.latency = 30.0
    with pytest.raises(mmsdk.ProviderTimeoutError):
        mmsdk.Router("backup:m", mmsdk.Policy(timeout=0.2, retries=0)).understand("x")
    assert len(backup.calls) == 1


# -- one concurrency limit --------------------------------------------------------------
class _Peak:
    """Counts calls in flight inside a TestProvider."""

    def __init__(self, provider: TestProvider) -> None:
        self.active = self.peak = 0
        self._lock = threading.Lock()
        original = provider._begin

        def counting(request: object) -> None:
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                original(request)  # type: ignore[arg-type]
            finally:
                with self._lock:
                    self.active -= 1

        provider._begin = counting  # type: ignore[method-assign]


async def test_max_concurrency_is_shared_by_sync_and_async_calls(primary: TestProvider) -> None:
    primary.latency = 0.05
    peak = _Peak(primary)
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=2))
    threads = [threading.Thread(target=router.understand, args=("x",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(router.aunderstand("y") for _ in range(3)))
    for thread in threads:
        thread.join()
    assert peak.peak == 2 and len(primary.calls) == 6


def test_a_stream_holds_its_slot_until_it_ends(primary: TestProvider) -> None:
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=1, deadline=0.3))
    stream = router.understand("one two three", stream=True)
    assert next(stream) == "echo: "
    with pytest.raises(mmsdk.ProviderTimeoutError, match="max_concurrency"):
        router.understand("blocked while the stream is open")
    assert stream.text().startswith("echo: one two three")
    assert router.understand("free again").provider == "primary:m"


async def test_an_async_stream_holds_its_slot_until_closed(primary: TestProvider) -> None:
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=1, deadline=0.3))
    stream = await router.aunderstand("one two three", stream=True)
    assert await stream.__anext__() == "echo: "
    with pytest.raises(mmsdk.ProviderTimeoutError, match="max_concurrency"):
        await router.aunderstand("blocked")
    await stream.aclose()
    assert (await router.aunderstand("free again")).provider == "primary:m"


def test_a_router_works_on_every_event_loop(primary: TestProvider) -> None:
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=1))

    async def two() -> list[str]:
        results = await asyncio.gather(router.aunderstand("a"), router.aunderstand("b"))
        return [r.text for r in results]

    assert len(asyncio.run(two())) == 2
    assert len(asyncio.run(two())) == 2  # a second loop: no RuntimeError
    assert len(primary.calls) == 4


async def test_a_cancelled_waiter_does_not_lose_the_slot(primary: TestProvider) -> None:
    primary.latency = 0.1
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=1))
    first = asyncio.ensure_future(router.aunderstand("first"))
    await asyncio.sleep(0.02)
    waiting = asyncio.ensure_future(router.aunderstand("second"))
    await asyncio.sleep(0.02)
    waiting.cancel()
    await first
    result = await asyncio.wait_for(router.aunderstand("third"), 10)
    assert result.text.startswith("echo: third")


# -- caller mistakes ---------------------------------------------------------------------
@pytest.mark.parametrize("provider", [42, {"openai": 1}, b"openai", [1, 2], []],
                         ids=["int", "dict", "bytes", "list-of-ints", "empty-list"])
def test_a_provider_of_the_wrong_type_is_an_invalid_input(provider: object) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="provider must be"):
        mmsdk.understand("hi", provider=provider)  # type: ignore[arg-type]


def test_a_policy_of_the_wrong_type_is_an_invalid_input() -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="policy must be"):
        mmsdk.Router("openai", policy={"timeout": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("values", [{"timeout": -1}, {"retries": "many"}, {"order": "random"},
                                    {"deadline": float("nan")}, {"hedge_after": float("inf")},
                                    {"unknown": 1}, {"retries": "2"}, {"timeout": True},
                                    {"max_cost_usd": "0.5"}],
                         ids=["negative", "wrong-type", "unknown-order", "nan", "inf", "extra",
                              "number-as-text", "bool-as-number", "cost-as-text"])
def test_a_bad_policy_is_an_invalid_input_not_a_validation_error(values: dict[str, object]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="Invalid Policy") as info:
        mmsdk.Policy(**values)  # type: ignore[arg-type]
    assert info.value.__cause__ is None and info.value.__suppress_context__
