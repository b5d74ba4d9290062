"""Fit decoded images to one provider's :class:`MediaLimits` before they leave.

Providers that take PIL images in process (``limits.formats`` empty) get the
decoded image untouched. Others get bytes in an accepted format, downscaled to
the long-edge and pixel caps, and re-encoded (lower JPEG quality, then smaller
sizes) until they fit the byte cap, counted the way that API counts it.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

from PIL import Image

from ._errors import CapabilityError, InvalidInputError
from ._media import LoadedImage
from ._types import MediaLimits, SentImage

__all__ = ["PreparedImage", "prepare", "prepare_all"]

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_PIL_NAME = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


@dataclass(frozen=True)
class PreparedImage:
    """One image as a provider receives it.

    Attributes:
        image: the (possibly resized) image; local providers use this.
        data: encoded bytes, or ``None`` for in-process providers.
        format: ``"png"``, ``"jpeg"``, ... or ``None`` for in-process providers.
        sent: what was sent, reported in ``result.sent``.
    """

    image: Image.Image
    data: bytes | None
    format: str | None
    sent: SentImage

    @property
    def mime_type(self) -> str:
        return _MIME[self.format or "png"]

    def base64(self) -> str:
        return base64.b64encode(self._bytes()).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.base64()}"

    def _bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()


def prepare_all(images: list[LoadedImage], limits: MediaLimits, *, provider: str) -> list[PreparedImage]:
    """Prepare every image, enforcing ``limits.max_images``."""
    if limits.max_images is not None and len(images) > limits.max_images:
        raise CapabilityError(
            f"{provider} takes at most {limits.max_images} image(s) per request, got "
            f"{len(images)}; send fewer or pick a provider that takes more.",
            provider=provider,
        )
    return [prepare(image, limits) for image in images]


def prepare(loaded: LoadedImage, limits: MediaLimits) -> PreparedImage:
    """Return *loaded* converted to fit *limits*."""
    image = loaded.image
    scale = _scale_for(image.width, image.height, limits)
    resized = scale < 1.0
    if resized:
        image = _resize(image, scale)
    if not limits.formats:
        return PreparedImage(image, None, None, _sent(loaded, image, None, None, resized))

    fmt = _pick_format(loaded, image, limits)
    original_ok = (
        not resized
        and loaded.data is not None
        and (loaded.format or "").lower() == fmt
        and _fits(len(loaded.data), limits)
    )
    if original_ok:
        assert loaded.data is not None
        return PreparedImage(image, loaded.data, fmt,
                             _sent(loaded, image, fmt, len(loaded.data), resized))
    data, image, fmt, shrunk = _encode_to_fit(image, fmt, limits, loaded.source)
    return PreparedImage(image, data, fmt, _sent(loaded, image, fmt, len(data), resized or shrunk))


def _sent(loaded: LoadedImage, image: Image.Image, fmt: str | None, size: int | None,
          resized: bool) -> SentImage:
    # Built from values mmsdk computed itself: no validation needed on this per-image path.
    return SentImage.model_construct(source=loaded.source, format=fmt, width=image.width,
                                     height=image.height, bytes=size, resized=resized)


def _scale_for(width: int, height: int, limits: MediaLimits) -> float:
    scale = 1.0
    if limits.max_long_edge and max(width, height) > limits.max_long_edge:
        scale = limits.max_long_edge / max(width, height)
    if limits.max_pixels and width * height * scale * scale > limits.max_pixels:
        scale = math.sqrt(limits.max_pixels / (width * height))
    return scale


def _resize(image: Image.Image, scale: float) -> Image.Image:
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _pick_format(loaded: LoadedImage, image: Image.Image, limits: MediaLimits) -> str:
    original = (loaded.format or "").lower()
    if original in limits.formats and original != "gif":
        return original
    if "png" in limits.formats and ("A" in image.getbands() or "jpeg" not in limits.formats):
        return "png"
    return limits.formats[0] if limits.formats[0] != "gif" else "png"


def _counted(size: int, limits: MediaLimits) -> int:
    return 4 * math.ceil(size / 3) if limits.count_bytes_as == "base64" else size


def _fits(size: int, limits: MediaLimits) -> bool:
    return limits.max_bytes is None or _counted(size, limits) <= limits.max_bytes


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt in ("png", "webp") and image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    options = {"quality": quality} if fmt in ("jpeg", "webp") else {"optimize": True}
    image.save(buffer, format=_PIL_NAME[fmt], **options)
    return buffer.getvalue()


def _encode_to_fit(image: Image.Image, fmt: str, limits: MediaLimits,
                   source: str) -> tuple[bytes, Image.Image, str, bool]:
    data = _encode(image, fmt, 90)
    if _fits(len(data), limits):
        return data, image, fmt, False
    lossy = fmt if fmt in ("jpeg", "webp") else next(
        (f for f in ("jpeg", "webp") if f in limits.formats), fmt)
    current = image
    for _ in range(12):
        for quality in (85, 70, 55):
            data = _encode(current, lossy, quality)
            if _fits(len(data), limits):
                return data, current, lossy, current is not image
        current = _resize(current, 0.75)
    raise InvalidInputError(
        f"{source}: cannot be made to fit the provider's {limits.max_bytes}-byte limit."
    )
