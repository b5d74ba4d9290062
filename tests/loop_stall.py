"""Measure how long mmsdk's async calls stall an event loop, in a fresh process.

Run as a script (tests start it in a subprocess, so the first call really is
the first: nothing imported yet but what an app imports at start-up)::

    python tests/loop_stall.py CAPABILITY PROVIDER IMAGE [IMAGE ...]

A ticker task sleeps 2 ms at a time and records the longest gap between its
wake-ups while the first call, three warm calls and ``aunload()`` run. Prints
one JSON object: ``{"first": s, "warm": s, "unload": s, "answers": [...]}``.
A loop that never blocks shows gaps of a few milliseconds; a blocking import,
decode or load shows up as a gap of its whole duration.
"""

from __future__ import annotations

import asyncio
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
    async with Ticker() as first:
        answers.append(await _call(capability, provider, images))
    async with Ticker() as warm:
        for _ in range(3):
            answers.append(await _call(capability, provider, images))
    async with Ticker() as unload:
        await mmsdk.aunload()
    return {"first": first.longest, "warm": warm.longest, "unload": unload.longest,
            "answers": answers}


if __name__ == "__main__":
    import mmsdk._registry

    mmsdk._registry.get_registry()  # an app imports mmsdk's entry points at start-up
    print(json.dumps(asyncio.run(_main(sys.argv[1], sys.argv[2], sys.argv[3:]))))
