"""Video routes through Gemini (native video) and OpenAI (frames), with and without PyAV."""

from __future__ import annotations

import sys
from pathlib import Path

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk._registry import Registry

OPENAI = "openai:gpt-4.1"


@pytest.fixture
def with_openai(_plugin_state: Registry, monkeypatch: pytest.MonkeyPatch,
                api: LoopbackServer) -> LoopbackServer:
    """OpenAI registered too, keyed and pointed at the loopback server (usable: only a
    missing PyAV can keep it from a video call)."""
    _plugin_state.add_plugin(mmsdk_openai, "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000000000")
    monkeypatch.setenv("OPENAI_BASE_URL", api.url + "/v1")
    return api


@pytest.fixture
def no_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails


@pytest.mark.parametrize("route", [["gemini", OPENAI], [OPENAI, "gemini"]],
                         ids=["gemini-first", "openai-first"])
def test_without_pyav_gemini_still_gets_the_file(with_openai: LoopbackServer, wire, clip: Path,
                                                 no_pyav: None, route: list[str]) -> None:
    with_openai.queue(Reply(body=wire.answer("A fade to red.")))
    result = mmsdk.understand("What happens?", video=clip, frames=4, provider=route)
    assert result.text == "A fade to red." and result.provider == wire.PROVIDER
    [request] = with_openai.received  # one request, to Gemini: the video inline
    assert request.path == wire.GENERATE_PATH
    assert wire.data(wire.inline(request)[0]) == clip.read_bytes()
    assert wire.parts(request)[-1] == {"text": "What happens?"}  # no frame timestamps
    assert result.warnings == [f"{wire.PROVIDER} ignored frames=4: it reads the whole video "
                               "itself"]
    skipped = [a for a in result.attempts if a.provider == OPENAI]
    assert [a.outcome for a in skipped] == (["skipped"] if route[0] == OPENAI else [])
    if skipped:
        assert "needs PyAV" in (skipped[0].error or "")


def test_without_pyav_a_failing_gemini_leaves_no_provider(with_openai: LoopbackServer, wire,
                                                          clip: Path, no_pyav: None) -> None:
    with_openai.queue(Reply(status=400, body=wire.error(400, "INVALID_ARGUMENT", "bad video")))
    with pytest.raises(mmsdk.AllProvidersFailedError) as caught:
        mmsdk.understand("What happens?", video=clip, provider=["gemini", OPENAI])
    assert [(a.provider, a.outcome) for a in caught.value.attempts] == [
        (wire.PROVIDER, "error"), (OPENAI, "skipped")]
    assert "needs PyAV" in (caught.value.attempts[1].error or "")
    assert len(with_openai.received) == 1


def test_with_pyav_openai_gets_timed_frames(with_openai: LoopbackServer, wire,
                                            clip: Path) -> None:
    pytest.importorskip("av")
    with_openai.queue(Reply(body={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "Redder.", "refusal": None}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}))
    result = mmsdk.understand("What happens?", video=clip, fps=2, provider=OPENAI)
    assert result.text == "Redder."
    [request] = with_openai.received
    parts = request.json()["messages"][-1]["content"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts == ["The 2 images are frames of the video clip.mp4 (1.0 s long), in order: "
                     "Frame 1 at 0.0 s, Frame 2 at 0.5 s.\n\nWhat happens?"]
    assert sum(p["type"] == "image_url" for p in parts) == 2
