"""What each kind of checkpoint can do, declared once as light model classes.

The classes that run checkpoints (``ContrastiveModel``, ``VisionLanguageModel``)
import torch and transformers, so registration cannot import them; they
subclass these, whose mixins are the capabilities mmsdk routes on.
"""

from __future__ import annotations

from abc import ABC

from mmsdk.plugin import Classify, Embed, Understand

__all__ = ["Contrastive", "Unfound", "VisionLanguage"]


class Contrastive(Classify, Embed, ABC):
    """CLIP and SigLIP checkpoints: zero-shot classification and embeddings."""


class VisionLanguage(Understand, ABC):
    """Image-text-to-text checkpoints (LLaVA, Qwen2-VL, SmolVLM, ...)."""


class Unfound(Classify, Embed, Understand, ABC):
    """A checkpoint nowhere to be found: it claims every capability, so that a call
    reaches the availability check and reports what is missing and how to get it,
    rather than a misleading "cannot do that". Never built."""
