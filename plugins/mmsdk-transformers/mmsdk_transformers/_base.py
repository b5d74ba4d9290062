"""What the dual-encoder and VLM model objects share: lazy, cached loading and close()."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from mmsdk.plugin import Model, ModelInfo

from . import _loading
from ._cache import LoadedCache, shared_cache
from ._checkpoint import Checkpoint, Task
from ._loading import Loaded, LoadOptions

__all__ = ["TransformersModel"]


class TransformersModel(Model):
    """A checkpoint served in process. Weights load on first use, not when the object is made.

    The registry builds one object per provider string under its own lock, so
    loading there would stall every other provider; loading here, per call,
    goes through :data:`shared_cache` and happens once per load options.
    """

    task: Task

    def __init__(self, provider: str, info: ModelInfo, checkpoint: Checkpoint,
                 cache: LoadedCache | None = None) -> None:
        super().__init__(provider, info)
        self.checkpoint = checkpoint
        self.cache = cache or shared_cache

    def _key(self, options: LoadOptions) -> Hashable:
        return (self.checkpoint.source, self.task, options)

    def loaded(self, options: Mapping[str, Any]) -> Loaded:
        """The model and processor for these call options, loading them if needed."""
        load_options = LoadOptions.parse(options).resolved(self.task, self.provider)
        return self.cache.get(self._key(load_options), lambda: _loading.load_checkpoint(
            self.checkpoint, self.task, load_options, self.provider))

    def close(self) -> None:
        """Drop every loaded copy of this checkpoint and free its memory."""
        source = self.checkpoint.source
        self.cache.drop(lambda key: isinstance(key, tuple) and key[:2] == (source, self.task))
