"""The abstract capabilities a provider model implements.

A provider's factory returns one object per model name; it subclasses one or
more of :class:`Generate`, :class:`Understand`, :class:`Classify` and
:class:`Embed` and implements their one abstract method each. Async twins
default to running the sync method in a worker thread; cloud plugins override
them with their SDK's async client.

Streaming protocol: ``understand_stream`` yields ``str`` chunks and ends with
exactly one :class:`UnderstandResult` holding the whole answer.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator

from ._errors import CapabilityError
from ._requests import ClassifyRequest, EmbedRequest, GenerateRequest, UnderstandRequest
from ._types import ClassifyResult, EmbedResult, GenerateResult, ModelInfo, UnderstandResult

__all__ = ["Classify", "Embed", "Generate", "Model", "StreamEvent", "Understand"]

StreamEvent = str | UnderstandResult


class Model:
    """Base of every provider model object.

    Attributes:
        provider: the full provider string, e.g. ``"openai:gpt-4o"``.
        info: the model's capability metadata.
    """

    def __init__(self, provider: str, info: ModelInfo) -> None:
        self.provider = provider
        self.info = info

    def close(self) -> None:
        """Release clients, weights and caches. Called by :func:`mmsdk.unload`."""

    async def aclose(self) -> None:
        """Async twin of :meth:`close`, for async clients tied to the running event loop."""
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}>"


class Generate(Model, ABC):
    """Text (plus optional images) to images."""

    @abstractmethod
    def generate(self, request: GenerateRequest) -> GenerateResult:
        """Make images for *request*."""

    async def agenerate(self, request: GenerateRequest) -> GenerateResult:
        return await asyncio.to_thread(self.generate, request)


class Understand(Model, ABC):
    """Images or video plus text, to text."""

    @abstractmethod
    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        """Answer *request* in one piece."""

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        """Yield text chunks, then the final :class:`UnderstandResult`."""
        raise CapabilityError(f"{self.provider} does not stream.", provider=self.provider)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        return await asyncio.to_thread(self.understand, request)

    async def aunderstand_stream(self, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
        """Async twin of :meth:`understand_stream`; by default pulls it in a thread."""
        iterator = await asyncio.to_thread(self.understand_stream, request)
        done = object()
        while True:
            event = await asyncio.to_thread(next, iterator, done)
            if event is done:
                return
            yield event  # type: ignore[misc]


class Classify(Model, ABC):
    """Images plus labels, to one score table per image."""

    @abstractmethod
    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        """Score every label for every image in *request*, in input order."""

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        return await asyncio.to_thread(self.classify, request)


class Embed(Model, ABC):
    """Images and/or texts, to unit vectors in one space."""

    @abstractmethod
    def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embed every image and text in *request*, in input order."""

    async def aembed(self, request: EmbedRequest) -> EmbedResult:
        return await asyncio.to_thread(self.embed, request)
