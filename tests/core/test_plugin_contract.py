"""Plugin contract v2: each fact declared once.

Capabilities come from the model class's mixins, ``supports`` is a checked
:class:`Feature` set, mmsdk builds the provider string and the model info,
a plugin that serves many models lists them, and a plugin registered at run
time cannot take a built-in name.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

import mmsdk
import mmsdk.plugin
from mmsdk._registry import PluginWarning, Registry, describe_all
from mmsdk.plugin import (
    Capability,
    Classify,
    ClassifyRequest,
    ClassifyResult,
    Embed,
    Feature,
    Model,
    ModelInfo,
    ProviderSpec,
    Understand,
    UnderstandRequest,
    UnderstandResult,
    capabilities_of,
    hookimpl,
)

U, C = Capability.UNDERSTAND, Capability.CLASSIFY


class Reader(Understand):
    """Understands only: its one mixin is its one capability."""

    def understand(self, request: UnderstandRequest) -> UnderstandResult:
        return UnderstandResult(text=f"{self.provider} ({self.model_name}): {request.prompt}")


class Sorter(Classify):
    def classify(self, request: ClassifyRequest) -> list[ClassifyResult]:
        return [ClassifyResult(scores=dict.fromkeys(request.labels, 0.5))
                for _ in request.images]


class Plugin:
    """A plugin registering whatever spec the test gives it."""

    def __init__(self, *specs: ProviderSpec) -> None:
        self.specs = specs

    @hookimpl
    def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        for spec in self.specs:
            register(spec)


def registered(*specs: ProviderSpec, name: str = "contract") -> Registry:
    registry = Registry()
    registry.add_plugin(Plugin(*specs), name)
    return registry


# -- capabilities: the model class's mixins ------------------------------------------------
def test_capabilities_are_the_model_class_mixins() -> None:
    class Both(Reader, Sorter):
        pass

    assert capabilities_of(Reader) == {U}
    assert capabilities_of(Both) == {U, C}
    assert capabilities_of(Model) == frozenset()
    registry = registered(ProviderSpec(name="acme", model_class=Reader,
                                       default_models={U: "m1"}))
    resolved = registry.resolve("acme:m1")
    assert resolved.info.capabilities == {U}
    assert registry.specs["acme"].capabilities == {U}
    router = mmsdk.Router("acme:m1", registry=registry)
    assert router.understand("hi").text == "acme:m1 (m1): hi"
    with pytest.raises(mmsdk.CapabilityError, match="cannot classify"):
        router.classify(Image.new("RGB", (4, 4)), ["a"])


def test_a_class_per_model_gives_each_model_its_capabilities() -> None:
    registry = registered(ProviderSpec(
        name="mixed", model_class=lambda model: Sorter if model.startswith("clip") else Reader,
        default_models={U: "vlm", C: "clip-b"}))
    assert registry.resolve("mixed", U).info.capabilities == {U}
    assert registry.resolve("mixed", C).info.capabilities == {C}
    assert registry.specs["mixed"].capabilities == {U, C}
    rows = {row["provider"]: row for row in describe_all(registry)}
    assert rows["mixed"]["capabilities"] == ["classify", "understand"]


def test_describe_may_not_declare_capabilities() -> None:
    with pytest.warns(PluginWarning, match="leave it out"):
        registry = registered(ProviderSpec(
            name="twice", model_class=Reader, default_models={U: "m"},
            describe=lambda model: ModelInfo(capabilities=frozenset({U}))))
    assert "twice" not in registry.specs
    assert "ModelInfo.capabilities" in registry.failures["contract"]


@pytest.mark.parametrize(("spec", "message"), [
    (ProviderSpec(name="wrongdefault", model_class=Reader, default_models={C: "m"}),
     "default model 'm' for classify is served by Reader, which does not implement Classify"),
    (ProviderSpec(name="noclass", model_class=str,  # type: ignore[arg-type]
                  default_models={U: "m"}), "not a subclass of mmsdk.plugin.Model"),
    (ProviderSpec(name="nomixin", model_class=Model, default_models={U: "m"}),
     "implements none of Generate, Understand, Classify, Embed"),
], ids=["default-lacks-capability", "not-a-model", "no-mixin"])
def test_declaration_mistakes_are_refused_at_registration(spec: ProviderSpec,
                                                          message: str) -> None:
    with pytest.warns(PluginWarning, match=f"provider '{spec.name}' rejected"):
        registry = registered(spec)
    assert spec.name not in registry.specs
    assert message in registry.failures["contract"]


# -- features ------------------------------------------------------------------------------
def test_feature_is_exported_and_is_the_supports_vocabulary() -> None:
    assert mmsdk.Feature is mmsdk.plugin.Feature is Feature
    assert Feature("seed") is Feature.SEED and Feature.SEED == "seed"
    assert ModelInfo(supports={"seed", Feature.STREAM}).supports == {Feature.SEED, Feature.STREAM}
    assert "seed" in ModelInfo(supports={Feature.SEED}).supports  # the core checks strings
    from mmsdk.testing import ALL_FEATURES
    assert frozenset(Feature) == ALL_FEATURES


def test_every_parameter_the_core_checks_is_a_feature() -> None:
    from mmsdk._requests import ClassifyRequest, GenerateRequest, UnderstandRequest
    checked = {*GenerateRequest.first_class.values(), *UnderstandRequest.first_class.values(),
               *ClassifyRequest.first_class.values(), "n", "video"}  # n, video: _jobs
    assert checked == {f.value for f in Feature}


def test_an_unknown_feature_is_refused_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown feature") as caught:
        ModelInfo(supports={"sed"})
    assert "'sed'" in str(caught.value) and "seed" in str(caught.value)


def test_an_unknown_feature_fails_the_plugin_at_registration() -> None:
    with pytest.warns(PluginWarning, match="'sed'"):
        registry = registered(ProviderSpec(name="typo", model_class=Reader,
                                           default_models={U: "m"},
                                           describe=lambda model: ModelInfo(supports={"sed"})))
    assert "typo" not in registry.specs
    failure = registry.failures["contract"]
    assert "unknown feature(s) 'sed'" in failure and "seed" in failure
    rows = {row["provider"]: row for row in describe_all(registry)}
    assert rows["contract (plugin)"]["usable"] is False
    assert "'sed'" in rows["contract (plugin)"]["reason"]


def test_a_declaration_mistake_reads_as_one_line_without_pydantic_boilerplate() -> None:
    def describe(model: str) -> ModelInfo:
        return ModelInfo() if model == "m" else ModelInfo(supports={"sed"})

    with pytest.warns(PluginWarning):
        registry = registered(ProviderSpec(name="typo", model_class=Reader,
                                           default_models={U: "m"},
                                           describe=lambda model: ModelInfo(supports={"sed"})),
                              ProviderSpec(name="later", model_class=Reader,
                                           default_models={U: "m"}, describe=describe))
    failure = registry.failures["contract"]
    assert failure.startswith("provider 'typo' rejected: invalid ModelInfo: supports: unknown "
                              "feature(s) 'sed'")
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:  # a model described late
        mmsdk.Router("later:other", registry=registry).understand("hi")
    for message in (failure, str(caught.value)):
        assert "\n" not in message and "errors.pydantic.dev" not in message
        assert "validation error for" not in message and "Value error," not in message


def test_a_feature_the_model_lacks_is_still_a_capability_error() -> None:
    registry = registered(ProviderSpec(name="plain", model_class=Reader,
                                       default_models={U: "m"},
                                       describe=lambda model: ModelInfo(
                                           supports={Feature.SYSTEM})))
    router = mmsdk.Router("plain:m", registry=registry)
    assert router.understand("hi", system="be brief").text.endswith("hi")
    with pytest.raises(mmsdk.CapabilityError, match="max_tokens"):
        router.understand("hi", max_tokens=5)


# -- the core builds provider strings and model info ---------------------------------------
def test_the_factory_receives_the_provider_string_and_the_full_info() -> None:
    seen: list[tuple[str, str, ModelInfo]] = []

    def factory(model: str, provider: str, info: ModelInfo) -> Reader:
        seen.append((model, provider, info))
        return Reader(provider, info)

    registry = registered(ProviderSpec(
        name="built", model_class=Reader, factory=factory, default_models={U: "m2"},
        describe=lambda model: ModelInfo(supports={Feature.SYSTEM}, cost_hint=3.0)))
    result = mmsdk.Router("built", registry=registry).understand("hi")
    assert result.provider == "built:m2"
    [(model, provider, info)] = seen
    assert (model, provider) == ("m2", "built:m2")
    assert info.capabilities == {U} and info.supports == {Feature.SYSTEM}
    assert info.cost_hint == 3.0


def test_a_factory_returning_a_model_without_the_declared_capability_is_a_plugin_bug() -> None:
    class Declared(Understand, Classify, ABC):
        pass

    registry = registered(ProviderSpec(name="liar", model_class=Declared,
                                       factory=lambda model, provider, info: Reader(provider,
                                                                                    info),
                                       default_models={U: "m"}))
    with pytest.raises(mmsdk.ProviderUnavailableError, match="does not implement classify") \
            as caught:
        mmsdk.Router("liar:m", registry=registry).understand("hi")
    assert caught.value.code == "plugin_broken"


# -- a plugin serving many models lists them -----------------------------------------------
def test_listed_models_are_shown_and_the_first_fitting_one_is_the_default() -> None:
    listed = ["clip-a", "vlm-a", "vlm-b"]
    registry = registered(ProviderSpec(
        name="hub", model_class=lambda model: Sorter if model.startswith("clip") else Reader,
        list_models=lambda: listed))
    assert registry.resolve("hub", U).provider == "hub:vlm-a"
    assert registry.resolve("hub", C).provider == "hub:clip-a"
    [status] = [s for s in _statuses(registry) if s.name == "hub"]
    assert status.models == listed and status.usable
    listed.clear()  # the server lists nothing now: a bare name has no model to mean
    with pytest.raises(mmsdk.CapabilityError, match="name a model as 'hub:MODEL'"):
        registry.resolve("hub", U)


def test_a_listing_that_fails_is_shown_empty_not_raised() -> None:
    def broken() -> list[str]:
        raise RuntimeError("the hub is down")

    registry = registered(ProviderSpec(name="flaky", model_class=Reader,
                                       default_models={U: "m"}, list_models=broken))
    [status] = [s for s in _statuses(registry) if s.name == "flaky"]
    assert status.models == ["m"] and status.usable


def _statuses(registry: Registry) -> list[mmsdk.ProviderStatus]:
    from mmsdk._providers import _status
    return [_status(row, registry) for row in describe_all(registry)]


def test_a_registered_endpoint_is_listed_with_its_capabilities_and_models() -> None:
    mmsdk_openai = pytest.importorskip("mmsdk_openai")
    mmsdk_openai.add_endpoint("contractvllm", "http://127.0.0.1:9/v1", models=["m1", "m2"])
    try:
        [status] = [s for s in mmsdk.providers() if s.name == "contractvllm"]
    finally:
        mmsdk_openai.remove_endpoint("contractvllm")
    assert status.capabilities == [C, U] and status.usable
    assert status.models == ["m1", "m2"]


# -- run-time plugins and built-in names -----------------------------------------------------
class _Impostor:
    @hookimpl
    def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(ProviderSpec(name="openai", model_class=Reader, default_models={U: "gpt"}))

    @hookimpl
    def register_aliases(self, register: Callable[[str, str], None]) -> None:
        register("local:clip", "openai:gpt")


@pytest.fixture
def impostor() -> Iterator[None]:
    yield
    mmsdk.plugin.unregister_plugin("impostor")


def test_register_plugin_cannot_take_a_builtin_name_even_before_the_builtin_loads(
        impostor: None) -> None:
    from mmsdk._registry import get_registry
    registry = get_registry()
    with pytest.warns(PluginWarning, match="reserved to mmsdk's built-in plugins"):
        mmsdk.plugin.register_plugin(_Impostor(), "impostor")
    assert registry.owners.get("provider:openai") != "impostor"
    assert registry.owners.get("alias:local:clip") != "impostor"
    assert "registered at run time" in registry._failures["impostor"]


def test_look_alikes_of_builtin_names_are_reserved_too(impostor: None) -> None:
    class LookAlike:
        @hookimpl
        def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
            for name in ("OpenAI", "openai ", "Local", "TRANSFORMERS"):
                register(ProviderSpec(name=name, model_class=Reader, default_models={U: "m"}))

        @hookimpl
        def register_aliases(self, register: Callable[[str, str], None]) -> None:
            register("Local:clip", "OpenAI:m")

    from mmsdk._registry import get_registry
    registry = get_registry()
    with pytest.warns(PluginWarning, match="reserved to mmsdk's built-in plugins"):
        mmsdk.plugin.register_plugin(LookAlike(), "impostor")
    taken = [key for key, owner in registry.owners.items() if owner == "impostor"]
    assert taken == []
    with pytest.raises(mmsdk.MMSDKError):  # never the impostor's answer
        mmsdk.Router("OpenAI:m", registry=None).understand("hi")


def test_a_runtime_plugin_may_register_other_names(impostor: None) -> None:
    class Fine:
        @hookimpl
        def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
            register(ProviderSpec(name="impostorfine", model_class=Embedder,
                                  default_models={Capability.EMBED: "e"}))

    mmsdk.plugin.register_plugin(Fine(), "impostor")
    assert mmsdk.Router("impostorfine", registry=None).embed(texts=["a"]).text_vectors.shape == \
        (1, 2)


class Embedder(Embed):
    def embed(self, request: Any) -> mmsdk.EmbedResult:
        import numpy as np
        return mmsdk.EmbedResult(text_vectors=np.ones((len(request.texts), 2)) / np.sqrt(2))


def test_the_cli_lists_the_models_a_plugin_serves(capsys: pytest.CaptureFixture[str]) -> None:
    from mmsdk._cli import main
    mmsdk.plugin.register_plugin(Plugin(ProviderSpec(
        name="contracthub", model_class=Reader, default_models={U: "m1"},
        list_models=lambda: ["m1", "m2", "m3"])), "contracthub")
    try:
        assert main(["providers"]) == 0
    finally:
        mmsdk.plugin.unregister_plugin("contracthub")
    out = capsys.readouterr().out
    assert "models: m1, m2, m3" in out
    # an alias row names its target once, without a models line repeating it
    alias = out.split("\nlocal:clip ", 1)[1].split("\nlocal:", 1)[0]
    assert "= transformers:" in alias and "models:" not in alias


def test_a_model_class_that_fails_when_listed_is_shown_not_raised() -> None:
    def model_class(model: str) -> type[Model]:
        raise RuntimeError("cannot tell")

    registry = registered(ProviderSpec(name="vague", model_class=model_class,
                                       default_models={U: "m"}, list_models=lambda: ["m"]))
    rows = {row["provider"]: row for row in describe_all(registry)}
    assert rows["vague"]["usable"] is False and "cannot tell" in rows["vague"]["reason"]
    with pytest.raises(mmsdk.ProviderUnavailableError) as caught:
        assert registry.resolve("vague:m").info
    assert caught.value.code == "plugin_broken"
