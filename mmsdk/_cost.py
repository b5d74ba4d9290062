"""What a call costs: prices, the cost of a result, and the estimate budgets use.

Prices come from the plugin's own table (``ModelInfo.price``), with the rates
``mmsdk.configure(prices={"PLUGIN:MODEL": {...}})`` and then ``Router(prices=...)``
name for that model laid over it (each overrides only the rates it names).
Local providers cost 0.

Token counts follow one convention whatever the provider: ``input_tokens`` is
every input token billed (cached ones included) and ``cached_input_tokens`` the
part of it billed at the cached rate. For a generate call, output tokens are
image tokens (``image_output_per_mtok`` where the price has one) and
``per_image`` is paid per image made.

The estimate (``Policy(max_cost_usd=...)`` and ``order="cheapest"``) is taken
before any request, from the call alone:

* input: ``ceil(characters / 4)`` tokens of prompt, system text and labels
  or texts, plus ``ceil(width * height / 750)`` tokens per input image at the
  size the provider would receive it (its long-edge and pixel caps applied); a
  video counts as its ``frames`` (default 8) images of one megapixel, or with
  ``fps`` as the frames that sampling takes over the clip (at most ``frames``, or 256);
* output: ``max_tokens``, else 1,024 tokens, for understand and classify; for
  generate, 1,024 image tokens per image asked for (plus ``per_image``); none
  for embed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidInputError
from ._settings import get_settings
from ._types import Capability, Price, Usage

__all__ = ["FREE", "check_prices", "cost_of", "estimate", "price_of"]

FREE = Price(input_per_mtok=0.0, cached_input_per_mtok=0.0, output_per_mtok=0.0,
             image_output_per_mtok=0.0, per_image=0.0)
PRICE_KEYS = tuple(Price.model_fields)
DEFAULT_OUTPUT_TOKENS = 1024
IMAGE_OUTPUT_TOKENS = 1024  # per generated image, for the estimate only
VIDEO_FRAMES = 8
CHARS_PER_TOKEN = 4
PIXELS_PER_TOKEN = 750
_MILLION = 1_000_000


def check_prices(value: Any, what: str = "Setting prices") -> dict[str, Price]:
    """``configure(prices=...)`` / ``Router(prices=...)`` checked: ``{"PLUGIN:MODEL": Price |
    dict}`` as Prices (*what* names the argument in messages).

    Raises:
        InvalidInputError: a key that is not ``"PLUGIN:MODEL"``, an unknown price
            key, or a value that is not a non-negative number.
    """
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a dict like {{'openai:gpt-4o': "
                                "{'input_per_mtok': 2.5, 'output_per_mtok': 10.0}}, got "
                                f"{type(value).__name__}.")
    prices: dict[str, Price] = {}
    for provider, price in value.items():
        plugin, _, model = provider.partition(":") if isinstance(provider, str) else ("", "", "")
        if not plugin.strip() or not model.strip():
            raise InvalidInputError(f"{what}: keys are provider strings like "
                                    f"'openai:gpt-4o', got {provider!r}.")
        if isinstance(price, Price):
            prices[provider] = price
            continue
        if not isinstance(price, Mapping):
            raise InvalidInputError(f"{what}[{provider!r}] must be a dict of "
                                    f"{', '.join(PRICE_KEYS)}; got {type(price).__name__}.")
        unknown = sorted(str(k) for k in price if k not in PRICE_KEYS)
        if unknown:
            raise InvalidInputError(f"{what}[{provider!r}]: unknown key(s) {unknown}; "
                                    f"known keys: {', '.join(PRICE_KEYS)}.")
        for key, number in price.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or \
                    not math.isfinite(number) or number < 0:
                raise InvalidInputError(f"{what}[{provider!r}][{key!r}] must be a "
                                        f"finite number of US dollars >= 0, got {number!r}.")
        prices[provider] = Price(**price)
    return prices


def price_of(resolved: Any, router: Mapping[str, Price] | None = None) -> Price | None:
    """The price a call to *resolved* pays: 0 when local, else the plugin table's
    with the configured rates, then the router's (``Router(prices=...)``), laid over it.

    Each layer overrides only the rates it names: ``{"output_per_mtok": 12}``
    changes the output rate and keeps the table's input rate.
    """
    info = resolved.info
    if info.local:
        return FREE
    layers = (get_settings().prices.get(resolved.provider),
              router.get(resolved.provider) if router else None)
    price: Price | None = info.price
    for layer in layers:
        if layer is not None:
            price = layer if price is None else price.model_copy(
                update={key: getattr(layer, key) for key in layer.model_fields_set})
    return price


def cost_of(usage: Usage | None, price: Price | None, capability: Capability) -> float | None:
    """US dollars for *usage* at *price*; ``None`` when a billed quantity has no known rate.

    Quantities the provider did not report are not counted; a result that
    reports nothing billable has an unknown cost, unless the price is all zeros.
    """
    if price is None:
        return None
    if price == FREE:
        return 0.0
    if usage is None:
        return None
    total = 0.0
    counted = False
    generating = capability is Capability.GENERATE
    cached = usage.cached_input_tokens or 0
    parts: list[tuple[int | None, float | None]] = []
    if usage.input_tokens is not None:
        cached = min(cached, usage.input_tokens)
        cached_rate = price.cached_input_per_mtok if price.cached_input_per_mtok is not None \
            else price.input_per_mtok
        parts += [(usage.input_tokens - cached, price.input_per_mtok), (cached, cached_rate)]
    output_rate = price.image_output_per_mtok if generating and \
        price.image_output_per_mtok is not None else price.output_per_mtok
    parts.append((usage.output_tokens, output_rate))
    for tokens, rate in parts:
        if tokens is None:
            continue
        if tokens and rate is None:
            return None
        total += tokens * (rate or 0.0) / _MILLION
        counted = True
    if generating and price.per_image is not None and usage.images is not None:
        total += usage.images * price.per_image
        counted = True
    return total if counted else None


def estimate(job: Any, resolved: Any, router: Mapping[str, Price] | None = None) -> float | None:
    """The estimated cost of *job* on *resolved* (see the module docstring), or ``None``."""
    price = price_of(resolved, router)
    if price is None:
        return None
    if price == FREE:
        return 0.0
    request = job.request
    capability = job.capability
    limits = resolved.info.limits
    text = [getattr(request, name, None) for name in ("prompt", "system", "negative_prompt")]
    text += list(getattr(request, "labels", None) or []) + list(getattr(request, "texts", None) or [])
    input_tokens = sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in text if isinstance(t, str))
    for images in job.media.values():
        for loaded in images:
            width, height = loaded.width, loaded.height
            input_tokens += _image_tokens(width, height, limits)
    if job.video is not None:
        input_tokens += _video_frames(job) * _image_tokens(1000, 1000, limits)
    n = getattr(request, "n", 1) if capability is Capability.GENERATE else 0
    if capability is Capability.GENERATE:
        output = n * IMAGE_OUTPUT_TOKENS
    elif capability is Capability.EMBED:
        output = 0
    else:
        output = getattr(request, "max_tokens", None) or DEFAULT_OUTPUT_TOKENS
    if price.input_per_mtok is None and price.output_per_mtok is None and \
            price.image_output_per_mtok is None:
        usage = Usage(images=n or None)  # priced by the image only
    else:
        usage = Usage(input_tokens=input_tokens, output_tokens=output, images=n or None)
    return cost_of(usage, price, capability)


def _video_frames(job: Any) -> int:
    """The frames a video is counted as: ``frames`` (default 8); with ``fps``, what that
    sampling takes over the clip's length (read from its header), capped at ``frames``
    or 256."""
    from ._video import MAX_FRAMES, video_seconds

    frames: int | None = getattr(job.request, "frames", None)
    fps: float | None = getattr(job.request, "fps", None)
    if fps is None:
        return frames or VIDEO_FRAMES
    seconds = video_seconds(job.video)
    if seconds is None:  # no PyAV: only providers that read the file themselves are called
        return frames or VIDEO_FRAMES
    return max(1, min(frames or MAX_FRAMES, math.ceil(seconds * fps)))


def _image_tokens(width: int, height: int, limits: Any) -> int:
    """Tokens for one image, after the provider's long-edge and pixel caps."""
    scale = 1.0
    if limits.max_long_edge and max(width, height) > limits.max_long_edge:
        scale = limits.max_long_edge / max(width, height)
    pixels = width * height * scale * scale
    if limits.max_pixels and pixels > limits.max_pixels:
        pixels = limits.max_pixels
    return math.ceil(pixels / PIXELS_PER_TOKEN)
