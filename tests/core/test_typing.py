"""User code is type-checked: mypy --strict on small user files, and twins share signatures."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from mypy_run import mypy_errors

import mmsdk

GOOD = '''
from __future__ import annotations

from pathlib import Path

from typing_extensions import assert_type

import mmsdk


def calls(paths: list[str], picture: Path, flag: bool) -> None:
    assert_type(mmsdk.understand("x", images=paths, provider="openai", max_tokens=5),
                mmsdk.UnderstandResult)
    assert_type(mmsdk.understand("x", provider=["a", "b"], stream=True), mmsdk.TextStream)
    assert_type(mmsdk.understand("x", stream=flag), mmsdk.UnderstandResult | mmsdk.TextStream)
    assert_type(mmsdk.classify("a.png", ["cat"]), mmsdk.ClassifyResult)
    assert_type(mmsdk.classify(paths, ["cat"]), list[mmsdk.ClassifyResult])
    assert_type(mmsdk.classify((picture, b"png"), ["cat"]), list[mmsdk.ClassifyResult])
    assert_type(mmsdk.generate("x", size="64x64", seed=1, image=picture), mmsdk.GenerateResult)
    assert_type(mmsdk.embed(texts=["a"], images=picture), mmsdk.EmbedResult)
    assert_type(mmsdk.score([picture, "a.png"], "a cat"), list[float])
    assert_type(mmsdk.generate("x", n=4, rerank_with="local:clip"), mmsdk.GenerateResult)
    router = mmsdk.Router(["openai:gpt-5.5", "local:llava"], policy=mmsdk.Policy(retries=0))
    assert_type(router.understand("x", images=[picture], detail="low"), mmsdk.UnderstandResult)
    assert_type(router.understand("x", stream=True), mmsdk.TextStream)
    assert_type(router.classify(picture, ["cat"]), mmsdk.ClassifyResult)
    assert_type(router.classify([picture], ["cat"]), list[mmsdk.ClassifyResult])
    assert_type(router.generate("x", n=2), mmsdk.GenerateResult)
    assert_type(router.embed(texts="a"), mmsdk.EmbedResult)
    assert_type(router.score(picture, "a cat"), list[float])
    assert_type(mmsdk.preload("local:clip", "classify"), list[str])
    assert_type(router.preload(), list[str])
    assert_type(mmsdk.providers(), list[mmsdk.ProviderStatus])
    for chunk in mmsdk.understand("x", stream=True):
        assert_type(chunk, str)


async def acalls(router: mmsdk.Router) -> None:
    assert_type(await mmsdk.aunderstand("x", provider="openai", max_tokens=3),
                mmsdk.UnderstandResult)
    assert_type(await mmsdk.aunderstand("x", stream=True), mmsdk.AsyncTextStream)
    assert_type(await mmsdk.aclassify("a.png", ["cat"]), mmsdk.ClassifyResult)
    assert_type(await mmsdk.aclassify(["a.png"], ["cat"]), list[mmsdk.ClassifyResult])
    assert_type(await mmsdk.agenerate("x", seed=1, steps=4), mmsdk.GenerateResult)
    assert_type(await mmsdk.aembed(images=["a.png"]), mmsdk.EmbedResult)
    assert_type(await router.aunderstand("x", stream=True), mmsdk.AsyncTextStream)
    assert_type(await router.aclassify(["a.png"], ["cat"]), list[mmsdk.ClassifyResult])
    assert_type(await router.agenerate("x"), mmsdk.GenerateResult)
    assert_type(await router.aembed(texts=["a"]), mmsdk.EmbedResult)
    assert_type(await mmsdk.ascore(["a.png"], "a cat", provider=router), list[float])
    assert_type(await router.ascore(["a.png"], "a cat"), list[float])
    assert_type(await mmsdk.apreload("local:clip"), list[str])
    assert_type(await router.apreload(), list[str])
'''

# file name -> (source, the errors mypy must report, as "LINE: text" fragments)
BAD = {
    "bad_keyword": ('mmsdk.understand("x", provder="openai")',
                    ['Unexpected keyword argument "provder"', 'did you mean "provider"?']),
    "bad_async_keyword": ('async def f() -> None:\n    await mmsdk.agenerate("x", sede=1)',
                          ['Unexpected keyword argument "sede" for "agenerate"']),
    "bad_attribute": ('print(mmsdk.understand("x").txt)',
                      ['"UnderstandResult" has no attribute "txt"; maybe "text"?']),
    "bad_classify": ('print(mmsdk.classify("a.png", ["cat"]).text)\n'
                     'print(mmsdk.classify(["a.png"], ["cat"]).top)',
                     ['"ClassifyResult" has no attribute "text"',
                      '"list[ClassifyResult]" has no attribute "top"']),
    "bad_stream": ('print(mmsdk.understand("x", stream=True).usage)',
                   ['"TextStream" has no attribute "usage"']),
    "bad_score": ('print(mmsdk.score("a.png", "a cat").scores)',
                  ['"list[float]" has no attribute "scores"']),
}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict over every user file in one run: its error lines, per file."""
    pytest.importorskip("mypy")
    files = {"good.py": GOOD} | {f"{name}.py": f"import mmsdk\n\n{source}\n"
                                 for name, (source, _) in BAD.items()}
    return mypy_errors(tmp_path_factory.mktemp("user_code"), files)


def test_correct_user_code_passes_mypy_strict_with_precise_types(
        mypy_output: dict[str, list[str]]) -> None:
    assert mypy_output.get("good", []) == []


@pytest.mark.parametrize("name", sorted(BAD), ids=sorted(BAD))
def test_mistakes_in_user_code_are_mypy_errors(mypy_output: dict[str, list[str]],
                                               name: str) -> None:
    found = "\n".join(mypy_output.get(name, []))
    for fragment in BAD[name][1]:
        assert fragment in found, found or "no errors"


# -- the twins agree at run time too ----------------------------------------------------
PAIRS = [(getattr(mmsdk, n), getattr(mmsdk, f"a{n}"))
         for n in ("generate", "understand", "classify", "embed", "score", "preload")]


def _keywords(function: Callable[..., Any], *, drop: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()
            if p.name not in ("self", *drop)]


@pytest.mark.parametrize(("sync", "twin"), PAIRS, ids=[s.__name__ for s, _ in PAIRS])
def test_async_twins_take_the_same_arguments(sync: Callable[..., Any],
                                             twin: Callable[..., Any]) -> None:
    assert _keywords(twin) == _keywords(sync)
    router_sync, router_twin = getattr(mmsdk.Router, sync.__name__), \
        getattr(mmsdk.Router, twin.__name__)
    assert _keywords(router_twin) == _keywords(router_sync)
    if sync.__name__ != "preload":  # the module functions add provider= and policy=
        assert _keywords(sync, drop=("provider", "policy")) == _keywords(router_sync)
