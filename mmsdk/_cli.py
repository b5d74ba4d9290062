"""The ``mmsdk`` command: the same verbs as the library, plus ``providers`` and ``eval``.

Errors print one line on stderr and exit 1 (2 for usage mistakes, such as an
``-o`` that cannot be written: checked before anything is generated). Long
local work shows the pipelines' own progress bars. ``mmsdk providers`` flags
models that are deprecated or retired on today's date (``MMSDK_TODAY`` sets it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import MMSDKError, ProviderUnavailableError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["main"]


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmsdk", description="Multimodal AI, local or cloud.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-p", "--provider", action="append", metavar="PROVIDER",
                         help="PLUGIN:MODEL; repeat for a fallback list")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.add_argument("-O", "--option", action="append", type=_option, default=[],
                         metavar="KEY=VALUE", help="provider-specific option (JSON values)")

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
    common(gen)

    und = verbs.add_parser("understand", help="images or video + question to text")
    und.add_argument("images", nargs="*", metavar="IMAGE")
    und.add_argument("-q", "--question", required=True)
    und.add_argument("--video")
    und.add_argument("--frames", type=int)
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

    prov = verbs.add_parser("providers", help="what is installed, and what works here")
    prov.add_argument("--json", action="store_true")
    return parser


def _provider(args: argparse.Namespace) -> Any:
    return args.provider if args.provider and len(args.provider) > 1 else \
        (args.provider[0] if args.provider else None)


def _meta(result: Any) -> dict[str, Any]:
    return {"provider": result.provider, "model": result.model,
            "usage": result.usage.model_dump(), "elapsed": round(result.elapsed, 4),
            "attempts": [a.model_dump() for a in result.attempts],
            "warnings": result.warnings}


class _UsageError(Exception):
    """A caller mistake found before any work: one line on stderr, exit code 2."""


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
    directory = output.parent
    if not directory.is_dir():
        raise _UsageError(f"-o {output}: directory {directory} does not exist; create it "
                          f"(mkdir -p {directory}) or choose another -o.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _UsageError(f"-o {output}: directory {directory} is not writable; choose "
                          "another -o.")
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
    from ._api import generate

    output = Path(args.output)
    paths, image_format = _output_paths(output, args.n, args.force)
    result = generate(
        args.prompt, provider=_provider(args), size=args.size,
        negative_prompt=args.negative_prompt, steps=args.steps, guidance=args.guidance,
        seed=args.seed, n=args.n, scheduler=args.scheduler, image=args.image,
        strength=args.strength, mask=args.mask, control_image=args.control_image,
        control_type=args.control_type, control_scale=args.control_scale,
        reference_image=args.reference_image, reference_scale=args.reference_scale,
        options=dict(args.option) or None, progress=not args.json)
    files: list[str] = []
    for index, image in enumerate(result.images):
        target = paths[index] if index < len(paths) else _numbered(output, index)
        _save(image, target, image_format, args.force)
        files.append(str(target))
    if args.json:
        print(json.dumps(_meta(result) | {"files": files,
                                          "revised_prompt": result.revised_prompt}))
    else:
        for path in files:
            print(f"wrote {path} ({result.provider}, {result.elapsed:.1f}s)")
        if result.revised_prompt:
            print(f"revised prompt: {result.revised_prompt}")
    return 0


def _understand(args: argparse.Namespace) -> int:
    from ._api import understand

    kwargs = dict(images=args.images or None, video=args.video, frames=args.frames,
                  provider=_provider(args), system=args.system, max_tokens=args.max_tokens,
                  temperature=args.temperature, detail=args.detail,
                  options=dict(args.option) or None, progress=not args.json)
    if args.stream and not args.json:
        stream = understand(args.question, stream=True, **kwargs)
        for chunk in stream:
            print(chunk, end="", flush=True)
        print()
        return 0
    result = understand(args.question, **kwargs)
    if args.json:
        print(json.dumps(_meta(result) | {"text": result.text,
                                          "sent": [s.model_dump() for s in result.sent]}))
    else:
        print(result.text)
    return 0


def _classify(args: argparse.Namespace) -> int:
    from ._api import classify

    results = classify(args.images, args.labels, provider=_provider(args),
                       multi_label=args.multi_label, template=args.template,
                       options=dict(args.option) or None)
    if args.json:
        print(json.dumps([_meta(r) | {"image": image, "scores": r.scores, "top": r.top[0]}
                          for image, r in zip(args.images, results, strict=True)]))
        return 0
    for image, result in zip(args.images, results, strict=True):
        print(f"{image}:")
        for label, score in result.ranked:
            print(f"  {score:7.3f}  {label}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from ._api import embed

    result = embed(images=args.images or None, texts=args.texts or None,
                   provider=_provider(args), options=dict(args.option) or None)
    images = result.image_vectors.tolist() if result.image_vectors is not None else []
    texts = result.text_vectors.tolist() if result.text_vectors is not None else []
    if args.json:
        print(json.dumps(_meta(result) | {"image_vectors": images, "text_vectors": texts}))
        return 0
    for name, vector in [*zip(args.images, images, strict=True),
                         *zip(args.texts, texts, strict=True)]:
        preview = ", ".join(f"{v:.3f}" for v in vector[:4])
        print(f"{name}: dim {len(vector)} [{preview}, ...]")
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
        if served:  # a plugin that lists the models it serves (an endpoint, a hub)
            shown = ", ".join(status.models[:8]) + (" ..." if len(status.models) > 8 else "")
            print(f"{'':<{width}}    models: {shown}")
        if not status.usable and status.fix:
            print(f"{'':<{width}}    fix: {status.fix}")
        for note in status.warnings:
            print(f"{'':<{width}}    warning: {note}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import importlib.util

    from ._eval import evaluate

    if args.concurrency < 1:
        raise _UsageError(f"--concurrency {args.concurrency}: give a whole number >= 1.")
    if args.plot is not None:  # checked before any call, as generate checks -o
        plot = Path(args.plot)
        if not plot.parent.is_dir():
            raise _UsageError(f"--plot {plot}: directory {plot.parent} does not exist; create "
                              "it or choose another path.")
        if importlib.util.find_spec("matplotlib") is None:
            raise ProviderUnavailableError("--plot draws with matplotlib, which is not installed.",
                                           fix="pip install 'mmsdk[plot]'")
    try:
        report = evaluate(args.folder, providers=args.provider, task=args.task,
                          prompt=args.question, template=args.template,
                          concurrency=args.concurrency, resume=args.out,
                          options=dict(args.option) or None, progress=True)
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
          "embed": _embed, "providers": _providers, "eval": _eval}


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
