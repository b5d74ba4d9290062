"""Named checkpoints, per-family defaults, and the adapters each family pairs with.

Pure data plus tiny functions: nothing here imports torch or diffusers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALIASES",
    "CONTROLNET_DEFAULTS",
    "DEFAULT_MODEL",
    "IP_ADAPTER_LAYOUT",
    "IP_ADAPTER_REPO",
    "call_defaults",
    "family_of",
]

# The plugin's default generate model, used by ``provider=None`` on a machine
# with no keys. SD-Turbo (stabilityai/sd-turbo) is SD 2.1 distilled to make a
# usable 512x512 image in ONE step without CFG, so on a CPU in float32 a
# picture takes seconds rather than the minutes 25-50 step SD 1.5 needs; its
# ~2.6 GB of safetensors weights also fit a laptop.
DEFAULT_MODEL = "stabilityai/sd-turbo"

ALIASES: Mapping[str, str] = {
    "local:sdxl": "diffusers:stabilityai/stable-diffusion-xl-base-1.0",
    "local:flux-schnell": "diffusers:black-forest-labs/FLUX.1-schnell",
    "local:sd15": "diffusers:stable-diffusion-v1-5/stable-diffusion-v1-5",
    "local:sd-turbo": f"diffusers:{DEFAULT_MODEL}",
}

# Distilled checkpoints whose config does not say so: their own sampling
# settings (one step, no classifier-free guidance) by repo id.
_REPO_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "stabilityai/sd-turbo": {"num_inference_steps": 1, "guidance_scale": 0.0},
    "stabilityai/sdxl-turbo": {"num_inference_steps": 1, "guidance_scale": 0.0},
}

# Flux checkpoints without guidance embeddings (FLUX.1-schnell and its copies)
# are timestep-distilled: 4 steps and no guidance, as Black Forest Labs documents.
_SCHNELL_DEFAULTS: Mapping[str, Any] = {"num_inference_steps": 4, "guidance_scale": 0.0}

# (family, control_type) -> the ControlNet repo used when options names none.
CONTROLNET_DEFAULTS: Mapping[tuple[str, str], str] = {
    ("sd", "canny"): "lllyasviel/control_v11p_sd15_canny",
    ("sd", "depth"): "lllyasviel/control_v11f1p_sd15_depth",
    ("sd", "openpose"): "lllyasviel/control_v11p_sd15_openpose",
    ("sd", "scribble"): "lllyasviel/control_v11p_sd15_scribble",
    ("sd", "softedge"): "lllyasviel/control_v11p_sd15_softedge",
    ("sd", "lineart"): "lllyasviel/control_v11p_sd15_lineart",
    ("sd", "seg"): "lllyasviel/control_v11p_sd15_seg",
    ("sd", "normal"): "lllyasviel/control_v11p_sd15_normalbae",
    ("sd", "mlsd"): "lllyasviel/control_v11p_sd15_mlsd",
    ("sd", "tile"): "lllyasviel/control_v11f1e_sd15_tile",
    ("sdxl", "canny"): "diffusers/controlnet-canny-sdxl-1.0",
    ("sdxl", "depth"): "diffusers/controlnet-depth-sdxl-1.0",
    ("sdxl", "openpose"): "thibaud/controlnet-openpose-sdxl-1.0",
    ("flux", "canny"): "InstantX/FLUX.1-dev-Controlnet-Canny",
    ("flux", "depth"): "Shakker-Labs/FLUX.1-dev-ControlNet-Depth",
}

IP_ADAPTER_REPO = "h94/IP-Adapter"
# family -> (subfolder, weight file) in the h94/IP-Adapter layout; the image
# encoder sits in SUBFOLDER/image_encoder next to the weights.
IP_ADAPTER_LAYOUT: Mapping[str, tuple[str, str]] = {
    "sd": ("models", "ip-adapter_sd15.safetensors"),
    "sdxl": ("sdxl_models", "ip-adapter_sdxl.safetensors"),
}

FAMILY_NAMES: Mapping[str, str] = {
    "sd": "Stable Diffusion 1.x/2.x", "sdxl": "SDXL", "sd3": "Stable Diffusion 3",
    "flux": "Flux", "other": "this pipeline",
}


def family_of(class_name: str) -> str:
    """``"sd"``, ``"sdxl"``, ``"sd3"``, ``"flux"`` or ``"other"`` from a pipeline class name."""
    if class_name.startswith("StableDiffusionXL"):
        return "sdxl"
    if class_name.startswith("StableDiffusion3"):
        return "sd3"
    if class_name.startswith("Flux"):
        return "flux"
    if class_name.startswith("StableDiffusion"):
        return "sd"
    return "other"


def call_defaults(repo_id: str | None, family: str,
                  transformer_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Sampling settings a checkpoint needs that its pipeline's own defaults lack.

    Args:
        repo_id: the hub repo id, or ``None`` for a local folder.
        family: from :func:`family_of`.
        transformer_config: the Flux transformer's config, for schnell detection.
    """
    if repo_id is not None and repo_id in _REPO_DEFAULTS:
        return dict(_REPO_DEFAULTS[repo_id])
    if family == "flux" and transformer_config is not None \
            and not transformer_config.get("guidance_embeds", True):
        return dict(_SCHNELL_DEFAULTS)
    return {}
