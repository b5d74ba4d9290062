"""Turn any image argument into a checked, decoded image.

Accepted: a path, ``bytes``, a ``PIL.Image``, a numpy array, an ``http(s)``
URL or a ``data:`` URL. Sizes are checked before decoding (byte cap, then the
header's pixel count against the pixel cap), EXIF orientation is applied, and
every failure is an :class:`InvalidInputError` naming the input and the reason.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._errors import InvalidInputError
from ._settings import Settings, get_settings

__all__ = ["ImageSource", "LoadedImage", "load_image", "load_images"]

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, Image.Image, np.ndarray]


@dataclass(frozen=True)
class LoadedImage:
    """A decoded input image and where it came from.

    Attributes:
        image: the decoded image, orientation applied, fully loaded.
        source: a short description for messages ("chart.png", "bytes", "URL ...").
        data: the original encoded bytes, when the input was encoded.
        format: the original format ("PNG", "JPEG", ...), when known.
    """

    image: Image.Image
    source: str
    data: bytes | None = None
    format: str | None = None


def _describe(source: Any) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f"{len(source)} bytes"
    if isinstance(source, Image.Image):
        return f"PIL image {source.width}x{source.height}"
    if isinstance(source, np.ndarray):
        return f"array {source.shape}"
    text = str(source)
    return text if len(text) <= 80 else text[:77] + "..."


def load_images(sources: Any, *, name: str, settings: Settings | None = None) -> list[LoadedImage]:
    """Load one source or a list of them; *name* labels them in errors."""
    if sources is None:
        return []
    if isinstance(sources, (list, tuple)):
        return [load_image(s, label=f"{name}[{i}]", settings=settings) for i, s in enumerate(sources)]
    return [load_image(sources, label=name, settings=settings)]


def load_image(source: Any, *, label: str = "image", settings: Settings | None = None) -> LoadedImage:
    """Decode *source* into a :class:`LoadedImage`, or raise :class:`InvalidInputError`."""
    settings = settings or get_settings()
    what = f"{label} ({_describe(source)})"
    if isinstance(source, Image.Image):
        return LoadedImage(_from_pil(source, what, settings), _describe(source))
    if isinstance(source, np.ndarray):
        return LoadedImage(_from_array(source, what, settings), _describe(source))
    if isinstance(source, (bytes, bytearray)):
        return _decode(bytes(source), what, _describe(source), settings)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("data:"):
            return _decode(_from_data_url(text, what, settings), what, "data: URL", settings)
        if text.startswith(("http://", "https://")):
            from ._fetch import fetch_url

            data = fetch_url(text, settings, label=what)
            return _decode(data, what, _describe(text), settings)
        if "://" in text[:16]:
            raise InvalidInputError(f"{what}: only http, https and data: URLs are accepted.")
        return _decode(_read_file(Path(text), what, settings), what, _describe(text), settings)
    raise InvalidInputError(
        f"{label}: expected a path, bytes, PIL.Image, numpy array or URL, "
        f"got {type(source).__name__}."
    )


def _read_file(path: Path, what: str, settings: Settings) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(f"{what}: no such file.") from None
    except OSError as exc:
        raise InvalidInputError(f"{what}: cannot read it ({exc.strerror}).") from None
    if path.is_dir():
        raise InvalidInputError(f"{what}: is a directory, not an image file.")
    if size > settings.max_input_bytes:
        raise InvalidInputError(
            f"{what}: {size} bytes is over the {settings.max_input_bytes}-byte cap; "
            "shrink it or raise mmsdk.configure(max_input_bytes=...)."
        )
    return path.read_bytes()


def _from_data_url(url: str, what: str, settings: Settings) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidInputError(f"{what}: data: URLs must be base64 ('data:image/png;base64,...').")
    if len(payload) * 3 // 4 > settings.max_input_bytes:
        raise InvalidInputError(f"{what}: over the {settings.max_input_bytes}-byte cap.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{what}: the data: URL is not valid base64.") from None


def _decode(data: bytes, what: str, source: str, settings: Settings) -> LoadedImage:
    if not data:
        raise InvalidInputError(f"{what}: is empty.")
    if len(data) > settings.max_input_bytes:
        raise InvalidInputError(
            f"{what}: {len(data)} bytes is over the {settings.max_input_bytes}-byte cap; "
            "shrink it or raise mmsdk.configure(max_input_bytes=...)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.width, image.height, what, settings)
            image.load()
    except InvalidInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(
            f"{what}: looks like a decompression bomb (too many pixels); refusing to decode it."
        ) from None
    except UnidentifiedImageError:
        raise InvalidInputError(
            f"{what}: is not an image PIL can read (PNG, JPEG, WebP, GIF, ...)."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"{what}: is corrupt or truncated ({exc}).") from None
    fmt = image.format
    return LoadedImage(_orient(image, what), source, data, fmt)


def _check_pixels(width: int, height: int, what: str, settings: Settings) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{what}: has no pixels ({width}x{height}).")
    if width * height > settings.max_input_pixels:
        raise InvalidInputError(
            f"{what}: {width}x{height} is over the {settings.max_input_pixels}-pixel cap "
            "(a decompression-bomb guard); shrink it or raise "
            "mmsdk.configure(max_input_pixels=...)."
        )


def _orient(image: Image.Image, what: str) -> Image.Image:
    try:
        if image.getexif().get(0x0112, 1) == 1:  # upright already: no copy
            return image
        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:  # a broken EXIF block is the input's fault
        raise InvalidInputError(f"{what}: has unreadable EXIF data ({exc}).") from None
    return oriented if oriented is not None else image


def _from_pil(image: Image.Image, what: str, settings: Settings) -> Image.Image:
    _check_pixels(image.width, image.height, what, settings)
    try:
        image.load()
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{what}: cannot be loaded ({exc}).") from None
    return _orient(image, what)


def _from_array(array: np.ndarray, what: str, settings: Settings) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InvalidInputError(
            f"{what}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}."
        )
    _check_pixels(array.shape[1], array.shape[0], what, settings)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{what}: contains NaN or infinite values.")
        if array.min() < 0.0 or array.max() > 1.0:
            raise InvalidInputError(f"{what}: float arrays must hold values in [0, 1].")
        array = (array * 255.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        if array.dtype.kind not in "iub" or array.min() < 0 or array.max() > 255:
            raise InvalidInputError(
                f"{what}: expected uint8 (0-255) or float (0-1) values, got {array.dtype}."
            )
        array = array.astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))
