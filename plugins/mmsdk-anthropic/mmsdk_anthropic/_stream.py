"""Messages API stream events to text chunks and one final result (sync and async share it).

A stream is ``message_start`` (model, input tokens), ``content_block_*``
events carrying ``text_delta`` chunks, ``message_delta`` (stop reason,
cumulative usage) and ``message_stop``. ``ping`` and ``error`` events never
reach here: the SDK skips the first and raises for the second.
"""

from __future__ import annotations

from typing import Any

from mmsdk.plugin import ProviderConnectionError, UnderstandResult, Usage

from ._payload import refusal

__all__ = ["StreamAccumulator"]


class StreamAccumulator:
    """Feed it every event; it returns the text chunks and builds the final result."""

    def __init__(self, provider: str, model: str, images: int) -> None:
        self.provider = provider
        self.model = model
        self.images = images
        self.parts: list[str] = []
        self.input_tokens: int | None = None
        self.cache: dict[str, int] = {}  # cache reads and writes, which input_tokens leaves out
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None
        self.stopped = False

    def feed(self, event: Any) -> str | None:
        """Take one event; return its text chunk, if it carries one.

        Raises:
            ContentPolicyError: the model stopped with ``stop_reason == "refusal"``.
        """
        kind = event.type
        if kind == "content_block_delta":
            if event.delta.type == "text_delta" and event.delta.text:
                self.parts.append(event.delta.text)
                return str(event.delta.text)
        elif kind == "message_start":
            self.model = event.message.model or self.model
            self._usage(event.message.usage)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._usage(event.usage)
            if self.stop_reason == "refusal":
                raise refusal(self.provider)
        elif kind == "message_stop":
            self.stopped = True
        return None

    def _usage(self, usage: Any) -> None:
        # message_delta usage is cumulative; any field it omits keeps its earlier value.
        if usage is None:
            return
        if getattr(usage, "input_tokens", None) is not None:
            self.input_tokens = usage.input_tokens
        if getattr(usage, "output_tokens", None) is not None:
            self.output_tokens = usage.output_tokens
        for name in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            if getattr(usage, name, None) is not None:
                self.cache[name] = getattr(usage, name)

    def result(self) -> UnderstandResult:
        """The whole answer.

        Raises:
            ProviderConnectionError: the stream ended before ``message_stop``.
        """
        if not self.stopped:
            raise ProviderConnectionError(
                f"{self.provider} closed the stream before message_stop; the answer is "
                "incomplete.", provider=self.provider)
        return UnderstandResult(
            text="".join(self.parts), finish_reason=self.stop_reason, model=self.model,
            usage=Usage(input_tokens=None if self.input_tokens is None else
                        self.input_tokens + sum(self.cache.values()),
                        cached_input_tokens=self.cache.get("cache_read_input_tokens"),
                        output_tokens=self.output_tokens, images=self.images))
