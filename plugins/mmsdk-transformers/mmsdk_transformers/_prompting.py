"""Turning an :class:`UnderstandRequest` into chat messages and generation settings.

Pure functions, no torch: they are what the VLM path sends, and tests check
them directly. Structured output is asked for in the prompt (the JSON schema
plus an instruction); the core validates the answer against the schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from mmsdk.plugin import InvalidInputError, UnderstandRequest

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "GENERATION_OPTIONS",
    "generation_kwargs",
    "messages",
    "schema_instruction",
    "seed_of",
    "user_text",
]

DEFAULT_MAX_TOKENS = 256
GENERATION_OPTIONS = frozenset({"seed", "top_p", "top_k", "repetition_penalty"})
"""``options={...}`` keys that shape decoding (the others are load options)."""


def schema_instruction(schema: type[BaseModel]) -> str:
    """The text appended to the prompt when a schema is requested."""
    return ("\n\nAnswer with a single JSON object that validates against this JSON schema, and "
            "nothing else (no prose, no code fence):\n"
            + json.dumps(schema.model_json_schema(), separators=(",", ":")))


def user_text(request: UnderstandRequest, *, system_inline: bool = False) -> str:
    """The user turn's text: the prompt, the schema instruction, and the system text if inlined."""
    text = request.prompt
    if request.response_schema is not None:
        text += schema_instruction(request.response_schema)
    if system_inline and request.system:
        text = f"{request.system}\n\n{text}"
    return text


def messages(request: UnderstandRequest, *, system_inline: bool = False) -> list[dict[str, Any]]:
    """Chat messages in the processor format: images first, then the text (LLaVA's order)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
    content.append({"type": "text", "text": user_text(request, system_inline=system_inline)})
    turns: list[dict[str, Any]] = []
    if request.system and not system_inline:
        turns.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    turns.append({"role": "user", "content": content})
    return turns


def _number(options: Mapping[str, Any], name: str, *, integer: bool = False,
            positive: bool = False, most: int | float | None = None) -> Any:
    value = options[name]
    kinds = (int,) if integer else (int, float)
    fits = isinstance(value, kinds) and not isinstance(value, bool) \
        and (isinstance(value, int) or math.isfinite(value)) \
        and (value > 0 if positive else value >= 0) and (most is None or value <= most)
    if not fits:
        kind = "an integer" if integer else "a number"
        bounds = f"{'above' if positive else 'at least'} 0" + (
            f" and at most {most}" if most is not None else "")
        raise InvalidInputError(f"options[{name!r}] must be {kind} {bounds}, got {value!r}.")
    return value


def seed_of(options: Mapping[str, Any]) -> int | None:
    """``options["seed"]``, validated."""
    # torch.manual_seed takes 64 bits
    return _number(options, "seed", integer=True, most=2**64 - 1) if "seed" in options else None


def generation_kwargs(request: UnderstandRequest) -> dict[str, Any]:
    """``generate()`` arguments: greedy for temperature ``None``/0, else sampling.

    ``top_p`` / ``top_k`` only matter when sampling; ``repetition_penalty`` always.
    """
    options = request.options
    kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    if not request.temperature:
        kwargs["do_sample"] = False
    else:
        kwargs["do_sample"] = True
        kwargs["temperature"] = request.temperature
        if "top_p" in options:
            kwargs["top_p"] = _number(options, "top_p", positive=True, most=1.0)
        if "top_k" in options:
            kwargs["top_k"] = _number(options, "top_k", integer=True)
    if "repetition_penalty" in options:
        kwargs["repetition_penalty"] = _number(options, "repetition_penalty", positive=True)
    seed_of(options)
    return kwargs
