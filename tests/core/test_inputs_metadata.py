"""Images leave stripped of metadata, losslessly, and upright; unless the user keeps metadata."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin
from samples import encode

import mmsdk
from mmsdk import _media
from mmsdk._media import load_image
from mmsdk._prepare import prepare, prepare_all
from mmsdk._types import MediaLimits
from mmsdk.testing import TestProvider

CLOUD = MediaLimits(formats=("jpeg", "png", "webp"))
SECRETS = (b"Canon", b"EOS R5", b"hidden comment", b"GPS secret", b"IPTC secret")
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GPS secret</x:xmpmeta>'


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def keep_setting() -> Iterator[None]:
    before = mmsdk.configure().keep_image_metadata
    yield
    mmsdk.configure(keep_image_metadata=before)


def photo(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R5"  # Model
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)
    gps[3], gps[4] = "E", (13.0, 24.0, 1.0)
    return exif


def with_iptc(jpeg: bytes) -> bytes:
    """*jpeg* with an APP13 (Photoshop / IPTC) segment after SOI."""
    payload = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0bIPTC secret"
    segment = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def scan(jpeg: bytes) -> bytes:
    """Everything from the first start-of-scan marker on: the entropy-coded image."""
    return jpeg[jpeg.index(b"\xff\xda"):]


def test_camera_jpeg_is_stripped_losslessly(icc: bytes) -> None:
    original = with_iptc(encode(photo(), "JPEG", quality=90, exif=camera_exif(),
                                comment=b"hidden comment", xmp=XMP, icc_profile=icc))
    assert all(secret in original for secret in SECRETS)
    prepared = prepare(load_image(original), CLOUD)
    sent = prepared.data or b""
    assert prepared.format == "jpeg" and len(sent) < len(original)
    assert scan(sent) == scan(original)  # the same coded image, byte for byte
    assert np.array_equal(pixels(sent), pixels(original))
    assert not [secret for secret in SECRETS if secret in sent]
    assert b"Exif\x00\x00" not in sent and b"http://ns.adobe.com/xap" not in sent
    info = Image.open(io.BytesIO(sent)).info
    assert not {"exif", "xmp", "comment", "photoshop"} & set(info)
    assert dict(Image.open(io.BytesIO(sent)).getexif()) == {}
    assert info["icc_profile"] == icc  # colours stay as they were
    assert prepared.sent.bytes == len(sent)


def test_bytes_after_the_end_of_the_jpeg_are_dropped() -> None:
    jpeg = encode(photo(), "JPEG")
    appended = jpeg + b"MotionPhoto trailer: a whole video could be here"
    sent = prepare(load_image(appended), CLOUD).data or b""
    assert sent == jpeg


def test_a_single_scan_jpeg_is_walked_without_searching_its_coded_data(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = encode(photo(), "JPEG", exif=camera_exif(), comment=b"hidden comment")
    image_data = original.index(b"\xff\xda") + 2  # the scan header, then the coded data
    searched: list[int] = []
    marker = _media._JPEG_MARKER

    class Spy:
        def match(self, data: bytes, pos: int) -> re.Match[bytes] | None:
            return marker.match(data, pos)

        def search(self, data: bytes, pos: int) -> re.Match[bytes] | None:
            searched.append(pos)
            return marker.search(data, pos)

    monkeypatch.setattr(_media, "_JPEG_MARKER", Spy())
    sent = prepare(load_image(original), CLOUD).data or b""
    assert not [pos for pos in searched if pos > image_data]
    assert sent.endswith(scan(original)) and b"Canon" not in sent
    assert b"hidden comment" not in sent


def test_segments_between_progressive_scans_are_found_and_stripped() -> None:
    progressive = encode(photo(), "JPEG", progressive=True)
    assert progressive.count(b"\xff\xda") > 1
    second_scan = progressive.index(b"\xff\xda", progressive.index(b"\xff\xda") + 2)
    note = b"hidden comment"
    commented = (progressive[:second_scan] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big")
                 + note + progressive[second_scan:])
    sent = prepare(load_image(commented), CLOUD).data or b""
    assert sent == progressive
    assert np.array_equal(pixels(sent), pixels(commented))


def test_an_mpo_sends_its_first_image_stripped() -> None:
    buffer = io.BytesIO()
    first = encode(photo(), "JPEG", exif=camera_exif())
    second = photo(48, 32)
    Image.open(io.BytesIO(first)).save(buffer, "MPO", save_all=True, append_images=[second],
                                       exif=camera_exif())
    mpo = buffer.getvalue()
    assert Image.open(io.BytesIO(mpo)).format == "MPO" and mpo.endswith(b"\xff\xd9")
    loaded = load_image(mpo)
    sent = prepare(loaded, CLOUD).data or b""
    assert sent.count(b"\xff\xd8") == 1 and sent.endswith(b"\xff\xd9")  # one image, whole
    assert b"Canon" not in sent and b"MPF\x00" not in sent
    assert np.array_equal(pixels(sent), pixels(mpo))  # the MPO's first frame


def test_png_text_time_and_exif_chunks_are_dropped(icc: bytes) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hidden comment")
    info.add_text("Author", "Canon", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add(b"tIME", b"\x07\xe6\x01\x02\x03\x04\x05")
    original = encode(photo(), "PNG", pnginfo=info, exif=camera_exif(), icc_profile=icc)
    for kind in (b"tEXt", b"zTXt", b"iTXt", b"tIME", b"eXIf", b"iCCP"):
        assert kind in original
    sent = prepare(load_image(original), CLOUD).data or b""
    assert len(sent) < len(original)
    for kind in (b"tEXt", b"zTXt", b"iTXt", b"tIME", b"eXIf"):
        assert kind not in sent
    assert not [secret for secret in SECRETS if secret in sent]
    assert np.array_equal(pixels(sent), pixels(original))
    assert Image.open(io.BytesIO(sent)).info["icc_profile"] == icc


def test_webp_exif_and_xmp_chunks_are_dropped(icc: bytes) -> None:
    original = encode(photo(), "WEBP", quality=80, exif=camera_exif(), xmp=XMP, icc_profile=icc)
    assert b"EXIF" in original and b"XMP " in original
    sent = prepare(load_image(original), CLOUD).data or b""
    assert len(sent) < len(original)
    assert b"EXIF" not in sent and b"XMP " not in sent
    assert not [secret for secret in SECRETS if secret in sent]
    assert int.from_bytes(sent[4:8], "little") == len(sent) - 8  # RIFF size fixed
    flags = sent[20]  # VP8X: ICC still flagged, EXIF and XMP no longer
    assert sent[12:16] == b"VP8X" and flags & 0x20 and not flags & 0x0C
    reopened = Image.open(io.BytesIO(sent))
    assert np.array_equal(np.asarray(reopened), pixels(original))
    assert reopened.info["icc_profile"] == icc and "exif" not in reopened.info


def test_re_encoded_images_carry_the_icc_profile_and_no_metadata(icc: bytes) -> None:
    original = encode(photo(400, 200), "JPEG", exif=camera_exif(), comment=b"hidden comment",
                      xmp=XMP, icc_profile=icc)
    prepared = prepare(load_image(original), MediaLimits(formats=("jpeg",), max_long_edge=100))
    sent = prepared.data or b""
    assert prepared.sent.resized and Image.open(io.BytesIO(sent)).size == (100, 50)
    assert not [secret for secret in SECRETS if secret in sent]
    assert Image.open(io.BytesIO(sent)).info.get("icc_profile") == icc


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_keep_image_metadata_sends_the_original_bytes(fmt: str, keep_setting: None) -> None:
    original = encode(photo(), fmt, exif=camera_exif())
    assert b"Canon" in original
    assert prepare_all([load_image(original)], CLOUD, provider="x:y")[0].data != original
    mmsdk.configure(keep_image_metadata=True)
    assert prepare_all([load_image(original)], CLOUD, provider="x:y")[0].data == original
    assert prepare(load_image(original), CLOUD).data == original


def test_keep_image_metadata_on_a_re_encode_keeps_exif_but_not_the_orientation() -> None:
    original = encode(photo(40, 20), "JPEG", exif=camera_exif(orientation=6))
    sent = prepare(load_image(original), CLOUD, keep_metadata=True).data or b""
    exif = Image.open(io.BytesIO(sent)).getexif()
    assert exif.get(0x010F) == "Canon" and 0x0112 not in exif
    assert Image.open(io.BytesIO(sent)).size == (20, 40)


def quadrants(width: int = 40, height: int = 20) -> Image.Image:
    """Red left half, blue right half: where red ends up shows the rotation."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_orientation_is_applied_to_what_cloud_providers_receive(fmt: str) -> None:
    original = encode(quadrants(), fmt, exif=camera_exif(orientation=6))
    loaded = load_image(original)
    assert loaded.size == (20, 40)
    prepared = prepare(loaded, CLOUD)
    received = Image.open(io.BytesIO(prepared.data or b""))
    assert received.size == (20, 40) == (prepared.sent.width, prepared.sent.height)
    assert received.getexif().get(0x0112, 1) == 1
    top, bottom = received.convert("RGB").getpixel((10, 5)), \
        received.convert("RGB").getpixel((10, 35))
    assert top[0] > 200 > bottom[0]  # 6 = rotate 90 clockwise: the left (red) half is on top


def test_result_sent_matches_the_bytes_sent_for_a_rotated_photo() -> None:
    original = encode(quadrants(), "JPEG", exif=camera_exif(orientation=6))
    with TestProvider("cloudy", local=False, limits=CLOUD) as fake:
        result = mmsdk.understand("what?", images=[original], provider="cloudy:m")
    sent = fake.calls[0].images[0].data  # type: ignore[attr-defined]
    assert Image.open(io.BytesIO(sent)).size == (result.sent[0].width, result.sent[0].height) \
        == (20, 40)
    assert result.sent[0].bytes == len(sent)
    assert b"Canon" not in sent


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_stripped_image_s_data_url_and_base64_match_its_bytes(fmt: str, icc: bytes) -> None:
    import base64

    original = encode(photo(300, 200), fmt, exif=camera_exif(), icc_profile=icc)
    prepared = prepare(load_image(original), CLOUD)
    assert f"{prepared.sent.bytes} bytes" in repr(prepared)
    url = prepared.data_url()  # encoded from the kept pieces, before they are ever joined
    sent = prepared.data or b""
    assert len(sent) == prepared.sent.bytes and b"Canon" not in sent
    assert url == f"data:image/{fmt.lower()};base64,{base64.b64encode(sent).decode()}"
    assert prepared.base64() == url.partition(",")[2]
    assert np.array_equal(pixels(sent), pixels(original))
