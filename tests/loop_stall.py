"""Measure how long mmsdk's async calls stall an event loop, in a fresh process.

Run as a script (tests start it in a subprocess, so the first call really is
the first: nothing imported yet but what an app imports at start-up)::

    python tests/loop_stall.py CAPABILITY PROVIDER IMAGE [IMAGE ...]
    python tests/loop_stall.py --imports MODULE [MODULE ...]   # the same imports alone

A ticker task sleeps 2 ms at a time and records the longest gap between its
wake-ups while the first call, three warm calls and ``aunload()`` run. Prints
one JSON object: ``{"first": s, "warm": s, "unload": s, "answers": [...],
"imported": [modules the first call imported]}``.
A loop that never blocks shows gaps of a few milliseconds; a blocking import,
decode or load shows up as a gap of its whole duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import time
from typing import Any


class Ticker:
    """Records the longest stretch the loop went without running this task."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0.01)
        self.longest = 0.0
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.sleep(0.01)
        assert self._task is not None
        self._task.cancel()


async def _call(capability: str, provider: str, images: list[str]) -> Any:
    import mmsdk

    if capability == "understand":
        return (await mmsdk.aunderstand("Describe it.", images=images, provider=provider)).text
    if capability == "classify":
        return (await mmsdk.aclassify(images[0], ["cat", "dog"], provider=provider)).top[0]
    if capability == "embed":
        return (await mmsdk.aembed(images=images, provider=provider)).image_vectors.shape[0]
    raise SystemExit(f"unknown capability {capability}")


async def _main(capability: str, provider: str, images: list[str]) -> dict[str, Any]:
    import mmsdk

    answers = []
    before = set(sys.modules)
    async with Ticker() as first:
        answers.append(await _call(capability, provider, images))
    imported = [name for name in sys.modules if name not in before]
    async with Ticker() as warm:
        for _ in range(3):
            answers.append(await _call(capability, provider, images))
    async with Ticker() as unload:
        await mmsdk.aunload()
    return {"first": first.longest, "warm": warm.longest, "unload": unload.longest,
            "answers": answers, "imported": imported}


async def _imports(modules: list[str]) -> dict[str, Any]:
    """The baseline: the stall of importing *modules* in a worker thread, nothing else.

    Some imports hold the GIL however they are run (``import torch`` loads
    libtorch, ~0.15 s here): no library can keep the loop from feeling those.
    """
    def load() -> None:
        for module in modules:  # in the order the measured call imported them
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    async with Ticker() as ticker:
        await asyncio.to_thread(load)
    return {"imports": ticker.longest}


if __name__ == "__main__":
    if sys.argv[1] == "--imports":
        print(json.dumps(asyncio.run(_imports(sys.argv[2:]))))
        raise SystemExit
    import mmsdk._registry

    mmsdk._registry.get_registry()  # an app imports mmsdk's entry points at start-up
    print(json.dumps(asyncio.run(_main(sys.argv[1], sys.argv[2], sys.argv[3:]))))
