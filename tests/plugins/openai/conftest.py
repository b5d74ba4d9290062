"""Fixtures for the openai plugin: the official SDK driven against loopback servers."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Received, Reply
from mmsdk_openai import _config
from PIL import Image

import mmsdk
from mmsdk._registry import PluginWarning
from mmsdk.testing import pinned_today

KEY = "sk-proj-PLANTEDsecret0123456789abcdef"
# A non-reasoning model (temperature, logprobs) for the wire tests; it shuts down
# 2027-01-14, 44 days after the pinned date: its calls carry a deprecation note.
MODEL = "gpt-4.1"
PROVIDER = f"openai:{MODEL}"
IMAGE_MODEL = "gpt-image-2"


@pytest.fixture(autouse=True)
def _pinned_today() -> Iterator[dt.date]:
    """Today is the day the plugin's LIFECYCLE table was last checked (overrides the root's)."""
    with pinned_today(_config.LIFECYCLE_CHECKED) as day:
        yield day


@pytest.fixture(autouse=True)
def _plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees another's settings, default-model overrides or cached clients."""
    # Another plugin failing to import is reported by the registry (a PluginWarning);
    # it must not fail these tests. A failure of this plugin still does.
    warnings.filterwarnings("ignore", message=r"mmsdk plugin '(?!openai')", category=PluginWarning)
    for name in (*_config.MODEL_ENV.values(), "MMSDK_OPENAI_COMPATIBLE", "OPENAI_ORG_ID",
                 "OPENAI_PROJECT_ID", "VLLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    _config.SETTINGS.reset()
    mmsdk.unload("openai")
    yield
    mmsdk.unload("openai")
    _config.SETTINGS.reset()


@pytest.fixture
def loopback(loopback: LoopbackServer) -> LoopbackServer:
    """The shared loopback server, with Nagle off."""
    return loopback


@pytest.fixture
def api(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """The loopback server, with the SDK's own variables pointing at it and a planted key."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.url + "/v1")
    return loopback


@pytest.fixture
def second() -> Iterator[LoopbackServer]:
    """Another loopback server (OpenAI-compatible endpoints with two base URLs)."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def endpoint_names() -> Iterator[list[str]]:
    """Endpoints a test registers; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        mmsdk_openai.remove_endpoint(name)


class Wire:
    """Builders for OpenAI response bodies and SSE streams, and small test images."""

    KEY = KEY
    MODEL = MODEL
    PROVIDER = PROVIDER
    IMAGE_MODEL = IMAGE_MODEL

    @staticmethod
    def chat(text: str | None = "A red square.", *, refusal: str | None = None,
             finish_reason: str = "stop", model: str = MODEL, logprobs: Any = None,
             prompt_tokens: int = 42, completion_tokens: int = 7) -> dict[str, Any]:
        """A chat.completion body."""
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": logprobs,
                             "message": {"role": "assistant", "content": text,
                                         "refusal": refusal}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    @staticmethod
    def chunk(content: str | None = None, *, finish_reason: str | None = None,
              refusal: str | None = None, usage: tuple[int, int] | None = None,
              model: str = MODEL) -> dict[str, Any]:
        """One chat.completion.chunk (``usage`` alone gives the final usage-only chunk)."""
        choices = [] if usage else [{"index": 0, "finish_reason": finish_reason, "delta": {
            "role": "assistant", "content": content, "refusal": refusal}}]
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": model, "choices": choices,
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                          "total_tokens": sum(usage)} if usage else None}

    @staticmethod
    def stream(*pieces: str, usage: tuple[int, int] = (42, 9),
               finish_reason: str = "stop") -> list[Any]:
        """A complete SSE stream: text chunks, the finish chunk, usage, ``[DONE]``."""
        return [*(Wire.chunk(piece) for piece in pieces), Wire.chunk(finish_reason=finish_reason),
                Wire.chunk(usage=usage), "data: [DONE]\n\n"]

    @staticmethod
    def logprobs(tokens: list[tuple[str, float, dict[str, float]]]) -> dict[str, Any]:
        """``choices[0].logprobs``: (token, logprob, {alternative: logprob})."""
        return {"content": [{"token": token, "logprob": logprob, "bytes": None,
                             "top_logprobs": [{"token": alt, "logprob": lp, "bytes": None}
                                              for alt, lp in alternatives.items()]}
                            for token, logprob, alternatives in tokens], "refusal": None}

    @staticmethod
    def png(size: tuple[int, int] = (32, 24), color: Any = (200, 30, 30),
            mode: str = "RGB") -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size, color).save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def images(*sizes: tuple[int, int], revised: str | None = None) -> dict[str, Any]:
        """An ImagesResponse body with base64 PNGs of *sizes*."""
        return {"created": 1, "data": [
            {"b64_json": base64.b64encode(Wire.png(size)).decode(), "revised_prompt": revised}
            for size in sizes],
            "usage": {"input_tokens": 11, "output_tokens": 4160, "total_tokens": 4171,
                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 11}}}

    @staticmethod
    def error(status: int, message: str, *, code: str | None = None,
              kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> Reply:
        """An OpenAI error reply."""
        return Reply(status=status, headers=headers or {}, body={"error": {
            "message": message, "type": kind, "param": None, "code": code}})

    @staticmethod
    def header(received: Received, name: str) -> str | None:
        return {k.lower(): v for k, v in received.headers.items()}.get(name.lower())

    @staticmethod
    def body(received: Received) -> Any:
        return json.loads(received.body)

    @staticmethod
    def multipart(received: Received) -> dict[str, tuple[str | None, str, bytes]]:
        """A multipart/form-data body: field name -> (filename, content type, bytes)."""
        content_type = Wire.header(received, "content-type") or ""
        assert content_type.startswith("multipart/form-data")
        message = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + received.body,
            policy=email.policy.HTTP)
        fields = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_content_type(),
                            part.get_payload(decode=True))
        return fields

    @staticmethod
    def data_url_image(url: str) -> Image.Image:
        header, _, payload = url.partition(",")
        assert header.startswith("data:image/") and header.endswith(";base64")
        return Image.open(io.BytesIO(base64.b64decode(payload)))


@pytest.fixture
def wire() -> type[Wire]:
    return Wire
