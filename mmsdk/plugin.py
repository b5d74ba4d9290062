"""What a plugin author imports: the only mmsdk module a plugin needs.

A plugin is a distribution with an entry point in the ``mmsdk`` group that
points at a module defining :data:`hookimpl` functions::

    # pyproject.toml
    [project.entry-points.mmsdk]
    acme = "mmsdk_acme"

    # mmsdk_acme.py
    from mmsdk.plugin import Capability, Feature, ModelInfo, ProviderSpec, Understand, hookimpl

    class AcmeModel(Understand):          # its mixins are what it can do
        def understand(self, request):
            ...

    @hookimpl
    def register_providers(register):
        register(ProviderSpec(
            name="acme",
            model_class=AcmeModel,        # built as AcmeModel(provider, info)
            describe=lambda model: ModelInfo(supports={Feature.SYSTEM}),
            default_models={Capability.UNDERSTAND: "acme-vision-1"},
        ))

Keep registration cheap: import SDKs, torch and models inside a ``factory``.
The author's guide is ``docs/plugins.md``.
"""

from ._clock import EndOfLife, ModelDeprecationWarning, ModelLifecycle, today
from ._cloud import (
    ClientCache,
    CloudSettings,
    Connection,
    DefaultModels,
    ErrorBoundary,
    PluginSettings,
    Translate,
    safe_fetch,
)
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
from ._hookspecs import hookimpl
from ._model import Classify, Embed, Generate, Model, StreamEvent, Understand, capabilities_of
from ._plugin_helpers import (
    classification_prompt,
    classification_schema,
    error_for_status,
    error_for_transport,
    first_env,
    host_reachable,
    missing_packages,
    parse_retry_after,
    raise_mapped,
    scores_from_answer,
)
from ._prepare import PreparedImage
from ._redact import add_secret, redact
from ._registry import ProviderSpec, register_plugin, unregister_plugin
from ._requests import ClassifyRequest, EmbedRequest, GenerateRequest, Request, UnderstandRequest
from ._types import (
    Availability,
    Capability,
    ClassifyResult,
    EmbedResult,
    Feature,
    GenerateResult,
    MediaLimits,
    ModelInfo,
    Price,
    UnderstandResult,
    Usage,
)
from ._video import VideoInput

__all__ = [
    "AllProvidersFailedError", "AuthenticationError", "Availability", "CancelledError",
    "Capability", "ClientCache", "CloudSettings", "Connection", "DefaultModels",
    "ErrorBoundary",
    "PluginSettings", "Translate", "safe_fetch",
    "CapabilityError", "CircuitOpenError", "Classify", "ClassifyRequest", "ClassifyResult",
    "ContentPolicyError",
    "Embed", "EmbedRequest", "EmbedResult", "EndOfLife", "Feature", "Generate",
    "GenerateRequest",
    "GenerateResult",
    "InvalidInputError", "MMSDKError", "MediaLimits", "Model", "ModelDeprecationWarning",
    "ModelInfo", "ModelLifecycle",
    "OutputValidationError", "PreparedImage", "Price", "ProviderConnectionError", "ProviderError",
    "ProviderServerError", "ProviderSpec", "ProviderTimeoutError", "ProviderUnavailableError",
    "RateLimitError", "Request", "StreamEvent", "Understand", "UnderstandRequest",
    "UnderstandResult", "UnknownProviderError", "Usage", "VideoInput", "add_secret",
    "capabilities_of", "classification_prompt", "classification_schema", "error_for_status",
    "error_for_transport",
    "first_env", "hookimpl", "host_reachable", "missing_packages", "parse_retry_after",
    "raise_mapped", "redact",
    "register_plugin", "scores_from_answer", "today", "unregister_plugin",
]
