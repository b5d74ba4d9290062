"""openai: understand through Chat Completions, as it reaches the wire."""

from __future__ import annotations

import io

import pytest
from loopback import LoopbackServer, Reply
from PIL import Image
from pydantic import BaseModel
from samples import write_clip

import mmsdk


class Receipt(BaseModel):
    total: float
    currency: str


def test_understand_sends_images_inline_and_reads_the_answer(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat("Two squares.", prompt_tokens=120, completion_tokens=3)))
    big = Image.new("RGB", (3000, 1000), (10, 200, 10))
    result = mmsdk.understand("What is here?", images=[wire.png((40, 30)), big],
                              provider=wire.PROVIDER, detail="high", system="Be brief.",
                              max_tokens=50, temperature=0.2, options={"seed": 7})

    assert (result.text, result.provider, result.model) == ("Two squares.", wire.PROVIDER,
                                                            wire.MODEL)
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.images) == \
        (120, 3, 2)
    [sent] = api.received
    assert sent.path == "/v1/chat/completions"
    assert wire.header(sent, "authorization") == f"Bearer {wire.KEY}"
    body = wire.body(sent)
    assert body["model"] == wire.MODEL
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    text, *parts = body["messages"][1]["content"]
    assert text == {"type": "text", "text": "What is here?"}
    assert len(parts) == 2 and all(p["image_url"]["detail"] == "high" for p in parts)
    first, second = (wire.data_url_image(p["image_url"]["url"]) for p in parts)
    assert (first.format, first.size) == ("PNG", (40, 30))
    # prepare() fit the 3000 px image into the 2048 px long edge before it left
    assert (second.format, second.size) == ("PNG", (2048, 682))
    assert [(s.width, s.height, s.resized) for s in result.sent] == \
        [(40, 30, False), (2048, 682, True)]
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert (body["temperature"], body["seed"]) == (0.2, 7)
    assert "stream" not in body and "response_format" not in body


def test_understand_without_images_sends_a_plain_prompt(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat("Hello.")))
    assert mmsdk.understand("Say hello", provider=wire.PROVIDER).text == "Hello."
    message = wire.body(api.received[0])["messages"]
    assert message == [{"role": "user", "content": "Say hello"}]


def test_more_images_than_the_model_takes_is_refused_before_sending(api: LoopbackServer,
                                                                     wire) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="at most 500"):
        mmsdk.understand("Count", images=[wire.png((4, 4))] * 501, provider=wire.PROVIDER)
    assert api.received == []


def test_structured_output_sends_a_strict_schema(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat('{"total": 12.5, "currency": "EUR"}')))
    result = mmsdk.understand("Extract the total", images=[wire.png()], provider=wire.PROVIDER,
                              schema=Receipt)
    assert result.data == Receipt(total=12.5, currency="EUR")
    response_format = wire.body(api.received[0])["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Receipt", True)
    assert spec["schema"]["additionalProperties"] is False
    assert sorted(spec["schema"]["required"]) == ["currency", "total"]


def test_stream_yields_chunks_then_the_whole_answer(api: LoopbackServer, wire) -> None:
    api.queue(Reply(events=wire.stream("A red ", "square", ".", usage=(50, 3))))
    stream = mmsdk.understand("Describe", images=[wire.png()], provider=wire.PROVIDER,
                              stream=True)
    assert list(stream) == ["A red ", "square", "."]
    assert stream.result.text == "A red square."
    assert (stream.result.usage.input_tokens, stream.result.usage.output_tokens) == (50, 3)
    assert stream.result.finish_reason == "stop"
    body = wire.body(api.received[0])
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_async_understand_and_stream(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat("Async answer.")),
              Reply(events=wire.stream("one ", "two")))
    result = await mmsdk.aunderstand("Describe", images=[wire.png()], provider=wire.PROVIDER)
    assert result.text == "Async answer."
    stream = await mmsdk.aunderstand("Describe", provider=wire.PROVIDER, stream=True)
    assert [chunk async for chunk in stream] == ["one ", "two"]
    assert stream.result.text == "one two" and stream.result.usage.output_tokens == 9
    assert len(api.received) == 2


def test_async_clients_survive_a_new_event_loop(api: LoopbackServer, wire) -> None:
    import asyncio

    from mmsdk._registry import get_registry

    api.default = Reply(body=wire.chat("ok"))
    used = []

    async def ask() -> str:
        answer = await mmsdk.aunderstand("hi", provider=wire.PROVIDER)
        registry = get_registry()
        pool = registry.model(registry.resolve(wire.PROVIDER)).pool
        used.extend(pool.clients.current(asyncio.get_running_loop()))
        return str(answer.text)

    for _ in range(2):  # asyncio.run closes its loop; the second run must get fresh clients
        assert asyncio.run(ask()) == "ok"
    assert len(api.received) == 2
    assert len(used) == 2 and used[0] is not used[1]
    assert all(client.is_closed() for client in used)  # closed at each loop's shutdown


@pytest.mark.parametrize("reply, match", [
    pytest.param(dict(text=None, refusal="I can't help with that."), "can't help",
                 id="message-refusal"),
    pytest.param(dict(text="", finish_reason="content_filter"), "content_filter",
                 id="content-filter"),
])
def test_chat_refusals_are_content_policy_errors(api: LoopbackServer, wire, reply: dict,
                                                 match: str) -> None:
    api.queue(Reply(body=wire.chat(**reply)))
    with pytest.raises(mmsdk.ContentPolicyError, match=match) as caught:
        mmsdk.understand("Describe", images=[wire.png()], provider=wire.PROVIDER)
    assert caught.value.provider == wire.PROVIDER
    assert len(api.received) == 1


def test_refusal_in_a_stream_is_a_content_policy_error(api: LoopbackServer, wire) -> None:
    api.queue(Reply(events=[wire.chunk(refusal="I can't "), wire.chunk(refusal="do that."),
                            wire.chunk(finish_reason="stop"), "data: [DONE]\n\n"]))
    with pytest.raises(mmsdk.ContentPolicyError, match="I can't do that"):
        list(mmsdk.understand("Describe", provider=wire.PROVIDER, stream=True))


def test_video_frames_are_sent_as_images(api: LoopbackServer, wire, tmp_path) -> None:
    pytest.importorskip("av")
    path = write_clip(tmp_path / "clip.mp4", frames=16, size=(64, 48), rate=8)
    api.queue(Reply(body=wire.chat("It gets redder.")))
    result = mmsdk.understand("What changes?", video=str(path), frames=4, provider=wire.PROVIDER)
    assert result.text == "It gets redder."
    parts = wire.body(api.received[0])["messages"][0]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 4


def test_images_arrive_in_a_format_the_api_takes(api: LoopbackServer, wire) -> None:
    def encoded(fmt: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (20, 10), (1, 2, 3)).save(buffer, format=fmt)
        return buffer.getvalue()

    api.queue(Reply(body=wire.chat("ok")))
    mmsdk.understand("Compare", images=[encoded("BMP"), encoded("WEBP"), encoded("JPEG")],
                     provider=wire.PROVIDER)
    parts = wire.body(api.received[0])["messages"][0]["content"][1:]
    urls = [part["image_url"]["url"] for part in parts]
    assert [url.split(";")[0] for url in urls] == ["data:image/png", "data:image/webp",
                                                   "data:image/jpeg"]
    assert [wire.data_url_image(url).format for url in urls] == ["PNG", "WEBP", "JPEG"]
    assert all("detail" not in part["image_url"] for part in parts)
