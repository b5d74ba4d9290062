"""Seed a Hugging Face hub cache offline, so repo ids load tiny local checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path


def seed_hub_cache(cache: str | Path, repo_id: str, folder: str | Path,
                   revision: str = "0" * 40) -> Path:
    """Copy *folder* into *cache* as *repo_id*'s ``main`` snapshot; return the snapshot.

    With ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE=cache``, ``from_pretrained(repo_id)``
    (and the plugins' repo-id paths) then load it.
    """
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
