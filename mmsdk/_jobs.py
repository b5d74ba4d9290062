"""One call's work, independent of which provider ends up doing it.

A :class:`Job` holds the validated request and the decoded media. For each
candidate provider, :meth:`Job.bind` checks that the provider can honour the
call (capability, first-class options, ``options`` keys, image count), runs
``prepare()`` on every image for that provider's limits, and returns the
request that provider receives. A candidate that cannot honour the call raises
:class:`Skip`, which routing records without making a call.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ._chunks import aanswer_in_chunks, answer_in_chunks, chunked
from ._errors import (
    CapabilityError,
    InvalidInputError,
    MMSDKError,
    OutputValidationError,
    ProviderUnavailableError,
)
from ._media import LoadedImage
from ._model import Classify, Embed, Generate, Model, StreamEvent, Understand
from ._prepare import prepare_all
from ._registry import Resolved
from ._requests import Request, UnderstandRequest
from ._types import Capability, Result, SentImage, UnderstandResult
from ._video import Sampled, VideoInput, frames_note, sample_frames

__all__ = ["Bound", "Job", "Skip"]

_MODEL_CLASS: dict[Capability, type[Model]] = {
    Capability.GENERATE: Generate,
    Capability.UNDERSTAND: Understand,
    Capability.CLASSIFY: Classify,
    Capability.EMBED: Embed,
}
_LIGHT_PIXELS = 1_000_000


class Skip(Exception):
    """A candidate cannot take this call; ``error`` is what a lone candidate raises."""

    def __init__(self, error: MMSDKError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class Bound:
    """A job fitted to one provider: the request it receives and what was sent."""

    resolved: Resolved
    request: Request
    warnings: list[str] = field(default_factory=list)
    sent: list[SentImage] = field(default_factory=list)


@dataclass
class Job:
    """The validated call plus decoded media (images keyed by request field)."""

    capability: Capability
    request: Request
    media: dict[str, list[LoadedImage]] = field(default_factory=dict)
    video: VideoInput | None = None
    _frames: Sampled | None = field(default=None, init=False, repr=False)
    _frames_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def frames(self) -> Sampled:
        """The video's sampled frames, decoded once however many candidates need them
        (a verifier running alongside included)."""
        with self._frames_lock:
            if self._frames is None:
                assert self.video is not None
                fps = getattr(self.request, "fps", None)
                count = getattr(self.request, "frames", None)
                self._frames = sample_frames(self.video, count, fps=fps)
            return self._frames

    def light(self) -> bool:
        """Whether binding this job is cheap enough to run on an event loop.

        Small images (header-checked, at most ~1 MP in all) and no video: their
        preparation takes well under a millisecond, less than a thread hop.
        """
        if self.video is not None:
            return False
        pixels = 0
        for images in self.media.values():
            for loaded in images:
                width = getattr(loaded, "width", None)
                height = getattr(loaded, "height", None)
                if width is None or height is None:
                    width, height = loaded.image.size
                pixels += width * height
        return pixels <= _LIGHT_PIXELS

    def bind(self, resolved: Resolved, *, lenient: bool, check: bool = True) -> Bound:
        """Fit this job to *resolved* or raise :class:`Skip` saying why not.

        Args:
            resolved: the candidate provider.
            lenient: drop unsupported first-class options with a warning.
            check: run the provider's availability check (routing skips it for a
                provider whose model object is already loaded).
        """
        provider = resolved.provider
        info = resolved.info
        if self.capability not in info.capabilities:
            offered = ", ".join(sorted(c.value for c in info.capabilities)) or "nothing"
            raise Skip(CapabilityError(
                f"{provider} cannot {self.capability.value} (it offers: {offered}).",
                provider=provider))
        unknown = set(self.request.options) - info.options
        if unknown:
            accepted = ", ".join(sorted(info.options)) or "none"
            raise Skip(InvalidInputError(
                f"{provider} does not know option(s) {sorted(unknown)}; accepted options: "
                f"{accepted}.", provider=provider))
        requested = self.request.requested() | {
            self.request.first_class[name] for name, loaded in self.media.items()
            if loaded and name in self.request.first_class}
        native_video = "video" in info.supports
        if self.video is not None and native_video:
            requested.add("video")  # others get frames instead, which every VLM takes
        if self.capability is Capability.GENERATE and "n" in requested and \
                getattr(self.request, "n", 1) <= info.max_n:
            requested.discard("n")
        missing = requested - info.supports
        updates: dict[str, Any] = {}
        warnings: list[str] = []
        if missing:
            if not lenient:
                raise Skip(CapabilityError(
                    f"{provider} cannot honour {', '.join(sorted(missing))}; drop "
                    f"{'it' if len(missing) == 1 else 'them'}, pick a provider that can, or "
                    "use Policy(lenient=True) to ignore unsupported options.",
                    provider=provider, code="unsupported_option"))
            for feature in sorted(missing):
                for name, mapped in self.request.first_class.items():
                    if mapped == feature:
                        updates[name] = False if name == "stream" else None
                warnings.append(f"{provider} ignored {feature}: not supported")
            if "n" in missing:
                updates["n"] = info.max_n
        availability = resolved.availability() if check else None
        if availability is not None and not availability.ok:
            raise Skip(ProviderUnavailableError(f"{provider} is unavailable here: "
                                                f"{availability.reason}.", provider=provider,
                                                fix=availability.fix))
        sent: list[SentImage] = []
        try:
            for name, loaded in self.media.items():
                images = list(loaded)
                limits = info.limits
                if name == "images" and self.video is not None and not native_video:
                    sampled = self._sampled(provider)
                    warnings += sampled.warnings
                    images += sampled.frames
                    updates.update(self._frame_updates(sampled, len(loaded), provider,
                                                       info.limits.max_images))
                    per = updates.get("frames_per_request")
                    if per is not None:  # answered in chunks: see _chunks
                        limits = limits.model_copy(update={"max_images": None})
                        warnings.append(
                            f"{provider} takes {info.limits.max_images} image(s) per request: "
                            f"the {len(sampled.frames)} frames were answered in "
                            f"{-(-len(sampled.frames) // per)} parts, then combined.")
                prepared = prepare_all(images, limits, provider=provider)
                sent += [image.sent for image in prepared]
                is_list = isinstance(getattr(self.request, name), list)
                updates[name] = prepared if is_list else (prepared[0] if prepared else None)
        except CapabilityError as exc:
            raise Skip(exc) from None
        if self.video is not None:
            updates["video"] = self.video if native_video else None
            if native_video:
                warnings += [f"{provider} ignored {arg}={value:g}: it reads the whole video "
                             "itself" for arg in ("frames", "fps")
                             if (value := getattr(self.request, arg, None)) is not None]
        changed = {k: v for k, v in updates.items() if getattr(self.request, k) is not v
                   and not (v == [] and getattr(self.request, k) == [])}
        request = self.request.model_copy(update=changed) if changed else self.request
        return Bound(resolved, request, warnings, sent)

    def _sampled(self, provider: str) -> Sampled:
        """The frames for a provider without native video; no PyAV: that provider is skipped."""
        try:
            return self.frames()
        except ProviderUnavailableError as missing:
            raise Skip(ProviderUnavailableError(
                f"{provider} takes video as frames and sampling them needs PyAV; providers "
                "with native video (such as gemini) get the file without it.",
                provider=provider, fix=missing.fix)) from None

    def _frame_updates(self, sampled: Sampled, own: int, provider: str,
                       max_images: int | None) -> dict[str, Any]:
        """The prompt with the frames' timestamps, or the chunk size when they do not fit."""
        request = self.request
        assert isinstance(request, UnderstandRequest) and self.video is not None
        updates: dict[str, Any] = {"frame_times": sampled.times}
        if max_images is None or own + len(sampled.frames) <= max_images:
            note = frames_note(self.video.path.name, sampled.times, duration=sampled.duration,
                               trailing=own > 0)
            updates["prompt"] = f"{note}\n\n{request.prompt}"
            return updates
        room = max_images - own
        if room < 1:
            raise CapabilityError(
                f"{provider} takes at most {max_images} image(s) per request, and the "
                f"{own} image(s) given leave no room for video frames; send fewer images.",
                provider=provider)
        if request.stream:
            raise CapabilityError(
                f"{provider} takes at most {max_images} image(s) per request: "
                f"{len(sampled.frames)} frames are answered in chunks, which cannot stream; "
                "pass fewer frames= or stream=False.", provider=provider)
        updates["frames_per_request"] = room
        return updates


def check_model(model: Model, capability: Capability, provider: str) -> None:
    if not isinstance(model, _MODEL_CLASS[capability]):
        raise CapabilityError(f"{provider} declares {capability.value} but its model object "
                              f"({type(model).__name__}) does not implement it.", provider=provider)


def call(model: Model, capability: Capability, request: Request) -> Any:
    """Run the capability's sync method; returns a result or a list of results."""
    if capability is Capability.GENERATE:
        return model.generate(request)  # type: ignore[attr-defined]
    if capability is Capability.UNDERSTAND:
        result = answer_in_chunks(model, request) if chunked(request) else \
            model.understand(request)  # type: ignore[attr-defined]
        return validate_structured(result, request, model.provider)  # type: ignore[arg-type]
    if capability is Capability.CLASSIFY:
        return model.classify(request)  # type: ignore[attr-defined]
    return model.embed(request)  # type: ignore[attr-defined]


async def acall(model: Model, capability: Capability, request: Request) -> Any:
    """Async twin of :func:`call`."""
    if capability is Capability.GENERATE:
        return await model.agenerate(request)  # type: ignore[attr-defined]
    if capability is Capability.UNDERSTAND:
        result = await aanswer_in_chunks(model, request) if chunked(request) else \
            await model.aunderstand(request)  # type: ignore[attr-defined]
        return validate_structured(result, request, model.provider)  # type: ignore[arg-type]
    if capability is Capability.CLASSIFY:
        return await model.aclassify(request)  # type: ignore[attr-defined]
    return await model.aembed(request)  # type: ignore[attr-defined]


def stream(model: Model, request: UnderstandRequest) -> Iterator[StreamEvent]:
    return model.understand_stream(request)  # type: ignore[attr-defined,no-any-return]


def astream(model: Model, request: UnderstandRequest) -> AsyncIterator[StreamEvent]:
    return model.aunderstand_stream(request)  # type: ignore[attr-defined,no-any-return]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def validate_structured(result: UnderstandResult, request: UnderstandRequest,
                        provider: str) -> UnderstandResult:
    """Fill ``result.data`` from its text when a schema was asked for."""
    schema: type[BaseModel] | None = request.response_schema
    if schema is None or isinstance(result.data, schema):
        return result
    text = result.text or ""
    fenced = _FENCE.match(text)
    payload = fenced.group(1) if fenced else text
    if not fenced and "{" in payload:
        payload = payload[payload.index("{"): payload.rindex("}") + 1]
    try:
        result.data = schema.model_validate(json.loads(payload)) if result.data is None \
            else schema.model_validate(result.data)
    except (ValueError, ValidationError) as exc:
        error = OutputValidationError(
            f"{provider}'s answer does not match {schema.__name__}: {exc}. The raw answer is "
            "in .text; try a more capable model or a simpler schema.",
            provider=provider, text=text)
        error.usage = result.usage  # the answer was billed: routing counts it in cost_usd
        raise error from None
    return result


def finish(result: Result, bound: Bound) -> None:
    """Stamp routing facts onto a result the provider returned."""
    result.provider = bound.resolved.provider
    if not result.model:
        result.model = bound.resolved.model
    result.warnings = bound.warnings + result.warnings
    result.sent = bound.sent
