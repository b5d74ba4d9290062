"""IP-Adapter: reference images through load_ip_adapter / set_ip_adapter_scale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mmsdk_tests_tiny_diffusers import generator, photo, pixels

import mmsdk

SIZE = {"width": 64, "height": 64}
LAYOUT = {"sd15": ("models", "ip-adapter_sd15.safetensors"),
          "sdxl": ("sdxl_models", "ip-adapter_sdxl.safetensors")}


def _raw_with_adapter(raw: Callable[[str], Any], base: str, folder: Path, scale: float) -> Any:
    pipe = raw(base)
    subfolder, weight = LAYOUT[base]
    pipe.load_ip_adapter(str(folder), subfolder=subfolder, weight_name=weight)
    pipe.set_ip_adapter_scale(scale)
    return pipe


@pytest.mark.parametrize("base", ["sd15", "sdxl"])
def test_reference_image_matches_raw_ip_adapter(base: str, checkpoints: dict[str, Path],
                                                provider: Callable[[str], str],
                                                raw: Callable[[str], Any]) -> None:
    folder = checkpoints["ip_adapter"]
    reference = photo(4)
    result = mmsdk.generate("a portrait", provider=provider(base), reference_image=reference,
                            reference_scale=0.6, steps=2, seed=5,
                            options={"ip_adapter": str(folder)}, **SIZE)
    pipe = _raw_with_adapter(raw, base, folder, 0.6)
    expected = pipe("a portrait", ip_adapter_image=reference, num_inference_steps=2,
                    generator=generator(5), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_default_adapter_comes_from_h94_in_the_cache(raw: Callable[[str], Any],
                                                     checkpoints: dict[str, Path]) -> None:
    """local:sd15 + reference_image with no option loads h94/IP-Adapter (seeded tiny)."""
    reference = photo(8)
    result = mmsdk.generate("a portrait", provider="local:sd15", reference_image=reference,
                            steps=2, seed=1, **SIZE)
    pipe = _raw_with_adapter(raw, "sd15", checkpoints["ip_adapter"], 1.0)
    expected = pipe("a portrait", ip_adapter_image=reference, num_inference_steps=2,
                    generator=generator(1), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_reference_image_and_scale_change_the_output(provider: Callable[[str], str],
                                                     checkpoints: dict[str, Path]) -> None:
    options = {"ip_adapter": str(checkpoints["ip_adapter"])}

    def make(reference: Any, scale: float | None = None) -> np.ndarray:
        return pixels(mmsdk.generate("a portrait", provider=provider("sd15"),
                                     reference_image=reference, reference_scale=scale,
                                     options=options, steps=2, seed=2, **SIZE).images[0])

    assert not np.array_equal(make(photo(1)), make(photo(2)))
    assert not np.array_equal(make(photo(1), 0.2), make(photo(1), 0.9))


def test_a_plain_call_after_a_reference_call_runs_without_the_adapter(
        provider: Callable[[str], str], checkpoints: dict[str, Path],
        raw: Callable[[str], Any]) -> None:
    model = provider("sd15")
    mmsdk.generate("a", provider=model, reference_image=photo(1), steps=2, seed=3,
                   options={"ip_adapter": str(checkpoints["ip_adapter"])}, **SIZE)
    plain = mmsdk.generate("a", provider=model, steps=2, seed=3, **SIZE)
    expected = raw("sd15")("a", num_inference_steps=2, generator=generator(3), **SIZE).images[0]
    assert np.array_equal(pixels(plain.images[0]), pixels(expected))


def test_img2img_with_a_reference_shares_the_adapter(provider: Callable[[str], str],
                                                     checkpoints: dict[str, Path],
                                                     raw: Callable[[str], Any]) -> None:
    """The adapter loaded through text2img serves the img2img pipeline made from it."""
    from diffusers import AutoPipelineForImage2Image

    folder = checkpoints["ip_adapter"]
    model = provider("sd15")
    mmsdk.generate("a", provider=model, reference_image=photo(1), steps=2, seed=3,
                   options={"ip_adapter": str(folder)}, **SIZE)
    result = mmsdk.generate("a", provider=model, image=photo(2), strength=0.5,
                            reference_image=photo(1), options={"ip_adapter": str(folder)},
                            steps=2, seed=3)
    pipe = AutoPipelineForImage2Image.from_pipe(_raw_with_adapter(raw, "sd15", folder, 1.0))
    expected = pipe("a", image=photo(2), strength=0.5, ip_adapter_image=photo(1),
                    num_inference_steps=2, generator=generator(3)).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_flux_has_no_ip_adapter_here(provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="IP-Adapter"):
        mmsdk.generate("a", provider=provider("flux"), reference_image=photo(0), **SIZE)


def test_reference_scale_without_reference_image_is_a_caller_mistake(
        provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="reference_image"):
        mmsdk.generate("a", provider=provider("sd15"), reference_scale=0.5, **SIZE)
