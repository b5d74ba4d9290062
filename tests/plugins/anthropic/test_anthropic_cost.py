"""Costs on the Anthropic wire: cache reads counted, streamed and whole answers alike."""

from __future__ import annotations

from typing import Any

import pytest
from loopback import LoopbackServer, Reply
from mmsdk_anthropic._prices import PRICES

import mmsdk

PROVIDER = "anthropic:claude-sonnet-4-6"
# 42 uncached input tokens + 100 read from the prompt cache + 20 written to it, 7 out
EXPECTED = (42 * 3.00 + 100 * 0.30 + 20 * 3.00 + 7 * 15.00) / 1e6


def with_cache(usage: dict[str, Any]) -> dict[str, Any]:
    usage.update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    return usage


def test_the_table_has_the_documented_rates() -> None:
    sonnet = PRICES["claude-sonnet-4-6"]
    assert (sonnet.input_per_mtok, sonnet.cached_input_per_mtok, sonnet.output_per_mtok) == \
        (3.00, 0.30, 15.00)


def test_cache_reads_are_input_tokens_at_the_cached_rate(claude: LoopbackServer,
                                                         wire: Any) -> None:
    body = wire.message(model="claude-sonnet-4-6", input_tokens=42, output_tokens=7)
    with_cache(body["usage"])
    claude.queue(Reply(body=body))
    result = mmsdk.understand("Describe.", provider=PROVIDER)
    assert (result.usage.input_tokens, result.usage.cached_input_tokens,
            result.usage.output_tokens) == (162, 100, 7)
    assert result.usage.cost_usd == pytest.approx(EXPECTED)


def test_a_streamed_answer_is_costed_from_its_events(claude: LoopbackServer, wire: Any) -> None:
    events = wire.events("A red ", "square.", input_tokens=42, output_tokens=7)
    with_cache(events[0][1]["message"]["usage"])  # message_start carries the input counts
    claude.queue(Reply(events=events))
    stream = mmsdk.understand("Describe.", provider=PROVIDER, stream=True)
    assert "".join(stream) == "A red square."
    assert stream.result.usage.cached_input_tokens == 100
    assert stream.result.usage.cost_usd == pytest.approx(EXPECTED)


def test_a_model_without_a_known_price_has_no_cost(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok())
    assert mmsdk.understand("Describe.", provider=wire.PROVIDER).usage.cost_usd is None
