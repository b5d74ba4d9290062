"""Images and video as Gemini parts: inline bytes, or Files API uploads for big requests.

A request whose media (as base64 in the JSON body) would pass the inline
limit (20 MB on the Gemini API) sends its largest items through the Files
API instead: ``files.upload`` (the resumable upload protocol), then
``files.get`` until the file is ACTIVE, then a ``file_data`` part naming its
URI. Uploads are remembered per model object, so a retry does not upload the
same bytes again (files live 48 hours on the service).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.genai import types

from mmsdk.plugin import (
    CapabilityError,
    PreparedImage,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    VideoInput,
)

__all__ = ["FileCache", "Media", "plan", "parts", "upload", "aupload"]

# Reuse an upload for 40 hours; the service deletes files 48 hours after upload.
_REUSE_FOR = 40 * 3600.0


@dataclass
class Media:
    """One image or video to send, and how (inline bytes or an uploaded file's URI)."""

    mime_type: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    uri: str | None = None
    upload: bool = False
    key: str = ""
    video: Any = None  # the core's VideoInput: reads only a regular file, capped

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.video is not None
        data: bytes = self.video.read_bytes()
        return data

    def source(self) -> Any:
        """What ``files.upload`` takes: the path, or a seekable binary stream."""
        return self.path if self.path is not None else io.BytesIO(self.read())


@dataclass
class _Uploaded:
    name: str
    uri: str | None
    until: float


@dataclass
class FileCache:
    """Uploaded files by content key, so a retry reuses (or keeps waiting for) them."""

    entries: dict[str, _Uploaded] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> _Uploaded | None:
        with self.lock:
            entry = self.entries.get(key)
        return entry if entry is not None and entry.until > time.monotonic() else None

    def put(self, key: str, name: str, uri: str | None) -> None:
        with self.lock:
            self.entries[key] = _Uploaded(name, uri, time.monotonic() + _REUSE_FOR)

    def drop(self, key: str) -> None:
        with self.lock:
            self.entries.pop(key, None)


def _b64(size: int) -> int:
    return 4 * math.ceil(size / 3)


def plan(images: list[PreparedImage], video: VideoInput | None, text: str, limit: int,
         *, can_upload: bool, provider: str) -> list[Media]:
    """Media in send order, marking the largest for upload until the rest fit *limit*."""
    media = []
    for image in images:
        data = image.data if image.data is not None else _png(image)
        media.append(Media(image.mime_type, len(data), data=data,
                           key="sha256:" + hashlib.sha256(data).hexdigest()))
    if video is not None:
        stat = video.path.stat()
        media.append(Media(video.mime_type, video.size, path=video.path, video=video,
                           key=f"path:{video.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"))
    total = len(text.encode()) + sum(_b64(item.size) for item in media)
    for item in sorted(media, key=lambda m: m.size, reverse=True):
        if total <= limit:
            break
        if not can_upload:
            raise CapabilityError(
                f"{provider}: the media come to about {total // 1_000_000} MB, over the "
                f"{limit // 1_000_000} MB inline request limit, and Vertex AI mode has no Files "
                "API. Send a smaller video / fewer images, or use the Gemini Developer API.",
                provider=provider)
        item.upload = True
        total -= _b64(item.size)
    return media


def _png(image: PreparedImage) -> bytes:
    buffer = io.BytesIO()
    image.image.save(buffer, format="PNG")
    return buffer.getvalue()


def parts(media: list[Media]) -> list[types.Part]:
    """The request parts for *media*: inline bytes, or file URIs once uploaded."""
    out = []
    for item in media:
        if item.upload:
            assert item.uri is not None, "upload() must run before parts()"
            out.append(types.Part.from_uri(file_uri=item.uri, mime_type=item.mime_type))
        else:
            out.append(types.Part.from_bytes(data=item.read(), mime_type=item.mime_type))
    return out


@dataclass(frozen=True)
class _Wait:
    provider: str
    deadline: float


def _upload_failed(exc: Exception, provider: str) -> ProviderServerError:
    # files.upload raises KeyError (no upload URL in the reply) or ValueError
    # (upload not finalized) for protocol faults; both mean the service misbehaved.
    return ProviderServerError(f"{provider}: the file upload failed ({type(exc).__name__}: "
                               f"{str(exc)[:200]}).", provider=provider)


def _state(file: types.File) -> str:
    state = file.state
    return str(getattr(state, "value", state) or "STATE_UNSPECIFIED")


def _done(file: types.File, wait: _Wait, cache: FileCache, key: str) -> str | None:
    """The file's URI once ACTIVE, ``None`` while PROCESSING; raises on failure or timeout."""
    state = _state(file)
    if state == "ACTIVE":
        if not file.uri:
            raise ProviderServerError(f"{wait.provider}: the uploaded file has no URI.",
                                      provider=wait.provider)
        return file.uri
    if state == "FAILED":
        cache.drop(key)
        reason = file.error.message if file.error and file.error.message else "no reason given"
        raise ProviderError(f"{wait.provider}: the service could not process the uploaded file "
                            f"({reason}).", provider=wait.provider)
    if time.monotonic() >= wait.deadline:
        raise ProviderTimeoutError(f"{wait.provider}: the uploaded file was still {state} when the "
                                   "time ran out; raise Policy(timeout=...).",
                                   provider=wait.provider)
    return None


def _file_name(file: types.File, provider: str) -> str:
    if not file.name:
        raise ProviderServerError(f"{provider}: the upload returned no file name.",
                                  provider=provider)
    return file.name


def upload(client: Any, media: list[Media], cache: FileCache, config: types.UploadFileConfig,
           *, poll: float, timeout: float | None, fallback: float, provider: str) -> None:
    """Upload every item marked for upload and wait until each is ACTIVE (sync)."""
    for item in media:
        if not item.upload or item.uri:
            continue
        wait = _Wait(provider, time.monotonic() + (timeout or fallback))
        known = cache.get(item.key)
        if known is not None and known.uri:
            item.uri = known.uri
            continue
        if known is not None:  # uploaded by an earlier attempt that ran out of time
            file = client.files.get(name=known.name, config=_get_config(config))
        else:
            try:
                file = client.files.upload(file=item.source(), config=config.model_copy(
                    update={"mime_type": item.mime_type}))
            except (KeyError, ValueError) as exc:
                raise _upload_failed(exc, provider) from None
        name = _file_name(file, provider)
        cache.put(item.key, name, None)
        while (uri := _done(file, wait, cache, item.key)) is None:
            time.sleep(poll)
            file = client.files.get(name=name, config=_get_config(config))
        item.uri = uri
        cache.put(item.key, name, uri)


async def aupload(client: Any, media: list[Media], cache: FileCache,
                  config: types.UploadFileConfig, *, poll: float, timeout: float | None,
                  fallback: float, provider: str) -> None:
    """Async twin of :func:`upload` (``client`` is ``genai.Client.aio``)."""
    for item in media:
        if not item.upload or item.uri:
            continue
        wait = _Wait(provider, time.monotonic() + (timeout or fallback))
        known = cache.get(item.key)
        if known is not None and known.uri:
            item.uri = known.uri
            continue
        if known is not None:
            file = await client.files.get(name=known.name, config=_get_config(config))
        else:
            uploading: Callable[..., Awaitable[types.File]] = client.files.upload
            try:
                file = await uploading(file=item.source(), config=config.model_copy(
                    update={"mime_type": item.mime_type}))
            except (KeyError, ValueError) as exc:
                raise _upload_failed(exc, provider) from None
        name = _file_name(file, provider)
        cache.put(item.key, name, None)
        while (uri := _done(file, wait, cache, item.key)) is None:
            await asyncio.sleep(poll)
            file = await client.files.get(name=name, config=_get_config(config))
        item.uri = uri
        cache.put(item.key, name, uri)


def _get_config(config: types.UploadFileConfig) -> types.GetFileConfig:
    return types.GetFileConfig(http_options=config.http_options)
