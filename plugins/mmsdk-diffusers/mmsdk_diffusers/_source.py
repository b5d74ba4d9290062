"""Where a checkpoint's weights live, and whether they can be had without waiting.

A model name is a local folder (``/models/my-sdxl``, ``./sd``, ``~/ckpt``, or
any existing directory) or a Hugging Face repo id (``ORG/NAME``). Everything
here is cheap: it reads small JSON files from disk and, only when the hub is
neither cached nor declared offline, makes one short TCP connect to learn
whether the hub is reachable at all. That is how a missing checkpoint fails in
milliseconds instead of after huggingface-hub's ~20 s retry loop.

The hub cache directory and offline mode are read from the environment at
call time (``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``), not frozen when
huggingface-hub is first imported, so changing them in a running process works.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmsdk.plugin import Availability, host_reachable

__all__ = [
    "Source",
    "availability",
    "download_fix",
    "has_pickle_weights",
    "hub_cache_dir",
    "hub_offline",
    "hub_reachable",
    "local_files_only",
    "parse_source",
    "read_json",
]

INSTALL = "'mmsdk[local]'"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Source:
    """A checkpoint location: a local folder or a hub repo id.

    Attributes:
        name: the model part of the provider string, as given.
        path: the folder, for local checkpoints.
        repo_id: the repo id, for hub checkpoints.
    """

    name: str
    path: Path | None = None
    repo_id: str | None = None

    @property
    def local(self) -> bool:
        return self.path is not None

    @property
    def location(self) -> str:
        """What ``from_pretrained`` receives: the folder path or the repo id."""
        return str(self.path) if self.path is not None else str(self.repo_id)


def parse_source(name: str) -> Source:
    """Classify *name* as a folder or a repo id, the way diffusers does.

    An existing directory is a folder even without a leading ``/``; a name that
    starts like a path (``/``, ``.``, ``~``) is a folder even if it is missing.
    """
    text = name.strip()
    expanded = Path(text).expanduser()
    if text.startswith(("/", ".", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text) \
            or expanded.is_dir():
        return Source(name=name, path=expanded.resolve())
    return Source(name=name, repo_id=text)


def hub_cache_dir() -> str:
    """The hub cache in force now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else the default."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return str(Path(explicit).expanduser())
    home = os.environ.get("HF_HOME")
    if home:
        return str(Path(home).expanduser() / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() / "huggingface" if xdg else Path.home() / ".cache" / "huggingface"
    return str(base / "hub")


def hub_offline() -> bool:
    """Whether downloads are disabled (``HF_HUB_OFFLINE`` now, or when the hub was imported)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _endpoint() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable() -> bool:
    """One quick TCP connect to the hub endpoint, remembered for a minute."""
    return host_reachable(*_endpoint())


def cached_file(repo_id: str, filename: str) -> Path | None:
    """The cached copy of *filename* in *repo_id*'s ``main`` snapshot, or ``None``."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir())
    except Exception:  # a malformed repo id: simply not cached
        return None
    return Path(found) if isinstance(found, str) else None


def has_pickle_weights(source: Source) -> bool:
    """Whether the checkpoint on disk (folder or cached snapshot) holds pickle weights."""
    root = source.path
    if root is None:
        index = cached_file(str(source.repo_id), "model_index.json")
        root = index.parent if index is not None else None
    if root is None or not root.is_dir():
        return False
    return any(next(root.rglob(pattern), None) is not None
               for pattern in ("*.bin", "*.ckpt", "*.pt", "*.pth"))


def local_files_only(source: Source) -> bool:
    """Whether loading must stay on disk: a folder, offline mode, or an unreachable hub."""
    return source.local or hub_offline() or not hub_reachable()


def download_fix(source: Source) -> str:
    """The exact step that puts *source*'s weights on this machine."""
    if source.local:
        return (f"point at a folder that holds a diffusers pipeline (model_index.json), e.g. "
                f"one written by pipe.save_pretrained('{source.name}')")
    offline = ", or unset HF_HUB_OFFLINE" if hub_offline() else ""
    return (f"run `huggingface-cli download {source.repo_id}` (or `hf download "
            f"{source.repo_id}`) on a machine with network access and the same HF_HUB_CACHE "
            f"({hub_cache_dir()}){offline}, or use diffusers:/path/to/a/local/folder")


def read_json(source: Source, filename: str) -> dict[str, Any] | None:
    """A small JSON file of the checkpoint, from the folder or the hub cache; no download."""
    path = (source.path / filename) if source.path is not None else \
        cached_file(str(source.repo_id), filename)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def availability(model: str) -> Availability:
    """Whether *model* can load here; cheap, and never waits on the network for long."""
    from mmsdk.plugin import missing_packages

    packages = missing_packages("torch", "diffusers", "transformers", install=INSTALL)
    if not packages.ok:
        return packages
    source = parse_source(model)
    if source.path is not None:
        if not source.path.is_dir():
            return Availability.no(f"folder {source.path} does not exist", download_fix(source))
        if not (source.path / "model_index.json").is_file():
            return Availability.no(f"{source.path} has no model_index.json, so it is not a "
                                   "diffusers pipeline folder", download_fix(source))
        return Availability.yes()
    if not _REPO_ID.match(str(source.repo_id)):
        return Availability.no(f"{model!r} is neither an existing folder nor a hub repo id "
                               "like 'ORG/NAME'", "name a repo id or a folder that exists")
    if cached_file(str(source.repo_id), "model_index.json") is not None:
        return Availability.yes()
    if hub_offline():
        return Availability.no(f"{source.repo_id} is not in the Hugging Face cache and "
                               "HF_HUB_OFFLINE=1 forbids downloading it", download_fix(source))
    if not hub_reachable():
        host = _endpoint()[0]
        return Availability.no(f"{source.repo_id} is not in the Hugging Face cache and {host} "
                               "cannot be reached", download_fix(source))
    return Availability.yes()
