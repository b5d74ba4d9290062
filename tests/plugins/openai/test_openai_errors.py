"""openai: every fault the SDK can raise, mapped at the plugin's boundary, and what routing does.

Each fault is injected at the loopback server; the assertions name the mapped
mmsdk error class, so removing a mapping (the core then wraps the raw SDK
exception in a plain ProviderError) fails them.
"""

from __future__ import annotations

import json
import logging
import time
import traceback

import httpx2
import openai
import pytest
from keyless import assert_keyless
from loopback import LoopbackServer, Reply
from mmsdk_openai._errors import boundary

import mmsdk
from mmsdk.testing import TestProvider

ONE_SHOT = mmsdk.Policy(retries=0, timeout=0.3)
# Far longer than the timeout plus any scheduling delay: a call that ends well before
# it was cut by the timeout, however loaded the machine (the server thread is a daemon).
HANG = 30.0


ERRORS = {
    "429": mmsdk.RateLimitError,
    "500": mmsdk.ProviderServerError,
    "503": mmsdk.ProviderServerError,
    "hang": mmsdk.ProviderTimeoutError,
    "dropped": mmsdk.ProviderConnectionError,
    "malformed-json": mmsdk.ProviderServerError,
    "bad-key": mmsdk.AuthenticationError,
}
TRANSIENT = [name for name in ERRORS if name != "bad-key"]


def fault(wire, name: str) -> Reply:
    """The loopback reply that injects fault *name*."""
    return {
        "429": lambda: wire.error(429, "Rate limit reached", code="rate_limit_exceeded",
                                  kind="requests", headers={"Retry-After": "7"}),
        "500": lambda: wire.error(500, "The server had an error", kind="server_error"),
        "503": lambda: wire.error(503, "Slow down", kind="server_error"),
        "hang": lambda: Reply(body=wire.chat("late"), hang=HANG),
        "dropped": lambda: Reply(drop=True),
        "malformed-json": lambda: Reply(body='{"id": "chatcmpl-1", "choices": [',
                                        content_type="application/json"),
        "bad-key": lambda: wire.error(401, f"Incorrect API key provided: {wire.KEY}.",
                                      code="invalid_api_key"),
    }[name]()


@pytest.mark.parametrize("name", list(ERRORS))
def test_fault_maps_to_its_mmsdk_error_after_one_request(api: LoopbackServer, wire,
                                                         name: str) -> None:
    error = ERRORS[name]
    api.queue(fault(wire, name))
    started = time.monotonic()
    with pytest.raises(error) as caught:
        mmsdk.Router(wire.PROVIDER, ONE_SHOT).understand("Describe", images=[wire.png()])
    assert type(caught.value) is error
    assert caught.value.provider == wire.PROVIDER
    assert len(api.received) == 1  # max_retries=0: the SDK did not retry on its own
    # a hang ends in ProviderTimeoutError (not the "late" answer) well before HANG:
    # cut at the 0.3 s timeout; the bound is generous so a busy machine cannot fail it
    assert time.monotonic() - started < ONE_SHOT.timeout + 10 < HANG
    if error is mmsdk.RateLimitError:
        assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("name", TRANSIENT)
def test_transient_fault_falls_back_to_the_next_provider(api: LoopbackServer, wire,
                                                         name: str) -> None:
    error = ERRORS[name]
    api.queue(fault(wire, name))
    with TestProvider("fallbacktest") as fallback:
        result = mmsdk.Router([wire.PROVIDER, "fallbacktest:x"], ONE_SHOT).understand(
            "Describe", images=[wire.png()])
    assert result.provider == "fallbacktest:x" and len(fallback.calls) == 1
    first, second = result.attempts
    assert (first.provider, first.outcome) == (wire.PROVIDER, "error")
    assert first.error.startswith(f"{error.__name__}:")
    assert second.outcome == "ok"


@pytest.mark.parametrize("name", ["429", "500", "hang", "dropped", "malformed-json"])
async def test_async_fault_maps_too(api: LoopbackServer, wire, name: str) -> None:
    api.queue(fault(wire, name))
    with pytest.raises(ERRORS[name]):
        await mmsdk.Router(wire.PROVIDER, ONE_SHOT).aunderstand("Describe")
    assert len(api.received) == 1


def test_router_retries_a_429_after_its_retry_after(api: LoopbackServer, wire) -> None:
    api.queue(wire.error(429, "Rate limit reached", headers={"Retry-After": "0.3"}),
              Reply(body=wire.chat("Second time lucky.")))
    started = time.monotonic()
    result = mmsdk.Router(wire.PROVIDER, mmsdk.Policy(retries=1, backoff=0)).understand("Hi")
    assert result.text == "Second time lucky."
    assert time.monotonic() - started >= 0.3
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert result.attempts[0].error.startswith("RateLimitError:")
    assert len(api.received) == 2


def test_bad_key_is_not_retried_but_falls_back(api: LoopbackServer, wire) -> None:
    api.default = wire.error(401, "Incorrect API key provided.", code="invalid_api_key")
    with TestProvider("fallbacktest"):
        result = mmsdk.Router([wire.PROVIDER, "fallbacktest:x"],
                              mmsdk.Policy(retries=1, backoff=0)).understand("Hi")
    assert result.provider == "fallbacktest:x"
    assert result.attempts[0].error.startswith("AuthenticationError:")
    assert len(api.received) == 1


@pytest.mark.parametrize("fallback_on_refusal", [False, True], ids=["raise", "fall-back"])
def test_content_policy_refusal_falls_back_only_when_asked(api: LoopbackServer, wire,
                                                           fallback_on_refusal: bool) -> None:
    api.default = Reply(body=wire.chat(None, refusal="I can't help with that."))
    policy = mmsdk.Policy(retries=1, backoff=0, fallback_on_policy_refusal=fallback_on_refusal)
    with TestProvider("fallbacktest") as fallback:
        router = mmsdk.Router([wire.PROVIDER, "fallbacktest:x"], policy)
        if fallback_on_refusal:
            assert router.understand("Hi").provider == "fallbacktest:x"
        else:
            with pytest.raises(mmsdk.ContentPolicyError):
                router.understand("Hi")
            assert fallback.calls == []
    assert len(api.received) == 1  # a refusal is never retried


def test_image_refusal_does_not_fall_back_by_default(api: LoopbackServer, wire) -> None:
    api.queue(wire.error(400, "Rejected by our safety system.", code="content_policy_violation"))
    with TestProvider("fallbacktest") as fallback, pytest.raises(mmsdk.ContentPolicyError):
        mmsdk.generate("x", provider=["openai:gpt-image-2", "fallbacktest:x"])
    assert fallback.calls == []


@pytest.mark.parametrize("first_event", [False, True], ids=["mid-stream", "first-event"])
def test_error_event_inside_a_stream(api: LoopbackServer, wire, first_event: bool) -> None:
    error_event = {"error": {"message": "The model is overloaded.", "type": "server_error",
                             "code": None}}
    events = [error_event] if first_event else [wire.chunk("A red "), error_event]
    api.queue(Reply(events=events))
    with TestProvider("fallbacktest"):
        router = mmsdk.Router([wire.PROVIDER, "fallbacktest:x"], ONE_SHOT)
        if first_event:  # nothing was yielded yet: routing falls back
            stream = router.understand("Describe", stream=True)
            assert "".join(stream) == "echo: Describe (0 image(s))"
            assert stream.result.attempts[0].error.startswith("ProviderServerError:")
        else:  # text was already yielded: the mapped error reaches the caller
            stream = router.understand("Describe", stream=True)
            assert next(stream) == "A red "
            with pytest.raises(mmsdk.ProviderServerError, match="overloaded") as caught:
                next(stream)
            assert caught.value.partial_text == "A red "  # what the caller had received


def test_stream_stalled_past_the_timeout(api: LoopbackServer, wire) -> None:
    # hang=0: loopback stalls 5 s (in its own thread) after the first event; hang>0 would
    # also delay the headers.
    api.queue(Reply(events=wire.stream("A ", "B"), stall_after_events=1))
    stream = mmsdk.Router(wire.PROVIDER, ONE_SHOT).understand("Describe", stream=True)
    assert next(stream) == "A "
    with pytest.raises(mmsdk.ProviderTimeoutError) as caught:
        next(stream)
    assert caught.value.partial_text == "A "


def test_missing_key_makes_openai_unavailable_without_a_request(
        api: LoopbackServer, wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(mmsdk.ProviderUnavailableError, match="OPENAI_API_KEY") as caught:
        mmsdk.understand("Hi", provider=wire.PROVIDER)
    assert caught.value.fix.startswith("export OPENAI_API_KEY=")
    assert api.received == []


@pytest.mark.parametrize("model, successor", [
    pytest.param("dall-e-3", "gpt-image-2", id="dall-e-3"),
    pytest.param("dall-e-2", "gpt-image-2", id="dall-e-2"),
    pytest.param("gpt-image-1", "gpt-image-2.5-sunburst", id="gpt-image-1"),
])
def test_retired_model_fails_before_any_request(api: LoopbackServer, model: str,
                                                successor: str) -> None:
    with pytest.raises(mmsdk.UnknownProviderError, match="retired") as caught:
        mmsdk.generate("a cat", provider=f"openai:{model}")
    assert successor in caught.value.message
    assert api.received == []


def test_planted_key_never_reaches_errors_logs_or_reprs(api: LoopbackServer, wire,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # The server echoes the key, as OpenAI's 401 does (partly masked there).
    api.default = wire.error(401, f"Incorrect API key provided: {wire.KEY}.",
                             code="invalid_api_key")
    with TestProvider("fallbacktest"):
        result = mmsdk.understand("Hi", provider=[wire.PROVIDER, "fallbacktest:x"])
    with pytest.raises(mmsdk.AuthenticationError) as caught:
        mmsdk.understand("Hi", provider=wire.PROVIDER)
    error = caught.value
    assert wire.header(api.received[0], "authorization") == f"Bearer {wire.KEY}"  # it was used
    from mmsdk._registry import get_registry

    model = get_registry().model(get_registry().resolve(wire.PROVIDER))
    texts = [str(error), repr(error), error.message, repr(result.attempts), caplog.text,
             repr(model), repr(model.pool), repr(model.pool._connect()), repr(model.pool.clients),
             repr(error.__cause__), "".join(traceback.format_exception(error))]
    assert error.__suppress_context__  # the SDK exception (with the raw body) is not shown
    for text in texts:
        assert wire.KEY not in text
    assert "Incorrect API key provided" in error.message


@pytest.mark.parametrize("raw, error", [
    pytest.param(lambda: httpx2.ReadTimeout("timed out"), mmsdk.ProviderTimeoutError,
                 id="httpx2-timeout"),
    pytest.param(lambda: httpx2.RemoteProtocolError("peer closed connection"),
                 mmsdk.ProviderConnectionError, id="httpx2-protocol"),
    pytest.param(lambda: httpx2.ConnectError("refused"), mmsdk.ProviderConnectionError,
                 id="httpx2-connect"),
    pytest.param(lambda: json.JSONDecodeError("Expecting value", "{", 1),
                 mmsdk.ProviderServerError, id="json"),
    pytest.param(lambda: openai.APIError("boom", httpx2.Request("POST", "http://x"),
                                         body={"code": "rate_limit_exceeded"}),
                 mmsdk.RateLimitError, id="stream-rate-limit-event"),
    pytest.param(lambda: openai.APIError("no", httpx2.Request("POST", "http://x"),
                                         body={"code": "content_policy_violation"}),
                 mmsdk.ContentPolicyError, id="stream-policy-event"),
])
def test_raw_transport_and_decoding_errors_are_mapped(raw, error: type) -> None:
    """What escapes the SDK unwrapped (httpx2, json) is mapped at the same boundary."""
    with pytest.raises(error) as caught, boundary("openai:gpt-4.1"):
        raise raw()
    assert type(caught.value) is error and caught.value.provider == "openai:gpt-4.1"


def test_the_boundary_leaves_foreign_exceptions_alone() -> None:
    with pytest.raises(KeyError), boundary("openai:gpt-4.1"):
        raise KeyError("not a provider failure")


# -- errors for machines -------------------------------------------------------------------
def _echo(wire) -> Reply:
    """A 401 whose body and headers echo the key the request carried."""
    reply = wire.error(401, f"Incorrect API key provided: {wire.KEY}.", code="invalid_api_key",
                       headers={"x-echoed-key": wire.KEY})
    return reply


@pytest.mark.parametrize("how", ["sync", "async", "stream-open", "mid-stream", "list"])
async def test_no_key_anywhere_in_the_exception_chain(api: LoopbackServer, wire,
                                                      how: str) -> None:
    api.default = _echo(wire)
    router = mmsdk.Router(wire.PROVIDER, ONE_SHOT)
    with pytest.raises(mmsdk.MMSDKError) as caught:
        if how == "sync":
            router.understand("Describe")
        elif how == "async":
            await router.aunderstand("Describe")
        elif how == "stream-open":
            router.understand("Describe", stream=True)
        elif how == "mid-stream":
            api.default = Reply(events=wire.stream("A ", "B"), drop_after_events=1,
                                headers={"x-echoed-key": wire.KEY})
            stream = router.understand("Describe", stream=True)
            list(stream)
        else:
            mmsdk.Router([wire.PROVIDER, "openai:gpt-5.5"], ONE_SHOT).understand("Describe")
    assert wire.header(api.received[0], "authorization") == f"Bearer {wire.KEY}"  # it was sent
    assert_keyless(caught.value, wire.KEY)
    if how == "list":  # one typed error per failed attempt
        assert [type(e) for e in caught.value.errors] == [mmsdk.AuthenticationError] * 2  # type: ignore[attr-defined]


def test_a_503_keeps_retry_after_status_code_and_endpoint(api: LoopbackServer, wire) -> None:
    api.queue(wire.error(503, "Slow down", kind="server_error", headers={"Retry-After": "3"}))
    with pytest.raises(mmsdk.ProviderServerError) as caught:
        mmsdk.Router(wire.PROVIDER, ONE_SHOT).understand("Describe")
    error = caught.value
    assert (error.code, error.status, error.retry_after, error.retryable) == \
        ("server_error", 503, 3.0, True)
    assert error.endpoint == f"{api.url}/v1"  # the base URL, not the operation's path


def test_a_connection_failure_names_its_endpoint(wire, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as unused:  # a port with nothing listening
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", wire.KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(mmsdk.ProviderConnectionError) as caught:
        mmsdk.Router(wire.PROVIDER, ONE_SHOT).understand("Describe")
    assert caught.value.code == "connection" and caught.value.retryable
    assert caught.value.endpoint == f"http://127.0.0.1:{port}/v1"
    # what failed, as anthropic and gemini say it (the SDK only says 'Connection error.')
    assert "connection failed: ConnectError: " in str(caught.value)
    assert "refused" in str(caught.value).lower()
