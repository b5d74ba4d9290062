"""Fixtures for the diffusers plugin: tiny random checkpoints and a seeded hub cache.

The checkpoints come from ``tiny.py`` next to this file (the benchmarks build
theirs with it too), are built once per session with ``save_pretrained`` and
loaded through the plugin's real code path: ``diffusers:/tmp/...`` for folders,
and repo ids (``local:sdxl``, ``local:flux-schnell``, ``local:sd15``, the
default route, default ControlNet / IP-Adapter repos) through a Hugging Face
cache seeded offline (``HF_HUB_OFFLINE=1`` comes from tests/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hub_cache import seed_hub_cache
from tiny_modules import load_tiny

pytest.importorskip("diffusers", reason="the diffusers plugin needs mmsdk[local]")

# The repo ids the presets and defaults use, and the tiny checkpoint serving each.
HUB_REPOS = {
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
    "black-forest-labs/FLUX.1-schnell": "flux",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15",
    "stabilityai/sd-turbo": "sd15",
    "lllyasviel/control_v11p_sd15_canny": "controlnet_sd15",
    "h94/IP-Adapter": "ip_adapter",
}


# Warnings raised inside third-party code that these tests cannot change.
THIRD_PARTY_WARNINGS = (
    # diffusers' Euler schedulers call np.array() on a torch tensor (numpy 2 + torch)
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    # diffusers' hub download helper still passes an argument huggingface-hub 1.x+ dropped
    "ignore:The `local_dir_use_symlinks` argument is deprecated:UserWarning",
    # peft, when diffusers loads a second LoRA adapter into the same UNet (as designed)
    "ignore:Already found a `peft_config` attribute in the model:UserWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            for spec in THIRD_PARTY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


_tiny = load_tiny("diffusers")


@pytest.fixture(scope="session")
def tiny() -> ModuleType:
    """The checkpoint builders module."""
    return _tiny


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny checkpoint folder, by name."""
    root = tmp_path_factory.mktemp("diffusers-checkpoints")
    found = {"sd15": _tiny.build_sd15(root / "sd15"), "sdxl": _tiny.build_sdxl(root / "sdxl"),
             "flux": _tiny.build_flux(root / "flux")}
    found["controlnet_sd15"] = _tiny.build_controlnet(found["sd15"], root / "controlnet_sd15")
    found["controlnet_sdxl"] = _tiny.build_controlnet(found["sdxl"], root / "controlnet_sdxl")
    found["controlnet_pipeline"] = _tiny.build_controlnet_pipeline(
        found["sd15"], found["controlnet_sd15"], root / "controlnet_pipeline")
    ip_adapter = _tiny.build_ip_adapter(found["sd15"], root / "ip_adapter")
    found["ip_adapter"] = _tiny.build_ip_adapter(found["sdxl"], ip_adapter, sdxl=True)
    return found


@pytest.fixture(scope="session")
def hub_cache(checkpoints: dict[str, Path]) -> Path:
    """The session's hub cache, holding tiny checkpoints under the real repo ids."""
    cache_dir = Path(os.environ["HF_HUB_CACHE"])
    for repo_id, name in HUB_REPOS.items():
        seed_hub_cache(cache_dir, repo_id, checkpoints[name])
    return cache_dir


@pytest.fixture(autouse=True)
def _local_environment(monkeypatch: pytest.MonkeyPatch, hub_cache: Path) -> None:
    """Every test sees the seeded cache, offline mode and the CPU (like a GPU-less CI box)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MMSDK_DIFFUSERS_DEVICE", "cpu")
    for name in ("MMSDK_DIFFUSERS_DTYPE", "MMSDK_DIFFUSERS_CPU_OFFLOAD",
                 "MMSDK_DIFFUSERS_MAX_PIPELINES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def provider(checkpoints: dict[str, Path]) -> Callable[[str], str]:
    """``provider("sd15")`` -> ``"diffusers:/tmp/.../sd15"``."""
    return lambda name: f"diffusers:{checkpoints[name]}"


@pytest.fixture
def raw(checkpoints: dict[str, Path]) -> Callable[[str], Any]:
    """``raw("sdxl")``: the checkpoint loaded straight with diffusers, for comparisons."""
    from diffusers import DiffusionPipeline

    def load(name: str) -> Any:
        pipe = DiffusionPipeline.from_pretrained(checkpoints[name])
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return load


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every pipeline the plugin loads from disk during the test (a spy on its loader)."""
    from mmsdk_diffusers import _pipelines

    seen: list[Any] = []
    real = _pipelines.load_pipeline

    def spy(source: Any, settings: Any) -> Any:
        seen.append(settings)
        return real(source, settings)

    monkeypatch.setattr(_pipelines, "load_pipeline", spy)
    return seen


@pytest.fixture
def fresh() -> Iterator[None]:
    """No diffusers pipeline loaded before or after the test."""
    import mmsdk

    mmsdk.unload("diffusers")
    yield
    mmsdk.unload("diffusers")
