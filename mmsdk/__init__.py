"""mmsdk: one API for image generation, visual understanding, classification and embeddings.

Example:
    >>> import mmsdk
    >>> answer = mmsdk.understand("What is in this picture?", images=["photo.jpg"],
    ...                           provider=["openai:gpt-5.5", "local:llava"])
    >>> answer.text

Importing mmsdk is nearly free: names below load on first use, and no torch,
diffusers, transformers or cloud SDK is imported until a provider needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AllProvidersFailedError,
    AuthenticationError,
    CancelledError,
    CapabilityError,
    CircuitOpenError,
    ContentPolicyError,
    InvalidInputError,
    MMSDKError,
    OutputValidationError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    UnknownProviderError,
)

__version__ = "0.1.0"

_LAZY = {
    "generate": "_api", "agenerate": "_api", "understand": "_api", "aunderstand": "_api",
    "classify": "_api", "aclassify": "_api", "embed": "_api", "aembed": "_api",
    "unload": "_api", "aunload": "_api", "Router": "_router", "health": "_api",
    "preload": "_api", "apreload": "_api", "ImageInput": "_arguments",
    "score": "_api", "ascore": "_api",
    "providers": "_providers", "ProviderStatus": "_providers",
    "reset_health": "_health", "ProviderHealth": "_health",
    "Policy": "_policy", "ModelDeprecationWarning": "_clock", "Cache": "_cache",
    "configure": "_settings", "Settings": "_settings",
    "TextStream": "_stream", "AsyncTextStream": "_stream",
    "Attempt": "_types", "Capability": "_types", "ClassifyResult": "_types", "Feature": "_types",
    "EmbedResult": "_types", "GenerateResult": "_types", "UnderstandResult": "_types",
    "Usage": "_types", "SentImage": "_types", "Verification": "_types", "Price": "_types",
    "evaluate": "_eval", "aevaluate": "_eval", "EvalReport": "_eval",
}

__all__ = [
    "AllProvidersFailedError", "AsyncTextStream", "Attempt", "AuthenticationError",
    "Cache", "CancelledError", "Capability", "CapabilityError", "CircuitOpenError", "ClassifyResult",
    "ContentPolicyError", "EmbedResult", "Feature", "GenerateResult", "ImageInput", "InvalidInputError",
    "MMSDKError", "ModelDeprecationWarning", "OutputValidationError", "Policy",
    "ProviderConnectionError", "ProviderError", "ProviderHealth", "ProviderServerError",
    "Price", "ProviderStatus", "ProviderTimeoutError", "ProviderUnavailableError", "RateLimitError",
    "Router", "SentImage", "Settings", "TextStream", "UnderstandResult", "UnknownProviderError",
    "Usage", "Verification", "__version__", "aclassify", "aembed", "agenerate", "apreload", "aunderstand",
    "aunload", "classify", "configure", "embed", "generate", "health", "preload", "providers",
    "reset_health", "understand", "unload",
    "ascore", "score",
    "EvalReport", "aevaluate", "evaluate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mmsdk.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from ._api import (
        aclassify,
        aembed,
        agenerate,
        apreload,
        ascore,
        aunderstand,
        aunload,
        classify,
        embed,
        generate,
        health,
        preload,
        score,
        understand,
        unload,
    )
    from ._arguments import ImageInput
    from ._cache import Cache
    from ._clock import ModelDeprecationWarning
    from ._eval import EvalReport, aevaluate, evaluate
    from ._health import ProviderHealth, reset_health
    from ._policy import Policy
    from ._providers import ProviderStatus, providers
    from ._router import Router
    from ._settings import Settings, configure
    from ._stream import AsyncTextStream, TextStream
    from ._types import (
        Attempt,
        Capability,
        ClassifyResult,
        EmbedResult,
        Feature,
        GenerateResult,
        Price,
        SentImage,
        UnderstandResult,
        Usage,
        Verification,
    )
