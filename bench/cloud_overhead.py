"""What mmsdk adds on top of the raw openai SDK, measured against a loopback server.

The same chat call is made through ``mmsdk`` (``provider="openai:MODEL"``, MODEL being the
openai plugin's current default understand model, which the server echoes) and
through ``openai.OpenAI`` / ``AsyncOpenAI`` directly, interleaved call by call
(the order alternates, so drift hits both alike), against a minimal
OpenAI-shaped HTTP server running in a child process (its own interpreter, so
it does not compete for this process's GIL). Printed: median latency of each
path and the median ratio for sync calls, async calls and streamed
time-to-first-chunk; then where the extra time goes: the plugin called
directly vs through mmsdk (real timings, rotated), and a cProfile of the mmsdk
core on an in-process provider (no I/O), per core function.

Run: ``.venv/bin/python bench/cloud_overhead.py [--calls 300]``. Goal: ratios <= 1.05.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import multiprocessing
import os
import pstats
import re
import statistics
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT = "Describe the chart in one sentence."
ANSWER = "Sales rise steadily from January to June."


def default_model() -> str:
    """The openai plugin's current default understand model (sent explicitly, echoed back)."""
    from mmsdk_openai._config import DEFAULT_MODELS

    from mmsdk import Capability

    return DEFAULT_MODELS[Capability.UNDERSTAND]


# -- the server (child process) ----------------------------------------------------
@functools.lru_cache(maxsize=16)
def _payloads(model: str) -> tuple[bytes, bytes]:
    usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    whole = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
             "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                          "message": {"role": "assistant", "content": ANSWER,
                                      "refusal": None}}], "usage": usage}
    chunks = [{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
               "model": model, "choices": [{"index": 0, "finish_reason": None,
                                            "delta": {"content": word + " "}}]}
              for word in ANSWER.split()]
    chunks.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                   "model": model, "choices": [], "usage": usage})
    sse = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return json.dumps(whole).encode(), sse.encode()


_MODEL_VALUE = re.compile(rb'\s*:\s*"([^"]{1,200})"')
_TRUE_VALUE = re.compile(rb"\s*:\s*true")


def _field(body: bytes, key: bytes, value: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """*key*'s value in a JSON body, looked up in its first and last 4 KiB only.

    The settings (model, stream) sit before or after the messages, never inside a
    2 MB base64 image: scanning all of it would cost ~0.5 ms per request.
    """
    for start in (max(0, len(body) - 4096), 0):
        at = body.find(key, start, start + 4096 if start == 0 else len(body))
        if at >= 0:
            return value.match(body, at + len(key))
    return None


class _Handler(BaseHTTPRequestHandler):
    """Answers any POST as a chat completion (SSE when asked to stream), echoing the model.

    Cheap on large bodies (a 2 MB image body is only scanned, never parsed), so the
    server's own time stays small next to either client's.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive replies wait ~40 ms for delayed ACKs
    received: Any = None  # shared counter: size of the last request body

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.received is not None:
            self.received.value = len(body)
        found = _field(body, b'"model"', _MODEL_VALUE)
        whole, sse = _payloads(found.group(1).decode() if found else "unknown")
        streaming = _field(body, b'"stream"', _TRUE_VALUE) is not None
        payload = sse if streaming else whole
        self.send_response(200)
        self.send_header("content-type", "text/event-stream" if streaming
                         else "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 32-way bursts must not overflow the listen backlog


def _serve(port: Any, received: Any) -> None:
    _Handler.received = received
    server = _Server(("127.0.0.1", 0), _Handler)
    port.value = server.server_address[1]
    server.serve_forever()


def start_server() -> tuple[multiprocessing.Process, str, Any]:
    """Start the loopback server in a child process (its own interpreter and GIL).

    Returns the process, its ``/v1`` base URL, and a shared integer holding the
    size in bytes of the last request body it received.
    """
    port = multiprocessing.Value("i", 0)
    received = multiprocessing.RawValue("q", 0)
    server = multiprocessing.Process(target=_serve, args=(port, received), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port.value}/v1", received


# -- measuring -------------------------------------------------------------------------
def _interleave(a: Callable[[], float], b: Callable[[], float], calls: int,
                warmup: int) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        a(), b()
    first, second = [], []
    for index in range(calls):
        if index % 2:
            first.append(a())
            second.append(b())
        else:
            second.append(b())
            first.append(a())
    return first, second


async def _ainterleave(a: Callable[[], Any], b: Callable[[], Any], calls: int,
                       warmup: int) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        await a()
        await b()
    first, second = [], []
    for index in range(calls):
        for fn, out in ((a, first), (b, second)) if index % 2 else ((b, second), (a, first)):
            out.append(await fn())
    return first, second


def _timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    calls, warmup = args.calls, 30

    server, base_url, _ = start_server()
    os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
    os.environ["OPENAI_BASE_URL"] = base_url

    import openai

    import mmsdk

    model_name = default_model()
    raw = openai.OpenAI(max_retries=0)
    araw = openai.AsyncOpenAI(max_retries=0)
    provider = f"openai:{model_name}"
    messages = [{"role": "user", "content": PROMPT}]
    rows: list[tuple[str, list[float], list[float]]] = []

    # sync
    def raw_sync() -> str:
        return raw.chat.completions.create(model=model_name, messages=messages).choices[0]\
            .message.content or ""

    def mm_sync() -> str:
        return str(mmsdk.understand(PROMPT, provider=provider).text)

    assert raw_sync() == mm_sync() == ANSWER
    mm, rw = _interleave(_timed(mm_sync), _timed(raw_sync), calls, warmup)
    rows.append(("sync call", mm, rw))

    # streamed: time to first chunk (the rest is drained, untimed)
    def raw_first() -> float:
        started = time.perf_counter()
        stream = raw.chat.completions.create(model=model_name, messages=messages, stream=True,
                                             stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        elapsed = time.perf_counter() - started
        for _ in stream:
            pass
        return elapsed

    def mm_first() -> float:
        started = time.perf_counter()
        stream = mmsdk.understand(PROMPT, provider=provider, stream=True)
        next(stream)
        elapsed = time.perf_counter() - started
        for _ in stream:
            pass
        return elapsed

    mm, rw = _interleave(mm_first, raw_first, calls, warmup)
    rows.append(("stream, first chunk", mm, rw))

    # async
    async def async_rows() -> None:
        async def raw_async() -> float:
            started = time.perf_counter()
            await araw.chat.completions.create(model=model_name, messages=messages)
            return time.perf_counter() - started

        async def mm_async() -> float:
            started = time.perf_counter()
            await mmsdk.aunderstand(PROMPT, provider=provider)
            return time.perf_counter() - started

        mm, rw = await _ainterleave(mm_async, raw_async, calls, warmup)
        rows.append(("async call", mm, rw))
        await araw.close()

    asyncio.run(async_rows())

    print(f"\nmmsdk vs raw openai SDK, loopback server, {calls} interleaved calls each "
          "(medians)\n")
    print(f"{'path':<22}{'mmsdk ms':>10}{'raw ms':>10}{'ratio':>8}{'paired':>8}{'extra us':>10}")
    for name, mine, theirs in rows:
        a, b = statistics.median(mine), statistics.median(theirs)
        paired = statistics.median(x / y for x, y in zip(mine, theirs, strict=True))
        print(f"{name:<22}{a * 1e3:>10.3f}{b * 1e3:>10.3f}{a / b:>8.3f}{paired:>8.3f}"
              f"{(a - b) * 1e6:>10.0f}")
    print("\nratio: median(mmsdk) / median(raw); paired: median of per-pair ratios "
          "(each pair ran back to back)")
    _layers(mm_sync, raw_sync, raw, provider, calls)
    _profile(calls)
    raw.close()
    mmsdk.unload()
    server.terminate()


def _layers(mm_sync: Callable[[], Any], raw_sync: Callable[[], Any], raw: Any, provider: str,
            calls: int) -> None:
    """Real (unprofiled) cost of each layer, from three paths timed in rotation.

    ``plugin`` calls the plugin's model object directly (no routing), so
    ``plugin - raw create`` is the plugin's own cost and ``mmsdk - plugin`` the core's.
    """
    from mmsdk._registry import get_registry  # the bench may peek inside; plugins may not
    from mmsdk.plugin import UnderstandRequest

    registry = get_registry()
    model: Any = registry.model(registry.resolve(provider))
    request = UnderstandRequest(prompt=PROMPT)
    paths = {
        "raw create": _timed(raw_sync),
        "plugin": _timed(lambda: model.understand(request)),
        "mmsdk": _timed(mm_sync),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    order = list(paths)
    for index in range(calls + 30):
        order = order[1:] + order[:1]  # rotate, so no path always runs first
        for name in order:
            elapsed = paths[name]()
            if index >= 30:
                times[name].append(elapsed)
    med = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    print(f"\nwhere the time goes (sync, {calls} rotated calls, medians, us per call)\n")
    for label, value in (
            ("raw chat.completions.create + HTTP + server", med["raw create"]),
            ("mmsdk_openai plugin (vs raw create)", med["plugin"] - med["raw create"]),
            ("mmsdk core (vs plugin called directly)", med["mmsdk"] - med["plugin"])):
        print(f"  {label:<46}{value:>8.0f}")


def _profile(calls: int) -> None:
    """What the core costs on its own: mmsdk.understand on an in-process provider, no I/O.

    cProfile inflates Python calls, so each function's profiled time is scaled
    by (real time per call / profiled time per call) to estimate real microseconds.
    """
    import mmsdk
    from mmsdk.testing import TestProvider

    def call() -> Any:
        return mmsdk.understand(PROMPT, provider="benchnoop:x")

    with TestProvider("benchnoop", answer=ANSWER):
        for _ in range(200):
            call()
        real = statistics.median(_timed(call)() for _ in range(calls * 3))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call()
        profiler.disable()
    stats: Any = pstats.Stats(profiler)
    rows = stats.stats
    top = next(v for k, v in rows.items() if k[0].endswith("_api.py") and k[2] == "understand"
               and v[1] == calls)
    scale = real / (top[3] / calls)
    print(f"\nmmsdk core alone (in-process provider, no I/O): {real * 1e6:.0f} us per call. "
          "Estimated real us per call by function (cumulative, includes callees):\n")
    core = []
    for (filename, _, name), (_, ncalls, own, cumulative, _) in rows.items():
        path = filename.replace(os.sep, "/")
        if "/mmsdk/" in path and "testing.py" not in path:
            core.append((cumulative / calls * scale * 1e6, own / calls * scale * 1e6, ncalls / calls,
                         f"{path.rsplit('/', 1)[-1]}:{name}"))
    print(f"  {'function':<40}{'cum us':>8}{'own us':>8}{'calls':>7}")
    for cumulative, own, per_call, key in sorted(core, reverse=True)[:16]:
        print(f"  {key:<40}{cumulative:>8.1f}{own:>8.1f}{per_call:>7.0f}")
    pydantic = sum(v[2] for k, v in rows.items() if "/pydantic" in k[0]) / calls * scale * 1e6
    print(f"  {'(pydantic, all callers)':<40}{pydantic:>8.1f}")


if __name__ == "__main__":
    main()
