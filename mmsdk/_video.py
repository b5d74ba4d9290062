"""Video inputs: checked paths, and evenly spaced frames for image-only models.

Frame sampling uses PyAV (``pip install 'mmsdk[video]'``), imported on first use.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import InvalidInputError, ProviderUnavailableError
from ._media import LoadedImage, check_regular_file, read_capped
from ._settings import Settings

__all__ = ["VideoInput", "load_video", "sample_frames"]


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


def sample_frames(video: VideoInput, count: int) -> list[LoadedImage]:
    """Decode *count* frames spread evenly over *video*."""
    if count < 1:
        raise InvalidInputError(f"frames must be at least 1, got {count}.")
    try:
        import av
    except ImportError:
        raise ProviderUnavailableError(
            "Sampling video frames needs PyAV.", fix="pip install 'mmsdk[video]'"
        ) from None
    try:
        with av.open(str(video.path)) as container:
            total = container.streams.video[0].frames
            if total > 0:  # known length: keep only the frames we want
                wanted = _spread(total, count)
                picked = [frame.to_image() for index, frame in  # type: ignore[no-untyped-call]
                          enumerate(container.decode(video=0)) if index in wanted]
            else:
                decoded = [frame.to_image() for frame in container.decode(video=0)]  # type: ignore[no-untyped-call]
                picked = [decoded[i] for i in sorted(_spread(len(decoded), count))]
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise InvalidInputError(f"video ({video.path}): cannot be decoded ({exc}).",
                                code="input_corrupt") from None
    if not picked:
        raise InvalidInputError(f"video ({video.path}): has no frames.", code="input_corrupt")
    return [LoadedImage(image, f"{video.path.name} frame {i}") for i, image in enumerate(picked)]


def _spread(total: int, count: int) -> set[int]:
    """Indices of *count* frames spread evenly over *total* (fewer if there are fewer)."""
    count = min(count, total)
    return {int((i + 0.5) * total / count) for i in range(count)}
