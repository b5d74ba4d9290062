"""Fit input images to one provider's :class:`MediaLimits` before they leave.

Providers that take PIL images in process (``limits.formats`` empty) get the
decoded, upright image, downscaled to the long-edge and pixel caps. Others get
bytes in an accepted format:

* the original bytes, never decoded, when the format is accepted, the size is
  within the caps, the bytes fit and the image is upright; with metadata
  (EXIF, GPS, XMP, IPTC, comments, text chunks) cut out of the byte stream
  unless ``mmsdk.configure(keep_image_metadata=True)``;
* otherwise the decoded image, rotated upright, downscaled to the caps and
  re-encoded (lower JPEG quality, then smaller sizes) until it fits the byte
  cap, counted the way that API counts it. Re-encoding keeps the ICC profile
  and writes no other metadata unless asked to keep it.

``result.sent`` reports what was actually sent.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

from PIL import Image

from ._errors import CapabilityError, InvalidInputError
from ._media import LoadedImage, Parts, _join
from ._settings import get_settings
from ._types import MediaLimits, SentImage

__all__ = ["PreparedImage", "prepare", "prepare_all"]

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_PIL_NAME = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_WIRE = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


class PreparedImage:
    """One image as a provider receives it.

    Attributes:
        data: encoded bytes, or ``None`` for in-process providers.
        format: ``"png"``, ``"jpeg"``, ... or ``None`` for in-process providers.
        sent: what was sent, reported in ``result.sent``.
    """

    __slots__ = ("_data", "_parts", "_source", "format", "sent")

    def __init__(self, image: Image.Image | LoadedImage, data: bytes | None,
                 format: str | None, sent: SentImage, *, parts: Parts | None = None) -> None:
        self._source = image
        self._data = data
        # The input's own bytes less its metadata, as pieces: joined only if asked for
        # (:attr:`data`); :meth:`data_url` encodes them as they are.
        self._parts = parts if data is None else None
        self.format = format
        self.sent = sent

    def __repr__(self) -> str:
        size = f"{self._length()} bytes" if self.format is not None else "in process"
        return f"PreparedImage({self.sent.source!r}, format={self.format!r}, {size})"

    @property
    def data(self) -> bytes | None:
        if self._data is None and self._parts is not None:
            self._data = _join(self._parts)
        return self._data

    def _length(self) -> int:
        if self._data is None and self._parts is not None:
            return sum(len(part) for part in self._parts)
        return len(self._data or b"")

    @property
    def image(self) -> Image.Image:
        """The image as sent, decoded and upright (decoded now if it was sent undecoded)."""
        source = self._source
        return source.image if isinstance(source, LoadedImage) else source

    @property
    def mime_type(self) -> str:
        return _MIME[self.format or "png"]

    def base64(self) -> str:
        return base64.b64encode(self._bytes()).decode("ascii")

    def data_url(self) -> str:
        parts = self._parts if self._data is None else None
        if parts is None or len(parts) == 1:
            encoded = base64.b64encode(self._bytes() if parts is None else parts[0])
            return f"data:{self.mime_type};base64,{encoded.decode('ascii')}"
        # No copy of the pieces joined: as few big buffers as the caller's own
        # read + b64encode + f-string would make.
        head = f"data:{self.mime_type};base64,".encode("ascii")
        return b"".join([head, *_base64_pieces(parts)]).decode("ascii")

    def _bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()


def prepare_all(images: list[LoadedImage], limits: MediaLimits, *, provider: str,
                keep_metadata: bool | None = None) -> list[PreparedImage]:
    """Prepare every image, enforcing ``limits.max_images``."""
    if limits.max_images is not None and len(images) > limits.max_images:
        raise CapabilityError(
            f"{provider} takes at most {limits.max_images} image(s) per request, got "
            f"{len(images)}; send fewer or pick a provider that takes more.",
            provider=provider,
        )
    if keep_metadata is None:
        keep_metadata = get_settings().keep_image_metadata
    return [prepare(image, limits, keep_metadata=keep_metadata) for image in images]


def prepare(loaded: LoadedImage, limits: MediaLimits, *,
            keep_metadata: bool | None = None) -> PreparedImage:
    """Return *loaded* converted to fit *limits*.

    Args:
        loaded: the checked input.
        limits: the provider's limits.
        keep_metadata: send EXIF/XMP/comments along (default: the
            ``keep_image_metadata`` setting).
    """
    if keep_metadata is None:
        keep_metadata = get_settings().keep_image_metadata
    scale = _scale_for(loaded.width, loaded.height, limits)
    resized = scale < 1.0
    if not limits.formats:
        image = _resize(loaded.image, scale) if resized else loaded.image
        return PreparedImage(image, None, None, _sent(loaded, image.size, None, None, resized))

    original = None if resized else _original(loaded, limits, keep_metadata)
    if original is not None:
        fmt, parts, size = original
        return PreparedImage(loaded, None, fmt, _sent(loaded, loaded.size, fmt, size, False),
                             parts=parts)

    image = _resize(loaded.image, scale) if resized else loaded.image
    fmt = _pick_format(loaded, image, limits)
    extras = _carried(image, keep_metadata)
    data, image, fmt, shrunk = _encode_to_fit(image, fmt, limits, loaded.source, extras)
    return PreparedImage(image, data, fmt,
                         _sent(loaded, image.size, fmt, len(data), resized or shrunk))


def _original(loaded: LoadedImage, limits: MediaLimits,
              keep_metadata: bool) -> tuple[str, Parts, int] | None:
    """The bytes to send without decoding (as pieces, and their size), when the input's
    own encoding will do."""
    if loaded.data is None or loaded.orientation != 1:
        return None  # a rotated image must be sent upright: decode, rotate, re-encode
    fmt = _WIRE.get(loaded.format or "")
    if fmt is None or fmt == "gif" or fmt not in limits.formats:
        return None
    parts: Parts | None = [loaded.data] if keep_metadata else loaded.stripped_parts()
    if parts is None:
        return None
    size = sum(len(part) for part in parts)
    if not _fits(size, limits):
        return None
    return fmt, parts, size


def _base64_pieces(parts: Parts) -> list[bytes]:
    """Base64 of *parts* one after the other, in pieces that join into it.

    Every piece but the last encodes a multiple of 3 bytes, so no padding
    falls inside; a big part is encoded straight from its view, not copied.
    """
    pieces: list[bytes] = []
    carry = b""
    for part in parts:
        view = memoryview(part)
        if len(carry) + len(view) < 4096:
            carry += view.tobytes()
            continue
        cut = -len(carry) % 3  # bytes of this part that complete the carry to a multiple of 3
        if carry or cut:
            pieces.append(binascii.b2a_base64(carry + view[:cut].tobytes(), newline=False))
        aligned = cut + (len(view) - cut) // 3 * 3
        pieces.append(binascii.b2a_base64(view[cut:aligned], newline=False))
        carry = view[aligned:].tobytes()
    if carry:
        pieces.append(binascii.b2a_base64(carry, newline=False))
    return pieces


def _sent(loaded: LoadedImage, size: tuple[int, int], fmt: str | None, count: int | None,
          resized: bool) -> SentImage:
    # Validated: pydantic-core checks these six plain fields in about half the time
    # model_construct takes to skip checking them.
    return SentImage(source=loaded.source, format=fmt, width=size[0], height=size[1],
                     bytes=count, resized=resized)


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
    original = _WIRE.get(loaded.format or "", "")
    if original in limits.formats and original != "gif":
        return original
    if "png" in limits.formats and ("A" in image.getbands() or "jpeg" not in limits.formats):
        return "png"
    return limits.formats[0] if limits.formats[0] != "gif" else "png"


def _counted(size: int, limits: MediaLimits) -> int:
    return 4 * math.ceil(size / 3) if limits.count_bytes_as == "base64" else size


def _fits(size: int, limits: MediaLimits) -> bool:
    return limits.max_bytes is None or _counted(size, limits) <= limits.max_bytes


class _Extras:
    """What a re-encode carries over: the ICC profile, and metadata only if asked.

    A plain class: a dataclass would cost half a millisecond at import, on every first call.
    """

    __slots__ = ("comment", "exif", "icc", "mode", "xmp")

    def __init__(self, mode: str, icc: bytes | None = None, exif: bytes | None = None,
                 xmp: bytes | None = None, comment: bytes | None = None) -> None:
        self.mode = mode
        self.icc = icc
        self.exif = exif
        self.xmp = xmp
        self.comment = comment


def _carried(image: Image.Image, keep_metadata: bool) -> _Extras:
    info = image.info
    icc = info.get("icc_profile") or None
    if not keep_metadata:
        return _Extras(image.mode, icc)
    exif = None
    if info.get("exif"):
        tags = Image.Exif()
        try:
            tags.load(info["exif"])
            tags.pop(0x0112, None)  # the pixels are upright now
            exif = tags.tobytes()
        except Exception:  # unreadable EXIF that only a kept copy would need: drop it
            exif = None
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    comment = info.get("comment")
    return _Extras(image.mode, icc, exif,
                   xmp.encode() if isinstance(xmp, str) else xmp,
                   comment.encode() if isinstance(comment, str) else comment)


_FAMILY = {"1": "grey", "L": "grey", "LA": "grey", "I": "grey", "I;16": "grey", "F": "grey",
           "P": "rgb", "PA": "rgb", "RGB": "rgb", "RGBA": "rgb", "RGBX": "rgb",
           "CMYK": "cmyk", "YCbCr": "ycc", "LAB": "lab", "HSV": "hsv"}


def _encode(image: Image.Image, fmt: str, quality: int, extras: _Extras) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt in ("png", "webp") and image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    options: dict[str, Any] = {"quality": quality} if fmt in ("jpeg", "webp") \
        else {"optimize": True}
    # A profile describes the colour space it was made for: drop it if converting left it.
    same_space = _FAMILY.get(image.mode, image.mode) == _FAMILY.get(extras.mode, extras.mode)
    options["icc_profile"] = extras.icc if same_space else None
    if fmt == "jpeg":
        options["comment"] = extras.comment or b""  # PIL copies image.info's comment otherwise
    if extras.exif:
        options["exif"] = extras.exif
    if extras.xmp and fmt in ("jpeg", "webp"):
        options["xmp"] = extras.xmp
    image.save(buffer, format=_PIL_NAME[fmt], **options)
    return buffer.getvalue()


def _encode_to_fit(image: Image.Image, fmt: str, limits: MediaLimits, source: str,
                   extras: _Extras) -> tuple[bytes, Image.Image, str, bool]:
    data = _encode(image, fmt, 90, extras)
    if _fits(len(data), limits):
        return data, image, fmt, False
    lossy = fmt if fmt in ("jpeg", "webp") else next(
        (f for f in ("jpeg", "webp") if f in limits.formats), fmt)
    current = image
    for _ in range(12):
        for quality in (85, 70, 55):
            data = _encode(current, lossy, quality, extras)
            if _fits(len(data), limits):
                return data, current, lossy, current is not image
        current = _resize(current, 0.75)
    raise InvalidInputError(
        f"{source}: cannot be made to fit the provider's {limits.max_bytes}-byte limit.",
        code="input_too_large",
    )
