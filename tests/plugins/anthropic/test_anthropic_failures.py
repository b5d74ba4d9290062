"""Faults on the wire, as the anthropic SDK raises them, to mmsdk errors and routing decisions.

Every fault is scripted on the loopback server; each test names the mmsdk error
the plugin's boundary must produce (the core would otherwise wrap the raw SDK
exception in a plain ProviderError) and counts the requests that reached the
server (the SDK's own retries are off: one request per attempt).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from keyless import assert_keyless
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk.testing import TestProvider

FAST = mmsdk.Policy(retries=0, timeout=0.5)
# How long a hang or a mid-stream stall lasts: far past every timeout here plus any
# scheduling delay, so only a timeout can end the call early, however busy the machine.
STALL = 30.0


def _fault_cases(wire: Any) -> dict[str, tuple[Reply, type[mmsdk.MMSDKError]]]:
    return {
        "429": (Reply(status=429, body=wire.error_body("rate_limit_error", "slow down"),
                      headers={"retry-after": "7"}), mmsdk.RateLimitError),
        "500": (Reply(status=500, body=wire.error_body("api_error", "boom")),
                mmsdk.ProviderServerError),
        "503": (Reply(status=503, body=wire.error_body("api_error", "unavailable")),
                mmsdk.ProviderServerError),
        "529": (Reply(status=529, body=wire.error_body("overloaded_error", "Overloaded")),
                mmsdk.ProviderServerError),
        "401": (Reply(status=401, body=wire.error_body("authentication_error", "invalid x-api-key")),
                mmsdk.AuthenticationError),
        "403": (Reply(status=403, body=wire.error_body("permission_error", "no access")),
                mmsdk.AuthenticationError),
        "400-policy": (Reply(status=400, body=wire.error_body(
            "invalid_request_error", "Output blocked by content filtering policy")),
            mmsdk.ContentPolicyError),
        "hang": (Reply(hang=STALL, body=wire.message()), mmsdk.ProviderTimeoutError),
        "drop": (Reply(drop=True), mmsdk.ProviderConnectionError),
        "malformed-json": (Reply(body='{"id": "msg_01", "content": [', content_type="application/json"),
                           mmsdk.ProviderServerError),
        "refusal": (Reply(body=wire.message("", stop_reason="refusal")), mmsdk.ContentPolicyError),
    }


FAULTS = ["429", "500", "503", "529", "401", "403", "400-policy", "hang", "drop",
          "malformed-json", "refusal"]


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_maps_to_mmsdk_error(claude: LoopbackServer, wire: Any, fault: str) -> None:
    reply, expected = _fault_cases(wire)[fault]
    claude.queue(reply)
    with pytest.raises(expected) as caught:
        mmsdk.Router(wire.PROVIDER, policy=FAST).understand("Describe.",
                                                            images=[wire.png_bytes()])
    assert type(caught.value) is expected
    assert caught.value.provider == wire.PROVIDER
    assert len(claude.received) == 1  # SDK retries are off
    if fault == "429":
        assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]
    if fault == "529":
        assert caught.value.status == 529  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", ["429", "529", "hang", "drop", "malformed-json", "refusal"])
async def test_async_fault_maps_to_mmsdk_error(claude: LoopbackServer, wire: Any,
                                               fault: str) -> None:
    reply, expected = _fault_cases(wire)[fault]
    claude.queue(reply)
    with pytest.raises(expected) as caught:
        await mmsdk.Router(wire.PROVIDER, policy=FAST).aunderstand("Describe.")
    assert type(caught.value) is expected
    assert len(claude.received) == 1


def test_plain_bad_request_is_not_transient(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(Reply(status=400, body=wire.error_body("invalid_request_error",
                                                         "messages: too many images")))
    with pytest.raises(mmsdk.ProviderError, match="too many images") as caught:
        mmsdk.understand("Describe.", provider=wire.PROVIDER)
    assert caught.value.status == 400 and not caught.value.transient
    assert len(claude.received) == 1


def test_classify_fault_maps_through_same_boundary(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(Reply(status=529, body=wire.error_body("overloaded_error", "Overloaded")))
    with pytest.raises(mmsdk.ProviderServerError):
        mmsdk.Router(wire.PROVIDER, policy=FAST).classify(wire.png_bytes(), ["cat", "dog"])
    assert len(claude.received) == 1


# -- streams -----------------------------------------------------------------------
def _overloaded_stream(wire: Any) -> Reply:
    overloaded = ("error", wire.error_body("overloaded_error", "Overloaded"))
    return Reply(events=[*wire.events("partial", stop=False)[:1], overloaded])


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_overloaded_event_inside_stream_is_server_error(claude: LoopbackServer, wire: Any,
                                                              mode: str) -> None:
    claude.queue(_overloaded_stream(wire))
    router = mmsdk.Router(wire.PROVIDER, policy=FAST)
    with pytest.raises(mmsdk.ProviderServerError, match="overloaded") as caught:
        if mode == "sync":
            list(router.understand("Describe.", stream=True))
        else:
            stream = await router.aunderstand("Describe.", stream=True)
            [chunk async for chunk in stream]
    assert caught.value.status == 529
    assert len(claude.received) == 1


def _consume(router: mmsdk.Router) -> tuple[list[str], mmsdk.MMSDKError]:
    chunks: list[str] = []
    stream = router.understand("Describe.", stream=True)
    try:
        for chunk in stream:
            chunks.append(chunk)
    except mmsdk.MMSDKError as exc:
        return chunks, exc
    raise AssertionError(f"the stream ended without an error after {chunks}")


@pytest.mark.parametrize(("case", "expected"), [
    ("stall", mmsdk.ProviderTimeoutError),  # raw httpx2.ReadTimeout from the SDK
    ("drop", mmsdk.ProviderConnectionError),  # raw httpx2.RemoteProtocolError
    ("truncated", mmsdk.ProviderConnectionError),  # clean EOF before message_stop
    ("refusal", mmsdk.ContentPolicyError),  # message_delta stop_reason "refusal"
    ("malformed", mmsdk.ProviderServerError),  # json.JSONDecodeError from an event's data
], ids=["stall", "drop", "truncated", "refusal", "malformed"])
def test_mid_stream_fault_after_first_chunk(claude: LoopbackServer, wire: Any, case: str,
                                            expected: type[mmsdk.MMSDKError]) -> None:
    events = wire.events("Hello", " world", stop_reason="refusal" if case == "refusal" else
                         "end_turn", stop=case != "truncated")
    after_deltas = 5  # message_start, content_block_start, ping, two text deltas
    claude.queue({
        "stall": Reply(events=events, stall_after_events=after_deltas, stall=STALL),
        "drop": Reply(events=events, drop_after_events=after_deltas),
        "truncated": Reply(events=events),
        "refusal": Reply(events=events),
        "malformed": Reply(events=[*events[:after_deltas],
                                   "event: content_block_delta\ndata: {\"type\": \n\n"]),
    }[case])
    started = time.monotonic()
    chunks, error = _consume(mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(timeout=0.3)))
    assert type(error) is expected and error.provider == wire.PROVIDER
    assert chunks == ["Hello", " world"]
    assert error.partial_text == "Hello world"  # what the caller had received
    assert len(claude.received) == 1  # mid-stream: routing is settled, nothing retried
    # a stall is cut at the 0.3 s read timeout, long before STALL ends; the bound is
    # generous so a busy machine cannot fail it
    assert time.monotonic() - started < 0.3 + 10 < STALL


async def test_async_mid_stream_stall_and_drop(claude: LoopbackServer, wire: Any) -> None:
    events = wire.events("Hello", " world")
    claude.queue(Reply(events=events, stall_after_events=5),
                 Reply(events=events, drop_after_events=5))
    router = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(timeout=0.3))
    for expected in (mmsdk.ProviderTimeoutError, mmsdk.ProviderConnectionError):
        stream = await router.aunderstand("Describe.", stream=True)
        with pytest.raises(expected) as caught:
            async for _ in stream:
                pass
        assert stream.result is None
        assert caught.value.partial_text == "Hello world"
    assert len(claude.received) == 2


# -- routing: retries, Retry-After, fallback ------------------------------------------
@pytest.fixture
def backup() -> Any:
    with TestProvider("backup", answer="from backup") as provider:
        yield provider


def _router(wire: Any, **policy: Any) -> mmsdk.Router:
    return mmsdk.Router([wire.PROVIDER, "backup:echo"],
                        policy=mmsdk.Policy(retries=1, backoff=0, **policy))


def test_429_retry_after_is_honoured_then_succeeds(claude: LoopbackServer, wire: Any,
                                                   backup: TestProvider) -> None:
    claude.queue(Reply(status=429, body=wire.error_body("rate_limit_error", "slow down"),
                       headers={"retry-after": "0.2"}), wire.ok("second try"))
    started = time.monotonic()
    result = _router(wire).understand("Describe.")
    assert result.text == "second try" and result.provider == wire.PROVIDER
    assert time.monotonic() - started >= 0.2
    assert len(claude.received) == 2 and backup.calls == []
    assert [a.outcome for a in result.attempts] == ["error", "ok"]


def _within(seconds: float, call: Any) -> Any:
    """Run *call* in a daemon thread; fail (rather than hang) if it takes longer."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s: something slept"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_huge_retry_after_moves_on_without_sleeping(claude: LoopbackServer, wire: Any,
                                                    backup: TestProvider) -> None:
    claude.queue(Reply(status=429, body=wire.error_body("rate_limit_error", "slow down"),
                       headers={"retry-after": "3600"}))
    router = _router(wire, max_retry_after=30)
    # generous, yet well under the 30 s it would sleep if it honoured max_retry_after
    result = _within(20.0, lambda: router.understand("Describe."))
    assert result.text == "from backup"
    assert len(claude.received) == 1
    assert [(a.provider, a.outcome) for a in result.attempts] == \
        [(wire.PROVIDER, "error"), ("backup:echo", "ok")]
    assert (result.attempts[0].error or "").startswith("RateLimitError:")


@pytest.mark.parametrize("fault", ["500", "503", "529", "hang", "drop", "malformed-json"])
def test_transient_fault_is_retried_once_then_falls_back(claude: LoopbackServer, wire: Any,
                                                         backup: TestProvider,
                                                         fault: str) -> None:
    reply, expected = _fault_cases(wire)[fault]
    claude.queue(reply, reply)
    result = _router(wire, timeout=0.4).understand("Describe.")
    assert result.text == "from backup"
    assert len(claude.received) == 2  # one try plus one retry, each a single request
    errors = [a.error or "" for a in result.attempts if a.outcome == "error"]
    assert len(errors) == 2 and all(e.startswith(expected.__name__) for e in errors)


@pytest.mark.parametrize("fault", ["401", "400-policy", "refusal"])
def test_non_transient_fault_is_not_retried(claude: LoopbackServer, wire: Any,
                                            backup: TestProvider, fault: str) -> None:
    reply, expected = _fault_cases(wire)[fault]
    claude.queue(reply)
    if expected is mmsdk.ContentPolicyError:  # a refusal stops routing unless allowed
        with pytest.raises(mmsdk.ContentPolicyError):
            _router(wire).understand("Describe.")
        claude.queue(reply)
        result = _router(wire, fallback_on_policy_refusal=True).understand("Describe.")
        assert len(claude.received) == 2
    else:
        result = _router(wire).understand("Describe.")
        assert len(claude.received) == 1
    assert result.text == "from backup"
    assert (result.attempts[0].error or "").startswith(f"{expected.__name__}:")


def test_overloaded_stream_event_falls_back_to_next_stream(claude: LoopbackServer, wire: Any,
                                                           backup: TestProvider) -> None:
    claude.queue(_overloaded_stream(wire), _overloaded_stream(wire))
    stream = _router(wire).understand("Describe.", stream=True)
    assert "".join(stream) == "from backup"
    assert stream.provider == "backup:echo" and len(claude.received) == 2


# -- keys ------------------------------------------------------------------------------
def test_missing_key_is_unavailable_and_sends_nothing(loopback: LoopbackServer,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      wire: Any, backup: TestProvider) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)
    with pytest.raises(mmsdk.ProviderUnavailableError, match="ANTHROPIC_API_KEY") as caught:
        mmsdk.understand("Describe.", provider=wire.PROVIDER)
    assert "ANTHROPIC_API_KEY" in caught.value.fix
    result = mmsdk.understand("Describe.", provider=[wire.PROVIDER, "backup:echo"])
    assert result.attempts[0].outcome == "skipped" and result.text == "from backup"
    assert loopback.received == []


def test_planted_key_never_leaks(claude: LoopbackServer, wire: Any,
                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    claude.queue(Reply(status=401, body=wire.error_body(
        "authentication_error", f"invalid x-api-key {wire.KEY}")), wire.ok())
    with pytest.raises(mmsdk.AuthenticationError) as caught:
        mmsdk.understand("Describe.", provider=wire.PROVIDER)
    result = mmsdk.understand("Describe.", provider=wire.PROVIDER)
    from mmsdk._registry import get_registry

    model = get_registry().model(get_registry().resolve(wire.PROVIDER))
    exposed = [str(caught.value), repr(caught.value), caught.value.fix if hasattr(
        caught.value, "fix") else "", repr(result), result.model_dump_json(), repr(model),
        repr(model._clients), caplog.text,  # type: ignore[attr-defined]
        *(r.getMessage() for r in caplog.records)]
    assert wire.header(claude.received[0], "authorization") == f"Bearer {wire.KEY}"  # it was used
    assert caplog.records  # the SDK did log at debug level
    assert not [text for text in exposed if wire.KEY in text]


# -- errors for machines -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["sync", "async", "stream-open", "mid-stream", "list"])
async def test_no_key_anywhere_in_the_exception_chain(claude: LoopbackServer, wire: Any,
                                                      how: str) -> None:
    echoed = {"x-echoed-key": wire.KEY}
    claude.default = Reply(status=401, headers=echoed, body=wire.error_body(
        "authentication_error", f"invalid x-api-key {wire.KEY}"))
    router = mmsdk.Router(wire.PROVIDER, policy=FAST)
    with pytest.raises(mmsdk.MMSDKError) as caught:
        if how == "sync":
            router.understand("Describe.")
        elif how == "async":
            await router.aunderstand("Describe.")
        elif how == "stream-open":
            router.understand("Describe.", stream=True)
        elif how == "mid-stream":  # raw httpx2.RemoteProtocolError, whose request holds the key
            claude.default = Reply(events=wire.events("Hello", " world"), drop_after_events=5,
                                   headers=echoed)
            list(router.understand("Describe.", stream=True))
        else:
            mmsdk.Router([wire.PROVIDER, "anthropic:claude-opus-5-5"], policy=FAST).understand(
                "Describe.")
    assert wire.KEY in str(claude.received[0].headers)  # it was sent
    if how == "list":  # one typed error per failed attempt
        assert [type(e) for e in caught.value.errors] == [mmsdk.AuthenticationError] * 2  # type: ignore[attr-defined]
    assert_keyless(caught.value, wire.KEY)


@pytest.mark.parametrize(("status", "headers", "seconds"), [
    (529, {"retry-after": "4"}, 4.0),
    (503, {"retry-after-ms": "2500"}, 2.5),
], ids=["529", "503-ms"])
def test_overloaded_keeps_retry_after(claude: LoopbackServer, wire: Any, status: int,
                                      headers: dict[str, str], seconds: float) -> None:
    claude.queue(Reply(status=status, headers=headers,
                       body=wire.error_body("overloaded_error", "Overloaded")))
    with pytest.raises(mmsdk.ProviderServerError) as caught:
        mmsdk.Router(wire.PROVIDER, policy=FAST).understand("Describe.")
    error = caught.value
    assert (error.code, error.status, error.retry_after, error.retryable) == \
        ("server_error", status, seconds, True)
