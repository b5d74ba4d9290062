"""The ``mmsdk`` command: the same verbs as the library, plus ``providers``.

Errors print one line on stderr and exit 1 (2 for usage mistakes). Long local
work shows the pipelines' own progress bars.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import MMSDKError

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
    gen.add_argument("-o", "--output", default="out.png", help="file to write (n>1: numbered)")
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


def _generate(args: argparse.Namespace) -> int:
    from ._api import generate

    result = generate(
        args.prompt, provider=_provider(args), size=args.size,
        negative_prompt=args.negative_prompt, steps=args.steps, guidance=args.guidance,
        seed=args.seed, n=args.n, scheduler=args.scheduler, image=args.image,
        strength=args.strength, mask=args.mask, control_image=args.control_image,
        control_type=args.control_type, control_scale=args.control_scale,
        reference_image=args.reference_image, reference_scale=args.reference_scale,
        options=dict(args.option) or None, progress=not args.json)
    output = Path(args.output)
    files: list[str] = []
    for index, image in enumerate(result.images):
        target = output if index == 0 else output.with_name(f"{output.stem}-{index}{output.suffix}")
        image.save(target)
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
    from ._registry import describe_all, get_registry

    rows = describe_all(get_registry())
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max([len(r["provider"]) for r in rows] + [8])
    print(f"{'PROVIDER':<{width}}  {'CAPABILITIES':<34}  STATUS")
    for row in rows:
        status = "ready" if row["usable"] else f"unavailable: {row['reason']}"
        capabilities = ",".join(row["capabilities"]) or "-"
        print(f"{row['provider']:<{width}}  {capabilities:<34}  {status}")
        if row.get("target"):
            print(f"{'':<{width}}    = {row['target']}")
        if not row["usable"] and row.get("fix"):
            print(f"{'':<{width}}    fix: {row['fix']}")
    return 0


_VERBS = {"generate": _generate, "understand": _understand, "classify": _classify,
          "embed": _embed, "providers": _providers}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmsdk`` command."""
    args = _parser().parse_args(argv)
    try:
        return _VERBS[args.verb](args)
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
