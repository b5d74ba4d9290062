"""Fixtures shared by every test: a loopback server and a clean environment."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from loopback import LoopbackServer

# huggingface_hub reads these once, at import: set them before anything imports it.
# Offline, and a throwaway cache that the local plugins' fixtures seed with tiny
# checkpoints under real repo ids: no test touches the network or the real cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="mmsdk-test-hf-cache-")
atexit.register(shutil.rmtree, os.environ["HF_HUB_CACHE"], True)

SECRET_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
              "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
              "MMSDK_DEFAULT_PROVIDER", "MMSDK_ALLOW_PRIVATE_URLS")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real keys or endpoints."""
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server
