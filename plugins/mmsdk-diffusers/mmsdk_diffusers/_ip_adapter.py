"""IP-Adapter: which weights to load, and keeping every pipeline of a checkpoint in step.

The adapter lives inside the shared UNet (its attention processors), so it is
per :class:`~mmsdk_diffusers._pipelines.Loaded`, not per pipeline: loading it
through one pipeline changes them all, and the CLIP image encoder it brings is
handed to the sibling pipelines too. A call without ``reference_image`` after
one with it unloads the adapter (an IP-Adapter UNet requires image embeddings),
so alternating pays a reload of the small adapter weights, never of the base.
"""

from __future__ import annotations

from typing import Any

from mmsdk.plugin import CapabilityError

from ._pipelines import Loaded
from ._presets import FAMILY_NAMES, IP_ADAPTER_LAYOUT, IP_ADAPTER_REPO
from ._source import hub_cache_dir, local_files_only, parse_source

__all__ = ["apply_ip_adapter", "ip_adapter_spec"]

AdapterSpec = tuple[str, str, str]  # (location, subfolder, weight file)


def ip_adapter_spec(family: str, named: Any) -> AdapterSpec:
    """The adapter for this family: the one *named* in options, else ``h94/IP-Adapter``.

    A named folder may use the public layout (``models/ip-adapter_sd15.safetensors``,
    ``sdxl_models/ip-adapter_sdxl.safetensors``) or hold the weight file at its top.

    Raises:
        CapabilityError: the family has no IP-Adapter support here.
    """
    layout = IP_ADAPTER_LAYOUT.get(family)
    if layout is None:
        raise CapabilityError(
            f"reference_image (IP-Adapter) is supported for Stable Diffusion 1.x and SDXL "
            f"checkpoints, not {FAMILY_NAMES.get(family, family)} ones.")
    subfolder, weight = layout
    source = parse_source(str(named) if named else IP_ADAPTER_REPO)
    if source.path is not None and not (source.path / subfolder / weight).is_file() \
            and (source.path / weight).is_file():
        subfolder = ""
    return source.location, subfolder, weight


def _share_encoder(entry: Loaded, owner: Any) -> None:
    """Give every pipeline of *entry* the image encoder *owner* holds (or none)."""
    for pipe in entry.pipelines():
        if pipe is owner or not hasattr(pipe, "image_encoder"):
            continue
        pipe.register_modules(image_encoder=owner.image_encoder)
        if getattr(pipe, "feature_extractor", None) is None and \
                getattr(owner, "feature_extractor", None) is not None:
            pipe.register_modules(feature_extractor=owner.feature_extractor)


def apply_ip_adapter(entry: Loaded, pipe: Any, spec: AdapterSpec | None,
                     scale: float | None) -> None:
    """Make *pipe* run with the adapter *spec* (``None``: without any) at *scale*.

    Call with ``entry.lock`` held.
    """
    if entry.ip_adapter is not None and entry.ip_adapter != spec:
        pipe.unload_ip_adapter()
        entry.ip_adapter = entry.ip_adapter_scale = None
        _share_encoder(entry, pipe)
    if spec is None:
        return
    if entry.ip_adapter is None:
        location, subfolder, weight = spec
        source = parse_source(location)
        kwargs: dict[str, Any] = {} if source.local else {
            "cache_dir": hub_cache_dir(), "local_files_only": local_files_only(source)}
        pipe.load_ip_adapter(location, subfolder=subfolder, weight_name=weight, **kwargs)
        entry.ip_adapter = spec
        _share_encoder(entry, pipe)
    wanted = 1.0 if scale is None else scale
    if entry.ip_adapter_scale != wanted:  # the scale lives in the shared UNet's processors
        pipe.set_ip_adapter_scale(wanted)
        entry.ip_adapter_scale = wanted
