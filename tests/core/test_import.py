"""`import mmsdk` stays light: no torch, no diffusers/transformers, no cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


FIRST_CALL = """
import sys
import mmsdk
from mmsdk.plugin import (Capability, MediaLimits, ModelInfo, ProviderSpec, Understand,
                          UnderstandResult, hookimpl)
from mmsdk._registry import register_plugin

INFO = ModelInfo(limits=MediaLimits(formats=("jpeg", "png")))

class Sizes(Understand):
    def understand(self, request):
        return UnderstandResult(text=" ".join(f"{len(i.data)}:{i.format}" for i in request.images))

class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(ProviderSpec(name="sizes", model_class=Sizes, describe=lambda model: INFO,
                              default_models={Capability.UNDERSTAND: "m"}))

register_plugin(Plugin(), "sizes")
print(mmsdk.understand("what?", images=[sys.argv[1]], provider="sizes:m").text)
print(mmsdk.understand("what?", images=[open(sys.argv[1], "rb").read()], provider="sizes").text)
print(sorted(m for m in ("numpy", "PIL.ImageOps") if m in sys.modules))
"""


def test_a_first_call_with_an_image_file_imports_no_numpy(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "small.png"
    Image.new("RGB", (16, 8), (200, 10, 10)).save(path)
    size = path.stat().st_size
    output = subprocess.run([sys.executable, "-c", FIRST_CALL, str(path)], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    assert output == [f"{size}:png", f"{size}:png", "[]"]
