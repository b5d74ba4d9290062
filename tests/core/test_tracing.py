"""OpenTelemetry: one span per call, one child per attempt, GenAI semantic-convention attributes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mmsdk
from mmsdk import _observe
from mmsdk.testing import TestProvider


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The global provider can be set once per process: hand mmsdk a tracer from ours.
    monkeypatch.setattr(_observe, "_tracer", provider.get_tracer("mmsdk"))
    yield exporter
    provider.shutdown()


def test_a_call_is_a_span_with_a_child_per_attempt(spans: InMemorySpanExporter) -> None:
    with TestProvider("primary", local=False) as primary, TestProvider("backup"):
        primary.failures = [mmsdk.ProviderServerError("down", status=503)]
        result = mmsdk.Router(["primary:m1", "backup:m2"],
                              mmsdk.Policy(retries=0)).understand("two words")
    assert result.provider == "backup:m2"
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"mmsdk.understand", "chat m1", "chat m2"}
    call = finished["mmsdk.understand"]
    failed, ok = finished["chat m1"], finished["chat m2"]
    for child in (failed, ok):
        assert child.parent is not None and child.parent.span_id == call.context.span_id
        assert child.kind == trace.SpanKind.CLIENT
        assert child.start_time >= call.start_time and child.end_time <= call.end_time
    assert failed.attributes["gen_ai.operation.name"] == "chat"
    assert failed.attributes["gen_ai.provider.name"] == "primary"
    assert failed.attributes["gen_ai.request.model"] == "m1"
    assert failed.attributes["error.type"] == "ProviderServerError"
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert ok.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens == 2
    assert ok.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    assert "error.type" not in ok.attributes
    assert call.status.status_code != trace.StatusCode.ERROR


@pytest.mark.parametrize(("capability", "operation"),
                         [("generate", "generate_content"), ("embed", "embeddings"),
                          ("classify", "chat")])
def test_operation_names_follow_the_capability(spans: InMemorySpanExporter, png_bytes: bytes,
                                               capability: str, operation: str) -> None:
    with TestProvider("t"):
        if capability == "generate":
            mmsdk.generate("x", provider="t:m")
        elif capability == "embed":
            mmsdk.embed(texts=["x"], provider="t:m")
        else:
            mmsdk.classify(png_bytes, ["a", "b"], provider="t:m")
    names = sorted(span.name for span in spans.get_finished_spans())
    assert names == sorted([f"mmsdk.{capability}", f"{operation} m"])


def test_a_failed_call_marks_its_span(spans: InMemorySpanExporter) -> None:
    with TestProvider("t", failures=[mmsdk.AuthenticationError]), \
            pytest.raises(mmsdk.AuthenticationError):
        mmsdk.understand("x", provider="t:m")
    call = next(s for s in spans.get_finished_spans() if s.name == "mmsdk.understand")
    assert call.status.status_code == trace.StatusCode.ERROR
    assert call.attributes["error.type"] == "AuthenticationError"


def test_a_configured_global_tracer_provider_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_observe, "_tracer", None)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    assert _observe._get_tracer() is None  # nothing configured: no spans, no cost
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert _observe._get_tracer() is not None
