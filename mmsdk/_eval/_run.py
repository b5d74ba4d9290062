"""Run every provider over every example: :func:`evaluate` and :func:`aevaluate`.

Calls go through the public API (one :class:`mmsdk.Router` per provider), a
bounded number at a time; each finished call is recorded in the resume file
before the next result is awaited, so an interrupted run loses nothing done.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel

from .._errors import CancelledError, InvalidInputError, MMSDKError
from .._types import Capability, ClassifyResult, UnderstandResult
from ._dataset import Example, Task, load_examples
from ._report import EvalReport, ExampleResult, summarise
from ._scoring import field_agreement, normalise_text
from ._store import ResultStore, final

if TYPE_CHECKING:
    from .._policy import Policy
    from .._router import Router

__all__ = ["aevaluate", "evaluate"]

OnResult = Callable[[ExampleResult], Any]


class _Plan:
    """What to run: the examples, one router per provider, and how to call them."""

    def __init__(self, dataset: Any, providers: Sequence[str | Router], task: Task,
                 labels: Sequence[str] | None, prompt: str | None,
                 schema: type[BaseModel] | None, concurrency: int, resume: str | Path | None,
                 policy: Policy | None, call: dict[str, Any]) -> None:
        from .._router import Router

        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency must be a whole number >= 1, got {concurrency!r}.")
        self.examples, self.labels = load_examples(dataset, task, labels=labels, prompt=prompt,
                                                   schema=schema)
        self.task: Task = task
        self.schema = schema
        self.concurrency = concurrency
        self.call = {key: value for key, value in call.items() if value is not None}
        if isinstance(providers, (str, Router)) or not isinstance(providers, Sequence) \
                or not providers:
            raise InvalidInputError("providers must be a non-empty list of provider strings (or "
                                    "Routers), e.g. ['local:clip', 'openai'].")
        self.routers: dict[str, Router] = {}
        capability = Capability.CLASSIFY if task == "classify" else Capability.UNDERSTAND
        for entry in providers:
            if isinstance(entry, Router):
                name = "+".join(entry.providers) if entry.providers else "default"
                router = entry
            elif isinstance(entry, str):
                name, router = entry, Router(entry, policy)
            else:
                raise InvalidInputError("each provider must be a string like 'local:clip' or a "
                                        f"mmsdk.Router, got {type(entry).__name__}.")
            if name in self.routers:
                raise InvalidInputError(f"provider {name!r} is listed twice; list each once.")
            router.candidates(capability)  # an unknown name fails here, before any call
            self.routers[name] = router
        self._unfinished: list[ExampleResult] = []  # failures to retry on resume, reported now
        self.store = ResultStore(resume, {
            "task": task, "labels": self.labels, "prompt": prompt,
            "schema": schema.__name__ if schema is not None else None})

    def pending(self) -> list[tuple[str, Example]]:
        return [(name, example) for example in self.examples for name in self.routers
                if self.store.get(name, example.id) is None]

    def report(self) -> EvalReport:
        results = [found for name in self.routers for example in self.examples
                   if (found := self.store.get(name, example.id)) is not None]
        results += self._unfinished
        return summarise(self.task, [e.id for e in self.examples], list(self.routers), results,
                         labels=self.labels,
                         schema_name=self.schema.__name__ if self.schema is not None else None)

    def record(self, result: ExampleResult) -> None:
        self.store.add(result)
        if not final(result):  # tried again on resume: the store does not keep it as done
            self._unfinished.append(result)

    # -- one call ----------------------------------------------------------------------
    def _call(self, name: str, example: Example, asynchronous: bool) -> Any:
        """The public call for this example: a result, or a coroutine of one."""
        router = self.routers[name]
        if self.task == "classify":
            classify = router.aclassify if asynchronous else router.classify
            return classify(example.image, self.labels or [], **self.call)
        understand = router.aunderstand if asynchronous else router.understand
        return understand(example.prompt or "", images=[example.image], schema=self.schema,
                          **self.call)

    def run_one(self, name: str, example: Example) -> ExampleResult:
        try:
            answer = self._call(name, example, asynchronous=False)
        except CancelledError:
            raise
        except MMSDKError as exc:
            return self.failed(name, example, exc)
        return self.judge(name, example, answer)

    async def arun_one(self, name: str, example: Example) -> ExampleResult:
        try:
            answer = await self._call(name, example, asynchronous=True)
        except CancelledError:
            raise
        except MMSDKError as exc:
            return self.failed(name, example, exc)
        return self.judge(name, example, answer)

    def failed(self, name: str, example: Example, exc: MMSDKError) -> ExampleResult:
        first = (str(exc).splitlines() or [""])[0]
        return ExampleResult(provider=name, example=example.id, expected=_text(example.expected),
                             error_code=exc.code, error=first)

    def judge(self, name: str, example: Example, answer: Any) -> ExampleResult:
        common = {"provider": name, "example": example.id, "expected": _text(example.expected),
                  "elapsed": answer.elapsed, "cost_usd": answer.usage.cost_usd,
                  "answered_by": answer.provider}
        if isinstance(answer, ClassifyResult):
            top = answer.top[0]
            return ExampleResult(answer=top, correct=top == example.expected, **common)
        assert isinstance(answer, UnderstandResult)
        if self.schema is None:
            correct = normalise_text(answer.text) == normalise_text(example.expected)
            return ExampleResult(answer=answer.text, correct=correct, **common)
        agreement = field_agreement(answer.data, example.expected)
        shown = answer.data.model_dump_json() if isinstance(answer.data, BaseModel) else answer.text
        return ExampleResult(answer=shown, correct=agreement == 1.0, agreement=agreement, **common)


def _call_options(task: Task, template: str | None, system: str | None, max_tokens: int | None,
                  temperature: float | None, options: dict[str, Any] | None) -> dict[str, Any]:
    if task == "classify":
        return {"template": template, "options": options}
    return {"system": system, "max_tokens": max_tokens, "temperature": temperature,
            "options": options}


def _text(expected: Any) -> str:
    return expected.model_dump_json() if isinstance(expected, BaseModel) else str(expected)


class _Bar:
    """A one-line progress bar on stderr: ``eval [#######.....] 7/12``."""

    def __init__(self, total: int, done: int, stream: IO[str] | None = None) -> None:
        self.total, self.done = total, done
        self.stream = stream if stream is not None else sys.stderr
        self.draw()

    def draw(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        self.stream.write(f"\reval [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        self.stream.flush()

    def step(self) -> None:
        self.done += 1
        self.draw()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def evaluate(dataset: Any, *, providers: Sequence[str | Router], task: Task = "classify",
             labels: Sequence[str] | None = None, prompt: str | None = None,
             schema: type[BaseModel] | None = None, concurrency: int = 4,
             resume: str | Path | None = None, policy: Policy | None = None,
             template: str | None = None, system: str | None = None,
             max_tokens: int | None = None, temperature: float | None = None,
             options: dict[str, Any] | None = None, progress: bool = False,
             on_result: OnResult | None = None) -> EvalReport:
    """Run every provider over a labelled data set and score them.

    Args:
        dataset: a folder with one subfolder per label (``pets/cat/*.png``,
            ``pets/dog/*.png``: labels are the subfolder names), or an iterable
            of examples: ``(image, label)`` or ``{"image": ..., "label": ...}``
            for ``classify``; ``(image, prompt, answer)`` or
            ``{"image", "prompt", "answer"}`` for ``understand`` (``(image,
            answer)`` with ``prompt=``). A dict may carry an ``"id"``.
        providers: provider strings (each evaluated alone) or Routers.
        task: ``"classify"`` (top-1 accuracy) or ``"understand"`` (exact match
            after normalising; with ``schema``, field agreement).
        labels: the labels offered (classify; default: every expected label).
        prompt: the question for every example (understand; on a folder the
            expected answer is the subfolder name).
        schema: a pydantic model answers are parsed into and compared field by field.
        concurrency: calls in flight at once, over all providers.
        resume: a results file; each finished call is appended to it, and a
            run with the same file skips work already done (failures other
            than caller mistakes are tried again).
        policy: the :class:`Policy` for each provider's router.
        template, system, max_tokens, temperature, options: passed to each call.
        progress: draw a progress bar on stderr.
        on_result: called with each :class:`ExampleResult` as it finishes.

    Returns:
        An :class:`EvalReport`: per provider accuracy, latency p50 / p95 (from
        ``result.elapsed``), cost (``usage.cost_usd``) and failures.

    Raises:
        InvalidInputError: a missing or empty folder, fewer than two labels,
            malformed examples, a resume file of another evaluation.
        UnknownProviderError: a provider name nobody registered (before any call).

    Example:
        >>> report = mmsdk.evaluate("pets/", providers=["local:clip", "openai"])
        >>> print(report.to_markdown())
    """
    plan = _Plan(dataset, providers, task, labels, prompt, schema, concurrency, resume, policy,
                 _call_options(task, template, system, max_tokens, temperature, options))
    work = plan.pending()
    total = len(plan.examples) * len(plan.routers)
    bar = _Bar(total, total - len(work)) if progress else None

    stop = threading.Event()

    def one(name: str, example: Example) -> ExampleResult | None:
        if stop.is_set():  # interrupted: start nothing new
            return None
        try:
            result = plan.run_one(name, example)
        except BaseException:
            stop.set()  # before this future fails, so this worker's next item sees it
            raise
        plan.record(result)  # in the worker: kept even if the caller is interrupted now
        return result

    pool = ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="mmsdk-eval")
    try:
        waiting: set[Future[ExampleResult | None]] = {pool.submit(one, name, example)
                                                      for name, example in work}
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()  # re-raises KeyboardInterrupt, CancelledError, bugs
                if result is None:
                    continue
                if bar is not None:
                    bar.step()
                if on_result is not None:
                    on_result(result)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        if bar is not None:
            bar.close()
    return plan.report()


async def aevaluate(dataset: Any, *, providers: Sequence[str | Router],
                    task: Task = "classify", labels: Sequence[str] | None = None,
                    prompt: str | None = None, schema: type[BaseModel] | None = None,
                    concurrency: int = 4, resume: str | Path | None = None,
                    policy: Policy | None = None, template: str | None = None,
                    system: str | None = None, max_tokens: int | None = None,
                    temperature: float | None = None, options: dict[str, Any] | None = None,
                    progress: bool = False, on_result: OnResult | None = None) -> EvalReport:
    """Async twin of :func:`evaluate`: the calls are the async twins, at most
    *concurrency* in flight; cancelling it cancels them, keeping what finished."""
    plan = await asyncio.to_thread(
        _Plan, dataset, providers, task, labels, prompt, schema, concurrency, resume, policy,
        _call_options(task, template, system, max_tokens, temperature, options))
    work = plan.pending()
    total = len(plan.examples) * len(plan.routers)
    bar = _Bar(total, total - len(work)) if progress else None
    slots = asyncio.Semaphore(plan.concurrency)

    async def one(name: str, example: Example) -> None:
        async with slots:
            result = await plan.arun_one(name, example)
        plan.record(result)
        if bar is not None:
            bar.step()
        if on_result is not None:
            on_result(result)

    tasks = [asyncio.ensure_future(one(name, example)) for name, example in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task_ in tasks:
            task_.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return plan.report()
