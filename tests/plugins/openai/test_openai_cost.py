"""Costs and the result cache on the OpenAI wire: the official SDK against a loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackServer, Reply
from mmsdk_openai._prices import PRICES
from pydantic import BaseModel

import mmsdk
from mmsdk import _settings


@pytest.fixture(autouse=True)
def _settings_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_settings, "_settings", _settings._settings)  # restored afterwards


def chat_with_cache(wire: Any, text: str = "A red square.", *, cached: int, **usage: int,
                    ) -> dict[str, Any]:
    body: dict[str, Any] = wire.chat(text, **usage)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    return body


def test_chat_cost_is_the_usage_the_server_returned_at_the_table_price(
        api: LoopbackServer, wire: Any) -> None:
    api.queue(Reply(body=chat_with_cache(wire, cached=10, prompt_tokens=42,
                                         completion_tokens=7)))
    result = mmsdk.understand("Describe.", provider="openai:gpt-4.1")
    assert (result.usage.input_tokens, result.usage.cached_input_tokens,
            result.usage.output_tokens) == (42, 10, 7)
    price = PRICES["gpt-4.1"]
    assert (price.input_per_mtok, price.cached_input_per_mtok, price.output_per_mtok) == \
        (2.00, 0.50, 8.00)
    assert result.usage.cost_usd == pytest.approx((32 * 2.00 + 10 * 0.50 + 7 * 8.00) / 1e6)


def test_image_cost_counts_image_output_tokens(api: LoopbackServer, wire: Any) -> None:
    api.queue(Reply(body=wire.images((32, 32))))  # 11 input tokens, 4,160 image tokens
    result = mmsdk.generate("a red square", provider="openai:gpt-image-2")
    assert result.usage.cost_usd == pytest.approx((11 * 5.00 + 4160 * 30.00) / 1e6)


def test_configured_prices_override_the_table(api: LoopbackServer, wire: Any) -> None:
    mmsdk.configure(prices={"openai:gpt-4.1": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}})
    api.queue(Reply(body=wire.chat(prompt_tokens=42, completion_tokens=7)))
    result = mmsdk.understand("Describe.", provider="openai:gpt-4.1")
    assert result.usage.cost_usd == pytest.approx(49 / 1e6)


class Receipt(BaseModel):
    total: float


def test_every_billed_attempt_is_summed(api: LoopbackServer, wire: Any) -> None:
    api.queue(wire.error(429, "slow down", code="rate_limit_exceeded",
                         headers={"retry-after": "0"}))  # not billed
    api.queue(Reply(body=wire.chat("no JSON here", prompt_tokens=40, completion_tokens=5)))
    api.queue(Reply(body=wire.chat('{"total": 12.5}', model="gpt-4o", prompt_tokens=40,
                                   completion_tokens=6)))
    result = mmsdk.understand("Total?", provider=["openai:gpt-4.1", "openai:gpt-4o"],
                              schema=Receipt, policy=mmsdk.Policy(retries=1, backoff=0))
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("openai:gpt-4.1", "error"), ("openai:gpt-4.1", "error"), ("openai:gpt-4o", "ok")]
    assert result.data == Receipt(total=12.5) and len(api.received) == 3
    rejected = (40 * 2.00 + 5 * 8.00) / 1e6  # gpt-4.1 answered, but not in the schema
    answered = (40 * 2.50 + 6 * 10.00) / 1e6
    assert result.usage.cost_usd == pytest.approx(rejected + answered)


def test_a_budget_skips_the_default_model_before_any_request(api: LoopbackServer) -> None:
    # gpt-5.5: 1,024 output tokens at $30 per million is about $0.031
    with pytest.raises(mmsdk.CapabilityError, match="estimated cost"):
        mmsdk.understand("Describe.", provider="openai:gpt-5.5",
                         policy=mmsdk.Policy(max_cost_usd=0.01))
    assert api.received == []


def test_a_cache_hit_sends_no_request(api: LoopbackServer, wire: Any, tmp_path: Path) -> None:
    api.default = Reply(body=wire.chat(prompt_tokens=42, completion_tokens=7))
    router = mmsdk.Router("openai:gpt-4.1", cache=tmp_path)
    results = [router.understand("Describe.", images=[wire.png()], temperature=0)
               for _ in range(3)]
    assert [r.cached for r in results] == [False, True, True]
    assert len(api.received) == 1
    assert results[2].text == "A red square." and results[2].usage.cost_usd == 0.0
    router.understand("Describe.", images=[wire.png(color=(0, 0, 255))], temperature=0)
    assert len(api.received) == 2  # other pixels: another key


def test_per_router_keys_are_part_of_the_cache_key(api: LoopbackServer, wire: Any,
                                                   tmp_path: Path) -> None:
    api.default = Reply(body=wire.chat(prompt_tokens=42, completion_tokens=7))

    def ask(key: str) -> bool:
        router = mmsdk.Router("openai:gpt-4.1", cache=tmp_path, credentials={"openai": key})
        return router.understand("Describe.", temperature=0).cached

    assert [ask("sk-tenant-one-0123456789"), ask("sk-tenant-two-0123456789"),
            ask("sk-tenant-one-0123456789")] == [False, False, True]
    assert len(api.received) == 2
    keys = {wire.header(r, "authorization") for r in api.received}
    assert keys == {"Bearer sk-tenant-one-0123456789", "Bearer sk-tenant-two-0123456789"}
