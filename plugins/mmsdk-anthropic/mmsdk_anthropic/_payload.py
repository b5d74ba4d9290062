"""Requests to Messages API parameters, and Messages API answers to mmsdk results."""

from __future__ import annotations

from typing import Any

from mmsdk.plugin import (
    CapabilityError,
    ClassifyRequest,
    ContentPolicyError,
    PreparedImage,
    UnderstandRequest,
    UnderstandResult,
    Usage,
    classification_prompt,
    classification_schema,
)

from ._settings import get_settings

__all__ = ["answer_text", "classify_params", "refusal", "understand_params", "understand_result",
           "usage"]

# A classification answer is a short JSON object; a multi-label one lists labels.
CLASSIFY_MAX_TOKENS = 256


def _image_block(image: PreparedImage) -> dict[str, Any]:
    return {"type": "image",
            "source": {"type": "base64", "media_type": image.mime_type, "data": image.base64()}}


def _user_message(images: list[PreparedImage], text: str) -> dict[str, Any]:
    # Images first, then the question: the order Anthropic's vision guide recommends.
    content = [_image_block(image) for image in images]
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def _output_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


def _with_options(params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    options = dict(options)
    if "effort" in options:
        params["output_config"] = {**params.get("output_config", {}), "effort": options.pop("effort")}
    return {**params, **options}


def understand_params(request: UnderstandRequest, model: str, provider: str) -> dict[str, Any]:
    """``messages.create`` keyword arguments for *request* (``stream`` excluded)."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or get_settings().max_tokens,
        "messages": [_user_message(request.images, request.prompt)],
    }
    if request.system:
        params["system"] = request.system
    if request.response_schema is not None:
        from anthropic import transform_schema

        try:
            schema = transform_schema(request.response_schema)
        except (TypeError, ValueError) as exc:
            raise CapabilityError(f"{provider} cannot use {request.response_schema.__name__} as "
                                  f"a structured-output schema: {exc}", provider=provider) from None
        # Native structured outputs: the API constrains decoding to the schema.
        params["output_config"] = _output_format(schema)
    return _with_options(params, request.options)


def classify_params(request: ClassifyRequest, image: PreparedImage, model: str) -> dict[str, Any]:
    """``messages.create`` keyword arguments classifying one image of *request*."""
    schema = classification_schema(request.labels, request.multi_label)
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": CLASSIFY_MAX_TOKENS if not request.multi_label else
        max(CLASSIFY_MAX_TOKENS, 16 * len(request.labels)),
        "messages": [_user_message([image], classification_prompt(request.labels,
                                                                   request.multi_label))],
        # The answer is constrained to the enum of labels, so it always parses.
        "output_config": _output_format(schema),
    }
    return _with_options(params, request.options)


def refusal(provider: str) -> ContentPolicyError:
    """The error for an answer that stopped with ``stop_reason == "refusal"``."""
    return ContentPolicyError(f"{provider} refused to answer (stop_reason 'refusal'). Rephrase "
                              "the request or use Policy(fallback_on_policy_refusal=True).",
                              provider=provider, status=200)


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def usage(message: Any, images: int) -> Usage:
    """Token counts of a complete ``Message``.

    Anthropic's ``input_tokens`` leaves out cache reads and writes; mmsdk's counts
    every input token, with cache reads also in ``cached_input_tokens``.
    """
    counts = message.usage
    read = getattr(counts, "cache_read_input_tokens", None)
    written = getattr(counts, "cache_creation_input_tokens", None)
    return Usage(input_tokens=counts.input_tokens + (read or 0) + (written or 0),
                 cached_input_tokens=read, output_tokens=counts.output_tokens, images=images)


def understand_result(message: Any, provider: str, images: int) -> UnderstandResult:
    """The mmsdk result for a complete ``Message``; a refusal raises."""
    return UnderstandResult(text=answer_text(message, provider), finish_reason=message.stop_reason,
                            model=message.model, usage=usage(message, images))


def answer_text(message: Any, provider: str) -> str:
    """The text of a complete ``Message``; a refusal raises."""
    if message.stop_reason == "refusal":
        raise refusal(provider)
    return _text(message)
