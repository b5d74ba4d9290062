"""`import mmsdk` stays light: no torch, no diffusers/transformers, no cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "openai", "anthropic", "google.genai",
         "google.generativeai", "numpy", "PIL", "pydantic", "httpx")


def modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                            text=True).stdout
    return set(json.loads(output))


def test_import_mmsdk_imports_nothing_heavy() -> None:
    loaded = modules_after("import mmsdk")
    assert not [m for m in HEAVY if m in loaded]


def test_using_the_api_and_registry_still_imports_no_sdk_or_torch() -> None:
    loaded = modules_after("import mmsdk\nfrom mmsdk._registry import get_registry, describe_all"
                           "\ndescribe_all(get_registry())\nmmsdk.Router")
    heavy = ("torch", "diffusers", "transformers", "openai", "anthropic", "google.genai")
    assert not [m for m in heavy if m in loaded]


def test_public_names_resolve() -> None:
    import mmsdk

    for name in mmsdk.__all__:
        assert getattr(mmsdk, name) is not None
