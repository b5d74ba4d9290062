"""Throughput over replica pools: does mmsdk scale with the number of engines?

Each replica is a loopback server that behaves like one GPU engine: it serves
one request at a time for a fixed service time (50 ms by default) and queues
the rest. All replicas run in one child process (they only sleep, so they do
not compete for this process's CPU). A closed-loop client keeps ``2 x N``
calls in flight through ``mmsdk.aunderstand`` on a pool of N replicas
(``mmsdk_openai.add_endpoint(name, [url, ...])``, least-in-flight balancing),
for N = 1, 2, 4, 8, and prints:

1. throughput against N x the single-replica throughput (goal >= 0.9 x N), p50 / p99;
2. the same with one replica 10x slower (goal: p99 close to the healthy case,
   thanks to least-in-flight balancing, ejection and ``hedge_after``);
3. mmsdk's own overhead against a direct ``AsyncOpenAI`` client spreading the
   same load round-robin over the same replicas (goal <= 5%).

Run: ``.venv/bin/python bench/scale.py [--quick] [--service 0.05]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import statistics
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from cloud_overhead import _Handler, _payloads  # one OpenAI-shaped reply

MODEL = "engine-model"


class _EngineHandler(_Handler):
    """A chat completion after ``service`` seconds, one request at a time per replica."""

    gpu: threading.Lock
    service: Any  # shared: seconds per request (one replica can be slowed down)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.gpu:  # one request on the "GPU" at a time; the others queue here
            time.sleep(self.service.value)
        payload, _ = _payloads(MODEL)
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a hedged-away request: its client left while it queued


class _EngineServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def _serve(ports: Any, services: list[Any]) -> None:
    servers = []
    for index, service in enumerate(services):
        handler = type(f"Engine{index}", (_EngineHandler,),
                       {"gpu": threading.Lock(), "service": service})
        server = _EngineServer(("127.0.0.1", 0), handler)
        ports[index] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    threading.Event().wait()


def start_engines(count: int, service: float) -> tuple[multiprocessing.Process, list[str],
                                                        list[Any]]:
    ports = multiprocessing.Array("i", count)
    services = [multiprocessing.Value("d", service) for _ in range(count)]
    process = multiprocessing.Process(target=_serve, args=(ports, services), daemon=True)
    process.start()
    while not all(ports[:]):
        time.sleep(0.01)
    return process, [f"http://127.0.0.1:{port}/v1" for port in ports[:]], services


async def _closed_loop(call: Any, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Keep *concurrency* calls in flight for *seconds*; (calls/s, latencies)."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop:
            began = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - began)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.monotonic() - started), latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(replicas: int, service: float, seconds: float, slow: bool,
               hedge: float | None) -> dict[str, float]:
    import mmsdk_openai
    import openai

    import mmsdk

    process, urls, services = start_engines(replicas, service)
    name = f"pool{replicas}{'s' if slow else ''}{'h' if hedge else ''}"
    try:
        if slow:
            services[0].value = service * 10
        mmsdk_openai.add_endpoint(name, urls, models=[MODEL])
        mmsdk.reset_health()
        policy = mmsdk.Policy(hedge_after=hedge) if hedge else None
        router = mmsdk.Router(f"{name}:{MODEL}", policy)

        async def through_mmsdk() -> None:
            await router.aunderstand("Describe the image.")

        clients = [openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
                   for url in urls]
        turn = itertools.cycle(clients)

        async def direct() -> None:
            await next(turn).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Describe the image."}])

        await _closed_loop(through_mmsdk, 2 * replicas, min(seconds, 0.5))  # warm up
        rate, latencies = await _closed_loop(through_mmsdk, 2 * replicas, seconds)
        direct_rate, _ = await _closed_loop(direct, 2 * replicas, seconds)
        for client in clients:
            await client.close()
        return {"rate": rate, "p50": statistics.median(latencies), "p99": _pct(latencies, 0.99),
                "direct": direct_rate}
    finally:
        mmsdk_openai.remove_endpoint(name)
        process.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1.5 s per case instead of 4 s")
    parser.add_argument("--service", type=float, default=0.05, help="seconds per request")
    args = parser.parse_args()
    seconds = 1.5 if args.quick else 4.0
    os.environ.setdefault("OPENAI_API_KEY", "none")
    print(f"replica service time {args.service * 1000:.0f} ms, one request at a time; "
          f"closed loop at 2 x N calls in flight, {seconds:.1f} s per case\n")
    single = None
    print(f"{'case':44} {'calls/s':>8} {'x single':>9} {'goal':>6} {'p50':>8} {'p99':>8} "
          f"{'direct/s':>9} {'overhead':>9}")
    for slow, hedge in ((False, None), (True, None), (True, 4 * args.service)):
        for replicas in (1, 2, 4, 8):
            if slow and replicas == 1:
                continue
            result = asyncio.run(_run(replicas, args.service, seconds, slow, hedge))
            if single is None:
                single = result["rate"]
            label = f"N={replicas}" + (", one replica 10x slower" if slow else "") + \
                (f", hedge_after={hedge * 1000:.0f} ms" if hedge else "")
            scale = result["rate"] / single
            overhead = result["direct"] / result["rate"] - 1
            goal = "" if slow else ("ok" if scale >= 0.9 * replicas else "MISSED")
            print(f"{label:44} {result['rate']:8.1f} {scale:9.2f} {goal:>6} "
                  f"{result['p50'] * 1000:6.1f}ms {result['p99'] * 1000:6.1f}ms "
                  f"{result['direct']:9.1f} {overhead:+8.1%}")
    print("\nx single: throughput over the N=1 pool's; goal >= 0.9 x N. overhead: the direct "
          "client's throughput over mmsdk's, minus 1 (goal <= +5%). The direct client "
          "spreads round-robin and never ejects, so with a slow replica it is no baseline "
          "for latency.")


if __name__ == "__main__":
    main()
