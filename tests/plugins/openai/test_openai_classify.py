"""openai: classification through a chat model, scored from logprobs or by the rule."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from loopback import LoopbackServer, Reply
from mmsdk_openai._classify import label_logprobs

import mmsdk

LABELS = ["cat", "dog", "car"]


def _tokens(*items: tuple[str, float, dict[str, float]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(token=token, logprob=lp, top_logprobs=[
        SimpleNamespace(token=alt, logprob=alt_lp) for alt, alt_lp in alts.items()])
        for token, lp, alts in items]


def test_scores_come_from_the_label_token_logprobs(api: LoopbackServer, wire) -> None:
    logprobs = wire.logprobs([('{"', 0.0, {}), ("label", 0.0, {}), ('":"', 0.0, {}),
                              ("cat", -0.1, {"cat": -0.1, "dog": -2.5, "car": -4.0}),
                              ('"}', 0.0, {})])
    api.queue(Reply(body=wire.chat('{"label":"cat"}', logprobs=logprobs)))
    result = mmsdk.classify(wire.png(), LABELS, provider=wire.PROVIDER)

    weights = {"cat": math.exp(-0.1), "dog": math.exp(-2.5), "car": math.exp(-4.0)}
    total = sum(weights.values())
    assert result.top[0] == "cat"
    assert result.scores == pytest.approx({k: v / total for k, v in weights.items()})
    assert result.provider == wire.PROVIDER and result.usage.input_tokens == 42
    body = wire.body(api.received[0])
    assert body["logprobs"] is True and body["top_logprobs"] == 11
    spec = body["response_format"]["json_schema"]
    assert spec["strict"] is True
    assert spec["schema"]["properties"]["label"]["enum"] == LABELS
    content = body["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]


def test_without_logprobs_the_documented_rule_applies(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat('{"label": "dog"}')))
    result = mmsdk.classify(wire.png(), LABELS, provider=wire.PROVIDER,
                            options={"logprobs": False})
    assert result.scores == {"cat": 0.0, "dog": 1.0, "car": 0.0}
    assert "logprobs" not in wire.body(api.received[0])


def test_multi_label_reads_every_array_item(api: LoopbackServer, wire) -> None:
    logprobs = wire.logprobs([('{"', 0.0, {}), ("present", 0.0, {}), ('":["', 0.0, {}),
                              ("cat", -0.05, {"cat": -0.05, "car": -3.0}),
                              ('","', 0.0, {}), ("dog", -0.2, {"dog": -0.2, "car": -1.5}),
                              ('"]}', 0.0, {})])
    api.queue(Reply(body=wire.chat('{"present":["cat","dog"]}', logprobs=logprobs)))
    result = mmsdk.classify(wire.png(), LABELS, provider=wire.PROVIDER, multi_label=True)
    assert result.scores == pytest.approx({"cat": math.exp(-0.05), "dog": math.exp(-0.2),
                                           "car": math.exp(-1.5)})
    schema = wire.body(api.received[0])["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["present"]["items"]["enum"] == LABELS


def test_several_images_give_one_result_each_in_order(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat('{"label":"car"}')), Reply(body=wire.chat('{"label":"dog"}')))
    results = mmsdk.classify([wire.png(), wire.png((8, 8))], LABELS, provider=wire.PROVIDER,
                             options={"logprobs": False})
    assert [r.top[0] for r in results] == ["car", "dog"]
    assert len(api.received) == 2


async def test_async_classify(api: LoopbackServer, wire) -> None:
    api.default = Reply(body=wire.chat('{"label":"cat"}'))
    results = await mmsdk.aclassify([wire.png(), wire.png()], LABELS, provider="openai")
    assert [r.top for r in results] == [("cat", 1.0), ("cat", 1.0)]
    # the default is a reasoning model: no logprobs asked for, scored by the rule
    assert [(wire.body(r)["model"], "logprobs" in wire.body(r)) for r in api.received] == \
        [("gpt-5.5", False)] * 2
    assert all(r.warnings == [] for r in results)  # no announced shutdown


def test_label_split_across_tokens_with_the_quote_attached() -> None:
    tokens = _tokens(('{"label": "', 0.0, {}), ("ca", -0.3, {"ca": -0.3, "do": -1.4}),
                     ('t"}', 0.0, {}))
    assert label_logprobs(tokens, '{"label": "cat"}', ["cat", "dog"], False) == \
        {"cat": -0.3, "dog": -1.4}


def test_a_token_shared_by_two_labels_falls_back_to_the_rule() -> None:
    tokens = _tokens(('{"label":"', 0.0, {}), ("ca", -0.3, {"ca": -0.3, "dog": -1.4}),
                     ('t"}', 0.0, {}))
    assert label_logprobs(tokens, '{"label":"cat"}', ["cat", "car", "dog"], False) is None


def test_tokens_that_do_not_spell_the_answer_are_ignored() -> None:
    tokens = _tokens(("something else", 0.0, {}))
    assert label_logprobs(tokens, '{"label":"cat"}', ["cat"], False) is None


def test_labels_with_quotes_are_matched_in_their_json_form() -> None:
    tokens = _tokens(('{"label":"', 0.0, {}), ('say \\"hi\\""}', -0.1, {"no": -2.0}))
    assert label_logprobs(tokens, '{"label":"say \\"hi\\""}', ['say "hi"', "no"], False) == \
        {'say "hi"': -0.1, "no": -2.0}
