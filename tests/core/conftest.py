"""Fixtures for the core tests: sample images and a registered test provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image
from samples import encode

from mmsdk.testing import TestProvider


@pytest.fixture
def png_bytes() -> bytes:
    return encode(Image.new("RGB", (40, 30), (200, 10, 10)))


@pytest.fixture
def fake() -> Iterator[TestProvider]:
    with TestProvider("fake") as provider:
        yield provider


@pytest.fixture
def primary() -> Iterator[TestProvider]:
    """A cloud-like (not local) scriptable provider, ``primary:ANY``."""
    with TestProvider("primary", local=False) as provider:
        yield provider


@pytest.fixture
def backup() -> Iterator[TestProvider]:
    """A local scriptable provider, ``backup:ANY``, for routes to fall back on."""
    with TestProvider("backup") as provider:
        yield provider
