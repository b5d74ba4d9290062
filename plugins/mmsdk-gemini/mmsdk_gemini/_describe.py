"""What each Gemini model can do, read from its name. Cheap: no SDK import.

What a model can do is the class serving it (:func:`model_class`): ``GeminiModel``
(which imports the SDK) implements both classes declared here.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC
from typing import Literal

from mmsdk.plugin import (
    Classify,
    Feature,
    Generate,
    MediaLimits,
    Model,
    ModelInfo,
    ModelLifecycle,
    Understand,
)

from ._prices import price

__all__ = ["LIFECYCLE", "LIFECYCLE_CHECKED", "LIMITS", "RETIRED", "Family", "GeminiImages",
           "GeminiText", "describe", "family", "lifecycle", "model_class"]

Family = Literal["text", "image", "imagen"]

# Gemini Developer API image input: png/jpeg/webp (heic/heif are accepted but
# prepare() does not produce them); larger images are scaled to fit 3072x3072
# server-side anyway; a request with inline data must stay under 20 MB, so one
# image (as base64 text in the JSON body) is capped a little under that and
# several that together exceed it go through the Files API. Up to 3,000 images
# per request (the documented per-prompt maximum).
LIMITS = MediaLimits(
    formats=("png", "jpeg", "webp"),
    max_long_edge=3072,
    max_bytes=19_000_000,
    count_bytes_as="base64",
    max_images=3000,
)

_TEXT_SUPPORTS = frozenset({Feature.SYSTEM, Feature.MAX_TOKENS, Feature.TEMPERATURE,
                            Feature.SCHEMA, Feature.STREAM, Feature.VIDEO, Feature.DETAIL,
                            Feature.MULTI_LABEL})
_TEXT_OPTIONS = frozenset({"seed", "top_p", "top_k", "stop_sequences", "thinking_budget",
                           "logprobs"})
_IMAGE_SUPPORTS = frozenset({Feature.SEED, Feature.IMAGE})
_IMAGE_OPTIONS = frozenset({"aspect_ratio", "image_size"})
_IMAGEN_SUPPORTS = frozenset({Feature.N})
_IMAGEN_OPTIONS = frozenset({"aspect_ratio", "image_size", "person_generation"})

# Shut down before mmsdk recorded dates: retired on every date.
_SUCCESSOR = "Use gemini:gemini-3.8-flash."
RETIRED = {
    "gemini-pro-vision": f"Gemini 1.0 Pro Vision was shut down. {_SUCCESSOR}",
    "gemini-1.0-pro-vision": f"Gemini 1.0 Pro Vision was shut down. {_SUCCESSOR}",
    "gemini-1.0-pro": f"Gemini 1.0 Pro was shut down. {_SUCCESSOR}",
    "gemini-1.5-flash": f"Gemini 1.5 models were shut down. {_SUCCESSOR}",
    "gemini-1.5-flash-8b": f"Gemini 1.5 models were shut down. {_SUCCESSOR}",
    "gemini-1.5-pro": f"Gemini 1.5 models were shut down. {_SUCCESSOR}",
}

# Announced shutdown dates: model -> (first day it no longer answers, successor).
# The installed google-genai states none for any model (only that its
# generate_images method goes "not before Jan. 1 2027", which is no model's
# end-of-life); add entries from Google's deprecations page when announced. A
# dated name works with a note on the result (a ModelDeprecationWarning within
# 30 days) until its date, then fails before any request naming its successor.
LIFECYCLE: dict[str, tuple[dt.date, str]] = {}
# The day LIFECYCLE was last checked against the installed SDK. Tests pin the
# clock here; a test fails when a default model is past, or within 30 days of,
# its end-of-life on this date.
LIFECYCLE_CHECKED = dt.date(2026, 12, 1)

lifecycle = ModelLifecycle("gemini", LIFECYCLE, shut_down=RETIRED)


def family(model: str) -> Family:
    """``"imagen"`` (generate_images), ``"image"`` (native image output) or ``"text"``."""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith("imagen"):
        return "imagen"
    if "-image" in name or name.startswith("nano-banana") or "nano-banana" in name:
        return "image"
    return "text"


class GeminiText(Understand, Classify, ABC):
    """Gemini text models: understand (images, video) and classify."""


class GeminiImages(Generate, ABC):
    """Gemini native image output and Imagen models: generate."""


def model_class(model: str) -> type[Model]:
    """The class serving ``gemini:MODEL``, by its family."""
    return GeminiText if family(model) == "text" else GeminiImages


def describe(model: str) -> ModelInfo:
    """Supported parameters, option keys and image limits of *model*."""
    kind = family(model)
    if kind == "imagen":
        return ModelInfo(supports=_IMAGEN_SUPPORTS,
                         options=_IMAGEN_OPTIONS, limits=LIMITS, max_n=4, cost_hint=2.0,
                         price=price(model))
    if kind == "image":
        return ModelInfo(supports=_IMAGE_SUPPORTS,
                         options=_IMAGE_OPTIONS, limits=LIMITS, max_n=1, cost_hint=2.0,
                         price=price(model))
    return ModelInfo(supports=_TEXT_SUPPORTS, options=_TEXT_OPTIONS, limits=LIMITS,
                     cost_hint=0.5 if "flash" in model else 1.0, price=price(model))
