"""mmsdk provider ``transformers``: Hugging Face checkpoints run in process.

``transformers:MODEL`` takes a hub repo id or a local folder written by
``save_pretrained``::

    mmsdk.classify("cat.jpg", labels=["cat", "dog"], provider="transformers:/models/clip")
    mmsdk.embed(images=["a.jpg"], texts=["a cat"], provider="local:clip")
    mmsdk.understand("Describe", images=["x.png"], provider="local:llava", stream=True)

What a checkpoint can do comes from its ``config.json``: CLIP and SigLIP
(``model_type`` clip / siglip / siglip2) classify and embed; image-text-to-text
models (LLaVA 1.5, LLaVA-Next, Qwen2-VL, SmolVLM, ...) understand. Aliases:
``local:clip``, ``local:clip-small``, ``local:siglip``, ``local:llava``,
``local:llava-1.5``, ``local:llava-small``, ``local:smolvlm``. A bare
``transformers`` means CLIP ViT-L/14 and LLaVA-Next 7B on a CUDA GPU, CLIP
ViT-B/32 and LLaVA-Interleave 0.5B otherwise.

Registering imports neither torch nor transformers; they load on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from mmsdk.plugin import Feature, Model, ModelInfo, ProviderSpec, hookimpl

from ._checkpoint import check, guess_task, locate
from ._kinds import Contrastive, Unfound, VisionLanguage
from ._loading import LOAD_OPTIONS
from ._presets import ALIASES, KNOWN_TASKS, default_models
from ._prompting import GENERATION_OPTIONS

__all__ = ["Contrastive", "VisionLanguage", "describe", "make_model", "model_class",
           "register_aliases", "register_providers"]

NAME = "transformers"


_CONTRASTIVE_INFO = ModelInfo(
    supports={Feature.MULTI_LABEL, Feature.TEMPLATE},
    options=frozenset({"device", "dtype", "allow_pickle", "batch_size"}),
    local=True, cost_hint=0.0)
_VLM_INFO = ModelInfo(
    supports={Feature.SYSTEM, Feature.MAX_TOKENS, Feature.TEMPERATURE, Feature.SCHEMA,
              Feature.STREAM},
    options=LOAD_OPTIONS | GENERATION_OPTIONS,
    local=True, cost_hint=0.0, speed_hint=2.0)
_UNKNOWN_INFO = ModelInfo(
    supports=_CONTRASTIVE_INFO.supports | _VLM_INFO.supports,
    options=_CONTRASTIVE_INFO.options | _VLM_INFO.options, local=True, cost_hint=0.0)


def _task(model: str) -> str | None:
    # a preset's task is known without reading its config (registration reads nothing)
    return KNOWN_TASKS.get(model) or guess_task(locate(model))


def model_class(model: str) -> type[Model]:
    """Which class serves ``transformers:MODEL``: read from its config on disk (no import)."""
    task = _task(model)
    if task is None:
        return Unfound
    return Contrastive if task == "contrastive" else VisionLanguage


def describe(model: str) -> ModelInfo:
    """What ``transformers:MODEL`` honours, from its config on disk (no import, no request)."""
    task = _task(model)
    if task is None:
        return _UNKNOWN_INFO
    return _CONTRASTIVE_INFO if task == "contrastive" else _VLM_INFO


def make_model(model: str, provider: str, info: ModelInfo) -> Model:
    """The model object for ``transformers:MODEL``; weights load on its first call."""
    checkpoint = locate(model)
    if guess_task(checkpoint) == "contrastive":
        from ._contrastive import ContrastiveModel

        return ContrastiveModel(provider, info, checkpoint)
    from ._vlm import VisionLanguageModel

    return VisionLanguageModel(provider, info, checkpoint)


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register the ``transformers`` provider."""
    register(ProviderSpec(
        name=NAME,
        model_class=model_class,
        factory=make_model,
        describe=describe,
        default_models=default_models(),
        check=check,
        description="Hugging Face transformers in process: CLIP/SigLIP classify and embed, "
                    "LLaVA-style VLMs understand",
    ))


@hookimpl
def register_aliases(register: Callable[[str, str], None]) -> None:
    """Register the ``local:*`` presets served by transformers."""
    for alias, repo_id in ALIASES.items():
        register(alias, f"{NAME}:{repo_id}")
