"""Reading input files is bounded: only regular files, never past the byte cap."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import mmsdk
from mmsdk._media import load_image, read_capped
from mmsdk._settings import Settings
from mmsdk._video import VideoInput, load_video

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


def finishes(call: Callable[[], Any], seconds: float = 5.0) -> BaseException | None:
    """Run *call* in a thread; fail if it is still running after *seconds* (it blocked)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call blocked: it opened a non-regular file"
    return outcome[0]


def unblock(fifo: Path) -> None:
    """Let a reader stuck opening *fifo* go (only needed when the code under test is wrong)."""
    with contextlib.suppress(OSError):  # OSError: no reader waiting, nothing to release
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture
def fifo(tmp_path: Path) -> Any:
    path = tmp_path / "photo.png"
    os.mkfifo(path)
    yield path
    unblock(path)


@needs_fifo
def test_a_fifo_image_path_is_refused_without_opening_it(fifo: Path) -> None:
    error = finishes(lambda: load_image(fifo, label="image"))
    assert isinstance(error, mmsdk.InvalidInputError)
    assert "not a regular file" in str(error) and "image" in str(error)


@needs_fifo
def test_a_fifo_video_path_is_refused_without_opening_it(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    os.mkfifo(path)
    try:
        error = finishes(lambda: load_video(path, Settings()))
    finally:
        unblock(path)
    assert isinstance(error, mmsdk.InvalidInputError)
    assert "not a regular file" in str(error)


@needs_fifo
def test_a_video_swapped_for_a_fifo_after_the_check_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 64)
    video = load_video(path, Settings())
    path.unlink()
    os.mkfifo(path)
    try:
        error = finishes(video.read_bytes)
    finally:
        unblock(path)
    assert isinstance(error, mmsdk.InvalidInputError)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_not_read_forever() -> None:
    for call in (lambda: load_image("/dev/zero"), lambda: load_video("/dev/zero", Settings())):
        error = finishes(call)
        assert isinstance(error, mmsdk.InvalidInputError)
        assert "not a regular file" in str(error)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_a_unix_socket_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError:
        pytest.skip("socket path too long here")
    try:
        with pytest.raises(mmsdk.InvalidInputError, match="not a regular file"):
            load_image(path)
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no procfs")
def test_the_cap_counts_bytes_read_not_the_reported_size() -> None:
    # procfs files are regular files that report st_size 0 and then yield content.
    assert os.stat("/proc/self/maps").st_size == 0
    with pytest.raises(mmsdk.InvalidInputError, match="over the 100-byte cap"):
        load_image("/proc/self/maps", settings=Settings(max_input_bytes=100))
    video = VideoInput(Path("/proc/self/maps"), "video/mp4", 0, max_bytes=100)
    with pytest.raises(mmsdk.InvalidInputError, match="over the 100-byte cap"):
        video.read_bytes()


def test_video_read_bytes_returns_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x01" * 100)
    assert load_video(path, Settings()).read_bytes() == b"\x01" * 100
    with pytest.raises(mmsdk.InvalidInputError, match="max_video_bytes"):
        load_video(path, Settings(max_video_bytes=50))


@pytest.mark.parametrize("path", ["photo\x00.png", "/tmp/\x00"], ids=["middle", "end"])
def test_a_path_with_a_nul_byte_is_invalid_input(path: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="NUL"):
        load_image(path)
    with pytest.raises(mmsdk.InvalidInputError, match="NUL"):
        load_video(path, Settings())


def test_a_small_file_under_a_big_cap_is_read_without_a_cap_sized_buffer(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "small.bin"
    path.write_bytes(b"\x02" * 10_000)
    tracemalloc.start()
    try:
        assert read_capped(path, 50 * 2**20, "small", hint="h") == b"\x02" * 10_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # a buffer sized to the file, not to the 50 MiB cap


def test_a_file_whose_fstat_size_is_stale_is_read_whole_up_to_the_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "changing.bin"
    content = bytes(range(256)) * 1000  # 256000 bytes
    path.write_bytes(content)
    real_fstat, real_read = os.fstat, os.read
    reported = {"size": 1000}

    def stale_fstat(fd: int) -> Any:
        return SimpleNamespace(st_mode=real_fstat(fd).st_mode, st_size=reported["size"])

    monkeypatch.setattr(os, "fstat", stale_fstat)
    assert read_capped(path, 300_000, "grown", hint="h") == content  # it grew since fstat
    with pytest.raises(mmsdk.InvalidInputError, match="over the 100000-byte cap"):
        read_capped(path, 100_000, "grown", hint="h")
    reported["size"] = 280_000
    assert read_capped(path, 300_000, "shrank", hint="h") == content
    reported["size"] = len(content)
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 999)))  # short reads
    assert read_capped(path, 300_000, "short reads", hint="h") == content
    with pytest.raises(mmsdk.InvalidInputError, match="over the 100000-byte cap"):
        read_capped(path, 100_000, "short reads", hint="h")
