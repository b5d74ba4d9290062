"""OpenAI-compatible endpoints (vLLM, TGI, Ollama, LM Studio): spreading and failover.

Replica pools in depth: test_openai_pools.py.
"""

from __future__ import annotations

import socket

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk._registry import Registry

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


@pytest.fixture
def pair(loopback: LoopbackServer, second: LoopbackServer, wire, endpoint_names: list[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[LoopbackServer, LoopbackServer]:
    """Two servers behind one endpoint named ``vllmtest``; an OpenAI key is set too."""
    monkeypatch.setenv("OPENAI_API_KEY", wire.KEY)
    for server in (loopback, second):
        server.default = Reply(body=wire.chat("served", model=MODEL))
    mmsdk_openai.add_endpoint("vllmtest", [loopback.url + "/v1", second.url + "/v1"],
                              models=[MODEL])
    endpoint_names.append("vllmtest")
    return loopback, second


def test_calls_are_spread_round_robin(pair, wire) -> None:
    first, second = pair
    for _ in range(4):
        result = mmsdk.understand("Describe", images=[wire.png()], provider="vllmtest",
                                  max_tokens=20)
        assert (result.text, result.provider) == ("served", f"vllmtest:{MODEL}")
    assert (len(first.received), len(second.received)) == (2, 2)
    body = wire.body(first.received[0])
    assert body["model"] == MODEL
    assert body["max_tokens"] == 20 and "max_completion_tokens" not in body
    # the OpenAI key set in the environment never goes to a third-party server
    assert {wire.header(r, "authorization") for r in first.received + second.received} == \
        {"Bearer not-needed"}


def test_a_dropped_endpoint_moves_the_call_to_the_next(pair, wire) -> None:
    first, second = pair
    first.default = Reply(drop=True)
    router = mmsdk.Router("vllmtest", mmsdk.Policy(retries=0))
    results = [router.understand("Describe") for _ in range(3)]
    assert [r.text for r in results] == ["served"] * 3
    for result in results:  # each replica tried is an attempt naming its endpoint (no retries)
        assert (result.attempts[-1].outcome, result.attempts[-1].endpoint) == (
            "ok", second.url + "/v1")
        assert {(a.endpoint, a.error_type) for a in result.attempts[:-1]} <= {
            (first.url + "/v1", "ProviderConnectionError")}
    assert len(second.received) == 3 and len(first.received) >= 1


def test_a_server_that_is_down_is_skipped(loopback: LoopbackServer, wire,
                                          endpoint_names: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    loopback.default = Reply(body=wire.chat("alive"))
    mmsdk_openai.add_endpoint("downtest", [dead, loopback.url + "/v1"], models=["m"])
    endpoint_names.append("downtest")
    assert [mmsdk.understand("hi", provider="downtest").text for _ in range(2)] == ["alive"] * 2


def test_every_endpoint_failing_is_a_connection_error(pair) -> None:
    for server in pair:
        server.default = Reply(drop=True)
    with pytest.raises(mmsdk.ProviderConnectionError):
        mmsdk.Router("vllmtest", mmsdk.Policy(retries=0)).understand("Describe")
    assert sum(len(server.received) for server in pair) == 2


async def test_async_round_robin_and_failover(pair, wire) -> None:
    first, second = pair
    for _ in range(2):
        assert (await mmsdk.aunderstand("Describe", provider="vllmtest")).text == "served"
    assert (len(first.received), len(second.received)) == (1, 1)
    first.default = Reply(drop=True)
    for _ in range(2):
        assert (await mmsdk.aunderstand("Describe", provider="vllmtest")).text == "served"
    assert len(second.received) == 3


def test_stream_and_classify_through_an_endpoint(pair, wire) -> None:
    first, second = pair
    first.queue(Reply(events=wire.stream("a ", "b")))
    assert "".join(mmsdk.understand("Describe", provider="vllmtest", stream=True)) == "a b"
    logprobs = wire.logprobs([('{"label":"', 0.0, {}), ("dog", -0.5, {"dog": -0.5,
                                                                        "cat": -1.0}),
                              ('"}', 0.0, {})])
    second.queue(Reply(body=wire.chat('{"label":"dog"}', logprobs=logprobs)))
    result = mmsdk.classify(wire.png(), ["cat", "dog"], provider="vllmtest")
    assert result.top[0] == "dog" and 0.5 < result.scores["dog"] < 0.7
    assert wire.body(second.received[0])["logprobs"] is True


def test_loopback_endpoints_count_as_local(pair) -> None:
    result = mmsdk.Router("vllmtest", mmsdk.Policy(local_only=True)).understand("Describe")
    assert result.text == "served"


def test_named_key_variable_is_the_bearer_token(loopback: LoopbackServer, wire,
                                                endpoint_names: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYTEST_API_KEY", "token-for-keytest-123")
    loopback.default = Reply(body=wire.chat("ok"))
    endpoint = mmsdk_openai.add_endpoint("keytest", loopback.url + "/v1", local=False)
    endpoint_names.append("keytest")
    assert mmsdk.understand("hi", provider="keytest:some-model").text == "ok"
    assert wire.header(loopback.received[0], "authorization") == "Bearer token-for-keytest-123"
    assert "token-for-keytest-123" not in repr(endpoint)
    with pytest.raises(mmsdk.CapabilityError, match="local_only"):  # local=False: data leaves
        mmsdk.Router("keytest:some-model", mmsdk.Policy(local_only=True)).understand("hi")


def test_environment_variable_registers_endpoints(loopback: LoopbackServer, second, wire,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSDK_OPENAI_COMPATIBLE",
                       f"envtest#{MODEL}={loopback.url}/v1,{second.url}/v1;"
                       f"other={second.url}/v1")
    registry = Registry()
    registry.add_plugin(mmsdk_openai, "mmsdk_openai-envtest")
    assert {"openai", "envtest", "other"} <= set(registry.specs)
    assert registry.specs["envtest"].default_models[mmsdk.Capability.UNDERSTAND] == MODEL
    for server in (loopback, second):
        server.default = Reply(body=wire.chat("from env"))
    router = mmsdk.Router("envtest", registry=registry)
    assert [router.understand("hi").text for _ in range(2)] == ["from env"] * 2
    assert (len(loopback.received), len(second.received)) == (1, 1)
    registry.unload()


def test_removed_endpoint_is_unknown(loopback: LoopbackServer) -> None:
    mmsdk_openai.add_endpoint("gonetest", loopback.url + "/v1")
    mmsdk_openai.remove_endpoint("gonetest")
    with pytest.raises(mmsdk.UnknownProviderError):
        mmsdk.understand("hi", provider="gonetest:m")


@pytest.mark.parametrize("name, urls", [
    pytest.param("openai", ["http://localhost:8000/v1"], id="reserved-name"),
    pytest.param("bad:name", ["http://localhost:8000/v1"], id="colon"),
    pytest.param("ok", [], id="no-url"),
    pytest.param("ok", ["localhost:8000"], id="no-scheme"),
])
def test_bad_endpoints_are_refused(name: str, urls: list[str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError):
        mmsdk_openai.add_endpoint(name, urls)


def test_providers_lists_an_endpoint_with_its_capabilities(pair, capsys) -> None:
    from mmsdk._cli import main

    [status] = [s for s in mmsdk.providers() if s.name == "vllmtest"]
    assert (status.capabilities, status.models, status.usable, status.local) == (
        [mmsdk.Capability.CLASSIFY, mmsdk.Capability.UNDERSTAND], [MODEL], True, True)
    assert main(["providers"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("vllmtest ")]
    assert line.split()[1:] == ["classify,understand", "ready"]


def test_an_endpoint_without_models_lists_what_its_server_serves(
        loopback: LoopbackServer, wire, endpoint_names: list[str]) -> None:
    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "vllm"}]}
    loopback.default = lambda received: Reply(
        body=models if received.path == "/v1/models" else wire.chat('{"label":"a"}', model=MODEL))
    mmsdk_openai.add_endpoint("disctest", loopback.url + "/v1")
    endpoint_names.append("disctest")
    [status] = [s for s in mmsdk.providers() if s.name == "disctest"]
    assert (status.models, status.usable) == ([MODEL], True)
    assert mmsdk.understand("hi", provider="disctest").provider == f"disctest:{MODEL}"
    assert mmsdk.classify(wire.png(), ["a", "b"], provider="disctest").provider == \
        f"disctest:{MODEL}"
    assert [r.path for r in loopback.received] == ["/v1/models", "/v1/chat/completions",
                                                   "/v1/chat/completions"]
