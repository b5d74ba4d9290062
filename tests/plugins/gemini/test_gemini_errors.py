"""Faults on the wire become mmsdk errors, and routing acts on them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from keyless import assert_keyless
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk.testing import TestProvider

NO_RETRY = mmsdk.Policy(retries=0, timeout=0.4)
# Far past the timeout plus any scheduling delay: only the timeout can end a hung call.
HANG = 30.0

# Each fault: (reply built from the Wire helpers, the mmsdk error it must become).
FAULTS: dict[str, tuple[Callable[[Any], Reply], type[mmsdk.MMSDKError]]] = {
    "429-retry-after": (lambda w: Reply(status=429, headers={"Retry-After": "7"},
                                        body=w.error(429, "RESOURCE_EXHAUSTED", "quota")),
                        mmsdk.RateLimitError),
    "500": (lambda w: Reply(status=500, body=w.error(500, "INTERNAL", "boom")),
            mmsdk.ProviderServerError),
    "503": (lambda w: Reply(status=503, body=w.error(503, "UNAVAILABLE", "overloaded")),
            mmsdk.ProviderServerError),
    "hang": (lambda w: Reply(body=w.answer(), hang=HANG), mmsdk.ProviderTimeoutError),
    "dropped-connection": (lambda w: Reply(drop=True), mmsdk.ProviderConnectionError),
    "malformed-json": (lambda w: Reply(body='{"candidates": [{"content": '),
                       mmsdk.ProviderServerError),
    "bad-key-400": (lambda w: Reply(status=400, body=w.error(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com"})), mmsdk.AuthenticationError),
    "403": (lambda w: Reply(status=403, body=w.error(403, "PERMISSION_DENIED", "no access")),
            mmsdk.AuthenticationError),
    "prompt-blocked": (lambda w: Reply(body={
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}),
        mmsdk.ContentPolicyError),
    "finish-safety": (lambda w: Reply(body={"candidates": [{
        "finishReason": "SAFETY", "index": 0, "safetyRatings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]}]}),
        mmsdk.ContentPolicyError),
    "finish-prohibited": (lambda w: Reply(body={"candidates": [
        {"finishReason": "PROHIBITED_CONTENT", "index": 0}]}), mmsdk.ContentPolicyError),
}


def _fails(call: Any) -> mmsdk.MMSDKError:
    with pytest.raises(mmsdk.MMSDKError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_maps_to_the_mmsdk_error(api: LoopbackServer, wire, fault: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    build, error = FAULTS[fault]
    api.queue(build(wire))
    router = mmsdk.Router(wire.PROVIDER, policy=NO_RETRY)
    raised = _fails(lambda: router.understand("Describe", images=[wire.picture()]))
    assert type(raised) is error
    assert len(api.received) == 1  # the SDK did not retry
    assert [a.outcome for a in raised.attempts] == ["error"]
    if error is mmsdk.RateLimitError:
        assert raised.retry_after == 7.0  # type: ignore[attr-defined]
    texts = [str(raised), repr(raised), caplog.text, repr(raised.attempts),
             repr(router.registry.model(router.candidates(mmsdk.Capability.UNDERSTAND)[0]))]
    assert not any(wire.KEY in text for text in texts)


@pytest.mark.parametrize("fault", ["429-retry-after", "hang", "bad-key-400", "prompt-blocked",
                                   "dropped-connection"])
async def test_async_fault_maps_to_the_mmsdk_error(api: LoopbackServer, wire, fault: str) -> None:
    build, error = FAULTS[fault]
    api.queue(build(wire))
    router = mmsdk.Router(wire.PROVIDER, policy=NO_RETRY)
    with pytest.raises(mmsdk.MMSDKError) as caught:
        await router.aunderstand("Describe", images=[wire.picture()])
    assert type(caught.value) is error
    assert len(api.received) == 1


def test_rate_limit_reads_google_retry_info(api: LoopbackServer, wire) -> None:
    api.queue(Reply(status=429, body=wire.error(
        429, "RESOURCE_EXHAUSTED", "quota",
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"})))
    raised = _fails(lambda: mmsdk.Router(wire.PROVIDER, policy=NO_RETRY).understand("Hi"))
    assert type(raised) is mmsdk.RateLimitError and raised.retry_after == 37.0  # type: ignore[attr-defined]


def test_a_429_is_retried_once_by_the_router(api: LoopbackServer, wire) -> None:
    api.queue(Reply(status=429, body=wire.error(429, "RESOURCE_EXHAUSTED", "slow down"),
                    headers={"Retry-After": "0"}),
              Reply(body=wire.answer("Second time lucky.")))
    router = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(retries=1, backoff=0))
    result = router.understand("Hi", images=[wire.picture()])
    assert result.text == "Second time lucky."
    assert len(api.received) == 2  # exactly one request per attempt
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert "RateLimitError" in (result.attempts[0].error or "")


def test_a_bad_key_is_not_retried(api: LoopbackServer, wire) -> None:
    api.queue(Reply(status=400, body=wire.error(400, "INVALID_ARGUMENT", "API key not valid.",
                                                {"reason": "API_KEY_INVALID"})))
    router = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(retries=2, backoff=0))
    raised = _fails(lambda: router.understand("Hi"))
    assert type(raised) is mmsdk.AuthenticationError
    assert len(api.received) == 1


@pytest.mark.parametrize("fault", ["503", "hang", "dropped-connection", "429-retry-after"])
def test_transient_failures_fall_back_to_the_next_provider(api: LoopbackServer, wire,
                                                           fault: str) -> None:
    build, error = FAULTS[fault]
    api.queue(build(wire))
    with TestProvider("fake", local=False) as fake:
        router = mmsdk.Router([wire.PROVIDER, "fake:echo"], policy=NO_RETRY)
        result = router.understand("Hi", images=[wire.picture()])
    assert result.provider == "fake:echo" and len(fake.calls) == 1
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        (wire.PROVIDER, "error"), ("fake:echo", "ok")]
    assert error.__name__ in (result.attempts[0].error or "")
    assert len(api.received) == 1


def test_a_policy_refusal_does_not_fall_back_by_default(api: LoopbackServer, wire) -> None:
    api.queue(FAULTS["finish-safety"][0](wire))
    with TestProvider("fake", local=False) as fake:
        router = mmsdk.Router([wire.PROVIDER, "fake:echo"], policy=NO_RETRY)
        raised = _fails(lambda: router.understand("Hi"))
    assert type(raised) is mmsdk.ContentPolicyError and "SAFETY" in str(raised)
    assert fake.calls == []


_FIRST = {"candidates": [{"content": {"parts": [{"text": "A red "}], "role": "model"},
                         "index": 0}]}
STREAM_FAULTS: dict[str, tuple[Reply, type[mmsdk.MMSDKError]]] = {
    # (a hang would also delay the headers: stall after the first event instead)
    "stall-mid-stream": (Reply(events=[_FIRST, _FIRST], stall_after_events=1, stall=HANG),
                         mmsdk.ProviderTimeoutError),
    "error-event": (Reply(events=[_FIRST, {"error": {"code": 500, "message": "internal",
                                                     "status": "INTERNAL"}}]),
                    mmsdk.ProviderServerError),
    "dropped-mid-stream": (Reply(events=[_FIRST, _FIRST], drop_after_events=1),
                           mmsdk.ProviderConnectionError),
    "safety-mid-stream": (Reply(events=[_FIRST, {"candidates": [{"finishReason": "SAFETY",
                                                                  "index": 0}]}]),
                          mmsdk.ContentPolicyError),
}


@pytest.mark.parametrize("fault", list(STREAM_FAULTS))
def test_stream_fault_after_the_first_chunk(api: LoopbackServer, wire, fault: str) -> None:
    reply, error = STREAM_FAULTS[fault]
    api.queue(reply)
    stream = mmsdk.Router(wire.PROVIDER, policy=NO_RETRY).understand("Hi", stream=True)
    assert next(stream) == "A red "
    raised = _fails(lambda: list(stream))
    assert type(raised) is error
    assert len(api.received) == 1


@pytest.mark.parametrize("fault", list(STREAM_FAULTS))
async def test_async_stream_fault_after_the_first_chunk(api: LoopbackServer, wire,
                                                        fault: str) -> None:
    reply, error = STREAM_FAULTS[fault]
    api.queue(reply)
    stream = await mmsdk.Router(wire.PROVIDER, policy=NO_RETRY).aunderstand("Hi", stream=True)
    assert await stream.__anext__() == "A red "
    with pytest.raises(mmsdk.MMSDKError) as caught:
        async for _ in stream:
            pass
    assert type(caught.value) is error


def test_a_stream_that_fails_to_open_is_retried(api: LoopbackServer, wire) -> None:
    api.queue(Reply(status=503, body=wire.error(503, "UNAVAILABLE", "busy")),
              Reply(events=wire.chunks("ok")))
    stream = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(retries=1, backoff=0)).understand(
        "Hi", stream=True)
    assert list(stream) == ["ok"]
    assert [r.path for r in api.received] == [wire.STREAM_PATH, wire.STREAM_PATH]


def test_missing_key_makes_the_provider_unavailable_without_a_request(
        loopback: LoopbackServer, wire, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback.url)
    raised = _fails(lambda: mmsdk.understand("Hi", images=[wire.picture()],
                                             provider=wire.PROVIDER))
    assert type(raised) is mmsdk.ProviderUnavailableError
    assert "GEMINI_API_KEY" in str(raised) and "GEMINI_API_KEY" in raised.fix  # type: ignore[attr-defined]
    assert loopback.received == []


def test_google_api_key_is_accepted_too(loopback: LoopbackServer, wire, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback.url)
    monkeypatch.setenv("GOOGLE_API_KEY", wire.KEY)
    loopback.queue(Reply(body=wire.answer()))
    assert mmsdk.understand("Hi", provider=wire.PROVIDER).text == "A red square."
    assert loopback.received[0].headers["x-goog-api-key"] == wire.KEY


# -- errors for machines -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["sync", "async", "stream-open", "mid-stream", "list"])
async def test_no_key_anywhere_in_the_exception_chain(api: LoopbackServer, wire,
                                                      how: str) -> None:
    echoed = {"x-echoed-key": wire.KEY}
    api.default = Reply(status=400, headers=echoed, body=wire.error(
        400, "INVALID_ARGUMENT", f"API key not valid: {wire.KEY}",
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}))
    router = mmsdk.Router(wire.PROVIDER, policy=NO_RETRY)
    with pytest.raises(mmsdk.MMSDKError) as caught:
        if how == "sync":
            router.understand("Hi")
        elif how == "async":
            await router.aunderstand("Hi")
        elif how == "stream-open":
            router.understand("Hi", stream=True)
        elif how == "mid-stream":  # raw httpx2.RemoteProtocolError, whose request holds the key
            api.default = Reply(events=[_FIRST, _FIRST], drop_after_events=1, headers=echoed)
            list(router.understand("Hi", stream=True))
        else:
            mmsdk.Router([wire.PROVIDER, "gemini:gemini-2.5-flash"], policy=NO_RETRY).understand(
                "Hi")
    assert api.received[0].headers["x-goog-api-key"] == wire.KEY  # it was sent
    if how == "list":  # one typed error per failed attempt
        assert [type(e) for e in caught.value.errors] == [mmsdk.AuthenticationError] * 2  # type: ignore[attr-defined]
    assert_keyless(caught.value, wire.KEY)


def test_a_503_keeps_retry_after(api: LoopbackServer, wire) -> None:
    api.queue(Reply(status=503, headers={"Retry-After": "3"},
                    body=wire.error(503, "UNAVAILABLE", "overloaded")))
    raised = _fails(lambda: mmsdk.Router(wire.PROVIDER, policy=NO_RETRY).understand("Hi"))
    assert type(raised) is mmsdk.ProviderServerError
    assert (raised.code, raised.status, raised.retry_after, raised.retryable) == \
        ("server_error", 503, 3.0, True)  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", ["stall-mid-stream", "dropped-mid-stream"])
def test_a_stream_fault_carries_the_text_received(api: LoopbackServer, wire, fault: str) -> None:
    api.queue(STREAM_FAULTS[fault][0])
    stream = mmsdk.Router(wire.PROVIDER, policy=NO_RETRY).understand("Hi", stream=True)
    assert next(stream) == "A red "
    assert _fails(lambda: list(stream)).partial_text == "A red "
