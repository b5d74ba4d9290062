"""Understand and classify through the official anthropic SDK: what reaches /v1/messages."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import subprocess
import sys
import typing
from typing import Any

import mmsdk_anthropic
import numpy as np
import pytest
from loopback import LoopbackServer, Reply
from mmsdk_anthropic._settings import DEFAULT_MODELS
from mmsdk_anthropic._spec import CAPABILITIES, LIFECYCLE, LIFECYCLE_CHECKED, LIMITS
from PIL import Image
from pydantic import BaseModel

import mmsdk
import mmsdk.plugin
from mmsdk.plugin import ModelDeprecationWarning
from mmsdk.testing import pinned_today


class Receipt(BaseModel):
    total: float
    currency: str


def _image_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in body["messages"][0]["content"] if block["type"] == "image"]


def _decoded(block: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(block["source"]["data"])))


def test_understand_sends_images_system_and_max_tokens(claude: LoopbackServer,
                                                       wire: Any) -> None:
    claude.queue(wire.ok("Two squares.", input_tokens=120, output_tokens=4))
    result = mmsdk.understand("Compare them.", images=[wire.png_bytes(), wire.jpeg_bytes()],
                              provider=wire.PROVIDER, system="Be terse.", max_tokens=64)

    assert len(claude.received) == 1
    sent = claude.received[0]
    assert sent.method == "POST" and sent.path == "/v1/messages"
    assert wire.header(sent, "authorization") == f"Bearer {wire.KEY}"
    body = sent.json()
    assert body["model"] == wire.MODEL and "stream" not in body
    assert body["system"] == "Be terse." and body["max_tokens"] == 64
    assert wire.header(sent, "anthropic-version") == "2026-10-21"
    blocks = _image_blocks(body)
    assert [b["source"]["media_type"] for b in blocks] == ["image/png", "image/jpeg"]
    assert all(b["source"]["type"] == "base64" for b in blocks)
    assert _decoded(blocks[0]).size == (32, 24) and _decoded(blocks[1]).size == (40, 30)
    assert body["messages"][0]["content"][-1] == {"type": "text", "text": "Compare them."}

    assert result.text == "Two squares." and result.finish_reason == "end_turn"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (120, 4)
    assert result.usage.images == 2
    assert result.provider == wire.PROVIDER and result.model == wire.MODEL


def test_max_tokens_defaults_and_configure_overrides(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok(), wire.ok())
    mmsdk.understand("Describe.", images=[wire.png_bytes()], provider=wire.PROVIDER)
    mmsdk_anthropic.configure(max_tokens=300)
    mmsdk.understand("Describe.", images=[wire.png_bytes()], provider=wire.PROVIDER)
    first, second = (r.json() for r in claude.received)
    assert first["max_tokens"] == 1024 and second["max_tokens"] == 300
    assert "system" not in first and "output_config" not in first


def test_temperature_is_refused_before_any_request(claude: LoopbackServer, wire: Any) -> None:
    # API version 2026-10-21 answers 400 to any temperature: never send one.
    with pytest.raises(mmsdk.CapabilityError, match="temperature"):
        mmsdk.understand("Describe.", provider=wire.PROVIDER, temperature=0.2)
    assert claude.received == []
    claude.queue(wire.ok())
    lenient = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(lenient=True))
    result = lenient.understand("Describe.", temperature=0.2)
    assert "temperature" not in claude.received[0].json()
    assert any("temperature" in w for w in result.warnings)


def test_options_pass_through(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok('{"total": 1, "currency": "EUR"}'))
    mmsdk.understand("Describe.", provider=wire.PROVIDER, schema=Receipt,
                     options={"effort": "low", "stop_sequences": ["END"]})
    body = claude.received[0].json()
    assert body["stop_sequences"] == ["END"] and "effort" not in body
    assert body["output_config"]["effort"] == "low"
    assert body["output_config"]["format"]["type"] == "json_schema"
    with pytest.raises(mmsdk.InvalidInputError, match="effort"):
        mmsdk.understand("Describe.", provider=wire.PROVIDER, options={"top_k": 1})


def test_big_png_is_downscaled_and_reencoded_under_base64_cap(claude: LoopbackServer,
                                                               wire: Any) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1800, 2400, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise, "RGBA").save(buffer, format="PNG", compress_level=1)
    big = buffer.getvalue()
    assert len(big) > 5 * 1024 * 1024  # too big as it is

    claude.queue(wire.ok())
    result = mmsdk.understand("What is this?", images=[big], provider=wire.PROVIDER)

    (block,) = _image_blocks(claude.received[0].json())
    data = block["source"]["data"]
    assert len(data) <= 5 * 1024 * 1024  # Anthropic counts the base64 text
    image = _decoded(block)
    assert max(image.size) <= 1568 and image.width * image.height <= 1_150_000
    assert block["source"]["media_type"] == f"image/{image.format.lower()}"
    assert result.sent[0].resized and result.sent[0].width == image.width


def test_more_images_than_the_api_takes_fail_before_any_request(claude: LoopbackServer,
                                                                wire: Any) -> None:
    tiny = Image.new("RGB", (4, 4))
    with pytest.raises(mmsdk.CapabilityError, match="at most 100"):
        mmsdk.understand("Count.", images=[tiny] * 101, provider=wire.PROVIDER)
    assert claude.received == []


def test_stream_yields_text_deltas_and_usage(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(Reply(events=wire.events("A red ", "square", ".", input_tokens=50,
                                          output_tokens=3)))
    stream = mmsdk.understand("Describe.", images=[wire.png_bytes()], provider=wire.PROVIDER,
                              stream=True)
    chunks = list(stream)

    assert chunks == ["A red ", "square", "."]
    assert stream.result is not None and stream.result.text == "A red square."
    assert (stream.result.usage.input_tokens, stream.result.usage.output_tokens) == (50, 3)
    assert stream.result.finish_reason == "end_turn"
    body = claude.received[0].json()
    assert body["stream"] is True and len(_image_blocks(body)) == 1


def test_schema_uses_native_structured_output(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok('{"total": 12.5, "currency": "EUR"}'))
    result = mmsdk.understand("Extract the total.", images=[wire.png_bytes()],
                              provider=wire.PROVIDER, schema=Receipt)

    fmt = claude.received[0].json()["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert set(fmt["schema"]["properties"]) == {"total", "currency"}
    assert fmt["schema"]["additionalProperties"] is False
    assert result.data == Receipt(total=12.5, currency="EUR")


@pytest.mark.parametrize("multi_label", [False, True], ids=["single", "multi"])
def test_classify_constrains_answer_to_label_enum(claude: LoopbackServer, wire: Any,
                                                  multi_label: bool) -> None:
    labels = ["cat", "dog", "car"]
    answers = ['{"label": "dog"}', '{"label": "car"}'] if not multi_label else \
        ['{"present": ["cat", "dog"]}', '{"present": []}']
    claude.queue(*(wire.ok(a, model="claude-haiku-5-5", output_tokens=5) for a in answers))
    results = mmsdk.classify([wire.png_bytes(), wire.jpeg_bytes()], labels,
                             provider="anthropic:claude-haiku-5-5", multi_label=multi_label)

    assert len(claude.received) == 2  # one request per image, in order
    bodies = [r.json() for r in claude.received]
    assert [_image_blocks(b)[0]["source"]["media_type"] for b in bodies] == \
        ["image/png", "image/jpeg"]
    schema = bodies[0]["output_config"]["format"]["schema"]
    enum = schema["properties"]["present"]["items"]["enum"] if multi_label else \
        schema["properties"]["label"]["enum"]
    assert enum == labels
    expected = [{"cat": 1.0, "dog": 1.0, "car": 0.0}, {"cat": 0.0, "dog": 0.0, "car": 0.0}] \
        if multi_label else [{"cat": 0.0, "dog": 1.0, "car": 0.0},
                             {"cat": 0.0, "dog": 0.0, "car": 1.0}]
    assert [r.scores for r in results] == expected
    assert all(r.usage.output_tokens == 5 and r.provider == "anthropic:claude-haiku-5-5"
               for r in results)


async def test_async_twins_use_async_client(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok("async answer"))
    result = await mmsdk.aunderstand("Describe.", images=[wire.png_bytes()],
                                     provider=wire.PROVIDER)
    assert result.text == "async answer"

    claude.queue(Reply(events=wire.events("as", "ync")))
    stream = await mmsdk.aunderstand("Describe.", provider=wire.PROVIDER, stream=True)
    assert [chunk async for chunk in stream] == ["as", "ync"]
    assert stream.result is not None and stream.result.usage.output_tokens == 9

    claude.queue(wire.ok('{"label": "cat"}'), wire.ok('{"label": "dog"}'))
    scores = await mmsdk.aclassify([wire.png_bytes(), wire.png_bytes(color=(1, 2, 3))],
                                   ["cat", "dog"], provider=wire.PROVIDER)
    assert sorted(r.top[0] for r in scores) == ["cat", "dog"]
    assert [wire.header(r, "x-stainless-async") for r in claude.received] == \
        ["async:asyncio"] * 4


def test_default_model_follows_env_and_settings(claude: LoopbackServer, wire: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    claude.queue(wire.ok(), wire.ok(), wire.ok())
    mmsdk.understand("Describe.", provider="anthropic")
    monkeypatch.setenv("MMSDK_ANTHROPIC_MODEL", "claude-opus-5-5")
    mmsdk.understand("Describe.", provider="anthropic")
    mmsdk_anthropic.configure(model="claude-haiku-5-5")
    mmsdk.understand("Describe.", provider="anthropic")
    assert [r.json()["model"] for r in claude.received] == \
        ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"]


def test_explicit_settings_replace_environment(loopback: LoopbackServer, wire: Any) -> None:
    mmsdk_anthropic.configure(api_key="sk-ant-explicit-key-0000", base_url=loopback.url)
    loopback.queue(wire.ok())
    assert mmsdk.understand("Describe.", provider=wire.PROVIDER).text == "A red square."
    assert wire.header(loopback.received[0], "authorization") == "Bearer sk-ant-explicit-key-0000"
    assert "explicit-key" not in repr(mmsdk_anthropic.get_settings())


def test_retired_model_fails_before_any_request_naming_successor(claude: LoopbackServer) -> None:
    with pytest.raises(mmsdk.UnknownProviderError, match="anthropic:claude-sonnet-5-5"):
        mmsdk.understand("Describe.", provider="anthropic:claude-3-5-sonnet-20241022")
    assert claude.received == []


def test_model_near_end_of_life_answers_with_a_warning_once(claude: LoopbackServer,
                                                            wire: Any) -> None:
    claude.queue(wire.ok(model="claude-sonnet-4-5"), wire.ok(model="claude-sonnet-4-5"))
    with pinned_today(dt.date(2026, 11, 20)):  # 10 days before its end-of-life
        with pytest.warns(DeprecationWarning, match="November 30th"), \
                pytest.warns(ModelDeprecationWarning, match="end-of-life on 2026-11-30"):
            first = mmsdk.understand("Describe.", provider="anthropic:claude-sonnet-4-5")
        with pytest.warns(DeprecationWarning) as again:  # the SDK warns on every call
            second = mmsdk.understand("Describe.", provider="anthropic:claude-sonnet-4-5")
    assert not [w for w in again if issubclass(w.category, ModelDeprecationWarning)]  # once
    for result in (first, second):
        assert any("end-of-life on 2026-11-30" in w and "anthropic:claude-sonnet-5-5" in w
                   for w in result.warnings)
    assert [r.json()["model"] for r in claude.received] == ["claude-sonnet-4-5"] * 2


def test_model_past_end_of_life_fails_before_any_request_naming_successor(
        claude: LoopbackServer) -> None:
    with pinned_today(dt.date(2026, 11, 30)), pytest.raises(  # the end-of-life day itself
            mmsdk.UnknownProviderError,
            match=r"end-of-life on 2026-11-30.*'anthropic:claude-sonnet-5-5'"):
        mmsdk.understand("Describe.", provider="anthropic:claude-sonnet-4-5")
    assert claude.received == []


def test_end_of_life_passing_in_a_running_process_stops_calls(claude: LoopbackServer,
                                                              wire: Any) -> None:
    # Resolved and loaded before its end-of-life; the date passes; the next call
    # fails before any request, though the name and model object are cached.
    claude.queue(wire.ok(model="claude-sonnet-4-5"))
    with pinned_today(dt.date(2026, 11, 29)), \
            pytest.warns((DeprecationWarning, ModelDeprecationWarning)):
        mmsdk.understand("Describe.", provider="anthropic:claude-sonnet-4-5")
    with pinned_today(dt.date(2026, 11, 30)), \
            pytest.raises(mmsdk.UnknownProviderError, match="anthropic:claude-sonnet-5-5"):
        mmsdk.understand("Describe.", provider="anthropic:claude-sonnet-4-5")
    assert len(claude.received) == 1


def test_deprecated_model_far_from_end_of_life_gets_a_note_but_no_warning(
        claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok(model="claude-opus-4-5"))
    with pytest.warns(DeprecationWarning) as caught:  # only the SDK's own
        result = mmsdk.understand("Describe.", provider="anthropic:claude-opus-4-5")
    assert not [w for w in caught if issubclass(w.category, ModelDeprecationWarning)]
    assert result.warnings == ["anthropic:claude-opus-4-5 is deprecated and reaches "
                               "end-of-life on 2027-01-22; move to 'anthropic:claude-opus-5-5'."]


def test_lifecycle_is_read_at_call_time_not_at_registration() -> None:
    from mmsdk._registry import get_registry

    spec = get_registry().specs["anthropic"]
    with pinned_today(dt.date(2026, 11, 29)):
        assert "claude-sonnet-4-5" not in spec.retired
        assert "claude-3-opus-20240229" in spec.retired
    with pinned_today(dt.date(2026, 11, 30)):
        assert "end-of-life on 2026-11-30" in spec.retired["claude-sonnet-4-5"]


@pytest.mark.parametrize("capability", sorted(CAPABILITIES, key=str), ids=str)
def test_default_models_are_clear_of_end_of_life_when_the_table_was_checked(
        capability: mmsdk.Capability) -> None:
    # Pinned to LIFECYCLE_CHECKED: fails when a default needs moving (past, or within
    # 30 days of its end-of-life), and whenever the table is re-checked and bumped.
    assert mmsdk.plugin.today() == LIFECYCLE_CHECKED
    model = DEFAULT_MODELS[capability]
    eol = LIFECYCLE.get(model)
    assert eol is None or eol[0] > LIFECYCLE_CHECKED + dt.timedelta(days=30), (model, eol)
    from anthropic.types import Model

    literals = typing.get_args(typing.get_args(Model)[0])
    assert model in literals
    # every successor the table names is current: in the SDK, with no end-of-life of its own
    assert all(s in literals and s not in LIFECYCLE for _, s in LIFECYCLE.values())


def test_close_releases_clients_and_calls_reopen(claude: LoopbackServer, wire: Any) -> None:
    claude.queue(wire.ok(), wire.ok())
    mmsdk.understand("Describe.", provider=wire.PROVIDER)
    from mmsdk._registry import get_registry

    model: Any = get_registry().model(get_registry().resolve(wire.PROVIDER))
    client = model._clients.sync()
    mmsdk.unload("anthropic")
    assert client.is_closed()
    assert mmsdk.understand("Describe.", provider=wire.PROVIDER).text == "A red square."


def test_import_loads_no_sdk() -> None:
    code = ("import sys, mmsdk, mmsdk_anthropic, mmsdk.plugin;"
            "from mmsdk._registry import get_registry; r = get_registry();"
            "p = r.resolve('anthropic', mmsdk.Capability.UNDERSTAND); p.info; p.availability();"
            "assert 'anthropic' in r.specs, r.failures;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('anthropic', 'httpx2')];"
            "print(json.dumps(bad))")
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == []


def test_describe_declares_anthropic_limits() -> None:
    info = mmsdk_anthropic.describe("claude-haiku-5-5")
    assert info.limits == LIMITS and info.limits.count_bytes_as == "base64"
    assert info.limits.max_bytes == 5 * 1024 * 1024 and info.limits.max_images == 100
    assert {"stream", "schema", "system", "multi_label"} <= info.supports
    assert "temperature" not in info.supports
    assert not info.local and info.cost_hint < mmsdk_anthropic.describe("claude-opus-5-5").cost_hint


def test_async_client_per_event_loop_closed_at_loop_shutdown(claude: LoopbackServer,
                                                             wire: Any) -> None:
    from mmsdk._registry import get_registry

    claude.default = wire.ok("again")
    clients: list[Any] = []

    async def ask() -> str:
        result = await mmsdk.aunderstand("Describe.", provider=wire.PROVIDER)
        model: Any = get_registry().model(get_registry().resolve(wire.PROVIDER))
        clients.append(model._clients.cache.current(asyncio.get_running_loop()))
        return str(result.text)

    for _ in range(2):  # a CLI or a test suite: one asyncio.run after another
        assert asyncio.run(ask()) == "again"
    assert len(set(map(id, clients))) == 2 and all(client.is_closed() for client in clients)
    assert len(claude.received) == 2


async def test_unload_inside_a_running_loop_closes_its_async_client(claude: LoopbackServer,
                                                                    wire: Any) -> None:
    from mmsdk._registry import get_registry

    claude.queue(wire.ok())
    await mmsdk.aunderstand("Describe.", provider=wire.PROVIDER)
    model: Any = get_registry().model(get_registry().resolve(wire.PROVIDER))
    client = model._clients.cache.current(asyncio.get_running_loop())
    mmsdk.unload("anthropic")
    await asyncio.sleep(0.05)  # close() is sync: the loop finishes the async close
    assert client.is_closed()


def test_key_change_reopens_clients(claude: LoopbackServer, wire: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    claude.queue(wire.ok(), wire.ok())
    mmsdk.understand("Describe.", provider=wire.PROVIDER)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-rotated-key-1111")
    mmsdk.understand("Describe.", provider=wire.PROVIDER)
    assert [wire.header(r, "authorization") for r in claude.received] == \
        [f"Bearer {wire.KEY}", "Bearer sk-ant-rotated-key-1111"]


def test_auth_token_is_used_when_no_api_key(loopback: LoopbackServer, wire: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "oauth-token-2222")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)
    loopback.queue(wire.ok())
    mmsdk.understand("Describe.", provider=wire.PROVIDER)
    assert wire.header(loopback.received[0], "authorization") == "Bearer oauth-token-2222"
