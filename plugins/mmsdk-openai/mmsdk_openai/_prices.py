"""Public OpenAI prices (US dollars) of the default and common models, for ``usage.cost_usd``.

Read on 2026-12-01 from summaries of OpenAI's pricing page
(https://platform.openai.com/docs/pricing) that quote it:
https://www.morphllm.com/openai-api-pricing (gpt-5.5, June 2026),
https://whichllm.io/models/merge-gateway-openai--gpt-4-1 and
https://deploybase.ai/articles/gpt-4.1-pricing (gpt-4.1),
https://www.swfte.com/de/api-pricing/openai (gpt-4o),
https://xairouter.com/en/models/gpt-image-2/ (gpt-image-2, "from OpenAI's pricing page").
Standard tier, short context: gpt-5.5 bills prompts above 272K input tokens at
higher rates, not modelled here.

gpt-image-2 bills text input at 5.00, image input at 8.00 and image output at
30.00 per million tokens; mmsdk's usage does not split text from image input,
so an edit's image input is counted at the text rate (an underestimate).

Left out (no price found; their ``cost_usd`` is ``None`` unless
``mmsdk.configure(prices=...)`` gives one): gpt-image-1.5, gpt-image-1-mini,
the gpt-image-2.5/2.6 models and every other model. Models behind
OpenAI-compatible endpoints have no price either (local servers cost 0).
"""

from __future__ import annotations

from mmsdk.plugin import Price

__all__ = ["PRICES", "READ_ON", "price"]

READ_ON = "2026-12-01"

_GPT_5_5 = Price(input_per_mtok=5.00, cached_input_per_mtok=0.50, output_per_mtok=30.00)
_GPT_IMAGE_2 = Price(input_per_mtok=5.00, cached_input_per_mtok=1.25,
                     image_output_per_mtok=30.00)

PRICES: dict[str, Price] = {
    "gpt-5.5": _GPT_5_5,
    "gpt-5.5-2026-04-23": _GPT_5_5,
    "gpt-4.1": Price(input_per_mtok=2.00, cached_input_per_mtok=0.50, output_per_mtok=8.00),
    "gpt-4o": Price(input_per_mtok=2.50, cached_input_per_mtok=1.25, output_per_mtok=10.00),
    "gpt-image-2": _GPT_IMAGE_2,
    "gpt-image-2-2026-04-21": _GPT_IMAGE_2,
}


def price(model: str) -> Price | None:
    """The public price of *model*, or ``None`` where it is not in the table."""
    return PRICES.get(model)
