"""Chat Completions wire format: requests with image parts, answers, stream chunks.

Images go inline as base64 data URLs (``detail`` low/high/auto when asked);
``schema=`` becomes ``response_format`` ``json_schema`` with ``strict: true``;
streams ask for ``stream_options.include_usage`` so the last chunk carries usage.
A refusal (``message.refusal``) or ``finish_reason="content_filter"`` is a
:class:`ContentPolicyError`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from mmsdk.plugin import (
    ContentPolicyError,
    PreparedImage,
    ProviderServerError,
    UnderstandRequest,
    UnderstandResult,
    Usage,
)

__all__ = ["ChatParams", "StreamState", "answer_from", "chat_params", "strict_schema_format",
           "understand_params"]

ChatParams = dict[str, Any]

# Options passed to the API under the same name (seed -> the API's seed field).
_PASSTHROUGH = ("seed", "top_p", "stop", "reasoning_effort", "safety_identifier")
_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_schema_cache: dict[type[BaseModel], dict[str, Any]] = {}


def strict_schema_format(schema: type[BaseModel]) -> dict[str, Any]:
    """``response_format`` for *schema*: strict JSON schema, as the SDK's helpers build it."""
    cached = _schema_cache.get(schema)
    if cached is None:
        import openai

        # pydantic_function_tool is the SDK's public route to its strict-schema
        # converter (all properties required, additionalProperties false).
        parameters = openai.pydantic_function_tool(schema)["function"]["parameters"]
        cached = {"type": "json_schema", "json_schema": {
            "name": _NAME.sub("_", schema.__name__)[:64] or "answer",
            "schema": parameters, "strict": True}}
        _schema_cache[schema] = cached
    return cached


def user_content(prompt: str, images: list[PreparedImage], detail: str | None) -> Any:
    """The user message content: the prompt, then one image part per image."""
    if not images:
        return prompt
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for image in images:
        url: dict[str, Any] = {"url": image.data_url()}
        if detail:
            url["detail"] = detail
        parts.append({"type": "image_url", "image_url": url})
    return parts


def chat_params(model: str, prompt: str, images: list[PreparedImage], *,
                system: str | None = None, detail: str | None = None,
                max_tokens: int | None = None, temperature: float | None = None,
                response_format: dict[str, Any] | None = None,
                options: dict[str, Any] | None = None, compatible: bool = False) -> ChatParams:
    """Keyword arguments for ``chat.completions.create`` (without ``stream`` or ``timeout``).

    Args:
        model: the model name.
        prompt / images: the user turn.
        system: the system message.
        detail: ``"low"``, ``"high"`` or ``"auto"`` on every image part.
        max_tokens / temperature: as the caller gave them.
        response_format: e.g. :func:`strict_schema_format`.
        options: the caller's ``options={...}`` (already checked by the core).
        compatible: an OpenAI-compatible server; it gets ``max_tokens`` (which
            every such server reads) instead of ``max_completion_tokens``.
    """
    user = {"role": "user", "content": user_content(prompt, images, detail)}
    messages = [{"role": "system", "content": system}, user] if system else [user]
    params: ChatParams = {"model": model, "messages": messages}
    if max_tokens is not None:
        params["max_tokens" if compatible else "max_completion_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    if response_format is not None:
        params["response_format"] = response_format
    if options:
        for key in _PASSTHROUGH:
            if key in options:
                params[key] = options[key]
    return params


def understand_params(model: str, request: UnderstandRequest, *,
                      compatible: bool = False) -> ChatParams:
    """:func:`chat_params` for an understand request."""
    schema = request.response_schema
    return chat_params(model, request.prompt, request.images, system=request.system,
                       detail=request.detail, max_tokens=request.max_tokens,
                       temperature=request.temperature, options=request.options,
                       response_format=strict_schema_format(schema) if schema else None,
                       compatible=compatible)


def _refused(provider: str, refusal: str | None, finish_reason: str | None) -> None:
    if refusal:
        raise ContentPolicyError(f"{provider} refused: {refusal}", provider=provider)
    if finish_reason == "content_filter":
        raise ContentPolicyError(f"{provider} stopped the answer: its content filter was "
                                 "triggered (finish_reason=content_filter).", provider=provider)


def _usage(usage: Any, images: int) -> Usage:
    if usage is None:
        return Usage(images=images)
    details = getattr(usage, "prompt_tokens_details", None)  # prompt_tokens includes cached ones
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                 cached_input_tokens=getattr(details, "cached_tokens", None), images=images)


def answer_from(response: Any, provider: str, images: int) -> tuple[UnderstandResult, Any]:
    """The result for a non-streamed completion, and the choice's ``logprobs`` (or None)."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise ProviderServerError(f"{provider} answered without any choice.", provider=provider)
    choice = choices[0]
    message = choice.message
    if message is None:
        raise ProviderServerError(f"{provider} answered without a message.", provider=provider)
    _refused(provider, message.refusal, choice.finish_reason)
    result = UnderstandResult(text=message.content or "", finish_reason=choice.finish_reason,
                              model=response.model or "",
                              usage=_usage(response.usage, images))
    return result, choice.logprobs


class StreamState:
    """Accumulates chunks of a streamed completion.

    ``feed(chunk)`` returns the text to yield (or ``""``); ``result()`` checks
    for refusals and builds the final :class:`UnderstandResult`.
    """

    def __init__(self, provider: str, images: int) -> None:
        self.provider = provider
        self.images = images
        self.parts: list[str] = []
        self.refusal: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.model = ""

    def feed(self, chunk: Any) -> str:
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.model:
            self.model = chunk.model
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        delta = choice.delta
        if delta is None:
            return ""
        if delta.refusal:
            self.refusal.append(delta.refusal)
        text = delta.content or ""
        if text:
            self.parts.append(text)
        return text

    def result(self) -> UnderstandResult:
        _refused(self.provider, "".join(self.refusal), self.finish_reason)
        return UnderstandResult(text="".join(self.parts), finish_reason=self.finish_reason,
                                model=self.model, usage=_usage(self.usage, self.images))
