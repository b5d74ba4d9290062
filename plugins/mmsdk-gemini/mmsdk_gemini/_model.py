"""The Gemini model object: understand, classify and generate, sync and async.

Every SDK call runs inside :func:`gemini_errors`, the plugin's one error
boundary. The ``genai.Client`` closes itself when garbage-collected, so the
model keeps it for its whole life and closes it in :meth:`close`.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from google.genai import types

from mmsdk.plugin import (
    CapabilityError,
    Classify,
    ClassifyRequest,
    ClassifyResult,
    Generate,
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    StreamEvent,
    Understand,
    UnderstandRequest,
    UnderstandResult,
)

from . import _build, _media, _parse
from ._client import custom_base_url, make_client
from ._describe import family, lifecycle
from ._errors import gemini_errors
from ._settings import GeminiSettings, use_vertex

__all__ = ["GeminiModel"]

# Images of one async classify call in flight at once (one request each).
_CLASSIFY_CONCURRENCY = 4

_R = TypeVar("_R", GenerateResult, UnderstandResult, ClassifyResult)


def _noted(result: _R, notes: list[str]) -> _R:
    result.warnings.extend(notes)
    return result


class GeminiModel(Understand, Classify, Generate):
    """One Gemini model, e.g. ``gemini:gemini-3.8-flash``.

    Args:
        provider: the full provider string.
        info: what :func:`mmsdk_gemini.describe` says about the model.
        model: the model name sent to the API.
        settings: the plugin settings in force when the model was created.
    """

    def __init__(self, provider: str, info: ModelInfo, model: str,
                 settings: GeminiSettings) -> None:
        super().__init__(provider, info)
        self.model = model
        self.settings = settings
        self.family = family(model)
        self.vertex = use_vertex(settings)
        if self.family == "imagen" and not self.vertex:
            # generate_images raises ValueError in Gemini Developer API mode:
            # fail here, before a client exists or any request is made.
            raise CapabilityError(
                f"{provider}: Imagen models need Vertex AI; the Gemini Developer API does not "
                "serve them. Set GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and "
                "GOOGLE_CLOUD_LOCATION (or mmsdk_gemini.configure(vertexai=True, project=..., "
                "location=...)), or use Gemini native image output: "
                "provider='gemini:gemini-3.1-flash-image'.", provider=provider)
        self._client = make_client(settings, provider)
        self._files = _media.FileCache()
        self._upload_base = custom_base_url(settings)

    # -- shared pieces ------------------------------------------------------------------
    def _lifecycle(self) -> list[str]:
        # At every call, before any request: the model object outlives days, so a
        # name that reached its shutdown since it was resolved fails here.
        return lifecycle.on_call(self.model)

    def _errors(self) -> Any:
        return gemini_errors(self.provider)

    def _plan(self, request: UnderstandRequest) -> list[_media.Media]:
        text = request.prompt + (request.system or "")
        return _media.plan(request.images, request.video, text,
                           self.settings.inline_request_bytes, can_upload=not self.vertex,
                           provider=self.provider)

    def _upload_args(self, timeout: float | None) -> dict[str, Any]:
        return {"cache": self._files, "config": _build.upload_config(timeout, self._upload_base),
                "poll": self.settings.file_poll_interval, "timeout": timeout,
                "fallback": self.settings.file_wait_timeout, "provider": self.provider}

    def _contents(self, media: list[_media.Media], prompt: str) -> list[Any]:
        return [*_media.parts(media), prompt]

    def _image_parts(self, request: GenerateRequest) -> list[Any]:
        if request.image is None:
            return []
        media = _media.plan([request.image], None, request.prompt, self.settings.inline_request_bytes,
                            can_upload=False, provider=self.provider)
        return _media.parts(media)

    # -- understand ---------------------------------------------------------------------
    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self._lifecycle()
        config = _build.understand_config(request, self.provider)
        with self._errors():
            media = self._plan(request)
            _media.upload(self._client, media, **self._upload_args(request.timeout))
            response = self._client.models.generate_content(
                model=self.model, contents=self._contents(media, request.prompt), config=config)
            return _noted(_parse.understand_result(response, provider=self.provider,
                                                   model=self.model, images=len(request.images)),
                          notes)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self._lifecycle()
        config = _build.understand_config(request, self.provider)
        with self._errors():
            media = self._plan(request)
            await _media.aupload(self._client.aio, media, **self._upload_args(request.timeout))
            response = await self._client.aio.models.generate_content(
                model=self.model, contents=self._contents(media, request.prompt), config=config)
            return _noted(_parse.understand_result(response, provider=self.provider,
                                                   model=self.model, images=len(request.images)),
                          notes)

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        notes = self._lifecycle()
        config = _build.understand_config(request, self.provider)
        state = _parse.StreamState(provider=self.provider, model=self.model,
                                   images=len(request.images))
        with self._errors():
            media = self._plan(request)
            _media.upload(self._client, media, **self._upload_args(request.timeout))
            stream = self._client.models.generate_content_stream(
                model=self.model, contents=self._contents(media, request.prompt), config=config)
            try:
                for chunk in stream:
                    text = state.feed(chunk)
                    if text:
                        yield text
            finally:
                _close(stream)  # release the connection when the caller stops early
        yield _noted(state.result(), notes)

    async def aunderstand_stream(self, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
        notes = self._lifecycle()
        config = _build.understand_config(request, self.provider)
        state = _parse.StreamState(provider=self.provider, model=self.model,
                                   images=len(request.images))
        with self._errors():
            media = self._plan(request)
            await _media.aupload(self._client.aio, media, **self._upload_args(request.timeout))
            stream = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=self._contents(media, request.prompt), config=config)
            try:
                async for chunk in stream:
                    text = state.feed(chunk)
                    if text:
                        yield text
            finally:
                await _aclose(stream)
        yield _noted(state.result(), notes)

    # -- classify -----------------------------------------------------------------------
    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self._lifecycle()
        config = _build.classify_config(request, self.provider)
        prompt = _build.classify_prompt(request)
        results = []
        with self._errors():
            for image in request.images:  # one request per image keeps answers apart
                media = _media.plan([image], None, prompt, self.settings.inline_request_bytes,
                                    can_upload=False, provider=self.provider)
                response = self._client.models.generate_content(
                    model=self.model, contents=self._contents(media, prompt), config=config)
                results.append(_noted(self._classified(response, request), notes))
        return results

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self._lifecycle()
        config = _build.classify_config(request, self.provider)
        prompt = _build.classify_prompt(request)
        slots = asyncio.Semaphore(_CLASSIFY_CONCURRENCY)

        async def one(image: Any) -> ClassifyResult:
            media = _media.plan([image], None, prompt, self.settings.inline_request_bytes,
                                can_upload=False, provider=self.provider)
            async with slots:
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=self._contents(media, prompt), config=config)
            return _noted(self._classified(response, request), notes)

        with self._errors():
            return list(await asyncio.gather(*(one(image) for image in request.images)))

    def _classified(self, response: types.GenerateContentResponse,
                    request: ClassifyRequest) -> ClassifyResult:
        return _parse.classify_result(response, provider=self.provider, model=self.model,
                                      labels=request.labels, multi_label=request.multi_label)

    # -- generate -----------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> GenerateResult:
        notes = self._lifecycle()
        if self.family == "imagen":
            return _noted(self._imagen(request), notes)
        config = _build.generate_config(request, self.provider)
        with self._errors():
            response = self._client.models.generate_content(
                model=self.model, contents=[*self._image_parts(request), request.prompt],
                config=config)
            return _noted(_parse.generate_result(response, provider=self.provider,
                                                 model=self.model, seed=request.seed), notes)

    async def agenerate(self, request: GenerateRequest) -> GenerateResult:
        notes = self._lifecycle()
        if self.family == "imagen":
            return _noted(await self._aimagen(request), notes)
        config = _build.generate_config(request, self.provider)
        with self._errors():
            response = await self._client.aio.models.generate_content(
                model=self.model, contents=[*self._image_parts(request), request.prompt],
                config=config)
            return _noted(_parse.generate_result(response, provider=self.provider,
                                                 model=self.model, seed=request.seed), notes)

    def _imagen(self, request: GenerateRequest) -> GenerateResult:
        config = _build.imagen_config(request, self.provider)
        with self._errors(), warnings.catch_warnings():
            # generate_images warns on every call that Imagen is deprecated.
            warnings.simplefilter("ignore")
            response = self._client.models.generate_images(
                model=self.model, prompt=request.prompt, config=config)
            return _parse.imagen_result(response, provider=self.provider, model=self.model)

    async def _aimagen(self, request: GenerateRequest) -> GenerateResult:
        config = _build.imagen_config(request, self.provider)
        with self._errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = await self._client.aio.models.generate_images(
                model=self.model, prompt=request.prompt, config=config)
            return _parse.imagen_result(response, provider=self.provider, model=self.model)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the sync and async HTTP clients.

        Async connection pools belong to the event loop that opened them; one
        whose loop has already ended can only be dropped (the SDK leaves it to
        the garbage collector). Await :meth:`aclose` inside the loop to close
        them cleanly.
        """
        client = self._client
        client.close()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(client.aio.aclose())
        else:
            self._closing = loop.create_task(client.aio.aclose())

    async def aclose(self) -> None:
        """Close the clients from inside the running event loop (see :meth:`close`)."""
        await self._client.aio.aclose()
        self._client.close()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
