"""Text to image through the plugin equals the raw diffusers call, pixel for pixel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from mmsdk_tests_tiny_diffusers import generator, pixels

import mmsdk

SIZE = {"width": 64, "height": 64}


@pytest.mark.parametrize("name", ["sd15", "sdxl", "flux"])
def test_folder_checkpoint_matches_raw_diffusers(name: str, provider: Callable[[str], str],
                                                  raw: Callable[[str], Any]) -> None:
    result = mmsdk.generate("a red fox in snow", provider=provider(name), steps=2, guidance=3.0,
                            seed=11, **SIZE)
    expected = raw(name)("a red fox in snow", num_inference_steps=2, guidance_scale=3.0,
                         generator=generator(11), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))
    assert result.provider == provider(name)
    assert result.seed == 11
    assert result.usage.images == 1


def test_sdxl_seed_example_dpm_cfg_negative_prompt(raw: Callable[[str], Any]) -> None:
    """The SDXL example: DPM-Solver, CFG 7.5 and a negative prompt, via local:sdxl."""
    from diffusers import DPMSolverMultistepScheduler

    prompt = "A serene Japanese garden with cherry blossoms, watercolor style"
    negative = "blurry, low quality, distorted"
    result = mmsdk.generate(prompt, provider="local:sdxl", negative_prompt=negative, steps=3,
                            guidance=7.5, scheduler="dpm++", seed=3, size="64x64")
    pipe = raw("sdxl")
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    expected = pipe(prompt=prompt, negative_prompt=negative, num_inference_steps=3,
                    guidance_scale=7.5, generator=generator(3), **SIZE).images[0]
    assert result.provider == "diffusers:stabilityai/stable-diffusion-xl-base-1.0"
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_sdxl_scheduler_is_per_call(raw: Callable[[str], Any]) -> None:
    """A call without scheduler= after a dpm++ call runs the checkpoint's own scheduler."""
    mmsdk.generate("garden", provider="local:sdxl", steps=2, scheduler="dpm++", seed=1, **SIZE)
    result = mmsdk.generate("garden", provider="local:sdxl", steps=2, seed=1, **SIZE)
    expected = raw("sdxl")("garden", num_inference_steps=2, generator=generator(1),
                           **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_flux_schnell_preset_uses_four_steps_and_no_guidance(raw: Callable[[str], Any],
                                                              loads: list[Any]) -> None:
    """The Flux example: local:flux-schnell with no steps/guidance given = 4 steps, guidance 0."""
    prompt = "A cyberpunk cityscape at sunset, neon reflections on wet streets"
    result = mmsdk.generate(prompt, provider="local:flux-schnell", seed=5, **SIZE)
    expected = raw("flux")(prompt=prompt, num_inference_steps=4, guidance_scale=0.0,
                           generator=generator(5), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))
    three = raw("flux")(prompt=prompt, num_inference_steps=3, guidance_scale=0.0,
                        generator=generator(5), **SIZE).images[0]
    assert not np.array_equal(pixels(result.images[0]), pixels(three))


def test_schnell_defaults_follow_the_config_not_the_name(provider: Callable[[str], str],
                                                          raw: Callable[[str], Any]) -> None:
    """A local copy of a guidance-distilled Flux (guidance_embeds False) gets 4 steps too."""
    result = mmsdk.generate("city", provider=provider("flux"), seed=2, **SIZE)
    expected = raw("flux")("city", num_inference_steps=4, guidance_scale=0.0,
                           generator=generator(2), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_sd15_preset_through_the_hub_cache(raw: Callable[[str], Any]) -> None:
    result = mmsdk.generate("a lighthouse", provider="local:sd15", steps=2, seed=8, **SIZE)
    expected = raw("sd15")("a lighthouse", num_inference_steps=2, generator=generator(8),
                           **SIZE).images[0]
    assert result.provider == "diffusers:stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_default_route_is_the_small_cpu_model(raw: Callable[[str], Any]) -> None:
    """provider=None with no keys lands on SD-Turbo: one step, no guidance."""
    result = mmsdk.generate("a teapot", seed=4, **SIZE)
    expected = raw("sd15")("a teapot", num_inference_steps=1, guidance_scale=0.0,
                           generator=generator(4), **SIZE).images[0]
    assert result.provider == "diffusers:stabilityai/sd-turbo"
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_same_seed_same_image_other_seed_other_image(provider: Callable[[str], str]) -> None:
    def make(seed: int) -> np.ndarray:
        return pixels(mmsdk.generate("a boat", provider=provider("sd15"), steps=2, seed=seed,
                                     **SIZE).images[0])

    assert np.array_equal(make(1), make(1))
    assert not np.array_equal(make(1), make(2))


def test_unseeded_call_reports_a_seed_that_reproduces_it(provider: Callable[[str], str]
                                                         ) -> None:
    first = mmsdk.generate("a boat", provider=provider("sd15"), steps=2, **SIZE)
    assert first.seed is not None
    again = mmsdk.generate("a boat", provider=provider("sd15"), steps=2, seed=first.seed,
                           **SIZE)
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))


def test_n_images_match_num_images_per_prompt(provider: Callable[[str], str],
                                              raw: Callable[[str], Any]) -> None:
    result = mmsdk.generate("kites", provider=provider("sd15"), steps=2, seed=6, n=2, **SIZE)
    expected = raw("sd15")("kites", num_inference_steps=2, num_images_per_prompt=2,
                           generator=generator(6), **SIZE).images
    assert len(result.images) == 2
    for got, want in zip(result.images, expected, strict=True):
        assert np.array_equal(pixels(got), pixels(want))


@pytest.mark.parametrize("scheduler, cls", [
    ("euler", "EulerDiscreteScheduler"),
    ("euler_a", "EulerAncestralDiscreteScheduler"),
    ("DDIM", "DDIMScheduler"),
    ("unipc", "UniPCMultistepScheduler"),
    ("DPMSolverMultistepScheduler", "DPMSolverMultistepScheduler"),
], ids=["euler", "euler_a", "ddim", "unipc", "class-name"])
def test_scheduler_names(scheduler: str, cls: str, provider: Callable[[str], str],
                         raw: Callable[[str], Any]) -> None:
    import diffusers

    result = mmsdk.generate("a hill", provider=provider("sd15"), steps=2, seed=0,
                            scheduler=scheduler, **SIZE)
    pipe = raw("sd15")
    pipe.scheduler = getattr(diffusers, cls).from_config(pipe.scheduler.config)
    expected = pipe("a hill", num_inference_steps=2, generator=generator(0), **SIZE).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


def test_unknown_scheduler_lists_the_valid_names(provider: Callable[[str], str],
                                                 loads: list[Any]) -> None:
    with pytest.raises(mmsdk.InvalidInputError) as caught:
        mmsdk.generate("a hill", provider=provider("sd15"), scheduler="warp-drive", **SIZE)
    assert "dpm++" in str(caught.value) and "euler_a" in str(caught.value)
    assert loads == []  # rejected before any weights were read


def test_flux_refuses_a_noise_prediction_scheduler(provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="FlowMatchEulerDiscreteScheduler"):
        mmsdk.generate("city", provider=provider("flux"), scheduler="euler", **SIZE)


def test_progress_bar_follows_the_request(provider: Callable[[str], str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mmsdk._router import Router

    mmsdk.generate("quiet", provider=provider("sd15"), steps=2, seed=0, **SIZE)
    assert "2/2" not in capsys.readouterr().err
    Router(provider("sd15")).generate("loud", steps=2, seed=0, progress=True, **SIZE)
    assert "2/2" in capsys.readouterr().err


def test_flux_negative_prompt_comes_with_a_warning(provider: Callable[[str], str]) -> None:
    """FluxPipeline takes negative_prompt but ignores it without true CFG: say so."""
    result = mmsdk.generate("city", provider=provider("flux"), negative_prompt="fog", seed=0,
                            **SIZE)
    assert any("true CFG" in warning for warning in result.warnings)
