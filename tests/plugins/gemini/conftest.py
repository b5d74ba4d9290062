"""Fixtures for the gemini plugin: the official google-genai SDK driven against a loopback server."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import mmsdk_gemini
import pytest
from loopback import LoopbackServer, Received, Reply
from mmsdk_gemini import _settings
from mmsdk_gemini._describe import LIFECYCLE_CHECKED
from PIL import Image
from samples import write_clip

from mmsdk import _registry
from mmsdk._registry import Registry
from mmsdk.testing import pinned_today

# Not key-shaped on purpose: mmsdk's redaction catches key shapes, so a leak of
# this value can only be hidden by the env-variable rule, which logs and reprs skip.
KEY = "gk-planted-7f3a9c51e2d4b806"
MODEL = "gemini-3.8-flash"
IMAGE_MODEL = "gemini-3.1-flash-image"
GENERATE_PATH = f"/v1/models/{MODEL}:generateContent"
STREAM_PATH = f"/v1/models/{MODEL}:streamGenerateContent?alt=sse"

_ENV = ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_VERTEX_BASE_URL", "GOOGLE_GENAI_API_VERSION", "MMSDK_GEMINI_MODEL",
        "MMSDK_GEMINI_IMAGE_MODEL")


@pytest.fixture(autouse=True)
def _pinned_today() -> Iterator[dt.date]:
    """Today is the day the plugin's LIFECYCLE table was last checked (overrides the root's)."""
    with pinned_today(LIFECYCLE_CHECKED) as day:
        yield day


@pytest.fixture(autouse=True)
def _plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """No test sees another's settings, environment or cached clients.

    The process registry is swapped for one holding only this plugin (as its
    entry point would register it), so other plugins being installed or broken
    in the same environment cannot disturb these tests.
    """
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    _settings.SETTINGS.reset(_settings.GeminiSettings(file_poll_interval=0.01))
    registry = Registry()
    registry.add_plugin(mmsdk_gemini, "gemini")
    monkeypatch.setattr(_registry, "_registry", registry)
    yield registry
    registry.unload()
    _settings.SETTINGS.reset()


@pytest.fixture(autouse=True)
async def _close_in_loop(_plugin_state: Registry) -> AsyncIterator[None]:
    """Close async connection pools before the test's event loop ends (else they leak)."""
    yield
    for model in list(_plugin_state._models.values()):
        await model.aclose()  # type: ignore[attr-defined]


@pytest.fixture
def api(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """The loopback server, with the SDK's own variables pointing at it and a planted key."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback.url)
    return loopback


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real mp4 (32x32, 8 frames), written with PyAV."""
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", frames=8, rate=8)


class Wire:
    """Builders for Gemini REST bodies and SSE streams, and readers for what was sent."""

    KEY = KEY
    MODEL = MODEL
    IMAGE_MODEL = IMAGE_MODEL
    PROVIDER = f"gemini:{MODEL}"
    GENERATE_PATH = GENERATE_PATH
    STREAM_PATH = STREAM_PATH

    @staticmethod
    def answer(text: str = "A red square.", *, finish: str = "STOP", prompt_tokens: int = 11,
               output_tokens: int = 4, **candidate: Any) -> dict[str, Any]:
        """A generateContent response body with one text candidate."""
        return {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": finish, "index": 0, **candidate}],
            "usageMetadata": {"promptTokenCount": prompt_tokens,
                              "candidatesTokenCount": output_tokens,
                              "totalTokenCount": prompt_tokens + output_tokens},
            "modelVersion": MODEL,
        }

    @staticmethod
    def chunks(*texts: str, finish: str = "STOP") -> list[dict[str, Any]]:
        """SSE events for a streamed answer; the last carries finishReason and usage."""
        events: list[dict[str, Any]] = [
            {"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}]}
            for t in texts]
        events[-1]["candidates"][0]["finishReason"] = finish
        events[-1]["usageMetadata"] = {"promptTokenCount": 9, "candidatesTokenCount": len(texts),
                                       "totalTokenCount": 9 + len(texts)}
        return events

    @staticmethod
    def image_answer(*images: Image.Image, text: str | None = None) -> dict[str, Any]:
        """A native image output body: inlineData parts holding PNG bytes."""
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts += [{"inlineData": {"mimeType": "image/png",
                                  "data": base64.b64encode(Wire.png(image)).decode()}}
                  for image in images]
        return {"candidates": [{"content": {"parts": parts, "role": "model"},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 1290,
                                  "totalTokenCount": 1296}}

    @staticmethod
    def error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
        """A Google API error body."""
        return {"error": {"code": code, "message": message, "status": status,
                          "details": list(details)}}

    @staticmethod
    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def picture(width: int = 64, height: int = 48, color: str = "red") -> Image.Image:
        return Image.new("RGB", (width, height), color)

    # -- what reached the server -----------------------------------------------------
    @staticmethod
    def parts(request: Received) -> list[dict[str, Any]]:
        body = request.json()
        return [part for content in body["contents"] for part in content["parts"]]

    @staticmethod
    def inline(request: Received) -> list[dict[str, Any]]:
        """The inlineData of every inline part (the SDK writes ``mime_type`` in snake case)."""
        return [part["inlineData"] for part in Wire.parts(request) if "inlineData" in part]

    @staticmethod
    def field(value: dict[str, Any], camel: str) -> Any:
        """*value*'s field by its REST (camelCase) name; google-genai writes some in snake_case."""
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
        return value.get(camel, value.get(snake))

    @staticmethod
    def mime(inline: dict[str, Any]) -> str:
        return str(Wire.field(inline, "mimeType"))

    @staticmethod
    def data(inline: dict[str, Any]) -> bytes:
        """The bytes of an inline part (google-genai sends URL-safe base64)."""
        return base64.urlsafe_b64decode(inline["data"])

    @staticmethod
    def decoded(inline: dict[str, Any]) -> Image.Image:
        return Image.open(io.BytesIO(Wire.data(inline)))

    @staticmethod
    def config(request: Received) -> dict[str, Any]:
        return dict(request.json().get("generationConfig", {}))

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value)


@pytest.fixture
def wire() -> type[Wire]:
    return Wire


@pytest.fixture
def ok() -> Reply:
    return Reply(body=Wire.answer())
