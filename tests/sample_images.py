"""Small image helpers shared by tests."""

from __future__ import annotations

import io

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """*image* encoded as *fmt* bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()
