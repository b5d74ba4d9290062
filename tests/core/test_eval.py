"""mmsdk.evaluate: providers scored on a labelled data set, resumable, with a report."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel

import mmsdk
from mmsdk._eval._report import ExampleResult, summarise
from mmsdk._eval._scoring import field_agreement, normalise_text, percentile
from mmsdk._requests import Request
from mmsdk.testing import TestProvider

NO_RETRY = mmsdk.Policy(retries=0, breaker_threshold=None)


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for index, (label, count) in enumerate(counts.items()):
        (root / label).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (16, 16), (40 * index, 10 * i, 200)).save(root / label / f"{i}.png")
    return root


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "pets", {"cat": 3, "dog": 3})


# -- data sets ---------------------------------------------------------------------------------
def test_folder_labels_are_subfolders_and_every_provider_sees_every_image(pets: Path) -> None:
    (pets / "cat" / "notes.txt").write_text("not an image")
    (pets / ".hidden").mkdir()
    with TestProvider("one") as one, TestProvider("two") as two:
        report = mmsdk.evaluate(pets, providers=["one:m", "two:m"])
    assert report.labels == ["cat", "dog"] and report.examples == 6
    for fake in (one, two):
        assert len(fake.calls) == 6
        assert all(call.labels == ["cat", "dog"] for call in fake.calls)
    assert [r.example for r in report.results[:6]] == [
        "cat/0.png", "cat/1.png", "cat/2.png", "dog/0.png", "dog/1.png", "dog/2.png"]


def test_classify_accuracy_is_top1_against_the_subfolder(pets: Path) -> None:
    images = sorted(pets.rglob("*.png"))
    with TestProvider("judge"):
        direct = [mmsdk.classify(str(p), ["cat", "dog"], provider="judge:m").top[0] for p in images]
        report = mmsdk.evaluate(pets, providers=["judge:m"])
    right = sum(top == p.parent.name for top, p in zip(direct, images, strict=True))
    row = report.providers["judge:m"]
    assert (row.correct, row.answered, row.failures) == (right, 6, 0)
    assert row.accuracy == right / 6
    assert [r.answer for r in report.results] == direct
    assert all(r.answered_by == "judge:m" for r in report.results)


def test_understand_exact_match_after_normalising(pets: Path) -> None:
    with TestProvider("says_cat", answer="  The CAT. ") as says_cat:
        report = mmsdk.evaluate(pets, providers=["says_cat:m"], task="understand",
                                prompt="Which animal? Answer 'the cat' or 'the dog'.",
                                labels=None)
    # the expected answer is the subfolder name: "cat" != "the cat"
    assert report.providers["says_cat:m"].correct == 0
    examples = [(str(p), "Which animal?", f"the {p.parent.name}") for p in sorted(pets.rglob("*.png"))]
    with TestProvider("says_cat", answer="  The CAT. ") as says_cat:
        report = mmsdk.evaluate(examples, providers=["says_cat:m"], task="understand")
    row = report.providers["says_cat:m"]
    assert (row.correct, row.accuracy, row.field_agreement) == (3, 0.5, None)
    assert says_cat.calls[0].prompt == "Which animal?"
    assert len(says_cat.calls[0].images) == 1


class Pet(BaseModel):
    animal: str
    legs: int


def test_understand_with_a_schema_scores_field_agreement() -> None:
    image = Image.new("RGB", (8, 8), "red")
    examples = [
        {"id": "a", "image": image, "prompt": "?", "answer": {"animal": "Cat ", "legs": 4}},
        {"id": "b", "image": image, "prompt": "?", "answer": Pet(animal="dog", legs=4)},
        {"id": "c", "image": image, "prompt": "?", "answer": {"animal": "bird", "legs": 2}},
    ]
    with TestProvider("vlm", answer='{"animal": "cat", "legs": 4}'):
        report = mmsdk.evaluate(examples, providers=["vlm:m"], task="understand", schema=Pet)
    row = report.providers["vlm:m"]
    assert [r.agreement for r in report.results] == [1.0, 0.5, 0.0]
    assert [r.correct for r in report.results] == [True, False, False]
    assert row.field_agreement == pytest.approx(0.5) and row.accuracy == pytest.approx(1 / 3)
    assert report.schema_name == "Pet" and "field agreement" in report.to_markdown()


def test_scoring_rules() -> None:
    assert normalise_text('  "The  Cat."\n') == "the cat"
    assert field_agreement(Pet(animal="cat", legs=4), Pet(animal="CAT", legs=4)) == 1.0
    assert field_agreement(None, Pet(animal="cat", legs=4)) == 0.0

    class Reading(BaseModel):
        value: float

    assert field_agreement(Reading(value=3.14159), Reading(value=3.14)) == 1.0
    assert field_agreement(Reading(value=3.16), Reading(value=3.14)) == 0.0

    class Owner(BaseModel):
        name: str
        pet: Pet

    # nested fields count one by one, as the cross-check names them ("pet.animal")
    assert field_agreement(Owner(name="Ann", pet=Pet(animal="dog", legs=4)),
                           Owner(name="ann", pet=Pet(animal="cat", legs=4))) == pytest.approx(2 / 3)


@pytest.mark.parametrize(("dataset", "message"), [
    ("missing", "does not exist"),
    ("empty", "holds no images"),
    ("one", "at least two labels"),
    ("file", "is not a folder"),
], ids=["missing", "empty", "one-label", "a-file"])
def test_bad_folders_are_typed_errors_before_any_call(tmp_path: Path, dataset: str,
                                                      message: str) -> None:
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    make_folder(tmp_path / "one", {"cat": 2})
    (tmp_path / "file").write_text("x")
    with TestProvider("fake") as fake, pytest.raises(mmsdk.InvalidInputError, match=message):
        mmsdk.evaluate(tmp_path / dataset, providers=["fake:m"])
    assert fake.calls == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dataset": 42}, "dataset must be a folder"),
    ({"dataset": []}, "no examples"),
    ({"dataset": [("a.png",)]}, "must be a tuple"),
    ({"dataset": [{"image": "a.png", "label": "cat", "colour": 1}]}, "unknown keys"),
    ({"dataset": [("a.png", 3)]}, "label must be a string"),
    ({"dataset": [("a.png", "cat"), ("a.png", "dog")]}, "same 'id'"),
    ({"labels": ["cat", "bird"]}, r"expected labels \['dog'\]"),
    ({"providers": []}, "non-empty list"),
    ({"providers": "fake:m"}, "non-empty list"),
    ({"providers": ["fake:m", "fake:m"]}, "listed twice"),
    ({"concurrency": 0}, "concurrency"),
    ({"task": "generate"}, "task must be"),
    ({"task": "understand"}, "needs prompt="),
    ({"task": "understand", "dataset": [("a.png", "?", Pet(animal="cat", legs=4))]}, "schema="),
    ({"task": "understand", "schema": Pet, "dataset": [("a.png", "?", {"animal": "cat"})]},
     "does not fit Pet"),
    ({"schema": Pet}, "applies to task='understand'"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_are_typed_errors(pets: Path, kwargs: dict, message: str) -> None:
    arguments = {"dataset": pets, "providers": ["fake:m"]} | kwargs
    dataset, providers = arguments.pop("dataset"), arguments.pop("providers")
    with TestProvider("fake") as fake, pytest.raises(mmsdk.InvalidInputError, match=message):
        mmsdk.evaluate(dataset, providers=providers, **arguments)
    assert fake.calls == []


def test_an_unknown_provider_fails_before_any_call(pets: Path) -> None:
    with TestProvider("fake") as fake, pytest.raises(mmsdk.UnknownProviderError):
        mmsdk.evaluate(pets, providers=["fake:m", "nosuchplugin:m"])
    assert fake.calls == []


# -- failures ----------------------------------------------------------------------------------
def test_failures_are_counted_per_provider_with_their_codes(pets: Path) -> None:
    (pets / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    busy = mmsdk.RateLimitError("busy", retry_after=0)
    with TestProvider("steady"), TestProvider("flaky", failures=[busy, busy]):
        report = mmsdk.evaluate(pets, providers=["steady:m", "flaky:m"], policy=NO_RETRY, concurrency=1)
    steady, flaky = report.providers["steady:m"], report.providers["flaky:m"]
    assert report.examples == 7
    assert (steady.failures, steady.answered) == (1, 6)
    assert [(e.example, e.code) for e in steady.errors] == [("dog/broken.png", "input_corrupt")]
    assert flaky.failures == 3
    assert sorted(e.code for e in flaky.errors) == ["input_corrupt", "rate_limited", "rate_limited"]
    table = report.to_markdown()
    assert "3 (rate_limited x2, input_corrupt x1)" in table
    assert "`flaky:m` on `cat/0.png` and 1 more: rate_limited: busy" in table
    assert "`steady:m` on `dog/broken.png`: input_corrupt: " in table


def test_the_report_arithmetic_on_injected_results() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(10, 0, -1)]   # 10..1, unsorted on purpose
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)

    def result(example: str, elapsed: float | None, cost: float | None, *,
               correct: bool = True, code: str | None = None) -> ExampleResult:
        return ExampleResult(provider="p", example=example, expected="cat", correct=correct,
                             elapsed=None if code else elapsed, cost_usd=cost, error_code=code,
                             error="boom" if code else None)

    results = [result(f"e{i}", elapsed=0.1 * i, cost=0.002) for i in range(1, 11)]
    results += [result("e11", 0, None, correct=False, code="timeout")]
    report = summarise("classify", [f"e{i}" for i in range(1, 12)], ["p"], results,
                       labels=["cat", "dog"])
    row = report.providers["p"]
    assert row.latency_p50 == pytest.approx(0.55) and row.latency_p95 == pytest.approx(0.955)
    assert row.cost_usd == pytest.approx(0.02) and row.cost_per_example_usd == pytest.approx(0.002)
    assert (row.correct, row.answered, row.failures) == (10, 10, 1)
    assert row.accuracy == pytest.approx(10 / 11)
    table = report.to_markdown()
    assert "| `p` | 90.9% (10/11) | 550.0 ms | 955.0 ms | $0.0200 | $0.0020 | 1 (timeout x1) |" in table

    results[3] = result("e4", 0.4, None)   # one answered call of unknown cost
    row = summarise("classify", [f"e{i}" for i in range(1, 12)], ["p"], results).providers["p"]
    assert row.cost_usd is None and row.cost_per_example_usd is None
    assert "n/a" in summarise("classify", ["e4"], ["p"], [results[3]]).to_markdown()


def test_cost_is_read_from_each_result(pets: Path) -> None:
    with TestProvider("cloud", local=False, answer="cat") as cloud, \
            TestProvider("unpriced", local=False, answer="cat"), TestProvider("onbox", answer="cat"):
        # $1 per input token, $2 per output token: "which animal" + "cat" costs $4 a call
        cloud.info = cloud.info.model_copy(
            update={"price": mmsdk.Price(input_per_mtok=1e6, output_per_mtok=2e6)})
        report = mmsdk.evaluate(pets, providers=["cloud:m", "unpriced:m", "onbox:m"],
                                task="understand", prompt="which animal")
    assert [r.cost_usd for r in report.results[:6]] == [pytest.approx(4.0)] * 6
    cloud_row = report.providers["cloud:m"]
    assert cloud_row.cost_usd == pytest.approx(24.0)
    assert cloud_row.cost_per_example_usd == pytest.approx(4.0)
    assert report.providers["unpriced:m"].cost_usd is None   # unknown price: no made-up number
    assert report.providers["onbox:m"].cost_usd == 0.0       # local models cost nothing


def test_latency_comes_from_each_result(pets: Path) -> None:
    with TestProvider("fake"):
        report = mmsdk.evaluate(pets, providers=["fake:m"])
    elapsed = [r.elapsed for r in report.results]
    assert all(isinstance(e, float) for e in elapsed)
    row = report.providers["fake:m"]
    assert row.latency_p50 == percentile(elapsed, 50)  # type: ignore[arg-type]
    assert row.latency_p95 == percentile(elapsed, 95)  # type: ignore[arg-type]


# -- concurrency -------------------------------------------------------------------------------
class Gate(TestProvider):
    """Holds each call until *width* calls are in flight; records the most seen at once."""

    def __init__(self, name: str, width: int) -> None:
        super().__init__(name)
        self.width, self.in_flight, self.most = width, 0, 0
        self.full = threading.Event()
        self.lock = threading.Lock()

    def _begin(self, request: Request) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            if self.in_flight >= self.width:
                self.full.set()
        self.full.wait(10)
        super()._begin(request)
        with self.lock:
            self.in_flight -= 1


@pytest.mark.parametrize("width", [1, 3], ids=["one", "three"])
def test_concurrency_bounds_the_calls_in_flight(pets: Path, width: int) -> None:
    with Gate("gate", width) as gate:
        report = mmsdk.evaluate(pets, providers=["gate:m"], concurrency=width)
    assert gate.full.is_set() and gate.most == width
    assert report.providers["gate:m"].answered == 6


async def test_async_twin_bounds_concurrency_and_scores_the_same(pets: Path) -> None:
    # two models: the async twins run each local model on its own thread, one call at a time
    with Gate("gate", 2) as gate:
        report = await mmsdk.aevaluate(pets, providers=["gate:a", "gate:b"], concurrency=2)
        again = mmsdk.evaluate(pets, providers=["gate:a", "gate:b"])
    assert gate.most == 2 and len(gate.calls) == 24
    assert report.providers["gate:a"].correct == again.providers["gate:a"].correct
    assert [r.answer for r in report.results] == [r.answer for r in again.results]


# -- resuming ----------------------------------------------------------------------------------
def test_an_interrupted_run_resumes_where_it_stopped(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    with TestProvider("slow", failures=[None, None, None, KeyboardInterrupt]) as slow:
        with pytest.raises(KeyboardInterrupt):
            mmsdk.evaluate(pets, providers=["slow:m"], resume=out, concurrency=1)
        assert len(slow.calls) == 4
        assert len(out.read_text().splitlines()) == 1 + 3   # header + three answers
        report = mmsdk.evaluate(pets, providers=["slow:m"], resume=out, concurrency=1)
        assert len(slow.calls) == 4 + 3          # only the three unanswered images
        assert report.providers["slow:m"].answered == 6
        mmsdk.evaluate(pets, providers=["slow:m"], resume=out)
        assert len(slow.calls) == 7              # everything done: no call at all
    without = TestProvider("slow").register()
    try:
        fresh = mmsdk.evaluate(pets, providers=["slow:m"])
    finally:
        without.unregister()
    assert [r.answer for r in report.results] == [r.answer for r in fresh.results]


async def test_a_cancelled_async_run_resumes(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    with TestProvider("fake") as fake:
        seen: list[ExampleResult] = []

        def stop_after_two(result: ExampleResult) -> None:
            seen.append(result)
            if len(seen) == 2:
                task.cancel()

        task = asyncio.ensure_future(mmsdk.aevaluate(pets, providers=["fake:m"], resume=out, concurrency=1,
                                                     on_result=stop_after_two))
        with pytest.raises(asyncio.CancelledError):
            await task
        first = len(fake.calls)
        assert first >= 2
        await mmsdk.aevaluate(pets, providers=["fake:m"], resume=out, concurrency=1)
        assert len(fake.calls) == 6 + first - 2  # only the finished two were skipped


def test_resume_retries_transient_failures_and_keeps_final_ones(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    (pets / "dog" / "broken.png").write_bytes(b"garbage")
    with TestProvider("flaky", failures=[mmsdk.RateLimitError("busy", retry_after=0)]) as flaky:
        first = mmsdk.evaluate(pets, providers=["flaky:m"], resume=out, concurrency=1, policy=NO_RETRY)
        assert first.providers["flaky:m"].failures == 2
        calls = len(flaky.calls)
        second = mmsdk.evaluate(pets, providers=["flaky:m"], resume=out, concurrency=1, policy=NO_RETRY)
    assert len(flaky.calls) == calls + 1       # the rate-limited one again, not the broken image
    assert [(e.example, e.code) for e in second.providers["flaky:m"].errors] == [
        ("dog/broken.png", "input_corrupt")]


def test_a_new_provider_or_example_joins_a_resumed_run(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    with TestProvider("a") as a, TestProvider("b") as b:
        mmsdk.evaluate(pets, providers=["a:m"], resume=out)
        Image.new("RGB", (9, 9), "white").save(pets / "cat" / "new.png")
        report = mmsdk.evaluate(pets, providers=["a:m", "b:m"], resume=out)
    assert (len(a.calls), len(b.calls)) == (7, 7)
    assert report.examples == 7


def test_resume_refuses_another_evaluations_file(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    with TestProvider("fake") as fake:
        mmsdk.evaluate(pets, providers=["fake:m"], resume=out)
        with pytest.raises(mmsdk.InvalidInputError, match=r"different evaluation.*labels"):
            mmsdk.evaluate(pets, providers=["fake:m"], resume=out, labels=["cat", "dog", "bird"])
        other = tmp_path / "notes.txt"
        other.write_text("my notes\n")
        with pytest.raises(mmsdk.InvalidInputError, match="not an mmsdk eval results file"):
            mmsdk.evaluate(pets, providers=["fake:m"], resume=other)
        with pytest.raises(mmsdk.InvalidInputError, match="is a folder"):
            mmsdk.evaluate(pets, providers=["fake:m"], resume=tmp_path)
        assert other.read_text() == "my notes\n"
        assert len(fake.calls) == 6


def test_a_line_cut_short_is_ignored(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    with TestProvider("fake") as fake:
        mmsdk.evaluate(pets, providers=["fake:m"], resume=out)
        lines = out.read_text().splitlines()
        out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # killed mid-write
        mmsdk.evaluate(pets, providers=["fake:m"], resume=out)
        assert len(fake.calls) == 7
        mmsdk.evaluate(pets, providers=["fake:m"], resume=out)
        assert len(fake.calls) == 7
    records = [json.loads(line) for line in out.read_text().splitlines()[1:] if line[-1] == "}"]
    assert len(records) == 6 and {r["example"] for r in records} == {
        f"{label}/{i}.png" for label in ("cat", "dog") for i in range(3)}


# -- report outputs ----------------------------------------------------------------------------
def test_markdown_and_plot(pets: Path, tmp_path: Path) -> None:
    with TestProvider("a"), TestProvider("b"):
        report = mmsdk.evaluate(pets, providers=["a:m", "b:m"])
    table = report.to_markdown()
    assert table.splitlines()[0] == ("| provider | accuracy | latency p50 | latency p95 | "
                                     "cost (USD) | cost / example | failures |")
    assert "`a:m`" in table and "`b:m`" in table and "6 examples, task classify" in table
    path = report.plot(tmp_path / "eval.png")
    with Image.open(path) as drawn:
        assert drawn.format == "PNG" and drawn.width > 300
    with pytest.raises(mmsdk.InvalidInputError, match="does not exist"):
        report.plot(tmp_path / "nowhere" / "eval.png")
    assert mmsdk.EvalReport.model_validate_json(report.model_dump_json()) == report


def test_plot_without_matplotlib_says_what_to_install(pets: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with TestProvider("a"):
        report = mmsdk.evaluate(pets, providers=["a:m"])
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(mmsdk.ProviderUnavailableError, match=r"pip install 'mmsdk\[plot\]'"):
        report.plot(tmp_path / "eval.png")
    assert not (tmp_path / "eval.png").exists()
