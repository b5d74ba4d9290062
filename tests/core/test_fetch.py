"""URL inputs: fetched with caps and timeouts, never from private or metadata addresses."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from keyless import assert_keyless
from loopback import LoopbackServer, Reply

import mmsdk
from mmsdk._fetch import check_address, fetch_url
from mmsdk._media import load_image, load_images
from mmsdk._settings import Settings
from mmsdk.testing import TestProvider

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


# -- total time limit -------------------------------------------------------------
class _Drip:
    """A loopback server that answers 200 and then sends one byte every 0.2 s."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow.png"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n"
                                   b"content-type: image/png\r\n\r\n")
                while not self.stop.wait(0.2):
                    connection.sendall(b"x")
            except OSError:
                pass  # the client gave up: that is the point

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(2)


@pytest.fixture
def drip() -> Iterator[_Drip]:
    server = _Drip()
    yield server
    server.close()


def test_a_slow_drip_cannot_outlast_url_total_timeout(drip: _Drip) -> None:
    settings = Settings(allow_private_urls=True, url_total_timeout=0.5, url_read_timeout=20)
    began = time.monotonic()
    with pytest.raises(mmsdk.InvalidInputError, match=r"url_total_timeout=0.5s") as info:
        load_image(drip.url, settings=settings)
    assert time.monotonic() - began < 0.5 + 5
    assert "slow.png" in str(info.value)


def test_a_silent_server_is_held_to_the_total_limit_not_the_read_timeout(
        loopback: LoopbackServer) -> None:
    loopback.queue(Reply(hang=8.0, body=b"late"))
    settings = Settings(allow_private_urls=True, url_total_timeout=0.5, url_read_timeout=20)
    began = time.monotonic()
    with pytest.raises(mmsdk.InvalidInputError, match="url_total_timeout"):
        load_image(f"{loopback.url}/a.png", settings=settings)
    assert time.monotonic() - began < 0.5 + 5


def test_the_callers_deadline_passing_is_a_timeout_error(drip: _Drip) -> None:
    settings = Settings(allow_private_urls=True, url_total_timeout=30)
    began = time.monotonic()
    with pytest.raises(mmsdk.ProviderTimeoutError, match="deadline passed while fetching inputs"):
        load_images([drip.url], name="images", settings=settings, deadline=began + 0.5)
    assert time.monotonic() - began < 0.5 + 5


def test_a_deadline_already_passed_fetches_nothing(loopback: LoopbackServer,
                                                   png_bytes: bytes) -> None:
    loopback.queue(Reply(body=png_bytes))
    with pytest.raises(mmsdk.ProviderTimeoutError, match="deadline"):
        load_image(f"{loopback.url}/a.png", settings=ALLOW, deadline=time.monotonic() - 1)
    assert loopback.received == []


def test_a_far_deadline_changes_nothing(loopback: LoopbackServer, png_bytes: bytes) -> None:
    loopback.queue(Reply(body=png_bytes))
    loaded = fetch_url(f"{loopback.url}/a.png", ALLOW, label="image",
                       deadline=time.monotonic() + 60)
    assert loaded == png_bytes


# -- malformed URLs and passwords ---------------------------------------------------
@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        pytest.param("http://0177.0.0.1:{port}/a.png", "non-standard", id="octal"),
        pytest.param("http://0x7f.0.0.1:{port}/a.png", "non-standard", id="hex"),
        pytest.param("http://2130706433:{port}/a.png", "non-standard", id="one-number"),
        pytest.param("http://127.1:{port}/a.png", "non-standard", id="two-parts"),
        pytest.param("http://[::1", "not a valid URL", id="unclosed-bracket"),
        pytest.param("http://127.0.0.1:99999/a.png", "invalid port", id="port-too-big"),
        pytest.param("http://127.0.0.1:0/a.png", "invalid port", id="port-zero"),
        pytest.param("http://127.0.0.1:abc/a.png", "not a valid URL", id="port-not-a-number"),
        pytest.param("http:///a.png", "no host name", id="no-host"),
    ],
)
def test_malformed_urls_are_invalid_input_and_never_reach_the_server(
        loopback: LoopbackServer, png_bytes: bytes, url: str, fragment: str) -> None:
    loopback.default = Reply(body=png_bytes)
    port = loopback.url.rsplit(":", 1)[1]
    with pytest.raises(mmsdk.InvalidInputError, match=fragment):
        load_image(url.format(port=port), settings=ALLOW)  # even with private URLs allowed
    assert loopback.received == []


def test_a_redirect_without_location_is_invalid_input(loopback: LoopbackServer) -> None:
    loopback.queue(Reply(status=302))
    with pytest.raises(mmsdk.InvalidInputError, match="no Location header"):
        load_image(f"{loopback.url}/a.png", settings=ALLOW)


def test_a_redirect_to_a_malformed_url_is_invalid_input(loopback: LoopbackServer) -> None:
    loopback.queue(Reply(status=302, headers={"location": "http://[::1"}))
    with pytest.raises(mmsdk.InvalidInputError, match=r"(?i)invalid URL"):
        load_image(f"{loopback.url}/a.png", settings=ALLOW)


@pytest.mark.parametrize(
    ("settings", "replies", "path"),
    [
        pytest.param(Settings(), [], "/a.png", id="refused-address"),
        pytest.param(ALLOW, [Reply(status=404)], "/a.png", id="http-error"),
        pytest.param(ALLOW, [Reply(body=b"<html>")], "/a.png", id="not-an-image"),
        pytest.param(Settings(allow_private_urls=True, url_max_redirects=1),
                     [Reply(status=302, headers={"location": "/again"})] * 3, "/a.png",
                     id="redirect-loop"),
        pytest.param(Settings(allow_private_urls=True, url_read_timeout=0.2),
                     [Reply(hang=1.0, body=b"late")], "/a.png", id="timeout"),
        pytest.param(ALLOW, [], ":notaport/a.png", id="malformed"),
    ],
)
def test_no_error_names_the_url_password(loopback: LoopbackServer, settings: Settings,
                                         replies: list[Reply], path: str) -> None:
    loopback.queue(*replies)
    url = loopback.url.replace("http://", "http://alice:s3cr3t-pw@") + path
    if path.startswith(":"):
        url = "http://alice:s3cr3t-pw@127.0.0.1" + path
    with pytest.raises(mmsdk.InvalidInputError) as info:
        load_image(url, settings=settings)
    assert_keyless(info.value, "s3cr3t-pw", only_mmsdk=False)
    assert "***@" in str(info.value) or "not a valid URL" in str(info.value)


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_policy_deadline_covers_fetching_url_inputs(drip: _Drip, monkeypatch: pytest.MonkeyPatch,
                                                    run_async: bool) -> None:
    monkeypatch.setattr(mmsdk._settings, "_settings", Settings(allow_private_urls=True))
    router = mmsdk.Router("deadline:m", mmsdk.Policy(deadline=0.5))
    began = time.monotonic()
    with TestProvider("deadline") as provider, pytest.raises(mmsdk.ProviderTimeoutError,
                                                             match="deadline"):
        if run_async:
            asyncio.run(router.aunderstand("x", images=[drip.url]))
        else:
            router.understand("x", images=[drip.url])
    assert time.monotonic() - began < 0.5 + 5  # the 30 s url_total_timeout never came into it
    assert provider.calls == []
