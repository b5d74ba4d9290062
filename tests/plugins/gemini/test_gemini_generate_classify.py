"""generate (native image output, Imagen on Vertex AI) and classify through the VLM."""

from __future__ import annotations

import math

import pytest
from loopback import LoopbackServer, Reply

import mmsdk

IMAGE_PATH = "/v1/models/gemini-3.1-flash-image:generateContent"
LABELS = ["cat", "dog", "car"]


# -- generate ----------------------------------------------------------------------------
def test_native_image_output_is_decoded(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.image_answer(wire.picture(40, 30, "green"), text="Here you go.")))
    result = mmsdk.generate("a green field", provider=f"gemini:{wire.IMAGE_MODEL}", seed=5,
                            options={"aspect_ratio": "4:3", "image_size": "1K"})
    [image] = result.images
    assert image.size == (40, 30) and image.getpixel((0, 0)) == (0, 128, 0)
    assert result.seed == 5 and result.usage.images == 1 and result.usage.output_tokens == 1290
    [request] = api.received
    assert request.path == IMAGE_PATH
    config = wire.config(request)
    assert config["responseModalities"] == ["IMAGE"] and config["seed"] == 5
    assert config["imageConfig"] == {"aspectRatio": "4:3", "imageSize": "1K"}
    assert wire.parts(request) == [{"text": "a green field"}]


def test_bare_plugin_name_generates_with_the_image_model(api: LoopbackServer, wire,
                                                         monkeypatch) -> None:
    api.queue(Reply(body=wire.image_answer(wire.picture())),
              Reply(body=wire.image_answer(wire.picture())))
    mmsdk.generate("a fox", provider="gemini")
    monkeypatch.setenv("MMSDK_GEMINI_IMAGE_MODEL", "gemini-2.5-flash-image")
    assert mmsdk.generate("a fox", provider="gemini").provider == "gemini:gemini-2.5-flash-image"
    assert [r.path for r in api.received] == [
        IMAGE_PATH, "/v1/models/gemini-2.5-flash-image:generateContent"]


def test_an_input_image_is_sent_for_editing(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.image_answer(wire.picture(16, 16))))
    mmsdk.generate("make it blue", provider=f"gemini:{wire.IMAGE_MODEL}",
                   image=wire.picture(3200, 1600))
    [inline] = wire.inline(api.received[0])
    assert wire.mime(inline) == "image/png" and wire.decoded(inline).size == (3072, 1536)


@pytest.mark.parametrize(("body", "error"), [
    pytest.param({"candidates": [{"content": {"parts": [{"text": "I can only describe it."}],
                                              "role": "model"}, "finishReason": "STOP"}]},
                 mmsdk.ProviderError, id="text-only"),
    pytest.param({"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]},
                 mmsdk.ContentPolicyError, id="image-safety"),
    pytest.param({"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "image/png", "data": "bm90IGFuIGltYWdl"}}]}, "finishReason": "STOP"}]},
        mmsdk.ProviderServerError, id="undecodable"),
])
def test_generate_without_a_usable_image(api: LoopbackServer, wire, body, error) -> None:
    api.queue(Reply(body=body))
    with pytest.raises(mmsdk.MMSDKError) as caught:
        mmsdk.Router(f"gemini:{wire.IMAGE_MODEL}", policy=mmsdk.Policy(retries=0)).generate("x")
    assert type(caught.value) is error


def test_imagen_without_vertex_fails_before_any_request(api: LoopbackServer) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="Vertex AI") as caught:
        mmsdk.generate("a cat", provider="gemini:imagen-4.0-generate-001")
    assert "gemini-3.1-flash-image" in str(caught.value)
    assert api.received == []


def test_imagen_runs_on_vertex_ai(loopback: LoopbackServer, wire, monkeypatch) -> None:
    # Vertex AI express mode: an API key, no project; the SDK's own variables.
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_API_KEY", wire.KEY)
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", loopback.url)
    png = wire.png(wire.picture(24, 24, "yellow"))
    import base64

    prediction = {"bytesBase64Encoded": base64.b64encode(png).decode(), "mimeType": "image/png"}
    loopback.queue(Reply(body={"predictions": [prediction, prediction | {
        "prompt": "a cat, watercolor"}]}))
    result = mmsdk.generate("a cat", provider="gemini:imagen-4.0-generate-001", n=2,
                            options={"aspect_ratio": "1:1"})
    assert [image.size for image in result.images] == [(24, 24), (24, 24)]
    [request] = loopback.received
    assert request.path == "/v1beta1/publishers/google/models/imagen-4.0-generate-001:predict"
    assert request.json()["parameters"] == {"sampleCount": 2, "aspectRatio": "1:1"}


async def test_async_generate(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.image_answer(wire.picture(12, 10))))
    result = await mmsdk.agenerate("a fox", provider=f"gemini:{wire.IMAGE_MODEL}")
    assert result.images[0].size == (12, 10)
    assert api.received[0].path == IMAGE_PATH


# -- classify ----------------------------------------------------------------------------
def test_single_label_uses_an_enum_schema(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer('{"label": "dog"}')))
    result = mmsdk.classify(wire.picture(), LABELS, provider=wire.PROVIDER)
    assert result.scores == {"cat": 0.0, "dog": 1.0, "car": 0.0} and result.top == ("dog", 1.0)
    [request] = api.received
    config = wire.config(request)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"]["label"]["enum"] == LABELS
    assert "responseLogprobs" not in config
    assert len(wire.inline(request)) == 1 and '"cat"' in wire.parts(request)[-1]["text"]


def test_multi_label(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer('{"present": ["cat", "car"]}')))
    result = mmsdk.classify(wire.picture(), LABELS, provider=wire.PROVIDER, multi_label=True)
    assert result.scores == {"cat": 1.0, "dog": 0.0, "car": 1.0}
    schema = wire.config(api.received[0])["responseJsonSchema"]
    assert schema["properties"]["present"]["items"]["enum"] == LABELS


def _logprobs(tokens: list[tuple[str, float]], step: int,
              top: list[tuple[str, float]]) -> dict[str, object]:
    chosen = [{"token": t, "logProbability": lp} for t, lp in tokens]
    tops = [{"candidates": [c]} for c in chosen]
    tops[step] = {"candidates": [{"token": t, "logProbability": lp} for t, lp in top]}
    return {"logprobsResult": {"chosenCandidates": chosen, "topCandidates": tops}}


def test_logprobs_give_graded_scores(api: LoopbackServer, wire) -> None:
    tokens = [('{"', -0.01), ("label", 0.0), ('":', 0.0), (' "', 0.0), ("dog", -0.2),
              ('"}', 0.0)]
    top = [("dog", -0.2), ("cat", -1.8), ("bird", -3.0)]
    api.queue(Reply(body=wire.answer('{"label": "dog"}', **_logprobs(tokens, 4, top))))
    result = mmsdk.classify(wire.picture(), LABELS, provider=wire.PROVIDER,
                            options={"logprobs": True})
    total = math.exp(-0.2) + math.exp(-1.8)
    assert result.scores == pytest.approx({"dog": math.exp(-0.2) / total,
                                           "cat": math.exp(-1.8) / total, "car": 0.0})
    config = wire.config(api.received[0])
    assert config["responseLogprobs"] is True and config["logprobs"] == 3


def test_logprobs_that_cannot_tell_labels_apart_fall_back_to_the_rule(api: LoopbackServer,
                                                                      wire) -> None:
    tokens = [('{"label": "', 0.0), ("ca", -0.1), ('t"}', 0.0)]
    top = [("ca", -0.1), ("do", -2.0)]  # "ca" starts both "cat" and "car"
    api.queue(Reply(body=wire.answer('{"label": "cat"}', **_logprobs(tokens, 1, top))))
    result = mmsdk.classify(wire.picture(), LABELS, provider=wire.PROVIDER,
                            options={"logprobs": 5})
    assert result.scores == {"cat": 1.0, "dog": 0.0, "car": 0.0}


def test_several_images_are_classified_one_request_each(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer('{"label": "cat"}')),
              Reply(body=wire.answer('{"label": "car"}')))
    results = mmsdk.classify([wire.picture(color="red"), wire.picture(color="blue")], LABELS,
                             provider=wire.PROVIDER)
    assert [r.top[0] for r in results] == ["cat", "car"]
    assert [wire.decoded(wire.inline(r)[0]).getpixel((0, 0)) for r in api.received] == [
        (255, 0, 0), (0, 0, 255)]


async def test_async_classify(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer('{"label": "cat"}')))
    result = await mmsdk.aclassify(wire.picture(), LABELS, provider=wire.PROVIDER)
    assert result.top == ("cat", 1.0)
    assert len(api.received) == 1
