"""Costs: the arithmetic, configured prices, billed attempts summed, budgets, cheapest order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel

import mmsdk
from mmsdk import _settings
from mmsdk._cost import cost_of
from mmsdk._types import Capability, Price, Usage
from mmsdk.plugin import MediaLimits
from mmsdk.testing import TestProvider


@pytest.fixture(autouse=True)
def _settings_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_settings, "_settings", _settings._settings)  # restored afterwards


def priced(provider: TestProvider, **rates: float) -> TestProvider:
    """*provider* declaring a price in its table (as a plugin's describe does)."""
    provider.info = provider.info.model_copy(update={"price": Price(**rates)})
    return provider


@pytest.fixture
def cloud() -> Iterator[TestProvider]:
    """A cloud-like provider with a price: $1 per input token, $2 per output token."""
    with TestProvider("cloud", local=False) as provider:
        yield priced(provider, input_per_mtok=1e6, output_per_mtok=2e6)


# -- the arithmetic ------------------------------------------------------------------
@pytest.mark.parametrize(("usage", "price", "capability", "expected"), [
    (Usage(input_tokens=1000, output_tokens=200), Price(input_per_mtok=2.0, output_per_mtok=8.0),
     Capability.UNDERSTAND, (1000 * 2.0 + 200 * 8.0) / 1e6),
    (Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=200),
     Price(input_per_mtok=2.0, cached_input_per_mtok=0.5, output_per_mtok=8.0),
     Capability.UNDERSTAND, (600 * 2.0 + 400 * 0.5 + 200 * 8.0) / 1e6),
    (Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=0),
     Price(input_per_mtok=2.0, output_per_mtok=8.0),  # no cached rate: the input rate
     Capability.UNDERSTAND, 1000 * 2.0 / 1e6),
    (Usage(input_tokens=11, output_tokens=4160, images=1),
     Price(input_per_mtok=5.0, output_per_mtok=10.0, image_output_per_mtok=40.0),
     Capability.GENERATE, (11 * 5.0 + 4160 * 40.0) / 1e6),
    (Usage(images=3), Price(per_image=0.04), Capability.GENERATE, 0.12),
    (Usage(input_tokens=10, output_tokens=5), Price(input_per_mtok=1.0), Capability.UNDERSTAND,
     None),  # output billed, no output rate known
    (Usage(input_tokens=10), None, Capability.UNDERSTAND, None),
    (Usage(), Price(input_per_mtok=1.0, output_per_mtok=1.0), Capability.UNDERSTAND, None),
], ids=["tokens", "cached-tokens", "cached-at-input-rate", "image-tokens", "per-image",
        "missing-rate", "no-price", "nothing-reported"])
def test_cost_arithmetic(usage: Usage, price: Price | None, capability: Capability,
                         expected: float | None) -> None:
    cost = cost_of(usage, price, capability)
    if expected is None:
        assert cost is None
    else:
        assert cost == pytest.approx(expected)


def test_a_cloud_result_costs_its_usage_at_the_table_price(cloud: TestProvider) -> None:
    result = mmsdk.understand("one two three", provider="cloud:m")
    # "echo: one two three (0 image(s))": 6 output tokens
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3, 6)
    assert result.usage.cost_usd == pytest.approx(3 * 1.0 + 6 * 2.0)


def test_a_local_result_costs_nothing(fake: TestProvider) -> None:
    priced(fake, input_per_mtok=1e6, output_per_mtok=1e6)  # local: the price is ignored
    assert mmsdk.understand("one two", provider="fake:m").usage.cost_usd == 0.0


def test_an_unknown_price_leaves_cost_unknown(primary: TestProvider) -> None:
    assert mmsdk.understand("one two", provider="primary:m").usage.cost_usd is None


async def test_async_and_streamed_results_are_costed(cloud: TestProvider) -> None:
    result = await mmsdk.aunderstand("one two three", provider="cloud:m")
    assert result.usage.cost_usd == pytest.approx(3 + 6 * 2)
    stream = mmsdk.understand("one two three", provider="cloud:m", stream=True)
    text = "".join(stream)
    assert text == result.text
    assert stream.result.usage.cost_usd == pytest.approx(3 + 6 * 2)  # as the whole answer


# -- configure(prices=...) -------------------------------------------------------------
def test_configured_prices_replace_the_table_and_add_models(cloud: TestProvider,
                                                           primary: TestProvider) -> None:
    mmsdk.configure(prices={"cloud:m": {"input_per_mtok": 0.0, "output_per_mtok": 1e6},
                            "primary:new": mmsdk.Price(input_per_mtok=1e6, output_per_mtok=0.0)})
    assert mmsdk.understand("one two three", provider="cloud:m").usage.cost_usd == \
        pytest.approx(6 * 1.0)
    assert mmsdk.understand("one two three", provider="cloud:other").usage.cost_usd == \
        pytest.approx(3 + 6 * 2)  # not named: the table's price
    assert mmsdk.understand("one two three", provider="primary:new").usage.cost_usd == \
        pytest.approx(3.0)


@pytest.mark.parametrize("prices", [
    {"gpt-4o": {"input_per_mtok": 1.0}},
    {"openai:gpt-4o": {"input_per_token": 1.0}},
    {"openai:gpt-4o": {"input_per_mtok": -1.0}},
    {"openai:gpt-4o": {"input_per_mtok": float("nan")}},
    {"openai:gpt-4o": {"input_per_mtok": "2.5"}},
    {"openai:gpt-4o": 2.5},
    ["openai:gpt-4o"],
], ids=["no-plugin", "unknown-key", "negative", "nan", "string", "not-a-dict", "a-list"])
def test_bad_prices_are_invalid_input(prices: object) -> None:
    before = mmsdk.configure().prices
    with pytest.raises(mmsdk.InvalidInputError, match="prices"):
        mmsdk.configure(prices=prices)
    assert mmsdk.configure().prices == before


# -- every billed attempt counts ---------------------------------------------------------
class Answer(BaseModel):
    label: str


def test_an_answer_that_was_billed_but_rejected_is_counted(cloud: TestProvider) -> None:
    with TestProvider("rival", local=False, answer='{"label": "cat"}') as rival:
        priced(rival, input_per_mtok=1e6, output_per_mtok=1e6)
        cloud.answer = "not json at all"
        result = mmsdk.understand("one two three", provider=["cloud:m", "rival:m"],
                                  schema=Answer)
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert result.attempts[0].error_type == "OutputValidationError"
    rejected = 3 * 1.0 + 4 * 2.0  # "not json at all": 4 output tokens, billed
    answered = 3 * 1.0 + 2 * 1.0
    assert result.usage.cost_usd == pytest.approx(rejected + answered)
    assert result.usage.output_tokens == 2  # the tokens stay the answer's own


def test_failed_attempts_without_an_answer_are_not_billed(cloud: TestProvider) -> None:
    cloud.failures = [mmsdk.RateLimitError("busy", retry_after=0)]
    result = mmsdk.understand("one two three", provider="cloud:m",
                              policy=mmsdk.Policy(retries=1, backoff=0))
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert result.usage.cost_usd == pytest.approx(3 + 6 * 2)


# -- budgets ------------------------------------------------------------------------------
def test_max_cost_skips_candidates_estimated_over_it(cloud: TestProvider, fake: TestProvider,
                                                    ) -> None:
    # "one two three" is 13 characters: 4 tokens in; 1,024 tokens out when max_tokens is unset.
    policy = mmsdk.Policy(max_cost_usd=100.0)
    result = mmsdk.understand("one two three", provider=["cloud:m", "fake:m"], policy=policy)
    assert result.provider == "fake:m"
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome) == ("cloud:m", "skipped")
    assert "estimated cost $2052.000000 exceeds max_cost_usd=100.0" in (skipped.error or "")
    assert cloud.calls == []
    # max_tokens bounds the estimate: 4 + 2 * 10 = 24 dollars, within the budget
    result = mmsdk.understand("one two three", provider=["cloud:m", "fake:m"], policy=policy,
                              max_tokens=10)
    assert result.provider == "cloud:m"


def test_max_cost_skips_unknown_prices_and_a_lone_candidate_says_why(primary: TestProvider,
                                                                   ) -> None:
    with pytest.raises(mmsdk.CapabilityError, match=r"price is unknown.*max_cost_usd=1\.0"):
        mmsdk.understand("hi", provider="primary:m", policy=mmsdk.Policy(max_cost_usd=1.0))
    assert primary.calls == []


def test_the_estimate_counts_images_at_the_size_sent(cloud: TestProvider) -> None:
    cloud.info = cloud.info.model_copy(update={"limits": MediaLimits(max_long_edge=300)})
    picture = Image.new("RGB", (3000, 1500))  # sent as 300 x 150: 60 tokens
    policy = mmsdk.Policy(max_cost_usd=1 + 60 + 2 * 10 - 0.5)  # prompt "hi": 1 token
    with pytest.raises(mmsdk.CapabilityError, match=r"\$81\.000000"):
        mmsdk.understand("hi", images=[picture], provider="cloud:m", max_tokens=10, policy=policy)
    policy = mmsdk.Policy(max_cost_usd=81.0)
    assert mmsdk.understand("hi", images=[picture], provider="cloud:m", max_tokens=10,
                            policy=policy).provider == "cloud:m"


def test_the_estimate_counts_the_frames_fps_sampling_takes(cloud: TestProvider,
                                                          tmp_path: Path) -> None:
    pytest.importorskip("av")
    from samples import write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=40, rate=10)  # 4 s
    frame = 1334  # tokens for a video frame: one megapixel at 750 pixels a token
    output = 2 * 10  # max_tokens=10 at $2 a token
    policy = mmsdk.Policy(max_cost_usd=1 + 8 * frame + output)  # 8 frames, the default, fit
    # fps=5 over 4 s samples 20 frames: the estimate counts them, not the default 8
    with pytest.raises(mmsdk.CapabilityError, match=rf"\${1 + 20 * frame + output}\.000000"):
        mmsdk.understand("hi", video=clip, fps=5, provider="cloud:m", max_tokens=10,
                         policy=policy)
    assert len(cloud.calls) == 0
    # capped at frames=: 4 frames fit the budget
    result = mmsdk.understand("hi", video=clip, fps=5, frames=4, provider="cloud:m",
                              max_tokens=10, policy=policy)
    assert result.provider == "cloud:m" and len(cloud.calls) == 1


# -- order="cheapest" ---------------------------------------------------------------------
def test_cheapest_orders_by_the_estimate_not_the_hint() -> None:
    with TestProvider("dear", local=False, cost_hint=0.1) as dear, \
            TestProvider("cheap", local=False, cost_hint=9.0) as cheap, \
            TestProvider("unpriced", local=False, cost_hint=0.0) as unpriced:
        priced(dear, input_per_mtok=10.0, output_per_mtok=10.0)
        priced(cheap, input_per_mtok=1.0, output_per_mtok=1.0)
        router = mmsdk.Router(["unpriced:m", "dear:m", "cheap:m"],
                              policy=mmsdk.Policy(order="cheapest"))
        cheap.failures = [mmsdk.AuthenticationError]
        dear.failures = [mmsdk.AuthenticationError]
        result = router.understand("hi")
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("cheap:m", "error"), ("dear:m", "error"), ("unpriced:m", "ok")]  # unknown price: last
    assert len(unpriced.calls) == 1


def test_a_configured_rate_overrides_only_that_rate(cloud: TestProvider) -> None:
    mmsdk.configure(prices={"cloud:m": {"output_per_mtok": 4e6}})
    assert mmsdk.understand("one two three", provider="cloud:m").usage.cost_usd == \
        pytest.approx(3 * 1 + 6 * 4)  # the table's input rate stays
    tenant = mmsdk.Router("cloud:m", prices={"cloud:m": {"input_per_mtok": 0.0}})
    assert tenant.understand("one two three").usage.cost_usd == \
        pytest.approx(6 * 4)  # the router's input rate over the configured output rate


def test_router_prices_come_before_configured_ones(cloud: TestProvider) -> None:
    mmsdk.configure(prices={"cloud:m": {"input_per_mtok": 0.0, "output_per_mtok": 1e6}})
    tenant = mmsdk.Router("cloud:m", prices={"cloud:m": {"input_per_mtok": 1e6,
                                                         "output_per_mtok": 0.0}})
    assert tenant.understand("one two three").usage.cost_usd == pytest.approx(3.0)
    assert mmsdk.understand("one two three", provider="cloud:m").usage.cost_usd == \
        pytest.approx(6.0)  # other routers: the configured price
    with TestProvider("bare", local=False):  # no price in its table
        budget = mmsdk.Router("bare:m", prices={"bare:m": {"input_per_mtok": 1e6}},
                              policy=mmsdk.Policy(max_cost_usd=10.0))
        with pytest.raises(mmsdk.CapabilityError, match="price is unknown"):
            budget.understand("hi")  # output tokens with no rate: no estimate
    with pytest.raises(mmsdk.InvalidInputError, match=r"Router prices\['cloud:m'\]"):
        mmsdk.Router("cloud:m", prices={"cloud:m": {"per_token": 1.0}})
