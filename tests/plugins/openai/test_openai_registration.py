"""openai: registration, defaults, settings, model metadata and client lifetime."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import re
import subprocess
import sys
import typing

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Reply
from mmsdk_openai import LIFECYCLE, LIFECYCLE_CHECKED
from mmsdk_openai._config import is_image_model

import mmsdk
import mmsdk.plugin
from mmsdk._registry import describe_all, get_registry


def test_registration_imports_no_sdk() -> None:
    code = ("import sys, mmsdk, mmsdk.plugin; from mmsdk._registry import get_registry; "
            "r = get_registry(); assert 'openai' in r.specs, r.failures; "
            "u = r.resolve('openai', mmsdk.Capability.UNDERSTAND); u.info; u.availability(); "
            "print('openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_default_models_are_current_names_in_the_installed_sdk() -> None:
    from openai.types import ChatModel, ImageModel

    assert mmsdk_openai.DEFAULT_MODELS[mmsdk.Capability.GENERATE] in typing.get_args(ImageModel)
    for capability in (mmsdk.Capability.UNDERSTAND, mmsdk.Capability.CLASSIFY):
        assert mmsdk_openai.DEFAULT_MODELS[capability] in typing.get_args(ChatModel)
    # the retired image names are the ones the SDK documents as retired / shut down
    source = inspect.getsource(sys.modules["openai.types.image_model"])
    assert '"gpt-image-1": GPT Image 1 was shut down on October 23, 2026' in source
    assert '"dall-e-2", "dall-e-3": This model was retired on May 12, 2026' in source
    assert {name: LIFECYCLE[name][0] for name in ("gpt-image-1", "dall-e-2", "dall-e-3")} == \
        {"gpt-image-1": dt.date(2026, 10, 23), "dall-e-2": dt.date(2026, 5, 12),
         "dall-e-3": dt.date(2026, 5, 12)}


def _sdk_shutdown_dates() -> dict[str, dt.date]:
    """Every chat model with an "Announced shutdown date" in the installed SDK's docstring."""
    source = inspect.getsource(sys.modules["openai.types.shared.chat_model"])
    dates: dict[str, dt.date] = {}
    for names, day in re.findall(r'^- ((?:"[^"]+",?\s*)+):\s+Announced shutdown\s+date:\s+'
                                 r'(\d{4}-\d{2}-\d{2})', source, flags=re.MULTILINE):
        for name in re.findall(r'"([^"]+)"', names):
            dates[name] = dt.date.fromisoformat(day)
    return dates


def test_lifecycle_table_matches_the_installed_sdk() -> None:
    import openai.types.shared.chat_model  # noqa: F401  (its docstring is the source)

    documented = _sdk_shutdown_dates()
    assert documented["gpt-4.1"] == dt.date(2027, 1, 14)  # the parser reads what it should
    assert documented["gpt-5"] == dt.date(2026, 12, 11)
    assert documented["gpt-5.1"] == dt.date(2027, 4, 1)
    # audio models are left out on purpose: mmsdk sends them nothing they could answer
    expected = {name: day for name, day in documented.items() if "audio" not in name}
    chat = {name: day for name, (day, _) in LIFECYCLE.items() if not is_image_model(name)}
    assert chat == expected
    # every successor is current: in the SDK, with no shutdown of its own
    from openai.types import ChatModel, ImageModel

    current = set(typing.get_args(ChatModel)) | set(typing.get_args(ImageModel))
    assert all(s in current and s not in LIFECYCLE for _, s in LIFECYCLE.values())


@pytest.mark.parametrize("capability", list(mmsdk_openai.DEFAULT_MODELS), ids=str)
def test_default_models_are_clear_of_shutdown_when_the_table_was_checked(
        capability: mmsdk.Capability) -> None:
    # Pinned to LIFECYCLE_CHECKED: fails when a default must move (past, or within 30 days
    # of, its shutdown), and is re-judged whenever the table is re-checked and bumped.
    assert mmsdk.plugin.today() == LIFECYCLE_CHECKED
    model = mmsdk_openai.DEFAULT_MODELS[capability]
    entry = LIFECYCLE.get(model)
    assert entry is None or entry[0] > LIFECYCLE_CHECKED + dt.timedelta(days=30), (model, entry)
    assert get_registry().resolve("openai", capability).model == model


@pytest.mark.parametrize("how", ["env", "configure"])
def test_default_model_can_be_overridden(api: LoopbackServer, wire, how: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "env":
        monkeypatch.setenv("MMSDK_OPENAI_UNDERSTAND_MODEL", "gpt-4o")
    else:
        mmsdk_openai.configure(understand_model="gpt-4o")
    api.queue(Reply(body=wire.chat("ok", model="gpt-4o")))
    assert mmsdk.understand("hi", provider="openai").provider == "openai:gpt-4o"
    assert wire.body(api.received[0])["model"] == "gpt-4o"


def test_explicit_key_and_base_url_take_effect_on_existing_clients(
        api: LoopbackServer, second: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat("env endpoint")))
    second.queue(Reply(body=wire.chat("configured endpoint")))
    assert mmsdk.understand("hi", provider=wire.PROVIDER).text == "env endpoint"
    mmsdk_openai.configure(api_key="sk-explicit-key-0123456789", base_url=second.url + "/v1")
    assert mmsdk.understand("hi", provider=wire.PROVIDER).text == "configured endpoint"
    assert wire.header(second.received[0], "authorization") == "Bearer sk-explicit-key-0123456789"
    assert "sk-explicit" not in repr(mmsdk_openai.configure())


def test_explicit_key_makes_openai_available(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = get_registry().resolve("openai:gpt-4.1")
    assert not resolved.availability().ok
    mmsdk_openai.configure(api_key="sk-explicit-key-0123456789")
    assert resolved.availability().ok


def test_providers_listing_says_how_to_fix_a_missing_key() -> None:
    [row] = [r for r in describe_all(get_registry()) if r["provider"] == "openai"]
    assert row["usable"] is False and row["fix"].startswith("export OPENAI_API_KEY=")
    assert set(row["capabilities"]) == {"generate", "understand", "classify"}


def test_model_metadata() -> None:
    chat = get_registry().resolve("openai:gpt-4o").info
    assert chat.limits.formats == ("png", "jpeg", "webp", "gif")
    assert (chat.limits.max_bytes, chat.limits.max_long_edge, chat.limits.max_images) == \
        (20 * 1024 * 1024, 2048, 500)
    assert {"schema", "stream", "detail", "multi_label"} <= chat.supports
    assert "seed" in chat.options and not chat.local
    image = get_registry().resolve("openai:gpt-image-2").info
    assert image.capabilities == {mmsdk.Capability.GENERATE} and image.max_n == 10
    assert {"quality", "background", "output_format"} <= image.options


def test_an_image_model_cannot_understand(api: LoopbackServer) -> None:
    with pytest.raises(mmsdk.CapabilityError):
        mmsdk.understand("hi", provider="openai:gpt-image-2")
    assert api.received == []


def test_unload_closes_the_clients(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat("ok")))
    mmsdk.understand("hi", provider=wire.PROVIDER)
    registry = get_registry()
    model = registry.model(registry.resolve(wire.PROVIDER))
    [client] = model.pool.clients.current()
    assert not client.is_closed()
    mmsdk.unload("openai")
    assert client.is_closed()


async def test_unload_from_async_code_closes_the_async_clients(api: LoopbackServer,
                                                               wire) -> None:
    api.queue(Reply(body=wire.chat("ok")))
    await mmsdk.aunderstand("hi", provider=wire.PROVIDER)
    registry = get_registry()
    model = registry.model(registry.resolve(wire.PROVIDER))
    [client] = model.pool.clients.current(asyncio.get_running_loop())
    mmsdk.unload("openai")
    await asyncio.sleep(0.05)  # the close was scheduled on this loop
    assert client.is_closed()
