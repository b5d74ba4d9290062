"""What the dual-encoder and VLM model objects share: lazy, cached, bounded loading and close().

Bounds: routing gives each attempt ``request.deadline`` (set when the attempt
starts) and ``request.cancel`` (set when nobody wants the answer any more).
Waiting for another call's load of the same checkpoint, loading, and waiting
for a busy model all count against the deadline: a call queued behind a busy
model fails with :class:`ProviderTimeoutError` when its time is up, and a
cancelled one stops there with :class:`CancelledError`.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

from mmsdk.plugin import Model, ModelInfo, Request

from . import _loading
from ._cache import LoadedCache, shared_cache
from ._checkpoint import Checkpoint, Task
from ._loading import Loaded, LoadOptions

__all__ = ["TransformersModel", "bounded"]

R = TypeVar("R", bound=Request)


def bounded(request: R) -> R:
    """*request* with its deadline: routing's, or its ``timeout`` counted from now."""
    if request.deadline is None and request.timeout is not None:
        return request.model_copy(update={"deadline": time.monotonic() + request.timeout})
    return request


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

    def loaded(self, options: Mapping[str, Any], request: Request | None = None) -> Loaded:
        """The model and processor for these call options, loading them if needed.

        With *request*, waiting for another call's load gives up at its deadline
        or cancel, and a load that outlasts the deadline ends the attempt.
        """
        load_options = LoadOptions.parse(options).resolved(self.task, self.provider)
        hold = (lambda lock: request.holding(lock, self.provider)) if request else None
        loaded = self.cache.get(self._key(load_options), lambda: _loading.load_checkpoint(
            self.checkpoint, self.task, load_options, self.provider), hold=hold)
        if request is not None:
            request.raise_if_stopped(self.provider, "loading the model")
        return loaded

    def preload(self) -> None:
        """Load the weights with the default load options (:func:`mmsdk.preload`)."""
        self.loaded({})

    def close(self) -> None:
        """Drop every loaded copy of this checkpoint and free its memory."""
        source = self.checkpoint.source
        self.cache.drop(lambda key: isinstance(key, tuple) and key[:2] == (source, self.task))
