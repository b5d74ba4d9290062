"""mmsdk requests to google-genai call arguments (configs and contents). No I/O here."""

from __future__ import annotations

import math
from typing import Any

from google.genai import types
from pydantic import ValidationError

from mmsdk.plugin import (
    ClassifyRequest,
    GenerateRequest,
    InvalidInputError,
    UnderstandRequest,
    classification_prompt,
    classification_schema,
)

__all__ = [
    "classify_config",
    "generate_config",
    "http_options",
    "imagen_config",
    "understand_config",
    "upload_config",
]

# attempts=1 makes tenacity stop after the first try and also turns off the
# SDK's implicit reconnect-and-resend on aiohttp connection errors: the mmsdk
# router owns every retry.
NO_RETRY = types.HttpRetryOptions(attempts=1)

_RESOLUTION = {"low": types.MediaResolution.MEDIA_RESOLUTION_LOW,
               "high": types.MediaResolution.MEDIA_RESOLUTION_HIGH}


def http_options(timeout: float | None, base_url: str | None = None) -> types.HttpOptions:
    """Per-request HTTP options: the attempt's timeout (milliseconds) and no retries."""
    millis = math.ceil(timeout * 1000) if timeout else None
    return types.HttpOptions(timeout=millis, retry_options=NO_RETRY, base_url=base_url)


def _config(provider: str, **values: Any) -> types.GenerateContentConfig:
    try:
        return types.GenerateContentConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                             for err in exc.errors(include_url=False))
        raise InvalidInputError(f"{provider}: invalid option value(s): {problems}.",
                                provider=provider) from None


def _sampling(options: dict[str, Any]) -> dict[str, Any]:
    thinking = options.get("thinking_budget")
    return {
        "seed": options.get("seed"),
        "top_p": options.get("top_p"),
        "top_k": options.get("top_k"),
        "stop_sequences": options.get("stop_sequences"),
        "thinking_config": types.ThinkingConfig(thinking_budget=thinking)
        if thinking is not None else None,
    }


def understand_config(request: UnderstandRequest, provider: str) -> types.GenerateContentConfig:
    """Config for an understand call: system, limits, sampling, schema, media resolution."""
    if "logprobs" in request.options:
        raise InvalidInputError(f"{provider}: options['logprobs'] applies to classify only.",
                                provider=provider)
    schema = request.response_schema
    return _config(
        provider,
        system_instruction=request.system,
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
        response_mime_type="application/json" if schema is not None else None,
        response_json_schema=schema.model_json_schema() if schema is not None else None,
        media_resolution=_RESOLUTION.get(request.detail or ""),
        # One attempt is one request: the SDK would otherwise send follow-up
        # requests when an answer stops at the per-request token limit.
        automatic_continuation=False,
        http_options=http_options(request.timeout),
        **_sampling(request.options),
    )


def classify_config(request: ClassifyRequest, provider: str) -> types.GenerateContentConfig:
    """Config for one image's classification: a JSON answer restricted to the labels."""
    options = request.options
    top = options.get("logprobs")
    if top not in (None, False, True) and not (isinstance(top, int) and 1 <= top <= 20):
        raise InvalidInputError(f"{provider}: options['logprobs'] must be a bool or 1-20.",
                                provider=provider)
    wants = bool(top)
    return _config(
        provider,
        response_mime_type="application/json",
        response_json_schema=classification_schema(request.labels, request.multi_label),
        # Logprobs are opt-in: many Gemini models answer 400 "Logprobs is not
        # enabled" and one request per attempt rules out probing.
        response_logprobs=True if wants else None,
        logprobs=(len(request.labels) if top is True else top) if wants else None,
        automatic_continuation=False,
        http_options=http_options(request.timeout),
        **_sampling(options),
    )


def classify_prompt(request: ClassifyRequest) -> str:
    return classification_prompt(request.labels, request.multi_label)


def generate_config(request: GenerateRequest, provider: str) -> types.GenerateContentConfig:
    """Config for native image output (``response_modalities=["IMAGE"]``)."""
    options = request.options
    image_config = None
    if options.get("aspect_ratio") or options.get("image_size"):
        image_config = types.ImageConfig(aspect_ratio=options.get("aspect_ratio"),
                                         image_size=options.get("image_size"))
    return _config(
        provider,
        response_modalities=["IMAGE"],
        seed=request.seed,
        image_config=image_config,
        automatic_continuation=False,
        http_options=http_options(request.timeout),
    )


def imagen_config(request: GenerateRequest, provider: str) -> types.GenerateImagesConfig:
    """Config for Imagen ``generate_images`` (Vertex AI only)."""
    options = request.options
    values: dict[str, Any] = {"number_of_images": request.n, "aspect_ratio": options.get("aspect_ratio"),
              "image_size": options.get("image_size"),
              "person_generation": options.get("person_generation"),
              "http_options": http_options(request.timeout)}
    try:
        return types.GenerateImagesConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise InvalidInputError(f"{provider}: invalid Imagen option value(s): "
                                f"{exc.errors(include_url=False)[0]['msg']}.",
                                provider=provider) from None


def upload_config(timeout: float | None, base_url: str | None) -> types.UploadFileConfig:
    """Files API upload options. ``base_url`` keeps the upload on a custom endpoint."""
    return types.UploadFileConfig(http_options=http_options(timeout, base_url))
