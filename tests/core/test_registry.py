"""Plugins load through entry points; broken ones are recorded, never fatal."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import mmsdk
from mmsdk._registry import PluginWarning, Registry, describe_all

GOOD = '''
from mmsdk.plugin import Capability, ProviderSpec, Understand, UnderstandResult, hookimpl

class Shout(Understand):
    def understand(self, request):
        return UnderstandResult(text=request.prompt.upper())

@hookimpl
def register_providers(register):
    register(ProviderSpec(name="shout", model_class=Shout,
                          default_models={Capability.UNDERSTAND: "loud"},
                          retired={"whisper": "Use shout:loud instead."}))

@hookimpl
def register_aliases(register):
    register("shouty", "shout:loud")
'''

BROKEN_IMPORT = "raise ImportError('needs a package that is not installed')\n"

DUPLICATE = GOOD.replace("register_aliases", "unused_name")

FAILING_HOOK = '''
from mmsdk.plugin import hookimpl

@hookimpl
def register_providers(register):
    raise RuntimeError("boom")
'''

# Registers one provider, then fails: the plugin is skipped whole, not half-registered.
HALFWAY = GOOD.replace("name=\"shout\"", "name=\"halfway\"").replace(
    "retired={\"whisper\": \"Use shout:loud instead.\"}))",
    "))\n    register(ProviderSpec(name=\"bad:name\", model_class=Shout))\n"
    "    raise RuntimeError(\"registration failed halfway\")").replace(
    "register_aliases", "unused_name")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("plug_good", "plug_broken", "plug_dup", "plug_hook", "plug_halfway"):
        sys.modules.pop(name, None)


# The aliases plugin modules declare in their metadata (group "mmsdk.aliases").
DECLARED = {"shouty": "plug_good"}


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, plugin_dir: Path,
                      plugins: dict[str, tuple[str, str]],
                      declared: dict[str, str] = DECLARED) -> None:
    """Write each plugin module and make importlib.metadata report it in group 'mmsdk'
    (and the aliases in *declared*, alias -> module, in group 'mmsdk.aliases')."""
    points = []
    for name, (module, source) in plugins.items():
        (plugin_dir / f"{module}.py").write_text(textwrap.dedent(source))
        points.append(importlib.metadata.EntryPoint(name=name, value=module, group="mmsdk"))
    aliases = [importlib.metadata.EntryPoint(name=alias, value=module, group="mmsdk.aliases")
               for alias, module in declared.items()]

    def entry_points(**params: str) -> list[importlib.metadata.EntryPoint]:
        return {"mmsdk": points, "mmsdk.aliases": aliases}.get(params.get("group", ""), [])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def load(monkeypatch: pytest.MonkeyPatch, plugin_dir: Path,
         plugins: dict[str, tuple[str, str]]) -> Registry:
    fake_entry_points(monkeypatch, plugin_dir, plugins)
    registry = Registry()
    registry.load_entry_points()
    return registry


def test_entry_point_plugin_is_called_by_provider_string(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    router = mmsdk.Router("shout:loud", registry=registry)
    assert router.understand("hello").text == "HELLO"
    assert mmsdk.Router("shout", registry=registry).understand("bare").provider == "shout:loud"
    assert mmsdk.Router("shouty", registry=registry).understand("alias").text == "ALIAS"


def test_broken_plugins_are_recorded_and_the_rest_still_work(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {
        "broken": ("plug_broken", BROKEN_IMPORT),
        "hooky": ("plug_hook", FAILING_HOOK),
        "shout": ("plug_good", GOOD),
    })
    # A third-party name imports the other third-party plugins too (one of them may
    # register it as well): the broken ones are recorded, never raised.
    with pytest.warns(PluginWarning) as warned:
        assert mmsdk.Router("shout:loud", registry=registry).understand("first").text == "FIRST"
    assert len(warned) == 2
    with pytest.raises(mmsdk.ProviderUnavailableError) as info:
        mmsdk.Router("broken:model", registry=registry).understand("x")
    assert info.value.code == "plugin_broken" and "needs a package" in str(info.value)
    listed = mmsdk.Router(["broken:model", "shout:loud"], registry=registry).understand("y")
    assert [(a.provider, a.outcome) for a in listed.attempts] == [
        ("broken:model", "skipped"), ("shout:loud", "ok")]
    assert "ImportError: needs a package" in registry.failures["broken"]
    assert "RuntimeError: boom" in registry.failures["hooky"]
    assert mmsdk.Router("shout:loud", registry=registry).understand("ok").text == "OK"
    rows = {row["provider"]: row for row in describe_all(registry)}
    assert rows["broken (plugin)"]["usable"] is False
    assert rows["shout"]["usable"] is True


def test_a_plugin_whose_hook_fails_halfway_is_skipped_whole_with_every_reason(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    with pytest.warns(PluginWarning):
        registry = load(monkeypatch, plugin_dir, {"halfway": ("plug_halfway", HALFWAY)})
        registry.load_pending()
    assert "halfway" not in registry.specs and "provider:halfway" not in registry.owners
    with pytest.raises(mmsdk.ProviderUnavailableError) as info:
        mmsdk.Router("halfway:loud", registry=registry).understand("x")
    assert info.value.code == "plugin_broken" and "failed halfway" in str(info.value)
    reasons = registry.failures["halfway"]  # the rejected spec and the failed hook, both
    assert "provider name 'bad:name' rejected" in reasons and "registration failed halfway" in reasons


def test_a_name_two_installed_plugins_register_is_unusable_until_one_goes(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    with pytest.warns(PluginWarning, match="'shout' is registered by plugin 'a' and plugin 'b'"):
        registry = load(monkeypatch, plugin_dir, {"a": ("plug_good", GOOD),
                                                  "b": ("plug_dup", DUPLICATE)})
        registry.load_pending()
    assert "provider:shout" not in registry.owners
    assert registry.conflicts == {"shout": ["plugin 'a'", "plugin 'b'"]}
    with pytest.raises(mmsdk.ProviderUnavailableError) as info:
        registry.resolve("shout:loud")
    assert info.value.code == "plugin_conflict"
    registry.remove_plugin("b")  # uninstalled: the other one's name is usable again
    assert registry.owners["provider:shout"] == "a"
    assert registry.resolve("shout:loud").provider == "shout:loud"


def test_a_runtime_plugin_cannot_take_a_name_already_registered(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"a": ("plug_good", GOOD)})
    registry.load_pending()
    module = importlib.import_module("plug_good")
    with pytest.warns(PluginWarning, match="already registered by plugin 'a'"):
        registry.add_plugin(types.SimpleNamespace(
            register_providers=module.register_providers), "late")
    assert registry.owners["provider:shout"] == "a"
    assert "already registered" in registry.failures["late"]


def test_loading_is_lazy_and_happens_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import mmsdk._registry as registry_module

    calls = []
    monkeypatch.setattr(registry_module, "_registry", None)
    monkeypatch.setattr(Registry, "load_entry_points",
                        lambda self, group="mmsdk": calls.append(group))
    first = registry_module.get_registry()
    assert registry_module.get_registry() is first
    assert calls == ["mmsdk"]


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("shoot:loud", "shout"), ("shoty", "shouty"), ("shuot", "shout")],
    ids=["typo-plugin", "typo-alias", "typo-bare"],
)
def test_unknown_provider_suggests_close_matches(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path, text: str, suggestion: str) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    with pytest.raises(mmsdk.UnknownProviderError, match="Did you mean") as info:
        registry.resolve(text)
    assert suggestion in info.value.suggestions


def test_retired_model_names_its_successor_before_any_call(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    with pytest.raises(mmsdk.UnknownProviderError, match=r"retired\. Use shout:loud"):
        mmsdk.Router("shout:whisper", registry=registry).understand("hi")
    assert registry._models == {}


def test_bare_name_without_that_capability(monkeypatch: pytest.MonkeyPatch,
                                           plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    with pytest.raises(mmsdk.CapabilityError, match="no default model for generate"):
        mmsdk.Router("shout", registry=registry).generate("a cat")


def test_model_objects_are_created_once_and_unloaded(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    router = mmsdk.Router("shout:loud", registry=registry)
    router.understand("one")
    first = registry._models["shout:loud"]
    router.understand("two")
    assert registry._models["shout:loud"] is first
    registry.unload("shout")
    assert registry._models == {}


def test_a_builtin_plugin_that_is_not_installed_is_unavailable_not_unknown(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    with pytest.raises(mmsdk.ProviderUnavailableError, match=r"pip install 'mmsdk\[gemini\]'"):
        registry.resolve("gemini:gemini-2.5-flash")
    result = mmsdk.Router(["gemini", "shout"], registry=registry).understand("hi")
    assert result.provider == "shout:loud"
    assert result.attempts[0].outcome == "skipped"
    assert "mmsdk[gemini]" in (result.attempts[0].error or "")


async def test_aunload_awaits_each_models_aclose(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = load(monkeypatch, plugin_dir, {"shout": ("plug_good", GOOD)})
    await mmsdk.Router("shout:loud", registry=registry).aunderstand("one")
    model = registry._models["shout:loud"]
    closed: list[str] = []

    async def aclose() -> None:
        closed.append(model.provider)

    model.aclose = aclose  # type: ignore[method-assign]
    await registry.aunload()
    assert closed == ["shout:loud"] and registry._models == {}


def test_an_unavailable_provider_is_described_again_on_the_next_call() -> None:
    from mmsdk.testing import TestProvider

    with TestProvider("late", available=False) as late:
        described = []
        spec = mmsdk._registry.get_registry().specs["late"]
        original = spec.describe
        object.__setattr__(spec, "describe", lambda m: described.append(m) or original(m))
        for _ in range(2):
            with pytest.raises(mmsdk.ProviderUnavailableError):
                mmsdk.understand("x", provider="late:m")
        late.available = True
        mmsdk.understand("x", provider="late:m")
        mmsdk.understand("x", provider="late:m")
    assert described == ["m", "m", "m"]  # re-described after each unavailable call, then cached


EXITING_IMPORT = "import sys\nsys.exit('this plugin needs a GPU')\n"

EXITING_HOOK = FAILING_HOOK.replace('raise RuntimeError("boom")', 'raise SystemExit(3)')


def test_a_plugin_calling_sys_exit_is_recorded_not_the_end_of_the_app(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    with pytest.warns(PluginWarning):
        registry = load(monkeypatch, plugin_dir, {"quits": ("plug_broken", EXITING_IMPORT),
                                                  "hooky": ("plug_hook", EXITING_HOOK),
                                                  "shout": ("plug_good", GOOD)})
        listed = mmsdk.Router(["quits:model", "hooky:model", "shout:loud"],
                              registry=registry).understand("y")
    assert [(a.provider, a.outcome) for a in listed.attempts] == [
        ("quits:model", "skipped"), ("hooky:model", "skipped"), ("shout:loud", "ok")]
    assert "SystemExit: this plugin needs a GPU" in registry.failures["quits"]
    assert "register_providers failed: SystemExit" in registry.failures["hooky"]
