"""Cross-checking: understand(..., schema=M, verify_with=PROVIDER) -> result.verification."""

from __future__ import annotations

import json
import threading
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

import mmsdk
from mmsdk._requests import UnderstandRequest
from mmsdk._verify import compare
from mmsdk.testing import TestProvider


class Receipt(BaseModel):
    vendor: str
    total: float
    currency: str
    items: int


MAIN = {"vendor": "  ACME   Corp ", "total": 12.5, "currency": "EUR", "items": 3}
AGREEING = {"vendor": "acme corp", "total": 12.4999, "currency": "eur", "items": 3}
DISAGREEING = {"vendor": "ACME Corp", "total": 13.0, "currency": "EUR", "items": 4}


@pytest.fixture
def main() -> Any:
    with TestProvider("main", answer=json.dumps(MAIN)) as provider:
        yield provider


def _checker(answer: dict[str, Any] | str, **kwargs: Any) -> TestProvider:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return TestProvider("checker", answer=text, **kwargs)


def test_an_agreeing_verifier(main: TestProvider, png_bytes: bytes) -> None:
    with _checker(AGREEING) as checker:
        result = mmsdk.understand("Read the receipt", images=[png_bytes], schema=Receipt,
                                  provider="main:m", verify_with="checker:m", system="Be exact")
    assert result.data == Receipt(**MAIN) and result.provider == "main:m"
    verification = result.verification
    assert verification is not None
    assert verification.provider == "checker:m" and verification.error is None
    assert verification.data == Receipt(**AGREEING)
    assert verification.agree == ["vendor", "total", "currency", "items"]
    assert verification.disagree == []
    # the same question: prompt, images, schema and options
    [asked], [checked] = main.calls, checker.calls
    assert checked.prompt == asked.prompt == "Read the receipt"
    assert checked.response_schema is Receipt and checked.system == "Be exact"
    assert [i.sent for i in checked.images] == [i.sent for i in asked.images]


def test_a_disagreeing_verifier(main: TestProvider) -> None:
    with _checker(DISAGREEING):
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with="checker:m")
    assert result.verification is not None
    assert result.verification.agree == ["vendor", "currency"]
    assert result.verification.disagree == ["total", "items"]


def test_verifier_attempts_are_in_the_result_marked(main: TestProvider) -> None:
    seen: list[mmsdk.Attempt] = []
    with _checker(AGREEING, failures=[mmsdk.ProviderServerError]):
        router = mmsdk.Router("main:m", policy=mmsdk.Policy(backoff=0), on_attempt=seen.append)
        result = router.understand("Read it", schema=Receipt, verify_with="checker:m")
    assert [(a.provider, a.outcome, a.verifier) for a in result.attempts] == [
        ("main:m", "ok", False), ("checker:m", "error", True), ("checker:m", "ok", True)]
    assert sorted((a.provider, a.verifier) for a in seen) == [
        ("checker:m", True), ("checker:m", True), ("main:m", False)]


def test_a_failing_verifier_leaves_the_main_answer_standing(main: TestProvider) -> None:
    with _checker(AGREEING, failures=[mmsdk.AuthenticationError]):
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with="checker:m")
    assert result.data == Receipt(**MAIN)
    verification = result.verification
    assert verification is not None and verification.data is None
    assert verification.error == "AuthenticationError: scripted AuthenticationError"
    assert verification.agree == verification.disagree == []
    assert [(a.provider, a.outcome, a.verifier) for a in result.attempts] == [
        ("main:m", "ok", False), ("checker:m", "error", True)]


def test_a_verifier_answer_off_schema_is_an_error_not_a_disagreement(main: TestProvider) -> None:
    with _checker("I think it says 12.50 euros"):
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with="checker:m")
    assert result.verification is not None
    assert (result.verification.error or "").startswith("OutputValidationError: checker:m's "
                                                        "answer does not match Receipt")


def test_a_verifier_route_falls_back(main: TestProvider) -> None:
    with _checker(DISAGREEING, available=False), \
            TestProvider("spare", answer=json.dumps(AGREEING)):
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with=["checker:m", "spare:m"])
    assert result.verification is not None and result.verification.provider == "spare:m"
    assert result.verification.disagree == []
    assert [(a.provider, a.outcome) for a in result.attempts if a.verifier] == [
        ("checker:m", "skipped"), ("spare:m", "ok")]


def test_a_router_as_verifier_uses_its_own_policy(main: TestProvider) -> None:
    with _checker(AGREEING, failures=[mmsdk.ProviderServerError]) as checker:
        strict = mmsdk.Router("checker:m", policy=mmsdk.Policy(retries=0))
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with=strict)
    assert len(checker.calls) == 1  # no retry under the verifier router's policy
    assert result.verification is not None
    assert (result.verification.error or "").startswith("ProviderServerError")


def test_the_main_call_failing_raises_its_own_error(main: TestProvider) -> None:
    main.failures = [mmsdk.AuthenticationError]
    with _checker(AGREEING), pytest.raises(mmsdk.AuthenticationError):
        mmsdk.understand("Read it", schema=Receipt, provider="main:m", verify_with="checker:m")


def _meet(arrived: threading.Event, other: threading.Event, answer: dict[str, Any]) -> Any:
    def answering(request: UnderstandRequest) -> str:
        arrived.set()
        assert other.wait(10), "the other call never started: the calls ran one after another"
        return json.dumps(answer)
    return answering


def test_both_calls_run_at_the_same_time() -> None:
    first, second = threading.Event(), threading.Event()
    with TestProvider("main", answer=_meet(first, second, MAIN)), \
            TestProvider("checker", answer=_meet(second, first, AGREEING)):
        result = mmsdk.understand("Read it", schema=Receipt, provider="main:m",
                                  verify_with="checker:m")
    assert result.verification is not None and result.verification.error is None


async def test_async_calls_verify_concurrently_too() -> None:
    first, second = threading.Event(), threading.Event()
    with TestProvider("main", answer=_meet(first, second, MAIN)), \
            TestProvider("checker", answer=_meet(second, first, DISAGREEING)):
        result = await mmsdk.aunderstand("Read it", schema=Receipt, provider="main:m",
                                         verify_with="checker:m")
    assert result.verification is not None
    assert result.verification.disagree == ["total", "items"]


async def test_async_failing_verifier(main: TestProvider) -> None:
    with _checker(AGREEING, failures=[mmsdk.AuthenticationError]):
        result = await mmsdk.Router("main:m").aunderstand("Read it", schema=Receipt,
                                                          verify_with="checker:m")
    assert result.verification is not None
    assert result.verification.error == "AuthenticationError: scripted AuthenticationError"


@pytest.mark.parametrize(("kwargs", "error", "fragment"), [
    pytest.param({"verify_with": "checker:m"}, mmsdk.InvalidInputError, "pass schema=",
                 id="no-schema"),
    pytest.param({"verify_with": "checker:m", "schema": Receipt, "stream": True},
                 mmsdk.InvalidInputError, "stream=True", id="stream"),
    pytest.param({"verify_with": 3, "schema": Receipt}, mmsdk.InvalidInputError,
                 "verify_with must be", id="wrong-type"),
    pytest.param({"verify_with": [], "schema": Receipt}, mmsdk.InvalidInputError,
                 "verify_with must be", id="empty-list"),
    pytest.param({"verify_with": "nosuchplugin:m", "schema": Receipt},
                 mmsdk.UnknownProviderError, "nosuchplugin", id="unknown"),
])
def test_bad_verify_with_fails_before_any_call(main: TestProvider, kwargs: dict[str, Any],
                                               error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        mmsdk.understand("Read it", provider="main:m", **kwargs)
    assert main.calls == []


# -- comparing -------------------------------------------------------------------------
class Colour(Enum):
    RED = "Red"
    BLUE = "Blue"


class Address(BaseModel):
    city: str
    zip: str


class Order(BaseModel):
    address: Address
    tags: list[str]
    colour: Colour
    weight: float
    note: str | None = None


def test_nested_models_are_compared_field_by_field_and_lists_whole() -> None:
    one = Order(address=Address(city="Paris ", zip="75001"), tags=["A", "b"], colour=Colour.RED,
                weight=1.23449)
    two = Order(address=Address(city="paris", zip="75002"), tags=["a", "B "], colour=Colour.RED,
                weight=1.2341)
    assert compare(one, two) == (["address.city", "tags", "colour", "weight", "note"],
                                 ["address.zip"])
    reordered = two.model_copy(update={"tags": ["B", "a"], "weight": 1.25, "note": "x"})
    assert compare(one, reordered) == (["address.city", "colour"],
                                       ["address.zip", "tags", "weight", "note"])
