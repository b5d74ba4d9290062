"""Counting a local model's forward passes, so bounds tests assert counts, never speed.

The diffusers and transformers bounds tests hook a tiny model's module (a UNet
runs one forward per denoising step, a VLM one per generated token, a dual
encoder one per batch) and act at a chosen forward: cancel, pass a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mmsdk._registry import get_registry


def loaded_model(provider: str) -> Any:
    """The model object the registry holds for *provider* (built if needed)."""
    registry = get_registry()
    return registry.model(registry.resolve(provider))


class Forwards:
    """A forward hook that counts forwards and runs an action at a chosen one."""

    def __init__(self) -> None:
        self.count = 0
        self.actions: dict[int, Callable[[], None]] = {}

    def at(self, forward: int, action: Callable[[], None]) -> None:
        self.actions[forward] = action

    def __call__(self, *_: Any) -> None:
        self.count += 1
        action = self.actions.pop(self.count, None)
        if action is not None:
            action()


@contextmanager
def counting(module: Any) -> Iterator[Forwards]:
    """A :class:`Forwards` hooked on the torch *module* while the block runs."""
    counter = Forwards()
    handle = module.register_forward_hook(counter)
    try:
        yield counter
    finally:
        handle.remove()
