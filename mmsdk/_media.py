"""Turn any image argument into a checked image, decoded only when needed.

Accepted: a path, ``bytes``, a ``PIL.Image``, a numpy array, an ``http(s)``
URL or a ``data:`` URL. Encoded inputs are checked from their header alone:
the byte cap, the format, the header's pixel count against the pixel cap, the
EXIF orientation, and the container's structure (a JPEG, PNG or WebP cut short
is refused). The pixels are decoded on first use of :attr:`LoadedImage.image`,
so an image sent to a provider as its original bytes never is. Every failure,
including one found by that later decode, is an :class:`InvalidInputError`
naming the input and the reason.

Paths are read only when they name a regular file, and never past the cap.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import stat
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from PIL import Image, UnidentifiedImageError

from ._errors import InvalidInputError
from ._settings import Settings, get_settings

if TYPE_CHECKING:  # numpy is imported only when an array arrives (see _is_array)
    import numpy as np

__all__ = ["ImageSource", "LoadedImage", "check_regular_file", "load_image", "load_images",
           "read_capped", "redact_url"]

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, Image.Image, "np.ndarray"]
Parts = list[bytes | memoryview]
"""An encoded image as pieces to send one after the other: views of the input, small headers."""

# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
_ORIENTATION = 0x0112


class LoadedImage:
    """One input image: checked from its header, decoded on first use.

    Args:
        image: the decoded image, for inputs that arrive decoded (PIL, numpy,
            video frames); ``None`` for encoded inputs, decoded lazily.
        source: a short description for messages ("chart.png", "bytes", "URL ...").
        data: the original encoded bytes, when the input was encoded.
        format: the original format as PIL names it ("PNG", "JPEG", ...).
        size: the stored (not yet rotated) size from the header; required
            when *image* is ``None``.
        orientation: the EXIF orientation (1-8) still to be applied.

    Attributes:
        width / height / size: the upright size (orientation applied).
    """

    __slots__ = ("_image", "_layout", "_lock", "_stored", "_stripped", "_what", "data", "format",
                 "orientation", "source")

    def __init__(self, image: Image.Image | None, source: str, data: bytes | None = None,
                 format: str | None = None, *, size: tuple[int, int] | None = None,
                 orientation: int = 1, what: str | None = None, layout: Any = None) -> None:
        if image is not None:
            size = image.size
        elif data is None or size is None:
            raise ValueError("LoadedImage needs an image, or data with its header size")
        self.source = source
        self.data = data
        self.format = format
        self.orientation = orientation if image is None else 1
        self._stored = size
        self._image = image
        self._lock = threading.Lock()
        self._what = what or source
        self._layout = layout
        self._stripped: Parts | bool | None = False  # False: not computed yet

    def __repr__(self) -> str:
        return (f"LoadedImage({self.source!r}, format={self.format!r}, size={self.size}, "
                f"decoded={self.decoded})")

    @property
    def size(self) -> tuple[int, int]:
        width, height = self._stored
        return (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def decoded(self) -> bool:
        """Whether the pixels have been decoded (they are on first use of :attr:`image`)."""
        return self._image is not None

    @property
    def image(self) -> Image.Image:
        """The decoded image, upright, fully loaded; decoded once, on first use.

        Raises:
            InvalidInputError: the pixel data is corrupt or truncated.
        """
        if self._image is None:
            with self._lock:
                if self._image is None:
                    self._image = self._decode()
        return self._image

    def _decode(self) -> Image.Image:
        assert self.data is not None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(self.data))
                image.load()
        except MemoryError:
            raise
        except Exception as exc:  # any failure to decode input bytes is the input's fault
            raise InvalidInputError(f"{self._what}: is corrupt or truncated ({exc}).",
                                    code="input_corrupt") from None
        method = _UPRIGHT.get(self.orientation)
        return image.transpose(method) if method is not None else image

    def stripped(self) -> bytes | None:
        """:attr:`data` without EXIF, XMP, IPTC, comments or text chunks, pixels untouched.

        Done on the byte stream (JPEG segments, PNG chunks, WebP RIFF chunks),
        never by re-encoding; the ICC profile is kept. Returns :attr:`data`
        itself when there is nothing to remove, and ``None`` when the format
        cannot be stripped this way (the caller re-encodes).
        """
        parts = self.stripped_parts()
        return _join(parts) if parts is not None else None

    def stripped_parts(self) -> Parts | None:
        """:meth:`stripped` as the pieces it is made of, without copying them together.

        The pieces are views of :attr:`data` (and a few new header bytes for
        WebP); ``[data]`` when nothing is removed; ``None`` as for :meth:`stripped`.
        """
        if self._stripped is False:
            self._stripped = _strip(self.data, self.format, self._layout) \
                if self.data is not None else None
        return self._stripped  # type: ignore[return-value]


def redact_url(text: str) -> str:
    """*text* with the user:password part of any URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s@/?#]*(?:[/?#][^\s@]*)?@")


def _is_array(source: Any) -> bool:
    """Whether *source* is a numpy array, without importing numpy: none exists before it is."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(source, numpy.ndarray)


def _describe(source: Any) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f"{len(source)} bytes"
    if isinstance(source, Image.Image):
        return f"PIL image {source.width}x{source.height}"
    if _is_array(source):
        return f"array {source.shape}"
    text = redact_url(str(source).replace("\x00", "\\x00"))
    return text if len(text) <= 80 else text[:77] + "..."


def load_images(sources: Any, *, name: str, settings: Settings | None = None,
                deadline: float | None = None) -> list[LoadedImage]:
    """Load one source or a list of them; *name* labels them in errors.

    *deadline* (``time.monotonic()`` seconds) bounds fetching URL inputs, as
    :func:`load_image` says.
    """
    if sources is None:
        return []
    if isinstance(sources, (list, tuple)):
        return [load_image(s, label=f"{name}[{i}]", settings=settings, deadline=deadline)
                for i, s in enumerate(sources)]
    return [load_image(sources, label=name, settings=settings, deadline=deadline)]


def load_image(source: Any, *, label: str = "image", settings: Settings | None = None,
               deadline: float | None = None) -> LoadedImage:
    """Check *source* into a :class:`LoadedImage`, or raise :class:`InvalidInputError`.

    Args:
        source: a path, bytes, PIL image, numpy array, http(s) URL or data: URL.
        label: how errors name the input (``"images[2]"``).
        settings: caps and URL rules (default: the settings in force).
        deadline: the caller's deadline in ``time.monotonic()`` seconds; a URL
            fetch stops there with :class:`ProviderTimeoutError`.
    """
    settings = settings or get_settings()
    described = _describe(source)
    what = f"{label} ({described})"
    if isinstance(source, Image.Image):
        return LoadedImage(_from_pil(source, what, settings), described)
    if _is_array(source):
        return LoadedImage(_from_array(source, what, settings), described)
    if isinstance(source, (bytes, bytearray)):
        return _from_encoded(bytes(source), what, described, settings)
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(source)
        if "\x00" in text:
            raise InvalidInputError(f"{what}: contains a NUL byte, so it cannot be a path or "
                                    "URL; pass the image's bytes instead.")
        if text.startswith("data:"):
            return _from_encoded(_from_data_url(text, what, settings), what, "data: URL", settings)
        if text[:8].lower().startswith(("http://", "https://")):
            from ._fetch import fetch_url

            data = fetch_url(text, settings, label=what, deadline=deadline)
            return _from_encoded(data, what, _describe(text), settings)
        if "://" in text[:16]:
            raise InvalidInputError(f"{what}: only http, https and data: URLs are accepted.",
                                    code="unsafe_url")
        data = read_capped(Path(text), settings.max_input_bytes, what,
                           hint="shrink it or raise mmsdk.configure(max_input_bytes=...)")
        return _from_encoded(data, what, described if isinstance(source, str) else _describe(text),
                             settings)
    raise InvalidInputError(
        f"{label}: expected a path, bytes, PIL.Image, numpy array or URL, "
        f"got {type(source).__name__}."
    )


def check_regular_file(path: Path, what: str) -> os.stat_result:
    """``os.stat`` of *path*, refusing anything but a regular file, without opening it."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidInputError(f"{what}: no such file.") from None
    except OSError as exc:
        raise InvalidInputError(f"{what}: cannot read it ({exc.strerror}).") from None
    except ValueError as exc:  # e.g. a path too long or with odd characters
        raise InvalidInputError(f"{what}: is not a usable path ({exc}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{what}: is a directory, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(
            f"{what}: is not a regular file (a FIFO, device or socket); refusing to read it. "
            "Save the data to a file, or pass its bytes."
        )
    return info


def read_capped(path: Path, cap: int, what: str, *, hint: str) -> bytes:
    """Read the regular file *path*, at most *cap* bytes, or raise :class:`InvalidInputError`.

    Non-regular files are refused without being opened; the cap is enforced on
    the bytes actually read (a file that grows after ``stat`` gains nothing).
    """
    info = check_regular_file(path, what)
    if info.st_size > cap:
        raise InvalidInputError(f"{what}: {info.st_size} bytes is over the {cap}-byte cap; "
                                f"{hint}.", code="input_too_large")
    # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it
    # must not wait for a writer; fstat then refuses it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidInputError(f"{what}: cannot read it ({exc.strerror}).") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise InvalidInputError(f"{what}: is not a regular file; refusing to read it.")
        try:
            data = _read_upto(fd, opened.st_size, cap + 1)
        except OSError as exc:
            raise InvalidInputError(f"{what}: cannot read it ({exc.strerror}).") from None
    finally:
        os.close(fd)
    if len(data) > cap:
        raise InvalidInputError(f"{what}: over the {cap}-byte cap; {hint}.",
                                code="input_too_large")
    return data


def _read_upto(fd: int, expected: int, limit: int) -> bytes:
    """At most *limit* bytes from the file *fd*, in one read when its size is *expected*.

    The first read asks for one byte more than the file's size (its ``fstat``):
    a buffer sized to the file, not to the cap, and one system call when the
    file holds just that. Otherwise (it grew or shrank, a read came back short,
    a procfs file reports size 0) reading goes on to the end, in chunks that
    double, never past *limit* in all.
    """
    first = os.read(fd, min(max(expected, 0), limit - 1) + 1)
    if len(first) == expected or len(first) >= limit:  # the whole file, or already too much
        return first
    parts, total = [first], len(first)
    while total < limit:
        chunk = os.read(fd, min(max(total, 1 << 16), limit - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _from_data_url(url: str, what: str, settings: Settings) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidInputError(f"{what}: data: URLs must be base64 ('data:image/png;base64,...').")
    if len(payload) * 3 // 4 > settings.max_input_bytes:
        raise InvalidInputError(f"{what}: over the {settings.max_input_bytes}-byte cap.",
                                code="input_too_large")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{what}: the data: URL is not valid base64.",
                                code="input_corrupt") from None


def _from_encoded(data: bytes, what: str, source: str, settings: Settings) -> LoadedImage:
    """Check *data* from its header and container structure, without decoding pixels."""
    if not data:
        raise InvalidInputError(f"{what}: is empty.", code="input_corrupt")
    if len(data) > settings.max_input_bytes:
        raise InvalidInputError(
            f"{what}: {len(data)} bytes is over the {settings.max_input_bytes}-byte cap; "
            "shrink it or raise mmsdk.configure(max_input_bytes=...).", code="input_too_large"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.width, image.height, what, settings)
    except InvalidInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(
            f"{what}: looks like a decompression bomb (too many pixels); refusing to decode it.",
            code="input_too_large"
        ) from None
    except UnidentifiedImageError:
        raise InvalidInputError(
            f"{what}: is not an image PIL can read (PNG, JPEG, WebP, GIF, ...).", code="input_corrupt"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInputError(f"{what}: is corrupt or truncated ({exc}).", code="input_corrupt") from None
    fmt = image.format
    layout = _layout(data, fmt)
    if isinstance(layout, str):
        raise InvalidInputError(f"{what}: is corrupt or truncated ({layout}).", code="input_corrupt")
    orientation = _header_orientation(image, data, layout, what)
    return LoadedImage(None, source, data, fmt, size=image.size, orientation=orientation,
                       what=what, layout=layout)


def _check_pixels(width: int, height: int, what: str, settings: Settings) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{what}: has no pixels ({width}x{height}).", code="input_corrupt")
    if width * height > settings.max_input_pixels:
        raise InvalidInputError(
            f"{what}: {width}x{height} is over the {settings.max_input_pixels}-pixel cap "
            "(a decompression-bomb guard); shrink it or raise "
            "mmsdk.configure(max_input_pixels=...).", code="input_too_large"
        )


_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([0-9])')


def _header_orientation(image: Image.Image, data: bytes, layout: Any, what: str) -> int:
    """The EXIF (or XMP) orientation, read the way ``ImageOps.exif_transpose`` reads it."""
    try:
        if image.format == "PNG":  # PIL's PNG getexif() decodes the whole image: read chunks
            value = None
            for kind, start, end in layout:
                if kind == b"eXIf":
                    exif = Image.Exif()
                    exif.load(data[start + 8:end - 4])
                    value = exif.get(_ORIENTATION)
            if value is None:
                xmp = image.info.get("XML:com.adobe.xmp")
                match = _XMP_ORIENTATION.search(xmp.encode() if isinstance(xmp, str) else b"")
                value = int(match[1]) if match else 1
        else:
            value = image.getexif().get(_ORIENTATION, 1)
    except Exception as exc:  # a broken EXIF block is the input's fault
        raise InvalidInputError(f"{what}: has unreadable EXIF data ({exc}).",
                                code="input_corrupt") from None
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(image: Image.Image, what: str) -> Image.Image:
    try:
        if image.getexif().get(_ORIENTATION, 1) == 1:  # upright already: no copy
            return image
        from PIL import ImageOps

        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:  # a broken EXIF block is the input's fault
        raise InvalidInputError(f"{what}: has unreadable EXIF data ({exc}).",
                                code="input_corrupt") from None
    return oriented if oriented is not None else image


def _from_pil(image: Image.Image, what: str, settings: Settings) -> Image.Image:
    _check_pixels(image.width, image.height, what, settings)
    try:
        image.load()
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{what}: cannot be loaded ({exc}).", code="input_corrupt") from None
    return _orient(image, what)


def _from_array(array: np.ndarray, what: str, settings: Settings) -> Image.Image:
    import numpy as np

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


# -- container walks ------------------------------------------------------------
# Each walk lists a file's top-level pieces as (kind, start, end) byte ranges, or
# returns why the structure is broken. They touch headers only. A JPEG whose frame
# is coded in one scan and whose bytes end with the end marker is walked up to
# that scan, which runs to the end; any other JPEG (progressive, several scans,
# MPO, bytes after the end marker, cut short) also has the end of each scan found
# with a regex search (C speed, but ~0.3 ms per MB). The same ranges drive
# lossless metadata stripping.

# A marker: 0xFF then anything but stuffing (00), a restart marker (D0-D7) or a
# fill byte (FF). No "\xff+": it makes the search ~15x slower; fill bytes are skipped.
_JPEG_MARKER = re.compile(rb"\xff([^\x00\xd0-\xd7\xff])")


def _layout(data: bytes, fmt: str | None) -> list[tuple[Any, int, int]] | str | None:
    if fmt in ("JPEG", "MPO"):
        return _jpeg_layout(data, one_image=fmt == "JPEG")
    if fmt == "PNG":
        return _png_layout(data)
    if fmt == "WEBP":
        return _webp_layout(data)
    return None  # other formats are decoded before they are sent


# Frame headers (SOFn) of the modes that code each component in exactly one scan:
# baseline, extended and lossless, Huffman or arithmetic. A frame of these whose
# first scan holds every component has no other scan: only the EOI may follow.
_ONE_PASS_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC9, 0xCB})
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC


def _jpeg_layout(data: bytes, *, one_image: bool = True) -> list[tuple[Any, int, int]] | str:
    """Segments from SOI to the first image's EOI; a scan's range includes its coded data.

    The coded data is not searched when it cannot hold another marker: a
    single-scan frame (see ``_ONE_PASS_FRAMES``) in a file that ends with its
    EOI and is not an MPO (*one_image*: what follows an MPO's first EOI is the
    next image). Then the scan runs to that EOI. A file that ends elsewhere (cut
    short, or with bytes after the EOI, which are left out) is searched.
    """
    if not data.startswith(b"\xff\xd8"):
        return "no JPEG start marker"
    segments: list[tuple[Any, int, int]] = [(0xD8, 0, 2)]
    pos, size = 2, len(data)
    # The one frame's component count while a single-scan shortcut is possible, else 0.
    components = -1 if one_image and data.endswith(b"\xff\xd9") else 0
    while True:
        found = _JPEG_MARKER.match(data, pos) or _JPEG_MARKER.search(data, pos)
        if found is None:
            return "the JPEG ends before its end marker"
        marker, start, pos = found[1][0], found.start(), found.end()
        if marker == 0xD9:
            segments.append((marker, start, pos))
            return segments
        if marker == 0x01:  # TEM: no length
            segments.append((marker, start, pos))
            continue
        if pos + 2 > size:
            return "the JPEG ends inside a segment header"
        end = pos + int.from_bytes(data[pos:pos + 2], "big")
        if end < pos + 2 or end > size:
            return "the JPEG ends inside a segment"
        if marker in _FRAMES:
            # Nf, the frame's component count, is its header's 8th byte.
            one_pass = components == -1 and marker in _ONE_PASS_FRAMES and end > pos + 7
            components = data[pos + 7] if one_pass else 0
        elif marker == 0xDE:  # DHP: a hierarchical image, several frames
            components = 0
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next marker
            if components > 0 and pos + 2 < end <= size - 2 and data[pos + 2] == components:
                segments.append((marker, start, size - 2))  # all of it, to the final EOI
                segments.append((0xD9, size - 2, size))
                return segments
            following = _JPEG_MARKER.search(data, end)
            if following is None:
                return "the JPEG ends inside its image data"
            end = following.start()
        segments.append((marker, start, end))
        pos = end


def _png_layout(data: bytes) -> list[tuple[Any, int, int]] | str:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "no PNG signature"
    chunks: list[tuple[Any, int, int]] = []
    pos, size = 8, len(data)
    while pos + 12 <= size:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, end = data[pos + 4:pos + 8], pos + 12 + length
        if length > 0x7FFFFFFF or end > size:
            break
        chunks.append((kind, pos, end))
        if kind == b"IEND":
            return chunks
        pos = end
    return "the PNG ends before its IEND chunk"


def _webp_layout(data: bytes) -> list[tuple[Any, int, int]] | str:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return "no WebP RIFF header"
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        return "the WebP file is shorter than its RIFF header says"
    chunks: list[tuple[Any, int, int]] = []
    pos = 12
    while pos + 8 <= riff_end:
        length = int.from_bytes(data[pos + 4:pos + 8], "little")
        end = pos + 8 + length + (length & 1)
        if end > riff_end:
            if end - (length & 1) != riff_end:  # tolerate a missing final pad byte
                return "the WebP file ends inside a chunk"
            end = riff_end
        chunks.append((data[pos:pos + 4], pos, end))
        pos = end
    return chunks


# -- lossless stripping -------------------------------------------------------------
_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
_WEBP_DROP = {b"EXIF", b"XMP "}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _strip(data: bytes, fmt: str | None, layout: Any) -> Parts | None:
    """*data* without its metadata, as pieces (``[data]`` when nothing goes); ``None``: can't."""
    if not isinstance(layout, list):
        return None
    if fmt in ("JPEG", "MPO"):
        keep = [(start, end) for marker, start, end in layout
                if _jpeg_keeps(marker, data, start, end)]
    elif fmt == "PNG":
        keep = [(start, end) for kind, start, end in layout if kind not in _PNG_DROP]
    elif fmt == "WEBP":
        return _strip_webp(data, layout)
    else:
        return None
    return _cut(data, [(0, 8), *keep] if fmt == "PNG" else keep)


def _jpeg_keeps(marker: int, data: bytes, start: int, end: int) -> bool:
    """Whether a JPEG segment is needed to show the image as intended.

    Kept: everything that is not an APPn or COM segment, plus JFIF (APP0),
    ICC profiles (APP2) and Adobe's colour-transform flag (APP14). Dropped:
    EXIF and XMP (APP1), MPF and FlashPix (APP2), IPTC (APP13), vendor APPn
    and comments.
    """
    payload = data[start + 4:start + 18]
    if marker == 0xE0:
        return payload.startswith(b"JFIF\x00")
    if marker == 0xE2:
        return payload.startswith(b"ICC_PROFILE\x00")
    if marker == 0xEE:
        return True
    return not (0xE1 <= marker <= 0xEF or marker == 0xFE)


def _strip_webp(data: bytes, layout: list[tuple[Any, int, int]]) -> Parts:
    keep = [(start, end) for kind, start, end in layout if kind not in _WEBP_DROP]
    if len(keep) == len(layout) and (not layout or layout[-1][2] == len(data)):
        return [data]
    size = sum(end - start for start, end in keep)
    parts: Parts = [b"RIFF" + (4 + size).to_bytes(4, "little") + b"WEBP"]
    if keep and data[keep[0][0]:keep[0][0] + 4] == b"VP8X" and keep[0][1] - keep[0][0] > 8:
        # The extended header (only ever the first chunk) must stop announcing EXIF and XMP.
        start, end = keep[0]
        flags = data[start + 8] & ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        parts.append(data[start:start + 8] + bytes((flags,)))
        keep[0] = (start + 9, end)
    parts += _cut(data, keep)
    return parts


def _cut(data: bytes, ranges: list[tuple[int, int]]) -> Parts:
    """*data* cut to *ranges*, as views of it; ``[data]`` when they cover it whole."""
    merged: list[list[int]] = []
    for start, end in ranges:
        if start == end:
            continue
        if merged and merged[-1][1] == start:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    if len(merged) == 1 and merged[0] == [0, len(data)]:
        return [data]
    view = memoryview(data)
    return [view[start:end] for start, end in merged]


def _join(parts: Parts) -> bytes:
    """The bytes *parts* make up; the part itself when there is one ``bytes`` part."""
    if len(parts) == 1 and isinstance(parts[0], bytes):
        return parts[0]
    return b"".join(parts)
