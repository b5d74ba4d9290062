"""Registration, model descriptions, settings and lifecycle of the gemini plugin."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import mmsdk_gemini
import pytest
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk import Capability


def test_registered_through_its_entry_point() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="mmsdk") if e.name == "gemini"]
    assert entry.value == "mmsdk_gemini" and entry.load() is mmsdk_gemini


def test_importing_the_plugin_imports_no_sdk() -> None:
    code = ("import sys, mmsdk, mmsdk_gemini; "
            "assert not [m for m in sys.modules if m.startswith(('google', 'httpx2'))], "
            "sorted(m for m in sys.modules if m.startswith('google'))")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("model", "capabilities", "feature"), [
    pytest.param("gemini-2.5-flash", {Capability.UNDERSTAND, Capability.CLASSIFY}, "video",
                 id="text"),
    pytest.param("gemini-3.1-flash-image", {Capability.GENERATE}, "image", id="native-image"),
    pytest.param("imagen-4.0-generate-001", {Capability.GENERATE}, "n", id="imagen"),
])
def test_describe_by_model_family(model: str, capabilities: set[Capability],
                                  feature: str) -> None:
    info = mmsdk_gemini.describe(model)
    assert info.capabilities == capabilities and feature in info.supports
    assert info.limits.formats == ("png", "jpeg", "webp")
    assert info.limits.max_long_edge == 3072 and info.limits.max_images == 3000
    assert not info.local


def test_a_retired_model_fails_naming_its_successor(api: LoopbackServer) -> None:
    with pytest.raises(mmsdk.UnknownProviderError, match=r"gemini-3\.8-flash"):
        mmsdk.understand("Hi", provider="gemini:gemini-1.5-flash")
    assert api.received == []


def test_an_unsupported_parameter_is_refused_before_any_request(api: LoopbackServer,
                                                                 wire) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="negative_prompt"):
        mmsdk.generate("a fox", provider="gemini", negative_prompt="blur")
    with pytest.raises(mmsdk.InvalidInputError, match="classify only"):
        mmsdk.understand("Hi", provider=wire.PROVIDER, options={"logprobs": True})
    assert api.received == []


def test_explicit_settings_win_over_the_environment(api: LoopbackServer, wire,
                                                    monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens here
    settings = mmsdk_gemini.configure(api_key="gk-explicit-0123456789", base_url=api.url,
                                      model="gemini-2.5-flash")
    assert "gk-explicit" not in repr(settings)
    api.queue(Reply(body=wire.answer()))
    result = mmsdk.understand("Hi", provider="gemini")
    assert result.provider == "gemini:gemini-2.5-flash"
    assert api.received[0].headers["x-goog-api-key"] == "gk-explicit-0123456789"
    with pytest.raises(mmsdk.InvalidInputError, match="Unknown Gemini setting"):
        mmsdk_gemini.configure(api_token="x")


def test_vertex_mode_without_project_or_key_is_unavailable(monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "1")
    with pytest.raises(mmsdk.ProviderUnavailableError, match="GOOGLE_CLOUD_PROJECT"):
        mmsdk.generate("a cat", provider="gemini:imagen-4.0-generate-001")


def test_unload_closes_the_client(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer()), Reply(body=wire.answer()))
    router = mmsdk.Router(wire.PROVIDER)
    router.understand("Hi")
    model = router.registry.model(router.candidates(Capability.UNDERSTAND)[0])
    client = model._client  # type: ignore[attr-defined]
    calls: list[str] = []
    original = client.close
    client.close = lambda: (calls.append("close"), original())
    router.understand("Hi")  # the same model object and client serve the second call
    assert router.registry.model(router.candidates(Capability.UNDERSTAND)[0]) is model
    assert calls == []
    mmsdk.unload("gemini")
    assert calls == ["close"]
