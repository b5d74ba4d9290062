"""Step counts a scheduler cannot run are caller mistakes, found before the first step.

Without the check they fail deep inside diffusers (an ``IndexError`` at the
first or the last step, NaN images), as a ``ProviderError`` that sends routing
on to the next provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from mmsdk_diffusers import _schedulers
from mmsdk_diffusers._schedulers import dry_run, make_scheduler
from mmsdk_tests_tiny_diffusers import generator, photo, pixels

import mmsdk
from mmsdk._registry import get_registry

SIZE = {"width": 64, "height": 64}


def _model(provider: str) -> Any:
    registry = get_registry()
    return registry.model(registry.resolve(provider))


@pytest.fixture
def unet_calls(provider: Callable[[str], str]) -> Iterator[list[int]]:
    """One entry per UNet forward of the tiny SD 1.5 (text2img, img2img, inpainting share it)."""
    calls: list[int] = []
    handle = _model(provider("sd15")).pipeline().unet.register_forward_hook(
        lambda *_: calls.append(1))
    yield calls
    handle.remove()


@pytest.mark.parametrize(("scheduler", "steps"), [
    (None, 1000),  # PNDM, leading spacing, offset 1: index 1000 of a 1000-entry table
    ("ddim", 1000),
    ("dpm++", 1000),  # fails at the very last step
    ("dpm++", 999),  # runs, but every timestep repeats: NaN
    ("unipc", 1000),  # an AssertionError inside the solver
], ids=["pndm-1000", "ddim-1000", "dpm++-1000", "dpm++-999-nan", "unipc-1000"])
def test_too_many_steps_for_the_scheduler_is_invalid_input(
        scheduler: str | None, steps: int, provider: Callable[[str], str],
        unet_calls: list[int]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=f"steps={steps}"):
        mmsdk.generate("a", provider=provider("sd15"), steps=steps, scheduler=scheduler,
                       seed=0, **SIZE)
    assert unet_calls == []  # caught before the first step


def test_too_many_steps_does_not_fall_back(provider: Callable[[str], str]) -> None:
    """A caller mistake: the next provider in the list is not tried."""
    with pytest.raises(mmsdk.InvalidInputError) as caught:
        mmsdk.generate("a", provider=[provider("sd15"), provider("sdxl")], steps=1000,
                       scheduler="ddim", seed=0, **SIZE)
    assert [attempt.provider for attempt in caught.value.attempts] == [provider("sd15")]


@pytest.mark.parametrize(("scheduler", "steps"), [
    (None, 999), ("ddim", 999), ("dpm++", 998), ("euler", 1000), ("heun", 1000),
    ("dpm++_karras", 1000), ("euler_a", 1),
], ids=["pndm-999", "ddim-999", "dpm++-998", "euler-1000", "heun-1000", "karras-1000",
        "euler_a-1"])
def test_step_counts_the_scheduler_can_run_pass(scheduler: str | None, steps: int,
                                                provider: Callable[[str], str]) -> None:
    own = _model(provider("sd15")).pipeline().scheduler
    chosen = make_scheduler(scheduler, own, "StableDiffusionPipeline") if scheduler else own
    assert dry_run(chosen, steps) is None


def test_the_dry_run_leaves_the_scheduler_untouched_and_runs_once(
        provider: Callable[[str], str], raw: Callable[[str], Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real = _schedulers.dry_run
    monkeypatch.setattr(_schedulers, "dry_run", lambda s, n: runs.append(n) or real(s, n))

    first = mmsdk.generate("a", provider=provider("sd15"), steps=3, seed=1, **SIZE)
    again = mmsdk.generate("a", provider=provider("sd15"), steps=3, seed=1, **SIZE)

    expected = raw("sd15")("a", num_inference_steps=3, generator=generator(1), **SIZE).images[0]
    assert np.array_equal(pixels(first.images[0]), pixels(expected))
    assert np.array_equal(pixels(again.images[0]), pixels(expected))
    assert runs.count(3) <= 1  # memoised per scheduler and step count


@pytest.mark.parametrize(("name", "kwargs"), [
    ("sd15", {"steps": 1, "strength": 0.5}),
    ("sd15", {"steps": 1}),  # the pipeline's default strength, 0.8
    ("sd15", {"steps": 3, "strength": 0.3}),  # int(0.9) == 0
    ("sdxl", {"steps": 1, "strength": 0.5}),
    ("sd15-inpaint", {"steps": 1, "strength": 0.5}),
], ids=["sd15", "sd15-default-strength", "sd15-rounding", "sdxl", "sd15-inpaint"])
def test_strength_that_leaves_no_step_is_invalid_input(name: str, kwargs: dict[str, Any],
                                                       provider: Callable[[str], str]) -> None:
    base = name.removesuffix("-inpaint")
    mask = {"mask": photo(3)} if name.endswith("-inpaint") else {}
    with pytest.raises(mmsdk.InvalidInputError, match="no denoising step") as caught:
        mmsdk.generate("a", provider=provider(base), image=photo(1), seed=0, **mask, **kwargs)
    assert "steps=" in caught.value.message  # says how many would do


def test_flux_runs_one_step_at_any_strength(provider: Callable[[str], str]) -> None:
    result = mmsdk.generate("a", provider=provider("flux"), image=photo(1), steps=1,
                            strength=0.5, seed=0)
    assert len(result.images) == 1


def test_a_distilled_default_is_raised_to_leave_one_step(raw: Callable[[str], Any]) -> None:
    """SD-Turbo's one default step times the default strength 0.8 would leave none: 2 run."""
    from diffusers import AutoPipelineForImage2Image

    result = mmsdk.generate("a", provider="local:sd-turbo", image=photo(1), seed=2)
    pipe = AutoPipelineForImage2Image.from_pipe(raw("sd15"))
    expected = pipe("a", image=photo(1), num_inference_steps=2, guidance_scale=0.0,
                    generator=generator(2)).images[0]
    assert np.array_equal(pixels(result.images[0]), pixels(expected))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"width": 65, "height": 64}, "divisible by 8"),
    ({"size": "64x60"}, "divisible by 8"),
], ids=["width", "size"])
def test_sizes_the_pipeline_rejects_are_invalid_input(kwargs: dict[str, Any], match: str,
                                                      provider: Callable[[str], str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=match):
        mmsdk.generate("a", provider=provider("sd15"), steps=1, seed=0, **kwargs)
