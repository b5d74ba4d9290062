"""What each model declares to the router: its class (so its capabilities), parameters,
options, media limits."""

from __future__ import annotations

import re
from abc import ABC
from functools import lru_cache

from mmsdk.plugin import Capability, Classify, Feature, Generate, MediaLimits, Model, ModelInfo, Understand

from ._config import is_image_model
from ._prices import price

__all__ = [
    "CHAT_OPTIONS",
    "Chat",
    "Images",
    "COMPATIBLE_LIMITS",
    "IMAGE_OPTIONS",
    "OPENAI_CHAT_LIMITS",
    "SERVER_IMAGE_OPTIONS",
    "SERVER_IMAGE_SUPPORTS",
    "SERVER_MAX_N",
    "compatible_info",
    "compatible_class",
    "describe_openai",
    "is_reasoning",
    "openai_class",
]


# What each kind of model can do, declared once: the classes in _model (which
# import the SDK) subclass these light ones, whose mixins mmsdk routes on.
class Chat(Understand, Classify, ABC):
    """Chat Completions models: understand and classify."""


class Images(Generate, ABC):
    """Image models and image servers: generate."""


def openai_class(model: str) -> type[Model]:
    """The class serving ``openai:MODEL``."""
    return Images if is_image_model(model) else Chat


@lru_cache(maxsize=8)
def compatible_class(capabilities: frozenset[Capability]) -> type[Model]:
    """The class an OpenAI-compatible endpoint offering *capabilities* declares: exactly
    those mixins (``ChatModel`` / ``ServerModel`` implement them, and may do more)."""
    mixins = {Capability.GENERATE: Generate, Capability.UNDERSTAND: Understand,
              Capability.CLASSIFY: Classify}
    bases = tuple(mixin for capability, mixin in mixins.items() if capability in capabilities)
    name = "".join(c.value.title() for c in mixins if c in capabilities)
    return type(f"{name}Endpoint", (*bases, ABC), {"__module__": __name__})

MB = 1024 * 1024

# OpenAI vision input rules (platform docs, "Images and vision"): PNG, JPEG,
# WEBP, non-animated GIF; up to 20 MB per image and 500 images per request;
# detail=high works on images fit inside 2048 x 2048.
OPENAI_CHAT_LIMITS = MediaLimits(formats=("png", "jpeg", "webp", "gif"), max_long_edge=2048,
                                 max_bytes=20 * MB, max_images=500)
# images.edit: png, webp or jpg under 50 MB each, at most 16 images.
IMAGE_EDIT_LIMITS = MediaLimits(formats=("png", "webp", "jpeg"), max_bytes=50 * MB,
                                max_images=16)
# Servers differ (vLLM, TGI, Ollama, LM Studio): PNG and JPEG are what all decode.
COMPATIBLE_LIMITS = MediaLimits(formats=("png", "jpeg"), max_long_edge=2048, max_bytes=20 * MB)

CHAT_SUPPORTS = frozenset({Feature.SYSTEM, Feature.MAX_TOKENS, Feature.TEMPERATURE,
                           Feature.SCHEMA, Feature.STREAM, Feature.DETAIL, Feature.MULTI_LABEL})
# Reasoning families (o-series, gpt-5.x, gpt-6) answer 400 to a temperature other
# than the default on Chat Completions (some accept one with reasoning_effort
# "none", not all): never send one. A call that sets temperature= gets a
# CapabilityError (or, with Policy(lenient=True), a warning) before any request.
# They return no logprobs either: classify scores them by the documented rule.
REASONING_SUPPORTS = CHAT_SUPPORTS - {Feature.TEMPERATURE}
_REASONING = re.compile(r"^(o\d|gpt-5|gpt-6)")


def is_reasoning(model: str) -> bool:
    """Whether *model* is an OpenAI reasoning model (no temperature, no logprobs)."""
    return _REASONING.match(model) is not None

# seed -> the API's seed field; logprobs/top_logprobs steer classification scores.
CHAT_OPTIONS = frozenset({"seed", "top_p", "stop", "reasoning_effort", "safety_identifier",
                          "logprobs", "top_logprobs"})
IMAGE_SUPPORTS = frozenset({Feature.WIDTH, Feature.HEIGHT, Feature.N, Feature.IMAGE,
                            Feature.MASK})
IMAGE_OPTIONS = frozenset({"quality", "background", "output_format", "output_compression",
                           "moderation", "input_fidelity", "safety_identifier"})
MAX_IMAGES_PER_CALL = 10


@lru_cache(maxsize=256)
def describe_openai(model: str) -> ModelInfo:
    """ModelInfo for an ``openai:MODEL`` string (cached: the router asks on every call)."""
    if is_image_model(model):
        return ModelInfo(supports=IMAGE_SUPPORTS, options=IMAGE_OPTIONS, limits=IMAGE_EDIT_LIMITS,
                         max_n=MAX_IMAGES_PER_CALL, local=False, cost_hint=4.0, speed_hint=8.0,
                         price=price(model))
    return ModelInfo(supports=REASONING_SUPPORTS if is_reasoning(model) else CHAT_SUPPORTS,
                     options=CHAT_OPTIONS, limits=OPENAI_CHAT_LIMITS,
                     local=False, cost_hint=2.0, speed_hint=2.0, price=price(model))


# Image servers (SGLang Diffusion, vLLM-Omni): what their /v1/images/generations reads
# (steps, guidance, seed, negative_prompt as extra fields; size; n) and /v1/images/edits
# (image). Anything else (mask, strength, control_image, scheduler, ...) is a
# CapabilityError before any request.
SERVER_IMAGE_SUPPORTS = frozenset({Feature.NEGATIVE_PROMPT, Feature.WIDTH, Feature.HEIGHT,
                                   Feature.STEPS, Feature.GUIDANCE, Feature.SEED, Feature.N,
                                   Feature.IMAGE})
SERVER_IMAGE_OPTIONS = frozenset({"response_format"})
SERVER_MAX_N = 16  # as many as one mmsdk call asks for; the server may refuse fewer
CHAT_CAPABILITIES = frozenset({Capability.UNDERSTAND, Capability.CLASSIFY})


@lru_cache(maxsize=32)
def compatible_info(local: bool,
                    capabilities: frozenset[Capability] = CHAT_CAPABILITIES) -> ModelInfo:
    """ModelInfo for a model behind an OpenAI-compatible endpoint offering *capabilities*."""
    chat = bool(capabilities & CHAT_CAPABILITIES)
    generate = Capability.GENERATE in capabilities
    supports = (CHAT_SUPPORTS if chat else frozenset()) | \
        (SERVER_IMAGE_SUPPORTS if generate else frozenset())
    options = (CHAT_OPTIONS if chat else frozenset()) | \
        (SERVER_IMAGE_OPTIONS if generate else frozenset())
    return ModelInfo(supports=supports, options=options,
                     limits=COMPATIBLE_LIMITS, max_n=SERVER_MAX_N if generate else 1,
                     local=local, cost_hint=0.5 if local else 1.0,
                     speed_hint=8.0 if generate and not chat else 2.0)
