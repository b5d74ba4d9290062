"""ControlNet: which one to load, how to load it, and canny edges for ordinary photos.

Canny rule: with ``control_type="canny"`` the control image is used as given
when it already looks like an edge map, otherwise its edges are computed with
``cv2.Canny(pixels, 100, 200)`` (the thresholds of the diffusers and
ControlNet examples). An image counts as an edge map when all of these hold:

* it is grey: mode ``L``/``1``, or R, G and B within 8 levels of each other at
  99% of the pixels or more;
* it is two-tone: 95% or more of the pixels are dark (<= 32) or bright (>= 223);
* it is mostly black: 50% or more of the pixels are dark (edges are thin lines).

Other control types (depth, openpose, ...) expect a ready-made map.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from mmsdk.plugin import CapabilityError, InvalidInputError

from ._presets import CONTROLNET_DEFAULTS, FAMILY_NAMES
from ._runtime import dtype_kwarg
from ._source import Source, local_files_only, parse_source, read_json

__all__ = ["controlnet_source", "is_edge_map", "load_controlnet", "prepare_control_image"]

_GREY_TOLERANCE = 8
_GREY_SHARE = 0.99
_TWO_TONE_SHARE = 0.95
_DARK, _BRIGHT = 32, 223
_BLACK_SHARE = 0.5


def is_edge_map(image: Image.Image) -> bool:
    """Whether *image* already looks like a canny edge map (see the module docstring)."""
    import numpy as np

    if image.mode in ("L", "1"):
        grey = np.asarray(image.convert("L"), dtype=np.int16)
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        if (spread <= _GREY_TOLERANCE).mean() < _GREY_SHARE:
            return False
        grey = rgb.mean(axis=2)
    dark = (grey <= _DARK).mean()
    bright = (grey >= _BRIGHT).mean()
    return bool(dark + bright >= _TWO_TONE_SHARE and dark >= _BLACK_SHARE)


def canny(image: Image.Image) -> Image.Image:
    """Canny edges (100/200) of *image*, as an RGB image of white lines on black."""
    import cv2  # imported here: only canny preprocessing needs OpenCV
    import numpy as np

    edges = cv2.Canny(np.asarray(image.convert("RGB")), 100, 200)
    return Image.fromarray(edges).convert("RGB")


def prepare_control_image(image: Image.Image, control_type: str | None) -> Image.Image:
    """The control image the ControlNet receives."""
    if control_type == "canny" and not is_edge_map(image):
        return canny(image)
    return image.convert("RGB")


def controlnet_source(family: str, control_type: str | None, named: Any) -> Source:
    """The ControlNet to use: the one *named* in options, else this family's default.

    Raises:
        InvalidInputError: neither a name nor a control type was given.
        CapabilityError: no default ControlNet exists for this family and type.
    """
    if named:
        return parse_source(str(named))
    if not control_type:
        raise InvalidInputError("control_image needs control_type= (e.g. 'canny', 'depth') or "
                                "options={'controlnet': REPO_OR_DIR} naming a ControlNet.")
    repo = CONTROLNET_DEFAULTS.get((family, control_type.strip().lower()))
    if repo is None:
        known = sorted(t for f, t in CONTROLNET_DEFAULTS if f == family)
        raise CapabilityError(
            f"No default {control_type!r} ControlNet for {FAMILY_NAMES.get(family, family)} "
            f"checkpoints (defaults exist for: {', '.join(known) or 'none'}); name one with "
            "options={'controlnet': REPO_OR_DIR}.")
    return parse_source(repo)


def load_controlnet(source: Source, family: str, dtype: str, device: str | None,
                    allow_pickle: bool, cache_dir: str) -> Any:
    """Load a ControlNet model; the class comes from its ``config.json`` when it names one."""
    import diffusers

    config = read_json(source, "config.json") or {}
    default = "FluxControlNetModel" if family == "flux" else \
        "SD3ControlNetModel" if family == "sd3" else "ControlNetModel"
    cls: Any = getattr(diffusers, str(config.get("_class_name", default)), None)
    if not isinstance(cls, type) or not issubclass(cls, diffusers.ModelMixin):
        cls = getattr(diffusers, default)
    # None: prefer safetensors, fall back to pickle; True: safetensors or fail
    kwargs: dict[str, Any] = {**dtype_kwarg(dtype),
                              "use_safetensors": None if allow_pickle else True}
    if not source.local:
        kwargs |= {"cache_dir": cache_dir, "local_files_only": local_files_only(source)}
    model = cls.from_pretrained(source.location, **kwargs)
    return model.to(device) if device else model
