"""Replica pools: a provider whose model declares ``ModelInfo.endpoints``.

Routing chooses the replica of every attempt and hands it to the model as
``Request.endpoint``; each replica has its own breaker ("NAME:MODEL@URL"), a
transient failure moves the call to another healthy replica (drawing on the
retry budget, not on ``retries``), and ``hedge_after`` hedges to a sibling.
The plugin here is registered through ``mmsdk.plugin`` as a third party's
would be; it records the endpoint of every request. No wall-clock asserts:
requests are counted per replica, the breaker's clock and the RNG are injected.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from breaker_clock import Clock

import mmsdk
from mmsdk._health import health_book
from mmsdk.plugin import (
    Capability,
    ModelInfo,
    ProviderSpec,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    hookimpl,
    register_plugin,
    unregister_plugin,
)
from mmsdk.testing import TestProvider

A, B, C = "http://a.test/v1", "http://b.test/v1", "http://c.test/v1"
PROVIDER = "pool:m"


class FirstTwo:
    """An RNG whose "two random replicas" are always the first two ready ones."""

    def sample(self, population: Sequence[Any], k: int) -> list[Any]:
        return list(population[:k])


Script = Callable[[UnderstandRequest], None]


class Pool:
    """Provider ``pool``: one model declaring *endpoints*; per-endpoint scripted behaviour.

    ``failures[url]`` lists what the next requests to *url* do (an exception class
    is raised, ``None`` answers); ``hold[url]``: requests to *url* wait until that
    event is set or their request is cancelled (a slow replica).
    """

    def __init__(self, endpoints: Sequence[str] = (A, B), balance: str = "least_in_flight",
                 name: str = "pool") -> None:
        self.name = name
        self.info = ModelInfo(supports=frozenset({"stream"}), endpoints=tuple(endpoints),
                              balance=balance)  # type: ignore[arg-type]
        self.seen: list[str | None] = []
        self.requests: list[UnderstandRequest] = []
        self.failures: dict[str, list[Any]] = {}
        self.hold: dict[str, threading.Event] = {}
        self.started = threading.Semaphore(0)  # released when a request arrives
        self.cancelled: list[str | None] = []  # async requests whose coroutine was cancelled
        self._lock = threading.Lock()

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ProviderSpec(name=self.name, model_class=_PoolModel,
                              factory=lambda model, provider, info: _PoolModel(self, provider,
                                                                               info),
                              describe=lambda model: self.info,
                              default_models={Capability.UNDERSTAND: "m"},
                              offer_as_default=False))

    def __enter__(self) -> Pool:
        register_plugin(self, f"tests:{self.name}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for event in self.hold.values():
            event.set()
        unregister_plugin(f"tests:{self.name}")

    def begin(self, request: UnderstandRequest) -> None:
        with self._lock:
            self.seen.append(request.endpoint)
            self.requests.append(request)
            script = self.failures.get(request.endpoint or "", [])
            failure = script.pop(0) if script else None
        self.started.release()
        if failure is not None:
            raise failure(f"scripted {failure.__name__}")

    def count(self, url: str) -> int:
        return self.seen.count(url)


class _PoolModel(Understand):
    def __init__(self, owner: Pool, provider: str, info: ModelInfo) -> None:
        super().__init__(provider, info)
        self.owner = owner

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        self.owner.begin(request)
        hold = self.owner.hold.get(request.endpoint or "")
        if hold is not None:
            assert request.cancel is not None
            while not hold.is_set() and not request.cancel.is_set():
                hold.wait(0.01)
            request.raise_if_stopped(self.provider, "held")
        return UnderstandResult(text=f"from {request.endpoint}")

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        self.owner.begin(request)
        hold = self.owner.hold.get(request.endpoint or "")
        try:
            while hold is not None and not hold.is_set():
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.owner.cancelled.append(request.endpoint)
            raise
        return UnderstandResult(text=f"from {request.endpoint}")


@pytest.fixture
def pool() -> Iterator[Pool]:
    with Pool() as provider:
        yield provider


@pytest.fixture
def backup() -> Iterator[TestProvider]:
    with TestProvider("backup") as provider:
        yield provider


def endpoints(result: Any) -> list[tuple[str | None, str]]:
    return [(a.endpoint, a.outcome) for a in result.attempts]


# -- balancing -----------------------------------------------------------------------
def test_round_robin_takes_the_replicas_in_turn() -> None:
    with Pool((A, B, C), balance="round_robin") as pool:
        results = [mmsdk.understand("x", provider=PROVIDER) for _ in range(6)]
    assert pool.seen == [A, B, C, A, B, C]
    assert [r.text for r in results] == [f"from {url}" for url in (A, B, C, A, B, C)]
    assert [endpoints(r) for r in results[:3]] == [[(A, "ok")], [(B, "ok")], [(C, "ok")]]
    assert all(r.provider == PROVIDER for r in results)


def test_least_in_flight_sends_new_calls_to_the_idle_replica(pool: Pool) -> None:
    pool.hold = {A: threading.Event(), B: threading.Event()}
    held = threading.Thread(target=mmsdk.understand, args=("x",), kwargs={"provider": PROVIDER})
    held.start()
    assert pool.started.acquire(timeout=10)
    busy = pool.seen[0]
    idle = B if busy == A else A
    pool.hold[idle].set()
    assert mmsdk.health()[f"{PROVIDER}@{busy}"].in_flight == 1
    for _ in range(4):  # the busy replica has one call in flight: every new call goes elsewhere
        assert mmsdk.understand("x", provider=PROVIDER).text == f"from {idle}"
    assert pool.seen[1:] == [idle] * 4
    pool.hold[busy].set()
    held.join(10)
    assert mmsdk.health()[f"{PROVIDER}@{busy}"].in_flight == 0


def test_least_in_flight_compares_two_random_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_book(), "rng", FirstTwo())  # the "random" pair is always A, B
    with Pool((A, B, C)) as pool:
        pool.hold = {A: threading.Event(), B: threading.Event()}
        threads = [threading.Thread(target=mmsdk.understand, args=("x",),
                                    kwargs={"provider": PROVIDER}) for _ in range(2)]
        for thread in threads:
            thread.start()
            assert pool.started.acquire(timeout=10)
        assert sorted(pool.seen) == [A, B]  # the second call went to the idle one of the pair
        # A and B have one call each in flight; C none, but it was not among the two sampled
        pool.hold[A].set()
        pool.hold[B].set()
        for thread in threads:
            thread.join(10)
        assert mmsdk.understand("x", provider=PROVIDER).text in (f"from {A}", f"from {B}")
    assert pool.count(C) == 0


def test_comparing_every_replica_finds_the_idle_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_book(), "rng", FirstTwo())
    monkeypatch.setattr(health_book(), "choices", None)  # every healthy replica, not two
    with Pool((A, B, C)) as pool:
        pool.hold = {A: threading.Event(), B: threading.Event()}
        threads = [threading.Thread(target=mmsdk.understand, args=("x",),
                                    kwargs={"provider": PROVIDER}) for _ in range(2)]
        for thread in threads:
            thread.start()
            assert pool.started.acquire(timeout=10)
        assert mmsdk.understand("x", provider=PROVIDER).text == f"from {C}"
        pool.hold[A].set()
        pool.hold[B].set()
        for thread in threads:
            thread.join(10)
    assert sorted(pool.seen) == [A, B, C]


def test_without_load_ties_go_to_the_replica_chosen_least_recently(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_book(), "rng", random.Random(7))
    with Pool((A, B, C)) as pool:
        for _ in range(30):
            mmsdk.understand("x", provider=PROVIDER)
        # of the two sampled, the older one: never the replica chosen last
        assert all(x != y for x, y in zip(pool.seen, pool.seen[1:], strict=False))
    counts = [pool.count(url) for url in (A, B, C)]
    assert sum(counts) == 30 and min(counts) >= 7
    with Pool((A, B)) as pool:  # two replicas: both are always sampled, so they alternate
        for _ in range(4):
            mmsdk.understand("x", provider=PROVIDER)
    assert pool.seen == [A, B, A, B]


def test_a_single_endpoint_is_no_pool() -> None:
    with Pool((A,)) as pool:
        result = mmsdk.understand("x", provider=PROVIDER)
    assert pool.seen == [None]  # the plugin chooses
    assert endpoints(result) == [(None, "ok")]
    assert list(mmsdk.health()) == [PROVIDER]


# -- failing over --------------------------------------------------------------------
def test_a_transient_failure_moves_the_call_to_another_replica(pool: Pool) -> None:
    pool.failures = {A: [mmsdk.ProviderServerError]}
    result = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).understand("x")  # no retries
    assert result.text == f"from {B}"
    assert endpoints(result) == [(A, "error"), (B, "ok")]
    assert [a.provider for a in result.attempts] == [PROVIDER, PROVIDER]
    assert result.attempts[0].error_type == "ProviderServerError"
    assert pool.seen == [A, B]


async def test_async_calls_move_between_replicas_too(pool: Pool) -> None:
    pool.failures = {A: [mmsdk.ProviderConnectionError]}
    result = await mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).aunderstand("x")
    assert endpoints(result) == [(A, "error"), (B, "ok")]


@pytest.mark.parametrize("failure", [mmsdk.InvalidInputError, mmsdk.AuthenticationError],
                         ids=["caller-mistake", "auth"])
def test_errors_no_replica_can_fix_surface_at_once(pool: Pool, failure: type) -> None:
    pool.failures = {A: [failure]}
    with pytest.raises(failure) as info:
        mmsdk.Router(PROVIDER, mmsdk.Policy(retries=2)).understand("x")
    assert pool.seen == [A]
    assert [(a.endpoint, a.outcome) for a in info.value.attempts] == [(A, "error")]


def test_the_provider_fails_when_no_replica_is_left_then_falls_back(
        pool: Pool, backup: TestProvider) -> None:
    pool.failures = {A: [mmsdk.ProviderServerError], B: [mmsdk.RateLimitError]}
    result = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(retries=0)).understand("x")
    assert result.provider == "backup:m"
    assert [(a.provider, a.endpoint, a.outcome) for a in result.attempts] == [
        (PROVIDER, A, "error"), (PROVIDER, B, "error"), ("backup:m", None, "ok")]


def test_a_lone_pool_with_every_replica_failing_raises_the_last_error(pool: Pool) -> None:
    pool.failures = {A: [mmsdk.ProviderServerError], B: [mmsdk.ProviderTimeoutError]}
    with pytest.raises(mmsdk.ProviderTimeoutError) as info:
        mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).understand("x")
    assert [(a.endpoint, a.outcome) for a in info.value.attempts] == [(A, "error"),
                                                                      (B, "error")]


def test_retries_start_another_round_over_the_replicas(pool: Pool) -> None:
    pool.failures = {A: [mmsdk.ProviderServerError] * 2, B: [mmsdk.ProviderServerError]}
    result = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=1, backoff=0)).understand("x")
    assert endpoints(result) == [(A, "error"), (B, "error"), (A, "error"), (B, "ok")]
    assert result.attempts[2].waited == 0.0


def test_a_spent_retry_budget_stops_moves_and_falls_back_at_once(
        pool: Pool, backup: TestProvider) -> None:
    # No breaker, and first attempts earn nothing: the 5 retries in reserve pay for 5 moves.
    policy = mmsdk.Policy(retries=0, breaker_threshold=None, retry_budget=0.0)
    router = mmsdk.Router([PROVIDER, "backup:m"], policy)
    pool.failures = {A: [mmsdk.ProviderServerError] * 6}
    for _ in range(5):
        assert endpoints(router.understand("x")) == [(A, "error"), (B, "ok")]
    result = router.understand("x")  # A fails again; the budget cannot pay for a move
    assert result.provider == "backup:m"
    assert [(a.provider, a.endpoint, a.outcome) for a in result.attempts] == [
        (PROVIDER, A, "error"), ("backup:m", None, "ok")]
    assert pool.count(B) == 5


def test_without_a_retry_budget_moves_are_unlimited(pool: Pool) -> None:
    policy = mmsdk.Policy(retries=0, breaker_threshold=None, retry_budget=None)  # unlimited
    pool.failures = {A: [mmsdk.ProviderServerError] * 8}
    router = mmsdk.Router(PROVIDER, policy)
    for _ in range(8):
        assert router.understand("x").text == f"from {B}"


# -- ejecting a failing replica --------------------------------------------------------
def test_a_failing_replica_is_ejected_then_probed_after_the_cooldown(
        pool: Pool, clock: Clock) -> None:
    router = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0, breaker_threshold=2,
                                                 breaker_cooldown=10))
    pool.failures = {A: [mmsdk.ProviderServerError] * 3}
    for _ in range(2):
        assert router.understand("x").text == f"from {B}"
    assert pool.count(A) == 2
    health = router.health()
    assert (health[f"{PROVIDER}@{A}"].state, health[f"{PROVIDER}@{B}"].state) == (
        "open", "closed")
    assert health[f"{PROVIDER}@{A}"].retry_in == pytest.approx(10)
    for _ in range(5):  # ejected: no request reaches it during the cooldown
        assert endpoints(router.understand("x")) == [(B, "ok")]
    assert pool.count(A) == 2
    clock.now += 10.5
    assert router.health()[f"{PROVIDER}@{A}"].state == "half_open"
    result = router.understand("x")  # the probe fails: open again, the call moves to B
    assert endpoints(result) == [(A, "error"), (B, "ok")]
    assert router.health()[f"{PROVIDER}@{A}"].state == "open"
    router.understand("x")
    assert pool.count(A) == 3
    clock.now += 10.5
    assert router.understand("x").text == f"from {A}"  # this probe succeeds: closed
    assert router.health()[f"{PROVIDER}@{A}"].state == "closed"


def test_a_pool_whose_every_replica_is_open_is_skipped(pool: Pool, backup: TestProvider,
                                                       clock: Clock) -> None:
    policy = mmsdk.Policy(retries=0, breaker_threshold=1, breaker_cooldown=20)
    router = mmsdk.Router([PROVIDER, "backup:m"], policy)
    pool.failures = {A: [mmsdk.ProviderServerError], B: [mmsdk.ProviderServerError]}
    assert router.understand("x").provider == "backup:m"
    clock.now += 5
    result = router.understand("x")
    assert [(a.provider, a.outcome, a.error_type) for a in result.attempts] == [
        (PROVIDER, "skipped", "CircuitOpenError"), ("backup:m", "ok", None)]
    assert result.attempts[0].retry_after == pytest.approx(15)
    assert len(pool.seen) == 2
    with pytest.raises(mmsdk.CircuitOpenError):  # alone: its own error
        mmsdk.Router(PROVIDER, policy).understand("x")


def test_health_lists_each_replica(pool: Pool) -> None:
    pool.failures = {A: [mmsdk.ProviderServerError]}
    mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).understand("x")
    health = mmsdk.health()
    assert set(health) == {f"{PROVIDER}@{A}", f"{PROVIDER}@{B}"}
    assert health[f"{PROVIDER}@{A}"].consecutive_failures == 1
    assert health[f"{PROVIDER}@{B}"].consecutive_failures == 0


def test_a_password_in_a_replica_url_is_never_shown() -> None:
    secret = "http://user:hunter2pass@a.test/v1"
    with Pool((secret, B)) as pool:
        pool.failures = {secret: [mmsdk.ProviderServerError]}
        result = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).understand("x")
    assert pool.seen == [secret, B]  # the plugin gets the URL it declared
    assert "hunter2pass" not in repr(result.attempts)
    assert not any("hunter2pass" in name for name in mmsdk.health())


# -- hedging -------------------------------------------------------------------------
@pytest.fixture
def slow_backup() -> Iterator[TestProvider]:
    """The next provider, answering only if every replica fails (hedges cancel it)."""
    with TestProvider("backup", latency=30) as provider:
        yield provider


def hedged(result: Any) -> tuple[list[tuple[str, str | None]], set[tuple[str | None, str]]]:
    """Who was started, in order, and how each replica's attempt ended (the backup aside)."""
    started = [(a.provider, a.endpoint) for a in result.attempts]
    return started, {(a.endpoint, a.outcome) for a in result.attempts
                     if a.provider == PROVIDER}


def test_hedging_goes_to_a_sibling_replica_before_the_next_provider(
        pool: Pool, slow_backup: TestProvider) -> None:
    pool.hold = {A: threading.Event()}  # A answers only when released (or cancelled)
    router = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = router.understand("x")
    assert result.text == f"from {B}"
    started, ended = hedged(result)
    assert started[:2] == [(PROVIDER, A), (PROVIDER, B)]
    assert ended == {(A, "abandoned"), (B, "ok")}
    loser = pool.requests[0]
    assert loser.endpoint == A and loser.cancel is not None and loser.cancel.is_set()
    assert mmsdk.health()[f"{PROVIDER}@{A}"].in_flight == 0  # settled, not counted as failed
    assert mmsdk.health()[f"{PROVIDER}@{A}"].consecutive_failures == 0


def test_a_lone_pool_hedges_too(pool: Pool) -> None:
    pool.hold = {A: threading.Event()}
    result = mmsdk.Router(PROVIDER, mmsdk.Policy(hedge_after=0.05)).understand("x")
    assert result.text == f"from {B}"
    assert {(a.endpoint, a.outcome) for a in result.attempts} == {(A, "abandoned"), (B, "ok")}


def test_hedging_moves_on_to_the_next_provider_once_every_replica_is_busy(
        pool: Pool, backup: TestProvider) -> None:
    pool.hold = {A: threading.Event(), B: threading.Event()}
    router = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = router.understand("x")
    assert result.provider == "backup:m"
    assert [(a.provider, a.endpoint) for a in result.attempts] == [
        (PROVIDER, A), (PROVIDER, B), ("backup:m", None)]
    assert [a.outcome for a in result.attempts] == ["abandoned", "abandoned", "ok"]


async def test_async_hedging_cancels_the_slow_replicas_request(
        pool: Pool, slow_backup: TestProvider) -> None:
    pool.hold = {A: threading.Event()}
    router = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(hedge_after=0.05))
    result = await router.aunderstand("x")
    assert result.text == f"from {B}"
    started, ended = hedged(result)
    assert started[:2] == [(PROVIDER, A), (PROVIDER, B)]
    assert ended == {(A, "abandoned"), (B, "ok")}
    for _ in range(100):
        if pool.cancelled:
            break
        await asyncio.sleep(0.01)
    assert pool.cancelled == [A]  # the loser's coroutine was cancelled, not left running


def test_a_hedged_replica_failing_moves_to_another(slow_backup: TestProvider) -> None:
    with Pool((A, B, C), balance="round_robin") as pool:
        pool.hold = {A: threading.Event()}
        pool.failures = {B: [mmsdk.ProviderServerError]}
        router = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(hedge_after=0.05))
        result = router.understand("x")
        assert result.text == f"from {C}"
        started, ended = hedged(result)
        assert started[:3] == [(PROVIDER, A), (PROVIDER, B), (PROVIDER, C)]
        assert ended == {(A, "abandoned"), (B, "error"), (C, "ok")}
