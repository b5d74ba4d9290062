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

from google import genai
from google.genai import types

from mmsdk.plugin import (
    CapabilityError,
    ClassifyRequest,
    ClassifyResult,
    Connection,
    ErrorBoundary,
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    StreamEvent,
    UnderstandRequest,
    UnderstandResult,
)

from . import _build, _media, _parse
from ._client import client_cache, gemini_connection
from ._describe import GeminiImages, GeminiText, family, lifecycle
from ._errors import gemini_errors
from ._settings import SETTINGS, GeminiSettings, use_vertex

__all__ = ["GeminiModel"]

# Images of one async classify call in flight at once (one request each).
_CLASSIFY_CONCURRENCY = 4

_R = TypeVar("_R", GenerateResult, UnderstandResult, ClassifyResult)


def _noted(result: _R, notes: list[str]) -> _R:
    result.warnings.extend(notes)
    return result


class GeminiModel(GeminiText, GeminiImages):
    """One Gemini model, e.g. ``gemini:gemini-3.8-flash``.

    Settings, key and endpoint are read at every call (:mod:`._settings`).

    Args:
        provider: the full provider string.
        info: what :func:`mmsdk_gemini.describe` says about the model.
        model: the model name sent to the API.
        api_key: a key used instead of the settings' and the environment's
            (``mmsdk.Router(credentials={"gemini": ...})``).
    """

    def __init__(self, provider: str, info: ModelInfo, model: str, *,
                 api_key: str | None = None) -> None:
        super().__init__(provider, info)
        self.model = model
        self.family = family(model)
        self._api_key = api_key
        if self.family == "imagen" and not use_vertex():
            # generate_images raises ValueError in Gemini Developer API mode:
            # fail here, before a client exists or any request is made.
            raise CapabilityError(
                f"{provider}: Imagen models need Vertex AI; the Gemini Developer API does not "
                "serve them. Set GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and "
                "GOOGLE_CLOUD_LOCATION (or mmsdk_gemini.configure(vertexai=True, project=..., "
                "location=...)), or use Gemini native image output: "
                "provider='gemini:gemini-3.1-flash-image'.", provider=provider)
        self._clients = client_cache(provider)
        self._files: dict[str, _media.FileCache] = {}  # uploads belong to a key's project

    @property
    def settings(self) -> GeminiSettings:
        """The settings in force now."""
        return SETTINGS.resolved()

    def _client(self) -> tuple[genai.Client, Connection]:
        conn = gemini_connection(self._api_key)
        return self._clients.get(conn), conn

    async def _aclient(self) -> tuple[Any, Connection]:
        conn = gemini_connection(self._api_key)
        return (await self._clients.aget(conn)).aio, conn

    # -- shared pieces ------------------------------------------------------------------
    def _lifecycle(self) -> list[str]:
        # At every call, before any request: the model object outlives days, so a
        # name that reached its shutdown since it was resolved fails here.
        return lifecycle.on_call(self.model)

    def _errors(self) -> ErrorBoundary:
        return gemini_errors(self.provider)

    def _plan(self, request: UnderstandRequest) -> list[_media.Media]:
        text = request.prompt + (request.system or "")
        settings = self.settings
        return _media.plan(request.images, request.video, text,
                           settings.inline_request_bytes, can_upload=not settings.vertexai,
                           provider=self.provider)

    def _upload_args(self, timeout: float | None, conn: Connection) -> dict[str, Any]:
        settings = self.settings
        files = self._files.setdefault(conn.fingerprint, _media.FileCache())
        return {"cache": files, "config": _build.upload_config(timeout, conn.base_url),
                "poll": settings.file_poll_interval, "timeout": timeout,
                "fallback": settings.file_wait_timeout, "provider": self.provider}

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
            client, conn = self._client()
            _media.upload(client, media, **self._upload_args(request.timeout, conn))
            response = client.models.generate_content(
                model=self.model, contents=self._contents(media, request.prompt), config=config)
            return _noted(_parse.understand_result(response, provider=self.provider,
                                                   model=self.model, images=len(request.images)),
                          notes)

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        notes = self._lifecycle()
        config = _build.understand_config(request, self.provider)
        with self._errors():
            media = self._plan(request)
            aio, conn = await self._aclient()
            await _media.aupload(aio, media, **self._upload_args(request.timeout, conn))
            response = await aio.models.generate_content(
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
            client, conn = self._client()
            _media.upload(client, media, **self._upload_args(request.timeout, conn))
            stream = client.models.generate_content_stream(
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
            aio, conn = await self._aclient()
            await _media.aupload(aio, media, **self._upload_args(request.timeout, conn))
            stream = await aio.models.generate_content_stream(
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
        inline = self.settings.inline_request_bytes
        with self._errors():
            client = self._client()[0]
            for image in request.images:  # one request per image keeps answers apart
                media = _media.plan([image], None, prompt, inline, can_upload=False,
                                    provider=self.provider)
                response = client.models.generate_content(
                    model=self.model, contents=self._contents(media, prompt), config=config)
                results.append(_noted(self._classified(response, request), notes))
        return results

    async def aclassify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        notes = self._lifecycle()
        config = _build.classify_config(request, self.provider)
        prompt = _build.classify_prompt(request)
        slots = asyncio.Semaphore(_CLASSIFY_CONCURRENCY)
        inline = self.settings.inline_request_bytes

        async def one(image: Any) -> ClassifyResult:
            media = _media.plan([image], None, prompt, inline, can_upload=False,
                                provider=self.provider)
            aio = (await self._aclient())[0]
            async with slots:
                response = await aio.models.generate_content(
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
            response = self._client()[0].models.generate_content(
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
            aio = (await self._aclient())[0]
            response = await aio.models.generate_content(
                model=self.model, contents=[*self._image_parts(request), request.prompt],
                config=config)
            return _noted(_parse.generate_result(response, provider=self.provider,
                                                 model=self.model, seed=request.seed), notes)

    def _imagen(self, request: GenerateRequest) -> GenerateResult:
        config = _build.imagen_config(request, self.provider)
        with self._errors(), warnings.catch_warnings():
            # generate_images warns on every call that Imagen is deprecated.
            warnings.simplefilter("ignore")
            response = self._client()[0].models.generate_images(
                model=self.model, prompt=request.prompt, config=config)
            return _parse.imagen_result(response, provider=self.provider, model=self.model)

    async def _aimagen(self, request: GenerateRequest) -> GenerateResult:
        config = _build.imagen_config(request, self.provider)
        with self._errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aio = (await self._aclient())[0]
            response = await aio.models.generate_images(
                model=self.model, prompt=request.prompt, config=config)
            return _parse.imagen_result(response, provider=self.provider, model=self.model)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the sync client now and each async client on its own event loop."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the clients, awaiting the running loop's own (see :meth:`close`)."""
        await self._clients.aclose()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
