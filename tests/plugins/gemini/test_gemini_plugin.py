"""Registration, model descriptions, settings and lifecycle of the gemini plugin."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import subprocess
import sys

import mmsdk_gemini
import pytest
from loopback import LoopbackServer, Reply
from mmsdk_gemini._describe import LIFECYCLE, LIFECYCLE_CHECKED, RETIRED, lifecycle
from mmsdk_gemini._settings import DEFAULT_IMAGE_MODEL, DEFAULT_MODEL

import mmsdk
import mmsdk.plugin
from mmsdk import Capability, _registry
from mmsdk.plugin import EndOfLife, ModelDeprecationWarning, capabilities_of
from mmsdk.testing import pinned_today


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
    assert capabilities_of(mmsdk_gemini.model_class(model)) == capabilities
    assert feature in info.supports
    assert info.limits.formats == ("png", "jpeg", "webp")
    assert info.limits.max_long_edge == 3072 and info.limits.max_images == 3000
    assert not info.local


def test_a_retired_model_fails_naming_its_successor(api: LoopbackServer) -> None:
    with pytest.raises(mmsdk.UnknownProviderError, match=r"gemini-3\.8-flash"):
        mmsdk.understand("Hi", provider="gemini:gemini-1.5-flash")
    assert api.received == []


@pytest.mark.parametrize("capability", [Capability.UNDERSTAND, Capability.CLASSIFY,
                                        Capability.GENERATE], ids=str)
def test_default_models_are_clear_of_end_of_life_when_the_table_was_checked(
        capability: Capability) -> None:
    # Pinned to LIFECYCLE_CHECKED: fails when a default must move (past, or within 30 days
    # of, its end-of-life), and is re-judged whenever the table is re-checked and bumped.
    assert mmsdk.plugin.today() == LIFECYCLE_CHECKED
    model = _registry.get_registry().resolve("gemini", capability).model
    assert model == (DEFAULT_IMAGE_MODEL if capability is Capability.GENERATE else DEFAULT_MODEL)
    entry = LIFECYCLE.get(model)
    assert entry is None or entry[0] > LIFECYCLE_CHECKED + dt.timedelta(days=30), (model, entry)
    assert model not in RETIRED


def test_a_dated_end_of_life_notes_warns_then_retires(api: LoopbackServer, wire,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The table is empty today (the SDK announces no dates): plant one to drive the path.
    monkeypatch.setitem(lifecycle.table, DEFAULT_MODEL,
                        EndOfLife(dt.date(2026, 12, 20), "gemini-9-flash"))
    api.queue(Reply(body=wire.answer()), Reply(body=wire.answer()))
    with pytest.warns(ModelDeprecationWarning, match="2026-12-20"):
        first = mmsdk.understand("Hi", provider="gemini")
    second = mmsdk.understand("Hi", provider="gemini")  # filterwarnings=error: warned once
    note = ("gemini:gemini-3.8-flash is deprecated and reaches end-of-life on 2026-12-20; "
            "move to 'gemini:gemini-9-flash'.")
    assert first.warnings == second.warnings == [note]
    with pinned_today(dt.date(2026, 12, 20)), pytest.raises(
            mmsdk.UnknownProviderError, match=r"'gemini:gemini-9-flash'"):
        mmsdk.understand("Hi", provider="gemini")
    assert len(api.received) == 2


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
    client = model._clients.current()  # type: ignore[attr-defined]
    calls: list[str] = []
    original = client.close
    client.close = lambda: (calls.append("close"), original())
    router.understand("Hi")  # the same model object and client serve the second call
    assert router.registry.model(router.candidates(Capability.UNDERSTAND)[0]) is model
    assert calls == []
    mmsdk.unload("gemini")
    assert calls == ["close"]
