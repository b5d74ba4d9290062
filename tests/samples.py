"""Small image and video helpers shared by tests."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """*image* encoded as *fmt* bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def write_clip(path: Path, *, frames: int = 12, size: tuple[int, int] = (32, 32),
               rate: int = 10, gop: int | None = None) -> Path:
    """Write an mp4 whose frames get redder, so sampled frames can be told apart.

    Frame ``i`` is solid ``(i * 240 // frames, 0, 0)``. Needs PyAV (``mmsdk[video]``).
    *gop*: a keyframe exactly every *gop* frames (else the encoder's choice,
    which for these changing frames is nearly every other frame).
    """
    import av

    with av.open(str(path), "w") as container:
        options = {"sc_threshold": "1000000000"} if gop else {}  # no keyframes on scene cuts
        stream = container.add_stream("mpeg4", rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        for index in range(frames):
            image = Image.new("RGB", size, (index * 240 // frames, 0, 0))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
