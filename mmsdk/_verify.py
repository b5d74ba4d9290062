"""Cross-checking an answer: ``understand(..., schema=M, verify_with=PROVIDER)``.

The verifier is asked the same question (same images, video, prompt, schema and
options) while the main call runs, through the same routing (retries, fallback,
breakers, cache) with its attempts marked ``verifier=True``. Its answer is
compared with the main one field by field:

- strings are equal after stripping, casefolding and collapsing whitespace;
- floats after rounding to 3 significant digits;
- a nested model is compared field by field, its fields named with dots
  (``"address.city"``);
- lists, tuples, sets and dicts are compared whole (element by element, after
  the same normalising; list order counts), under the field's own name.

A verifier that fails never fails the call: ``verification.error`` says why.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel

from ._errors import InvalidInputError, MMSDKError
from ._hedging import hedge_pool
from ._types import Attempt, UnderstandResult, Verification

__all__ = ["averified", "check_verify", "compare", "verified"]


def check_verify(verify_with: Any, schema: Any, stream: bool) -> None:
    """Refuse a ``verify_with=`` the call cannot honour, before anything is read or sent."""
    if verify_with is None:
        return
    if schema is None:
        raise InvalidInputError(
            "verify_with= compares structured answers field by field: pass schema= (a "
            "pydantic model) too, or drop verify_with=.")
    if stream:
        raise InvalidInputError("verify_with= cannot be used with stream=True: the answers are "
                                "compared once both are whole; drop one of them.")
    names = [verify_with] if isinstance(verify_with, str) else verify_with
    if not hasattr(verify_with, "candidates") and (
            not isinstance(names, (list, tuple)) or not names
            or not all(isinstance(n, str) and n.strip() for n in names)):
        raise InvalidInputError(
            "verify_with must be a provider string like 'anthropic:claude-sonnet-4-6', a list "
            f"of them, or a mmsdk.Router; got {type(verify_with).__name__}.")


def compare(main: BaseModel, other: BaseModel) -> tuple[list[str], list[str]]:
    """Field names on which *main* and *other* agree, and those on which they differ."""
    agree: list[str] = []
    disagree: list[str] = []
    for name in type(main).model_fields:
        mine, theirs = getattr(main, name), getattr(other, name, None)
        if isinstance(mine, BaseModel) and isinstance(theirs, BaseModel) and \
                type(mine) is type(theirs) and type(mine).model_fields:
            inner_agree, inner_disagree = compare(mine, theirs)
            agree += [f"{name}.{inner}" for inner in inner_agree]
            disagree += [f"{name}.{inner}" for inner in inner_disagree]
        elif _normalised(mine) == _normalised(theirs):
            agree.append(name)
        else:
            disagree.append(name)
    return agree, disagree


def _normalised(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, float):
        return value if value != value or value in (float("inf"), float("-inf")) \
            else float(f"{value:.3g}")
    if isinstance(value, BaseModel):
        return _normalised(value.model_dump())
    if isinstance(value, dict):
        return {_normalised(k): _normalised(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return frozenset(_normalised(v) for v in value)
    return value


def verified(main: Callable[[], UnderstandResult], check: Callable[[], UnderstandResult],
             provider: str, started: float) -> UnderstandResult:
    """Run *main* here and *check* in a worker thread; attach the verification.

    If *main* fails, its error is raised at once (the verifier's answer is dropped).
    """
    future = hedge_pool().submit(contextvars.copy_context().run, check)  # shared workers
    try:
        result = main()
    except BaseException:
        future.cancel()
        raise
    try:
        other: UnderstandResult | MMSDKError = future.result()
    except MMSDKError as error:
        other = error
    return _attach(result, other, provider, started)


async def averified(main: Awaitable[UnderstandResult], check: Awaitable[UnderstandResult],
                    provider: str, started: float) -> UnderstandResult:
    """Async twin of :func:`verified`: both calls run on the loop, concurrently."""
    task = asyncio.ensure_future(check)
    try:
        result = await main
    except BaseException:
        task.cancel()
        raise
    try:
        other: UnderstandResult | MMSDKError = await task
    except MMSDKError as error:
        other = error
    return _attach(result, other, provider, started)


def _attach(result: UnderstandResult, other: UnderstandResult | MMSDKError, provider: str,
            started: float) -> UnderstandResult:
    if isinstance(other, MMSDKError):
        verification = Verification(provider=other.provider or provider,
                                    error=f"{type(other).__name__}: {other.message}")
        extra: Sequence[Attempt] = other.attempts
    else:
        verification = Verification(provider=other.provider, data=other.data)
        if isinstance(result.data, BaseModel) and isinstance(other.data, BaseModel):
            verification.agree, verification.disagree = compare(result.data, other.data)
        extra = other.attempts
        if result.usage.cost_usd is not None and other.usage.cost_usd is not None:
            result.usage.cost_usd += other.usage.cost_usd  # the verifier was billed too
    result.verification = verification
    result.attempts = [*result.attempts, *(a for a in extra if a.verifier)]
    result.elapsed = time.monotonic() - started
    return result
