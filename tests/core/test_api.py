"""The public calls, end to end through routing, on the deterministic test provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel
from samples import encode, write_clip

import mmsdk
from mmsdk.plugin import MediaLimits
from mmsdk.testing import TestProvider


class Receipt(BaseModel):
    total: float
    currency: str


def test_generate_options_reach_the_provider(fake: TestProvider) -> None:
    result = mmsdk.generate("a cat", provider="fake:m", size="48x32", steps=3, guidance=7.5,
                            seed=11, n=2, negative_prompt="blurry", scheduler="dpm++")
    request = fake.calls[0]
    assert (request.width, request.height, request.steps, request.guidance, request.seed,
            request.n, request.negative_prompt, request.scheduler) == \
        (48, 32, 3, 7.5, 11, 2, "blurry", "dpm++")
    assert len(result.images) == 2 and result.images[0].size == (48, 32)
    assert result.provider == "fake:m" and result.usage.images == 2 and result.elapsed > 0


def test_generate_is_deterministic_per_seed(fake: TestProvider) -> None:
    first = mmsdk.generate("a cat", provider="fake:m", seed=1).images[0]
    again = mmsdk.generate("a cat", provider="fake:m", seed=1).images[0]
    other = mmsdk.generate("a cat", provider="fake:m", seed=2).images[0]
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"size": "big"}, "size must look like", id="bad-size"),
        pytest.param({"size": "10x10", "width": 20}, "disagrees", id="size-width-conflict"),
        pytest.param({"steps": 0}, "steps", id="zero-steps"),
        pytest.param({"n": 0}, "n:", id="zero-n"),
        pytest.param({"strength": 0.5}, "strength needs an image", id="strength-without-image"),
        pytest.param({"guidance": -1}, "guidance", id="negative-guidance"),
        pytest.param({"options": ["x"]}, "options must be a dict", id="options-list"),
    ],
)
def test_generate_rejects_bad_arguments(fake: TestProvider, kwargs: dict[str, object],
                                        fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError) as info:
        mmsdk.generate("a cat", provider="fake:m", **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert fake.calls == []


def test_img2img_inpaint_control_and_reference_images_are_prepared(fake: TestProvider) -> None:
    photo = Image.new("RGB", (64, 64), "blue")
    mmsdk.generate("x", provider="fake:m", image=photo, strength=0.6, mask=encode(photo),
                   control_image=np.zeros((64, 64, 3), np.uint8), control_type="canny",
                   reference_image=photo, reference_scale=0.5)
    request = fake.calls[0]
    for name in ("image", "mask", "control_image", "reference_image"):
        assert getattr(request, name).image.size == (64, 64)


def test_unsupported_first_class_option_is_a_capability_error() -> None:
    with TestProvider("plain", supports={"seed"}) as plain:
        with pytest.raises(mmsdk.CapabilityError, match="cannot honour control_image"):
            mmsdk.generate("x", provider="plain:m", control_image=Image.new("RGB", (8, 8)))
        assert plain.calls == []


def test_leniency_drops_unsupported_options_with_a_warning() -> None:
    with TestProvider("plain", supports={"seed"}) as plain:
        router = mmsdk.Router("plain:m", mmsdk.Policy(lenient=True))
        result = router.generate("x", seed=1, negative_prompt="ugly", n=8)
    assert plain.calls[0].negative_prompt is None and plain.calls[0].seed == 1
    assert plain.calls[0].n == 4  # the provider's max_n
    assert any("negative_prompt" in w for w in result.warnings)


def test_routing_picks_a_provider_that_can_honour_the_option(fake: TestProvider) -> None:
    with TestProvider("plain", supports=set()):
        result = mmsdk.generate("x", provider=["plain:m", "fake:m"],
                                control_image=Image.new("RGB", (8, 8)))
    assert result.provider == "fake:m"
    assert result.attempts[0].outcome == "skipped"


def test_unknown_option_key_is_invalid_input(fake: TestProvider) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=r"does not know option\(s\) \['qualty'\]"):
        mmsdk.generate("x", provider="fake:m", options={"qualty": "hd"})
    mmsdk.generate("x", provider="fake:m", options={"echo": True})
    assert fake.calls[0].options == {"echo": True}


def test_understand_with_images_reports_what_was_sent(fake: TestProvider) -> None:
    limits = MediaLimits(formats=("jpeg",), max_long_edge=32)
    with TestProvider("limited", limits=limits) as limited:
        result = mmsdk.understand("what?", images=[Image.new("RGB", (128, 64)), encode(
            Image.new("RGB", (16, 16)))], provider="limited:m", system="be brief",
                                  max_tokens=5, temperature=0)
    assert [(s.format, s.width, s.height) for s in result.sent] == [("jpeg", 32, 16),
                                                                    ("jpeg", 16, 16)]
    request = limited.calls[0]
    assert request.system == "be brief" and request.max_tokens == 5
    assert request.images[0].data[:3] == b"\xff\xd8\xff"


def test_structured_output_is_validated(fake: TestProvider) -> None:
    fake.answer = '```json\n{"total": 12.5, "currency": "EUR"}\n```'
    result = mmsdk.understand("total?", provider="fake:m", schema=Receipt)
    assert result.data == Receipt(total=12.5, currency="EUR")
    fake.answer = "I cannot read it"
    with pytest.raises(mmsdk.OutputValidationError, match="does not match Receipt") as info:
        mmsdk.understand("total?", provider="fake:m", schema=Receipt)
    assert info.value.text == "I cannot read it"
    with pytest.raises(mmsdk.InvalidInputError, match="pydantic BaseModel"):
        mmsdk.understand("total?", provider="fake:m", schema=dict)  # type: ignore[arg-type]


def test_stream_yields_chunks_and_keeps_the_result(fake: TestProvider) -> None:
    stream = mmsdk.understand("tell me", provider="fake:m", stream=True)
    chunks = list(stream)
    assert len(chunks) > 1 and all(isinstance(c, str) for c in chunks)
    assert stream.result is not None
    assert stream.result.text == "".join(chunks) and stream.result.provider == "fake:m"


def test_streaming_structured_output_validates_at_the_end(fake: TestProvider) -> None:
    fake.answer = '{"total": 3, "currency": "USD"}'
    stream = mmsdk.understand("total?", provider="fake:m", stream=True, schema=Receipt)
    stream.text()
    assert stream.result is not None and stream.result.data == Receipt(total=3, currency="USD")


async def test_async_twins(fake: TestProvider) -> None:
    assert (await mmsdk.agenerate("x", provider="fake:m", seed=1)).images
    assert (await mmsdk.aunderstand("x", provider="fake:m")).text.startswith("echo: x")
    stream = await mmsdk.aunderstand("a b c", provider="fake:m", stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(chunks) == stream.result.text  # type: ignore[union-attr]
    result = await mmsdk.aclassify(Image.new("RGB", (8, 8)), ["a", "b"], provider="fake:m")
    assert set(result.scores) == {"a", "b"}
    vectors = await mmsdk.aembed(texts=["x"], provider="fake:m")
    assert vectors.text_vectors is not None and vectors.text_vectors.shape == (1, 8)


def test_classify_one_or_many(fake: TestProvider) -> None:
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    one = mmsdk.classify(red, labels=["cat", "dog", "car"], provider="fake:m")
    assert abs(sum(one.scores.values()) - 1) < 1e-9
    assert one.top == one.ranked[0] and one.top[1] == max(one.scores.values())
    many = mmsdk.classify([red, blue], labels=["cat", "dog"], provider="fake:m")
    assert next(m.scores for m in many) == mmsdk.classify(red, ["cat", "dog"],
                                                         provider="fake:m").scores
    multi = mmsdk.classify(red, labels=["cat", "dog"], provider="fake:m", multi_label=True,
                           template="a drawing of a {}")
    assert fake.calls[-1].prompts() == ["a drawing of a cat", "a drawing of a dog"]
    assert all(0 <= s <= 1 for s in multi.scores.values())


@pytest.mark.parametrize(
    ("labels", "kwargs", "fragment"),
    [
        pytest.param("cat", {}, "list of strings", id="labels-string"),
        pytest.param([], {}, "labels", id="no-labels"),
        pytest.param(["cat", "cat"], {}, "unique", id="duplicate-labels"),
        pytest.param(["cat"], {"template": "no slot"}, "'{}'", id="template-without-slot"),
    ],
)
def test_classify_rejects_bad_labels(fake: TestProvider, labels: object,
                                     kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError) as info:
        mmsdk.classify(Image.new("RGB", (8, 8)), labels, provider="fake:m", **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_embed_vectors_are_unit_norm_in_input_order(fake: TestProvider) -> None:
    result = mmsdk.embed(images=[Image.new("RGB", (8, 8), c) for c in ("red", "blue")],
                         texts=["a cat", "a dog", "a car"], provider="fake:m")
    assert result.image_vectors is not None and result.text_vectors is not None
    assert result.image_vectors.shape == (2, 8) and result.text_vectors.shape == (3, 8)
    assert np.allclose(np.linalg.norm(result.text_vectors, axis=1), 1)
    single = mmsdk.embed(texts="a dog", provider="fake:m")
    assert np.allclose(single.text_vectors[0], result.text_vectors[1])  # type: ignore[index]
    with pytest.raises(mmsdk.InvalidInputError, match="needs images=, texts="):
        mmsdk.embed(provider="fake:m")


@pytest.fixture
def clip_path(tmp_path: Path) -> Path:
    pytest.importorskip("av")
    return write_clip(tmp_path / "clip.mp4", frames=20)


def test_video_becomes_frames_for_image_only_models(clip_path: Path) -> None:
    with TestProvider("frames", supports={"stream"}) as frames:
        result = mmsdk.understand("what changed?", video=clip_path, frames=4,
                                  provider="frames:m")
    request = frames.calls[0]
    assert request.video is None and len(request.images) == 4
    reds = [np.asarray(image.image)[16, 16, 0] for image in request.images]
    assert reds == sorted(reds) and reds[0] < reds[-1]
    assert next(s.source for s in result.sent) == "clip.mp4 frame 0"


def test_native_video_models_get_the_file(fake: TestProvider, clip_path: Path) -> None:
    mmsdk.understand("what changed?", video=str(clip_path), provider="fake:m")
    assert fake.calls[0].video.path == clip_path and fake.calls[0].images == []


@pytest.mark.parametrize(
    ("video", "fragment"),
    [("missing.mp4", "no such file"), (42, "expected a file path")],
    ids=["missing", "wrong-type"],
)
def test_bad_video_inputs(fake: TestProvider, video: object, fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=fragment):
        mmsdk.understand("x", video=video, provider="fake:m")


def test_corrupt_video_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
    with TestProvider("frames", supports=set()), \
            pytest.raises(mmsdk.InvalidInputError, match="cannot be decoded"):
        mmsdk.understand("x", video=path, provider="frames:m")


def test_provider_argument_must_be_strings(fake: TestProvider) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="provider must be"):
        mmsdk.understand("x", provider=[])
    with pytest.raises(mmsdk.UnknownProviderError, match="non-empty string"):
        mmsdk.understand("x", provider=" ")


def test_default_route_comes_from_the_environment(fake: TestProvider,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSDK_DEFAULT_PROVIDER", "fake:chosen")
    assert mmsdk.understand("x").provider == "fake:chosen"


def test_test_provider_is_never_a_default_route(fake: TestProvider) -> None:
    from mmsdk._registry import get_registry

    assert not any(name.startswith("fake:")
                   for name in get_registry().default_route(mmsdk.Capability.UNDERSTAND))


def test_options_for_one_provider_in_a_route_skip_the_others(fake: TestProvider) -> None:
    with TestProvider("other", options=("quality",)) as other:
        result = mmsdk.understand("x", provider=["fake:m", "other:m"],
                                  options={"quality": "hd"})
        assert result.provider == "other:m" and fake.calls == []
        assert other.calls[0].options == {"quality": "hd"}
        with pytest.raises(mmsdk.InvalidInputError, match="does not know option"):
            mmsdk.understand("x", provider=["fake:m", "other:m"], options={"nobody": 1})


def test_video_frames_are_decoded_once_for_every_candidate(
        clip_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmsdk._jobs as jobs

    decoded: list[int] = []
    real = jobs.sample_frames
    monkeypatch.setattr(jobs, "sample_frames", lambda video, count, **kw: decoded.append(count)
                        or real(video, count, **kw))
    with TestProvider("first", supports=set(), failures=[mmsdk.AuthenticationError]), \
            TestProvider("second", supports=set()) as second:
        result = mmsdk.understand("x", video=clip_path, frames=3, provider=["first:m", "second:m"])
    assert result.provider == "second:m" and len(second.calls[0].images) == 3
    assert decoded == [3]


# -- policies everywhere --------------------------------------------------------------
SERVER_DOWN = [mmsdk.ProviderServerError] * 3


def test_a_call_s_own_policy_sets_its_retries(fake: TestProvider) -> None:
    fake.failures = list(SERVER_DOWN)
    with pytest.raises(mmsdk.ProviderServerError):
        mmsdk.understand("x", provider="fake:m", policy=mmsdk.Policy(retries=0))
    assert len(fake.calls) == 1
    fake.calls.clear()
    fake.failures = list(SERVER_DOWN)
    result = mmsdk.classify(encode(Image.new("RGB", (8, 8))), ["a", "b"], provider="fake:m",
                            policy=mmsdk.Policy(retries=3, backoff=0))
    assert len(fake.calls) == 4 and [a.outcome for a in result.attempts][-1] == "ok"


async def test_the_async_twins_take_policy_too(fake: TestProvider) -> None:
    fake.failures = list(SERVER_DOWN)
    with pytest.raises(mmsdk.ProviderServerError):
        await mmsdk.agenerate("x", provider="fake:m", policy=mmsdk.Policy(retries=0))
    assert len(fake.calls) == 1


def test_the_configured_policy_applies_to_calls_and_routers_that_name_none(
        fake: TestProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmsdk import _settings

    monkeypatch.setattr(_settings, "_settings", _settings._settings)  # restored afterwards
    mmsdk.configure(policy=mmsdk.Policy(retries=3, backoff=0))
    fake.failures = list(SERVER_DOWN)
    assert mmsdk.understand("x", provider="fake:m").attempts[-1].outcome == "ok"
    assert len(fake.calls) == 4
    fake.calls.clear()
    fake.failures = list(SERVER_DOWN)
    router = mmsdk.Router("fake:m")
    assert router.policy.retries == 3
    router.embed(texts=["a"])
    assert len(fake.calls) == 4
    fake.calls.clear()
    fake.failures = list(SERVER_DOWN)
    with pytest.raises(mmsdk.ProviderServerError):  # a router's own policy wins
        mmsdk.Router("fake:m", mmsdk.Policy(retries=0)).embed(texts=["a"])
    assert len(fake.calls) == 1
    fake.calls.clear()
    fake.failures = list(SERVER_DOWN)
    with pytest.raises(mmsdk.ProviderServerError):  # and so does a call's
        mmsdk.embed(texts=["a"], provider="fake:m", policy=mmsdk.Policy(retries=0))
    assert len(fake.calls) == 1
