"""Installed plugins cannot hijack built-in names, collide silently, or break each other.

Real throwaway distributions are installed (in a temporary folder put on
PYTHONPATH, as test_third_party_plugin.py does) and exercised in subprocesses,
so entry points, distribution names and import state are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROVIDER = '''
from mmsdk.plugin import (Availability, Capability, ModelInfo, ProviderSpec, Understand,
                          UnderstandResult, hookimpl)

INFO = ModelInfo()

class Echo(Understand):
    def understand(self, request):
        return UnderstandResult(text="{module}: " + request.prompt)

def spec(name, check=None, describe=None):
    return ProviderSpec(name=name, model_class=Echo, describe=describe or (lambda m: INFO),
                        check=check or (lambda m: Availability.yes()),
                        default_models={{Capability.UNDERSTAND: "m"}}, offer_as_default=True)

def boom(model):
    raise RuntimeError("{module} check exploded")

def broken_describe(model):
    raise RuntimeError("{module} describe exploded")
'''

PLUGINS = {
    # tries to take a built-in provider name and a built-in alias
    "hijack": '''
@hookimpl
def register_providers(register):
    register(spec("openai"))
    register(spec("hijack"))

@hookimpl
def register_aliases(register):
    register("local:clip", "hijack:m")
''',
    # two distributions that register the same name
    "twina": '''
@hookimpl
def register_providers(register):
    register(spec("twin"))
''',
    "twinb": '''
@hookimpl
def register_providers(register):
    register(spec("twin"))
''',
    # an import that raises (after the shared preamble has run)
    "crashy": '''
raise RuntimeError("crashy cannot start: its native library is missing")
''',
    # a check and a describe that raise
    "fragile": '''
@hookimpl
def register_providers(register):
    register(spec("fragile", check=boom))
    register(spec("opaque", describe=broken_describe))
''',
}


# What each distribution declares in its metadata ([project.entry-points."mmsdk.aliases"]).
DECLARED = {"hijack": ["local:clip"]}


def _distribution(root: Path, name: str, hooks: str) -> Path:
    folder = root / name
    (folder / f"plug_{name}").mkdir(parents=True)
    (folder / f"plug_{name}" / "__init__.py").write_text(
        PROVIDER.format(module=name) + textwrap.dedent(hooks))
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "thirdparty-{name}"
        version = "0.1"

        [project.entry-points.mmsdk]
        {name} = "plug_{name}"

        [project.entry-points."mmsdk.aliases"]
        {"".join(f'"{alias}" = "plug_{name}"' for alias in DECLARED.get(name, []))}

        [tool.setuptools]
        packages = ["plug_{name}"]
    """))
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("plugins")
    target = tmp_path_factory.mktemp("site")
    folders = [str(_distribution(source, name, hooks)) for name, hooks in PLUGINS.items()]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), *folders],
                   check=True)
    return target  # a temporary folder: nothing to uninstall from the venv


def run(site: Path, code: str, **env: str) -> dict:
    environment = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                   **env}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)],
                          env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_third_party_plugin_cannot_take_a_builtin_name(site: Path) -> None:
    out = run(site, """
        import json, mmsdk
        from mmsdk._registry import get_registry
        registry = get_registry()
        openai = registry.resolve("openai:gpt-4o")
        clip = registry.resolve("local:clip")
        rows = {s.name: s for s in mmsdk.providers()}
        print(json.dumps({
            "openai": [registry.owners["provider:openai"], openai.spec.factory.__module__],
            "clip": [registry.owners["alias:local:clip"], clip.provider],
            "failure": registry.failures.get("hijack", ""),
            "listed": rows["hijack"].reason if "hijack" in rows else "",
            "hijack": mmsdk.understand("hi", provider="hijack").text}))
    """)
    assert out["openai"][0] == "openai" and out["openai"][1].startswith("mmsdk_openai")
    assert out["clip"][0] == "transformers" and not out["clip"][1].startswith("hijack")
    assert "'openai' refused: it is reserved" in out["failure"] or \
        "'local:clip' refused: it is reserved" in out["failure"]
    assert "reserved" in out["listed"] and "thirdparty-hijack" in out["listed"]
    assert out["hijack"] == "hijack: hi"  # its own name still works


def test_a_name_two_distributions_register_is_unusable_until_one_is_chosen(site: Path) -> None:
    code = """
        import json, mmsdk
        try:
            text = mmsdk.understand("hi", provider="twin:m").text
            code = None
        except mmsdk.ProviderUnavailableError as error:
            text, code = str(error), error.code
        rows = {s.name: s.reason for s in mmsdk.providers() if not s.usable}
        print(json.dumps({"text": text, "code": code, "row": rows.get("twin", "")}))
    """
    both = run(site, code)
    assert both["code"] == "plugin_conflict"
    assert "thirdparty-twina" in both["text"] and "thirdparty-twinb" in both["text"]
    assert "thirdparty-twina" in both["row"] and "thirdparty-twinb" in both["row"]
    chosen = run(site, code, MMSDK_PLUGINS="twinb")
    assert chosen == {"text": "twinb: hi", "code": None, "row": ""}
    switched = run(site, """
        import json, mmsdk
        mmsdk.providers()  # everything loaded: twin collides
        mmsdk.configure(plugins=["twina", "openai"])
        print(json.dumps({"text": mmsdk.understand("hi", provider="twin").text}))
    """)
    assert switched == {"text": "twina: hi"}


def test_mmsdk_plugins_limits_what_loads_builtins_included(site: Path) -> None:
    code = """
        import json, sys, mmsdk
        from mmsdk._registry import get_registry
        registry = get_registry()
        try:
            registry.resolve("openai:gpt-4o")
            openai = "ok"
        except mmsdk.ProviderUnavailableError as error:
            openai = str(error)
        print(json.dumps({"specs": sorted(registry.specs), "openai": openai,
                          "imported": sorted(m for m in sys.modules if m.startswith("plug_"))}))
    """
    only = run(site, code, MMSDK_PLUGINS="fragile")
    assert only["specs"] == ["fragile", "opaque"] and only["imported"] == ["plug_fragile"]
    assert "MMSDK_PLUGINS" in only["openai"]
    none = run(site, code, MMSDK_PLUGINS="")
    assert none["specs"] == [] and none["imported"] == []


def test_a_default_route_with_no_plugin_allowed_says_so(site: Path) -> None:
    out = run(site, """
        import json, mmsdk
        try:
            mmsdk.understand("hi")
        except mmsdk.MMSDKError as error:
            print(json.dumps({"type": type(error).__name__, "text": str(error)}))
    """, MMSDK_PLUGINS="")
    assert out["type"] == "ProviderUnavailableError"
    assert "No provider that can understand is allowed here" in out["text"]
    assert "'openai'" in out["text"] and "MMSDK_PLUGINS" in out["text"]


def test_third_party_providers_stay_out_of_the_default_route(site: Path) -> None:
    out = run(site, """
        import json
        from mmsdk import Capability
        from mmsdk._registry import get_registry
        print(json.dumps(get_registry().default_route(Capability.UNDERSTAND)))
    """)
    assert out and not any(p.partition(":")[0] in {"hijack", "twin", "fragile", "opaque",
                                                   "palette"} for p in out)


def test_the_default_route_does_not_import_third_party_plugins(site: Path) -> None:
    out = run(site, """
        import json, sys, mmsdk
        try:
            mmsdk.understand("hi")  # no key set: every default provider is skipped
        except mmsdk.MMSDKError:
            pass
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("plug_"))))
    """, HF_HUB_CACHE=str(site / "empty-hub-cache"))  # no local model is ready either
    assert out == []  # none of them can be in that route: their code must not run for it


def test_a_plugin_whose_check_or_describe_raises_is_contained(site: Path) -> None:
    out = run(site, """
        import json, subprocess, sys, mmsdk
        rows = {s.name: s for s in mmsdk.providers()}
        cli = subprocess.run([sys.executable, "-m", "mmsdk", "providers", "--json"],
                             capture_output=True, text=True)
        result = mmsdk.understand("hi", provider=["fragile:m", "hijack:m"])
        print(json.dumps({
            "fragile": [rows["fragile"].usable, rows["fragile"].reason],
            "opaque": [rows["opaque"].usable, rows["opaque"].reason],
            "cli": cli.returncode,
            "attempts": [[a.provider, a.outcome, a.error or ""] for a in result.attempts]}))
    """)
    assert out["fragile"][0] is False and "check exploded" in out["fragile"][1]
    assert out["opaque"][0] is False and "describe exploded" in out["opaque"][1]
    assert out["cli"] == 0
    (first, outcome, why), second = out["attempts"]
    assert (first, outcome) == ("fragile:m", "skipped") and "check exploded" in why
    assert second[:2] == ["hijack:m", "ok"]


def test_a_plugin_whose_import_raises_is_reported_and_skipped(site: Path) -> None:
    out = run(site, """
        import json, subprocess, sys, mmsdk
        result = mmsdk.understand("hi", provider=["crashy:m", "hijack:m"])
        rows = {s.name: s for s in mmsdk.providers()}
        cli = subprocess.run([sys.executable, "-m", "mmsdk", "providers", "--json"],
                             capture_output=True, text=True)
        print(json.dumps({
            "attempts": [[a.provider, a.outcome, a.error or ""] for a in result.attempts],
            "text": result.text, "row": [rows["crashy"].usable, rows["crashy"].reason],
            "cli": [cli.returncode, "crashy cannot start" in cli.stdout]}))
    """)
    (first, outcome, why), second = out["attempts"]
    assert (first, outcome) == ("crashy:m", "skipped") and "crashy cannot start" in why
    assert second[:2] == ["hijack:m", "ok"] and out["text"] == "hijack: hi"
    assert out["row"][0] is False and "import failed: RuntimeError" in out["row"][1]
    assert out["cli"] == [0, True]


def test_a_third_party_declaring_a_local_alias_is_not_even_imported_for_it(site: Path) -> None:
    out = run(site, """
        import json, sys
        from mmsdk._registry import get_registry
        clip = get_registry().resolve("local:clip")
        print(json.dumps({"provider": clip.provider, "plugins": sorted(
            m for m in sys.modules if m.startswith(("plug_", "mmsdk_")) and "." not in m)}))
    """)
    assert out == {"provider": "transformers:openai/clip-vit-large-patch14",
                   "plugins": ["mmsdk_transformers"]}
