"""Public Anthropic prices (US dollars) of Claude models, for ``usage.cost_usd``.

Read on 2026-12-01: cache-hit rate = 0.1 x input (Anthropic's pricing page,
https://docs.anthropic.com/en/docs/about-claude/pricing); per-model rates from
summaries quoting it: https://deploybase.ai/articles/claude-api-pricing (Opus
4.6 / 4.5, Sonnet 4.6, Haiku 4.5; March 2026),
https://dev.to/hiyoyok/claude-api-cheatsheet-2026-models-pricing-limits-in-one-place-4jf2
(Opus 4.8; May 2026), https://www.exploreagentic.ai/insights/claude-haiku-vs-sonnet/
(Sonnet 5: $3 / $15 from 2026-09-01).

Left out (no published price found; ``cost_usd`` is ``None`` unless
``mmsdk.configure(prices=...)`` gives one): the defaults claude-sonnet-5-5 and
claude-haiku-5-5, and claude-opus-5-5, claude-opus-5, claude-opus-4-7, the
fable and mythos models. Cache writes (1.25 x input) are counted at the input
rate: mmsdk never asks for prompt caching.
"""

from __future__ import annotations

from mmsdk.plugin import Price

__all__ = ["PRICES", "READ_ON", "price"]

READ_ON = "2026-12-01"

_OPUS = Price(input_per_mtok=5.00, cached_input_per_mtok=0.50, output_per_mtok=25.00)
_SONNET = Price(input_per_mtok=3.00, cached_input_per_mtok=0.30, output_per_mtok=15.00)
_HAIKU_4_5 = Price(input_per_mtok=1.00, cached_input_per_mtok=0.10, output_per_mtok=5.00)

PRICES: dict[str, Price] = {
    "claude-sonnet-5": _SONNET,
    "claude-opus-4-8": _OPUS,
    "claude-opus-4-6": _OPUS,
    "claude-opus-4-5": _OPUS,
    "claude-opus-4-5-20251101": _OPUS,
    "claude-sonnet-4-6": _SONNET,
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-haiku-4-5-20251001": _HAIKU_4_5,
}


def price(model: str) -> Price | None:
    """The public price of *model*, or ``None`` where it is not in the table."""
    return PRICES.get(model)
