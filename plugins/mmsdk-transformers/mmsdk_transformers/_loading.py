"""Loading a checkpoint: device and dtype choice, safe weights, the model and its processor.

Defaults: CUDA runs float16 (bfloat16 for VLMs where the GPU supports it), MPS
float16, CPU float32. ``options={"device": ..., "dtype": ...}`` override them;
``"device_map"`` (with accelerate) spreads a big VLM over GPUs and CPU, and
``"offload_folder"`` lets it spill to disk. Weights load from safetensors only
unless ``options={"allow_pickle": True}`` says the checkpoint's source is trusted.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmsdk.plugin import CapabilityError, InvalidInputError, ProviderUnavailableError

from ._checkpoint import CONTRASTIVE_TYPES, SIGMOID_TYPES, Checkpoint, Task, ensure_fetchable
from ._errors import mapped

__all__ = ["LOAD_OPTIONS", "LoadOptions", "Loaded", "load_checkpoint"]

LOAD_OPTIONS = frozenset({"device", "dtype", "device_map", "offload_folder", "allow_pickle"})
"""``options={...}`` keys that change how (and so which copy of) a checkpoint is loaded."""

_DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "auto": "auto",
}


def _text_option(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is None or isinstance(value, str):
        return value
    raise InvalidInputError(f"options[{name!r}] must be a string, got {type(value).__name__}.")


@dataclass(frozen=True)
class LoadOptions:
    """The load-related ``options`` of one call, validated. Hashable: part of the cache key.

    Attributes:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``None`` (best available).
        dtype: ``"float32"``, ``"float16"``, ``"bfloat16"``, ``"auto"`` (the
            checkpoint's own) or ``None`` (the device's default).
        device_map: accelerate's placement (``"auto"``, ``"balanced"``, ...).
        offload_folder: where ``device_map`` may offload weights to disk.
        allow_pickle: also accept ``.bin`` (pickle) weights.
    """

    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    offload_folder: str | None = None
    allow_pickle: bool = False

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> LoadOptions:
        """Validate the load keys of *options* (others are ignored here)."""
        dtype = _text_option(options, "dtype")
        if dtype is not None and dtype.lower() not in _DTYPE_NAMES:
            raise InvalidInputError(f"options['dtype'] must be one of {sorted(_DTYPE_NAMES)}, "
                                    f"got {dtype!r}.")
        allow_pickle = options.get("allow_pickle", False)
        if not isinstance(allow_pickle, bool):
            raise InvalidInputError("options['allow_pickle'] must be True or False.")
        return cls(device=_text_option(options, "device"),
                   dtype=_DTYPE_NAMES[dtype.lower()] if dtype else None,
                   device_map=_text_option(options, "device_map"),
                   offload_folder=_text_option(options, "offload_folder"),
                   allow_pickle=allow_pickle)

    def resolved(self, task: Task, provider: str) -> LoadOptions:
        """With ``device`` and ``dtype`` filled in for this machine (imports torch)."""
        device = resolve_device(self.device, provider)
        dtype = self.dtype or default_dtype(device, task)
        return LoadOptions(device, dtype, self.device_map, self.offload_folder, self.allow_pickle)


def resolve_device(requested: str | None, provider: str) -> str:
    """The torch device to run on: *requested*, else CUDA, MPS, CPU in that order."""
    import torch

    if requested in (None, "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise InvalidInputError(f"options['device'] must name a torch device such as 'cpu', "
                                f"'cuda', 'cuda:1' or 'mps'; got {requested!r}.") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}.get(device.type, True)
    if not available:
        raise ProviderUnavailableError(
            f"{provider}: device {requested!r} is not available in this torch build.",
            provider=provider, fix="install a torch build for that device, or pass another "
                                   "options['device'] (e.g. 'cpu')")
    return str(device)


def default_dtype(device: str, task: Task) -> str:
    """float16 on GPUs (bfloat16 for VLMs where supported), float32 on CPU."""
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":
        if task == "vlm" and torch.cuda.is_bf16_supported():
            return "bfloat16"
        return "float16"
    if kind == "mps":
        return "float16"
    return "float32"


@dataclass
class Loaded:
    """A model and its processor, ready to run.

    ``lock`` serialises every use of the pair: fast tokenizers raise "Already
    borrowed" when two threads use one at once, generate keeps per-call state
    on the model, and one forward pass at a time keeps peak memory predictable
    (the GPU is saturated by one call anyway).
    """

    model: Any
    processor: Any
    device: Any
    dtype: Any
    model_type: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sigmoid(self) -> bool:
        """Whether this dual encoder scores labels with sigmoids (SigLIP) rather than a softmax."""
        return self.model_type in SIGMOID_TYPES


def _check_task(config: Any, task: Task, provider: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = config.model_type
    if task == "contrastive" and model_type not in CONTRASTIVE_TYPES:
        raise CapabilityError(f"{provider} is a {model_type!r} checkpoint, not a dual encoder "
                              f"({', '.join(sorted(CONTRASTIVE_TYPES))}): it cannot classify or "
                              "embed.", provider=provider)
    if task == "vlm" and model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        kind = "dual encoder" if model_type in CONTRASTIVE_TYPES else f"{model_type!r} checkpoint"
        raise CapabilityError(f"{provider} is a {kind}, not an image-text-to-text model: it "
                              "cannot understand.", provider=provider)


def load_checkpoint(checkpoint: Checkpoint, task: Task, options: LoadOptions,
                    provider: str) -> Loaded:
    """Load the model and processor of *checkpoint* for *task* with resolved *options*."""
    ensure_fetchable(checkpoint, provider)
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

    with mapped(provider, loading=True):
        config = AutoConfig.from_pretrained(checkpoint.source)
        _check_task(config, task, provider)
        dtype: Any = options.dtype if options.dtype == "auto" else getattr(torch, options.dtype or "")
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": None if options.allow_pickle
                                  else True}
        if options.device_map is not None:
            kwargs["device_map"] = options.device_map
            if options.offload_folder:
                kwargs["offload_folder"] = options.offload_folder
        model_class = AutoModel if task == "contrastive" else AutoModelForImageTextToText
        model: Any = model_class.from_pretrained(checkpoint.source, config=config, **kwargs)
        if options.device_map is None:
            model = model.to(options.device)
        model.eval()
        processor = AutoProcessor.from_pretrained(checkpoint.source)
    return Loaded(model=model, processor=processor, device=model.device, dtype=model.dtype,
                  model_type=config.model_type)
