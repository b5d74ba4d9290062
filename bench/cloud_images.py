"""Image cases: mmsdk vs the raw openai SDK, measured against a loopback server in the same run.

"Raw" is what a user would write: read the file's bytes, base64 them, put them in
a chat message as an ``image_url`` data URL, call ``client.chat.completions.create``.
"mmsdk" is ``mmsdk.understand(PROMPT, images=[path], provider="openai:MODEL")``,
MODEL being the openai plugin's current default understand model (sent
explicitly; the server echoes it). Both talk to the same OpenAI-shaped server
(``cloud_overhead.start_server``: a child process, its own GIL).

Two images are built at start into a temp folder, deterministically: a 64x64
PNG, and a ~1.5 MB 2048x2048 photo-like JPEG (quality 95) carrying camera EXIF
(Make/Model, orientation 1, exposure, GPS) and a COM comment. mmsdk cuts that
metadata out of the byte stream before sending (pixels untouched), so it sends
a few hundred bytes less than raw: expected.

Cases, each against raw in the same run, calls interleaved with alternating order:

* per call, sync and async, for both images (goal: mmsdk/raw <= 1.05);
* a two-provider list answered by the first, ``["openai:MODEL", "anthropic"]``,
  with the JPEG (goal <= 1.05). Anthropic has a dummy key and a base URL on a
  loopback port that listens but is never answered: the bench checks that
  mmsdk neither connected to it nor prepared an image for it;
* async throughput, 32 concurrent calls per round, rounds alternating
  (goal: mmsdk/raw throughput >= 0.95);
* first call in a fresh process: ``import mmsdk`` + first ``understand`` with the
  JPEG vs ``import openai`` + first raw call, sync and async, runs alternating
  (goal <= 1.1, on the time inside the process; the whole-process time is shown too);
* where the time goes (sync, both images): input loading and preparation,
  the plugin called directly, and the core, timed in rotation; ``--profile``
  adds a cProfile of the mmsdk call (mmsdk functions, scaled to real time) and
  the imports the first mmsdk call adds over the raw one.

Run: ``.venv/bin/python bench/cloud_images.py [--calls 300] [--quick] [--profile]``
(about a minute and a half; ``--quick`` about 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import os
import pstats
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloud_overhead import (
    ANSWER,
    _timed,
    default_model,
    start_server,
)

PROMPT = "What is in this picture? One sentence."
BURST = 32


# -- the images -----------------------------------------------------------------------
def make_images(folder: Path) -> dict[str, Path]:
    """A 64x64 PNG and a ~1.5 MB 2048x2048 JPEG with camera EXIF, GPS and a comment."""
    import numpy as np
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational as R

    rng = np.random.default_rng(20261130)
    small = np.zeros((64, 64, 3), np.float32)
    small[..., 0] = np.linspace(0, 255, 64)[None, :]
    small[..., 1] = np.linspace(255, 0, 64)[:, None]
    small[..., 2] = 128
    small += rng.normal(0, 12, small.shape)
    png = folder / "small.png"
    Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).save(png)

    # Photo-like: smooth gradients, soft blobs, sensor-like noise (sized for ~1.5 MB at q95).
    n = 2048
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    base = np.stack([120 + 90 * np.sin(3 * x + 1) * np.cos(2 * y),
                     100 + 80 * y + 40 * np.sin(15 * x * y),
                     90 + 100 * x * (1 - y)], -1)
    blobs = Image.fromarray(np.clip(rng.normal(128, 25, (32, 32, 3)), 0, 255).astype(np.uint8))
    base += np.asarray(blobs.resize((n, n), Image.Resampling.BICUBIC), np.float32) - 128
    base += rng.normal(0, 5.2, base.shape).astype(np.float32)
    exif = Image.Exif()
    exif.update({0x010F: "Canon", 0x0110: "Canon EOS R5", 0x0112: 1, 0x0131: "Firmware 1.8.1",
                 0x0132: "2026:11:30 09:41:07"})
    exif.get_ifd(0x8769).update({  # Exif IFD
        0x829A: R(1, 250), 0x829D: R(28, 10), 0x8827: 200, 0x9003: "2026:11:30 09:41:07",
        0x920A: R(50), 0xA434: "RF24-105mm F4 L IS USM"})
    exif.get_ifd(0x8825).update({  # GPS IFD
        0: b"\x02\x03\x00\x00", 1: "N", 2: (R(48), R(51), R(2964, 100)),
        3: "E", 4: (R(2), R(17), R(4032, 100)), 5: b"\x00", 6: R(3500, 100)})
    jpeg = folder / "photo.jpg"
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(
        jpeg, "JPEG", quality=95, exif=exif.tobytes(),
        comment=b"Shot on a bench; GPS and camera tags included on purpose.")
    return {"64x64 PNG": png, "2048x2048 JPEG": jpeg}


def _mime(path: Path) -> str:
    return "image/png" if path.suffix == ".png" else "image/jpeg"


def raw_messages(path: Path) -> list[dict[str, Any]]:
    """What a user writes: read, base64, one data URL in a chat message."""
    data = path.read_bytes()
    url = f"data:{_mime(path)};base64,{base64.b64encode(data).decode()}"
    return [{"role": "user", "content": [{"type": "text", "text": PROMPT},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


# -- a port that listens but is never answered: proves a provider was not reached -------
class Trap:
    """A listening socket nobody answers; :meth:`reached` says whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def reached(self) -> bool:
        try:
            connection, _ = self.sock.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


# -- measuring and reporting ----------------------------------------------------------
# Every sample is (wall seconds, this process's CPU seconds). Wall time is what the
# goals are about; CPU time (all threads of this process, so mmsdk's worker threads
# count) is shown beside it because it barely moves when other processes load the
# machine, which wall time on 2 shared cores does.
Sample = tuple[float, float]


def _sample(fn: Callable[[], Any]) -> Callable[[], Sample]:
    def run() -> Sample:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu
    return run


def _asample(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Sample]]:
    async def run() -> Sample:
        cpu, wall = time.process_time(), time.perf_counter()
        await fn()
        return time.perf_counter() - wall, time.process_time() - cpu
    return run


def _pairs(calls: int) -> list[bool]:
    """For each pair, whether mmsdk goes first: alternating, so drift hits both alike."""
    return [index % 2 == 1 for index in range(calls)]


def interleave(mine: Callable[[], Sample], raw: Callable[[], Sample], calls: int,
               warmup: int) -> tuple[list[Sample], list[Sample]]:
    for _ in range(warmup):
        mine(), raw()
    ours, theirs = [], []
    for mmsdk_first in _pairs(calls):
        if mmsdk_first:
            ours.append(mine())
            theirs.append(raw())
        else:
            theirs.append(raw())
            ours.append(mine())
    return ours, theirs


async def ainterleave(mine: Callable[[], Awaitable[Sample]], raw: Callable[[], Awaitable[Sample]],
                      calls: int, warmup: int) -> tuple[list[Sample], list[Sample]]:
    for _ in range(warmup):
        await mine()
        await raw()
    ours, theirs = [], []
    for mmsdk_first in _pairs(calls):
        if mmsdk_first:
            ours.append(await mine())
            theirs.append(await raw())
        else:
            theirs.append(await raw())
            ours.append(await mine())
    return ours, theirs


@dataclass
class Row:
    """One case: medians of mmsdk and raw (wall), the ratios, and the goal."""

    name: str
    mine: float  # ms, or calls/s for throughput
    theirs: float
    unit: str
    ratio: float  # median(mmsdk) / median(raw), wall
    paired: float  # median of per-pair ratios, wall
    cpu: float  # median(mmsdk) / median(raw), this process's CPU time
    goal: str  # "<= 1.05" or ">= 0.95"

    def met(self) -> bool:
        bound = float(self.goal.split()[-1])
        return self.ratio <= bound if self.goal.startswith("<=") else self.ratio >= bound


def latency_row(name: str, ours: list[Sample], theirs: list[Sample],
                goal: str = "<= 1.05", scale: float = 1e3) -> Row:
    wall = [s[0] for s in ours], [s[0] for s in theirs]
    cpu = [s[1] for s in ours], [s[1] for s in theirs]
    a, b = statistics.median(wall[0]), statistics.median(wall[1])
    return Row(name, a * scale, b * scale, "ms", a / b,
               statistics.median(x / y for x, y in zip(*wall, strict=True)),
               statistics.median(cpu[0]) / statistics.median(cpu[1]), goal)


def _print(rows: list[Row]) -> None:
    print(f"\n{'case':<48}{'mmsdk':>9}{'raw':>9}{'unit':>8}{'ratio':>7}{'paired':>8}{'cpu':>7}"
          "  goal")
    for row in rows:
        print(f"{row.name:<48}{row.mine:>9.3f}{row.theirs:>9.3f}{row.unit:>8}{row.ratio:>7.3f}"
              f"{row.paired:>8.3f}{row.cpu:>7.3f}  {row.goal} {'met' if row.met() else 'MISSED'}")
    print("\nratio: median(mmsdk) / median(raw), wall time; paired: median of the per-pair "
          "ratios (each pair ran back to back); cpu: the same as ratio on this process's CPU "
          "time (all threads), which other processes' load barely moves. Throughput rows: "
          "calls/s, ratios of throughput (higher is better).")


# -- per call -------------------------------------------------------------------------
def per_call(images: dict[str, Path], model: str, calls: int, trap: Trap,
             received: Any) -> list[Row]:
    import openai

    import mmsdk

    provider = f"openai:{model}"
    pair = [provider, "anthropic"]
    warmup = min(20, calls // 4)
    client = openai.OpenAI(max_retries=0)
    rows: list[Row] = []

    def raw(path: Path) -> Callable[[], Any]:
        return lambda: client.chat.completions.create(model=model, messages=raw_messages(path))

    def mine(path: Path, route: Any = provider) -> Callable[[], Any]:
        return lambda: mmsdk.understand(PROMPT, images=[path], provider=route)

    # Checks first: same answer, the model echoed, what each path sent.
    print("\nwhat is sent (request body sizes seen by the server):")
    for label, path in images.items():
        answer = raw(path)()
        raw_body = received.value
        result = mine(path)()
        mm_body = received.value
        assert answer.choices[0].message.content == result.text == ANSWER, result.text
        assert answer.model == result.model == model, (answer.model, result.model)
        sent = result.sent[0]
        print(f"  {label}: file {path.stat().st_size} B; raw body {raw_body} B; mmsdk body "
              f"{mm_body} B (sent {sent.format} {sent.width}x{sent.height}, {sent.bytes} B, "
              f"resized={sent.resized})")
    _check_list(pair, images["2048x2048 JPEG"], trap)

    for label, path in images.items():
        a, b = interleave(_sample(mine(path)), _sample(raw(path)), calls, warmup)
        rows.append(latency_row(f"sync, {label}", a, b))
    jpeg = images["2048x2048 JPEG"]
    a, b = interleave(_sample(mine(jpeg, pair)), _sample(raw(jpeg)), calls, warmup)
    rows.append(latency_row("sync, [openai, anthropic], JPEG", a, b))

    async def async_rows() -> None:
        aclient = openai.AsyncOpenAI(max_retries=0)

        def araw(path: Path) -> Callable[[], Awaitable[Sample]]:
            return _asample(lambda: aclient.chat.completions.create(
                model=model, messages=raw_messages(path)))

        def amine(path: Path, route: Any = provider) -> Callable[[], Awaitable[Sample]]:
            return _asample(lambda: mmsdk.aunderstand(PROMPT, images=[path], provider=route))

        for label, path in images.items():
            a, b = await ainterleave(amine(path), araw(path), calls, warmup)
            rows.append(latency_row(f"async, {label}", a, b))
        a, b = await ainterleave(amine(jpeg, pair), araw(jpeg), calls, warmup)
        rows.append(latency_row("async, [openai, anthropic], JPEG", a, b))
        await aclient.close()

    asyncio.run(async_rows())
    assert not trap.reached(), "mmsdk connected to the anthropic fallback"
    assert "anthropic" not in sys.modules, "mmsdk imported the anthropic SDK"
    client.close()
    return rows


def _check_list(pair: list[str], jpeg: Path, trap: Trap) -> None:
    """The list is answered by its first provider; the second is never prepared or reached."""
    import mmsdk
    from mmsdk import _jobs  # the bench may peek inside; plugins may not

    prepared_for: list[str] = []
    real = _jobs.prepare_all

    def spy(images: Any, limits: Any, *, provider: str, **kwargs: Any) -> Any:
        prepared_for.append(provider)
        return real(images, limits, provider=provider, **kwargs)

    _jobs.prepare_all = spy  # type: ignore[assignment]
    try:
        result = mmsdk.understand(PROMPT, images=[jpeg], provider=pair)
        asyncio.run(mmsdk.aunderstand(PROMPT, images=[jpeg], provider=pair))
    finally:
        _jobs.prepare_all = real  # type: ignore[assignment]
    assert result.provider == pair[0], result.provider
    assert prepared_for and all(p == pair[0] for p in prepared_for), prepared_for
    assert [a.provider for a in result.attempts] == [pair[0]], result.attempts
    assert not trap.reached(), "mmsdk connected to the anthropic fallback"
    print(f"  list {pair}: answered by {result.provider}; images prepared only for "
          f"{sorted(set(prepared_for))}; anthropic's port never connected")


# -- async throughput -----------------------------------------------------------------
def throughput(images: dict[str, Path], model: str, rounds: int) -> list[Row]:
    import openai

    import mmsdk

    provider = f"openai:{model}"
    rows: list[Row] = []

    async def run() -> None:
        client = openai.AsyncOpenAI(max_retries=0)

        async def burst(one: Callable[[], Awaitable[Any]]) -> Sample:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one() for _ in range(BURST)))
            return time.perf_counter() - wall, time.process_time() - cpu

        for label, path in images.items():
            def raw(path: Path = path) -> Awaitable[Any]:
                return client.chat.completions.create(model=model, messages=raw_messages(path))

            def mine(path: Path = path) -> Awaitable[Any]:
                return mmsdk.aunderstand(PROMPT, images=[path], provider=provider)

            ours, theirs = await ainterleave(lambda: burst(mine), lambda: burst(raw),
                                             rounds, 2)  # warm-up: connections, threads
            # A round's throughput is BURST / its wall time: ratios of throughput are
            # raw time / mmsdk time.
            slow = latency_row("", ours, theirs)
            rows.append(Row(f"async {BURST}-way throughput, {label}", BURST / slow.mine * 1e3,
                            BURST / slow.theirs * 1e3, "calls/s", 1 / slow.ratio,
                            statistics.median(t[0] / o[0] for o, t in zip(ours, theirs,
                                                                          strict=True)),
                            1 / slow.cpu, ">= 0.95"))
        await client.close()

    asyncio.run(run())
    return rows


# -- first call in a fresh process ----------------------------------------------------
_FIRST = {
    "mmsdk sync": """
        import mmsdk
        result = mmsdk.understand(PROMPT, images=[PATH], provider=PROVIDER)
        text = result.text
    """,
    "raw sync": """
        import base64, openai
        data = open(PATH, "rb").read()
        url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        client = openai.OpenAI(max_retries=0)
        text = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": {"url": url}}]}]
            ).choices[0].message.content
    """,
    "mmsdk async": """
        import asyncio, mmsdk
        text = asyncio.run(mmsdk.aunderstand(PROMPT, images=[PATH], provider=PROVIDER)).text
    """,
    "raw async": """
        import asyncio, base64, openai
        async def main():
            data = open(PATH, "rb").read()
            url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
            client = openai.AsyncOpenAI(max_retries=0)
            answer = await client.chat.completions.create(model=MODEL, messages=[
                {"role": "user", "content": [{"type": "text", "text": PROMPT},
                 {"type": "image_url", "image_url": {"url": url}}]}])
            await client.close()
            return answer.choices[0].message.content
        text = asyncio.run(main())
    """,
}


def _first_script(body: str, path: Path, model: str) -> str:
    head = (f"import time\ncpu, started = time.process_time(), time.perf_counter()\n"
            f"PATH = {str(path)!r}\n"
            f"MODEL = {model!r}\nPROVIDER = 'openai:' + MODEL\nPROMPT = {PROMPT!r}\n")
    tail = (f"\nelapsed = time.perf_counter() - started, time.process_time() - cpu\n"
            f"assert text == {ANSWER!r}, text\nprint(*elapsed)\n")
    return head + textwrap.dedent(body) + tail


def first_call(jpeg: Path, model: str, runs: int) -> list[Row]:
    scripts = {name: _first_script(body, jpeg, model) for name, body in _FIRST.items()}
    inside: dict[str, list[Sample]] = {name: [] for name in scripts}
    whole: dict[str, list[Sample]] = {name: [] for name in scripts}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for index in range(runs + 1):  # the first round warms the disk cache, not counted
        names = list(scripts)
        if index % 2:
            names.reverse()
        for name in names:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", scripts[name]], capture_output=True,
                                  text=True, env=env, check=False)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode:
                raise RuntimeError(f"{name} failed:\n{done.stderr}")
            if index:
                wall, cpu = (float(word) for word in done.stdout.split()[-2:])
                inside[name].append((wall, cpu))
                whole[name].append((elapsed, after.ru_utime + after.ru_stime
                                    - before.ru_utime - before.ru_stime))
    rows: list[Row] = []
    for kind in ("sync", "async"):
        ours, theirs = f"mmsdk {kind}", f"raw {kind}"
        rows.append(latency_row(f"import + first {kind} call, JPEG (in process)",
                                inside[ours], inside[theirs], "<= 1.1"))
        rows.append(latency_row(f"import + first {kind} call, JPEG (whole process)",
                                whole[ours], whole[theirs], "<= 1.1"))
    return rows


# -- where the time goes ----------------------------------------------------------------
def layers(images: dict[str, Path], model: str, calls: int) -> None:
    """Real (unprofiled) cost of each layer of the sync call, timed in rotation.

    ``load + prepare`` is the core's input work without a request (read the
    file, check its header and structure, strip metadata for the provider's
    limits; no base64); ``plugin`` calls the plugin's model object directly with
    an image prepared once (it still base64s it and sends it on every call);
    ``mmsdk`` is the whole public call. Derived: what mmsdk's input handling adds
    over raw's ``read_bytes``, what the plugin adds over raw's base64 + SDK call,
    and the rest (validation, routing, the attempt record, the result).
    """
    import openai

    import mmsdk
    from mmsdk._media import load_images
    from mmsdk._prepare import prepare_all
    from mmsdk._registry import get_registry  # the bench may peek inside; plugins may not
    from mmsdk.plugin import UnderstandRequest

    provider = f"openai:{model}"
    registry = get_registry()
    resolved = registry.resolve(provider)
    limits = resolved.info.limits
    model_object: Any = registry.model(resolved)
    client = openai.OpenAI(max_retries=0)
    print(f"\nwhere the time goes, sync ({calls} rotated calls per path, medians, us per call):")
    for label, path in images.items():
        prepared = prepare_all(load_images([path], name="images"), limits, provider=provider)
        request = UnderstandRequest(prompt=PROMPT, images=prepared)

        def load_prepare(path: Path = path) -> None:
            prepare_all(load_images([path], name="images"), limits, provider=provider)

        def raw_call(path: Path = path) -> None:
            client.chat.completions.create(model=model, messages=raw_messages(path))

        def mm_call(path: Path = path) -> None:
            mmsdk.understand(PROMPT, images=[path], provider=provider)

        paths = {
            "raw: read_bytes": _timed(path.read_bytes),
            "raw: whole call": _timed(raw_call),
            "mmsdk: load + prepare (no base64)": _timed(load_prepare),
            "plugin called directly (image prepared once)": _timed(
                lambda request=request: model_object.understand(request)),
            "mmsdk: whole call": _timed(mm_call),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        order = list(paths)
        for index in range(calls + 10):
            order = order[1:] + order[:1]
            for name in order:
                elapsed = paths[name]()
                if index >= 10:
                    times[name].append(elapsed)
        med = {name: statistics.median(values) * 1e6 for name, values in times.items()}
        print(f"\n  {label}")
        for name, value in med.items():
            print(f"    {name:<56}{value:>9.0f}")
        extra = med["mmsdk: whole call"] - med["raw: whole call"]
        inputs = med["mmsdk: load + prepare (no base64)"] - med["raw: read_bytes"]
        plugin = med["plugin called directly (image prepared once)"] - (
            med["raw: whole call"] - med["raw: read_bytes"])
        print(f"    {'= mmsdk extra per call':<56}{extra:>9.0f}")
        print(f"    {'  of which input handling (load + prepare - read_bytes)':<56}{inputs:>9.0f}")
        print(f"    {'  of which plugin (vs base64 + raw create)':<56}{plugin:>9.0f}")
        print(f"    {'  of which the rest of the core':<56}{extra - inputs - plugin:>9.0f}")
    client.close()


def profile(images: dict[str, Path], model: str, calls: int) -> None:
    """cProfile of the sync mmsdk call per image, scaled to real time, mmsdk functions only."""
    import mmsdk

    provider = f"openai:{model}"
    for label, path in images.items():
        def call(path: Path = path) -> None:
            mmsdk.understand(PROMPT, images=[path], provider=provider)

        for _ in range(10):
            call()
        real = statistics.median(_timed(call)() for _ in range(calls))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call()
        profiler.disable()
        rows = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        top = max(v[3] for k, v in rows.items() if k[2] == "understand"
                  and k[0].endswith("_api.py"))
        scale = real / (top / calls)
        print(f"\ncProfile, sync mmsdk call, {label}: {real * 1e6:.0f} us per call (real); "
              "mmsdk functions, cumulative, scaled to real us per call:")
        found = []
        for (filename, line, name), (_, ncalls, own, cumulative, _) in rows.items():
            where = filename.replace(os.sep, "/")
            if "/mmsdk/" in where or "/mmsdk_openai/" in where:
                short = "/".join(where.rsplit("/", 2)[-2:])
                found.append((cumulative / calls * scale * 1e6, own / calls * scale * 1e6,
                              ncalls / calls, f"{short}:{line}:{name}"))
        print(f"  {'function':<52}{'cum us':>9}{'own us':>9}{'calls':>7}")
        for cumulative, own, per_call, key in sorted(found, reverse=True)[:24]:
            print(f"  {key:<52}{cumulative:>9.1f}{own:>9.1f}{per_call:>7.1f}")


def import_profile(jpeg: Path, model: str) -> None:
    """``-X importtime`` of the first-call scripts: what mmsdk's first call imports beyond raw's."""
    import collections
    import re

    runs: dict[str, list[collections.Counter[str]]] = {"mmsdk sync": [], "raw sync": []}
    for _ in range(3):
        for name, found_runs in runs.items():
            script = _first_script(_FIRST[name], jpeg, model)
            done = subprocess.run([sys.executable, "-X", "importtime", "-c", script],
                                  capture_output=True, text=True, check=True)
            counter: collections.Counter[str] = collections.Counter()
            for line in done.stderr.splitlines():
                found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
                if found:
                    module = found[2]
                    top = module.split(".")[0]
                    counter[module if top == "mmsdk" else top] += int(found[1])
            found_runs.append(counter)
    own = {name: collections.Counter({key: statistics.median(run[key] for run in found_runs)
                                      for key in set().union(*found_runs)})
           for name, found_runs in runs.items()}
    mine, theirs = own["mmsdk sync"], own["raw sync"]
    extra = sorted(((mine[k] - theirs[k], k) for k in set(mine) | set(theirs)), reverse=True)
    print(f"\nimports of the first sync call, own time (-X importtime, inflated; medians of 3): "
          "mmsdk "
          f"{sum(mine.values()) / 1e3:.0f} ms, raw {sum(theirs.values()) / 1e3:.0f} ms; "
          "largest extras (mmsdk modules one by one, others by package), ms:")
    for micros, key in extra[:16]:
        print(f"  {key:<40}{micros / 1e3:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="interleaved pairs per case")
    parser.add_argument("--rounds", type=int, default=20, help="32-way rounds per path")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per first-call case")
    parser.add_argument("--quick", action="store_true", help="fewer calls, rounds and runs")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of the mmsdk path")
    parser.add_argument("--only", choices=("calls", "throughput", "first", "layers"),
                        action="append", help="run only these sections")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds, args.runs = 80, 8, 5
    sections = set(args.only or ("calls", "throughput", "first", "layers"))

    server, base_url, received = start_server()
    trap = Trap()
    os.environ.update({
        "OPENAI_API_KEY": "sk-bench-0000000000000000", "OPENAI_BASE_URL": base_url,
        # anthropic is "available" (it has a key) but must never be reached or prepared.
        "ANTHROPIC_API_KEY": "sk-ant-bench-0000000000000000", "ANTHROPIC_BASE_URL": trap.url,
    })
    model = default_model()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mmsdk-bench-") as folder:
        images = make_images(Path(folder))
        jpeg = images["2048x2048 JPEG"]
        print(f"model {model}; images: " + ", ".join(
            f"{label} {path.stat().st_size} B" for label, path in images.items()))
        if "calls" in sections:
            rows += per_call(images, model, args.calls, trap, received)
        if "throughput" in sections:
            rows += throughput(images, model, args.rounds)
        if "first" in sections:
            rows += first_call(jpeg, model, args.runs)
        _print(rows)
        print(f"Per call: {args.calls} interleaved pairs per case; throughput: "
              f"{args.rounds} alternating rounds of {BURST} concurrent calls "
              f"per path; first call: {args.runs} fresh processes per case, alternating.")
        if "layers" in sections:
            layers(images, model, max(20, args.calls // 2))
        if args.profile:
            profile(images, model, max(20, args.calls // 2))
            import_profile(jpeg, model)
        import mmsdk

        mmsdk.unload()
    server.terminate()


if __name__ == "__main__":
    main()
