"""The abstract capabilities a provider model implements.

A provider's factory returns one object per model name; it subclasses one or
more of :class:`Generate`, :class:`Understand`, :class:`Classify` and
:class:`Embed` and implements their one abstract method each. Async twins
default to running the sync method off the event loop (:meth:`Model.run_blocking`):
a local model (``info.local``) on its own single worker thread, so models do
not starve each other in the default pool and torch keeps one thread pool per
model; others in the default executor. Cloud plugins override them with their
SDK's async client.

What a model can do is what its class implements: the core reads a class's
capabilities from these mixins (:func:`capabilities_of`); a plugin declares
them nowhere else.

Streaming protocol: ``understand_stream`` yields ``str`` chunks and ends with
exactly one :class:`UnderstandResult` holding the whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._errors import CapabilityError
from ._requests import ClassifyRequest, EmbedRequest, GenerateRequest, Request, UnderstandRequest
from ._types import (
    Capability,
    ClassifyResult,
    EmbedResult,
    GenerateResult,
    ModelInfo,
    UnderstandResult,
)

__all__ = ["Classify", "Embed", "Generate", "Model", "StreamEvent", "Understand",
           "capabilities_of"]

StreamEvent = str | UnderstandResult
T = TypeVar("T")
_workers_lock = threading.Lock()


class Model:
    """Base of every provider model object.

    mmsdk builds both arguments (a plugin's factory receives them, or the class
    is called with them): the provider string ``NAME:MODEL`` and the full
    :class:`ModelInfo`, whose ``capabilities`` are this class's mixins.

    Attributes:
        provider: the full provider string, e.g. ``"openai:gpt-5.5"``.
        info: the model's capability metadata.
    """

    def __init__(self, provider: str, info: ModelInfo) -> None:
        self.provider = provider
        self.info = info

    @property
    def model_name(self) -> str:
        """The model part of :attr:`provider` (``"gpt-5.5"`` for ``"openai:gpt-5.5"``)."""
        return self.provider.partition(":")[2]

    def preload(self) -> None:
        """Get ready ahead of the first call (:func:`mmsdk.preload`): load weights, build clients.

        Called in a worker thread; calling it twice does no extra work. The
        default does nothing: the object was already built, which imported the SDK.
        """

    def close(self) -> None:
        """Release clients, weights and caches. Called by :func:`mmsdk.unload`."""

    async def aclose(self) -> None:
        """Async twin of :meth:`close`; runs it off the event loop (freeing weights takes time).

        Cloud plugins override it to close async clients inside the running loop.
        """
        await self.run_blocking(self.close)
        self.stop_worker()

    def _worker_pool(self) -> ThreadPoolExecutor | None:
        """This local model's own worker thread (``None``: the loop's default executor)."""
        if not self.info.local:
            return None
        worker: ThreadPoolExecutor | None = self.__dict__.get("_worker")
        if worker is None:
            with _workers_lock:
                worker = self.__dict__.get("_worker")
                if worker is None:
                    worker = self.__dict__["_worker"] = ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix=f"mmsdk-{self.provider}"[:40])
        return worker

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` off the event loop and return its result.

        When the awaiting task is cancelled, a request among *args* gets its
        ``cancel`` event set, so local work stops at its next step instead of
        running on for nobody; a call still queued behind a busy model is
        dropped before it starts.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        requests = [arg for arg in args if isinstance(arg, Request)]

        def begin() -> T:
            for request in requests:  # out of the queue: the model itself is working on it
                request._started = True
            return fn(*args)

        future = loop.run_in_executor(self._worker_pool(), functools.partial(context.run, begin))
        try:
            return await future
        except asyncio.CancelledError:
            for request in requests:
                if request.cancel is not None:
                    request.cancel.set()
            raise

    def stop_worker(self) -> None:
        """Let this model's worker thread end (after :meth:`close`)."""
        worker = self.__dict__.pop("_worker", None)
        if worker is not None:
            worker.shutdown(wait=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}>"


class Generate(Model, ABC):
    """Text (plus optional images) to images."""

    @abstractmethod
    def generate(self, request: GenerateRequest) -> GenerateResult:
        """Make images for *request*."""

    async def agenerate(self, request: GenerateRequest) -> GenerateResult:
        return await self.run_blocking(self.generate, request)


class Understand(Model, ABC):
    """Images or video plus text, to text."""

    @abstractmethod
    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        """Answer *request* in one piece."""

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        """Yield text chunks, then the final :class:`UnderstandResult`."""
        raise CapabilityError(f"{self.provider} does not stream.", provider=self.provider)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        return await self.run_blocking(self.understand, request)

    async def aunderstand_stream(self, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
        """Async twin of :meth:`understand_stream`; by default pulls it in a thread."""
        iterator = await asyncio.to_thread(self.understand_stream, request)
        done = object()
        try:
            while True:
                event = await asyncio.to_thread(next, iterator, done)
                if event is done:
                    return
                yield event  # type: ignore[misc]
        finally:  # the reader left early or was cancelled: stop the work behind it
            if request.cancel is not None:
                request.cancel.set()
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(ValueError):  # still inside next() in its thread
                    await asyncio.to_thread(close)


class Classify(Model, ABC):
    """Images plus labels, to one score table per image."""

    @abstractmethod
    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        """Score every label for every image in *request*, in input order."""

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        return await self.run_blocking(self.classify, request)


class Embed(Model, ABC):
    """Images and/or texts, to unit vectors in one space."""

    @abstractmethod
    def embed(self, request: EmbedRequest) -> EmbedResult:
        """Embed every image and text in *request*, in input order."""

    async def aembed(self, request: EmbedRequest) -> EmbedResult:
        return await self.run_blocking(self.embed, request)


MIXINS: dict[Capability, type[Model]] = {
    Capability.GENERATE: Generate, Capability.UNDERSTAND: Understand,
    Capability.CLASSIFY: Classify, Capability.EMBED: Embed,
}


def capabilities_of(cls: type[Model]) -> frozenset[Capability]:
    """The capabilities a model class offers: the mixins it subclasses.

    Example:
        >>> class Vision(Understand, Classify): ...
        >>> sorted(c.value for c in capabilities_of(Vision))
        ['classify', 'understand']
    """
    return frozenset(c for c, mixin in MIXINS.items() if issubclass(cls, mixin))
