"""openai: per-router keys (``Router(credentials={"openai": ...})``) reach the wire."""

from __future__ import annotations

import asyncio
import logging

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Reply
from tenants import assert_tenants_kept_apart

import mmsdk
from mmsdk._registry import fingerprint, get_registry

TENANT_A = "sk-proj-TENANTaaaa0123456789abcdef"
TENANT_B = "sk-proj-TENANTbbbb0123456789abcdef"


def test_the_router_key_is_sent_instead_of_the_environments(api: LoopbackServer, wire) -> None:
    api.default = Reply(body=wire.chat("ok"))
    tenant_a = mmsdk.Router(wire.PROVIDER, credentials={"openai": TENANT_A})
    tenant_b = mmsdk.Router(wire.PROVIDER, credentials={"openai": TENANT_B})
    assert tenant_a.understand("x").text == "ok"
    assert tenant_b.understand("x").text == "ok"
    assert mmsdk.understand("x", provider=wire.PROVIDER).text == "ok"
    assert tenant_a.understand("again").text == "ok"
    assert [wire.header(r, "authorization") for r in api.received] == [
        f"Bearer {TENANT_A}", f"Bearer {TENANT_B}", f"Bearer {wire.KEY}", f"Bearer {TENANT_A}"]
    registry = get_registry()
    assert registry.is_loaded(wire.PROVIDER, fingerprint(TENANT_A))
    assert registry.is_loaded(wire.PROVIDER, fingerprint(TENANT_B))
    assert registry.is_loaded(wire.PROVIDER)


def test_without_an_environment_key_the_router_key_makes_openai_available(
        loopback: LoopbackServer, wire, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.url + "/v1")  # no OPENAI_API_KEY
    loopback.default = Reply(body=wire.chat("ok"))
    with pytest.raises(mmsdk.ProviderUnavailableError, match="OPENAI_API_KEY"):
        mmsdk.understand("x", provider=wire.PROVIDER)
    router = mmsdk.Router(wire.PROVIDER, credentials={"openai": TENANT_A})
    assert router.understand("x").text == "ok"
    assert asyncio.run(router.aunderstand("x")).text == "ok"
    loopback.default = Reply(events=wire.stream("o", "k"))
    assert "".join(router.understand("x", stream=True)) == "ok"
    assert {wire.header(r, "authorization") for r in loopback.received} == {f"Bearer {TENANT_A}"}
    assert router.preload("understand") == [wire.PROVIDER]


def test_the_router_key_wins_over_configure(api: LoopbackServer, wire) -> None:
    mmsdk_openai.configure(api_key="sk-proj-CONFIGUREDkey0123456789abc")
    api.default = Reply(body=wire.chat("ok"))
    mmsdk.Router(wire.PROVIDER, credentials={"openai": TENANT_A}).understand("x")
    assert wire.header(api.received[0], "authorization") == f"Bearer {TENANT_A}"


def test_image_generation_uses_the_router_key(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((64, 64))))
    router = mmsdk.Router(f"openai:{wire.IMAGE_MODEL}", credentials={"openai": TENANT_B})
    assert len(router.generate("a cat", size="1024x1024").images) == 1
    assert wire.header(api.received[0], "authorization") == f"Bearer {TENANT_B}"


def test_one_tenants_outage_opens_only_its_breaker_and_never_shows_its_key(
        api: LoopbackServer, wire, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def reply(received) -> Reply:  # the failing tenant's key draws a 500 that echoes it
        auth = wire.header(received, "authorization") or ""
        if auth.endswith(TENANT_A):
            return wire.error(500, f"server error for {auth}", kind="server_error")
        return Reply(body=wire.chat("ok"))

    api.default = reply
    failing = assert_tenants_kept_apart("openai", wire.PROVIDER, TENANT_A, TENANT_B, caplog,
                                        mmsdk.ProviderServerError)
    assert "openai" in repr(failing)


def test_a_compatible_endpoint_takes_a_router_key(loopback: LoopbackServer, wire,
                                                   endpoint_names: list[str]) -> None:
    loopback.default = Reply(body=wire.chat("served"))
    mmsdk_openai.add_endpoint("vllmkeyed", loopback.url + "/v1", models=["qwen"])
    endpoint_names.append("vllmkeyed")
    assert mmsdk.understand("x", provider="vllmkeyed").text == "served"
    router = mmsdk.Router("vllmkeyed", credentials={"vllmkeyed": "tenant-token-0001"})
    assert router.understand("x").text == "served"
    assert [wire.header(r, "authorization") for r in loopback.received] == [
        "Bearer not-needed", "Bearer tenant-token-0001"]
    assert "tenant-token-0001" not in repr(router)
