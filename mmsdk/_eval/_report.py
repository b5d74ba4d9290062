"""What an evaluation returns: one :class:`ProviderEval` per provider, the
per-example results, a markdown table and a plot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .._errors import InvalidInputError, ProviderUnavailableError
from ._scoring import percentile

__all__ = ["EvalFailure", "EvalReport", "ExampleResult", "ProviderEval", "summarise"]


class ExampleResult(BaseModel):
    """One provider's answer to one example.

    Attributes:
        provider: the provider as evaluated (the string given to ``evaluate``).
        example: the example's id (its path inside the folder for an ImageFolder).
        expected: the expected label or answer, as text.
        answer: the top label or the answer text; ``None`` when the call failed.
        correct: top-1 right (classify); exact match after normalising, or
            every schema field agreeing (understand).
        agreement: with a schema, the fraction of fields that agree.
        elapsed: the call's ``result.elapsed`` in seconds.
        cost_usd: the call's ``result.usage.cost_usd`` (``None`` where unknown).
        answered_by: ``result.provider``, the provider string that answered.
        error_code: the mmsdk error ``code`` when the call failed.
        error: the error's first line.
    """

    provider: str
    example: str
    expected: str
    answer: str | None = None
    correct: bool = False
    agreement: float | None = None
    elapsed: float | None = None
    cost_usd: float | None = None
    answered_by: str | None = None
    error_code: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_code is not None


class EvalFailure(BaseModel):
    """A failed call: the example, the error code and the error's first line."""

    example: str
    code: str
    message: str


class ProviderEval(BaseModel):
    """One provider's scores over the data set.

    Attributes:
        provider: the provider as evaluated.
        examples: examples in the data set.
        answered: calls that returned a result.
        correct: right answers (a failed call counts as wrong).
        accuracy: ``correct / examples``.
        field_agreement: with a schema, the mean fraction of fields agreeing
            (a failed call counts as 0); else ``None``.
        latency_p50 / latency_p95: percentiles of ``result.elapsed`` over the
            answered calls, in seconds (``None`` when none answered).
        cost_usd: the total ``usage.cost_usd`` of the answered calls;
            ``None`` when any of them has no known cost.
        cost_per_example_usd: ``cost_usd / answered``.
        failures: calls that raised.
        errors: each failed call, in data-set order.
    """

    provider: str
    examples: int
    answered: int
    correct: int
    accuracy: float | None
    field_agreement: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    cost_usd: float | None = None
    cost_per_example_usd: float | None = None
    failures: int = 0
    errors: list[EvalFailure] = Field(default_factory=list)


class EvalReport(BaseModel):
    """What :func:`mmsdk.evaluate` returns.

    Attributes:
        task: ``"classify"`` or ``"understand"``.
        examples: examples in the data set.
        labels: the labels offered (classify).
        schema_name: the schema answers were compared with (understand).
        providers: one :class:`ProviderEval` per provider, in the order given.
        results: every (provider, example) result, provider by provider in
            data-set order.

    Example:
        >>> report = mmsdk.evaluate("pets/", providers=["local:clip", "openai"])
        >>> report.providers["local:clip"].accuracy
        0.92
        >>> print(report.to_markdown())
    """

    task: Literal["classify", "understand"]
    examples: int
    labels: list[str] | None = None
    schema_name: str | None = None
    providers: dict[str, ProviderEval]
    results: list[ExampleResult] = Field(default_factory=list)

    def to_markdown(self) -> str:
        """A markdown table, one row per provider, then what failed and why."""
        with_fields = self.schema_name is not None
        head = ["provider", "accuracy", *(["field agreement"] if with_fields else []),
                "latency p50", "latency p95", "cost (USD)", "cost / example", "failures"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.providers.values():
            cells = [f"`{row.provider}`", _accuracy(row),
                     *([_share(row.field_agreement)] if with_fields else []),
                     _seconds(row.latency_p50), _seconds(row.latency_p95),
                     _usd(row.cost_usd), _usd(row.cost_per_example_usd), _failures(row)]
            lines.append("| " + " | ".join(cells) + " |")
        about = f"{self.examples} examples, task {self.task}"
        if self.labels:
            about += f", labels: {', '.join(self.labels)}"
        if self.schema_name:
            about += f", schema {self.schema_name}"
        lines += ["", about + "."]
        for row in self.providers.values():
            groups: dict[tuple[str, str], list[str]] = {}
            for failure in row.errors:
                groups.setdefault((failure.code, failure.message), []).append(failure.example)
            for (code, message), examples in list(groups.items())[:5]:
                where = f"`{examples[0]}`" + (f" and {len(examples) - 1} more"
                                              if len(examples) > 1 else "")
                lines.append(f"- `{row.provider}` on {where}: {code}: {message}")
            if len(groups) > 5:
                lines.append(f"- `{row.provider}`: {len(groups) - 5} more kinds of failure")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Draw accuracy, latency (p50 bars, p95 marks) and cost per example per
        provider into an image file (``.png``, ``.svg``, ``.pdf``, ...); return its path.

        Needs matplotlib: ``pip install 'mmsdk[plot]'``.

        Raises:
            ProviderUnavailableError: matplotlib is not installed.
            InvalidInputError: the file cannot be written there.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ProviderUnavailableError(
                "report.plot() draws with matplotlib, which is not installed.",
                fix="pip install 'mmsdk[plot]'") from None
        target = Path(path)
        if not target.parent.is_dir():
            raise InvalidInputError(f"cannot write the plot to {target}: folder {target.parent} "
                                    "does not exist; create it or choose another path.")
        rows = list(self.providers.values())
        names = [row.provider for row in rows]
        costs = [row.cost_per_example_usd for row in rows]
        panels = 3 if any(c for c in costs) else 2  # no cost panel when every cost is 0 or unknown
        figure = Figure(figsize=(4.2 * panels, 0.6 * len(rows) + 1.6), layout="constrained")
        axes = figure.subplots(1, panels, sharey=True)
        positions = list(range(len(rows)))
        bars = axes[0].barh(positions, [100 * (row.accuracy or 0.0) for row in rows],
                            color="tab:green")
        axes[0].bar_label(bars, labels=[_accuracy(row).split(" ")[0] for row in rows], padding=2)
        axes[0].set_xlim(0, 110)
        axes[0].set_xlabel("accuracy (%)")
        axes[0].set_yticks(positions, names)
        axes[0].invert_yaxis()
        timed = [(i, row) for i, row in enumerate(rows) if row.latency_p50 is not None]
        axes[1].barh([i for i, _ in timed], [1000 * (row.latency_p50 or 0.0) for _, row in timed],
                     color="tab:blue", label="p50")
        axes[1].scatter([1000 * (row.latency_p95 or 0.0) for _, row in timed], [i for i, _ in timed],
                        color="black", marker="|", s=200, label="p95", zorder=3)
        axes[1].set_xlabel("latency (ms)")
        axes[1].legend(loc="lower right", fontsize="small")
        if panels == 3:
            axes[2].barh(positions, [c or 0.0 for c in costs], color="tab:orange")
            axes[2].set_xlabel("cost per example (USD)")
        figure.suptitle(f"mmsdk eval: {self.task}, {self.examples} examples")
        try:
            figure.savefig(target)
        except ValueError as exc:  # an extension matplotlib cannot write
            raise InvalidInputError(f"cannot write the plot to {target}: {exc}; use .png, "
                                    ".svg or .pdf.") from None
        return target


def summarise(task: Literal["classify", "understand"], examples: Sequence[str],
              providers: Sequence[str], results: Sequence[ExampleResult],
              labels: list[str] | None = None, schema_name: str | None = None) -> EvalReport:
    """The report for *results* (one per provider and example id)."""
    order = {example: index for index, example in enumerate(examples)}
    by_provider: dict[str, list[ExampleResult]] = {name: [] for name in providers}
    for result in results:
        if result.provider in by_provider and result.example in order:
            by_provider[result.provider].append(result)
    rows: dict[str, ProviderEval] = {}
    ordered: list[ExampleResult] = []
    for name, found in by_provider.items():
        found.sort(key=lambda r: order[r.example])
        ordered += found
        rows[name] = _row(name, len(examples), found, schema_name is not None)
    return EvalReport(task=task, examples=len(examples), labels=labels, schema_name=schema_name,
                      providers=rows, results=ordered)


def _row(name: str, total: int, results: list[ExampleResult], with_fields: bool) -> ProviderEval:
    answered = [r for r in results if not r.failed]
    latencies = [r.elapsed for r in answered if r.elapsed is not None]
    costs = [r.cost_usd for r in answered]
    cost = sum(c for c in costs if c is not None) if answered and None not in costs else None
    correct = sum(1 for r in results if r.correct)
    agreement = None
    if with_fields and total:
        agreement = sum(r.agreement or 0.0 for r in results) / total
    return ProviderEval(
        provider=name, examples=total, answered=len(answered), correct=correct,
        accuracy=correct / total if total else None, field_agreement=agreement,
        latency_p50=percentile(latencies, 50), latency_p95=percentile(latencies, 95),
        cost_usd=cost, cost_per_example_usd=cost / len(answered) if cost is not None else None,
        failures=len(results) - len(answered),
        errors=[EvalFailure(example=r.example, code=r.error_code or "error", message=r.error or "")
                for r in results if r.failed])


def _accuracy(row: ProviderEval) -> str:
    return "n/a" if row.accuracy is None else f"{100 * row.accuracy:.1f}% ({row.correct}/{row.examples})"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{1000 * value:.1f} ms" if value < 1 else f"{value:.2f} s"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}" if value >= 0.0001 or value == 0 else f"${value:.2e}"


def _failures(row: ProviderEval) -> str:
    if not row.failures:
        return "0"
    codes = Counter(error.code for error in row.errors)
    return f"{row.failures} (" + ", ".join(f"{code} x{count}" for code, count in codes.most_common()) + ")"
