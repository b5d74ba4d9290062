"""Aliases are known without importing plugins: the ``mmsdk.aliases`` entry-point group.

An installed plugin declares each alias it registers in its distribution's
metadata (name: the alias, value: the plugin module), so resolving
``local:clip`` imports the transformers plugin only, and an app that names
one provider imports no other plugin.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import mmsdk
from mmsdk._registry import BUILTIN_DISTRIBUTIONS, PluginWarning, Registry

PLUGIN_MODULES = ("mmsdk_openai", "mmsdk_anthropic", "mmsdk_gemini", "mmsdk_diffusers",
                  "mmsdk_transformers", "mmsdk_palette")

IMPORTED = """
import json, sys
from mmsdk._registry import get_registry
registry = get_registry()
resolved = [registry.resolve(name).provider for name in sys.argv[1:]]
plugins = sorted(m for m in sys.modules if m.split(".")[0] in {modules!r})
print(json.dumps({{"resolved": resolved, "plugins": sorted({{m.split(".")[0] for m in plugins}}),
                  "failures": registry._failures}}))
"""


def imported_by(*names: str) -> dict:
    done = subprocess.run([sys.executable, "-c", IMPORTED.format(modules=PLUGIN_MODULES), *names],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                               "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize(("alias", "plugin", "target"), [
    ("local:clip", "mmsdk_transformers", "transformers:openai/clip-vit-large-patch14"),
    ("local:sdxl", "mmsdk_diffusers", "diffusers:stabilityai/stable-diffusion-xl-base-1.0"),
], ids=["transformers", "diffusers"])
def test_an_alias_imports_only_the_plugin_that_declares_it(alias: str, plugin: str,
                                                           target: str) -> None:
    if not _installed(plugin.replace("_", "-")):
        pytest.skip(f"{plugin} is not installed")
    out = imported_by(alias)
    assert out["resolved"] == [target]
    assert out["plugins"] == [plugin]  # no other plugin was imported to find the alias
    assert out["failures"] == {}


def test_a_provider_string_imports_only_its_plugin() -> None:
    if not _installed("mmsdk-openai"):
        pytest.skip("mmsdk-openai is not installed")
    assert imported_by("openai:gpt-5.5")["plugins"] == ["mmsdk_openai"]


@pytest.mark.parametrize("distribution", sorted(BUILTIN_DISTRIBUTIONS | {"mmsdk-palette"}))
def test_installed_metadata_declares_exactly_the_aliases_the_hook_registers(
        distribution: str) -> None:
    if not _installed(distribution):
        pytest.skip(f"{distribution} is not installed")
    dist = importlib.metadata.distribution(distribution)
    [plugin] = [ep for ep in dist.entry_points if ep.group == "mmsdk"]
    declared = {ep.name: ep.value for ep in dist.entry_points if ep.group == "mmsdk.aliases"}
    registered: dict[str, str] = {}
    hook = getattr(plugin.load(), "register_aliases", None)
    if hook is not None:
        hook(register=registered.__setitem__)
    # stale metadata: re-run `pip install -c constraints.txt --no-deps -e <plugin folder>`
    assert sorted(declared) == sorted(registered)
    assert set(declared.values()) <= {plugin.value}


# -- the rules, on fake entry points -------------------------------------------------------------
OWNER = '''
from mmsdk.plugin import Capability, ProviderSpec, Understand, UnderstandResult, hookimpl

class Echo(Understand):
    def understand(self, request):
        return UnderstandResult(text="{name}: " + request.prompt)

@hookimpl
def register_providers(register):
    register(ProviderSpec(name="{name}", model_class=Echo,
                          default_models={{Capability.UNDERSTAND: "m"}}))

@hookimpl
def register_aliases(register):
    for alias in {aliases!r}:
        register(alias, "{name}:m")
'''


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("plug_alias_")]:
        sys.modules.pop(module)


def fake(monkeypatch: pytest.MonkeyPatch, folder: Path, plugins: dict[str, list[str]],
         declared: dict[str, str]) -> Registry:
    """Plugins (name -> aliases its hook registers) and the metadata (alias -> module)."""
    points = []
    for name, aliases in plugins.items():
        (folder / f"plug_alias_{name}.py").write_text(
            textwrap.dedent(OWNER.format(name=name, aliases=aliases)))
        points.append(importlib.metadata.EntryPoint(name=name, value=f"plug_alias_{name}",
                                                    group="mmsdk"))
    metadata = [importlib.metadata.EntryPoint(name=alias, value=module, group="mmsdk.aliases")
                for alias, module in declared.items()]

    def entry_points(**params: str) -> list[importlib.metadata.EntryPoint]:
        return {"mmsdk": points, "mmsdk.aliases": metadata}.get(params.get("group", ""), [])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry()
    registry.load_entry_points()
    return registry


def test_a_declared_alias_loads_its_owner_and_nothing_else(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = fake(monkeypatch, plugin_dir, {"alpha": ["fast"], "beta": []},
                    {"fast": "plug_alias_alpha"})
    answer = mmsdk.Router("fast", registry=registry).understand("hi")
    assert (answer.provider, answer.text) == ("alpha:m", "alpha: hi")
    assert "plug_alias_beta" not in sys.modules and registry.has_pending()


def test_an_alias_missing_from_the_metadata_is_refused_with_the_fix(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = fake(monkeypatch, plugin_dir, {"alpha": ["fast", "quiet"]},
                    {"fast": "plug_alias_alpha"})
    with pytest.warns(PluginWarning, match="'quiet' rejected: not declared"):
        registry.load_pending()
    assert registry.aliases == {"fast": "alpha:m"}
    assert '[project.entry-points."mmsdk.aliases"]' in registry.failures["alpha"]


def test_a_declared_alias_the_hook_does_not_register_is_reported(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    registry = fake(monkeypatch, plugin_dir, {"alpha": []}, {"ghost": "plug_alias_alpha"})
    with pytest.warns(PluginWarning, match="declares alias"):
        registry.load_pending()
    assert "'ghost'" in registry.failures["alpha"]
    with pytest.raises(mmsdk.UnknownProviderError):
        registry.resolve("ghost")


def test_an_alias_of_a_plugin_left_out_says_how_to_let_it_in(
        monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    from dataclasses import replace

    from mmsdk import _settings
    registry = fake(monkeypatch, plugin_dir, {"alpha": ["fast"], "beta": []},
                    {"fast": "plug_alias_alpha"})  # installed first: plugins= names them
    monkeypatch.setattr(_settings, "_settings", replace(_settings.get_settings(),
                                                        plugins=("beta",)))
    registry.apply_plugin_choice()  # what configure(plugins=...) does
    with pytest.raises(mmsdk.ProviderUnavailableError, match="leaves it out") as caught:
        registry.resolve("fast")
    assert caught.value.fix == "add 'alpha' to MMSDK_PLUGINS or configure(plugins=[...])"
    assert "plug_alias_alpha" not in sys.modules
