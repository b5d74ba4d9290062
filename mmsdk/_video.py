"""Video inputs: checked paths, and timed frames for image-only models.

Frame sampling uses PyAV (``pip install 'mmsdk[video]'``), imported on first use.
Only the frames a call needs are decoded: decoding starts at the keyframe
before each wanted frame (seeking there over long gaps) and stops at it.
"""

from __future__ import annotations

import functools
import math
import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import InvalidInputError, ProviderUnavailableError
from ._media import LoadedImage, check_regular_file, read_capped
from ._settings import Settings

__all__ = ["DEFAULT_FRAMES", "MAX_FRAMES", "Sampled", "VideoInput", "frames_note", "load_video",
           "sample_frames", "video_seconds"]


@dataclass(frozen=True)
class VideoInput:
    """A checked video file. Providers with native video read ``path`` or :meth:`read_bytes`.

    Attributes:
        path: the file (a regular file when checked).
        mime_type: ``video/...`` from the file name.
        size: bytes, when checked.
        max_bytes: the byte cap in force when checked; :meth:`read_bytes` enforces it.
    """

    path: Path
    mime_type: str
    size: int
    max_bytes: int | None = field(default=None, repr=False)

    def read_bytes(self) -> bytes:
        """The file's bytes, read only if it is still a regular file and under the cap."""
        cap = self.max_bytes if self.max_bytes is not None else max(self.size, 1)
        return read_capped(self.path, cap, f"video ({self.path})",
                           hint="raise mmsdk.configure(max_video_bytes=...)")


def load_video(source: Any, settings: Settings) -> VideoInput:
    """Check that *source* is a regular video file under the size cap, without reading it.

    A FIFO, device, socket or directory is refused without being opened.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"video: expected a file path, got {type(source).__name__}.")
    text = os.fsdecode(source)
    if "\x00" in text:
        raise InvalidInputError("video: the path contains a NUL byte.")
    path = Path(text)
    size = check_regular_file(path, f"video ({path})").st_size
    if size == 0:
        raise InvalidInputError(f"video ({path}): is empty.", code="input_corrupt")
    if size > settings.max_video_bytes:
        raise InvalidInputError(
            f"video ({path}): {size} bytes is over the {settings.max_video_bytes}-byte cap; "
            "raise mmsdk.configure(max_video_bytes=...).", code="input_too_large"
        )
    mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
    if not mime.startswith("video/"):
        raise InvalidInputError(f"video ({path}): {mime} is not a video type.")
    return VideoInput(path=path, mime_type=mime, size=size, max_bytes=settings.max_video_bytes)


DEFAULT_FRAMES = 8
"""Frames sampled when neither ``frames`` nor ``fps`` is given."""
MAX_FRAMES = 256
"""The most frames one call samples (``fps`` sampling of a long video stops here)."""
SPARSE_SECONDS = 10.0
"""Default sampling further apart than this is reported in ``result.warnings``."""


@dataclass(frozen=True)
class Sampled:
    """Frames taken from a video, with when they show.

    Attributes:
        frames: the decoded frames, in time order.
        times: each frame's time in seconds from the start of the video.
        duration: the video's length in seconds, when known.
        warnings: what the caller asked for and did not get (``frames``
            capped, sparse default sampling); they reach ``result.warnings``.
        decoded: how many frames were decoded to get them.
        seeks: how many times decoding jumped to a keyframe.
    """

    frames: list[LoadedImage]
    times: list[float]
    duration: float | None = None
    warnings: list[str] = field(default_factory=list)
    decoded: int = 0
    seeks: int = 0


def video_seconds(video: VideoInput) -> float | None:
    """How long *video* lasts, read from its header (no frame decoded); ``None`` when
    PyAV is missing or the file does not say."""
    try:
        stat = video.path.stat()
    except OSError:
        return None
    return _seconds(str(video.path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _seconds(path: str, size: int, mtime_ns: int) -> float | None:
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return _duration(container, stream, float(stream.time_base or 0))
    except (av.error.FFmpegError, ValueError, IndexError):
        return None


def _duration(container: Any, stream: Any, base: float) -> float | None:
    """The video stream's length in seconds (else the container's), when the file says."""
    if stream.duration and base:
        return float(stream.duration * base)
    return container.duration / 1_000_000 if container.duration else None


def sample_frames(video: VideoInput, count: int | None = None, *,
                  fps: float | None = None) -> Sampled:
    """Decode the frames a call needs from *video*, and only those.

    Args:
        video: the checked file.
        count: how many frames, spread evenly over the video; with *fps*, the most
            frames *fps* sampling may take (spread evenly over the video when it
            would take more). ``None``: :data:`DEFAULT_FRAMES`, or with *fps* up to
            :data:`MAX_FRAMES`.
        fps: frames per second of video to sample.

    Decoding seeks to the keyframe before each wanted frame when the gap to it is
    longer than the keyframe interval, and decodes forward from there; frames
    between are demuxed, not decoded.
    """
    if count is not None and count < 1:
        raise InvalidInputError(f"frames must be at least 1, got {count}.")
    if fps is not None and not fps > 0:
        raise InvalidInputError(f"fps must be more than 0, got {fps}.")
    try:
        import av
    except ImportError:
        raise ProviderUnavailableError(
            "Sampling video frames needs PyAV.", fix="pip install 'mmsdk[video]'"
        ) from None
    name = video.path.name
    try:
        with av.open(str(video.path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            base = float(stream.time_base or 0)
            start = float(stream.start_time * base) if stream.start_time and base else 0.0
            duration = _duration(container, stream, base)
            total = stream.frames or (round(duration * rate) if duration and rate else 0)
            if total > 0 and rate > 0 and base > 0:
                indices, warnings = _plan(total, rate, count, fps)
                targets = [start + index / rate for index in indices]
                picked, decoded, seeks = _seek_and_decode(container, stream, targets,
                                                          0.5 / rate)
            else:  # no index or rate to seek by: decode everything, keep what was asked
                every = list(container.decode(video=0))
                rate = len(every) / duration if duration else 1.0
                indices, warnings = _plan(len(every), rate, count, fps)
                picked, decoded, seeks = [every[i] for i in indices], len(every), 0
            shown = [(frame.to_image(), float(frame.time or 0.0) - start) for frame in picked]
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise InvalidInputError(f"video ({video.path}): cannot be decoded ({exc}).",
                                code="input_corrupt") from None
    if not shown:
        raise InvalidInputError(f"video ({video.path}): has no frames.", code="input_corrupt")
    return Sampled([LoadedImage(image, f"{name} frame {i}") for i, (image, _) in enumerate(shown)],
                   [max(0.0, when) for _, when in shown], duration, warnings, decoded, seeks)


def frames_note(name: str, times: list[float], *, first: int = 1, total: int | None = None,
                duration: float | None = None, trailing: bool = False) -> str:
    """The text that tells a model when each attached frame shows.

    ``"The 4 images are frames of the video clip.mp4 (12.0 s long), in order: Frame 1 at
    1.5 s, Frame 2 at 4.5 s, ..."``. For a chunk, *first* numbers its first frame and
    *total* says how many were sampled in all; *trailing*: the caller's own images
    come before the frames.
    """
    count = len(times)
    digits = 1 if len({round(t, 1) for t in times}) == count else 2
    listed = ", ".join(f"Frame {first + i} at {t:.{digits}f} s" for i, t in enumerate(times))
    last = "last " if trailing else ""
    subject = f"The {last}{count} images are" if count > 1 else f"The {last}image is"
    if total and total != count:
        span = f"frame {first}" if count == 1 else f"frames {first}-{first + count - 1}"
        what = f"{span} of the {total} sampled from the video {name}"
    else:
        what = f"{'frames' if count > 1 else 'a frame'} of the video {name}"
    length = f" ({duration:.1f} s long)" if duration else ""
    return f"{subject} {what}{length}, in order: {listed}."


def _plan(total: int, rate: float, count: int | None,
          fps: float | None) -> tuple[list[int], list[str]]:
    """Which frame indices to take, and the warnings the caller should see."""
    seconds = total / rate
    warnings: list[str] = []
    if fps is not None:
        indices = sorted({int(k / fps * rate + 1e-9) for k in range(math.ceil(seconds * fps))
                          if int(k / fps * rate + 1e-9) < total})
        cap = count if count is not None else MAX_FRAMES
        if len(indices) > cap:
            reason = f"frames={count}" if count is not None else f"the {MAX_FRAMES}-frame limit"
            warnings.append(
                f"fps={fps:g} would sample {len(indices)} frames over {seconds:.1f} s; capped "
                f"at {reason} (one every {seconds / cap:.2f} s).")
            indices = _spread(total, cap)
        return indices, warnings
    if count is not None and count > total:
        warnings.append(f"frames={count} is more than the video's {total} frames; "
                        f"sent all {total}.")
    wanted = DEFAULT_FRAMES if count is None else count
    indices = _spread(total, wanted)
    if count is None and seconds / len(indices) > SPARSE_SECONDS:
        warnings.append(
            f"Sampled {len(indices)} frames (the default) from {seconds:.1f} s of video, one "
            f"every {seconds / len(indices):.1f} s; pass frames= or fps= to sample more.")
    return indices, warnings


def _spread(total: int, count: int) -> list[int]:
    """Indices of *count* frames spread evenly over *total* (fewer if there are fewer)."""
    count = min(count, total)
    return sorted({int((i + 0.5) * total / count) for i in range(count)})


def _decode(packet: Any) -> list[Any]:
    """Decode one packet (the one place frames are decoded: tests count the calls' frames)."""
    frames: list[Any] = packet.decode()
    return frames


def _seek_and_decode(container: Any, stream: Any, targets: list[float],
                     tolerance: float) -> tuple[list[Any], int, int]:
    """The first frame at or after each target time (seconds), decoding as little as possible.

    Packets are demuxed in order and kept, undecoded, from the last keyframe (or
    from the last frame picked); they are decoded only once a packet at or past
    the next target shows that target lies in this keyframe's group, and are
    dropped when a keyframe comes first. When the next target is further ahead than
    the keyframe interval seen so far, the container seeks to the keyframe
    before it instead of demuxing the way there. Returns the frames, how many
    frames were decoded, and how many seeks were made.
    """
    base = float(stream.time_base)
    picked: list[Any] = []
    decoded = seeks = 0
    pending: list[Any] = []  # packets since the last keyframe, not decoded yet
    live = False  # every packet since the last keyframe went through the decoder
    last_key: float | None = None
    interval: float | None = None  # the longest keyframe interval seen
    position: float | None = None  # time of the last decoded frame
    last_frame: Any = None
    packets = container.demux(stream)
    index = 0

    def feed(packet: Any) -> None:
        nonlocal decoded, position, last_frame, index
        for frame in _decode(packet):
            decoded += 1
            last_frame = frame
            position = float(frame.time if frame.time is not None else position or 0.0)
            while index < len(targets) and position >= targets[index] - tolerance:
                picked.append(frame)
                index += 1

    while index < len(targets):
        packet = next(packets, None)
        if packet is None:
            break
        if packet.pts is None:  # the demuxer's final empty packet: flush the decoder
            if not live:
                for held in pending:
                    feed(held)
            feed(packet)
            break
        when = packet.pts * base
        if packet.is_keyframe:
            if last_key is not None and when > last_key:
                interval = max(interval or 0.0, when - last_key)
            last_key = when
            if when <= targets[index] + tolerance:  # the target is in this group or later
                pending, live = [packet], False
                continue
        before = index
        if live:
            feed(packet)
        elif when >= targets[index] - tolerance:  # the target is in the group held
            for held in (*pending, packet):
                feed(held)
            pending, live = [], True
        else:
            pending.append(packet)
            continue
        if index > before:  # picked: hold the packets after it until the next target shows
            pending, live = [], False  # whether it is in this group (the decoder keeps its place)
        if before < index < len(targets) and interval is not None and position is not None \
                and targets[index] - position > interval:
            container.seek(int(targets[index] / base), stream=stream, backward=True,
                           any_frame=False)  # to the keyframe before it; flushes the decoder
            seeks += 1
            packets = container.demux(stream)
            pending, live, last_key = [], False, None
    if index < len(targets) and last_frame is not None:  # past the last frame: keep the last
        picked += [last_frame] * (len(targets) - index)
    return picked, decoded, seeks
