"""What routing costs and saves when a provider fails: fallback, hedging, breaker, budget, memory.

Two loopback OpenAI-shaped servers (the one of ``bench/cloud_overhead.py``, each in
its own child process, with scriptable faults) stand in for a primary and a
fallback: the route is ``["openai:MODEL", "backup:MODEL"]``, where ``openai`` is
pointed at server A (``OPENAI_BASE_URL``) and ``backup`` is an OpenAI-compatible
endpoint on server B (``mmsdk_openai.add_endpoint``); MODEL is the openai
plugin's default understand model. Each server counts the requests it receives.

Printed:

1. fallback: a primary that answers 429 (with and without ``Retry-After: 1``),
   500, or hangs (``Policy(timeout=0.2)``), vs the healthy fallback alone: call
   latency p50/p99, when the fallback was started, requests per call at each
   server; once with the breaker and the retry budget off (every call goes the
   whole retry-then-fallback way) and once with the default policy.
2. hedging: p50/p99 against heavy-tailed servers (90% answer at once, 10% after
   200 ms; seeded, so runs see the same draws) with and without ``hedge_after``.
3. a dead primary (500s) over 1,000 calls: requests reaching it with no breaker
   and no budget, budget only, breaker only, both (``backoff=0`` so the
   1,000 calls take seconds, not minutes).
4. memory (tracemalloc) after 10,000 routed calls vs after 100, on two
   in-process ``mmsdk.testing.TestProvider`` (the first failing every 10th call).

Run: ``.venv/bin/python bench/routing.py [--quick]`` (about 2 minutes; ``--quick``
about 1). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cloud_overhead import ANSWER, PROMPT, _Handler, _Server, default_model

# -- the scriptable server (child process) ---------------------------------------------
OK, RATE_LIMITED, RATE_LIMITED_RETRY_AFTER, SERVER_ERROR, HANG, TAIL = range(6)
HANG_SECONDS = 2.0  # a hung request is answered (500) after this, long after the client left
TAIL_FAST, TAIL_SLOW, TAIL_SLOW_SHARE = 0.001, 0.200, 0.10


class _Control:
    """Shared memory between the bench and one server: fault mode, request count, seed."""

    def __init__(self) -> None:
        self.mode = multiprocessing.RawValue("i", OK)
        self.count = multiprocessing.Value("q", 0)
        self.seed = multiprocessing.RawValue("q", 0)
        self.generation = multiprocessing.RawValue("i", 0)  # bumped to reseed the server's RNG
        self.port = multiprocessing.RawValue("i", 0)

    def set(self, mode: int, seed: int | None = None) -> None:
        self.mode.value = mode
        if seed is not None:
            self.seed.value = seed
            self.generation.value += 1
        with self.count.get_lock():
            self.count.value = 0

    def requests(self) -> int:
        with self.count.get_lock():
            return int(self.count.value)


def _error_body(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": kind}}).encode()


class _FaultHandler(_Handler):
    """The cloud_overhead handler, with a fault chosen by the bench per request."""

    control: Any = None
    lock = threading.Lock()
    rng = random.Random(0)
    generation = -1

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _tail_delay(self) -> float:
        cls = type(self)
        with cls.lock:
            if cls.generation != self.control.generation.value:
                cls.generation = self.control.generation.value
                cls.rng = random.Random(self.control.seed.value)
            slow = cls.rng.random() < TAIL_SLOW_SHARE
        return TAIL_SLOW if slow else TAIL_FAST

    def do_POST(self) -> None:
        control = self.control
        with control.count.get_lock():
            control.count.value += 1
        mode = control.mode.value
        if mode == TAIL:
            time.sleep(self._tail_delay())
        if mode in (OK, TAIL):
            super().do_POST()
            return
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if mode == RATE_LIMITED:
            self._send(429, _error_body("Rate limit reached.", "rate_limit_exceeded"))
        elif mode == RATE_LIMITED_RETRY_AFTER:
            self._send(429, _error_body("Rate limit reached.", "rate_limit_exceeded"),
                       {"retry-after": "1"})
        elif mode == SERVER_ERROR:
            self._send(500, _error_body("The server had an error.", "server_error"))
        else:  # HANG: say nothing until the client has long given up
            time.sleep(HANG_SECONDS)
            self._send(500, _error_body("Hung.", "server_error"))


class _FaultServer(_Server):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a hung request's late answer meets a closed socket: expected, not news


def _serve(control: _Control) -> None:
    _FaultHandler.control = control
    server = _FaultServer(("127.0.0.1", 0), _FaultHandler)
    control.port.value = server.server_address[1]
    server.serve_forever()


def start_fault_server() -> tuple[multiprocessing.Process, str, _Control]:
    """A loopback server in a child process; returns it, its ``/v1`` URL and its control."""
    control = _Control()
    process = multiprocessing.Process(target=_serve, args=(control,), daemon=True)
    process.start()
    deadline = time.monotonic() + 10
    while not control.port.value:
        if time.monotonic() > deadline:
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    return process, f"http://127.0.0.1:{control.port.value}/v1", control


class _Openings(logging.Handler):
    """Counts breaker openings (mmsdk logs each at WARNING) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "circuit breaker" in record.getMessage():
            self.count += 1


OPENINGS = _Openings()


# -- numbers ---------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 values is their maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


class Bench:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.a_proc, a_url, self.a = start_fault_server()
        self.b_proc, b_url, self.b = start_fault_server()
        os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
        os.environ["OPENAI_BASE_URL"] = a_url
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1"

        import mmsdk_openai

        import mmsdk

        self.mmsdk = mmsdk
        logging.getLogger("mmsdk").addHandler(OPENINGS)
        self.model = default_model()
        mmsdk_openai.add_endpoint("backup", b_url, models=[self.model])
        self.primary, self.fallback = f"openai:{self.model}", f"backup:{self.model}"
        self.route = [self.primary, self.fallback]
        print(f"route: [{self.primary!r} on A {a_url}, {self.fallback!r} on B {b_url}]")

    def close(self) -> None:
        self.mmsdk.unload()
        for process in (self.a_proc, self.b_proc):
            process.terminate()
            process.join(5)

    def warm(self) -> None:
        """Import the plugin, build both clients, open connections (not timed)."""
        self.a.set(OK)
        self.b.set(OK)
        for provider in self.route:
            router = self.mmsdk.Router(provider)
            for _ in range(20):
                assert router.understand(PROMPT).text == ANSWER

    def calls(self, router: Any, n: int, seconds: float,
              on_result: Callable[[Any], None] | None = None) -> list[float]:
        """Up to *n* sync calls, stopping early after *seconds*; returns latencies."""
        latencies: list[float] = []
        stop = time.monotonic() + seconds
        for _ in range(n):
            started = time.perf_counter()
            result = router.understand(PROMPT)
            latencies.append(time.perf_counter() - started)
            if on_result is not None:
                on_result(result)
            if time.monotonic() > stop:
                break
        return latencies

    def settle(self) -> tuple[int, int]:
        """Server request counts, after requests still in flight (hedge losers) land."""
        time.sleep(TAIL_SLOW + 0.05)
        return self.a.requests(), self.b.requests()

    # 1 -----------------------------------------------------------------------------
    def fallbacks(self) -> None:
        mmsdk, Policy = self.mmsdk, self.mmsdk.Policy
        n = 8 if self.quick else 20
        print(f"\n1. Fallback from a failing primary A to a healthy B ({n} sequential sync calls "
              "per row; p99 = nearest rank, so the slowest call when n < 100)\n")
        print(f"{'primary A':<22}{'policy':<26}{'p50 ms':>8}{'p99 ms':>8}{'fb at ms':>9}"
              f"{'A req/call':>11}{'B req/call':>11}  answered by")
        mmsdk.reset_health()
        self.a.set(OK)
        self.b.set(OK)
        healthy = self.calls(mmsdk.Router(self.fallback), max(n, 50), 10)
        print(f"{'(B alone, healthy)':<22}{'default':<26}{ms(statistics.median(healthy)):>8}"
              f"{ms(pct(healthy, 99)):>8}{'-':>9}{self.a.requests() / len(healthy):>11.2f}"
              f"{self.b.requests() / len(healthy):>11.2f}  B")
        faults = [("429, no Retry-After", RATE_LIMITED, None),
                  ("429, Retry-After: 1", RATE_LIMITED_RETRY_AFTER, None),
                  ("500", SERVER_ERROR, None),
                  ("hang (timeout=0.2)", HANG, 0.2)]
        for label, mode, timeout in faults:
            for name, policy in (
                    ("retries=1, no brk/budget", Policy(timeout=timeout, breaker_threshold=None,
                                                        retry_budget=None)),
                    ("defaults", Policy(timeout=timeout))):
                mmsdk.reset_health()
                self.a.set(mode)
                self.b.set(OK)
                fallback_at: list[float] = []
                answered: set[str] = set()

                def seen(result: Any, answered: set[str] = answered,
                         fallback_at: list[float] = fallback_at) -> None:
                    answered.add("B" if result.provider == self.fallback else "A")
                    fallback_at.extend(a.started for a in result.attempts
                                       if a.provider == self.fallback)

                latencies = self.calls(mmsdk.Router(self.route, policy), n, 40, seen)
                a_count, b_count = self.a.requests(), self.b.requests()
                calls = len(latencies)
                fb = ms(statistics.median(fallback_at)) if fallback_at else "-"
                print(f"{label:<22}{name:<26}{ms(statistics.median(latencies)):>8}"
                      f"{ms(pct(latencies, 99)):>8}{fb:>9}"
                      f"{a_count / calls:>11.2f}{b_count / calls:>11.2f}  "
                      f"{'/'.join(sorted(answered))}")
        self.a.set(OK)
        print("\nfb at: median time from the start of the call to the start of B's attempt "
              "(A's attempts, retry waits and skips).\ndefaults = retries=1, backoff 0.25 s, "
              "breaker after 5 consecutive failures (30 s), retry budget 0.2.")

    # 2 -----------------------------------------------------------------------------
    def hedging(self) -> None:
        mmsdk, Policy = self.mmsdk, self.mmsdk.Policy
        n = 100 if self.quick else 300
        print(f"\n2. Hedging, route [A, B] ({n} sequential calls per row; tail: A and B each "
              f"answer 90% after {TAIL_FAST * 1e3:.0f} ms,\n   10% after "
              f"{TAIL_SLOW * 1e3:.0f} ms, seeded: every row sees the same draws at A)\n")
        print(f"{'servers / policy':<34}{'p50 ms':>8}{'p90 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
              f"{'max ms':>8}"
              f"{'A req/call':>11}{'B req/call':>11}{'calls/s':>9}")
        rows: list[tuple[str, int, Any, bool]] = [
            ("healthy, no hedge (sync)", OK, Policy(), False),
            ("healthy, hedge_after=0.02 (sync)", OK, Policy(hedge_after=0.02), False),
            ("healthy, no hedge (async)", OK, Policy(), True),
            ("healthy, hedge_after=0.02 (async)", OK, Policy(hedge_after=0.02), True),
            ("tail, no hedge (sync)", TAIL, Policy(), False),
            ("tail, hedge_after=0.02 (sync)", TAIL, Policy(hedge_after=0.02), False),
            ("tail, hedge_after=0.05 (sync)", TAIL, Policy(hedge_after=0.05), False),
            ("tail, no hedge (async)", TAIL, Policy(), True),
            ("tail, hedge_after=0.02 (async)", TAIL, Policy(hedge_after=0.02), True)]
        for name, mode, policy, is_async in rows:
            mmsdk.reset_health()
            self.a.set(mode, seed=1)
            self.b.set(mode, seed=2)
            router = mmsdk.Router(self.route, policy)
            started = time.perf_counter()
            latencies = (asyncio.run(self._acalls(router, n, 60)) if is_async
                         else self.calls(router, n, 60))
            wall = time.perf_counter() - started
            a_count, b_count = self.settle()
            calls = len(latencies)
            print(f"{name:<34}{ms(statistics.median(latencies)):>8}{ms(pct(latencies, 90)):>8}"
                  f"{ms(pct(latencies, 95)):>8}{ms(pct(latencies, 99)):>8}{ms(max(latencies)):>8}"
                  f"{a_count / calls:>11.2f}{b_count / calls:>11.2f}{calls / wall:>9.1f}")
        self.a.set(OK)
        self.b.set(OK)
        print("\nhealthy: both servers answer at once (what hedging costs when nothing is slow). "
              "A slow request at A\nis hedged at B, which is itself slow 10% of the time: "
              "about 1% of hedged calls still take ~200 ms.")

    async def _acalls(self, router: Any, n: int, seconds: float) -> list[float]:
        latencies: list[float] = []
        stop = time.monotonic() + seconds
        for _ in range(n):
            started = time.perf_counter()
            await router.aunderstand(PROMPT)
            latencies.append(time.perf_counter() - started)
            if time.monotonic() > stop:
                break
        return latencies

    # 3 -----------------------------------------------------------------------------
    def dead_provider(self) -> None:
        mmsdk, Policy = self.mmsdk, self.mmsdk.Policy
        n = 300 if self.quick else 1000
        print(f"\n3. A dead primary (every request a 500) over {n} sequential calls, route "
              "[A, B]; retries=1, backoff=0 in every row\n")
        print(f"{'breaker / budget':<36}{'A requests':>11}{'per call':>9}{'B requests':>11}"
              f"{'failed':>7}{'seconds':>9}{'opened':>7}{'A state':>9}")
        rows = [
            ("none (threshold=None, budget=None)", Policy(backoff=0, breaker_threshold=None,
                                                          retry_budget=None)),
            ("budget only (0.2)", Policy(backoff=0, breaker_threshold=None)),
            ("breaker only (5, 30 s)", Policy(backoff=0, retry_budget=None)),
            ("both (defaults)", Policy(backoff=0)),
            ("both, breaker_cooldown=0.5 s", Policy(backoff=0, breaker_cooldown=0.5))]
        for name, policy in rows:
            mmsdk.reset_health()
            self.a.set(SERVER_ERROR)
            self.b.set(OK)
            router = mmsdk.Router(self.route, policy)
            OPENINGS.count = 0
            failed = 0
            started = time.perf_counter()
            stop = time.monotonic() + 40
            calls = 0
            for _ in range(n):
                calls += 1
                try:
                    router.understand(PROMPT)
                except mmsdk.MMSDKError:
                    failed += 1
                if time.monotonic() > stop:
                    break
            wall = time.perf_counter() - started
            state = router.health().get(self.primary)
            print(f"{name:<36}{self.a.requests():>11}{self.a.requests() / calls:>9.3f}"
                  f"{self.b.requests():>11}{failed:>7}{wall:>9.1f}{OPENINGS.count:>7}"
                  f"{state.state if state else '-':>9}")
        self.a.set(OK)
        mmsdk.reset_health()
        print("\nopened: times the breaker opened (the first time, then after each failed "
              "half-open probe).")

    # 4 -----------------------------------------------------------------------------
    def memory(self) -> None:
        mmsdk = self.mmsdk
        from mmsdk.testing import TestProvider

        total = 10_000
        print(f"\n4. Memory: {total:,} routed calls on two in-process TestProvider(local=False) "
              "(route [mema, memb], the first failing twice every 10th call: retry, then "
              "fallback)\n")
        first = TestProvider("mema", local=False, answer=ANSWER)
        second = TestProvider("memb", local=False, answer=ANSWER)
        router = mmsdk.Router(["mema:x", "memb:x"], mmsdk.Policy(backoff=0))
        with first, second:
            mmsdk.reset_health()
            answered = {"mema:x": 0, "memb:x": 0}

            def call(index: int) -> None:
                if index % 10 == 0:
                    first.failures.extend([mmsdk.ProviderServerError, mmsdk.ProviderServerError])
                result = router.understand(PROMPT)
                answered[result.provider] += 1
                first.calls.clear()  # TestProvider records every request; mmsdk does not
                second.calls.clear()

            for index in range(100):  # warm: imports, caches, first-call work
                call(index)
            gc.collect()
            tracemalloc.start(10)
            for index in range(100):
                call(index)
            gc.collect()
            at_100, _ = tracemalloc.get_traced_memory()
            snap_100 = tracemalloc.take_snapshot()
            rss_100 = _rss()
            started = time.perf_counter()
            stop = time.monotonic() + 60
            done = 100
            for index in range(100, total):
                call(index)
                done += 1
                if time.monotonic() > stop:
                    break
            wall = time.perf_counter() - started
            gc.collect()
            at_total, peak = tracemalloc.get_traced_memory()
            snap_total = tracemalloc.take_snapshot()
            rss_total = _rss()
            tracemalloc.stop()
        grown = at_total - at_100
        print(f"traced Python memory after 100 calls: {at_100 / 1024:.1f} KiB; after {done:,}: "
              f"{at_total / 1024:.1f} KiB; growth {grown / 1024:+.1f} KiB "
              f"({grown / max(1, done - 100):+.1f} bytes per call); peak {peak / 1024:.1f} KiB")
        print(f"RSS after 100 calls: {rss_100 / 2**20:.1f} MiB; after {done:,}: "
              f"{rss_total / 2**20:.1f} MiB ({(rss_total - rss_100) / 2**20:+.1f} MiB)")
        print(f"answered by mema: {answered['mema:x']:,}, memb: {answered['memb:x']:,}; "
              f"{(done - 100) / wall:,.0f} calls/s under tracemalloc")
        stats = snap_total.compare_to(snap_100, "lineno")
        top = [s for s in stats if s.size_diff > 0][:5]
        if top:
            print("largest growth by line (traced):")
            for stat in top:
                frame = stat.traceback[0]
                path = frame.filename.replace(os.sep, "/")
                short = "/".join(path.split("/")[-2:])
                print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  "
                      f"{short}:{frame.lineno}")


def _rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (about 1 minute)")
    args = parser.parse_args()
    started = time.perf_counter()
    bench = Bench(args.quick)
    try:
        bench.warm()
        bench.fallbacks()
        bench.hedging()
        bench.dead_provider()
        bench.memory()
    finally:
        bench.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
