"""Routing: skips without calls, retries on transient errors, falls back, reports every attempt."""

from __future__ import annotations

import time

import pytest

import mmsdk
from mmsdk.testing import TestProvider

FAST = mmsdk.Policy(backoff=0)


@pytest.mark.parametrize(
    "failure",
    [mmsdk.RateLimitError, mmsdk.ProviderServerError, mmsdk.ProviderTimeoutError,
     mmsdk.ProviderConnectionError],
    ids=["rate-limit", "server", "timeout", "connection"],
)
def test_transient_failures_retry_then_fall_back(primary: TestProvider, backup: TestProvider,
                                                 failure: type[mmsdk.ProviderError]) -> None:
    primary.failures = [failure, failure]
    result = mmsdk.Router(["primary:m", "backup:m"], FAST).understand("hi")
    assert result.provider == "backup:m"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary:m", "error"), ("primary:m", "error"), ("backup:m", "ok")]
    assert failure.__name__ in (result.attempts[0].error or "")
    assert len(primary.calls) == 2


def test_a_retry_that_succeeds_stays_on_the_provider(primary: TestProvider,
                                                     backup: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError("503", provider="primary")]
    result = mmsdk.understand("hi", provider=mmsdk.Router(["primary:m", "backup:m"], FAST))
    assert result.provider == "primary:m"
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert backup.calls == []


def test_retry_after_is_honoured(primary: TestProvider) -> None:
    primary.failures = [mmsdk.RateLimitError("slow down", retry_after=0.2)]
    started = time.monotonic()
    result = mmsdk.Router("primary:m", FAST).understand("hi")
    assert time.monotonic() - started >= 0.2
    assert result.provider == "primary:m"


def test_a_long_retry_after_moves_on_at_once(primary: TestProvider, backup: TestProvider) -> None:
    primary.failures = [mmsdk.RateLimitError("come back in an hour", retry_after=3600)]
    policy = mmsdk.Policy(max_retry_after=5)
    result = mmsdk.Router(["primary:m", "backup:m"], policy).understand("hi")
    assert result.provider == "backup:m"
    assert len(primary.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [mmsdk.InvalidInputError("bad image"), mmsdk.CapabilityError("cannot"),
     mmsdk.CancelledError("stopped by the caller")],
    ids=["invalid-input", "capability", "cancelled"],
)
def test_caller_mistakes_surface_at_once(primary: TestProvider, backup: TestProvider,
                                         failure: mmsdk.MMSDKError) -> None:
    primary.failures = [failure]
    with pytest.raises(type(failure)) as info:
        mmsdk.Router(["primary:m", "backup:m"], FAST).understand("hi")
    assert backup.calls == [] and len(primary.calls) == 1
    assert [a.outcome for a in info.value.attempts] == ["error"]


def test_non_transient_provider_errors_fall_back_without_retry(
        primary: TestProvider, backup: TestProvider) -> None:
    primary.failures = [mmsdk.AuthenticationError("bad key")]
    result = mmsdk.Router(["primary:m", "backup:m"], FAST).understand("hi")
    assert result.provider == "backup:m" and len(primary.calls) == 1


def test_content_policy_refusal_falls_back_only_when_asked(
        primary: TestProvider, backup: TestProvider) -> None:
    primary.failures = [mmsdk.ContentPolicyError("refused")]
    with pytest.raises(mmsdk.ContentPolicyError):
        mmsdk.Router(["primary:m", "backup:m"], FAST).understand("hi")
    primary.failures = [mmsdk.ContentPolicyError("refused")]
    policy = mmsdk.Policy(fallback_on_policy_refusal=True)
    assert mmsdk.Router(["primary:m", "backup:m"], policy).understand("hi").provider == "backup:m"


def test_unavailable_and_incapable_providers_are_skipped_without_a_call(
        backup: TestProvider) -> None:
    with TestProvider("offline", available=False) as offline, \
            TestProvider("textonly", capabilities=[mmsdk.Capability.CLASSIFY]) as textonly:
        result = mmsdk.Router(["offline:m", "textonly:m", "backup:m"]).understand("hi")
        assert offline.calls == [] and textonly.calls == []
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("offline:m", "skipped"), ("textonly:m", "skipped"), ("backup:m", "ok")]
    assert "available=False" in (result.attempts[0].error or "")
    assert "cannot understand" in (result.attempts[1].error or "")


def test_a_lone_unavailable_provider_raises_with_its_fix() -> None:
    with TestProvider("offline", available=False), \
            pytest.raises(mmsdk.ProviderUnavailableError, match="Fix: create the TestProvider"):
        mmsdk.understand("hi", provider="offline:m")


def test_everything_failing_lists_every_attempt(primary: TestProvider,
                                                backup: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 2
    backup.failures = [mmsdk.AuthenticationError]
    with TestProvider("offline", available=False), pytest.raises(mmsdk.AllProvidersFailedError) as info:
        mmsdk.Router(["primary:m", "offline:m", "backup:m"], FAST).understand("hi")
    error = info.value
    assert [(a.provider, a.outcome) for a in error.attempts] == [
        ("primary:m", "error"), ("primary:m", "error"), ("offline:m", "skipped"),
        ("backup:m", "error")]  # in the order they happened
    for provider in ("primary:m", "offline:m", "backup:m"):
        assert provider in str(error)


def test_a_lone_provider_raises_its_own_error(primary: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 2
    with pytest.raises(mmsdk.ProviderServerError) as info:
        mmsdk.Router("primary:m", FAST).understand("hi")
    assert len(info.value.attempts) == 2


def test_local_only_keeps_data_on_the_machine(primary: TestProvider, backup: TestProvider) -> None:
    result = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(local_only=True)).understand("x")
    assert result.provider == "backup:m" and primary.calls == []
    assert "local_only" in (result.attempts[0].error or "")


@pytest.mark.parametrize(
    ("order", "first"),
    [("given", "primary:m"), ("local_first", "backup:m"), ("cloud_first", "primary:m"),
     ("cheapest", "backup:m"), ("fastest", "primary:m")],
)
def test_order_policies(order: str, first: str) -> None:
    with TestProvider("primary", local=False, cost_hint=5, speed_hint=1), \
            TestProvider("backup", cost_hint=1, speed_hint=9):
        router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(order=order))  # type: ignore[arg-type]
        assert router.understand("x").provider == first


def test_unexpected_plugin_exceptions_become_provider_errors(
        primary: TestProvider, backup: TestProvider) -> None:
    primary.failures = [KeyError("oops")]
    result = mmsdk.Router(["primary:m", "backup:m"], FAST).understand("hi")
    assert result.provider == "backup:m"
    assert "failed unexpectedly: KeyError" in (result.attempts[0].error or "")


def test_deadline_stops_retrying(primary: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderTimeoutError] * 5
    primary.latency = 0.15
    policy = mmsdk.Policy(retries=5, backoff=0.1, deadline=0.3)
    with pytest.raises(mmsdk.ProviderTimeoutError):
        mmsdk.Router("primary:m", policy).understand("hi")
    assert len(primary.calls) <= 2


def test_timeout_is_handed_to_the_provider(primary: TestProvider) -> None:
    mmsdk.Router("primary:m", mmsdk.Policy(timeout=7.5)).understand("hi")
    assert primary.calls[0].timeout == 7.5


def test_hedging_starts_the_next_provider_when_the_first_is_slow(
        primary: TestProvider, backup: TestProvider) -> None:
    primary.latency = 30.0
    result = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(hedge_after=0.05)).understand("x")
    assert result.provider == "backup:m"
    assert [a.outcome for a in result.attempts] == ["abandoned", "ok"]
    assert len(primary.calls) == 1 and len(backup.calls) == 1


async def test_async_hedging(primary: TestProvider, backup: TestProvider) -> None:
    primary.latency = 1.0
    router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = await router.aunderstand("x")
    assert result.provider == "backup:m"


async def test_async_routing_follows_the_same_rules(primary: TestProvider,
                                                    backup: TestProvider) -> None:
    primary.failures = [mmsdk.RateLimitError, mmsdk.RateLimitError]
    result = await mmsdk.aunderstand("hi", provider=mmsdk.Router(["primary:m", "backup:m"], FAST))
    assert [a.outcome for a in result.attempts] == ["error", "error", "ok"]


def test_stream_falls_back_before_the_first_chunk(primary: TestProvider,
                                                  backup: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 2
    stream = mmsdk.Router(["primary:m", "backup:m"], FAST).understand("one two", stream=True)
    assert "".join(stream) == "echo: one two (0 image(s))"
    assert stream.result is not None and stream.result.provider == "backup:m"


def test_max_concurrency_limits_calls_in_flight(primary: TestProvider) -> None:
    import threading

    primary.latency = 0.05
    router = mmsdk.Router("primary:m", mmsdk.Policy(max_concurrency=1))
    active, peak = [0], [0]
    original = primary._begin

    def counting(request: object) -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        try:
            original(request)  # type: ignore[arg-type]
        finally:
            active[0] -= 1

    primary._begin = counting  # type: ignore[method-assign]
    threads = [threading.Thread(target=router.understand, args=("x",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1 and len(primary.calls) == 4
