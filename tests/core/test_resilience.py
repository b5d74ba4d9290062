"""Routing memory and visibility: breakers, retry budgets, Retry-After, attempts, logs, hooks, spans.

The breaker's clock is injected (no sleeping for cooldowns); requests are counted.
"""

from __future__ import annotations

import logging

import pytest
from breaker_clock import Clock

import mmsdk
from mmsdk.testing import TestProvider

NO_RETRY = mmsdk.Policy(retries=0, backoff=0)


# -- circuit breaker ---------------------------------------------------------------
def test_the_breaker_opens_after_the_threshold_and_skips_without_a_call(
        primary: TestProvider, backup: TestProvider, clock: Clock) -> None:
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=0, breaker_threshold=3, breaker_cooldown=30))
    primary.failures = [mmsdk.ProviderServerError] * 3
    for _ in range(3):
        assert router.understand("x").provider == "backup:m"
    assert len(primary.calls) == 3
    result = router.understand("x")
    assert len(primary.calls) == 3  # open: skipped, no request
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome, skipped.error_type) == (
        "primary:m", "skipped", "CircuitOpenError")
    assert skipped.retry_after == pytest.approx(30)
    health = router.health()["primary:m"]
    assert (health.state, health.consecutive_failures) == ("open", 3)
    assert health.retry_in == pytest.approx(30)


def test_half_open_lets_one_probe_through_and_success_closes(
        primary: TestProvider, backup: TestProvider, clock: Clock) -> None:
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=0, breaker_threshold=2, breaker_cooldown=10))
    primary.failures = [mmsdk.ProviderTimeoutError] * 2
    router.understand("x")
    router.understand("x")
    clock.now += 10.5
    assert router.health()["primary:m"].state == "half_open"
    assert router.understand("x").provider == "primary:m"  # the probe succeeds
    assert router.health()["primary:m"].state == "closed"
    assert router.health()["primary:m"].consecutive_failures == 0


def test_a_failed_probe_opens_the_breaker_again(primary: TestProvider, backup: TestProvider,
                                                clock: Clock) -> None:
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=0, breaker_threshold=2, breaker_cooldown=10))
    primary.failures = [mmsdk.ProviderServerError] * 3
    router.understand("x")
    router.understand("x")
    clock.now += 11
    router.understand("x")  # probe fails
    assert len(primary.calls) == 3
    assert router.health()["primary:m"].state == "open"
    router.understand("x")
    assert len(primary.calls) == 3


def test_breaker_facts_are_shared_but_each_router_applies_its_own_policy(
        primary: TestProvider, clock: Clock) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 3
    strict = mmsdk.Router("primary:m", mmsdk.Policy(retries=0, breaker_threshold=3))
    for _ in range(3):
        with pytest.raises(mmsdk.ProviderServerError):
            strict.understand("x")
    with pytest.raises(mmsdk.CircuitOpenError) as info:  # a lone open provider: its own error
        strict.understand("x")
    assert info.value.retry_after == pytest.approx(30)
    lenient = mmsdk.Router("primary:m", mmsdk.Policy(breaker_threshold=10))
    assert lenient.understand("x").provider == "primary:m"  # 3 < 10: still closed for it
    off = mmsdk.Router("primary:m", mmsdk.Policy(breaker_threshold=None))
    assert off.health()["primary:m"].state == "closed"


def test_all_candidates_open_fails_at_once_with_the_soonest_retry_after(
        primary: TestProvider, backup: TestProvider, clock: Clock) -> None:
    policy = mmsdk.Policy(retries=0, breaker_threshold=1, breaker_cooldown=20)
    primary.failures = [mmsdk.ProviderServerError]
    backup.failures = [mmsdk.ProviderServerError]
    router = mmsdk.Router(["primary:m", "backup:m"], policy)
    with pytest.raises(mmsdk.AllProvidersFailedError):
        router.understand("x")
    clock.now += 5
    with pytest.raises(mmsdk.AllProvidersFailedError) as info:
        router.understand("x")
    assert [a.outcome for a in info.value.attempts] == ["skipped", "skipped"]
    assert [type(e).__name__ for e in info.value.errors] == ["CircuitOpenError"] * 2
    assert info.value.retry_after == pytest.approx(15)
    assert len(primary.calls) == 1 and len(backup.calls) == 1


@pytest.mark.parametrize("failure", [mmsdk.InvalidInputError("bad"), mmsdk.AuthenticationError("key")],
                         ids=["caller-mistake", "auth"])
def test_errors_that_say_nothing_of_health_do_not_count(primary: TestProvider,
                                                        failure: mmsdk.MMSDKError) -> None:
    router = mmsdk.Router("primary:m", mmsdk.Policy(retries=0, breaker_threshold=1))
    primary.failures = [failure]
    with pytest.raises(type(failure)):
        router.understand("x")
    assert router.health()["primary:m"].consecutive_failures == 0


def test_a_local_queue_timeout_does_not_count(backup: TestProvider) -> None:
    import threading

    lock = threading.Lock()
    lock.acquire()
    request = mmsdk._requests.UnderstandRequest(prompt="x", timeout=0.05)
    request = request.model_copy(update={"deadline": 0.0})  # long passed
    with pytest.raises(mmsdk.ProviderTimeoutError) as info, request.holding(lock, "backup:m"):
        pass
    assert info.value.queued
    from mmsdk._run import counts

    assert counts(info.value) is None
    assert counts(mmsdk.ProviderTimeoutError("slow model")) is True


# -- retry budget --------------------------------------------------------------------
def test_the_retry_budget_bounds_retries_during_an_outage(primary: TestProvider,
                                                          backup: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 1000
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=3, backoff=0, breaker_threshold=None))
    calls = 100
    for _ in range(calls):
        assert router.understand("x").provider == "backup:m"
    # 5 retries in reserve, +0.2 per first attempt: retries <= 0.2 x calls + 5
    assert calls < len(primary.calls) <= (1 + 0.2) * calls + 5
    unlimited = mmsdk.Router(["primary:m", "backup:m"],
                             mmsdk.Policy(retries=3, backoff=0, breaker_threshold=None,
                                          retry_budget=None))
    before = len(primary.calls)
    unlimited.understand("x")
    assert len(primary.calls) - before == 4


def test_reset_health_refills_budgets_and_closes_breakers(primary: TestProvider,
                                                          backup: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 100
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=1, backoff=0, breaker_threshold=50))
    for _ in range(10):
        router.understand("x")
    assert router.health()["primary:m"].consecutive_failures > 10
    mmsdk.reset_health()
    assert mmsdk.health() == {}
    before = len(primary.calls)
    router.understand("x")
    assert len(primary.calls) - before == 2  # the reserve pays for a retry again


# -- Retry-After ----------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503, 529])
def test_retry_after_is_honoured_and_recorded(primary: TestProvider, status: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("mmsdk._drivers.time.sleep", slept.append)
    error_class = mmsdk.RateLimitError if status == 429 else mmsdk.ProviderServerError
    error = error_class("busy", status=status)
    error.retry_after = 7.0
    primary.failures = [error]
    result = mmsdk.Router("primary:m", mmsdk.Policy(backoff=0.01)).understand("x")
    assert slept == [7.0]
    failed, ok = result.attempts
    assert (failed.status, failed.retry_after, failed.outcome) == (status, 7.0, "error")
    assert ok.waited == 7.0 and ok.started >= failed.started


# -- complete attempts, logs, hooks -------------------------------------------------------
def test_every_attempt_is_logged_and_handed_to_callbacks(
        primary: TestProvider, backup: TestProvider, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[mmsdk.Attempt] = []
    configured: list[str] = []
    monkeypatch.setattr(mmsdk._settings, "_settings", mmsdk._settings.Settings(
        on_attempt=lambda a: configured.append(a.outcome)))

    def broken(attempt: mmsdk.Attempt) -> None:
        seen.append(attempt)
        raise RuntimeError("a broken metrics hook")

    primary.failures = [mmsdk.ProviderServerError("boom sk-proj-SECRETSECRET123", status=500)] * 2
    router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(backoff=0), on_attempt=broken)
    with caplog.at_level(logging.DEBUG, logger="mmsdk"):
        result = router.understand("x")
    assert result.provider == "backup:m"
    assert [(a.provider, a.outcome, a.error_type, a.status) for a in seen] == [
        ("primary:m", "error", "ProviderServerError", 500),
        ("primary:m", "error", "ProviderServerError", 500),
        ("backup:m", "ok", None, None)]
    assert configured == ["error", "error", "ok"]
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert any(level == "INFO" and "retrying primary:m" in text for level, text in messages)
    assert any(level == "INFO" and "falling back from primary:m" in text
               for level, text in messages)
    assert sum(level == "DEBUG" and "attempt on" in text for level, text in messages) == 3
    assert any("on_attempt callback" in text for _, text in messages)
    assert not any("SECRETSECRET" in text for _, text in messages)


def test_a_breaker_opening_is_a_warning(primary: TestProvider, backup: TestProvider,
                                        caplog: pytest.LogCaptureFixture) -> None:
    primary.failures = [mmsdk.ProviderServerError] * 2
    router = mmsdk.Router(["primary:m", "backup:m"], mmsdk.Policy(retries=0, breaker_threshold=2))
    with caplog.at_level(logging.WARNING, logger="mmsdk"):
        router.understand("x")
        assert not caplog.records
        router.understand("x")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "circuit breaker for primary:m opened" in caplog.records[0].getMessage()


def test_the_failure_that_opens_the_breaker_falls_back_without_waiting(
        primary: TestProvider, backup: TestProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("mmsdk._drivers.time.sleep", slept.append)
    primary.failures = [mmsdk.ProviderServerError]
    router = mmsdk.Router(["primary:m", "backup:m"],
                          mmsdk.Policy(retries=3, backoff=10, breaker_threshold=1))
    result = router.understand("x")
    assert result.provider == "backup:m"
    assert slept == [] and len(primary.calls) == 1  # no backoff, no retry into an open breaker


async def test_an_async_call_queued_behind_a_busy_local_model_does_not_count(
        backup: TestProvider) -> None:
    import asyncio

    backup.latency = 30.0  # stops early when cancelled
    busy = asyncio.ensure_future(mmsdk.Router("backup:m").aunderstand("busy"))
    while not backup.calls:
        await asyncio.sleep(0.01)
    router = mmsdk.Router("backup:m", mmsdk.Policy(timeout=0.2, retries=0, breaker_threshold=1))
    with pytest.raises(mmsdk.ProviderTimeoutError) as info:
        await router.aunderstand("queued behind it")
    assert info.value.queued
    assert len(backup.calls) == 1  # it never reached the model
    assert router.health()["backup:m"].consecutive_failures == 0
    busy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await busy


async def test_a_slow_local_model_past_its_timeout_does_count(backup: TestProvider) -> None:
    backup.latency = 30.0
    router = mmsdk.Router("backup:m", mmsdk.Policy(timeout=0.2, retries=0, breaker_threshold=5))
    with pytest.raises(mmsdk.ProviderTimeoutError) as info:
        await router.aunderstand("slow")
    assert not info.value.queued
    assert router.health()["backup:m"].consecutive_failures == 1


def test_a_plugin_whose_describe_raises_is_skipped_in_a_route(backup: TestProvider) -> None:
    from mmsdk._registry import register_plugin, unregister_plugin
    from mmsdk.plugin import Capability, ProviderSpec, Understand, hookimpl

    def describe(model: str) -> mmsdk._types.ModelInfo:
        raise RuntimeError("describe is broken")

    class Broken:
        @hookimpl
        def register_providers(self, register: object) -> None:
            register(ProviderSpec(name="brokendescribe", model_class=Understand,
                                  describe=describe,
                                  default_models={Capability.UNDERSTAND: "m"}))

    register_plugin(Broken(), "brokendescribe")
    try:
        result = mmsdk.Router(["brokendescribe:m", "backup:m"]).understand("x")
        assert [(a.provider, a.outcome) for a in result.attempts] == [
            ("brokendescribe:m", "skipped"), ("backup:m", "ok")]
        assert "describe is broken" in (result.attempts[0].error or "")
        with pytest.raises(mmsdk.ProviderUnavailableError) as info:
            mmsdk.Router("brokendescribe:m").understand("x")
        assert info.value.code == "plugin_broken"
    finally:
        unregister_plugin("brokendescribe")
