"""Per-router credentials: ``Router(credentials={plugin: key})``.

A small registered plugin takes per-router keys (``ProviderSpec.with_key``):
its models record the key they were built with, its availability check wants
an environment variable unless a key is given, and a model built with the key
``BAD`` fails with a transient error that names its key.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mmsdk
from mmsdk._registry import Resolved, fingerprint, get_registry
from mmsdk.plugin import (
    Availability,
    Capability,
    ModelInfo,
    ProviderSpec,
    Understand,
    UnderstandResult,
    hookimpl,
)
from mmsdk.testing import TestProvider

KEY_A = "tenant-a-secret-key-0001"
KEY_B = "tenant-b-secret-key-0002"
ENV_KEY = "environment-secret-key-0003"
BAD = "tenant-bad-secret-key-0004"
BUGGY = "tenant-buggy-secret-key-0005"
KEYS = (KEY_A, KEY_B, ENV_KEY, BAD, BUGGY)
INFO = ModelInfo(local=False)
ENV_VAR = "KEYED_API_KEY"


class KeyedModel(Understand):
    def __init__(self, provider: str, info: ModelInfo, key: str | None) -> None:
        super().__init__(provider, info)
        self.key = key or os.environ.get(ENV_VAR)

    def understand(self, request: Any) -> UnderstandResult:
        if self.key == BUGGY:  # a plugin bug whose message holds the key
            raise RuntimeError(f"unexpected state for client {self.key}")
        if self.key == BAD:
            raise mmsdk.ProviderServerError(f"503 from the server for key {self.key}",
                                            provider=self.provider)
        names = {KEY_A: "A", KEY_B: "B", ENV_KEY: "env"}
        return UnderstandResult(text=names.get(self.key or "", "?"))


class KeyedPlugin:
    """A plugin whose spec takes a per-router key."""

    def __init__(self) -> None:
        self.with_key_calls: list[str] = []
        self.built: list[KeyedModel] = []

    def spec(self, key: str | None = None) -> ProviderSpec:
        def factory(model: str, provider: str, info: ModelInfo) -> KeyedModel:
            built = KeyedModel(provider, info, key)
            self.built.append(built)
            return built

        def check(model: str) -> Availability:
            if key is not None or os.environ.get(ENV_VAR):
                return Availability.yes()
            return Availability.no(f"{ENV_VAR} is not set", f"export {ENV_VAR}=...")

        return ProviderSpec(name="keyed", model_class=KeyedModel, factory=factory,
                            describe=lambda model: INFO,
                            default_models={Capability.UNDERSTAND: "m"}, check=check,
                            with_key=self.with_key)

    def with_key(self, key: str) -> ProviderSpec:
        self.with_key_calls.append(fingerprint(key))
        return self.spec(key)

    @hookimpl
    def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(self.spec())


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyedPlugin]:
    monkeypatch.setenv(ENV_VAR, ENV_KEY)
    plugin = KeyedPlugin()
    registry = get_registry()
    registry.add_plugin(plugin, "test-keyed")
    yield plugin
    registry.remove_plugin("test-keyed")


def _shown_nowhere(*texts: str) -> None:
    for text in texts:
        for key in KEYS:
            assert key not in text


# -- models per credential -----------------------------------------------------------
def test_routers_with_different_keys_get_their_own_model_objects(keyed: KeyedPlugin) -> None:
    tenant_a = mmsdk.Router("keyed:m", credentials={"keyed": KEY_A})
    tenant_b = mmsdk.Router("keyed:m", credentials={"keyed": KEY_B})
    assert tenant_a.understand("x").text == "A"
    assert tenant_b.understand("x").text == "B"
    assert mmsdk.understand("x", provider="keyed:m").text == "env"
    assert tenant_a.understand("again").text == "A"
    assert [m.key for m in keyed.built] == [KEY_A, KEY_B, ENV_KEY]  # each built once
    registry = get_registry()
    assert registry.is_loaded("keyed:m")
    assert registry.is_loaded("keyed:m", fingerprint(KEY_A))
    assert registry.is_loaded("keyed:m", fingerprint(KEY_B))
    assert not registry.is_loaded("keyed:m", fingerprint("another-key-0005"))
    assert keyed.with_key_calls == [fingerprint(KEY_A), fingerprint(KEY_B)]  # once per router


def test_unload_drops_every_credentials_models(keyed: KeyedPlugin) -> None:
    mmsdk.Router("keyed:m", credentials={"keyed": KEY_A}).understand("x")
    mmsdk.understand("x", provider="keyed:m")
    registry = get_registry()
    mmsdk.unload("keyed:m")
    assert not registry.is_loaded("keyed:m")
    assert not registry.is_loaded("keyed:m", fingerprint(KEY_A))
    mmsdk.Router("keyed:m", credentials={"keyed": KEY_A}).understand("x")
    mmsdk.unload("keyed")
    assert not registry.is_loaded("keyed:m", fingerprint(KEY_A))


def test_the_fingerprint_is_short_and_not_the_key() -> None:
    tag = fingerprint(KEY_A)
    assert len(tag) == 16 and KEY_A not in tag and tag != fingerprint(KEY_B)


def test_a_router_key_makes_the_provider_available_without_the_environment(
        keyed: KeyedPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(mmsdk.ProviderUnavailableError, match=ENV_VAR):
        mmsdk.understand("x", provider="keyed:m")
    router = mmsdk.Router("keyed:m", credentials={"keyed": KEY_A})
    assert router.understand("x").text == "A"
    [candidate] = router.candidates(Capability.UNDERSTAND)
    assert isinstance(candidate, Resolved) and candidate.credential == fingerprint(KEY_A)


def test_a_bare_plugin_name_and_the_async_path_use_the_router_key(keyed: KeyedPlugin) -> None:
    import asyncio

    router = mmsdk.Router("keyed", credentials={"keyed": KEY_B})
    assert asyncio.run(router.aunderstand("x")).text == "B"
    assert router.understand("x").text == "B"


def test_preload_warms_the_router_keys_model(keyed: KeyedPlugin,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR)
    router = mmsdk.Router("keyed:m", credentials={"keyed": KEY_A})
    assert router.preload() == ["keyed:m"]
    assert get_registry().is_loaded("keyed:m", fingerprint(KEY_A))
    assert not get_registry().is_loaded("keyed:m")


def test_credentials_for_other_plugins_leave_a_provider_alone(keyed: KeyedPlugin,
                                                              fake: TestProvider) -> None:
    router = mmsdk.Router(["fake:m"], credentials={"keyed": KEY_A})
    assert router.understand("x").provider == "fake:m"
    [candidate] = router.candidates(Capability.UNDERSTAND)
    assert isinstance(candidate, Resolved) and candidate.credential is None


# -- breaker facts per credential ----------------------------------------------------
def test_one_tenants_failures_open_only_its_own_breaker(keyed: KeyedPlugin) -> None:
    policy = mmsdk.Policy(breaker_threshold=1, retries=0)
    bad = mmsdk.Router("keyed:m", policy, credentials={"keyed": BAD})
    good = mmsdk.Router("keyed:m", policy, credentials={"keyed": KEY_A})
    shared = mmsdk.Router("keyed:m", policy)
    with pytest.raises(mmsdk.ProviderServerError):
        bad.understand("x")
    with pytest.raises(mmsdk.CircuitOpenError):  # its own breaker is open now
        bad.understand("x")
    assert good.understand("x").text == "A"  # another tenant: closed
    assert shared.understand("x").text == "env"  # the environment's key: closed
    assert bad.health()["keyed:m"].state == "open"
    assert good.health()["keyed:m"].state == "closed"
    assert good.health()["keyed:m"].consecutive_failures == 0
    assert shared.health()["keyed:m"].state == "closed"
    assert mmsdk.health()["keyed:m"].state == "closed"  # the environment's facts


def test_a_tenant_breaker_falls_back_in_a_list(keyed: KeyedPlugin, fake: TestProvider) -> None:
    policy = mmsdk.Policy(breaker_threshold=1, retries=0)
    bad = mmsdk.Router(["keyed:m", "fake:m"], policy, credentials={"keyed": BAD})
    assert bad.understand("x").provider == "fake:m"
    result = bad.understand("x")
    assert result.provider == "fake:m"
    assert result.attempts[0].outcome == "skipped"
    assert result.attempts[0].error_type == "CircuitOpenError"
    assert set(bad.health()) == {"keyed:m", "fake:m"}
    assert "keyed:m" not in mmsdk.health()  # no call was made with the environment's key


# -- keys never shown -----------------------------------------------------------------
def test_keys_never_appear_in_repr_errors_or_logs(keyed: KeyedPlugin,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    router = mmsdk.Router(["keyed:m"], mmsdk.Policy(breaker_threshold=1, retries=0),
                          credentials={"keyed": BAD, "openai": KEY_B})
    shown = repr(router)
    assert "keyed" in shown and "openai" in shown
    with pytest.raises(mmsdk.ProviderServerError) as info:
        router.understand("x")
    with pytest.raises(mmsdk.CircuitOpenError) as opened:
        router.understand("x")
    resolved = router.candidates(Capability.UNDERSTAND)
    _shown_nowhere(shown, str(info.value), repr(info.value), info.value.message,
                   *(a.model_dump_json() for a in info.value.attempts), str(opened.value),
                   caplog.text, repr(router._credentials), repr(resolved),
                   repr(router.health()))
    assert "[REDACTED]" in str(info.value)


def test_a_plugin_bug_whose_message_holds_the_key_is_not_chained(keyed: KeyedPlugin) -> None:
    with pytest.raises(mmsdk.ProviderError, match="failed unexpectedly") as info:
        mmsdk.Router("keyed:m", credentials={"keyed": BUGGY}).understand("x")
    assert info.value.__cause__ is None
    _shown_nowhere("".join(traceback.format_exception(info.value)))


# -- plugins that take no key, and bad input ------------------------------------------
def test_a_key_for_a_misspelt_plugin_is_refused_before_any_call(keyed: KeyedPlugin) -> None:
    router = mmsdk.Router("keyed:m", credentials={"keyedd": KEY_A})
    with pytest.raises(mmsdk.InvalidInputError, match=r"names 'keyedd'.*Did you mean 'keyed'") \
            as info:
        router.understand("x")  # would have gone out with the environment's key
    assert not keyed.built and KEY_A not in str(info.value)
    ok = mmsdk.Router("keyed:m", credentials={"keyed": KEY_A, "openai": KEY_B})
    assert ok.understand("x").provider == "keyed:m"  # an installed plugin not in the route


def test_a_plugin_without_with_key_is_a_capability_error(fake: TestProvider) -> None:
    router = mmsdk.Router("fake:m", credentials={"fake": KEY_A})
    with pytest.raises(mmsdk.CapabilityError, match="does not take per-router credentials"):
        router.understand("x")
    assert not fake.calls


def test_in_a_list_a_plugin_without_with_key_is_skipped(keyed: KeyedPlugin,
                                                        fake: TestProvider) -> None:
    router = mmsdk.Router(["fake:m", "keyed:m"], credentials={"fake": KEY_A, "keyed": KEY_B})
    result = router.understand("x")
    assert result.text == "B"
    assert result.attempts[0].outcome == "skipped"
    assert result.attempts[0].error_type == "CapabilityError"
    _shown_nowhere(result.attempts[0].error or "")


def test_preload_names_the_plugin_without_with_key(fake: TestProvider) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="per-router credentials"):
        mmsdk.Router("fake:m", credentials={"fake": KEY_A}).preload()


def test_a_broken_with_key_is_a_skip_without_the_key(keyed: KeyedPlugin,
                                                     fake: TestProvider) -> None:
    def broken(key: str) -> ProviderSpec:
        raise RuntimeError(f"cannot use {key}")

    keyed.with_key = broken  # type: ignore[method-assign]
    get_registry().remove_plugin("test-keyed")
    get_registry().add_plugin(keyed, "test-keyed")
    router = mmsdk.Router(["keyed:m", "fake:m"], credentials={"keyed": KEY_A})
    result = router.understand("x")
    assert result.provider == "fake:m"
    assert result.attempts[0].error_type == "ProviderError"
    _shown_nowhere(result.attempts[0].error or "")


@pytest.mark.parametrize("credentials", [
    ["openai", KEY_A], "openai", {"openai": ""}, {"openai": "  "}, {"openai": 42},
    {"": KEY_A}, {"openai:gpt-5.5": KEY_A}, {3: KEY_A},
], ids=["list", "str", "empty", "blank", "not-str", "no-name", "provider-string", "int-name"])
def test_credentials_are_validated(credentials: Any) -> None:
    with pytest.raises(mmsdk.InvalidInputError) as info:
        mmsdk.Router("openai:gpt-5.5", credentials=credentials)
    _shown_nowhere(str(info.value))


def test_router_keys_are_redacted_everywhere() -> None:
    key = "tenant-only-given-in-code-0006"
    mmsdk.Router("openai:gpt-5.5", credentials={"openai": key})
    assert key not in str(mmsdk.ProviderError(f"failed with {key}"))


def test_concurrent_first_calls_build_one_model_per_key(keyed: KeyedPlugin) -> None:
    routers = [mmsdk.Router("keyed:m", credentials={"keyed": key})
               for key in (KEY_A, KEY_B) for _ in range(4)]
    answers: list[str] = []
    threads = [threading.Thread(target=lambda r=r: answers.append(r.understand("x").text))
               for r in routers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["A"] * 4 + ["B"] * 4
    assert sorted(m.key or "" for m in keyed.built) == sorted([KEY_A, KEY_B])
