"""A video answered in chunks: more sampled frames than a provider takes per request.

Each chunk is one request holding the caller's images plus that chunk's frames,
with their timestamps in the prompt; one more request then combines the partial
answers into the final one (it carries ``schema`` when the call has one). All of
it happens inside one attempt on one provider: the limit is that provider's.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypeGuard

from ._requests import UnderstandRequest
from ._types import UnderstandResult, Usage
from ._video import frames_note

__all__ = ["aanswer_in_chunks", "answer_in_chunks", "chunked"]


def chunked(request: Any) -> TypeGuard[UnderstandRequest]:
    """Whether *request* holds more video frames than its provider takes per request."""
    per = getattr(request, "frames_per_request", None)
    return isinstance(request, UnderstandRequest) and per is not None and \
        len(request.frame_times) > per


def answer_in_chunks(model: Any, request: UnderstandRequest) -> UnderstandResult:
    """One request per chunk of frames, then one that combines their answers (sync)."""
    parts: list[UnderstandResult] = []
    for part in _parts(request):
        request.raise_if_stopped(model.provider, "answering a video in chunks")
        parts.append(model.understand(part))
    request.raise_if_stopped(model.provider, "answering a video in chunks")
    return _merge(model.understand(_combining(request, parts)), parts)


async def aanswer_in_chunks(model: Any, request: UnderstandRequest) -> UnderstandResult:
    """Async twin of :func:`answer_in_chunks`: the chunks are asked concurrently."""
    parts = list(await asyncio.gather(*(model.aunderstand(part) for part in _parts(request))))
    request.raise_if_stopped(model.provider, "answering a video in chunks")
    return _merge(await model.aunderstand(_combining(request, parts)), parts)


def _groups(request: UnderstandRequest) -> list[range]:
    """Frame index ranges, one per chunk, as even as possible."""
    total = len(request.frame_times)
    per = request.frames_per_request or total
    count = math.ceil(total / per)
    bounds = [round(i * total / count) for i in range(count + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(count)]


def _video_name(request: UnderstandRequest) -> str:
    frame = request.images[len(request.images) - len(request.frame_times)]
    return frame.sent.source.rsplit(" frame ", 1)[0]


def _parts(request: UnderstandRequest) -> list[UnderstandRequest]:
    own = len(request.images) - len(request.frame_times)
    frames, times = request.images[own:], request.frame_times
    name, groups = _video_name(request), _groups(request)
    parts = []
    for number, group in enumerate(groups, 1):
        note = frames_note(name, times[group.start:group.stop], first=group.start + 1,
                           total=len(times), trailing=own > 0)
        prompt = (f"{note}\nThis is part {number} of {len(groups)} of the video; answer from "
                  "these frames only: the parts' answers are combined afterwards.\n\n"
                  f"{request.prompt}")
        parts.append(request.model_copy(update={
            "prompt": prompt, "images": request.images[:own] + frames[group.start:group.stop],
            "frame_times": times[group.start:group.stop], "frames_per_request": None,
            "response_schema": None, "stream": False}))
    return parts


def _combining(request: UnderstandRequest, parts: list[UnderstandResult]) -> UnderstandRequest:
    own = len(request.images) - len(request.frame_times)
    times, groups = request.frame_times, _groups(request)
    answers = "\n\n".join(
        f"Part {number} (frames {group.start + 1}-{group.stop}, {times[group.start]:.1f} s to "
        f"{times[group.stop - 1]:.1f} s): {part.text.strip()}"
        for number, (group, part) in enumerate(zip(groups, parts, strict=True), 1))
    prompt = (f"The video {_video_name(request)} was sampled as {len(times)} frames, too many "
              f"for one request, so it was shown in {len(groups)} parts and each part was "
              f"answered on its own:\n\n{answers}\n\nCombine these into one answer about the "
              f"whole video to this request:\n\n{request.prompt}")
    return request.model_copy(update={"prompt": prompt, "images": request.images[:own],
                                      "frame_times": [], "frames_per_request": None})


def _merge(final: UnderstandResult, parts: list[UnderstandResult]) -> UnderstandResult:
    """The combining answer, with the usage of every request that made it."""
    results = [*parts, final]
    totals: dict[str, Any] = {}
    for name in Usage.model_fields:
        values = [getattr(r.usage, name) for r in results if getattr(r.usage, name) is not None]
        totals[name] = sum(values) if values else None
    final.usage = Usage(**totals)
    for part in parts:
        final.warnings += [w for w in part.warnings if w not in final.warnings]
    return final
