"""Images API wire format: ``images.generate`` and ``images.edit`` (image + mask).

GPT image models always answer in base64 (``b64_json``); each image is decoded
to PIL. ``revised_prompt`` is kept when the API returns one.

Masks: OpenAI edits where the mask is fully transparent. A mask with an alpha
channel is sent as it is; a mask without one (``L``/``RGB``) follows the
diffusers convention, white = repaint, and is converted (alpha = 255 - luminance).
The mask is resized to the image's size when they differ.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageOps

from mmsdk.plugin import (
    GenerateRequest,
    GenerateResult,
    PreparedImage,
    ProviderServerError,
    Usage,
)

__all__ = ["edit_files", "image_params", "result_from"]

_EDIT_ONLY = ("input_fidelity",)


def image_params(model: str, request: GenerateRequest) -> dict[str, Any]:
    """Keyword arguments shared by ``images.generate`` and ``images.edit``."""
    params: dict[str, Any] = {"model": model, "prompt": request.prompt}
    if request.n > 1:
        params["n"] = request.n
    if request.size:
        params["size"] = request.size
    for key, value in request.options.items():
        if key in _EDIT_ONLY and request.image is None:
            continue
        params[key] = value
    return params


def _file(name: str, image: PreparedImage) -> tuple[str, bytes, str]:
    data = image.data if image.data is not None else _png(image.image)
    return f"{name}.{image.format or 'png'}", data, image.mime_type


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def mask_png(mask: Image.Image, size: tuple[int, int]) -> bytes:
    """The mask as OpenAI reads it: PNG RGBA, transparent where the image is edited."""
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    if "A" in mask.getbands():
        rgba = mask.convert("RGBA")
    else:
        alpha = ImageOps.invert(mask.convert("L"))
        rgba = Image.new("RGBA", size, (0, 0, 0, 255))
        rgba.putalpha(alpha)
    return _png(rgba)


def edit_files(request: GenerateRequest) -> dict[str, Any]:
    """The multipart files for ``images.edit``: ``image`` and optional ``mask``."""
    assert request.image is not None
    files: dict[str, Any] = {"image": _file("image", request.image)}
    if request.mask is not None:
        size = (request.image.sent.width, request.image.sent.height)  # without decoding it
        files["mask"] = ("mask.png", mask_png(request.mask.image, size), "image/png")
    return files


def result_from(response: Any, provider: str) -> GenerateResult:
    """Decode an ``ImagesResponse`` into a :class:`GenerateResult`."""
    items = getattr(response, "data", None) or []
    images: list[Image.Image] = []
    revised = None
    for item in items:
        if not item.b64_json:
            raise ProviderServerError(f"{provider} returned an image without base64 data "
                                      "(b64_json).", provider=provider)
        try:
            image = Image.open(io.BytesIO(base64.b64decode(item.b64_json, validate=True)))
            image.load()
        except (OSError, ValueError) as exc:  # binascii.Error, PIL's UnidentifiedImageError
            raise ProviderServerError(f"{provider} sent image data that could not be decoded: "
                                      f"{type(exc).__name__}: {exc}", provider=provider) from None
        images.append(image)
        revised = revised or item.revised_prompt
    if not images:
        raise ProviderServerError(f"{provider} returned no images.", provider=provider)
    usage = getattr(response, "usage", None)
    return GenerateResult(images=images, revised_prompt=revised, usage=Usage(
        input_tokens=getattr(usage, "input_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None), images=len(images)))
