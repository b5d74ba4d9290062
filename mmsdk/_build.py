"""From the public calls' arguments to a :class:`Job`: a validated request plus loaded media.

Arguments are checked (a bad value is an :class:`InvalidInputError`) and images
read once, before routing; each candidate provider then gets its own prepared copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ._errors import InvalidInputError
from ._jobs import Job
from ._media import load_images
from ._requests import (
    ClassifyRequest,
    EmbedRequest,
    GenerateRequest,
    UnderstandRequest,
    validate_request,
)
from ._settings import get_settings
from ._types import Capability
from ._video import load_video

__all__ = ["classify_job", "embed_job", "generate_job", "light_inputs", "understand_job"]


def generate_job(prompt: str, *, size: str | None = None, image: Any = None, mask: Any = None,
                  control_image: Any = None, reference_image: Any = None,
                  options: dict[str, Any] | None = None, progress: bool = False,
                  deadline: float | None = None, **values: Any) -> Job:
    request = validate_request(GenerateRequest, prompt=prompt, size=size,
                               options=_options(options), progress=progress, **values)
    if request.strength is not None and image is None:
        raise InvalidInputError("strength needs an image= to transform (img2img).")
    if mask is not None and image is None:
        raise InvalidInputError("mask needs the image= it applies to (inpainting).")
    settings = get_settings()
    media = {name: load_images(source, name=name, settings=settings, deadline=deadline)
             for name, source in (("image", image), ("mask", mask),
                                  ("control_image", control_image),
                                  ("reference_image", reference_image)) if source is not None}
    for name, loaded in media.items():
        if len(loaded) != 1:
            raise InvalidInputError(f"{name} takes one image, got {len(loaded)}.")
    return Job(Capability.GENERATE, request, media)


def understand_job(prompt: str, *, images: Any = None, video: Any = None,
                    frames: int | None = None, fps: float | None = None,
                    schema: type[BaseModel] | None = None,
                    options: dict[str, Any] | None = None, deadline: float | None = None,
                    **values: Any) -> Job:
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise InvalidInputError(f"schema must be a pydantic BaseModel subclass, got {schema!r}.")
    for name, value in (("frames", frames), ("fps", fps)):
        if value is not None and video is None:
            raise InvalidInputError(f"{name}= needs a video=.")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, type(None))):
        raise InvalidInputError(f"fps must be a number of frames per second (like 1 or 0.5), "
                                f"got {type(fps).__name__}.")
    request = validate_request(UnderstandRequest, prompt=prompt, frames=frames, fps=fps,
                               response_schema=schema, options=_options(options), **values)
    settings = get_settings()
    loaded = load_images(images, name="images", settings=settings, deadline=deadline)
    clip = load_video(video, settings) if video is not None else None
    return Job(Capability.UNDERSTAND, request, {"images": loaded}, clip)


def classify_job(image: Any, labels: Sequence[str], *, options: dict[str, Any] | None = None,
                  deadline: float | None = None, **values: Any) -> Job:
    if isinstance(labels, str):
        raise InvalidInputError("labels must be a list of strings, not one string.")
    request = validate_request(ClassifyRequest, labels=labels, options=_options(options),
                               **values)
    loaded = load_images(image, name="image", settings=get_settings(), deadline=deadline)
    if not loaded:
        raise InvalidInputError("classify needs at least one image.")
    return Job(Capability.CLASSIFY, request, {"images": loaded})


def embed_job(*, images: Any = None, texts: Sequence[str] | str | None = None,
               options: dict[str, Any] | None = None, deadline: float | None = None,
               **values: Any) -> Job:
    request = validate_request(EmbedRequest, texts=texts, options=_options(options), **values)
    loaded = load_images(images, name="images", settings=get_settings(), deadline=deadline)
    if not loaded and not request.texts:
        raise InvalidInputError("embed needs images=, texts= or both.")
    return Job(Capability.EMBED, request, {"images": loaded})


def _options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidInputError(f"options must be a dict, got {type(options).__name__}.")
    return dict(options)


_IMAGE_ARGS = ("image", "images", "mask", "control_image", "reference_image")
_LIGHT_BYTES = 256 * 1024


def light_inputs(build: Any) -> bool:
    """Whether a job's inputs are small enough to read and check on the event loop.

    Small in-memory images and small files are: checking their header costs
    less than a thread hop. URLs, videos and anything large are read off the loop.
    """
    keywords = build.keywords
    if keywords.get("video") is not None:
        return False
    sources = list(build.args[:1]) if build.func is classify_job else []
    sources += [keywords.get(name) for name in _IMAGE_ARGS]
    stack = [s for s in sources if s is not None]
    while stack:
        source = stack.pop()
        if isinstance(source, (list, tuple)):
            stack.extend(source)
        elif isinstance(source, (bytes, bytearray)):
            if len(source) > _LIGHT_BYTES:
                return False
        elif isinstance(source, (str, os.PathLike)):
            text = os.fspath(source)
            if "://" in text[:16] or len(text) > _LIGHT_BYTES:
                return False
            try:
                if os.stat(text).st_size > _LIGHT_BYTES:
                    return False
            except (OSError, ValueError):
                pass  # missing or odd: the job builder reports it
        elif hasattr(source, "width") and hasattr(source, "height"):  # PIL image
            if source.width * source.height > 1_000_000:
                return False
        elif getattr(source, "nbytes", 0) > 3 * _LIGHT_BYTES:  # numpy array
            return False
    return True
