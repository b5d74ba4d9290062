"""anthropic: per-router keys (``Router(credentials={"anthropic": ...})``) reach the wire.

The installed SDK sends an API key as ``Authorization: Bearer`` (see
test_anthropic_failures.test_planted_key_never_leaks).
"""

from __future__ import annotations

import asyncio
import logging

import mmsdk_anthropic
import pytest
from loopback import LoopbackServer, Received, Reply
from tenants import assert_tenants_kept_apart

import mmsdk
from mmsdk._registry import fingerprint, get_registry

TENANT_A = "sk-ant-api03-TENANTaaaa-0123456789abcdef"
TENANT_B = "sk-ant-api03-TENANTbbbb-0123456789abcdef"


def test_the_router_key_is_sent_instead_of_the_environments(claude: LoopbackServer,
                                                            wire) -> None:
    claude.default = wire.ok("ok")
    tenant_a = mmsdk.Router(wire.PROVIDER, credentials={"anthropic": TENANT_A})
    tenant_b = mmsdk.Router(wire.PROVIDER, credentials={"anthropic": TENANT_B})
    assert tenant_a.understand("x").text == "ok"
    assert tenant_b.understand("x").text == "ok"
    assert mmsdk.understand("x", provider=wire.PROVIDER).text == "ok"
    assert tenant_a.understand("again").text == "ok"
    assert [wire.header(r, "authorization") for r in claude.received] == [
        f"Bearer {TENANT_A}", f"Bearer {TENANT_B}", f"Bearer {wire.KEY}", f"Bearer {TENANT_A}"]
    assert get_registry().is_loaded(wire.PROVIDER, fingerprint(TENANT_A))
    assert get_registry().is_loaded(wire.PROVIDER, fingerprint(TENANT_B))


def test_without_an_environment_key_the_router_key_makes_anthropic_available(
        loopback: LoopbackServer, wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)  # no ANTHROPIC_API_KEY
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    loopback.default = wire.ok("ok")
    with pytest.raises(mmsdk.ProviderUnavailableError, match="ANTHROPIC_API_KEY"):
        mmsdk.understand("x", provider=wire.PROVIDER)
    router = mmsdk.Router(wire.PROVIDER, credentials={"anthropic": TENANT_A})
    assert router.understand("x").text == "ok"
    assert asyncio.run(router.aunderstand("x")).text == "ok"
    loopback.default = Reply(events=wire.events("o", "k"))
    assert "".join(router.understand("x", stream=True)) == "ok"
    assert {wire.header(r, "authorization") for r in loopback.received} == {f"Bearer {TENANT_A}"}
    assert router.preload("understand") == [wire.PROVIDER]


def test_the_router_key_wins_over_configure_and_an_auth_token(
        claude: LoopbackServer, wire, monkeypatch: pytest.MonkeyPatch) -> None:
    mmsdk_anthropic.configure(api_key="sk-ant-api03-CONFIGURED-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "an-auth-token-0123456789")
    claude.default = wire.ok("ok")
    mmsdk.Router(wire.PROVIDER, credentials={"anthropic": TENANT_B}).understand("x")
    [sent] = claude.received
    assert wire.header(sent, "authorization") == f"Bearer {TENANT_B}"
    assert not [v for v in sent.headers.values() if "an-auth-token" in v or "CONFIGURED" in v]


def test_one_tenants_outage_opens_only_its_breaker_and_never_shows_its_key(
        claude: LoopbackServer, wire, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def reply(received: Received) -> Reply:  # the failing tenant's key draws a 529
        key = wire.header(received, "authorization") or ""
        if key.endswith(TENANT_A):
            return Reply(status=529, body=wire.error_body("overloaded_error",
                                                          f"overloaded for {key}"))
        return wire.ok("ok")

    claude.default = reply
    assert_tenants_kept_apart("anthropic", wire.PROVIDER, TENANT_A, TENANT_B, caplog)
