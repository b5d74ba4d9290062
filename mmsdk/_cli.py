"""The ``mmsdk`` command: the same verbs as the library, plus ``providers`` and ``eval``.

Errors print one line on stderr and exit 1 (2 for usage mistakes, such as an
``-o`` that cannot be written or a negative ``--max-cost``: checked before any
call). On a terminal, long local work shows the pipelines' own progress bars and
``eval`` a bar redrawn in place; on a pipe or a log there are no pipeline bars
and ``eval`` prints a plain line every 10 s at most. A known cost goes to
stderr (``cost: $0.04``), and into ``--json`` as ``cost`` and ``cached``.
``understand`` has no ``--verify-with``: the cross-check needs ``schema=``, a
pydantic model class, which a JSON Schema file does not map onto faithfully.
``mmsdk providers`` flags models that are deprecated or retired on today's date
(``MMSDK_TODAY`` sets it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import MMSDKError, ProviderUnavailableError

if TYPE_CHECKING:
    from PIL import Image

    from . import Policy, Router

__all__ = ["main"]


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _number(text: str, *, low: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < low or (value == low and not inclusive):
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
    return value


def _positive(text: str) -> float:
    return _number(text, low=0.0, inclusive=False)


def _dollars(text: str) -> float:
    return _number(text.removeprefix("$"), low=0.0, inclusive=True)


def _provider_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected PLUGIN:MODEL or PLUGIN, got an empty name")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmsdk", description="Multimodal AI, local or cloud.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def routing(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--max-cost", type=_dollars, metavar="USD",
                         help="skip providers whose estimated cost for a call is above USD, "
                              "and those whose price is unknown (Policy(max_cost_usd=USD))")
        sub.add_argument("--cache", metavar="FOLDER",
                         help="keep results of repeatable calls in FOLDER and answer from it")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-p", "--provider", action="append", metavar="PROVIDER",
                         help="PLUGIN:MODEL; repeat for a fallback list")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.add_argument("-O", "--option", action="append", type=_option, default=[],
                         metavar="KEY=VALUE", help="provider-specific option (JSON values)")
        routing(sub)

    gen = verbs.add_parser("generate", help="text to image")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", default="out.png",
                     help="image file to write: .png, .jpg, .webp, ... (n>1: numbered "
                          "out.png, out-1.png, ...)")
    gen.add_argument("--force", action="store_true", help="overwrite existing output files")
    gen.add_argument("--size", help="WxH, e.g. 1024x1024")
    gen.add_argument("--negative-prompt")
    gen.add_argument("--steps", type=int)
    gen.add_argument("--guidance", type=float)
    gen.add_argument("--seed", type=int)
    gen.add_argument("-n", type=int, default=1)
    gen.add_argument("--scheduler")
    gen.add_argument("--image", help="input image for img2img / inpainting")
    gen.add_argument("--strength", type=float)
    gen.add_argument("--mask")
    gen.add_argument("--control-image")
    gen.add_argument("--control-type")
    gen.add_argument("--control-scale", type=float)
    gen.add_argument("--reference-image")
    gen.add_argument("--reference-scale", type=float)
    gen.add_argument("--rerank-with", action="append", type=_provider_name, metavar="PROVIDER",
                     help="an embedder (local:clip) that orders the images best first by "
                          "CLIP score; repeat for a fallback list")
    common(gen)

    und = verbs.add_parser("understand", help="images or video + question to text")
    und.add_argument("images", nargs="*", metavar="IMAGE")
    und.add_argument("-q", "--question", required=True)
    und.add_argument("--video")
    und.add_argument("--frames", type=int)
    und.add_argument("--fps", type=_positive, metavar="N",
                     help="sample N frames per second of --video (with --frames: at most that many)")
    und.add_argument("--system")
    und.add_argument("--max-tokens", type=int)
    und.add_argument("--temperature", type=float)
    und.add_argument("--detail", choices=["low", "high", "auto"])
    und.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    common(und)

    cls = verbs.add_parser("classify", help="zero-shot scores for labels")
    cls.add_argument("images", nargs="+", metavar="IMAGE")
    cls.add_argument("-l", "--label", action="append", required=True, dest="labels")
    cls.add_argument("--multi-label", action="store_true")
    cls.add_argument("--template", help="label template with {} (default 'a photo of a {}.')")
    common(cls)

    sco = verbs.add_parser("score", help="CLIP score of each image against a prompt")
    sco.add_argument("images", nargs="+", metavar="IMAGE")
    sco.add_argument("--prompt", required=True, help="the text to score the images against")
    common(sco)

    emb = verbs.add_parser("embed", help="vectors for images and texts")
    emb.add_argument("--image", action="append", default=[], dest="images")
    emb.add_argument("--text", action="append", default=[], dest="texts")
    common(emb)

    ev = verbs.add_parser("eval", help="score providers on a folder of labelled images")
    ev.add_argument("folder", metavar="FOLDER",
                    help="one subfolder per label (pets/cat/*.png, pets/dog/*.png)")
    ev.add_argument("-p", "--provider", action="append", required=True, metavar="PROVIDER",
                    help="a provider to evaluate; repeat it to compare several")
    ev.add_argument("--task", choices=["classify", "understand"], default="classify")
    ev.add_argument("-q", "--question",
                    help="understand: the question; the expected answer is the subfolder name")
    ev.add_argument("--template", help="classify: label template with {}")
    ev.add_argument("--concurrency", type=int, default=4, help="calls in flight (default 4)")
    ev.add_argument("--out", metavar="FILE",
                    help="results file, appended as calls finish; run again with it to resume")
    ev.add_argument("--plot", metavar="IMAGE", help="also draw the report (.png, .svg, .pdf)")
    ev.add_argument("--json", action="store_true", help="the whole report as JSON")
    ev.add_argument("-O", "--option", action="append", type=_option, default=[],
                    metavar="KEY=VALUE", help="provider-specific option (JSON values)")
    routing(ev)

    prov = verbs.add_parser("providers", help="what is installed, and what works here")
    prov.add_argument("--json", action="store_true")
    return parser


def _meta(result: Any) -> dict[str, Any]:
    return {"provider": result.provider, "model": result.model,
            "usage": result.usage.model_dump(), "cost": result.usage.cost_usd,
            "cached": result.cached, "elapsed": round(result.elapsed, 4),
            "attempts": [a.model_dump() for a in result.attempts],
            "warnings": result.warnings}


class _UsageError(Exception):
    """A caller mistake found before any work: one line on stderr, exit code 2."""


def _check_directory(flag: str, directory: Path) -> None:
    """*directory*, where ``flag`` will write, exists and is writable (else a usage error)."""
    if not directory.is_dir():
        raise _UsageError(f"{flag}: directory {directory} does not exist; create it "
                          f"(mkdir -p {directory}) or choose another {flag.split()[0]}.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _UsageError(f"{flag}: directory {directory} is not writable; choose another "
                          f"{flag.split()[0]}.")


def _cache_folder(args: argparse.Namespace) -> str | None:
    """``--cache FOLDER``, checked before any call: a folder, or one that can be made."""
    if args.cache is None:
        return None
    folder = Path(args.cache).expanduser()
    if folder.exists() and not folder.is_dir():
        raise _UsageError(f"--cache {args.cache}: {folder} is a file; name a folder (it is "
                          "created if missing).")
    _check_directory(f"--cache {args.cache}", folder if folder.is_dir() else folder.parent)
    return str(folder)


def _policy(args: argparse.Namespace) -> Policy | None:
    from . import Policy

    return None if args.max_cost is None else Policy(max_cost_usd=args.max_cost)


def _router(args: argparse.Namespace, providers: Sequence[str] | None = None) -> Router:
    """The route of one command: its providers, ``--max-cost`` and ``--cache``."""
    from . import Router

    return Router(providers if providers is not None else args.provider, _policy(args),
                  cache=_cache_folder(args))


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars redraw in place: only on a terminal, never mixed into ``--json``."""
    return not getattr(args, "json", False) and sys.stderr.isatty()


def _money(cost: float) -> str:
    if 0 < cost < 5e-7:
        return f"${cost:.1e}"
    return "$" + f"{cost:.6f}".rstrip("0").rstrip(".")


def _report_cost(results: Sequence[Any]) -> None:
    """``cost: $0.04`` (``(cached)`` when answered from the cache) on stderr, if known."""
    costs = [result.usage.cost_usd for result in results]
    if not costs or None in costs:
        return
    cached = " (cached)" if all(result.cached for result in results) else ""
    print(f"cost: {_money(sum(costs))}{cached}", file=sys.stderr)


# Raster formats worth writing a generated image to, if this Pillow can write them.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".avif", ".gif", ".bmp", ".tif", ".tiff")


def _writable_formats() -> dict[str, str]:
    """Suffix -> Pillow format name, for the suffixes this Pillow can write."""
    from PIL import Image, features

    Image.init()
    known = Image.registered_extensions()
    formats = {suffix: known[suffix] for suffix in _IMAGE_SUFFIXES
               if known.get(suffix) in Image.SAVE}
    for suffix, feature in ((".webp", "webp"), (".avif", "avif")):
        if suffix in formats and not features.check(feature):
            del formats[suffix]
    return formats


def _numbered(output: Path, index: int) -> Path:
    return output if index == 0 else output.with_name(f"{output.stem}-{index}{output.suffix}")


def _output_paths(output: Path, count: int, force: bool) -> tuple[list[Path], str]:
    """The files ``generate`` will write and their Pillow format, checked before generating."""
    formats = _writable_formats()
    image_format = formats.get(output.suffix.lower())
    if image_format is None:
        shown = output.suffix or "no extension"
        raise _UsageError(f"-o {output}: {shown} is not an image format mmsdk can write; "
                          f"end the name with one of {', '.join(formats)} (e.g. -o out.png).")
    _check_directory(f"-o {output}", output.parent)
    paths = [_numbered(output, index) for index in range(max(count, 1))]
    for path in paths:
        if path.is_dir():
            raise _UsageError(f"-o {output}: {path} is a directory; name a file (e.g. "
                              f"-o {path / 'out.png'}).")
        if path.exists() and not force:
            raise _UsageError(f"-o {output}: {path} already exists; pass --force to overwrite "
                              "it or choose another -o.")
    return paths, image_format


def _save(image: Image.Image, path: Path, image_format: str, force: bool) -> None:
    if image_format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # JPEG has no alpha channel
    # "x": another process may have created the file since the check
    with path.open("wb" if force else "xb") as file:
        image.save(file, format=image_format)


def _generate(args: argparse.Namespace) -> int:
    output = Path(args.output)
    paths, image_format = _output_paths(output, args.n, args.force)
    result = _router(args).generate(
        args.prompt, size=args.size,
        negative_prompt=args.negative_prompt, steps=args.steps, guidance=args.guidance,
        seed=args.seed, n=args.n, scheduler=args.scheduler, image=args.image,
        strength=args.strength, mask=args.mask, control_image=args.control_image,
        control_type=args.control_type, control_scale=args.control_scale,
        reference_image=args.reference_image, reference_scale=args.reference_scale,
        options=dict(args.option) or None, rerank_with=args.rerank_with,
        progress=_progress(args))
    files: list[str] = []
    for index, image in enumerate(result.images):
        target = paths[index] if index < len(paths) else _numbered(output, index)
        _save(image, target, image_format, args.force)
        files.append(str(target))
    if args.json:
        print(json.dumps(_meta(result) | {"files": files, "scores": result.scores,
                                          "revised_prompt": result.revised_prompt}))
        return 0
    scores = result.scores or []
    for index, path in enumerate(files):  # best first with --rerank-with
        score = f" score {scores[index]:.2f}" if index < len(scores) else ""
        print(f"wrote {path}{score} ({result.provider}, {result.elapsed:.1f}s)")
    if result.revised_prompt:
        print(f"revised prompt: {result.revised_prompt}")
    _report_cost([result])
    return 0


def _understand(args: argparse.Namespace) -> int:
    if args.fps is not None and args.video is None:
        raise _UsageError(f"--fps {args.fps:g} samples frames of a video: give --video FILE too, "
                          "or drop --fps.")
    router = _router(args)
    kwargs: dict[str, Any] = dict(
        images=args.images or None, video=args.video, frames=args.frames, fps=args.fps,
        system=args.system, max_tokens=args.max_tokens, temperature=args.temperature,
        detail=args.detail, options=dict(args.option) or None, progress=_progress(args))
    if args.stream and not args.json:
        stream = router.understand(args.question, stream=True, **kwargs)
        for chunk in stream:
            print(chunk, end="", flush=True)
        print()
        _report_cost([stream.result])
        return 0
    result = router.understand(args.question, **kwargs)
    if args.json:
        print(json.dumps(_meta(result) | {"text": result.text,
                                          "sent": [s.model_dump() for s in result.sent]}))
    else:
        print(result.text)
        _report_cost([result])
    return 0


def _classify(args: argparse.Namespace) -> int:
    results = _router(args).classify(args.images, args.labels, multi_label=args.multi_label,
                                     template=args.template, options=dict(args.option) or None)
    if args.json:
        print(json.dumps([_meta(r) | {"image": image, "scores": r.scores, "top": r.top[0]}
                          for image, r in zip(args.images, results, strict=True)]))
        return 0
    for image, result in zip(args.images, results, strict=True):
        print(f"{image}:")
        for label, score in result.ranked:
            print(f"  {score:7.3f}  {label}")
    _report_cost(results)
    return 0


def _score(args: argparse.Namespace) -> int:
    # mmsdk.score's own default: a CLIP that runs here
    router = _router(args, args.provider or ["local:clip"])
    scores = router.score(args.images, args.prompt, options=dict(args.option) or None)
    if args.json:
        print(json.dumps([{"image": image, "score": score}
                          for image, score in zip(args.images, scores, strict=True)]))
        return 0
    for image, score in zip(args.images, scores, strict=True):
        print(f"{score:6.2f}  {image}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    result = _router(args).embed(images=args.images or None, texts=args.texts or None,
                                 options=dict(args.option) or None)
    images = result.image_vectors.tolist() if result.image_vectors is not None else []
    texts = result.text_vectors.tolist() if result.text_vectors is not None else []
    if args.json:
        print(json.dumps(_meta(result) | {"image_vectors": images, "text_vectors": texts}))
        return 0
    for name, vector in [*zip(args.images, images, strict=True),
                         *zip(args.texts, texts, strict=True)]:
        preview = ", ".join(f"{v:.3f}" for v in vector[:4])
        print(f"{name}: dim {len(vector)} [{preview}, ...]")
    _report_cost([result])
    return 0


def _providers(args: argparse.Namespace) -> int:
    from ._providers import providers

    statuses = providers()
    labels = [f"{s.name} (plugin)" if s.kind == "plugin" else s.name for s in statuses]
    if args.json:
        print(json.dumps([{"provider": label} | status.model_dump(mode="json")
                          for label, status in zip(labels, statuses, strict=True)]))
        return 0
    width = max([len(label) for label in labels] + [8])
    print(f"{'PROVIDER':<{width}}  {'CAPABILITIES':<34}  STATUS")
    for label, status in zip(labels, statuses, strict=True):
        state = "ready" if status.usable else f"unavailable: {status.reason}"
        capabilities = ",".join(c.value for c in status.capabilities) or "-"
        print(f"{label:<{width}}  {capabilities:<34}  {state}")
        if status.target:
            print(f"{'':<{width}}    = {status.target}")
        served = [m for m in status.models if m not in status.defaults.values()]
        if served and not status.target:  # a plugin listing what it serves (an endpoint)
            shown = ", ".join(status.models[:8]) + (" ..." if len(status.models) > 8 else "")
            print(f"{'':<{width}}    models: {shown}")
        if not status.usable and status.fix:
            print(f"{'':<{width}}    fix: {status.fix}")
        for note in status.warnings:
            print(f"{'':<{width}}    warning: {note}")
    return 0


class _PlainProgress:
    """``eval``'s progress off a terminal: a plain line now and then, never a redraw."""

    every = 10.0  # seconds between lines

    def __init__(self) -> None:
        self.began = self.shown = time.monotonic()
        self.done = 0

    def __call__(self, result: Any) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.shown >= self.every:
            self.shown = now
            print(f"eval: {self.done} calls finished in {now - self.began:.0f}s",
                  file=sys.stderr, flush=True)


def _eval(args: argparse.Namespace) -> int:
    import importlib.util

    from . import evaluate

    if args.concurrency < 1:
        raise _UsageError(f"--concurrency {args.concurrency}: give a whole number >= 1.")
    if args.plot is not None:  # checked before any call, as generate checks -o
        _check_directory(f"--plot {args.plot}", Path(args.plot).parent)
        if importlib.util.find_spec("matplotlib") is None:
            raise ProviderUnavailableError("--plot draws with matplotlib, which is not installed.",
                                           fix="pip install 'mmsdk[plot]'")
    # one router per provider, as evaluate makes them, carrying --max-cost and --cache
    routers = [_router(args, [name]) for name in args.provider]
    live = sys.stderr.isatty()
    try:
        report = evaluate(args.folder, providers=routers, task=args.task,
                          prompt=args.question, template=args.template,
                          concurrency=args.concurrency, resume=args.out,
                          options=dict(args.option) or None, progress=live,
                          on_result=None if live else _PlainProgress())
    except KeyboardInterrupt:
        hint = (f"finished calls are kept in {args.out}; run the same command again to resume"
                if args.out else "pass --out FILE next time to keep finished calls and resume")
        print(f"interrupted: {hint}", file=sys.stderr)
        return 130
    if args.json:
        print(report.model_dump_json())
    else:
        print(report.to_markdown(), end="")
    if args.plot is not None:
        written = report.plot(args.plot)
        print(f"wrote {written}", file=sys.stderr if args.json else sys.stdout)
    return 0


_VERBS = {"generate": _generate, "understand": _understand, "classify": _classify,
          "score": _score, "embed": _embed, "providers": _providers, "eval": _eval}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmsdk`` command."""
    args = _parser().parse_args(argv)
    try:
        return _VERBS[args.verb](args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MMSDKError as exc:
        first, *rest = str(exc).splitlines() or [""]
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr)
        for line in rest:
            print(f"  {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
