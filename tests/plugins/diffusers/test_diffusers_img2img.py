"""img2img and inpainting reuse the loaded components and match diffusers' own pipelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from mmsdk_tests_tiny_diffusers import generator, photo, pixels
from PIL import Image

import mmsdk
from mmsdk._registry import get_registry

SIZE = {"width": 64, "height": 64}


def _mask() -> Image.Image:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    return Image.fromarray(mask)


@pytest.mark.parametrize("name", ["sd15", "sdxl", "flux"])
def test_img2img_matches_auto_pipeline_from_pipe(name: str, provider: Callable[[str], str],
                                                 raw: Callable[[str], Any]) -> None:
    from diffusers import AutoPipelineForImage2Image

    init = photo(1)
    result = mmsdk.generate("an oil painting", provider=provider(name), image=init,
                            strength=0.5, steps=4, seed=9)
    pipe = AutoPipelineForImage2Image.from_pipe(raw(name))
    extra = SIZE if name == "flux" else {}  # Flux img2img asks for a size; SD takes the image's
    expected = pipe("an oil painting", image=init, strength=0.5, num_inference_steps=4,
                    generator=generator(9), **extra).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_inpainting_matches_auto_pipeline_from_pipe(name: str, provider: Callable[[str], str],
                                                    raw: Callable[[str], Any]) -> None:
    from diffusers import AutoPipelineForInpainting

    init = photo(2)
    result = mmsdk.generate("a window", provider=provider(name), image=init, mask=_mask(),
                            steps=2, seed=4, **SIZE)
    pipe = AutoPipelineForInpainting.from_pipe(raw(name))
    expected = pipe("a window", image=init, mask_image=_mask(), num_inference_steps=2,
                    generator=generator(4), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_tasks_share_one_load_and_the_same_unet(provider: Callable[[str], str],
                                                loads: list[Any], fresh: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """text2img, img2img and inpainting of one checkpoint: one from_pretrained, one UNet."""
    import diffusers

    made: list[Any] = []
    for auto in (diffusers.AutoPipelineForImage2Image, diffusers.AutoPipelineForInpainting):
        real = auto.from_pipe

        def spy(pipeline: Any, _real: Any = real, **kwargs: Any) -> Any:
            made.append(_real(pipeline, **kwargs))
            return made[-1]

        monkeypatch.setattr(auto, "from_pipe", spy)
    model = provider("sd15")
    mmsdk.generate("a", provider=model, steps=2, seed=0, **SIZE)
    mmsdk.generate("b", provider=model, image=photo(0), strength=0.6, steps=2, seed=0)
    mmsdk.generate("c", provider=model, image=photo(0), mask=_mask(), steps=2, seed=0)
    mmsdk.generate("d", provider=model, image=photo(3), strength=0.6, steps=2, seed=0)
    assert len(loads) == 1
    assert [type(p).__name__ for p in made] == ["StableDiffusionImg2ImgPipeline",
                                                "StableDiffusionInpaintPipeline"]
    registry = get_registry()
    base = registry.model(registry.resolve(model)).pipeline()  # type: ignore[attr-defined]
    assert all(p.unet is base.unet and p.vae is base.vae and p.text_encoder is base.text_encoder
               for p in made)


def test_img2img_size_resizes_the_input_for_sd(provider: Callable[[str], str]) -> None:
    """SD img2img takes its size from the image, so width/height resize the input."""
    result = mmsdk.generate("a", provider=provider("sd15"), image=photo(0, (64, 64)),
                            strength=0.5, steps=2, seed=0, width=96, height=64)
    assert result.images[0].size == (96, 64)


def test_strength_changes_the_picture(provider: Callable[[str], str]) -> None:
    def make(strength: float) -> np.ndarray:
        return pixels(mmsdk.generate("a", provider=provider("sd15"), image=photo(5),
                                     strength=strength, steps=4, seed=0).images[0])

    assert not np.array_equal(make(0.3), make(0.9))
