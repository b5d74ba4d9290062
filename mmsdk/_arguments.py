"""The types of the public calls' arguments: images, videos, providers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Union

if TYPE_CHECKING:
    import numpy.typing as npt
    from PIL import Image

    from ._router import Router

__all__ = ["Detail", "ImageInput", "Images", "ProviderArg", "VideoPath"]

ImageInput: TypeAlias = Union[str, "os.PathLike[str]", bytes, bytearray, "Image.Image",
                              "npt.NDArray[Any]"]
"""One image: a path, an ``http(s)`` or ``data:`` URL, encoded bytes, a PIL image or an array."""
Images: TypeAlias = ImageInput | Sequence[ImageInput]
"""One image or a list of them."""
VideoPath: TypeAlias = Union[str, "os.PathLike[str]"]
Detail: TypeAlias = Literal["low", "high", "auto"]
ProviderArg: TypeAlias = Union[str, Sequence[str], "Router", None]
"""``"PLUGIN:MODEL"``, a fallback list of them, a :class:`Router`, or ``None`` (the default route)."""
