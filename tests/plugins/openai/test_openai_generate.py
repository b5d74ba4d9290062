"""openai: image generation and edits through the Images API, as they reach the wire."""

from __future__ import annotations

import io

import pytest
from loopback import LoopbackServer, Reply
from PIL import Image

import mmsdk

PROVIDER = "openai:gpt-image-2"


def test_generate_sends_the_options_and_decodes_base64(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((64, 48), (64, 48), revised="A calm watercolor garden.")))
    result = mmsdk.generate("a watercolor Japanese garden", provider=PROVIDER, size="1536x1024",
                            n=2, options={"quality": "high", "background": "transparent",
                                          "output_format": "png"})

    assert [image.size for image in result.images] == [(64, 48), (64, 48)]
    assert all(isinstance(image, Image.Image) for image in result.images)
    assert result.revised_prompt == "A calm watercolor garden."
    assert (result.provider, result.usage.images, result.usage.output_tokens) == \
        (PROVIDER, 2, 4160)
    [sent] = api.received
    assert sent.path == "/v1/images/generations"
    assert wire.body(sent) == {"model": "gpt-image-2", "prompt": "a watercolor Japanese garden",
                               "n": 2, "size": "1536x1024", "quality": "high",
                               "background": "transparent", "output_format": "png"}


def test_bare_openai_generates_with_the_default_image_model(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((8, 8))))
    result = mmsdk.generate("a dot", provider="openai")
    assert result.provider == "openai:gpt-image-2" and result.revised_prompt is None
    assert wire.body(api.received[0]) == {"model": "gpt-image-2", "prompt": "a dot"}


def test_edit_sends_image_and_mask_as_multipart(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((32, 24))))
    # diffusers convention: white = repaint. OpenAI wants transparent = repaint.
    mask = Image.new("L", (32, 24), 0)
    mask.paste(255, (0, 0, 16, 24))
    result = mmsdk.generate("add a moon", provider=PROVIDER, image=wire.png((32, 24)),
                            mask=mask, options={"input_fidelity": "high"})
    assert result.images[0].size == (32, 24)
    [sent] = api.received
    assert sent.path == "/v1/images/edits"
    fields = wire.multipart(sent)
    assert fields["prompt"][2] == b"add a moon"
    assert fields["model"][2] == b"gpt-image-2"
    assert fields["input_fidelity"][2] == b"high"
    filename, content_type, data = fields["image"]
    assert (filename, content_type) == ("image.png", "image/png")
    assert Image.open(io.BytesIO(data)).size == (32, 24)
    sent_mask = Image.open(io.BytesIO(fields["mask"][2]))
    assert (sent_mask.format, sent_mask.mode, sent_mask.size) == ("PNG", "RGBA", (32, 24))
    assert sent_mask.getpixel((2, 2))[3] == 0 and sent_mask.getpixel((30, 2))[3] == 255


def test_edit_keeps_a_mask_that_has_alpha(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((16, 16))))
    mask = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 4, 4))
    mmsdk.generate("edit", provider=PROVIDER, image=wire.png((16, 16)), mask=mask)
    sent_mask = Image.open(io.BytesIO(wire.multipart(api.received[0])["mask"][2]))
    assert sent_mask.getpixel((1, 1))[3] == 0 and sent_mask.getpixel((8, 8))[3] == 255


def test_image_content_policy_refusal(api: LoopbackServer, wire) -> None:
    api.queue(wire.error(400, "Your request was rejected as a result of our safety system.",
                         code="content_policy_violation"))
    with pytest.raises(mmsdk.ContentPolicyError, match="safety system") as caught:
        mmsdk.generate("something forbidden", provider=PROVIDER)
    assert caught.value.status == 400
    assert len(api.received) == 1


def test_unsupported_generation_parameters_are_refused_before_sending(api: LoopbackServer
                                                                      ) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="seed"):
        mmsdk.generate("x", provider=PROVIDER, seed=3)
    with pytest.raises(mmsdk.InvalidInputError, match="style"):
        mmsdk.generate("x", provider=PROVIDER, options={"style": "vivid"})
    assert api.received == []


@pytest.mark.parametrize("body", [
    pytest.param({"created": 1, "data": [{"b64_json": "bm90IGFuIGltYWdl"}]}, id="not-an-image"),
    pytest.param({"created": 1, "data": [{"url": "https://example.invalid/x.png"}]},
                 id="url-only"),
    pytest.param({"created": 1, "data": []}, id="no-images"),
])
def test_unusable_image_payloads_are_server_errors(api: LoopbackServer, body: dict) -> None:
    api.queue(Reply(body=body))
    with pytest.raises(mmsdk.ProviderServerError):
        mmsdk.Router(PROVIDER, mmsdk.Policy(retries=0)).generate("x")
    assert len(api.received) == 1


async def test_async_generate_and_edit(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.images((8, 8))), Reply(body=wire.images((16, 16))))
    made = await mmsdk.agenerate("a dot", provider=PROVIDER)
    edited = await mmsdk.agenerate("bigger", provider=PROVIDER, image=wire.png((16, 16)))
    assert made.images[0].size == (8, 8) and edited.images[0].size == (16, 16)
    assert [r.path for r in api.received] == ["/v1/images/generations", "/v1/images/edits"]
