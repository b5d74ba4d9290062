"""gemini: per-router keys (``Router(credentials={"gemini": ...})``) reach the wire."""

from __future__ import annotations

import logging

import mmsdk_gemini
import pytest
from loopback import LoopbackServer, Received, Reply
from tenants import assert_tenants_kept_apart

import mmsdk
from mmsdk._registry import fingerprint, get_registry

# Not key-shaped on purpose (as the conftest's KEY): only Router's add_secret can hide them.
TENANT_A = "gk-tenant-a-0123456789abcd"
TENANT_B = "gk-tenant-b-0123456789abcd"


def test_the_router_key_is_sent_instead_of_the_environments(api: LoopbackServer, wire) -> None:
    api.default = Reply(body=wire.answer("ok"))
    tenant_a = mmsdk.Router(wire.PROVIDER, credentials={"gemini": TENANT_A})
    tenant_b = mmsdk.Router(wire.PROVIDER, credentials={"gemini": TENANT_B})
    assert tenant_a.understand("x").text == "ok"
    assert tenant_b.understand("x").text == "ok"
    assert mmsdk.understand("x", provider=wire.PROVIDER).text == "ok"
    assert tenant_a.understand("again").text == "ok"
    assert [r.headers["x-goog-api-key"] for r in api.received] == [
        TENANT_A, TENANT_B, wire.KEY, TENANT_A]
    assert get_registry().is_loaded(wire.PROVIDER, fingerprint(TENANT_A))
    assert get_registry().is_loaded(wire.PROVIDER, fingerprint(TENANT_B))


def test_without_an_environment_key_the_router_key_makes_gemini_available(
        loopback: LoopbackServer, wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback.url)  # no GEMINI_API_KEY
    loopback.default = Reply(body=wire.answer("ok"))
    with pytest.raises(mmsdk.ProviderUnavailableError, match="GEMINI_API_KEY"):
        mmsdk.understand("x", provider=wire.PROVIDER)
    router = mmsdk.Router(wire.PROVIDER, credentials={"gemini": TENANT_A})
    assert router.understand("x").text == "ok"
    loopback.default = Reply(events=wire.chunks("o", "k"))
    assert "".join(router.understand("x", stream=True)) == "ok"
    assert {r.headers["x-goog-api-key"] for r in loopback.received} == {TENANT_A}
    assert router.preload("understand") == [wire.PROVIDER]


async def test_the_async_path_uses_the_router_key(loopback: LoopbackServer, wire,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", loopback.url)  # no GEMINI_API_KEY
    loopback.default = Reply(body=wire.answer("ok"))
    router = mmsdk.Router(wire.PROVIDER, credentials={"gemini": TENANT_B})
    assert (await router.aunderstand("x")).text == "ok"
    assert loopback.received[0].headers["x-goog-api-key"] == TENANT_B


def test_the_router_key_wins_over_configure(api: LoopbackServer, wire) -> None:
    mmsdk_gemini.configure(api_key="gk-configured-0123456789")
    api.default = Reply(body=wire.answer("ok"))
    mmsdk.Router(wire.PROVIDER, credentials={"gemini": TENANT_B}).understand("x")
    assert api.received[0].headers["x-goog-api-key"] == TENANT_B


def test_a_vertex_project_cannot_take_a_router_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "1")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "some-project")
    router = mmsdk.Router("gemini:gemini-3.8-flash", credentials={"gemini": TENANT_A})
    with pytest.raises(mmsdk.ProviderUnavailableError, match="Application Default Credentials"):
        router.understand("x")


def test_one_tenants_outage_opens_only_its_breaker_and_never_shows_its_key(
        api: LoopbackServer, wire, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def reply(received: Received) -> Reply:  # the failing tenant's key draws a 503 echoing it
        key = received.headers.get("x-goog-api-key", "")
        if key == TENANT_A:
            return Reply(status=503, body=wire.error(503, "UNAVAILABLE", f"down for {key}"))
        return Reply(body=wire.answer("ok"))

    api.default = reply
    assert_tenants_kept_apart("gemini", wire.PROVIDER, TENANT_A, TENANT_B, caplog)
