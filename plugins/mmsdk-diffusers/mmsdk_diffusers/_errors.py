"""The plugin's one error boundary: torch, diffusers and hub errors to the mmsdk tree.

Mapping (first match wins)::

    mmsdk errors                       unchanged
    Stopped (step callback)            GenerationCancelledError / ProviderTimeoutError
    ImportError                        ProviderUnavailableError (pip install ...)
    hub: gated repo                    ProviderUnavailableError (accept licence, log in)
    hub: not found / not cached        ProviderUnavailableError (download or point at a folder)
    hub: HTTP status                   error_for_status(...)
    httpx / connection / timeout       error_for_transport(...)
    CUDA / MPS out of memory           ProviderUnavailableError (smaller size, cpu_offload)
    OSError while loading              ProviderUnavailableError (download, or allow_pickle)
    ValueError                         InvalidInputError (the pipeline rejected an argument)
    anything else                      ProviderError

The mapped error keeps the original as ``__cause__`` (a torch or diffusers
traceback is what a bug report needs) unless a hub or HTTP exception is anywhere
in its chain: those hold the request, whose headers carry the HF token, so the
mapped error is then raised with no ``__cause__`` and no ``__context__``
(:func:`mmsdk.plugin.raise_mapped`). Messages are redacted either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mmsdk.plugin import (
    CancelledError,
    InvalidInputError,
    MMSDKError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    error_for_status,
    error_for_transport,
    raise_mapped,
)

from ._source import INSTALL, Source, download_fix, has_pickle_weights

__all__ = ["GenerationCancelledError", "Stopped", "mapped_errors"]

_PACKAGE_FIX = {"cv2": "pip install opencv-python-headless",
                "accelerate": "pip install accelerate",
                "peft": "pip install peft"}


class GenerationCancelledError(CancelledError):
    """A generation was cancelled: by routing (``request.cancel``: a cancelled
    ``await``, a lost hedge) or through ``options={"cancel_event": event}``.

    A :class:`mmsdk.CancelledError`, so routing neither retries it nor falls
    back to another provider: the caller asked to stop.
    """


class Stopped(Exception):
    """Raised inside the step callback to leave the denoising loop at once."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _translate(exc: Exception, provider: str, source: Source, loading: bool) -> MMSDKError:
    names = _names(exc)
    if isinstance(exc, Stopped):
        if exc.reason == "timeout":
            return ProviderTimeoutError(f"{provider} ran past its timeout at step {exc.step}; "
                                        "raise Policy(timeout=...) or ask for fewer steps.",
                                        provider=provider)
        return GenerationCancelledError(f"{provider}: generation cancelled at step {exc.step}.",
                                        provider=provider)
    if isinstance(exc, ImportError):
        module = (exc.name or "").split(".")[0]
        fix = _PACKAGE_FIX.get(module, f"pip install {INSTALL}")
        return ProviderUnavailableError(f"{provider} needs a package that is not installed "
                                        f"({module or exc}).", provider=provider, fix=fix)
    if "GatedRepoError" in names:
        return ProviderUnavailableError(
            f"{source.name} is a gated repository.", provider=provider,
            fix=f"accept its licence at https://huggingface.co/{source.name}, then run "
                "`huggingface-cli login` (or set HF_TOKEN)")
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError"}:
        return ProviderUnavailableError(f"{provider}: the hub has no such repository or "
                                        f"revision ({exc}).", provider=provider,
                                        fix="check the repo id, or log in if it is private")
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "EntryNotFoundError"}:
        return ProviderUnavailableError(f"{provider}: weights are not on this machine ({exc}).",
                                        provider=provider, fix=download_fix(source))
    if "HfHubHTTPError" in names:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        return error_for_status(status, str(exc), provider=provider)
    transport = error_for_transport(exc, provider=provider)
    if transport is not None:
        return transport
    if "OutOfMemoryError" in names or "out of memory" in str(exc).lower():
        return ProviderUnavailableError(
            f"{provider} ran out of accelerator memory.", provider=provider,
            fix="ask for a smaller width/height or n, use options={'cpu_offload': True}, "
                "or close other models (mmsdk.unload())")
    if loading and isinstance(exc, OSError):
        text = str(exc)
        fix = download_fix(source)
        if "safetensors" in text:
            pickle = ("if you trust this checkpoint, allow its pickle (.bin/.ckpt) weights with "
                      "options={'allow_pickle': True}")
            if has_pickle_weights(source):
                fix = pickle
            elif not source.local:  # the hub copy may have pickle weights only
                fix = f"{fix}; if it ships only pickle weights, {pickle}"
        return ProviderUnavailableError(f"{provider} could not load {source.name}: {text}",
                                        provider=provider, fix=fix)
    if isinstance(exc, ValueError):
        return InvalidInputError(f"{provider} rejected the arguments: {exc}", provider=provider)
    return ProviderError(f"{provider} failed: {type(exc).__name__}: {exc}", provider=provider)


@contextmanager
def mapped_errors(provider: str, source: Source, *, loading: bool = False) -> Iterator[None]:
    """Re-raise anything from torch / diffusers / the hub as an mmsdk error.

    Args:
        provider: the provider string, for messages.
        source: the checkpoint, for download instructions.
        loading: the block loads weights (an ``OSError`` means missing weights).
    """
    try:
        yield
    except MMSDKError:
        raise
    except Exception as exc:
        raise_mapped(_translate(exc, provider, source, loading), exc)
