"""LoRA: diffusers-format LoRA weights, loaded once per pipeline and switched per call.

``options={"lora": ..., "lora_scale": 0.7}`` names a LoRA by folder, weight
file, hub repo id (``ORG/NAME``) or hub file (``ORG/NAME/file.safetensors``).
The adapter layers live in the shared UNet / transformer and text encoders, so,
like the IP-Adapter, they belong to a :class:`~mmsdk_diffusers._pipelines.Loaded`
and serve every pipeline derived from it. Each LoRA is loaded once (the last
:data:`MAX_LORAS` are kept) under its own adapter name; a call activates its
LoRA with ``set_adapters`` and a call without one disables the LoRA layers,
which then return the base layers' output exactly. Safetensors only unless
``allow_pickle`` is set.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsdk.plugin import CapabilityError, InvalidInputError

from ._pipelines import Loaded
from ._runtime import flag
from ._source import cached_file, hub_cache_dir, local_files_only, parse_source

__all__ = ["MAX_LORAS", "LoraSpec", "apply_lora", "lora_spec"]

MAX_LORAS = 4
LORA_FILE = "pytorch_lora_weights.safetensors"  # the name save_lora_weights writes
_SAFE = (".safetensors",)
_PICKLE = (".bin", ".pt", ".pth", ".ckpt")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# adapter names are unique in the process, so an evicted name is never reused
_SERIAL = itertools.count()


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA to run with.

    Attributes:
        location: a folder path or a hub repo id.
        weight_name: the weight file in it (``None``: let diffusers pick).
        local: *location* is a folder on this machine.
        scale: the adapter weight for ``set_adapters``.
        allow_pickle: accept ``.bin`` weights.
    """

    location: str
    weight_name: str | None
    local: bool
    scale: float
    allow_pickle: bool = False

    @property
    def key(self) -> str:
        """Which weights these are (the scale is set per call, not loaded)."""
        return f"{self.location}::{self.weight_name or ''}"


def _scale(value: Any) -> float:
    if value is None:
        return 1.0
    try:
        if isinstance(value, bool):
            raise TypeError
        scale = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"options['lora_scale'] must be a number, got {value!r}.") \
            from None
    if not math.isfinite(scale):
        raise InvalidInputError(f"options['lora_scale'] must be finite, got {value!r}.")
    return scale


def _weights_in(folder: Path, allow_pickle: bool) -> str | None:
    """The weight file diffusers should read from *folder* (``None``: it guesses)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    safe = [n for n in names if n.endswith(_SAFE)]
    if LORA_FILE in safe:
        return LORA_FILE
    if len(safe) == 1:
        return safe[0]
    if safe:
        return None
    pickle = [n for n in names if n.endswith(_PICKLE)]
    if pickle and allow_pickle:
        return pickle[0] if len(pickle) == 1 else None
    hint = " (it holds only pickle weights: allow them with options={'allow_pickle': True} " \
        "if you trust them)" if pickle else ""
    raise InvalidInputError(f"options['lora']: {folder} holds no .safetensors LoRA weights{hint}.")


def lora_spec(options: Mapping[str, Any]) -> LoraSpec | None:
    """The LoRA *options* ask for, checked without loading anything (``None``: no LoRA).

    Raises:
        InvalidInputError: a bad ``lora`` / ``lora_scale``, or a path that does not exist.
    """
    named = options.get("lora")
    if named is None or named == "":
        if options.get("lora_scale") is not None:
            raise InvalidInputError("options['lora_scale'] needs options['lora'].")
        return None
    if not isinstance(named, (str, os.PathLike)):
        raise InvalidInputError("options['lora'] must be a folder, a weight file or a hub repo "
                                f"id, got {type(named).__name__}.")
    scale = _scale(options.get("lora_scale"))
    allow_pickle = flag(options.get("allow_pickle", False), "allow_pickle")
    text = os.fspath(named).strip()
    path = Path(text).expanduser()
    if path.is_file():
        if not path.name.endswith(_SAFE) and not allow_pickle:
            raise InvalidInputError(
                f"options['lora']: {path} is not a .safetensors file; if you trust it, allow "
                "pickle weights with options={'allow_pickle': True}.")
        path = path.resolve()
        return LoraSpec(str(path.parent), path.name, True, scale, allow_pickle)
    parts = text.split("/")
    if len(parts) >= 3 and parts[-1].endswith(_SAFE + _PICKLE) and \
            _REPO_ID.match("/".join(parts[:2])) and not path.parent.is_dir():
        weight = "/".join(parts[2:])  # ORG/NAME/file.safetensors on the hub
        if not weight.endswith(_SAFE) and not allow_pickle:
            raise InvalidInputError(f"options['lora']: {text} is not a .safetensors file; if "
                                    "you trust it, allow options={'allow_pickle': True}.")
        return LoraSpec("/".join(parts[:2]), weight, False, scale, allow_pickle)
    source = parse_source(text)
    if source.path is not None or text.endswith(_SAFE + _PICKLE):
        folder = source.path or path
        if not folder.is_dir():
            raise InvalidInputError(f"options['lora']: {text} does not exist (give a LoRA "
                                    "folder, a .safetensors file or a hub repo id).")
        return LoraSpec(str(folder), _weights_in(folder, allow_pickle), True, scale,
                        allow_pickle)
    if not _REPO_ID.match(text):
        raise InvalidInputError(f"options['lora']: {text!r} is neither an existing folder or "
                                "file nor a hub repo id like 'ORG/NAME'.")
    # offline, diffusers cannot list a repo to guess its weight file: use the usual name
    guess = LORA_FILE if cached_file(text, LORA_FILE) is not None else None
    return LoraSpec(text, guess, False, scale, allow_pickle)


def _require_peft() -> None:
    import diffusers.utils

    # peft missing or too old; _errors maps this to "pip install peft"
    if not getattr(diffusers.utils, "USE_PEFT_BACKEND", False):
        raise ImportError("LoRA needs peft (and a recent transformers)", name="peft")


def _load(entry: Loaded, pipe: Any, spec: LoraSpec) -> str:
    """Load *spec* under a new adapter name, making room first; returns the name."""
    while len(entry.loras) >= MAX_LORAS:
        _, old = entry.loras.popitem(last=False)
        pipe.delete_adapters(old)
    name = f"mmsdk_lora_{next(_SERIAL)}"
    # None: prefer safetensors, fall back to pickle; True: safetensors or fail
    kwargs: dict[str, Any] = {"adapter_name": name,
                              "use_safetensors": None if spec.allow_pickle else True}
    if spec.weight_name:
        kwargs["weight_name"] = spec.weight_name
    if not spec.local:
        kwargs |= {"cache_dir": hub_cache_dir(),
                   "local_files_only": local_files_only(parse_source(spec.location))}
    try:
        pipe.load_lora_weights(spec.location, **kwargs)
    except Exception as exc:
        _forget(pipe, name)  # a half-loaded adapter would stay active in some layers
        if spec.local and not isinstance(exc, ImportError):
            where = os.path.join(spec.location, spec.weight_name or "")
            raise InvalidInputError(f"options['lora']: {where} is not a diffusers-format LoRA "
                                    f"this checkpoint can load: {exc}") from exc
        raise
    entry.loras[spec.key] = name
    return name


def _forget(pipe: Any, name: str) -> None:
    with contextlib.suppress(Exception):  # nothing (or not all) was injected: best effort
        pipe.delete_adapters(name)


def apply_lora(entry: Loaded, pipe: Any, spec: LoraSpec | None) -> None:
    """Make *pipe* run with the LoRA *spec* at its scale, or with no LoRA (``None``).

    Call with ``entry.lock`` held. Adapter state lives in the modules every
    pipeline of *entry* shares, so it is set on every call, whichever pipeline runs.

    Raises:
        CapabilityError: this pipeline class cannot load LoRA weights.
        InvalidInputError: a local LoRA that does not fit this checkpoint.
    """
    if spec is None:
        if entry.loras:
            pipe.disable_lora()
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise CapabilityError(f"{type(pipe).__name__} cannot load LoRA weights.")
    _require_peft()
    known = entry.loras.get(spec.key)
    if known is None:
        name = _load(entry, pipe, spec)
    else:
        name = known
        entry.loras.move_to_end(spec.key)
    pipe.enable_lora()
    pipe.set_adapters([name], adapter_weights=[spec.scale])
