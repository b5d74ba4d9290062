"""ControlNet: the canny example, default repos, edge detection, and reuse of the base."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mmsdk_diffusers._control import is_edge_map
from mmsdk_tests_tiny_diffusers import generator, photo, pixels
from PIL import Image

import mmsdk

SIZE = {"width": 64, "height": 64}
PROMPT = "A futuristic glass skyscraper, photorealistic"


def _edges(seed: int = 0) -> Image.Image:
    """White lines on black, like cv2.Canny output."""
    grid = np.zeros((64, 64), dtype=np.uint8)
    rng = np.random.RandomState(seed)
    for _ in range(6):
        grid[rng.randint(0, 64), :] = 255
        grid[:, rng.randint(0, 64)] = 255
    return Image.fromarray(grid)


def _raw_controlnet(raw: Callable[[str], Any], base: str, folder: Path) -> Any:
    from diffusers import AutoPipelineForText2Image, ControlNetModel

    pipe = AutoPipelineForText2Image.from_pipe(raw(base),
                                               controlnet=ControlNetModel.from_pretrained(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_canny_example_computes_edges_like_opencv(checkpoints: dict[str, Path],
                                                  raw: Callable[[str], Any]) -> None:
    """The ControlNet example: a photo, control_type canny, scale 0.8, on local:sd15."""
    import cv2

    reference = photo(7)
    result = mmsdk.generate(PROMPT, provider="local:sd15", control_image=reference,
                            control_type="canny", control_scale=0.8, steps=2, seed=1, **SIZE)
    control_image = Image.fromarray(cv2.Canny(np.array(reference), 100, 200))
    pipe = _raw_controlnet(raw, "sd15", checkpoints["controlnet_sd15"])
    expected = pipe(prompt=PROMPT, image=control_image, num_inference_steps=2,
                    controlnet_conditioning_scale=0.8, generator=generator(1), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


@pytest.mark.parametrize("base", ["sd15", "sdxl"])
def test_named_controlnet_with_an_edge_map_matches_raw(base: str, checkpoints: dict[str, Path],
                                                       provider: Callable[[str], str],
                                                       raw: Callable[[str], Any]) -> None:
    folder = checkpoints[f"controlnet_{base}"]
    result = mmsdk.generate(PROMPT, provider=provider(base), control_image=_edges(),
                            control_type="canny", control_scale=0.8, steps=2, seed=2,
                            options={"controlnet": str(folder)}, **SIZE)
    pipe = _raw_controlnet(raw, base, folder)
    expected = pipe(PROMPT, image=_edges().convert("RGB"), num_inference_steps=2,
                    controlnet_conditioning_scale=0.8, generator=generator(2),
                    **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_control_image_changes_the_output(provider: Callable[[str], str],
                                          checkpoints: dict[str, Path]) -> None:
    def make(control: Image.Image | None) -> np.ndarray:
        extra: dict[str, Any] = {} if control is None else {
            "control_image": control, "options": {"controlnet": str(checkpoints[
                "controlnet_sd15"])}}
        return pixels(mmsdk.generate(PROMPT, provider=provider("sd15"), steps=2, seed=3,
                                     **SIZE, **extra).images[0])

    plain, first, second = make(None), make(_edges(0)), make(_edges(1))
    assert not np.array_equal(first, second)
    assert not np.array_equal(plain, first)


def test_controlnet_pipeline_reuses_the_base_components(provider: Callable[[str], str],
                                                        checkpoints: dict[str, Path],
                                                        loads: list[Any], fresh: None) -> None:
    from mmsdk._registry import get_registry

    model = provider("sd15")
    options = {"controlnet": str(checkpoints["controlnet_sd15"])}
    mmsdk.generate("a", provider=model, steps=2, seed=0, **SIZE)
    for _ in range(2):
        mmsdk.generate("b", provider=model, control_image=_edges(), options=options, steps=2,
                       seed=0, **SIZE)
    mmsdk.generate("c", provider=model, image=photo(1), control_image=_edges(), strength=0.5,
                   options=options, steps=2, seed=0)
    assert len(loads) == 1
    registry = get_registry()
    entry = next(iter(registry.model(registry.resolve(model))._loaded({}).derived.items()))
    (task, _), pipe = entry
    assert (task, type(pipe).__name__) == ("text2img", "StableDiffusionControlNetPipeline")
    base = registry.model(registry.resolve(model)).pipeline()  # type: ignore[attr-defined]
    assert pipe.unet is base.unet and pipe.vae is base.vae


def test_a_controlnet_pipeline_folder_uses_its_own_controlnet(checkpoints: dict[str, Path],
                                                              provider: Callable[[str], str],
                                                              raw: Callable[[str], Any]) -> None:
    """A folder whose model_index.json names a controlnet needs no control_type."""
    def make(control: Image.Image) -> np.ndarray:
        return pixels(mmsdk.generate(PROMPT, provider=provider("controlnet_pipeline"),
                                     control_image=control, control_scale=0.7, steps=2, seed=4,
                                     **SIZE).images[0])

    expected = raw("controlnet_pipeline")(PROMPT, image=_edges().convert("RGB"),
                                          num_inference_steps=2,
                                          controlnet_conditioning_scale=0.7,
                                          generator=generator(4), **SIZE).images[0]
    assert np.array_equal(make(_edges()), pixels(expected))
    assert not np.array_equal(make(_edges()), make(_edges(1)))  # the control image steers it


def test_a_controlnet_pipeline_folder_runs_img2img_with_its_controlnet(
        provider: Callable[[str], str], raw: Callable[[str], Any]) -> None:
    from diffusers import AutoPipelineForImage2Image

    result = mmsdk.generate(PROMPT, provider=provider("controlnet_pipeline"), image=photo(1),
                            strength=0.5, control_image=_edges(), steps=2, seed=5)
    pipe = AutoPipelineForImage2Image.from_pipe(raw("controlnet_pipeline"))
    expected = pipe(PROMPT, image=photo(1), control_image=_edges().convert("RGB"), strength=0.5,
                    num_inference_steps=2, generator=generator(5)).images[0]
    assert type(pipe).__name__ == "StableDiffusionControlNetImg2ImgPipeline"
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_a_controlnet_pipeline_folder_without_control_image_runs_plain_text2img(
        provider: Callable[[str], str], raw: Callable[[str], Any]) -> None:
    result = mmsdk.generate(PROMPT, provider=provider("controlnet_pipeline"), steps=2, seed=6,
                            **SIZE)
    expected = raw("sd15")(PROMPT, num_inference_steps=2, generator=generator(6),
                           **SIZE).images[0]  # the same base components, no ControlNet
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


@pytest.mark.parametrize("picture, expected", [
    (_edges(), True),
    (_edges().convert("RGB"), True),
    (photo(0), False),
    (Image.new("RGB", (64, 64), (200, 30, 30)), False),
    (Image.new("L", (64, 64), 255), False),  # blank white: not mostly black
], ids=["edges-L", "edges-RGB", "photo", "red", "white"])
def test_edge_map_rule(picture: Image.Image, expected: bool) -> None:
    assert is_edge_map(picture) is expected


def test_control_image_without_type_or_controlnet_is_a_caller_mistake(
        provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="control_type"):
        mmsdk.generate("a", provider=provider("sd15"), control_image=_edges(), **SIZE)


def test_control_scale_without_control_image_is_a_caller_mistake(
        provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="control_image"):
        mmsdk.generate("a", provider=provider("sd15"), control_scale=0.5, **SIZE)


def test_no_default_controlnet_for_a_type_names_the_option(provider: Callable[[str], str]
                                                           ) -> None:
    with pytest.raises(mmsdk.CapabilityError, match=r"options=.*controlnet"):
        mmsdk.generate("a", provider=provider("sdxl"), control_image=_edges(),
                       control_type="hologram", **SIZE)


def test_default_controlnet_repo_not_downloaded_fails_with_the_fix(
        provider: Callable[[str], str]) -> None:
    """SDXL canny defaults to diffusers/controlnet-canny-sdxl-1.0, absent from the cache."""
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        mmsdk.generate("a", provider=provider("sdxl"), control_image=_edges(),
                       control_type="canny", **SIZE)
    assert "huggingface-cli download diffusers/controlnet-canny-sdxl-1.0" in str(caught.value)


def test_missing_opencv_says_how_to_install_it(provider: Callable[[str], str],
                                               checkpoints: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(mmsdk.ProviderUnavailableError, match="opencv-python-headless"):
        mmsdk.generate("a", provider=provider("sd15"), control_image=photo(0),
                       control_type="canny", steps=2,
                       options={"controlnet": str(checkpoints["controlnet_sd15"])}, **SIZE)
