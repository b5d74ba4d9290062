"""prepare() fits images to each provider's limits and reports what was sent."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from samples import encode

import mmsdk
from mmsdk._media import load_image
from mmsdk._prepare import prepare, prepare_all
from mmsdk._types import MediaLimits


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.effect_noise((width, height), 80).convert(mode)


def test_in_process_providers_get_the_decoded_image_untouched() -> None:
    loaded = load_image(encode(noise(64, 48)))
    prepared = prepare(loaded, MediaLimits())
    assert prepared.image is loaded.image
    assert prepared.data is None and prepared.sent.format is None


def test_long_edge_cap_downscales_keeping_aspect() -> None:
    prepared = prepare(load_image(encode(noise(400, 200))), MediaLimits(formats=("png",),
                                                                         max_long_edge=100))
    decoded = Image.open(io.BytesIO(prepared.data or b""))
    assert decoded.size == (100, 50) == (prepared.sent.width, prepared.sent.height)
    assert prepared.sent.resized


def test_original_bytes_are_sent_when_they_already_fit() -> None:
    original = encode(noise(32, 32), "JPEG")
    prepared = prepare(load_image(original), MediaLimits(formats=("png", "jpeg")))
    assert prepared.data == original and prepared.format == "jpeg"
    assert not prepared.sent.resized


@pytest.mark.parametrize(
    ("mode", "source_format", "formats", "expected"),
    [
        pytest.param("RGBA", "PNG", ("jpeg", "png"), "png", id="alpha-keeps-png"),
        pytest.param("RGB", "BMP", ("jpeg", "png"), "jpeg", id="bmp-to-first-format"),
        pytest.param("RGB", "TIFF", ("png",), "png", id="tiff-to-png"),
        pytest.param("P", "GIF", ("png", "jpeg", "gif"), "png", id="gif-frames-to-png"),
    ],
)
def test_unaccepted_formats_are_converted(mode: str, source_format: str,
                                          formats: tuple[str, ...], expected: str) -> None:
    prepared = prepare(load_image(encode(noise(20, 20, mode), source_format)),
                       MediaLimits(formats=formats))
    assert prepared.format == expected
    assert Image.open(io.BytesIO(prepared.data or b"")).format == expected.upper()
    assert prepared.mime_type == f"image/{expected}"


def test_byte_cap_counted_on_base64_text() -> None:
    big = encode(noise(600, 600))  # noisy PNG: hundreds of KB
    limits = MediaLimits(formats=("png", "jpeg"), max_bytes=60_000, count_bytes_as="base64")
    prepared = prepare(load_image(big), limits)
    assert len(prepared.base64()) <= 60_000
    assert prepared.data_url().startswith("data:image/jpeg;base64,")
    assert base64.b64decode(prepared.base64()) == prepared.data
    assert prepared.sent.bytes == len(prepared.data or b"")


def test_raw_byte_cap_lets_slightly_larger_images_through_than_base64() -> None:
    image = load_image(encode(noise(300, 300), "JPEG", quality=90))
    size = len(image.data or b"")
    raw = prepare(image, MediaLimits(formats=("jpeg",), max_bytes=size, count_bytes_as="raw"))
    b64 = prepare(image, MediaLimits(formats=("jpeg",), max_bytes=size, count_bytes_as="base64"))
    assert raw.data == image.data
    assert len(b64.data or b"") < size


def test_pixel_cap() -> None:
    prepared = prepare(load_image(encode(noise(300, 300))),
                       MediaLimits(formats=("png",), max_pixels=10_000))
    assert prepared.sent.width * prepared.sent.height <= 10_000


def test_max_images_is_a_capability_error() -> None:
    images = [load_image(encode(noise(8, 8))) for _ in range(3)]
    with pytest.raises(mmsdk.CapabilityError, match="at most 2 image"):
        prepare_all(images, MediaLimits(max_images=2), provider="x:y")
