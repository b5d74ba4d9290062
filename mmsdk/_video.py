"""Video inputs: checked paths, and evenly spaced frames for image-only models.

Frame sampling uses PyAV (``pip install 'mmsdk[video]'``), imported on first use.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import InvalidInputError, ProviderUnavailableError
from ._media import LoadedImage
from ._settings import Settings

__all__ = ["VideoInput", "load_video", "sample_frames"]


@dataclass(frozen=True)
class VideoInput:
    """A checked video file. Providers with native video read ``path``."""

    path: Path
    mime_type: str
    size: int

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def load_video(source: Any, settings: Settings) -> VideoInput:
    """Check that *source* is a readable video path under the size cap."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"video: expected a file path, got {type(source).__name__}.")
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(f"video ({path}): no such file.")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInputError(f"video ({path}): is empty.")
    if size > settings.max_video_bytes:
        raise InvalidInputError(
            f"video ({path}): {size} bytes is over the {settings.max_video_bytes}-byte cap; "
            "raise mmsdk.configure(max_video_bytes=...)."
        )
    mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
    if not mime.startswith("video/"):
        raise InvalidInputError(f"video ({path}): {mime} is not a video type.")
    return VideoInput(path=path, mime_type=mime, size=size)


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
        raise InvalidInputError(f"video ({video.path}): cannot be decoded ({exc}).") from None
    if not picked:
        raise InvalidInputError(f"video ({video.path}): has no frames.")
    return [LoadedImage(image, f"{video.path.name} frame {i}") for i, image in enumerate(picked)]


def _spread(total: int, count: int) -> set[int]:
    """Indices of *count* frames spread evenly over *total* (fewer if there are fewer)."""
    count = min(count, total)
    return {int((i + 0.5) * total / count) for i in range(count)}
