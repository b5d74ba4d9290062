"""Fixtures shared by every test: a loopback server, a clean environment, a pinned date."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from breaker_clock import Clock
from loopback import LoopbackServer

import mmsdk
from mmsdk._health import health_book
from mmsdk.testing import pinned_today

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


# The date the plugins' lifecycle tables were last checked (their LIFECYCLE_CHECKED;
# a plugin's conftest pins its own). Retired names, deprecation notes and warnings
# depend on the date: pinned, no test changes its verdict with the calendar.
LIFECYCLE_CHECKED = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real keys or endpoints; subprocesses get the pinned date."""
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMSDK_TODAY", LIFECYCLE_CHECKED.isoformat())


@pytest.fixture(autouse=True)
def _pinned_today() -> Iterator[dt.date]:
    """Every test sees LIFECYCLE_CHECKED as today; a test that needs another date pins it."""
    with pinned_today(LIFECYCLE_CHECKED) as day:
        yield day


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    """Breakers and retry budgets are process-wide memory: no test inherits another's."""
    mmsdk.reset_health()
    yield
    mmsdk.reset_health()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The breakers' clock, set by hand: ``clock.now += 31`` passes a 30 s cooldown."""
    fake = Clock()
    monkeypatch.setattr(health_book(), "clock", fake)
    return fake
