"""What a plugin registers: :class:`ProviderSpec`, and the checks mmsdk makes on it.

Each fact is declared once: capabilities by the model class's mixins, the
parameters a model honours by ``ModelInfo.supports`` (:class:`Feature` s),
the provider string and full ``ModelInfo`` built here and handed to the
factory. A declaration mistake is refused at registration (:func:`validate`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ._errors import ProviderUnavailableError
from ._model import Model, capabilities_of
from ._types import Availability, Capability, ModelInfo

__all__ = ["ModelClass", "ProviderSpec", "listed", "model_info", "validate"]

logger = logging.getLogger("mmsdk")


def _always_available(model: str) -> Availability:
    return Availability.yes()


def _no_details(model: str) -> ModelInfo:
    return ModelInfo()


ModelClass = type[Model]
"""A :class:`Model` subclass: its mixins are what the models it serves can do."""


@dataclass(frozen=True)
class ProviderSpec:
    """A provider, as a plugin registers it. Nothing heavy is imported to build one.

    Each fact is declared once: what a model can do comes from its class's
    mixins (:class:`Generate`, :class:`Understand`, :class:`Classify`,
    :class:`Embed`); the provider string (``NAME:MODEL``) and the full
    :class:`ModelInfo` are built by mmsdk and handed to the factory.

    Attributes:
        name: the part before ``:`` in provider strings.
        model_class: the :class:`Model` subclass serving every model, or
            ``model_class(model)`` returning the one serving *model* (cheap: no
            SDK or torch import; a class whose module imports one can be
            declared as a light abstract base in the registration module that
            the real class subclasses).
        describe: ``describe(model)`` -> the model's :class:`ModelInfo` without
            ``capabilities`` (supported :class:`Feature` s, options, limits,
            price, ...); cheap. Default: an empty one.
        factory: ``factory(model, provider, info)`` -> the :class:`Model`
            object (heavy imports go here); it must implement every capability
            of the declared class (subclassing it is the simple way; it may
            implement more, as one class serving several kinds of models does:
            routing follows the declared class). Default:
            ``model_class(model)(provider, info)``.
        default_models: the model a bare ``name`` means, per capability; each
            one's class must offer that capability (checked at registration).
            A mapping may be live (read at call time, e.g. from settings).
        list_models: ``list_models()`` -> the models this provider serves, for
            a plugin that serves many (an endpoint's ``/v1/models``, hub
            repos); shown by ``mmsdk providers``. May make a bounded request.
        check: ``check(model)`` says whether it can run here (packages via
            ``importlib.util.find_spec``, keys, weights); cheap, makes no request.
        description: one line for ``mmsdk providers``.
        retired: retired model names mapped to a message naming the successor.
        offer_as_default: whether ``provider=None`` may route to it.
        deprecation: ``deprecation(model)`` -> a note for a model that still works but
            has an announced end-of-life, else ``None`` (shown by ``mmsdk providers``).
        with_key: ``with_key(api_key)`` -> a copy of this spec whose factory and check
            use this API key instead of the environment's (``Router(credentials=...)``);
            cheap, imports nothing. ``None``: the plugin takes no per-router credentials.
    """

    name: str
    model_class: ModelClass | Callable[[str], ModelClass]
    describe: Callable[[str], ModelInfo] = _no_details
    factory: Callable[[str, str, ModelInfo], Model] | None = None
    default_models: Mapping[Capability, str] = field(default_factory=dict)
    list_models: Callable[[], Sequence[str]] | None = None
    check: Callable[[str], Availability] = _always_available
    description: str = ""
    retired: Mapping[str, str] = field(default_factory=dict)
    offer_as_default: bool = True
    deprecation: Callable[[str], str | None] | None = None
    with_key: Callable[[str], ProviderSpec] | None = None

    def class_of(self, model: str) -> ModelClass:
        """The :class:`Model` subclass serving *model*."""
        declared = self.model_class
        cls = declared if isinstance(declared, type) else declared(model)
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise TypeError(f"model_class for {self.name}:{model} is {cls!r}, not a subclass "
                            "of mmsdk.plugin.Model")
        if not capabilities_of(cls):
            raise TypeError(f"{cls.__name__} (serving {self.name}:{model}) implements none of "
                            "Generate, Understand, Classify, Embed")
        return cls

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the provider offers: its class's, or its default models' classes'."""
        if isinstance(self.model_class, type):
            return capabilities_of(self.class_of(""))
        return frozenset().union(*(capabilities_of(self.class_of(model))
                                   for model in self.default_models.values()))

    def build(self, model: str, provider: str, info: ModelInfo) -> Model:
        """The model object for *model* (the factory's, or the class called with
        ``(provider, info)``), checked against the declared class."""
        cls = self.class_of(model)
        made = self.factory(model, provider, info) if self.factory is not None \
            else cls(provider, info)
        lacking = capabilities_of(cls) - capabilities_of(type(made))
        if not isinstance(made, Model) or lacking:
            raise ProviderUnavailableError(
                f"{provider}: its plugin's factory returned {type(made).__name__}, which does "
                f"not implement {', '.join(sorted(c.value for c in lacking)) or 'Model'} as "
                f"its declared class {cls.__name__} does. This is a bug in the plugin; please "
                "report it.", provider=provider, fix="reinstall or update the plugin package",
                code="plugin_broken")
        return made


def model_info(spec: ProviderSpec, model: str) -> ModelInfo:
    """*spec*'s description of *model* with its capabilities filled in from its class."""
    info = spec.describe(model)
    if not isinstance(info, ModelInfo):
        raise TypeError(f"describe() returned {type(info).__name__}, not a ModelInfo")
    if info.capabilities:
        raise TypeError("describe() set ModelInfo.capabilities; leave it out: mmsdk reads "
                        "them from the model class's mixins")
    return info.model_copy(update={"capabilities": capabilities_of(spec.class_of(model))})


def validate(spec: ProviderSpec) -> None:
    """Check what *spec* declares, as it registers; raises ``TypeError`` / ``ValueError``
    naming the mistake (a bad model class, a default model whose class lacks its
    capability, a describe() with an unknown feature)."""
    if not isinstance(spec.model_class, type) and not callable(spec.model_class):
        raise TypeError(f"model_class must be a Model subclass or a function of the model "
                        f"name, got {spec.model_class!r}")
    if isinstance(spec.model_class, type):
        spec.class_of("")
    for capability in spec.default_models:
        if not isinstance(capability, Capability):
            raise TypeError(f"default_models keys are Capability members, got {capability!r}")
        if spec.list_models is not None:  # its defaults may need the model list: read later
            continue
        model = spec.default_models[capability]
        if capability not in capabilities_of(spec.class_of(model)):
            raise TypeError(f"default model {model!r} for {capability.value} is served by "
                            f"{spec.class_of(model).__name__}, which does not implement "
                            f"{capability.value.capitalize()}")
        try:
            model_info(spec, model)
        except (TypeError, ValueError):  # a declaration mistake (a ValidationError too)
            raise
        except Exception:  # a failure at run time: contained when the model is resolved
            logger.debug("mmsdk: %s: describe(%r) failed at registration", spec.name, model)


def listed(spec: ProviderSpec) -> list[str]:
    """The models *spec* lists (``list_models``), ``[]`` when it lists none or fails to."""
    if spec.list_models is None:
        return []
    try:
        return [str(m) for m in spec.list_models()]
    except Exception as exc:  # a broken list is shown as empty, never raised
        logger.warning("mmsdk: %s: list_models() failed: %s: %s", spec.name,
                       type(exc).__name__, exc)
        return []
