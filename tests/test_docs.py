"""The documentation's code runs as written.

Every fenced ``python`` block in README.md and docs/*.md whose previous
non-blank line is ``<!-- test -->`` runs in a fresh interpreter, in an empty
folder that holds the sample files the docs name (``photo.jpg``,
``chart.png``, ``clip.mp4``, ``pets/`` with one subfolder per label), with a
hub cache whose CLIP repos hold a tiny random CLIP (so ``local:clip`` works
offline), the date pinned and no cloud keys. A block fails its test when it
raises. Blocks under the same heading share nothing: each must run alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_cache import seed_hub_cache
from PIL import Image
from samples import write_clip
from tiny_modules import load_tiny

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = "<!-- test -->"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
CLIP_REPOS = ("openai/clip-vit-large-patch14", "openai/clip-vit-base-patch32")


def blocks() -> list[tuple[str, str]]:
    """(id, code) for every marked block."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[:match.start()].rstrip().splitlines()
            if before and before[-1].strip() == MARKER:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{doc.name}:{line}", match.group(1)))
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sample folder template, hub cache with a tiny CLIP under the CLIP repos)."""
    root = tmp_path_factory.mktemp("docs")
    cache = root / "hub"
    clip = load_tiny("transformers").build_clip(root / "clip")
    for repo in CLIP_REPOS:
        seed_hub_cache(cache, repo, clip)
    samples = root / "samples"
    samples.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(samples / "photo.jpg")
    Image.new("RGB", (80, 60), (30, 30, 200)).save(samples / "chart.png")
    write_clip(samples / "clip.mp4", frames=48)
    for label, colour in (("cat", (220, 120, 40)), ("dog", (60, 60, 60))):
        folder = samples / "pets" / label
        folder.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), tuple(c + 10 * i for c in colour)).save(folder / f"{i}.png")
    return samples, cache


@pytest.mark.parametrize(("where", "code"), blocks() or [pytest.param("none", "", marks=pytest.mark.skip)])
def test_documented_code_runs(where: str, code: str, workspace: tuple[Path, Path],
                              tmp_path: Path) -> None:
    samples, cache = workspace
    for item in samples.iterdir():
        target = tmp_path / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            target.write_bytes(item.read_bytes())
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("_API_KEY", "_AUTH_TOKEN", "_BASE_URL"))}
    env |= {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "MMSDK_TODAY": "2026-12-01",
            "MPLBACKEND": "Agg"}
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"{where}:\n{code}\n{completed.stderr[-3000:]}"
