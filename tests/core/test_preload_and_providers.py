"""Warm-up (mmsdk.preload, apreload, Router.preload) and introspection (mmsdk.providers)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import mmsdk
from mmsdk._cli import main
from mmsdk._registry import PluginWarning
from mmsdk.plugin import (
    Availability,
    Capability,
    Classify,
    ClassifyRequest,
    ClassifyResult,
    Model,
    ModelInfo,
    ProviderSpec,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    hookimpl,
    register_plugin,
    unregister_plugin,
)
from mmsdk.testing import TestProvider

U, C = Capability.UNDERSTAND, Capability.CLASSIFY


class _WarmModel(Model):
    def __init__(self, plugin: _WarmPlugin, provider: str, info: ModelInfo) -> None:
        super().__init__(provider, info)
        self.plugin = plugin

    def preload(self) -> None:  # a local plugin loads its weights here
        self.plugin.preloaded.append(self.provider)

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        return UnderstandResult(text=f"{self.provider} answers")

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        return [ClassifyResult(scores=dict.fromkeys(request.labels, 0.5)) for _ in request.images]


class _WarmVLM(_WarmModel, Understand):
    pass


class _WarmClip(_WarmModel, Classify):
    pass


class _WarmBoth(_WarmModel, Understand, Classify):
    pass


class _WarmPlugin:
    """Provider ``warm``: ``warm:vlm`` understands, ``warm:clip`` classifies; counts builds."""

    def __init__(self, *, available: bool = True, delay: float = 0.0) -> None:
        self.available = available
        self.delay = delay
        self.built: list[tuple[str, threading.Thread]] = []
        self.preloaded: list[str] = []

    def model_class(self, model: str) -> type[_WarmModel]:
        return {"vlm": _WarmVLM, "clip": _WarmClip}.get(model, _WarmBoth)

    def factory(self, model: str, provider: str, info: ModelInfo) -> _WarmModel:
        time.sleep(self.delay)  # importing torch, building the pipeline...
        self.built.append((model, threading.current_thread()))
        return self.model_class(model)(self, provider, info)

    def check(self, model: str) -> Availability:
        if self.available:
            return Availability.yes()
        return Availability.no("the weights are not downloaded", "hf download acme/warm")

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ProviderSpec(name="warm", model_class=self.model_class, factory=self.factory,
                              describe=lambda model: ModelInfo(local=True),
                              default_models={U: "vlm", C: "clip"}, check=self.check,
                              description="a provider that counts its builds",
                              offer_as_default=False))

    @hookimpl
    def register_aliases(self, register: Any) -> None:
        register("toasty", "warm:vlm")

    def models_built(self) -> list[str]:
        return [model for model, _ in self.built]


@pytest.fixture
def warm() -> Iterator[_WarmPlugin]:
    plugin = _WarmPlugin()
    register_plugin(plugin, "warm-plugin")
    yield plugin
    unregister_plugin("warm-plugin")


# -- preload --------------------------------------------------------------------------
def test_preload_builds_and_loads_so_the_first_call_does_not(warm: _WarmPlugin) -> None:
    assert mmsdk.preload("warm:vlm") == ["warm:vlm"]
    assert warm.models_built() == ["vlm"] and warm.preloaded == ["warm:vlm"]
    assert mmsdk.understand("x", provider="warm:vlm").text == "warm:vlm answers"
    assert warm.models_built() == ["vlm"] and warm.preloaded == ["warm:vlm"]


def test_a_bare_plugin_name_means_each_of_its_default_models(warm: _WarmPlugin) -> None:
    assert mmsdk.preload("warm", capability="classify") == ["warm:clip"]
    assert warm.models_built() == ["clip"]
    assert sorted(mmsdk.preload("warm")) == ["warm:clip", "warm:vlm"]
    assert sorted(warm.models_built()) == ["clip", "vlm"]  # clip was built once
    assert sorted(warm.preloaded) == ["warm:clip", "warm:clip", "warm:vlm"]


def test_preload_of_an_unusable_provider_raises_with_its_fix(warm: _WarmPlugin) -> None:
    warm.available = False
    with pytest.raises(mmsdk.ProviderUnavailableError) as info:
        mmsdk.preload("warm:vlm")
    assert info.value.fix == "hf download acme/warm"
    assert "the weights are not downloaded" in str(info.value)
    assert warm.built == []


def test_a_named_list_warms_what_it_can_then_says_what_it_cannot(warm: _WarmPlugin) -> None:
    with TestProvider("down", available=False), \
            pytest.raises(mmsdk.ProviderUnavailableError) as info:
        mmsdk.Router(["down:m", "warm:vlm"]).preload()
    assert info.value.provider == "down:m"
    assert info.value.fix == "create the TestProvider with available=True"
    assert warm.preloaded == ["warm:vlm"]


def test_the_default_route_warms_what_can_run_here(warm: _WarmPlugin,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSDK_DEFAULT_PROVIDER", "down:m,warm:vlm")
    with TestProvider("down", available=False):
        assert mmsdk.preload(None, "understand") == ["warm:vlm"]  # as a call would, skips down
        warm.available = False
        mmsdk.unload("warm")
        with pytest.raises(mmsdk.ProviderUnavailableError, match="down:m is unavailable"):
            mmsdk.Router().preload("understand")  # nothing here can answer


def test_router_preload_follows_its_route_and_policy(warm: _WarmPlugin) -> None:
    with TestProvider("cloud", local=False):
        router = mmsdk.Router(["cloud:m", "warm:vlm"], mmsdk.Policy(local_only=True))
        assert router.preload("understand") == ["warm:vlm"]  # cloud:m would never be called
        assert not mmsdk._registry.get_registry().is_loaded("cloud:m")
        assert mmsdk.Router(["cloud:m", "toasty"]).preload() == ["cloud:m", "warm:vlm"]


def test_preload_refuses_unknown_names_and_capabilities(warm: _WarmPlugin) -> None:
    with pytest.raises(mmsdk.UnknownProviderError, match="Did you mean"):
        mmsdk.preload("wram:vlm")
    with pytest.raises(mmsdk.InvalidInputError, match="capability must be one of"):
        mmsdk.preload("warm", capability="draw")
    with pytest.raises(mmsdk.CapabilityError, match="warm:vlm cannot classify"):
        mmsdk.preload("warm:vlm", capability="classify")
    assert warm.built == []


async def test_apreload_runs_off_the_event_loop(warm: _WarmPlugin) -> None:
    warm.delay = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        assert await mmsdk.apreload("warm:vlm") == ["warm:vlm"]
        assert await mmsdk.Router("warm:clip").apreload() == ["warm:clip"]
    finally:
        ticking.cancel()
    assert {thread for _, thread in warm.built}.isdisjoint({threading.current_thread()})
    assert ticks >= 10  # the loop kept running while each model was built (0.3 s each)


# -- providers ------------------------------------------------------------------------
def test_providers_returns_each_status_with_its_fix_models_and_plugin(warm: _WarmPlugin) -> None:
    warm.available = False
    statuses = {s.name: s for s in mmsdk.providers()}
    status = statuses["warm"]
    assert isinstance(status, mmsdk.ProviderStatus)
    assert (status.kind, status.plugin, status.local, status.usable) == \
        ("provider", "warm-plugin", True, False)
    assert status.capabilities == [C, U]
    assert (status.reason, status.fix) == ("the weights are not downloaded",
                                           "hf download acme/warm")
    assert status.models == ["clip", "vlm"]
    assert status.defaults == {C: "clip", U: "vlm"}
    assert status.description == "a provider that counts its builds"
    alias = statuses["toasty"]
    assert (alias.kind, alias.target, alias.models, alias.capabilities, alias.plugin) == \
        ("alias", "warm:vlm", ["vlm"], [U], "warm-plugin")
    assert warm.built == []  # introspection builds nothing


def test_providers_lists_a_broken_plugin(warm: _WarmPlugin) -> None:
    class Broken:
        @hookimpl
        def register_providers(self, register: Any) -> None:
            raise RuntimeError("boom")

    with pytest.warns(PluginWarning, match="boom"):
        register_plugin(Broken(), "broken-plugin")
    try:
        [status] = [s for s in mmsdk.providers() if s.name == "broken-plugin"]
    finally:
        unregister_plugin("broken-plugin")
    assert (status.kind, status.usable) == ("plugin", False)
    assert "register_providers failed: RuntimeError: boom" in status.reason and status.fix


def test_the_cli_prints_what_providers_returns(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import mmsdk._providers

    statuses = [
        mmsdk.ProviderStatus(name="acme", capabilities=[U], usable=False, reason="no key",
                             fix="export ACME_KEY=...", warnings=["acme:v1 is deprecated"]),
        mmsdk.ProviderStatus(name="acme:fast", kind="alias", target="acme:v2",
                             capabilities=[U, C], usable=True),
        mmsdk.ProviderStatus(name="gone", kind="plugin", usable=False, reason="import failed",
                             fix="reinstall"),
    ]
    monkeypatch.setattr(mmsdk._providers, "providers", lambda: statuses)
    assert main(["providers"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PROVIDER       CAPABILITIES                        STATUS",
        "acme           understand                          unavailable: no key",
        "                 fix: export ACME_KEY=...",
        "                 warning: acme:v1 is deprecated",
        "acme:fast      understand,classify                 ready",
        "                 = acme:v2",
        "gone (plugin)  -                                   unavailable: import failed",
        "                 fix: reinstall",
    ]
    assert main(["providers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["provider"] for row in rows] == ["acme", "acme:fast", "gone (plugin)"]
    assert rows[0] == {"provider": "acme"} | statuses[0].model_dump(mode="json")
