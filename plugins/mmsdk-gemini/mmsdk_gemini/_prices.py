"""Public Gemini Developer API prices (US dollars, paid tier), for ``usage.cost_usd``.

Read on 2026-12-01 from summaries quoting Google's pricing page
(https://ai.google.dev/gemini-api/docs/pricing):
https://factquire.com/models/google/gemini-3-flash-preview.json (Gemini 3
Flash, page read 2026-07-04),
https://cloudprice.net/models/vertex_ai%2Fgemini-3.1-pro-preview?priceUnit=1m
(Gemini 3.1 Pro, prompts up to 200K tokens),
https://aifreeapi.com/en/posts/gemini-flash-image-generation-pricing and
https://therouter-docs.pages.dev/models/google--gemini-3.1-flash-image-preview
(Gemini 3.1 Flash Image: $60 per million image output tokens, 1,120 tokens a
1K image). Thinking tokens are billed as output (the plugin counts them there).

Left out (no published price found; ``cost_usd`` is ``None`` unless
``mmsdk.configure(prices=...)`` gives one): the default gemini-3.8-flash,
gemini-3.5-flash (only approximate figures found), Imagen, and every other model.
"""

from __future__ import annotations

from mmsdk.plugin import Price

__all__ = ["PRICES", "READ_ON", "price"]

READ_ON = "2026-12-01"

_FLASH_3 = Price(input_per_mtok=0.50, cached_input_per_mtok=0.05, output_per_mtok=3.00)
_PRO_3_1 = Price(input_per_mtok=2.00, cached_input_per_mtok=0.20, output_per_mtok=12.00)
_FLASH_IMAGE_3_1 = Price(input_per_mtok=0.50, output_per_mtok=3.00, image_output_per_mtok=60.00)

PRICES: dict[str, Price] = {
    "gemini-3-flash-preview": _FLASH_3,
    "gemini-3.1-pro-preview": _PRO_3_1,
    "gemini-3.1-flash-image": _FLASH_IMAGE_3_1,
    "gemini-3.1-flash-image-preview": _FLASH_IMAGE_3_1,
}


def price(model: str) -> Price | None:
    """The public price of *model* (``models/`` prefix allowed), or ``None``."""
    return PRICES.get(model.rsplit("/", 1)[-1])
