"""openai: model lifecycles against the pinned clock (notes, warnings, retirement) and the
reasoning-model defaults."""

from __future__ import annotations

import asyncio
import datetime as dt

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk.plugin import ModelDeprecationWarning
from mmsdk.testing import pinned_today

GPT5_NOTE = ("openai:gpt-5 is deprecated and reaches end-of-life on 2026-12-11; "
             "move to 'openai:gpt-5.5'.")


def test_model_near_shutdown_warns_once_and_notes_every_call(api: LoopbackServer,
                                                             wire) -> None:
    # pinned to 2026-12-01: gpt-5 shuts down 2026-12-11, within 30 days
    api.default = Reply(body=wire.chat("ok", model="gpt-5"))
    with pytest.warns(ModelDeprecationWarning, match="2026-12-11") as caught:
        first = mmsdk.understand("hi", provider="openai:gpt-5")
    assert len(caught) == 1
    second = mmsdk.understand("hi", provider="openai:gpt-5")  # filterwarnings=error: no 2nd
    third = asyncio.run(mmsdk.aunderstand("hi", provider="openai:gpt-5"))  # async twin
    assert first.warnings == second.warnings == third.warnings == [GPT5_NOTE]
    assert len(api.received) == 3


def test_model_far_from_shutdown_gets_a_note_but_no_warning(api: LoopbackServer, wire) -> None:
    api.queue(Reply(events=wire.stream("ok")))
    stream = mmsdk.understand("hi", provider="openai:gpt-4.1", stream=True)  # 44 days left
    assert list(stream) == ["ok"]
    assert stream.result.warnings == [
        "openai:gpt-4.1 is deprecated and reaches end-of-life on 2027-01-14; "
        "move to 'openai:gpt-5.5'."]


def test_classify_results_carry_the_note(api: LoopbackServer, wire) -> None:
    api.default = Reply(body=wire.chat('{"label":"cat"}', model="gpt-4o-mini"))
    results = mmsdk.classify([wire.png(), wire.png((8, 8))], ["cat", "dog"],
                             provider="openai:gpt-4o-mini")
    assert [r.warnings for r in results] == [[
        "openai:gpt-4o-mini is deprecated and reaches end-of-life on 2027-01-14; "
        "move to 'openai:gpt-5.4-mini'."]] * 2


@pytest.mark.parametrize("day", [dt.date(2026, 12, 11), dt.date(2027, 3, 1)],
                         ids=["shutdown-day", "after"])
def test_model_past_shutdown_fails_before_any_request_naming_successor(
        api: LoopbackServer, day: dt.date) -> None:
    with pinned_today(day), pytest.raises(mmsdk.UnknownProviderError,
                                          match=r"2026-12-11.*'openai:gpt-5\.5'"):
        mmsdk.understand("hi", provider="openai:gpt-5")
    assert api.received == []


def test_shutdown_passing_in_a_running_process_stops_calls(api: LoopbackServer, wire) -> None:
    api.default = Reply(body=wire.chat("ok", model="gpt-4.1"))
    assert mmsdk.understand("hi", provider="openai:gpt-4.1").text == "ok"  # resolved, loaded
    with pinned_today(dt.date(2027, 1, 14)), pytest.raises(mmsdk.UnknownProviderError,
                                                           match=r"openai:gpt-5\.5"):
        mmsdk.understand("hi", provider="openai:gpt-4.1")
    assert len(api.received) == 1


def test_retired_mapping_is_read_against_the_clock() -> None:
    retired = mmsdk_openai.RETIRED
    assert "gpt-5" not in retired and "dall-e-3" in retired
    with pinned_today(dt.date(2026, 12, 11)):
        assert "gpt-5" in retired and "gpt-4.1" not in retired
        assert "'openai:gpt-5.5'" in retired["gpt-5"]
    with pinned_today(dt.date(2026, 5, 11)):
        assert "dall-e-3" not in retired


def test_compatible_servers_do_not_follow_openai_lifecycles(
        loopback: LoopbackServer, wire, endpoint_names: list[str]) -> None:
    # a self-hosted model may carry an OpenAI name; OpenAI's shutdown dates do not apply
    mmsdk_openai.add_endpoint("lifecycletest", [loopback.url + "/v1"], models=["gpt-4.1"])
    endpoint_names.append("lifecycletest")
    loopback.default = Reply(body=wire.chat("served"))
    with pinned_today(dt.date(2027, 6, 1)):
        result = mmsdk.understand("hi", provider="lifecycletest:gpt-4.1")
    assert (result.text, result.warnings) == ("served", [])


def test_default_reasoning_model_is_sent_no_temperature(api: LoopbackServer, wire) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="temperature"):
        mmsdk.understand("hi", provider="openai", temperature=0.2)
    assert api.received == []
    api.queue(Reply(body=wire.chat("ok", model="gpt-5.5")))
    lenient = mmsdk.Router("openai", policy=mmsdk.Policy(lenient=True))
    result = lenient.understand("hi", temperature=0.2, max_tokens=30)
    body = wire.body(api.received[0])
    assert body["model"] == "gpt-5.5" and "temperature" not in body
    assert body["max_completion_tokens"] == 30 and "max_tokens" not in body
    assert any("temperature" in w for w in result.warnings)
