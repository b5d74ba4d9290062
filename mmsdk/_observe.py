"""Make every attempt visible: log lines, ``on_attempt`` callbacks, OpenTelemetry spans.

Logging goes to the ``mmsdk.routing`` logger: each attempt at DEBUG, each retry
and fallback at INFO (breakers opening are logged by :mod:`mmsdk._health` at
WARNING). Messages name providers and error types, never keys or image bytes.

Callbacks (``mmsdk.configure(on_attempt=fn)``, ``Router(..., on_attempt=fn)``)
get each :class:`~mmsdk.Attempt` once it is recorded; an exception in one is
logged and never reaches the call.

Spans: once the app has configured an OpenTelemetry tracer provider (the
``mmsdk[otel]`` extra brings the API) each call is a span ``mmsdk.<capability>``
with one child span per attempt named ``"{operation} {model}"``, carrying the
GenAI semantic-convention attributes. Without one, mmsdk imports nothing of
OpenTelemetry and makes no spans.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._types import Attempt, Capability

__all__ = ["CallObserver"]

logger = logging.getLogger("mmsdk.routing")

_OPERATION = {Capability.UNDERSTAND: "chat", Capability.CLASSIFY: "chat",
              Capability.EMBED: "embeddings", Capability.GENERATE: "generate_content"}
_tracer: Any = None  # set once an app has configured a tracer provider (tests may set it)


def _get_tracer() -> Any:
    """The mmsdk tracer, or ``None`` while no OpenTelemetry tracer provider is configured.

    Nothing is imported here: an app that traces has imported and configured
    ``opentelemetry.trace`` itself, so an app that does not trace pays nothing.
    """
    global _tracer
    if _tracer is None:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return None
        provider = trace.get_tracer_provider()
        if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return None  # nothing configured yet: spans would record nothing
        _tracer = provider.get_tracer("mmsdk")
    return _tracer


class CallObserver:
    """Reports the attempts of one call to the log, the callbacks and a trace."""

    __slots__ = ("_call_span", "_capability", "_hooks", "_started", "_started_ns", "_tracer")

    def __init__(self, capability: Capability, hooks: Sequence[Callable[[Attempt], Any]],
                 started: float) -> None:
        """*started*: the call's ``time.monotonic()`` start, which attempts count from."""
        self._capability = capability
        self._hooks = hooks
        self._tracer = _get_tracer()
        self._started = started
        self._started_ns = time.time_ns() - int((time.monotonic() - started) * 1e9)
        self._call_span: Any = None
        if self._tracer is not None:
            self._call_span = self._tracer.start_span(f"mmsdk.{capability.value}",
                                                      start_time=self._started_ns)

    def attempt(self, attempt: Attempt, usage: Any = None) -> None:
        """One attempt was recorded: log it, hand it to the callbacks, trace it."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("mmsdk: %s attempt on %s (%.3fs)%s", attempt.outcome, attempt.provider,
                         attempt.seconds, f": {attempt.error_type}" if attempt.error_type else "")
        for hook in self._hooks:
            try:
                hook(attempt)
            except Exception:  # a broken callback must never break the call
                logger.exception("mmsdk: on_attempt callback %r raised", hook)
        if self._tracer is not None and attempt.outcome != "skipped":
            self._span(attempt, usage)

    def _span(self, attempt: Attempt, usage: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        plugin, _, model = attempt.provider.partition(":")
        operation = _OPERATION[self._capability]
        start = self._started_ns + int(attempt.started * 1e9)
        attributes: dict[str, Any] = {"gen_ai.operation.name": operation,
                                      "gen_ai.provider.name": plugin,
                                      "gen_ai.request.model": model}
        if usage is not None:
            if usage.input_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            if usage.output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if attempt.outcome != "ok":
            attributes["error.type"] = attempt.error_type or attempt.outcome
        if attempt.endpoint:
            attributes["server.address"] = attempt.endpoint
        context = trace.set_span_in_context(self._call_span)
        span = self._tracer.start_span(f"{operation} {model}", context=context,
                                       start_time=start, attributes=attributes,
                                       kind=trace.SpanKind.CLIENT)
        if attempt.outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, attempt.error_type or attempt.outcome))
        span.end(end_time=start + int(attempt.seconds * 1e9))

    def retry(self, provider: str, error_type: str, delay: float) -> None:
        logger.info("mmsdk: retrying %s in %.2fs after %s", provider, delay, error_type)

    def fallback(self, provider: str, error_type: str) -> None:
        logger.info("mmsdk: falling back from %s after %s", provider, error_type)

    def end(self, error: BaseException | None = None) -> None:
        """The call finished (or failed with *error*): close its span."""
        if self._call_span is None:
            return
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            self._call_span.set_attribute("error.type", type(error).__name__)
            self._call_span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        self._call_span.end(end_time=self._started_ns
                            + int((time.monotonic() - self._started) * 1e9))
