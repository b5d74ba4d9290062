"""mmsdk.score (CLIP score over any Embed provider) and generate(..., rerank_with=...).

The ``rgb`` provider below has scores a test can predict by hand: an image's
vector is its mean colour and a text's is the mean of the colours it names (PIL
colour names), both centred on mid-grey and left unnormalised, so
``score = 100 * max(cos(mean - 127.5, named - 127.5), 0)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageColor

import mmsdk
from mmsdk import Price
from mmsdk._registry import get_registry
from mmsdk.plugin import (
    Capability,
    Embed,
    EmbedRequest,
    EmbedResult,
    Generate,
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    ProviderSpec,
    Usage,
    hookimpl,
)
from mmsdk.testing import TestProvider

RGB_INFO = ModelInfo(local=True)
# billed like a cloud model: 0.04 $ an image painted, 1 $ a million input tokens embedded
BILLED_INFO = ModelInfo(price=Price(per_image=0.04, input_per_mtok=1.0))


class _RgbModel(Embed):
    calls: list[EmbedRequest]

    def embed(self, request: EmbedRequest) -> EmbedResult:
        self.calls.append(request)
        images = [np.asarray(p.image.convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0)
                  for p in request.images]
        texts = [named(text) for text in request.texts]
        if self.provider == "rgb:text-only":  # a text embedder: it cannot score images
            images = []
        return EmbedResult(
            image_vectors=np.stack(images) - 127.5 if images else None,
            text_vectors=np.stack(texts) - 127.5 if texts else None,
            usage=Usage(input_tokens=1000 * len(request.images),
                        cost_usd=0.001 * len(request.images)))


class _RgbPainter(Generate):
    """``rgb:painter``: paints the colours named in the prompt ("red blue")."""

    def generate(self, request: GenerateRequest) -> GenerateResult:
        images = [solid(name) for name in request.prompt.split()]
        return GenerateResult(images=images, usage=Usage(images=len(images),
                                                         cost_usd=0.04 * len(images)))


class _RgbPlugin:
    def __init__(self) -> None:
        self.calls: list[EmbedRequest] = []

    @hookimpl
    def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        def model_class(model: str) -> type[_RgbModel] | type[_RgbPainter]:
            return _RgbPainter if model == "painter" else _RgbModel

        def factory(model: str, provider: str, info: ModelInfo) -> _RgbModel | _RgbPainter:
            if model == "painter":
                return _RgbPainter(provider, info)
            created = _RgbModel(provider, info)
            created.calls = self.calls
            return created

        register(ProviderSpec(name="rgb", model_class=model_class, factory=factory,
                              describe=lambda model: RGB_INFO if model == "mean"
                              else BILLED_INFO,
                              default_models={Capability.EMBED: "mean",
                                              Capability.GENERATE: "painter"},
                              offer_as_default=False))


@pytest.fixture
def rgb() -> Iterator[_RgbPlugin]:
    """``rgb:ANY``: an embedder whose CLIP scores are predictable (see the module docstring)."""
    plugin = _RgbPlugin()
    registry = get_registry()
    registry.add_plugin(plugin, "test-rgb")
    yield plugin
    registry.remove_plugin("test-rgb")
    registry.unload("rgb")


def named(text: str) -> np.ndarray:
    """The mean of the colours a text names ("red", "navy red")."""
    colours = [ImageColor.getrgb(word)[:3] for word in text.split()]
    mean: np.ndarray = np.array(colours, np.float64).mean(axis=0)
    return mean


def expected(image: Image.Image, colour: str) -> float:
    mean = np.asarray(image.convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0) - 127.5
    text = named(colour) - 127.5
    return 100 * max(float(mean @ text / np.linalg.norm(mean) / np.linalg.norm(text)), 0.0)


def solid(colour: str | tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (16, 12), colour)


# -- score ------------------------------------------------------------------------------
def test_score_is_100_times_the_cosine_clipped_at_zero(rgb: _RgbPlugin) -> None:
    images = [solid("red"), solid("cyan"), solid((200, 90, 40)), solid((130, 120, 200))]

    scores = mmsdk.score(images, "red", provider="rgb:mean")

    assert scores[0] == pytest.approx(100.0)  # same direction, whatever the vector lengths
    assert scores[1] == 0.0  # opposite direction: clipped, not -100
    assert scores == pytest.approx([expected(image, "red") for image in images], abs=1e-9)
    assert 0 < scores[2] < 100 and all(isinstance(s, float) for s in scores)
    assert len(rgb.calls) == 1 and rgb.calls[0].texts == ["red"]  # one embed call for all


def test_score_takes_one_image_or_any_image_input(rgb: _RgbPlugin, png_bytes: bytes,
                                                  tmp_path: Any) -> None:
    path = tmp_path / "x.png"
    solid("navy").save(path)

    assert mmsdk.score(solid("red"), "red", provider="rgb:mean") == pytest.approx([100.0])
    assert mmsdk.score((str(path), png_bytes), "navy", provider="rgb:mean") == pytest.approx(
        [100.0, expected(Image.new("RGB", (4, 4), (200, 10, 10)), "navy")])


def test_score_from_a_testing_provider_matches_its_embeddings(fake: TestProvider) -> None:
    images = [solid("red"), solid("green"), solid("blue")]
    vectors = mmsdk.embed(images=images, texts=["a red square"], provider="fake:x")
    assert vectors.image_vectors is not None and vectors.text_vectors is not None

    scores = mmsdk.score(images, "a red square", provider="fake:x")

    cosines = vectors.image_vectors @ vectors.text_vectors[0]
    assert scores == pytest.approx((100 * np.maximum(cosines, 0)).tolist(), abs=1e-4)
    assert any(s == 0.0 for s in scores) or all(c > 0 for c in cosines)


@pytest.mark.parametrize(("images", "prompt"), [
    ([], "red"), (None, "red"), ([solid("red")], ""), ([solid("red")], "   "),
    ([solid("red")], 5), ([solid("red")], b"red"), ([solid("red")], ["red"]),
    ([b"not an image"], "red"),
], ids=["no-images", "none", "empty-prompt", "blank-prompt", "int-prompt", "bytes-prompt",
        "list-prompt", "bad-image"])
def test_bad_inputs_are_invalid_input_errors_before_any_call(rgb: _RgbPlugin, images: Any,
                                                             prompt: Any) -> None:
    with pytest.raises(mmsdk.InvalidInputError):
        mmsdk.score(images, prompt, provider="rgb:mean")
    assert rgb.calls == []


def test_a_provider_that_cannot_embed_is_a_capability_error() -> None:
    with TestProvider("painter", capabilities=[Capability.GENERATE]) as painter, \
            pytest.raises(mmsdk.CapabilityError, match="cannot embed"):
        mmsdk.score([solid("red")], "red", provider="painter:x")
    assert painter.calls == []


def test_unknown_provider_and_unusable_vectors_are_typed(rgb: _RgbPlugin) -> None:
    with pytest.raises(mmsdk.UnknownProviderError):
        mmsdk.score([solid("red")], "red", provider="rgbb:mean")
    with pytest.raises(mmsdk.ProviderError, match="rgb:text-only returned no image vectors"):
        mmsdk.score([solid("red")], "red", provider="rgb:text-only")


def test_router_score_routes_with_fallback_policy_and_attempts(rgb: _RgbPlugin,
                                                               primary: TestProvider) -> None:
    primary.failures = [mmsdk.ProviderServerError("down")] * 2
    seen: list[mmsdk.Attempt] = []
    router = mmsdk.Router(["primary:x", "rgb:mean"], policy=mmsdk.Policy(backoff=0),
                          on_attempt=seen.append)

    assert router.score([solid("red")], "red") == pytest.approx([100.0])
    assert [(a.provider, a.outcome) for a in seen] == [
        ("primary:x", "error"), ("primary:x", "error"), ("rgb:mean", "ok")]

    local = mmsdk.Router(["primary:x", "rgb:mean"], policy=mmsdk.Policy(local_only=True))
    assert local.score([solid("red")], "red") == pytest.approx([100.0])
    assert len(primary.calls) == 2  # local_only skipped the cloud-like provider


def test_ascore_and_router_ascore_match_score(rgb: _RgbPlugin) -> None:
    images = [solid("red"), solid((10, 200, 90))]
    router = mmsdk.Router("rgb:mean")

    async def both() -> tuple[list[float], list[float]]:
        return (await mmsdk.ascore(images, "lime", provider="rgb:mean"),
                await router.ascore(images, "lime"))

    assert asyncio.run(both()) == (mmsdk.score(images, "lime", provider="rgb:mean"),) * 2


# -- generate(..., rerank_with=...) -------------------------------------------------------------
@pytest.fixture
def painter() -> Iterator[TestProvider]:
    """A generator of solid colours (derived from the prompt, the seed and the index)."""
    with TestProvider("painter", capabilities=[Capability.GENERATE]) as provider:
        yield provider


def _pixels(images: list[Image.Image]) -> list[bytes]:
    return [image.tobytes() for image in images]


def test_rerank_returns_the_images_best_first_with_aligned_scores(painter: TestProvider,
                                                                  rgb: _RgbPlugin) -> None:
    plain = mmsdk.generate("red", provider="painter:x", n=4, seed=11)
    predicted = sorted(((expected(image, "red"), image.tobytes()) for image in plain.images),
                       key=lambda pair: -pair[0])
    assert [p for _, p in predicted] != _pixels(plain.images)  # the order has to change

    ranked = mmsdk.generate("red", provider="painter:x", n=4, seed=11, rerank_with="rgb:mean")

    assert ranked.scores == pytest.approx([score for score, _ in predicted], abs=1e-9)
    assert ranked.scores == sorted(ranked.scores, reverse=True)
    assert _pixels(ranked.images) == [pixels for _, pixels in predicted]
    assert plain.scores is None
    assert [(a.provider, a.outcome) for a in ranked.attempts] == [
        ("painter:x", "ok"), ("rgb:mean", "ok")]
    assert ranked.attempts[1].started >= ranked.attempts[0].started + ranked.attempts[0].seconds
    assert ranked.elapsed >= ranked.attempts[1].started + ranked.attempts[1].seconds
    assert ranked.provider == "painter:x" and len(rgb.calls) == 1


def test_rerank_with_one_image(painter: TestProvider, rgb: _RgbPlugin) -> None:
    result = mmsdk.generate("blue", provider="painter:x", n=1, seed=2, rerank_with="rgb:mean")

    assert result.scores == pytest.approx([expected(result.images[0], "blue")])


def test_rerank_adds_the_rerankers_cost_to_the_calls(rgb: _RgbPlugin) -> None:
    plain = mmsdk.generate("navy red teal", provider="rgb:painter")
    scoring = mmsdk.embed(images=plain.images, texts=["navy red teal"], provider="rgb:billed")
    assert plain.usage.cost_usd == pytest.approx(0.12)
    assert scoring.usage.cost_usd == pytest.approx(0.003)

    ranked = mmsdk.generate("navy red teal", provider="rgb:painter", rerank_with="rgb:billed")

    assert ranked.usage.cost_usd == pytest.approx(0.123)
    assert ranked.usage.images == plain.usage.images == 3


def test_an_unknown_reranker_cost_makes_the_total_unknown(painter: TestProvider,
                                                          rgb: _RgbPlugin) -> None:
    with TestProvider("ranker") as ranker:
        scoring = mmsdk.embed(images=[solid("red")], texts=["red"], provider="ranker:x")
        result = mmsdk.generate("red", provider="rgb:painter", rerank_with="ranker:x")
    assert len(ranker.calls) == 2
    if scoring.usage.cost_usd is None:  # a total that leaves out a part is not a total
        assert result.usage.cost_usd is None
    else:
        assert result.usage.cost_usd == pytest.approx(0.04 + scoring.usage.cost_usd)


def test_agenerate_and_router_generate_rerank(painter: TestProvider, rgb: _RgbPlugin) -> None:
    sync = mmsdk.generate("orange", provider="painter:x", n=3, seed=5, rerank_with="rgb:mean")
    router = mmsdk.Router("painter:x")

    async def calls() -> list[mmsdk.GenerateResult]:
        return [await mmsdk.agenerate("orange", provider="painter:x", n=3, seed=5,
                                      rerank_with=["rgb:mean"]),
                await router.agenerate("orange", n=3, seed=5,
                                       rerank_with=mmsdk.Router("rgb:mean"))]

    for result in [*asyncio.run(calls()), router.generate("orange", n=3, seed=5,
                                                          rerank_with="rgb:mean")]:
        assert result.scores == sync.scores
        assert _pixels(result.images) == _pixels(sync.images)
        assert [a.provider for a in result.attempts] == ["painter:x", "rgb:mean"]


@pytest.mark.parametrize("rerank_with", ["nosuch:model", "painter:x", 5, [], ["rgb:mean", 3]],
                         ids=["unknown", "no-embed", "int", "empty-list", "bad-item"])
def test_a_reranker_that_cannot_work_fails_before_generating(painter: TestProvider,
                                                             rgb: _RgbPlugin,
                                                             rerank_with: Any) -> None:
    errors = (mmsdk.UnknownProviderError, mmsdk.CapabilityError, mmsdk.InvalidInputError)
    with pytest.raises(errors) as caught:
        mmsdk.generate("red", provider="painter:x", n=2, rerank_with=rerank_with)
    assert painter.calls == []
    if rerank_with == "painter:x":
        assert isinstance(caught.value, mmsdk.CapabilityError)
        assert "no candidate can embed" in caught.value.message


def test_a_cloud_reranker_under_local_only_fails_before_generating(painter: TestProvider,
                                                                   primary: TestProvider
                                                                   ) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="local_only"):
        mmsdk.generate("red", provider="painter:x", rerank_with="primary:x",
                       policy=mmsdk.Policy(local_only=True))
    assert painter.calls == [] and primary.calls == []


def test_a_failing_reranker_raises_its_typed_error_saying_so(painter: TestProvider) -> None:
    with TestProvider("ranker", failures=[mmsdk.AuthenticationError("bad key")]) as ranker, \
            pytest.raises(mmsdk.AuthenticationError) as caught:
        mmsdk.generate("red", provider="painter:x", n=2, rerank_with="ranker:clip")

    error = caught.value
    assert "Reranking the 2 image(s) generated by painter:x with rerank_with='ranker:clip' " \
           "failed" in str(error)
    assert "bad key" in str(error) and error.provider == "ranker:clip"
    assert [(a.provider, a.outcome) for a in error.attempts] == [
        ("painter:x", "ok"), ("ranker:clip", "error")]
    assert len(painter.calls) == 1 and len(ranker.calls) == 1


def test_a_reranker_list_falls_back_under_the_calls_policy(painter: TestProvider,
                                                           primary: TestProvider,
                                                           rgb: _RgbPlugin) -> None:
    seen: list[str] = []
    router = mmsdk.Router("painter:x", policy=mmsdk.Policy(local_only=True),
                          on_attempt=lambda attempt: seen.append(attempt.provider))

    result = router.generate("red", n=2, seed=3, rerank_with=["primary:x", "rgb:mean"])

    assert primary.calls == []  # local_only applies to the reranker too
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("painter:x", "ok"), ("primary:x", "skipped"), ("rgb:mean", "ok")]
    assert seen == ["painter:x", "primary:x", "rgb:mean"]  # the router's hook saw them all


def test_one_deadline_covers_generating_and_reranking() -> None:
    """Generating takes 0.5 s of a 1.2 s deadline; reranking needs 0.9 s more: too late."""
    with TestProvider("painter", latency=0.5) as painter, \
            TestProvider("ranker", latency=0.9) as ranker:
        with pytest.raises(mmsdk.ProviderTimeoutError, match="Reranking"):
            mmsdk.generate("red", provider="painter:x", rerank_with="ranker:x",
                           policy=mmsdk.Policy(deadline=1.2, retries=0))
        assert len(painter.calls) == 1 and len(ranker.calls) == 1
        # a reranker given as a Router keeps its own policy
        result = mmsdk.generate("red", provider="painter:x",
                                rerank_with=mmsdk.Router("ranker:x"),
                                policy=mmsdk.Policy(deadline=1.2, retries=0))
        assert result.scores is not None and len(result.scores) == 1
