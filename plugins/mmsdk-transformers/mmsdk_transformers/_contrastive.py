"""Dual encoders (CLIP, SigLIP): zero-shot classification and embeddings in one space.

Classification is exactly the model card's recipe: the processor encodes the
label prompts and the images together, the model's ``logits_per_image`` are
turned into scores with a softmax over the labels, or with ``multi_label=True``
a sigmoid per label (independent scores; SigLIP was trained for exactly that,
CLIP's logits are only meaningful relative to each other). All images of a call
go through one batched forward pass (``options={"batch_size": N}`` caps it).
Texts longer than the model's text positions are truncated to them.

Bounds: the attempt's deadline covers waiting for the model and loading it; a
call queued behind a busy model fails with :class:`ProviderTimeoutError` when its
time is up, and a cancelled or timed-out call stops before its next batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmsdk.plugin import (
    ClassifyRequest,
    ClassifyResult,
    EmbedRequest,
    EmbedResult,
    InvalidInputError,
    Usage,
)

from ._base import TransformersModel, bounded
from ._errors import mapped
from ._kinds import Contrastive
from ._loading import Loaded

__all__ = ["ContrastiveModel"]

DEFAULT_BATCH_SIZE = 32


def _batch_size(options: Mapping[str, Any]) -> int:
    value = options.get("batch_size", DEFAULT_BATCH_SIZE)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"options['batch_size'] must be a positive integer, got {value!r}.")
    return value


def _text_kwargs(loaded: Loaded) -> dict[str, Any]:
    # SigLIP was trained on texts padded to max_length; CLIP pads to the longest label.
    padding = "max_length" if loaded.sigmoid else True
    kwargs: dict[str, Any] = {"padding": padding, "truncation": True}
    # Truncate to what the text tower takes even when the tokenizer's own limit is
    # larger or unset (a long label would otherwise fail inside the model).
    positions = getattr(getattr(loaded.model.config, "text_config", None),
                        "max_position_embeddings", None)
    tokenizer = getattr(loaded.processor, "tokenizer", None)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(positions, int):
        kwargs["max_length"] = min(positions, limit) if isinstance(limit, int) else positions
    return kwargs


def _features(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output with the projection."""
    tensor: torch.Tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor


def _unit(vectors: torch.Tensor) -> np.ndarray:
    vectors = vectors.float()
    vectors = vectors / vectors.norm(dim=-1, keepdim=True)
    array: np.ndarray = vectors.cpu().numpy().astype(np.float32, copy=False)
    return array


class ContrastiveModel(TransformersModel, Contrastive):
    """A CLIP-style checkpoint: ``classify`` and ``embed``."""

    task = "contrastive"

    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        """Score every label for every image; one result per image, in order."""
        request = bounded(request)
        with mapped(self.provider):
            batch = _batch_size(request.options)
            loaded = self.loaded(request.options, request)
            images = [prepared.image for prepared in request.images]
            prompts = request.prompts()
            sigmoid = request.multi_label  # the contract: softmax over labels unless multi-label
            rows: list[list[float]] = []
            with request.holding(loaded.lock, self.provider), torch.inference_mode():
                for start in range(0, len(images), batch):
                    request.raise_if_stopped(self.provider, "classifying")
                    inputs = loaded.processor(text=prompts, images=images[start:start + batch],
                                              return_tensors="pt", **_text_kwargs(loaded))
                    inputs = inputs.to(loaded.device, loaded.dtype)
                    logits = loaded.model(**inputs).logits_per_image.float()
                    scores = logits.sigmoid() if sigmoid else logits.softmax(dim=1)
                    rows += scores.cpu().tolist()
        model = self.checkpoint.name
        return [ClassifyResult(scores=dict(zip(request.labels, row, strict=True)), model=model,
                               usage=Usage(images=1)) for row in rows]

    def embed(self, request: EmbedRequest) -> EmbedResult:
        """Unit vectors for images and texts, in the model's shared space."""
        request = bounded(request)
        with mapped(self.provider):
            batch = _batch_size(request.options)
            loaded = self.loaded(request.options, request)
            images = [prepared.image for prepared in request.images]
            image_vectors = text_vectors = None
            with request.holding(loaded.lock, self.provider), torch.inference_mode():
                if images:
                    parts = []
                    for start in range(0, len(images), batch):
                        request.raise_if_stopped(self.provider, "embedding images")
                        inputs = loaded.processor(images=images[start:start + batch],
                                                  return_tensors="pt")
                        inputs = inputs.to(loaded.device, loaded.dtype)
                        parts.append(_features(loaded.model.get_image_features(**inputs)))
                    image_vectors = _unit(torch.cat(parts))
                if request.texts:
                    request.raise_if_stopped(self.provider, "embedding texts")
                    inputs = loaded.processor(text=request.texts, return_tensors="pt",
                                              **_text_kwargs(loaded)).to(loaded.device)
                    text_vectors = _unit(_features(loaded.model.get_text_features(**inputs)))
        return EmbedResult(image_vectors=image_vectors, text_vectors=text_vectors,
                           model=self.checkpoint.name, usage=Usage(images=len(images) or None))
