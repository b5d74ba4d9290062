"""Encoded images are checked from their header; pixels are decoded only when needed."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageFile
from samples import encode

import mmsdk
from mmsdk._media import load_image
from mmsdk._prepare import prepare
from mmsdk._types import MediaLimits
from mmsdk.testing import TestProvider

CLOUD = MediaLimits(formats=("jpeg", "png", "webp"))


def noise(width: int, height: int) -> Image.Image:
    return Image.effect_noise((width, height), 80).convert("RGB")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every full decode of an encoded image (PIL's ImageFile.load), by format."""
    seen: list[str] = []
    original = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile) -> object:
        if self.tile:  # pixels not read yet: this call decodes them
            seen.append(str(self.format))
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    yield seen


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_image_that_fits_is_sent_as_is_without_decoding(fmt: str, decodes: list[str]) -> None:
    original = encode(noise(64, 48), fmt)
    expected = np.asarray(Image.open(io.BytesIO(original)).convert("RGB"))
    decodes.clear()
    loaded = load_image(original)
    prepared = prepare(loaded, CLOUD)
    assert prepared.data == original
    assert prepared.format == fmt.lower()
    assert (prepared.sent.width, prepared.sent.height, prepared.sent.bytes) == \
        (64, 48, len(original))
    assert decodes == [] and not loaded.decoded
    # Callers that want the pixels still get them, decoded on first use, once.
    assert prepared.image.size == (64, 48)
    assert np.array_equal(np.asarray(prepared.image), expected)
    assert prepared.image is loaded.image
    assert decodes == [fmt]


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        pytest.param(MediaLimits(formats=("jpeg",), max_long_edge=32), "resize", id="resize"),
        pytest.param(MediaLimits(formats=("jpeg",)), "format change", id="png-to-jpeg"),
        pytest.param(MediaLimits(), "in-process provider", id="local"),
    ],
)
def test_decoding_happens_when_the_pixels_are_needed(limits: MediaLimits, why: str,
                                                     decodes: list[str]) -> None:
    loaded = load_image(encode(noise(64, 48), "PNG"))
    assert decodes == []
    prepared = prepare(loaded, limits)
    assert decodes == ["PNG"], why
    assert prepared.image.mode == "RGB"


def test_a_header_only_load_of_a_large_jpeg_reads_no_pixels(decodes: list[str]) -> None:
    big = encode(noise(2048, 1536), "JPEG", quality=90)
    loaded = load_image(big)
    assert loaded.size == (2048, 1536) and loaded.format == "JPEG"
    assert prepare(loaded, CLOUD).data == big
    assert decodes == []


def _corrupt_png_pixels(png: bytes) -> bytes:
    """*png* with its compressed pixel data garbled but every chunk (and CRC) well formed."""
    start = png.index(b"IDAT") - 4
    length = int.from_bytes(png[start:start + 4], "big")
    garbage = bytes((b ^ 0x5A) for b in png[start + 8:start + 8 + length])
    chunk = b"IDAT" + garbage
    fixed = length.to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")
    return png[:start] + fixed + png[start + 12 + length:]


def test_corrupt_pixels_found_by_a_later_decode_are_invalid_input() -> None:
    broken = _corrupt_png_pixels(encode(noise(64, 48)))
    loaded = load_image(broken, label="images[1]")  # the header and the chunks are fine
    # Sent as is, the provider judges it; anything that needs the pixels fails clearly.
    assert prepare(loaded, CLOUD).data == broken
    with pytest.raises(mmsdk.InvalidInputError, match=r"images\[1\].*corrupt or truncated"):
        prepare(loaded, MediaLimits(formats=("jpeg",)))
    with pytest.raises(mmsdk.InvalidInputError, match="corrupt or truncated"):
        _ = loaded.image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncation_is_caught_from_the_container_without_decoding(
        fmt: str, decodes: list[str]) -> None:
    whole = encode(noise(128, 128), fmt)
    for cut in (len(whole) * 3 // 4, len(whole) - 3):
        with pytest.raises(mmsdk.InvalidInputError, match="corrupt or truncated"):
            load_image(whole[:cut])
    assert decodes == []


def test_local_providers_get_a_decoded_upright_image() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = Image.new("RGB", (40, 20), (0, 0, 255))
    sideways.paste((255, 0, 0), (0, 0, 20, 20))
    loaded = load_image(encode(sideways, "JPEG", exif=exif))
    assert loaded.size == (20, 40) and not loaded.decoded
    prepared = prepare(loaded, MediaLimits())
    assert prepared.data is None and prepared.image.size == (20, 40)
    assert prepared.image.getpixel((10, 5))[0] > 200  # the red half is on top once upright


def test_a_call_answered_with_the_original_bytes_never_decodes(decodes: list[str]) -> None:
    original = encode(noise(32, 24), "JPEG")
    with TestProvider("cloudy", local=False, limits=CLOUD) as fake:
        result = mmsdk.understand("what?", images=[original], provider="cloudy:m")
        assert fake.calls[0].images[0].data == original  # type: ignore[attr-defined]
    assert result.sent[0].bytes == len(original)
    assert decodes == []
