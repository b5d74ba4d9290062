"""The example plugin in examples/ installs like any package and is called by its provider string."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CALL = """
import json, mmsdk
from PIL import Image
red = Image.new("RGB", (8, 8), (250, 5, 5))
result = mmsdk.classify(red, labels=["red", "green", "blue"], provider="palette:basic")
answer = mmsdk.understand("colours?", images=[red], provider="palette")
vectors = mmsdk.embed(images=[red], provider="palette")
print(json.dumps({"top": result.top[0], "provider": result.provider, "text": answer.text,
                  "dim": vectors.image_vectors.shape[1]}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target),
                    str(ROOT / "examples" / "mmsdk-palette")], check=True)
    return target


def run(code: list[str], site: Path) -> str:
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *code], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_installed_plugin_is_called_by_provider_string(installed: Path) -> None:
    assert (installed / "mmsdk_palette").is_dir()
    assert list(installed.glob("mmsdk_palette-*.dist-info/entry_points.txt"))
    payload = json.loads(run(["-c", CALL], installed))
    assert payload == {"top": "red", "provider": "palette:basic",
                       "text": "image 1: 8x8, mean colour #fa0505", "dim": 64}


def test_installed_plugin_is_listed_by_the_cli(installed: Path) -> None:
    rows = json.loads(run(["-m", "mmsdk", "providers", "--json"], installed))
    palette = next(row for row in rows if row["provider"] == "palette")
    assert palette["usable"] is True
    assert palette["capabilities"] == ["classify", "embed", "understand"]
