"""Caching, unloading, concurrency, the cancel_event option, devices and weight formats.

Timeouts and cancellation mid-run: test_diffusers_bounds.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mmsdk_diffusers import GenerationCancelledError
from mmsdk_diffusers._pipelines import CACHE
from mmsdk_diffusers._runtime import load_settings
from mmsdk_tests_tiny_diffusers import build_sd15, generator, pixels

import mmsdk
from mmsdk._registry import get_registry

SIZE = {"width": 64, "height": 64}


def _model(provider: str) -> Any:
    registry = get_registry()
    return registry.model(registry.resolve(provider))


def test_second_call_does_not_reload(provider: Callable[[str], str], loads: list[Any],
                                     fresh: None) -> None:
    for seed in (1, 2, 3):
        mmsdk.generate("a", provider=provider("sd15"), steps=2, seed=seed, **SIZE)
    assert len(loads) == 1


def test_cache_keeps_two_pipelines_by_default(provider: Callable[[str], str],
                                              loads: list[Any], fresh: None) -> None:
    for name in ("sd15", "sdxl", "sd15", "sdxl"):
        mmsdk.generate("a", provider=provider(name), steps=2, seed=0, **SIZE)
    assert len(loads) == 2
    mmsdk.generate("a", provider=provider("flux"), seed=0, **SIZE)  # evicts sd15 (LRU)
    mmsdk.generate("a", provider=provider("sdxl"), steps=2, seed=0, **SIZE)
    assert len(loads) == 3 and len(CACHE) == 2
    mmsdk.generate("a", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    assert len(loads) == 4


def test_cache_bound_comes_from_the_environment(provider: Callable[[str], str],
                                                loads: list[Any], fresh: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSDK_DIFFUSERS_MAX_PIPELINES", "1")
    for name in ("sd15", "sdxl", "sd15"):
        mmsdk.generate("a", provider=provider(name), steps=2, seed=0, **SIZE)
    assert len(loads) == 3 and len(CACHE) == 1


def test_unload_releases_the_pipelines(provider: Callable[[str], str], loads: list[Any],
                                       fresh: None) -> None:
    mmsdk.generate("a", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    entry = _model(provider("sd15"))._loaded({})
    mmsdk.unload("diffusers")
    assert len(CACHE) == 0 and entry.pipe is None
    mmsdk.generate("a", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    assert len(loads) == 2


def test_concurrent_calls_match_sequential_ones(provider: Callable[[str], str],
                                                loads: list[Any], fresh: None) -> None:
    """Two threads on one checkpoint, one swapping the scheduler: no state leaks between them."""
    calls = [{"seed": 1}, {"seed": 2, "scheduler": "dpm++"}, {"seed": 3, "scheduler": "euler_a"},
             {"seed": 4}]
    model = provider("sdxl")

    def run(kwargs: dict[str, Any]) -> np.ndarray:
        return pixels(mmsdk.generate("a", provider=model, steps=3, **SIZE, **kwargs).images[0])

    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i, kw=kw: results.__setitem__(i, run(kw)))
               for i, kw in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1  # the first calls raced to load; one load happened
    for i, kwargs in enumerate(calls):
        assert np.array_equal(results[i], run(kwargs)), kwargs


async def test_async_twin_matches_sync(provider: Callable[[str], str]) -> None:
    result = await mmsdk.agenerate("a", provider=provider("sd15"), steps=2, seed=7, **SIZE)
    again = mmsdk.generate("a", provider=provider("sd15"), steps=2, seed=7, **SIZE)
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))


def test_cancel_from_another_thread(provider: Callable[[str], str]) -> None:
    event = threading.Event()
    event.set()
    with pytest.raises(GenerationCancelledError, match="before it started"):
        mmsdk.generate("a", provider=provider("sd15"), steps=2,
                       options={"cancel_event": event}, **SIZE)
    event.clear()  # the same event, cleared, lets the next call run
    result = mmsdk.generate("a", provider=provider("sd15"), steps=2,
                            options={"cancel_event": event}, **SIZE)
    assert len(result.images) == 1


def test_cancel_event_must_be_an_event(provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=r"threading\.Event"):
        mmsdk.generate("a", provider=provider("sd15"), options={"cancel_event": "stop"}, **SIZE)


def test_pickle_weights_need_explicit_permission(tmp_path: Path, checkpoints: dict[str, Path],
                                                 raw: Callable[[str], Any]) -> None:
    folder = build_sd15(tmp_path / "pickled", safe_serialization=False)
    with pytest.raises(mmsdk.ProviderUnavailableError, match="allow_pickle"):
        mmsdk.generate("a", provider=f"diffusers:{folder}", steps=2, seed=0, **SIZE)
    result = mmsdk.generate("a", provider=f"diffusers:{folder}", steps=2, seed=0,
                            options={"allow_pickle": True}, **SIZE)
    expected = raw("sd15")("a", num_inference_steps=2, generator=generator(0), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))  # same seed, same weights


def test_variant_option_loads_variant_files(tmp_path: Path, raw: Callable[[str], Any]) -> None:
    folder = build_sd15(tmp_path / "variant", variant="fp16")
    assert list(folder.glob("unet/*.fp16.safetensors"))
    result = mmsdk.generate("a", provider=f"diffusers:{folder}", steps=2, seed=0,
                            options={"variant": "fp16"}, **SIZE)
    expected = raw("sd15")("a", num_inference_steps=2, generator=generator(0), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_dtype_option_reaches_the_weights(provider: Callable[[str], str], fresh: None) -> None:
    import torch

    model = _model(provider("sd15"))
    assert model.pipeline({"dtype": "bfloat16"}).unet.dtype == torch.bfloat16
    assert model.pipeline().unet.dtype == torch.float32  # CPU default, a separate cache entry


@pytest.mark.parametrize("options, message", [
    ({"dtype": "float8"}, "dtype must be one of"),
    ({"device": "gpu"}, "device must be"),
    ({"cpu_offload": True}, "cpu_offload"),
    ({"cpu_offload": "maybe"}, "true or false"),
    ({"hypernetwork": "x"}, "accepted options"),
], ids=["dtype", "device", "offload-on-cpu", "offload-not-bool", "unknown-key"])
def test_bad_options_are_caller_mistakes(options: dict[str, Any], message: str,
                                         provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=message):
        mmsdk.generate("a", provider=provider("sd15"), options=options, **SIZE)


@pytest.mark.parametrize("cuda, family, env, options, expected", [
    (True, "sd", {}, {}, ("cuda", "float16")),
    (True, "sdxl", {}, {}, ("cuda", "float16")),
    (True, "flux", {}, {}, ("cuda", "bfloat16")),
    (False, "flux", {}, {}, ("cpu", "float32")),
    (True, "sd", {"MMSDK_DIFFUSERS_DTYPE": "fp32"}, {}, ("cuda", "float32")),
    (True, "sd", {"MMSDK_DIFFUSERS_DTYPE": "fp32"}, {"dtype": "bf16"}, ("cuda", "bfloat16")),
    (True, "sd", {"MMSDK_DIFFUSERS_DEVICE": "cuda:1"}, {}, ("cuda:1", "float16")),
    (True, "sd", {}, {"device": "cpu"}, ("cpu", "float32")),
], ids=["cuda-sd", "cuda-sdxl", "cuda-flux-bf16", "cpu", "env-dtype", "option-beats-env",
        "env-device", "option-device"])
def test_device_and_dtype_defaults(cuda: bool, family: str, env: dict[str, str],
                                   options: dict[str, Any], expected: tuple[str, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv("MMSDK_DIFFUSERS_DEVICE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings("x", family, options)
    assert (settings.device, settings.dtype) == expected


async def test_preload_loads_the_pipeline_before_the_first_call(
        provider: Callable[[str], str], loads: list[Any], fresh: None) -> None:
    assert await mmsdk.apreload(provider("sd15")) == [provider("sd15")]
    assert len(loads) == 1
    await mmsdk.agenerate("a", provider=provider("sd15"), steps=2, seed=1, **SIZE)
    assert len(loads) == 1  # the first call found it loaded
