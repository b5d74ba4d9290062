"""LoRA: options={"lora": ..., "lora_scale": ...} through load_lora_weights / set_adapters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mmsdk_tests_tiny_diffusers import build_lora, generator, photo, pixels

import mmsdk

pytest.importorskip("peft", reason="LoRA needs mmsdk-diffusers[lora]")

SIZE = {"width": 64, "height": 64}


@pytest.fixture(scope="module")
def lora(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LoRA for the tiny SD 1.5 UNet, in diffusers' format."""
    return build_lora(checkpoints["sd15"], tmp_path_factory.mktemp("lora") / "sd15-lora")


@pytest.fixture
def lora_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The adapter names the plugin loads LoRA weights under (a spy on load_lora_weights)."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin

    seen: list[str] = []
    real = StableDiffusionLoraLoaderMixin.load_lora_weights

    def spy(self: Any, source: Any, adapter_name: str | None = None, **kwargs: Any) -> Any:
        seen.append(str(adapter_name))
        return real(self, source, adapter_name=adapter_name, **kwargs)

    monkeypatch.setattr(StableDiffusionLoraLoaderMixin, "load_lora_weights", spy)
    return seen


def _raw_with_lora(raw: Callable[[str], Any], folder: Path, scale: float) -> Any:
    pipe = raw("sd15")
    pipe.load_lora_weights(str(folder), adapter_name="test")
    pipe.set_adapters(["test"], adapter_weights=[scale])
    return pipe


def _make(provider: Callable[[str], str], seed: int = 4, **options: Any) -> np.ndarray:
    result = mmsdk.generate("a lighthouse", provider=provider("sd15"), steps=2, seed=seed,
                            options=options, **SIZE)
    return pixels(result.images[0])


def test_lora_matches_raw_and_a_later_plain_call_runs_without_it(
        provider: Callable[[str], str], raw: Callable[[str], Any], lora: Path) -> None:
    with_lora = _make(provider, lora=str(lora), lora_scale=0.7)
    plain_after = _make(provider)
    expected = _raw_with_lora(raw, lora, 0.7)("a lighthouse", num_inference_steps=2,
                                              generator=generator(4), **SIZE).images[0]
    plain = raw("sd15")("a lighthouse", num_inference_steps=2, generator=generator(4),
                        **SIZE).images[0]
    assert np.array_equal(with_lora, pixels(expected))
    assert not np.array_equal(with_lora, pixels(plain))
    assert np.array_equal(plain_after, pixels(plain))


def test_a_lora_is_loaded_once_and_its_scale_set_per_call(
        fresh: None, provider: Callable[[str], str], lora: Path, lora_loads: list[str]) -> None:
    weak = _make(provider, lora=str(lora), lora_scale=0.2)
    strong = _make(provider, lora=str(lora / "pytorch_lora_weights.safetensors"),
                   lora_scale=1.0)
    again = _make(provider, lora=str(lora), lora_scale=0.2)
    # the folder and its weight file name the same weights: one load, three calls
    assert len(lora_loads) == 1 and lora_loads[0].startswith("mmsdk_lora_")
    assert not np.array_equal(weak, strong)
    assert np.array_equal(weak, again)


def test_img2img_shares_the_lora_with_text2img(provider: Callable[[str], str],
                                               raw: Callable[[str], Any], lora: Path) -> None:
    """The adapter in the shared UNet serves the from_pipe img2img pipeline, then goes off."""
    from diffusers import AutoPipelineForImage2Image

    model = provider("sd15")
    options = {"lora": str(lora), "lora_scale": 0.7}
    mmsdk.generate("a", provider=model, steps=2, seed=3, options=options, **SIZE)
    result = mmsdk.generate("a", provider=model, image=photo(2), strength=0.5, steps=2, seed=3,
                            options=options)
    plain_img2img = mmsdk.generate("a", provider=model, image=photo(2), strength=0.5, steps=2,
                                   seed=3)
    pipe = AutoPipelineForImage2Image.from_pipe(_raw_with_lora(raw, lora, 0.7))
    expected = pipe("a", image=photo(2), strength=0.5, num_inference_steps=2,
                    generator=generator(3)).images[0]
    plain = AutoPipelineForImage2Image.from_pipe(raw("sd15"))(
        "a", image=photo(2), strength=0.5, num_inference_steps=2, generator=generator(3)).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))
    assert np.array_equal(pixels(plain_img2img.images[0]), pixels(plain))


@pytest.mark.parametrize(("options", "match"), [
    ({"lora": "/no/such/lora"}, "/no/such/lora"),
    ({"lora": "./missing-lora.safetensors"}, "missing-lora"),
    ({"lora": "not a repo id"}, "not a repo id"),
    ({"lora_scale": 0.5}, "lora_scale"),
    ({"lora": "ORG/NAME", "lora_scale": "strong"}, "lora_scale"),
], ids=["missing-folder", "missing-file", "bad-repo-id", "scale-without-lora", "bad-scale"])
def test_bad_lora_options_are_invalid_input(options: dict[str, Any], match: str,
                                            provider: Callable[[str], str],
                                            loads: list[Any]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=match):
        mmsdk.generate("a", provider=provider("sd15"), options=options, **SIZE)
    assert loads == []  # refused before any pipeline was loaded


def test_a_folder_without_lora_weights_is_invalid_input(provider: Callable[[str], str],
                                                        tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no weights here")
    with pytest.raises(mmsdk.InvalidInputError, match=str(tmp_path)):
        mmsdk.generate("a", provider=provider("sd15"), options={"lora": str(tmp_path)}, **SIZE)


def test_weights_that_are_not_a_lora_are_invalid_input(provider: Callable[[str], str],
                                                       checkpoints: dict[str, Path],
                                                       raw: Callable[[str], Any]) -> None:
    """A safetensors file of ordinary weights (a UNet) is named in the error."""
    unet = checkpoints["sd15"] / "unet"
    with pytest.raises(mmsdk.InvalidInputError, match="not a diffusers-format LoRA"):
        mmsdk.generate("a", provider=provider("sd15"), steps=1, options={"lora": str(unet)},
                       **SIZE)
    # the failed load left nothing active behind
    plain = raw("sd15")("a lighthouse", num_inference_steps=2, generator=generator(4),
                        **SIZE).images[0]
    assert np.array_equal(_make(provider), pixels(plain))


def test_missing_peft_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                          provider: Callable[[str], str], lora: Path) -> None:
    import diffusers.utils

    monkeypatch.setattr(diffusers.utils, "USE_PEFT_BACKEND", False)
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        mmsdk.generate("a", provider=provider("sd15"), options={"lora": str(lora)}, **SIZE)
    assert "pip install peft" in str(caught.value.fix)


def test_a_hub_lora_loads_from_the_cache_offline(provider: Callable[[str], str], lora: Path,
                                                 hub_cache: Path) -> None:
    """``ORG/NAME`` and ``ORG/NAME/file.safetensors`` resolve in the offline hub cache."""
    from hub_cache import seed_hub_cache

    seed_hub_cache(hub_cache, "someone/tiny-sd15-lora", lora)
    local = _make(provider, lora=str(lora), lora_scale=0.7)
    assert np.array_equal(_make(provider, lora="someone/tiny-sd15-lora", lora_scale=0.7), local)
    named = "someone/tiny-sd15-lora/pytorch_lora_weights.safetensors"
    assert np.array_equal(_make(provider, lora=named, lora_scale=0.7), local)


def test_the_oldest_lora_is_dropped_past_the_bound(monkeypatch: pytest.MonkeyPatch,
                                                   fresh: None, provider: Callable[[str], str],
                                                   lora: Path, hub_cache: Path,
                                                   lora_loads: list[str]) -> None:
    from hub_cache import seed_hub_cache
    from mmsdk_diffusers import _lora

    monkeypatch.setattr(_lora, "MAX_LORAS", 1)
    seed_hub_cache(hub_cache, "someone/tiny-sd15-lora", lora)
    local = _make(provider, lora=str(lora))
    hub = _make(provider, lora="someone/tiny-sd15-lora")
    again = _make(provider, lora=str(lora))
    assert len(lora_loads) == 3  # each load evicted the other adapter
    assert np.array_equal(local, hub) and np.array_equal(local, again)
    from mmsdk_diffusers import DiffusersModel, describe

    folder = provider("sd15").removeprefix("diffusers:")
    pipe = DiffusersModel(provider("sd15"), describe(folder), folder).pipeline()  # the cached one
    assert pipe.get_list_adapters()["unet"] == [lora_loads[-1]]
