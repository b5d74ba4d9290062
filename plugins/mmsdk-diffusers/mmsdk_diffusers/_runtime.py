"""Device, dtype and load settings: chosen sensibly, overridable by options or env.

Defaults: CUDA in float16 (bfloat16 for Flux, which overflows in float16), Apple
MPS in float16, otherwise CPU in float32. ``options={"device": ..., "dtype": ...}``
beat ``MMSDK_DIFFUSERS_DEVICE`` / ``MMSDK_DIFFUSERS_DTYPE``, which beat the
defaults. ``cpu_offload`` (``MMSDK_DIFFUSERS_CPU_OFFLOAD=1``) keeps weights in
RAM and moves each model to the GPU only while it runs (needs accelerate).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmsdk.plugin import InvalidInputError

__all__ = ["LoadSettings", "dtype_kwarg", "flag", "load_settings", "torch_dtype"]

_DTYPES = {
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class LoadSettings:
    """Everything that makes one loaded pipeline different from another (the cache key).

    Attributes:
        location: the folder path or repo id.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...
        dtype: ``"float16"``, ``"bfloat16"`` or ``"float32"``.
        variant: weight file variant (``"fp16"``), or ``None``.
        cpu_offload: ``enable_model_cpu_offload`` instead of moving to the device.
        allow_pickle: accept ``.bin`` / ``.ckpt`` weights (arbitrary code on load).
    """

    location: str
    device: str
    dtype: str
    variant: str | None = None
    cpu_offload: bool = False
    allow_pickle: bool = False


def flag(value: Any, name: str) -> bool:
    """A boolean option that may arrive as a string from the CLI."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInputError(f"options[{name!r}] must be true or false, got {value!r}.")


def _default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _default_dtype(device: str, family: str) -> str:
    if device.startswith("cuda"):
        return "bfloat16" if family == "flux" else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def load_settings(location: str, family: str, options: Mapping[str, Any]) -> LoadSettings:
    """Resolve the load settings for one call from *options*, the environment and defaults."""
    device = str(options.get("device") or os.environ.get("MMSDK_DIFFUSERS_DEVICE")
                 or _default_device()).strip().lower()
    if not _DEVICE.match(device):
        raise InvalidInputError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', "
                                f"got {device!r}.")
    raw_dtype = options.get("dtype") or os.environ.get("MMSDK_DIFFUSERS_DTYPE")
    if raw_dtype:
        dtype = _DTYPES.get(str(raw_dtype).strip().lower().removeprefix("torch."))
        if dtype is None:
            raise InvalidInputError(f"dtype must be one of {sorted(set(_DTYPES))}, "
                                    f"got {raw_dtype!r}.")
    else:
        dtype = _default_dtype(device, family)
    offload = flag(options.get("cpu_offload", os.environ.get("MMSDK_DIFFUSERS_CPU_OFFLOAD", "")),
                   "cpu_offload")
    if offload and device in ("cpu", "mps"):
        raise InvalidInputError("cpu_offload moves models between RAM and a CUDA/XPU device; "
                                f"it does not apply to device {device!r}.")
    variant = options.get("variant")
    return LoadSettings(location=location, device=device, dtype=dtype,
                        variant=str(variant) if variant else None, cpu_offload=offload,
                        allow_pickle=flag(options.get("allow_pickle", False), "allow_pickle"))


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` for a dtype name."""
    import torch

    return getattr(torch, name)


def dtype_kwarg(name: str) -> dict[str, Any]:
    """``{"dtype": ...}`` for ``from_pretrained``; ``torch_dtype`` on diffusers that predate it.

    Recent diffusers renamed ``torch_dtype`` to ``dtype`` and warn on the old name.
    """
    from diffusers.utils import deprecation_utils

    key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    return {key: torch_dtype(name)}
