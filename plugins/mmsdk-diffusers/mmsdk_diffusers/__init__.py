"""mmsdk provider ``diffusers``: local image generation with Hugging Face diffusers.

Provider strings name any diffusers checkpoint by hub repo id or local folder::

    import mmsdk

    mmsdk.generate("a watercolor garden", provider="diffusers:stabilityai/stable-diffusion-xl-base-1.0",
                   negative_prompt="blurry", steps=30, guidance=7.5, scheduler="dpm++", seed=1)
    mmsdk.generate("neon city", provider="local:flux-schnell")      # 4 steps, guidance 0
    mmsdk.generate("glass tower", provider="local:sd15", control_image="building.jpg",
                   control_type="canny", control_scale=0.8)         # edges computed for you
    mmsdk.generate("a cat", provider="local:sd15",
                   options={"lora": "/loras/pixel-art", "lora_scale": 0.7})
    mmsdk.generate("a cat", provider="diffusers:/models/my-sd15", reference_image="style.png")

Presets: ``local:sdxl``, ``local:flux-schnell``, ``local:sd15`` and
``local:sd-turbo`` (the default generate model: one step, fine on a CPU).

``options={...}`` keys: ``controlnet`` and ``ip_adapter`` (repo id or folder),
``lora`` (a diffusers-format LoRA: folder, ``.safetensors`` file, hub repo id
or ``ORG/NAME/file.safetensors``; needs ``pip install 'mmsdk-diffusers[lora]'``)
and ``lora_scale`` (its weight, default 1.0),
``device`` (``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"``), ``dtype``
(``"float16"``, ``"bfloat16"``, ``"float32"``), ``variant`` (``"fp16"``),
``cpu_offload`` (needs accelerate and a GPU), ``allow_pickle`` (accept
non-safetensors weights: they can run code when loaded), and
``cancel_event`` (a ``threading.Event``; set it to stop the call at the next
step with :class:`GenerationCancelledError`).

Environment: ``MMSDK_DIFFUSERS_DEVICE``, ``MMSDK_DIFFUSERS_DTYPE``,
``MMSDK_DIFFUSERS_CPU_OFFLOAD``, ``MMSDK_DIFFUSERS_MAX_PIPELINES`` (loaded
pipelines kept, default 2), plus huggingface-hub's ``HF_HUB_CACHE`` /
``HF_HOME`` / ``HF_HUB_OFFLINE``, read at call time.

Importing this module imports neither torch nor diffusers.
"""

from __future__ import annotations

from typing import Any

from mmsdk.plugin import Capability, Feature, MediaLimits, ModelInfo, ProviderSpec, hookimpl

from ._errors import GenerationCancelledError
from ._model import DiffusersModel
from ._presets import ALIASES, DEFAULT_MODEL
from ._source import availability

__all__ = ["DEFAULT_MODEL", "OPTIONS", "DiffusersModel", "GenerationCancelledError",
           "describe", "register_aliases", "register_providers"]

NAME = "diffusers"
SUPPORTS = frozenset({
    Feature.NEGATIVE_PROMPT, Feature.WIDTH, Feature.HEIGHT, Feature.STEPS, Feature.GUIDANCE,
    Feature.SEED, Feature.SCHEDULER, Feature.IMAGE, Feature.STRENGTH, Feature.MASK,
    Feature.CONTROL_IMAGE, Feature.CONTROL_TYPE, Feature.CONTROL_SCALE, Feature.REFERENCE_IMAGE,
    Feature.REFERENCE_SCALE, Feature.N,
})
OPTIONS = frozenset({
    "controlnet", "ip_adapter", "device", "dtype", "variant", "cpu_offload", "allow_pickle",
    "cancel_event", "lora", "lora_scale",
})
MAX_N = 8
# Inputs are resized in process (limits.formats empty: PIL images as given),
# but not beyond what a diffusion model can sensibly take.
LIMITS = MediaLimits(max_long_edge=2048)


INFO = ModelInfo(supports=SUPPORTS, options=OPTIONS, limits=LIMITS, max_n=MAX_N, local=True,
                 cost_hint=0.0, speed_hint=3.0)


def describe(model: str) -> ModelInfo:
    """The same parameters for every checkpoint; cheap (reads nothing)."""
    return INFO


def _factory(model: str, provider: str, info: ModelInfo) -> DiffusersModel:
    return DiffusersModel(provider, info, model)


@hookimpl
def register_providers(register: Any) -> None:
    """Register the ``diffusers`` provider."""
    register(ProviderSpec(
        name=NAME,
        model_class=DiffusersModel,  # Generate: its mixin is its capability
        factory=_factory,
        describe=describe,
        default_models={Capability.GENERATE: DEFAULT_MODEL},
        check=availability,
        description=("Local image generation with diffusers (SD 1.5, SDXL, Flux, ControlNet, "
                     "IP-Adapter) from the Hugging Face cache or a folder; fast on a GPU, "
                     "works on a CPU but slowly"),
    ))


@hookimpl
def register_aliases(register: Any) -> None:
    """Register ``local:sdxl``, ``local:flux-schnell``, ``local:sd15`` and ``local:sd-turbo``."""
    for alias, target in ALIASES.items():
        register(alias, target)
