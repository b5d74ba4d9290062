"""URL inputs: fetched with caps and timeouts, never from private or metadata addresses."""

from __future__ import annotations

import pytest
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk._fetch import check_address
from mmsdk._media import load_image
from mmsdk._settings import Settings

ALLOW = Settings(allow_private_urls=True)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "224.0.0.1", "100.64.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::"],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert check_address(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(address) is None


def test_loopback_url_refused_by_default_without_a_request(
        loopback: LoopbackServer, png_bytes: bytes) -> None:
    loopback.queue(Reply(body=png_bytes))
    with pytest.raises(mmsdk.InvalidInputError, match=r"loopback.*allow_private_urls"):
        load_image(f"{loopback.url}/a.png")
    assert loopback.received == []


def test_metadata_host_refused_before_resolution() -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="metadata"):
        load_image("http://metadata.google.internal/computeMetadata/v1/")


def test_allowed_when_the_user_says_so(loopback: LoopbackServer, png_bytes: bytes) -> None:
    loopback.queue(Reply(body=png_bytes))
    loaded = load_image(f"{loopback.url}/a.png", settings=ALLOW)
    assert loaded.image.size == (40, 30)
    assert loopback.received[0].path == "/a.png"


def test_redirect_to_a_private_host_is_checked_again(
        loopback: LoopbackServer, png_bytes: bytes) -> None:
    port = loopback.url.rsplit(":", 1)[1]
    loopback.queue(Reply(status=302, headers={"location": f"http://localhost:{port}/b.png"}),
                   Reply(body=png_bytes))
    settings = Settings(url_allow_hosts=("127.0.0.1",))
    with pytest.raises(mmsdk.InvalidInputError, match="localhost resolves to"):
        load_image(f"{loopback.url}/a.png", settings=settings)
    assert [r.path for r in loopback.received] == ["/a.png"]


def test_redirects_are_followed_and_capped(loopback: LoopbackServer, png_bytes: bytes) -> None:
    loopback.queue(Reply(status=301, headers={"location": "/b.png"}), Reply(body=png_bytes))
    assert load_image(f"{loopback.url}/a.png", settings=ALLOW).image.size == (40, 30)
    loopback.default = Reply(status=302, headers={"location": "/again"})
    with pytest.raises(mmsdk.InvalidInputError, match="more than 2 redirects"):
        load_image(f"{loopback.url}/a.png", settings=Settings(allow_private_urls=True,
                                                             url_max_redirects=2))


def test_redirect_to_another_scheme_is_refused(loopback: LoopbackServer) -> None:
    loopback.queue(Reply(status=302, headers={"location": "file:///etc/passwd"}))
    with pytest.raises(mmsdk.InvalidInputError, match="scheme 'file'"):
        load_image(f"{loopback.url}/a.png", settings=ALLOW)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_byte_cap_applies_while_streaming(loopback: LoopbackServer, chunked: bool) -> None:
    loopback.queue(Reply(body=b"x" * 50_000, chunked=chunked))
    settings = Settings(allow_private_urls=True, max_input_bytes=10_000)
    with pytest.raises(mmsdk.InvalidInputError, match="larger than 10000 bytes"):
        load_image(f"{loopback.url}/big.png", settings=settings)


def test_http_errors_and_timeouts(loopback: LoopbackServer) -> None:
    loopback.queue(Reply(status=404, body={"error": "nope"}))
    with pytest.raises(mmsdk.InvalidInputError, match="HTTP 404"):
        load_image(f"{loopback.url}/a.png", settings=ALLOW)
    loopback.queue(Reply(hang=1.0, body=b"late"))
    settings = Settings(allow_private_urls=True, url_read_timeout=0.2)
    with pytest.raises(mmsdk.InvalidInputError, match="timed out"):
        load_image(f"{loopback.url}/slow.png", settings=settings)


def test_non_image_body_is_reported(loopback: LoopbackServer) -> None:
    loopback.queue(Reply(body=b"<html>hello</html>"))
    with pytest.raises(mmsdk.InvalidInputError, match="not an image"):
        load_image(f"{loopback.url}/page", settings=ALLOW)


def test_environment_flag_allows_private_urls(
        monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, png_bytes: bytes) -> None:
    monkeypatch.setenv("MMSDK_ALLOW_PRIVATE_URLS", "1")
    loopback.queue(Reply(body=png_bytes))
    assert load_image(f"{loopback.url}/a.png", settings=Settings()).image.size == (40, 30)
