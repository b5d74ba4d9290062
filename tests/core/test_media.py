"""Every accepted image form decodes; every bad input is an InvalidInputError that says why."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from samples import encode

import mmsdk
from mmsdk._media import load_image
from mmsdk._settings import Settings


def test_each_source_form_decodes_to_the_same_pixels(tmp_path: Path, png_bytes: bytes) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(png_bytes)
    image = Image.open(io.BytesIO(png_bytes))
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes).decode()
    sources = [str(path), path, png_bytes, bytearray(png_bytes), image, np.asarray(image), data_url]
    decoded = [np.asarray(load_image(s).image) for s in sources]
    for pixels in decoded:
        assert pixels.shape == (30, 40, 3)
        assert (pixels == decoded[0]).all()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    loaded = load_image(encode(image, "JPEG", exif=exif))
    assert loaded.image.size == (20, 40)


def test_float_arrays_in_unit_range_are_scaled() -> None:
    array = np.full((4, 5, 3), 0.5, dtype=np.float32)
    assert np.asarray(load_image(array).image)[0, 0, 0] == 128


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        pytest.param(b"", "is empty", id="empty-bytes"),
        pytest.param(b"definitely not an image", "not an image", id="not-an-image"),
        pytest.param(12, "expected a path, bytes", id="wrong-type"),
        pytest.param(None, "expected a path, bytes", id="none"),
        pytest.param("data:image/png;base64,@@@", "not valid base64", id="bad-data-url"),
        pytest.param("data:image/png,rawtext", "must be base64", id="non-base64-data-url"),
        pytest.param("ftp://example.com/a.png", "only http, https and data", id="ftp-url"),
        pytest.param("file:///etc/passwd", "only http, https and data", id="file-url"),
        pytest.param(np.zeros((4, 4, 2), np.uint8), "expected shape", id="array-2-channels"),
        pytest.param(np.zeros((2, 2, 2, 3), np.uint8), "expected shape", id="array-4d"),
        pytest.param(np.full((4, 4), 3.0), "values in [0, 1]", id="array-float-range"),
        pytest.param(np.full((4, 4), np.nan), "NaN", id="array-nan"),
        pytest.param(np.full((4, 4), 300, np.int32), "expected uint8", id="array-int-range"),
        pytest.param(np.zeros((0, 4, 3), np.uint8), "no pixels", id="array-empty"),
    ],
)
def test_bad_inputs_raise_invalid_input(source: object, fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="image") as info:
        load_image(source, label="image")
    assert fragment in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(mmsdk.InvalidInputError, match="is a directory"):
        load_image(tmp_path)


def test_truncated_image_names_the_input(png_bytes: bytes) -> None:
    big = encode(Image.effect_noise((256, 256), 64).convert("RGB"))
    with pytest.raises(mmsdk.InvalidInputError, match=r"images\[2\].*corrupt or truncated"):
        load_image(big[: len(big) // 2], label="images[2]")


def test_oversize_bytes_rejected_before_decoding(png_bytes: bytes) -> None:
    settings = Settings(max_input_bytes=len(png_bytes) - 1)
    with pytest.raises(mmsdk.InvalidInputError, match="byte cap"):
        load_image(png_bytes, settings=settings)


def test_oversize_file_rejected_without_reading(tmp_path: Path, png_bytes: bytes) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes)
    with pytest.raises(mmsdk.InvalidInputError, match="byte cap"):
        load_image(path, settings=Settings(max_input_bytes=10))


def test_decompression_bomb_rejected_from_header_alone() -> None:
    # A 20000x20000 PNG of one colour compresses to a few hundred KB but would
    # need 1.2 GB decoded; the pixel cap must refuse it from the header.
    bomb = encode(Image.new("1", (20000, 20000)), optimize=True)
    assert len(bomb) < 1_000_000
    with pytest.raises(mmsdk.InvalidInputError, match="decompression"):
        load_image(bomb, settings=Settings(max_input_pixels=100_000_000))


def test_pixel_cap_is_checked_from_the_header() -> None:
    image = encode(Image.new("L", (3000, 3000)))
    with pytest.raises(mmsdk.InvalidInputError, match="3000x3000 is over the 1000000-pixel cap"):
        load_image(image, settings=Settings(max_input_pixels=1_000_000))


def test_oversize_pil_image_and_array_hit_the_pixel_cap() -> None:
    settings = Settings(max_input_pixels=100)
    with pytest.raises(mmsdk.InvalidInputError, match="pixel cap"):
        load_image(Image.new("RGB", (20, 20)), settings=settings)
    with pytest.raises(mmsdk.InvalidInputError, match="pixel cap"):
        load_image(np.zeros((20, 20, 3), np.uint8), settings=settings)


def test_configure_changes_caps_and_rejects_unknown_settings(png_bytes: bytes) -> None:
    previous = mmsdk.configure()
    try:
        mmsdk.configure(max_input_bytes=10)
        with pytest.raises(mmsdk.InvalidInputError, match="byte cap"):
            load_image(png_bytes)
    finally:
        mmsdk.configure(**{"max_input_bytes": previous.max_input_bytes})
    with pytest.raises(mmsdk.InvalidInputError, match="Unknown setting"):
        mmsdk.configure(max_bytes=1)
