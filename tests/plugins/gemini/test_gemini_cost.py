"""Costs and the result cache on the Gemini wire (google-genai against a loopback server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackServer, Reply
from mmsdk_gemini._prices import PRICES

import mmsdk


def test_cached_and_thinking_tokens_are_billed_as_the_api_reports(api: LoopbackServer,
                                                                 wire: Any) -> None:
    body = wire.answer(prompt_tokens=11, output_tokens=4)
    body["usageMetadata"].update(cachedContentTokenCount=5, thoughtsTokenCount=3)
    api.queue(Reply(body=body))
    result = mmsdk.understand("Describe.", provider="gemini:gemini-3-flash-preview")
    assert (result.usage.input_tokens, result.usage.cached_input_tokens,
            result.usage.output_tokens) == (11, 5, 7)
    flash = PRICES["gemini-3-flash-preview"]
    assert (flash.input_per_mtok, flash.cached_input_per_mtok, flash.output_per_mtok) == \
        (0.50, 0.05, 3.00)
    assert result.usage.cost_usd == pytest.approx((6 * 0.50 + 5 * 0.05 + 7 * 3.00) / 1e6)


def test_image_output_tokens_are_billed_at_the_image_rate(api: LoopbackServer,
                                                         wire: Any) -> None:
    api.queue(Reply(body=wire.image_answer(wire.picture())))  # 6 in, 1,290 image tokens out
    result = mmsdk.generate("a red square", provider=f"gemini:{wire.IMAGE_MODEL}")
    assert result.usage.cost_usd == pytest.approx((6 * 0.50 + 1290 * 60.00) / 1e6)


def test_a_seeded_image_is_served_from_the_cache(api: LoopbackServer, wire: Any,
                                                 tmp_path: Path) -> None:
    api.default = Reply(body=wire.image_answer(wire.picture(40, 30, "green")))
    router = mmsdk.Router(f"gemini:{wire.IMAGE_MODEL}", cache=tmp_path)
    made, kept = (router.generate("a green field", seed=5) for _ in range(2))
    assert (made.cached, kept.cached) == (False, True) and len(api.received) == 1
    assert kept.images[0].tobytes() == made.images[0].tobytes()
    assert kept.seed == 5 and kept.usage.cost_usd == 0.0
    assert not router.generate("a green field", seed=6).cached
    assert len(api.received) == 2
