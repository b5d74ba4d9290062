"""Fixtures for the anthropic plugin: the official SDK driven against the loopback server."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import mmsdk_anthropic
import pytest
from loopback import LoopbackServer, Received, Reply
from mmsdk_anthropic._spec import LIFECYCLE_CHECKED
from PIL import Image

import mmsdk
from mmsdk.testing import pinned_today

KEY = "sk-ant-api03-PLANTEDkey-0123456789abcdef"
MODEL = "claude-sonnet-5-5"
PROVIDER = f"anthropic:{MODEL}"


@pytest.fixture(autouse=True)
def _pinned_today() -> Iterator[dt.date]:
    """Today is the day the plugin's LIFECYCLE table was last checked (overrides the root's)."""
    with pinned_today(LIFECYCLE_CHECKED) as day:
        yield day


@pytest.fixture(autouse=True)
def _plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees another's settings, model override or cached SDK clients."""
    for name in ("MMSDK_ANTHROPIC_MODEL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    mmsdk_anthropic._settings.SETTINGS.reset()
    yield
    mmsdk.unload("anthropic")
    mmsdk_anthropic._settings.SETTINGS.reset()


@pytest.fixture
def claude(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """The loopback server, with the SDK's own variables pointing at it and a planted key."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)
    return loopback


class Wire:
    """Builders for Messages API bodies and SSE streams, and small test images."""

    KEY = KEY
    MODEL = MODEL
    PROVIDER = PROVIDER

    @staticmethod
    def message(text: str = "A red square.", *, stop_reason: str | None = "end_turn",
                model: str = MODEL, input_tokens: int = 42, output_tokens: int = 7) -> dict[str, Any]:
        """A Messages API response body."""
        return {"id": "msg_01", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}] if text else [],
                "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}

    @staticmethod
    def events(*chunks: str, stop_reason: str = "end_turn", input_tokens: int = 42,
               output_tokens: int = 9, stop: bool = True) -> list[tuple[str, dict[str, Any]]]:
        """A Messages API SSE stream, as loopback (event, data) pairs."""
        start = Wire.message("", stop_reason=None, output_tokens=1, input_tokens=input_tokens)
        out: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
        ]
        out += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": chunk}})
                for chunk in chunks]
        out += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                   "usage": {"output_tokens": output_tokens}})]
        if stop:
            out.append(("message_stop", {"type": "message_stop"}))
        return out

    @staticmethod
    def header(received: Received, name: str) -> str | None:
        """A request header, looked up case-insensitively."""
        return {k.lower(): v for k, v in received.headers.items()}.get(name.lower())

    @staticmethod
    def error_body(kind: str, text: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": text}}

    @staticmethod
    def ok(text: str = "A red square.", **kwargs: Any) -> Reply:
        return Reply(body=Wire.message(text, **kwargs))

    @staticmethod
    def png_bytes(size: tuple[int, int] = (32, 24), color: tuple[int, ...] = (200, 10, 10),
                  mode: str = "RGB") -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size, color).save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def jpeg_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", size, (10, 200, 10)).save(buffer, format="JPEG")
        return buffer.getvalue()


@pytest.fixture
def wire() -> type[Wire]:
    return Wire
