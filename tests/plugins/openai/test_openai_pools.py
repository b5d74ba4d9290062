"""Replica pools on the wire: ``add_endpoint(name, [url, url, ...])`` against loopback servers.

Routing chooses the server of each attempt; requests are counted per server
(no wall-clock asserts), and the breaker's clock is injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import mmsdk_openai
import pytest
from breaker_clock import Clock
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk.testing import TestProvider

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
PROVIDER = f"vllmpool:{MODEL}"


@pytest.fixture
def third() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def serve(wire: Any, *servers: LoopbackServer) -> None:
    for server in servers:
        server.default = Reply(body=wire.chat(f"from {server.url}", model=MODEL))


def pool(endpoint_names: list[str], *servers: LoopbackServer, **options: Any) -> list[str]:
    urls = [server.url + "/v1" for server in servers]
    mmsdk_openai.add_endpoint("vllmpool", urls, models=[MODEL], **options)
    endpoint_names.append("vllmpool")
    return urls


def test_a_500_moves_the_call_to_another_replica_of_the_same_provider(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str]) -> None:
    first_url, second_url = pool(endpoint_names, loopback, second)
    serve(wire, second)
    loopback.default = wire.error(500, "internal", kind="server_error")
    result = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).understand("Describe")
    assert (result.text, result.provider) == (f"from {second.url}", PROVIDER)
    assert [(a.provider, a.endpoint, a.outcome, a.status) for a in result.attempts] == [
        (PROVIDER, first_url, "error", 500), (PROVIDER, second_url, "ok", None)]
    assert (len(loopback.received), len(second.received)) == (1, 1)
    assert wire.body(second.received[0])["model"] == MODEL


async def test_async_calls_move_between_replicas_too(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str]) -> None:
    first_url, second_url = pool(endpoint_names, loopback, second)
    serve(wire, second)
    loopback.default = Reply(drop=True)
    result = await mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).aunderstand("Describe")
    assert [(a.endpoint, a.outcome, a.error_type) for a in result.attempts] == [
        (first_url, "error", "ProviderConnectionError"), (second_url, "ok", None)]


def test_an_ejected_replica_receives_no_requests_during_its_cooldown(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str], clock: Clock) -> None:
    first_url, second_url = pool(endpoint_names, loopback, second)
    serve(wire, loopback, second)
    loopback.default = wire.error(503, "overloaded", kind="server_error")
    router = mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0, breaker_threshold=2,
                                                 breaker_cooldown=30))
    for _ in range(12):
        assert router.understand("Describe").text == f"from {second.url}"
    assert len(loopback.received) == 2  # ejected after 2 failures in a row
    health = mmsdk.health()
    assert set(health) == {f"{PROVIDER}@{first_url}", f"{PROVIDER}@{second_url}"}
    assert health[f"{PROVIDER}@{first_url}"].state == "closed"  # the default policy: 5
    ejected = router.health()[f"{PROVIDER}@{first_url}"]
    assert (ejected.state, ejected.consecutive_failures) == ("open", 2)
    assert router.health()[f"{PROVIDER}@{second_url}"].state == "closed"
    clock.now += 31  # the cooldown passed: one probe goes through, and it succeeds
    serve(wire, loopback)
    for _ in range(4):
        router.understand("Describe")
    assert len(loopback.received) >= 3
    assert router.health()[f"{PROVIDER}@{first_url}"].state == "closed"


def test_round_robin_over_three_servers(loopback: LoopbackServer, second: LoopbackServer,
                                        third: LoopbackServer, wire: Any,
                                        endpoint_names: list[str]) -> None:
    pool(endpoint_names, loopback, second, third, balance="round_robin")
    serve(wire, loopback, second, third)
    texts = [mmsdk.understand("Describe", provider="vllmpool").text for _ in range(6)]
    assert texts == [f"from {s.url}" for s in (loopback, second, third)] * 2
    assert [len(s.received) for s in (loopback, second, third)] == [2, 2, 2]


def test_a_replica_in_every_call_path_gets_the_request(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str]) -> None:
    """Streaming and classify go to the replica routing chose, as plain calls do."""
    first_url, second_url = pool(endpoint_names, loopback, second, balance="round_robin")
    loopback.queue(Reply(events=wire.stream("a ", "b")))
    stream = mmsdk.understand("Describe", provider="vllmpool", stream=True)
    assert "".join(stream) == "a b"
    assert stream.result.attempts[0].endpoint == first_url
    second.queue(Reply(body=wire.chat('{"label":"dog"}')))
    result = mmsdk.classify(wire.png(), ["cat", "dog"], provider="vllmpool")
    assert result.top[0] == "dog" and result.attempts[0].endpoint == second_url
    assert (len(loopback.received), len(second.received)) == (1, 1)


def test_the_provider_fails_when_no_replica_is_left(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str]) -> None:
    first_url, second_url = pool(endpoint_names, loopback, second)
    for server in (loopback, second):
        server.default = wire.error(502, "bad gateway", kind="server_error")
    with TestProvider("backup"):
        result = mmsdk.Router([PROVIDER, "backup:m"],
                              mmsdk.Policy(retries=0)).understand("Describe")
    assert [(a.provider, a.endpoint, a.outcome) for a in result.attempts] == [
        (PROVIDER, first_url, "error"), (PROVIDER, second_url, "error"),
        ("backup:m", None, "ok")]


async def test_hedging_to_a_sibling_replica_cancels_the_slow_request(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str]) -> None:
    first_url, second_url = pool(endpoint_names, loopback, second)
    serve(wire, second)
    loopback.default = Reply(body=wire.chat("too late", model=MODEL), hang=3)
    with TestProvider("backup", latency=30):  # answers only if everything else fails
        router = mmsdk.Router([PROVIDER, "backup:m"], mmsdk.Policy(hedge_after=0.05))
        result = await router.aunderstand("Describe")
    assert result.text == f"from {second.url}"
    # the sibling replica was hedged to before the next provider
    assert [(a.provider, a.endpoint) for a in result.attempts[:2]] == [
        (PROVIDER, first_url), (PROVIDER, second_url)]
    outcomes = {(a.endpoint, a.outcome) for a in result.attempts}
    assert outcomes - {(None, "abandoned")} == {(first_url, "abandoned"), (second_url, "ok")}
    assert len(second.received) == 1
    health = mmsdk.health()[f"{PROVIDER}@{first_url}"]
    assert (health.in_flight, health.consecutive_failures) == (0, 0)  # abandoned: no failure


async def test_calls_arriving_together_on_a_cold_loop_share_one_client_build(
        loopback: LoopbackServer, second: LoopbackServer, wire: Any,
        endpoint_names: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    pool(endpoint_names, loopback, second)
    serve(wire, loopback, second)
    built: list[str] = []
    real = openai.AsyncOpenAI

    def counted(*args: Any, **kwargs: Any) -> openai.AsyncOpenAI:
        built.append(kwargs["base_url"])
        return real(*args, **kwargs)

    monkeypatch.setattr(openai, "AsyncOpenAI", counted)
    results = await asyncio.gather(*(mmsdk.aunderstand("Describe", provider="vllmpool")
                                     for _ in range(8)))
    assert len(results) == 8
    assert len(built) == 2  # one client per base URL, not one set per call
    assert len(loopback.received) + len(second.received) == 8


def test_a_single_url_endpoint_is_no_pool(loopback: LoopbackServer, wire: Any,
                                          endpoint_names: list[str]) -> None:
    pool(endpoint_names, loopback)
    serve(wire, loopback)
    result = mmsdk.understand("Describe", provider="vllmpool")
    assert result.attempts[0].endpoint is None
    assert list(mmsdk.health()) == [PROVIDER]


def test_balance_is_checked(loopback: LoopbackServer) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="balance"):
        mmsdk_openai.add_endpoint("badpool", [loopback.url + "/v1", loopback.url + "/v2"],
                                  balance="random")  # type: ignore[arg-type]


def test_a_model_object_used_directly_keeps_spreading_and_failing_over(
        loopback: LoopbackServer, second: LoopbackServer) -> None:
    """Without ``Request.endpoint`` (no routing) the plugin chooses, as before pools."""
    from mmsdk_openai._clients import ClientPool

    urls = (loopback.url + "/v1", second.url + "/v1")
    clients = ClientPool(lambda: mmsdk.plugin.Connection("k"), urls)
    try:
        chosen = [clients.call(lambda client: str(client.base_url).rstrip("/"), urls[1])
                  for _ in range(3)]
        assert chosen == [urls[1]] * 3  # routing's choice, every time
        turns = [clients.call(lambda client: str(client.base_url).rstrip("/"))
                 for _ in range(4)]
        assert sorted(turns) == sorted(urls * 2)
        with pytest.raises(ValueError, match="not one of"):
            clients.call(lambda client: None, "http://elsewhere.test/v1")
    finally:
        clients.close()
