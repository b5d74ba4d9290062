"""Where a checkpoint lives, what it is, and whether it can be loaded here.

Everything in this module is cheap: it reads ``config.json`` (from a local
folder or the Hugging Face cache) and never imports torch or transformers, nor
makes a request. ``huggingface_hub`` is imported inside the functions that
need it, so registering the plugin imports nothing heavy.

The model part of ``transformers:MODEL`` is a local folder (absolute, ``./``,
``../``, ``~`` or an existing directory) or a hub repo id (``ORG/NAME``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mmsdk.plugin import (
    Availability,
    ProviderUnavailableError,
    host_reachable,
    missing_packages,
)

from ._presets import KNOWN_TASKS

__all__ = [
    "CONTRASTIVE_TYPES",
    "SIGMOID_TYPES",
    "Checkpoint",
    "Task",
    "check",
    "ensure_fetchable",
    "guess_task",
    "locate",
    "read_config",
    "task_of",
]

Task = Literal["contrastive", "vlm"]

CONTRASTIVE_TYPES = frozenset({"clip", "siglip", "siglip2"})
"""``model_type`` values served by Classify + Embed (dual encoders)."""

SIGMOID_TYPES = frozenset({"siglip", "siglip2"})
"""Dual encoders trained with a sigmoid loss: their scores are per-label sigmoids."""

INSTALL = "pip install 'mmsdk[local]'"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHTS = (".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint named by a provider string.

    Attributes:
        name: the model part as given (``/models/clip`` or ``openai/clip-vit-base-patch32``).
        path: the folder, for local checkpoints; ``None`` for hub repo ids.
    """

    name: str
    path: Path | None

    @property
    def local(self) -> bool:
        return self.path is not None

    @property
    def source(self) -> str:
        """What ``from_pretrained`` is given."""
        return str(self.path) if self.path is not None else self.name


def locate(model: str) -> Checkpoint:
    """Classify *model* as a local folder or a hub repo id (the way transformers does)."""
    expanded = os.path.expanduser(model)
    explicit = model.startswith(("/", "./", "../", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", model)
    if explicit or os.path.isdir(expanded) or not _REPO_ID.match(model):
        return Checkpoint(model, Path(os.path.abspath(expanded)))
    return Checkpoint(model, None)


# describe() and check() run on every call: remember what the disk said, and re-read
# only when the file changed (a stat per call instead of a parse).
_found_configs: dict[str, Path] = {}
_parsed: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}


def _cached_config(repo_id: str) -> Path | None:
    """``config.json`` of *repo_id* in the Hugging Face cache, or ``None``."""
    known = _found_configs.get(repo_id)
    if known is not None and known.is_file():
        return known
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(found, str):
        return None
    _found_configs[repo_id] = Path(found)
    return Path(found)


def _has_weights(folder: Path) -> bool:
    try:
        return any(entry.name.endswith(_WEIGHTS) for entry in folder.iterdir())
    except OSError:
        return False


def read_config(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The checkpoint's ``config.json`` if it is on disk, else ``None`` (no request)."""
    path = checkpoint.path / "config.json" if checkpoint.path is not None \
        else _cached_config(checkpoint.name)
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    remembered = _parsed.get(path)
    if remembered is not None and remembered[0] == stamp:
        return remembered[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    config = data if isinstance(data, dict) else None
    _parsed[path] = (stamp, config)
    return config


def task_of(checkpoint: Checkpoint, config: dict[str, Any] | None = None) -> Task | None:
    """What the checkpoint does: ``"contrastive"`` (CLIP, SigLIP) or ``"vlm"``; ``None`` if unknown.

    Decided by ``config.json``'s ``model_type`` when the config is on disk,
    else by the preset table. The loader checks the real config again before
    loading weights.
    """
    config = config if config is not None else read_config(checkpoint)
    if config is not None and isinstance(config.get("model_type"), str):
        return "contrastive" if config["model_type"] in CONTRASTIVE_TYPES else "vlm"
    return KNOWN_TASKS.get(checkpoint.name)  # type: ignore[return-value]


def guess_task(checkpoint: Checkpoint) -> Task | None:
    """:func:`task_of`, else a guess from the name for a repo id that can still be downloaded.

    ``None`` means the checkpoint cannot be found here at all (a missing folder,
    or a repo id that is not cached while offline): :func:`check` says why.
    """
    task = task_of(checkpoint)
    if task is not None or checkpoint.local or _offline():
        return task
    lowered = checkpoint.name.lower()
    return "contrastive" if "clip" in lowered or "siglip" in lowered else "vlm"


def _offline() -> bool:
    from huggingface_hub import is_offline_mode

    return bool(is_offline_mode())


def _cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _hub_endpoint() -> tuple[str, int]:
    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    return (endpoint.hostname or "huggingface.co",
            endpoint.port or (443 if endpoint.scheme == "https" else 80))


def _download_fix(repo_id: str) -> str:
    return (f"download it where the network is reachable with `hf download {repo_id}` "
            f"(into HF_HUB_CACHE, now {_cache_dir()}), or unset HF_HUB_OFFLINE, or save the "
            "checkpoint to a folder and use 'transformers:/path/to/folder'")


def check(model: str) -> Availability:
    """Whether ``transformers:MODEL`` can run here. Cheap: file checks only, no request.

    Packages missing → no. Local folder → it must hold ``config.json``. Repo id
    → fine when online (first use downloads it); offline, its config and
    weights must be in the Hugging Face cache.
    """
    missing = missing_packages("torch", "transformers", "huggingface_hub", install="'mmsdk[local]'")
    if not missing.ok:
        return missing
    checkpoint = locate(model)
    if checkpoint.path is not None:
        if not checkpoint.path.is_dir():
            return Availability.no(f"folder {checkpoint.path} does not exist",
                                   "point at a folder written by save_pretrained()")
        if not (checkpoint.path / "config.json").is_file():
            return Availability.no(f"folder {checkpoint.path} has no config.json",
                                   "point at a folder written by save_pretrained() "
                                   "(config.json, weights, processor files)")
        return Availability.yes()
    config = _cached_config(checkpoint.name)
    if config is not None and _has_weights(config.parent):
        return Availability.yes()
    if not _offline():
        if host_reachable(*_hub_endpoint()):
            return Availability.yes()  # first use downloads it
        return Availability.no(f"{checkpoint.name} is not downloaded and the hub "
                               f"({_hub_endpoint()[0]}) cannot be reached",
                               _download_fix(checkpoint.name))
    return Availability.no(
        f"the weights of {checkpoint.name} are not in the Hugging Face cache and "
        "HF_HUB_OFFLINE=1 forbids downloading them", _download_fix(checkpoint.name))


def ensure_fetchable(checkpoint: Checkpoint, provider: str) -> None:
    """Fail fast when a repo id must be downloaded and the hub is unreachable.

    The hub client retries a dead connection for ~20 s; one TCP connect with a
    short timeout answers the same question at once. Skipped for local folders,
    cached checkpoints, offline mode (no request is made then) and behind a proxy
    (the client, not this probe, knows how to go through it).
    """
    if checkpoint.local or _offline():
        return
    config = _cached_config(checkpoint.name)
    if config is not None and _has_weights(config.parent):
        return
    host, port = _hub_endpoint()
    if not host_reachable(host, port):
        raise ProviderUnavailableError(
            f"{provider}: {checkpoint.name} is not downloaded yet and {host}:{port} cannot "
            "be reached.", provider=provider, fix=_download_fix(checkpoint.name))
