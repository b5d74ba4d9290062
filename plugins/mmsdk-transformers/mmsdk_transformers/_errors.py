"""The one place where torch / transformers / hub exceptions become mmsdk errors.

Loading failures mean the model cannot run here (:class:`ProviderUnavailableError`,
with the fix). While running, a ``ValueError`` is transformers or the processor
rejecting what it was given (an ``<image>`` token typed into the prompt, a
generation setting out of range): :class:`InvalidInputError`, never a reason to
fall back. Other failures while running are :class:`ProviderError` (routing
falls back to the next provider, without retrying the same one). mmsdk errors
raised by the plugin itself pass through unchanged.

The mapped error keeps the original as ``__cause__`` (a torch or transformers
traceback is what a bug report needs) unless a hub or HTTP exception is anywhere
in its chain: those hold the request, whose headers carry the HF token, so the
mapped error is then raised with no ``__cause__`` and no ``__context__``
(:func:`mmsdk.plugin.raise_mapped`). Messages are redacted either way.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager

from mmsdk.plugin import InvalidInputError, MMSDKError, ProviderError, ProviderUnavailableError, raise_mapped

from ._checkpoint import INSTALL

__all__ = ["mapped", "translate"]

_OOM_FIX = ("free GPU memory (mmsdk.unload()), pass options={'dtype': 'float16'} or "
            "options={'device_map': 'auto'} to offload layers to the CPU, or use a smaller model")


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _install_hint(exc: ImportError) -> str:
    """``pip install X`` for the package an ImportError names (transformers says which)."""
    said = re.search(r"pip install [`'\"]?([A-Za-z0-9_.\-\[\]]+)", str(exc))
    if said:
        return f"pip install {said.group(1)}"
    return f"pip install {exc.name}" if exc.name else INSTALL


def translate(exc: Exception, provider: str, *, loading: bool) -> MMSDKError:
    """The mmsdk error for *exc*, raised while loading (``loading=True``) or running."""
    names = _names(exc)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError):
        return ProviderUnavailableError(f"{provider} needs a package that is not installed: {exc}",
                                        provider=provider, fix=_install_hint(exc))
    if "OutOfMemoryError" in names or "out of memory" in str(exc).lower():
        return ProviderError(f"{provider} ran out of memory: {text}", provider=provider) \
            if not loading else ProviderUnavailableError(
                f"{provider} does not fit in memory here: {text}", provider=provider, fix=_OOM_FIX)
    if "GatedRepoError" in names:
        return ProviderUnavailableError(f"{provider}: the repository is gated: {exc}",
                                        provider=provider,
                                        fix="accept its terms on huggingface.co, then run "
                                            "`hf auth login` (or set HF_TOKEN)")
    if "RepositoryNotFoundError" in names:
        return ProviderUnavailableError(f"{provider}: no such repository (or it is private): {exc}",
                                        provider=provider,
                                        fix="check the repo id, or log in with `hf auth login`")
    if "TemplateError" in names:
        return ProviderError(f"{provider}'s chat template rejected the conversation: {exc}",
                             provider=provider)
    if loading:
        fix = "check that the folder or repo holds a complete transformers checkpoint"
        lowered = str(exc).lower()
        if "safetensors" in lowered:
            fix = ("use a checkpoint with .safetensors weights, or, if you trust its source, "
                   "allow pickled weights with options={'allow_pickle': True}")
        elif "does not recognize this architecture" in lowered or "unrecognized" in lowered:
            fix = "upgrade transformers: pip install -U transformers"
        elif "offline" in lowered or "connect" in lowered or "cached" in lowered:
            fix = "download it with `hf download REPO` where the network is reachable"
        elif importlib.util.find_spec("torchvision") is None and (
                "video_processor" in lowered or "torchvision" in lowered):
            # e.g. SmolVLM's processor cannot even be built without torchvision's video classes.
            fix = "this checkpoint's processor needs torchvision: pip install torchvision"
        return ProviderUnavailableError(f"{provider} could not be loaded: {text}", provider=provider,
                                        fix=fix)
    if isinstance(exc, ValueError):
        return InvalidInputError(f"{provider} rejected the input: {exc}", provider=provider)
    return ProviderError(f"{provider} failed: {text}", provider=provider)


@contextmanager
def mapped(provider: str, *, loading: bool = False) -> Iterator[None]:
    """Re-raise any non-mmsdk exception from the block as the mmsdk error for it."""
    try:
        yield
    except MMSDKError:
        raise
    except Exception as exc:
        raise_mapped(translate(exc, provider, loading=loading), exc)
