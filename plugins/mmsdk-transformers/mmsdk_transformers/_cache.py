"""Loaded checkpoints, kept for reuse across calls: a small LRU shared by the process.

At most ``MMSDK_TRANSFORMERS_MAX_LOADED`` (default 3) model + processor pairs
stay loaded; loading another evicts the least recently used. A key is loaded
once even when many threads ask for it at the same moment (one lock per key;
the others wait for that load rather than starting their own).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any

from ._loading import Loaded

__all__ = ["LoadedCache", "free_memory", "shared_cache"]


def free_memory() -> None:
    """Hand a dropped model's GPU memory back to the driver now.

    On a GPU that means a full ``gc.collect()`` (cycles may still hold
    tensors) and ``empty_cache()``. On CPU, reference counting frees the
    weights and Python's own collector gets the rest: a forced full
    collection would hold the GIL for ~150 ms and stall every event loop in
    the process (``aunload()`` runs this in a worker thread, but the GIL is shared).
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


class LoadedCache:
    """An LRU of :class:`Loaded` checkpoints keyed by (checkpoint, task, load options)."""

    def __init__(self, capacity: int = 3) -> None:
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[Hashable, Loaded] = OrderedDict()
        self._loading: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, load: Callable[[], Loaded],
            hold: Callable[[threading.Lock], AbstractContextManager[Any]] | None = None) -> Loaded:
        """The entry for *key*, calling *load* only if it is not loaded yet.

        *hold* says how to wait for another thread loading the same key (default:
        as long as it takes); a request's ``holding`` gives up at its deadline.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
            key_lock = self._loading.setdefault(key, threading.Lock())
        with hold(key_lock) if hold is not None else key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:  # another thread loaded it while this one waited
                    self._entries.move_to_end(key)
                    return entry
            try:
                entry = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._entries[key] = entry
                self._loading.pop(key, None)
                evicted = []
                while len(self._entries) > self.capacity:
                    evicted.append(self._entries.popitem(last=False)[1])
        if evicted:
            del evicted
            free_memory()
        return entry

    def drop(self, match: Callable[[Hashable], bool]) -> int:
        """Forget every entry whose key satisfies *match*; returns how many went."""
        with self._lock:
            keys = [key for key in self._entries if match(key)]
            for key in keys:
                del self._entries[key]
        if keys:
            free_memory()
        return len(keys)


def _capacity() -> int:
    try:
        return int(os.environ.get("MMSDK_TRANSFORMERS_MAX_LOADED", "3"))
    except ValueError:
        return 3


shared_cache = LoadedCache(_capacity())
"""The process-wide cache every transformers model object loads through."""
