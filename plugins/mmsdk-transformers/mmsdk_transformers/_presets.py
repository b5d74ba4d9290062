"""Built-in presets: the ``local:*`` aliases and the default model per capability.

Nothing here imports torch: registration must stay cheap. Whether a GPU is
present is guessed from the device files the NVIDIA driver creates (or asked
of torch when something already imported it).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from mmsdk.plugin import Capability

__all__ = ["ALIASES", "KNOWN_TASKS", "default_models", "gpu_present"]

CLIP_LARGE = "openai/clip-vit-large-patch14"
CLIP_SMALL = "openai/clip-vit-base-patch32"
SIGLIP = "google/siglip-so400m-patch14-384"
LLAVA_NEXT = "llava-hf/llava-v1.6-mistral-7b-hf"
LLAVA_15 = "llava-hf/llava-1.5-7b-hf"
LLAVA_SMALL = "llava-hf/llava-interleave-qwen-0.5b-hf"
SMOLVLM = "HuggingFaceTB/SmolVLM-256M-Instruct"

ALIASES: dict[str, str] = {
    "local:clip": CLIP_LARGE,
    "local:clip-small": CLIP_SMALL,
    "local:siglip": SIGLIP,
    "local:llava": LLAVA_NEXT,
    "local:llava-1.5": LLAVA_15,
    "local:llava-small": LLAVA_SMALL,
    "local:smolvlm": SMOLVLM,
}
"""Alias → hub repo id (the transformers provider's model part)."""

KNOWN_TASKS: dict[str, str] = {
    CLIP_LARGE: "contrastive",
    CLIP_SMALL: "contrastive",
    SIGLIP: "contrastive",
    LLAVA_NEXT: "vlm",
    LLAVA_15: "vlm",
    LLAVA_SMALL: "vlm",
    SMOLVLM: "vlm",
}
"""What the presets are, for describing them before their config is downloaded."""


def gpu_present() -> bool:
    """Whether a CUDA GPU is likely usable here, without importing torch.

    True when the NVIDIA driver's device files exist and torch is a CUDA build.

    Apple MPS counts as no GPU for the defaults: a 7B VLM rarely fits beside
    everything else in unified memory, so the small presets are the safer default.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    driver = os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")
    return driver and _torch_has_cuda()


def _torch_has_cuda() -> bool:
    """Whether the installed torch is a CUDA build: it ships its CUDA library (no import)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    lib = os.path.join(next(iter(spec.submodule_search_locations)), "lib")
    return any(os.path.exists(os.path.join(lib, name))
               for name in ("libtorch_cuda.so", "torch_cuda.dll"))


def default_models(gpu: bool | None = None) -> dict[Capability, str]:
    """The model a bare ``"transformers"`` means: big presets on a GPU, small ones on CPU.

    The small VLM is LLaVA-Interleave 0.5B (SigLIP + Qwen, ~0.9B parameters):
    a plain LLaVA that loads with transformers' PIL image processors. SmolVLM
    (``local:smolvlm``) is smaller, but its processor needs torchvision and
    num2words, which a CPU-only install often lacks.
    """
    if gpu is None:
        gpu = gpu_present()
    contrastive = CLIP_LARGE if gpu else CLIP_SMALL
    return {
        Capability.CLASSIFY: contrastive,
        Capability.EMBED: contrastive,
        Capability.UNDERSTAND: LLAVA_NEXT if gpu else LLAVA_SMALL,
    }
