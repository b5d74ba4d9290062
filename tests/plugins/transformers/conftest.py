"""Fixtures for the transformers plugin: tiny random checkpoints and a seeded hub cache.

The checkpoints come from ``tiny.py`` next to this file (the benchmarks build
theirs with it too), are built once per session, saved with ``save_pretrained`` and
loaded back through the plugin's real code path: ``transformers:/tmp/...`` for
folders, and repo ids (``local:clip``, the default route) through a Hugging
Face cache seeded offline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hub_cache import seed_hub_cache
from PIL import Image
from tiny_modules import load_tiny

# A repo id per preset the tests drive through the hub-cache path, and what serves it.
HUB_REPOS = {
    "openai/clip-vit-large-patch14": "clip",
    "openai/clip-vit-base-patch32": "clip",
    "google/siglip-so400m-patch14-384": "siglip",
    "llava-hf/llava-v1.6-mistral-7b-hf": "llava_next",
    "llava-hf/llava-1.5-7b-hf": "llava",
    "llava-hf/llava-interleave-qwen-0.5b-hf": "llava",
}


_tiny = load_tiny("transformers")


@pytest.fixture(scope="session")
def tiny() -> ModuleType:
    """The checkpoint builders module (``tiny.ANSWER_JSON`` and friends)."""
    return _tiny


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny checkpoint, by name.

    clip, siglip, llava, llava_next: random weights. scripted_llava: answers
    ``tiny.ANSWER_JSON`` to anything; endless_llava: repeats it forever.
    """
    root = tmp_path_factory.mktemp("checkpoints")
    built = {name: getattr(_tiny, f"build_{name}")(root / name)
             for name in ("clip", "siglip", "llava", "scripted_llava", "llava_next")}
    built["endless_llava"] = _tiny.build_scripted_llava(root / "endless_llava", endless=True)
    return built


@pytest.fixture(scope="session")
def hub_cache(checkpoints: dict[str, Path]) -> Path:
    """The session's hub cache, holding the tiny checkpoints under the presets' repo ids."""
    from huggingface_hub import constants

    cache_dir = Path(os.environ["HF_HUB_CACHE"])
    if Path(constants.HF_HUB_CACHE) != cache_dir:
        pytest.fail("huggingface_hub was imported before this conftest set HF_HUB_CACHE; "
                    f"refusing to seed {constants.HF_HUB_CACHE}")
    assert constants.HF_HUB_OFFLINE, "tests/conftest.py must set HF_HUB_OFFLINE=1"
    for repo_id, name in HUB_REPOS.items():
        seed_hub_cache(cache_dir, repo_id, checkpoints[name])
    return cache_dir


@pytest.fixture(scope="session")
def provider(checkpoints: dict[str, Path]) -> Callable[[str], str]:
    """``provider("clip")`` → ``"transformers:/tmp/.../clip"``."""
    return lambda name: f"transformers:{checkpoints[name]}"


@cache
def _raw(folder: str, kind: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor

    model_class = AutoModel if kind == "contrastive" else AutoModelForImageTextToText
    return model_class.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)


@pytest.fixture(scope="session")
def raw(checkpoints: dict[str, Path]) -> Callable[[str], tuple[Any, Any]]:
    """``raw("clip")`` → (model, processor) loaded straight with transformers, for comparisons."""
    kinds = {"clip": "contrastive", "siglip": "contrastive"}
    return lambda name: _raw(str(checkpoints[name]), kinds.get(name, "vlm"))


def _image(seed: int, size: tuple[int, int]) -> Image.Image:
    pixels = np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    """Three distinct images of different sizes and aspect ratios."""
    return [_image(0, (50, 40)), _image(1, (30, 70)), _image(2, (64, 64))]


@pytest.fixture
def fresh() -> Iterator[None]:
    """No model loaded before or after the test."""
    import mmsdk

    mmsdk.unload("transformers")
    yield
    mmsdk.unload("transformers")
