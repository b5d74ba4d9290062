"""Model objects: GPT image models and image servers (generate), chat models (understand,
classify), and both at once for an OpenAI-compatible endpoint that offers both.

Imported by the factories only: this is where the ``openai`` SDK gets imported.
Every SDK call runs inside :func:`boundary`, the plugin's one error boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

import openai
import openai.resources.chat.chat  # the SDK imports these on first use, which would be on the
import openai.resources.chat.completions  # caller's event loop; this module is imported off it
import openai.resources.images

from mmsdk.plugin import (
    ClassifyRequest,
    ClassifyResult,
    GenerateRequest,
    GenerateResult,
    Model,
    ModelInfo,
    PreparedImage,
    StreamEvent,
    UnderstandRequest,
    UnderstandResult,
    classification_prompt,
    classification_schema,
    scores_from_answer,
)

from ._chat import ChatParams, StreamState, answer_from, chat_params, understand_params
from ._classify import label_logprobs
from ._clients import ClientPool
from ._config import lifecycle
from ._errors import boundary
from ._image_servers import has_urls, server_params, server_result
from ._images import edit_files, image_params, result_from
from ._info import Chat, Images, is_reasoning

__all__ = ["ChatModel", "ImageModel", "ServerImageModel", "ServerModel", "reads_logprobs"]

def reads_logprobs(model: str) -> bool:
    """Whether classification asks *model* for logprobs by default.

    Reasoning families reject logprobs on Chat Completions; classify uses the rule there.
    """
    return not is_reasoning(model)


class _PoolModel(Model):
    """A model object holding its SDK clients (created once, closed by :meth:`close`)."""

    def __init__(self, provider: str, info: ModelInfo, name: str, pool: ClientPool, *,
                 compatible: bool = False, logprobs: bool = True) -> None:
        super().__init__(provider, info)
        self.name = name
        self.pool = pool
        self.compatible = compatible
        self.logprobs = logprobs

    def close(self) -> None:
        self.pool.close()

    def lifecycle_notes(self) -> list[str]:
        """At the start of each call, before any request: fails if the model is retired by
        now, else the deprecation notes for ``result.warnings`` (warns once when its
        shutdown is near). OpenAI's lifecycle only: compatible servers have their own."""
        return [] if self.compatible else lifecycle.on_call(self.name)


_R = TypeVar("_R", GenerateResult, UnderstandResult, ClassifyResult)


def _noted(result: _R, notes: list[str]) -> _R:
    result.warnings.extend(notes)
    return result


def _sender(body: ChatParams, timeout: float | None) -> Callable[[openai.OpenAI], Any]:
    """``client -> ChatCompletion`` (or a ``Stream`` when the body asks to stream)."""
    params: dict[str, Any] = _with_timeout(dict(body), timeout)
    return lambda client: client.chat.completions.create(**params)


def _asender(body: ChatParams, timeout: float | None
             ) -> Callable[[openai.AsyncOpenAI], Awaitable[Any]]:
    """Async twin of :func:`_sender`."""
    params: dict[str, Any] = _with_timeout(dict(body), timeout)
    return lambda client: client.chat.completions.create(**params)


def _with_timeout(params: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    if timeout is not None:
        params["timeout"] = timeout
    return params


class ImageModel(_PoolModel, Images):
    """A GPT image model: ``images.generate``, or ``images.edit`` when an image is given."""

    def generate(self, request: GenerateRequest) -> GenerateResult:
        notes = self.lifecycle_notes()
        params = _with_timeout(image_params(self.name, request), request.timeout)
        with boundary(self.provider):
            if request.image is not None:
                params.update(edit_files(request))
                response = self.pool.call(lambda client: client.images.edit(**params),
                                          request.endpoint)
            else:
                response = self.pool.call(lambda client: client.images.generate(**params),
                                          request.endpoint)
            return _noted(result_from(response, self.provider), notes)

    async def agenerate(self, request: GenerateRequest) -> GenerateResult:
        notes = self.lifecycle_notes()
        params = _with_timeout(image_params(self.name, request), request.timeout)
        with boundary(self.provider):
            if request.image is not None:
                params.update(edit_files(request))
                response = await self.pool.acall(lambda client: client.images.edit(**params),
                                                 request.endpoint)
            else:
                response = await self.pool.acall(
                    lambda client: client.images.generate(**params), request.endpoint)
            return _noted(result_from(response, self.provider), notes)


class ServerImageModel(_PoolModel, Images):
    """An image model on an OpenAI-compatible image server (SGLang Diffusion, vLLM-Omni).

    ``images.generate`` (``images.edit`` when an image is given) with the
    diffusion settings in ``extra_body``; see :mod:`._image_servers`. Each
    answer is paired with the base URL that gave it: image URLs are read
    against, and may only reach privately, that server.
    """

    def _server_params(self, request: GenerateRequest) -> dict[str, Any]:
        params = _with_timeout(server_params(self.name, request, self.provider),
                               request.timeout)
        if request.image is not None:
            params.update(edit_files(request))
        return params

    def generate(self, request: GenerateRequest) -> GenerateResult:
        params = self._server_params(request)
        edit = request.image is not None

        def send(client: openai.OpenAI) -> tuple[Any, str]:
            images = client.images
            response = images.edit(**params) if edit else images.generate(**params)
            return response, str(client.base_url)

        with boundary(self.provider):
            response, base_url = self.pool.call(send, request.endpoint)
            return server_result(response, self.provider, base_url, request)

    async def agenerate(self, request: GenerateRequest) -> GenerateResult:
        params = self._server_params(request)
        edit = request.image is not None

        async def send(client: openai.AsyncOpenAI) -> tuple[Any, str]:
            images = client.images
            response = await (images.edit(**params) if edit else images.generate(**params))
            return response, str(client.base_url)

        with boundary(self.provider):
            response, base_url = await self.pool.acall(send, request.endpoint)
            if has_urls(response):  # fetching them blocks: off the caller's loop
                return await asyncio.to_thread(server_result, response, self.provider,
                                               base_url, request)
            return server_result(response, self.provider, base_url, request)


class ChatModel(_PoolModel, Chat):
    """A chat model (OpenAI or an OpenAI-compatible server) through Chat Completions.

    The body is built here as plain JSON and sent with the SDK's public
    ``client.post`` (its route for raw requests): same client, auth, errors and
    stream decoding as ``chat.completions.create``, without re-walking the body
    against the SDK's TypedDicts, which costs more than all of mmsdk's routing.
    """

    # -- understand ------------------------------------------------------------
    def _params(self, request: UnderstandRequest, stream: bool = False) -> ChatParams:
        params = understand_params(self.name, request, compatible=self.compatible)
        if stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        return params

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self.lifecycle_notes()
        send = _sender(self._params(request), request.timeout)
        with boundary(self.provider):
            response = self.pool.call(send, request.endpoint)
            return _noted(answer_from(response, self.provider, len(request.images))[0], notes)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self.lifecycle_notes()
        send = _asender(self._params(request), request.timeout)
        with boundary(self.provider):
            response = await self.pool.acall(send, request.endpoint)
            return _noted(answer_from(response, self.provider, len(request.images))[0], notes)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        notes = self.lifecycle_notes()
        send = _sender(self._params(request, stream=True), request.timeout)
        state = StreamState(self.provider, len(request.images))
        with boundary(self.provider):
            stream = cast("openai.Stream[Any]", self.pool.call(send, request.endpoint))
            try:
                for chunk in stream:
                    text = state.feed(chunk)
                    if text:
                        yield text
            finally:
                stream.close()
            final = _noted(state.result(), notes)
        yield final

    async def aunderstand_stream(self, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
        notes = self.lifecycle_notes()
        send = _asender(self._params(request, stream=True), request.timeout)
        state = StreamState(self.provider, len(request.images))
        with boundary(self.provider):
            stream = cast("openai.AsyncStream[Any]",
                          await self.pool.acall(send, request.endpoint))
            try:
                async for chunk in stream:
                    text = state.feed(chunk)
                    if text:
                        yield text
            finally:
                await stream.close()
            final = _noted(state.result(), notes)
        yield final

    # -- classify --------------------------------------------------------------
    def _classify_params(self, image: PreparedImage, request: ClassifyRequest) -> ChatParams:
        labels, multi = request.labels, request.multi_label
        schema = {"type": "json_schema", "json_schema": {
            "name": "classification", "schema": classification_schema(labels, multi),
            "strict": True}}
        options = request.options
        params = chat_params(self.name, classification_prompt(labels, multi), [image],
                             response_format=schema, options=options,
                             compatible=self.compatible)
        if options.get("logprobs", self.logprobs):
            params["logprobs"] = True
            params["top_logprobs"] = options.get("top_logprobs", min(20, 2 * len(labels) + 5))
        return params

    def _scored(self, response: Any, request: ClassifyRequest,
                notes: list[str]) -> ClassifyResult:
        answer, logprobs = answer_from(response, self.provider, 1)
        tokens = getattr(logprobs, "content", None) if logprobs is not None else None
        from_logprobs = label_logprobs(tokens, answer.text, request.labels, request.multi_label)
        scores = scores_from_answer(answer.text, request.labels, request.multi_label,
                                    from_logprobs)
        return ClassifyResult(scores=scores, model=answer.model, usage=answer.usage,
                              warnings=list(notes))

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self.lifecycle_notes()
        results = []
        with boundary(self.provider):
            for image in request.images:
                send = _sender(self._classify_params(image, request), request.timeout)
                response = self.pool.call(send, request.endpoint)
                results.append(self._scored(response, request, notes))
        return results

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self.lifecycle_notes()

        async def one(image: PreparedImage) -> ClassifyResult:
            send = _asender(self._classify_params(image, request), request.timeout)
            return self._scored(await self.pool.acall(send, request.endpoint), request, notes)

        with boundary(self.provider):
            return list(await asyncio.gather(*(one(image) for image in request.images)))


class ServerModel(ChatModel, ServerImageModel):
    """An OpenAI-compatible endpoint that both chats and makes images (one pool of clients)."""
