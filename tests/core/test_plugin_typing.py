"""A plugin author's code type-checks: ``mmsdk.plugin`` under mypy --strict leaks no ``Any``.

The author's file below uses every part of the plugin API (model mixins, requests,
prepared images, results, model info with features and a price, availability, the
spec and both hooks). It must pass ``mypy --strict --disallow-any-expr`` with none of
this repository's mypy settings (no pydantic plugin), as a plugin author runs it: an
``Any`` leaking from a base class or a request field would be an error. Each mistake
below must be a mypy error, not something found at run time.
"""

from __future__ import annotations

import pytest
from mypy_run import mypy_errors

AUTHOR = '''from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

from typing_extensions import assert_type

from mmsdk.plugin import (Availability, Capability, ClassifyRequest, ClassifyResult, Feature,
                          GenerateRequest, GenerateResult, MediaLimits, ModelInfo, PreparedImage,
                          Price, ProviderSpec, StreamEvent, Understand, UnderstandRequest,
                          UnderstandResult, Usage, Classify, Generate, hookimpl)
from PIL import Image


class Vision(Understand, Classify):
    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        assert_type(request.prompt, str)
        assert_type(request.images, list[PreparedImage])
        assert_type(request.max_tokens, int | None)
        assert_type(self.provider, str)
        assert_type(self.info, ModelInfo)
        for image in request.images:
            assert_type(image.sent.width, int)
            assert_type(image.data, bytes | None)
            assert_type(image.image, Image.Image)
        return UnderstandResult(text=request.prompt, usage=Usage(input_tokens=1))

    def understand_stream(self, request: UnderstandRequest) -> Iterator[StreamEvent]:
        yield "a"
        yield UnderstandResult(text="a")

    async def aunderstand(self, request: UnderstandRequest) -> UnderstandResult:
        return await self.run_blocking(self.understand, request)

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        assert_type(request.labels, list[str])
        return [ClassifyResult(scores={label: 1.0 for label in request.labels})
                for _ in request.images]


class Painter(Generate):
    def generate(self, request: GenerateRequest) -> GenerateResult:
        assert_type(request.seed, int | None)
        return GenerateResult(images=[Image.new("RGB", (request.width or 8, request.height or 8))])


def describe(model: str) -> ModelInfo:
    return ModelInfo(supports=frozenset({Feature.SYSTEM, Feature.STREAM}),
                     limits=MediaLimits(formats=("png",), max_images=4),
                     price=Price(input_per_mtok=1.0, output_per_mtok=2.0))


def check(model: str) -> Availability:
    return Availability.no("no key", "export ACME_KEY=...") if not model else Availability.yes()


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(ProviderSpec(name="acme", model_class=Vision, describe=describe, check=check,
                          default_models={Capability.UNDERSTAND: "v1"}))
    register(ProviderSpec(name="acme-paint", model_class=lambda model: Painter,
                          list_models=lambda: ["p1", "p2"]))


@hookimpl
def register_aliases(register: Callable[[str, str], None]) -> None:
    register("acme-fast", "acme:v1-mini")
'''

# file name -> (source after the author's imports, fragments of the errors mypy must report)
BAD = {
    "wrong_return": ("class Bad(Understand):\n"
                     "    def understand(self, request: UnderstandRequest) -> str:\n"
                     "        return request.prompt\n",
                     ['Return type "str" of "understand" incompatible']),
    "unknown_feature": ("info = ModelInfo(supports=frozenset({Feature.SED}))\n",
                        ['"type[Feature]" has no attribute "SED"']),
    "feature_as_text": ("info = ModelInfo(supports={\"seed\"})\n",
                        ['incompatible type "str"; expected "Feature"']),
    "not_a_model": ("spec = ProviderSpec(name=\"x\", model_class=int)\n",
                    ['Argument "model_class" to "ProviderSpec" has incompatible type']),
    "bad_result": ("result = GenerateResult(images=[\"a.png\"])\n",
                   ['List item 0 has incompatible type "str"; expected "Image"']),
    "bad_request_field": ("def f(request: ClassifyRequest) -> None:\n"
                          "    print(request.label)\n",
                          ['"ClassifyRequest" has no attribute "label"']),
    "bad_price": ("price = Price(input_per_mtok=\"cheap\")\n",
                  ['Argument "input_per_mtok" to "Price" has incompatible type']),
}


def _imports(source: str) -> str:
    """The author file's import lines (everything before the first class)."""
    return source.split("\n\n\nclass ", 1)[0]


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict --disallow-any-expr over the author's files: error lines per file."""
    pytest.importorskip("mypy")
    files = {"author.py": AUTHOR} | {f"{name}.py": f"{_imports(AUTHOR)}\n\n\n{source}"
                                     for name, (source, _) in BAD.items()}
    return mypy_errors(tmp_path_factory.mktemp("plugin_author"), files,
                       "--disallow-any-expr", "--disallow-any-explicit")


def test_a_plugin_using_the_whole_api_passes_strict_with_no_any(
        mypy_output: dict[str, list[str]]) -> None:
    assert mypy_output.get("author", []) == []


@pytest.mark.parametrize("name", sorted(BAD), ids=sorted(BAD))
def test_plugin_author_mistakes_are_mypy_errors(mypy_output: dict[str, list[str]],
                                                name: str) -> None:
    found = "\n".join(line for line in mypy_output.get(name, [])
                      if "unused" not in line)  # the imports a short file does not use
    for fragment in BAD[name][1]:
        assert fragment in found, found or "no errors"
