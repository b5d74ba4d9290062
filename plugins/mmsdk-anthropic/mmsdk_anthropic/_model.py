"""Claude through the Messages API: understand (plain, streamed, structured) and classify."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from mmsdk.plugin import (
    ClassifyRequest,
    ClassifyResult,
    ErrorBoundary,
    ModelInfo,
    PreparedImage,
    StreamEvent,
    UnderstandRequest,
    UnderstandResult,
    scores_from_answer,
)

from ._clients import Clients
from ._errors import boundary
from ._payload import answer_text, classify_params, understand_params, understand_result, usage
from ._spec import Claude, lifecycle_notes
from ._stream import StreamAccumulator

__all__ = ["DEFAULT_TIMEOUT", "AnthropicModel"]

# Sent when the routing policy gives no timeout. Always sending one also stops
# the SDK from refusing large non-streamed max_tokens ("streaming is required").
DEFAULT_TIMEOUT = 600.0


class AnthropicModel(Claude):
    """One Claude model. Holds its SDK clients; :meth:`close` releases them.

    Args:
        provider: the full provider string, e.g. ``"anthropic:claude-sonnet-5-5"``.
        info: what :func:`mmsdk_anthropic.describe` says about the model.
        model: the API model name.
        api_key: a key used instead of the settings' and the environment's
            (``mmsdk.Router(credentials={"anthropic": ...})``).
    """

    def __init__(self, provider: str, info: ModelInfo, model: str, *,
                 api_key: str | None = None) -> None:
        super().__init__(provider, info)
        self.model = model
        self._clients = Clients(provider, api_key=api_key)

    def close(self) -> None:
        """Close the SDK clients; the next call opens new ones."""
        self._clients.close()

    def _boundary(self) -> ErrorBoundary:
        return boundary(self.provider)

    @staticmethod
    def _timeout(request: UnderstandRequest | ClassifyRequest) -> float:
        return request.timeout or DEFAULT_TIMEOUT

    def _lifecycle(self) -> list[str]:
        # Asked at every call, before any request: the model object outlives days.
        return lifecycle_notes(self.model)

    @staticmethod
    def _finish(result: UnderstandResult, notes: list[str]) -> UnderstandResult:
        result.warnings.extend(notes)
        return result

    # -- understand ----------------------------------------------------------
    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self._lifecycle()
        params = understand_params(request, self.model, self.provider)
        with self._boundary():
            message = self._clients.sync().messages.create(**params,
                                                           timeout=self._timeout(request))
        return self._finish(understand_result(message, self.provider, len(request.images)),
                            notes)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self._lifecycle()
        params = understand_params(request, self.model, self.provider)
        with self._boundary():
            client = await self._clients.async_()
            message = await client.messages.create(**params, timeout=self._timeout(request))
        return self._finish(understand_result(message, self.provider, len(request.images)),
                            notes)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        notes = self._lifecycle()
        params = understand_params(request, self.model, self.provider)
        state = StreamAccumulator(self.provider, self.model, len(request.images))
        # Raw httpx2 errors can escape the SDK mid-stream: iterate inside the boundary.
        with self._boundary():
            stream = self._clients.sync().messages.create(**params, stream=True,
                                                          timeout=self._timeout(request))
            with stream:
                for event in stream:
                    chunk = state.feed(event)
                    if chunk:
                        yield chunk
        yield self._finish(state.result(), notes)

    async def aunderstand_stream(self, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
        notes = self._lifecycle()
        params = understand_params(request, self.model, self.provider)
        state = StreamAccumulator(self.provider, self.model, len(request.images))
        with self._boundary():
            client = await self._clients.async_()
            stream = await client.messages.create(**params, stream=True,
                                                  timeout=self._timeout(request))
            async with stream:
                async for event in stream:
                    chunk = state.feed(event)
                    if chunk:
                        yield chunk
        yield self._finish(state.result(), notes)

    # -- classify --------------------------------------------------------------
    # Anthropic returns no logprobs: each image gets one answer constrained to
    # the label enum, scored by the documented rule (chosen 1.0, others 0.0).
    def _scores(self, message: Any, request: ClassifyRequest,
                notes: list[str]) -> ClassifyResult:
        text = answer_text(message, self.provider)
        scores = scores_from_answer(text, request.labels, request.multi_label)
        return ClassifyResult(scores=scores, model=message.model, usage=usage(message, 1),
                              warnings=list(notes))

    def _classify_one(self, request: ClassifyRequest, image: PreparedImage,
                      notes: list[str]) -> ClassifyResult:
        with self._boundary():
            message = self._clients.sync().messages.create(
                **classify_params(request, image, self.model), timeout=self._timeout(request))
        return self._scores(message, request, notes)

    async def _aclassify_one(self, request: ClassifyRequest, image: PreparedImage,
                             notes: list[str]) -> ClassifyResult:
        with self._boundary():
            client = await self._clients.async_()
            message = await client.messages.create(
                **classify_params(request, image, self.model), timeout=self._timeout(request))
        return self._scores(message, request, notes)

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self._lifecycle()
        return [self._classify_one(request, image, notes) for image in request.images]

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self._lifecycle()
        # One request per image, in flight together; results keep input order.
        tasks = [asyncio.ensure_future(self._aclassify_one(request, image, notes))
                 for image in request.images]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # one failed (or we were cancelled): stop the others
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
