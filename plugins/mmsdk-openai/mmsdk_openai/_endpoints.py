"""Providers for the ``openai`` API and for OpenAI-compatible endpoints.

Registration builds :class:`ProviderSpec` objects only; the SDK is imported by
the factories, on first use.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from mmsdk.plugin import (
    Availability,
    Capability,
    InvalidInputError,
    Model,
    ModelInfo,
    ProviderSpec,
    add_secret,
    hookimpl,
    register_plugin,
    unregister_plugin,
)

from ._config import (
    AVAILABLE,
    RETIRED,
    DefaultModels,
    check_openai,
    check_sdk,
    sdk_missing,
)
from ._discovery import UNKNOWN_MODEL, DefaultModel, Discovery, shown_url
from ._info import compatible_class, compatible_info, describe_openai, openai_class

__all__ = ["ENV_VAR", "Endpoint", "add_endpoint", "endpoints_from_env", "openai_spec",
           "register_all", "remove_endpoint"]

ENV_VAR = "MMSDK_OPENAI_COMPATIBLE"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_RESERVED = {"openai", "local"}
BALANCES = ("least_in_flight", "round_robin")
Balance = Literal["least_in_flight", "round_robin"]
_ENV_NAME = re.compile(r"\s*([^()\s]*)\s*(?:\(([^()]*)\))?\s*")  # NAME, then (CAPABILITIES)
# Local servers usually take any key; a placeholder keeps the SDK from reading
# OPENAI_API_KEY and sending the OpenAI key to a third-party server.
NO_KEY = "not-needed"


def _make_openai(model: str, provider: str, info: ModelInfo,
                 api_key: str | None = None) -> Model:
    """The model object; *api_key* (a router's key) wins over the settings and environment."""
    from ._clients import openai_pool
    from ._config import is_image_model
    from ._model import ChatModel, ImageModel, reads_logprobs

    pool = openai_pool(api_key)  # settings and environment read at every call
    if is_image_model(model):
        return ImageModel(provider, info, model, pool)
    return ChatModel(provider, info, model, pool, logprobs=reads_logprobs(model))


def openai_spec(api_key: str | None = None) -> ProviderSpec:
    """The ``openai`` provider: GPT image models and GPT chat models.

    Args:
        api_key: a key used instead of ``configure(api_key=...)`` and
            ``OPENAI_API_KEY`` (``mmsdk.Router(credentials={"openai": ...})``);
            the provider is then available without them. Base URL,
            organization and project still come from the settings and environment.
    """
    factory: Callable[[str, str, ModelInfo], Model] = _make_openai
    check: Callable[[str], Availability] = check_openai
    if api_key is not None:
        add_secret(api_key)

        def factory(model: str, provider: str, info: ModelInfo) -> Model:  # a closure: no
            return _make_openai(model, provider, info, api_key)  # repr shows the key

        check = check_sdk
    return ProviderSpec(
        name="openai", model_class=openai_class, factory=factory, describe=describe_openai,
        default_models=DefaultModels(), check=check, retired=RETIRED, with_key=openai_spec,
        description="OpenAI: GPT image models (generate, edit) and GPT vision (understand, "
                    "classify) through the official SDK")


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CHAT = (Capability.UNDERSTAND, Capability.CLASSIFY)
_OFFERED = (Capability.GENERATE, Capability.UNDERSTAND, Capability.CLASSIFY)


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server (or several serving the same models).

    Attributes:
        name: the provider name (``"vllm"`` gives ``"vllm:MODEL"``).
        base_urls: the servers' ``/v1`` URLs. Several make a replica pool: the
            router picks one per attempt (``balance``), ejects a failing one
            through its own breaker and moves a failed call to another.
        api_key: sent as the bearer token (``None``: ``<NAME>_API_KEY`` if set, else
            a placeholder, never ``OPENAI_API_KEY``).
        models: the first one is what bare ``"NAME"`` means; empty: the server's
            ``GET /v1/models`` says, asked once when first needed.
        local: every byte stays on this machine (``None``: true when every URL is loopback).
        logprobs: classification asks for logprobs (turn off for servers that reject them).
        capabilities: what the servers do: chat servers understand and classify,
            image servers (SGLang Diffusion, vLLM-Omni) generate.
        balance: how a pool spreads calls: ``"least_in_flight"`` (the less busy of
            two random replicas) or ``"round_robin"``.
    """

    name: str
    base_urls: tuple[str, ...]
    api_key: str | None = None
    models: tuple[str, ...] = ()
    local: bool | None = None
    logprobs: bool = True
    capabilities: tuple[Capability, ...] = CHAT
    balance: Balance = "least_in_flight"
    discovery: Discovery = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A copy made by dataclasses.replace (a router's key) asks with its own key.
        object.__setattr__(self, "discovery", Discovery(self.base_urls, self.key))

    def __repr__(self) -> str:  # never show the key
        return (f"Endpoint(name={self.name!r}, "
                f"base_urls={tuple(map(shown_url, self.base_urls))!r}, "
                f"api_key={'set' if self.key() != NO_KEY else None!r}, models={self.models!r}, "
                f"capabilities={tuple(c.value for c in self.capabilities)!r}"
                + (f", balance={self.balance!r})" if len(self.base_urls) > 1 else ")"))

    def key(self) -> str:
        env = re.sub(r"[^A-Za-z0-9]", "_", self.name).upper() + "_API_KEY"
        return self.api_key or os.environ.get(env) or NO_KEY

    @property
    def is_local(self) -> bool:
        return self.local if self.local is not None else all(map(_is_local, self.base_urls))

    def info(self) -> ModelInfo:
        info = compatible_info(self.is_local, frozenset(self.capabilities))
        if len(self.base_urls) < 2:
            return info
        # a replica pool: the router chooses the base URL of each attempt
        return info.model_copy(update={"endpoints": tuple(self.base_urls),
                                       "balance": self.balance})

    def spec(self) -> ProviderSpec:
        info = self.info()
        defaults: Mapping[Capability, str] = \
            dict.fromkeys(self.capabilities, self.models[0]) if self.models \
            else DefaultModel(self.discovery, self.capabilities)
        where = ", ".join(map(shown_url, self.base_urls))
        kind = "image server" if self.capabilities == (Capability.GENERATE,) else "endpoint"
        return ProviderSpec(
            name=self.name, model_class=compatible_class(frozenset(self.capabilities)),
            factory=self._factory(), describe=lambda model: info,
            default_models=defaults, check=self._check, list_models=self._models,
            description=f"OpenAI-compatible {kind}{'s' if len(self.base_urls) > 1 else ''} "
                        f"{where}" + (f" (models: {', '.join(self.models)})" if self.models
                                       else " (models: as its /v1/models lists them)"),
            # provider=None never waits on a server's model list
            offer_as_default=bool(self.models), with_key=self._with_key)

    def _with_key(self, api_key: str) -> ProviderSpec:
        """This endpoint's spec with *api_key* as the bearer token (a router's credentials)."""
        add_secret(api_key)
        return replace(self, api_key=api_key).spec()

    def _models(self) -> tuple[str, ...]:
        """The models it serves: as given, else as its ``GET /v1/models`` lists them."""
        return self.models or self.discovery.models()

    def _check(self, model: str) -> Availability:
        if model == UNKNOWN_MODEL and not self.models:
            return self.discovery.availability()
        return sdk_missing() or AVAILABLE

    def _factory(self) -> Callable[[str, str, ModelInfo], Model]:
        def make(model: str, provider: str, info: ModelInfo) -> Model:
            from mmsdk.plugin import Connection

            from ._clients import ClientPool
            from ._model import ChatModel, ServerImageModel, ServerModel

            pool = ClientPool(lambda: Connection(self.key()), urls=self.base_urls)
            generate = Capability.GENERATE in self.capabilities
            chat = any(c in self.capabilities for c in CHAT)
            kind = ServerModel if generate and chat else ServerImageModel if generate \
                else ChatModel
            return kind(provider, info, model, pool, compatible=True, logprobs=self.logprobs)
        return make

    @hookimpl
    def register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(self.spec())


def _validate(name: str, base_urls: Sequence[str]) -> tuple[str, ...]:
    if not _NAME.match(name) or name in _RESERVED:
        raise InvalidInputError(f"Endpoint name {name!r} must start with a letter, use letters, "
                                f"digits, '_', '-' or '.', and not be one of {sorted(_RESERVED)}.")
    urls = tuple(url.strip().rstrip("/") for url in base_urls if url.strip())
    if not urls:
        raise InvalidInputError(f"Endpoint {name!r} needs at least one base URL.")
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise InvalidInputError(f"Endpoint {name!r}: {url!r} is not an http(s) base URL "
                                    "such as 'http://localhost:8000/v1'.")
    return urls


def _capabilities(name: str, given: Sequence[str | Capability] | None) -> tuple[Capability, ...]:
    if given is None:
        return CHAT
    if isinstance(given, str):
        given = [given]
    offered = ", ".join(repr(c.value) for c in _OFFERED)
    wanted: list[Capability] = []
    for value in given:
        try:
            capability = Capability(value)
        except ValueError:
            capability = None
        if capability not in _OFFERED:
            raise InvalidInputError(f"Endpoint {name!r}: capability {value!r} is not one an "
                                    f"OpenAI-compatible server offers here ({offered}).")
        assert capability is not None
        wanted.append(capability)
    if not wanted:
        raise InvalidInputError(f"Endpoint {name!r} needs at least one capability ({offered}).")
    return tuple(c for c in _OFFERED if c in wanted)


def add_endpoint(name: str, base_urls: str | Sequence[str], *, api_key: str | None = None,
                 models: Sequence[str] | None = None, local: bool | None = None,
                 logprobs: bool = True,
                 capabilities: Sequence[str | Capability] | None = None,
                 balance: Balance = "least_in_flight") -> Endpoint:
    """Register an OpenAI-compatible server as provider *name* (``"NAME:MODEL"``).

    Chat servers (vLLM, SGLang, TGI, Ollama, LM Studio, ...) understand and
    classify; image servers (SGLang Diffusion, vLLM-Omni) generate, with
    ``capabilities=["generate"]``. Several base URLs make a replica pool: each
    attempt goes to the less busy of two random replicas (``balance=
    "least_in_flight"``) or to the next in turn (``"round_robin"``); a
    replica failing ``Policy.breaker_threshold`` times in a row is ejected for
    ``Policy.breaker_cooldown`` seconds, then probed; a transient failure moves
    the call to another healthy replica (an ``Attempt`` each, naming its
    ``endpoint``); ``Policy.hedge_after`` hedges to a sibling replica first.
    ``mmsdk.health()`` lists each replica as ``"NAME:MODEL@BASE_URL"``.

    Args:
        name: the provider name, e.g. ``"vllm"``.
        base_urls: one URL or several, e.g. ``"http://gpu1:8000/v1"``.
        api_key: bearer token, if the server wants one (else ``NAME_API_KEY``).
        models: served models; the first is what bare ``"NAME"`` means. ``None``:
            ask the server's ``GET /v1/models`` the first time bare ``"NAME"``
            or ``mmsdk providers`` needs them (once, within 5 s; a server that
            does not answer leaves the endpoint unavailable, saying why).
        local: whether data stays on this machine (default: all URLs are loopback).
        logprobs: ask for logprobs when classifying.
        capabilities: any of ``"understand"``, ``"classify"``, ``"generate"``
            (default: understand and classify).
        balance: ``"least_in_flight"`` (default) or ``"round_robin"``, for several URLs.

    Raises:
        InvalidInputError: a bad name, URL, capability or balance.

    Example:
        >>> import mmsdk, mmsdk_openai
        >>> _ = mmsdk_openai.add_endpoint("vllm", ["http://gpu1:8000/v1", "http://gpu2:8000/v1"],
        ...                               models=["Qwen/Qwen2.5-VL-7B-Instruct"])
        >>> mmsdk.understand("Describe", images=["x.png"], provider="vllm").text
        >>> _ = mmsdk_openai.add_endpoint("sglang", "http://gpu3:30000/v1",
        ...                               capabilities=["generate"])  # model from /v1/models
        >>> mmsdk.generate("a lighthouse", provider="sglang", steps=28, seed=7).images
    """
    urls = _validate(name, [base_urls] if isinstance(base_urls, str) else base_urls)
    offered = _capabilities(name, capabilities)
    if balance not in BALANCES:
        raise InvalidInputError(f"Endpoint {name!r}: balance must be one of {list(BALANCES)}, "
                                f"got {balance!r}.")
    add_secret(api_key)
    endpoint = Endpoint(name, urls, api_key, tuple(models or ()), local, logprobs, offered,
                        balance)
    register_plugin(endpoint, f"mmsdk_openai:{name}")
    return endpoint


def remove_endpoint(name: str) -> None:
    """Unregister an endpoint added with :func:`add_endpoint` (closing its clients)."""
    unregister_plugin(f"mmsdk_openai:{name}")


def endpoints_from_env(value: str | None = None) -> list[Endpoint]:
    """Endpoints named in ``MMSDK_OPENAI_COMPATIBLE``.

    Format: ``NAME[(CAPABILITY,...)][#MODEL]=URL[,URL...]``, several separated by
    ``;``. Without ``(...)`` an endpoint understands and classifies; without
    ``#MODEL`` its ``GET /v1/models`` is asked when first needed. E.g.
    ``vllm#Qwen/Qwen2.5-VL-7B-Instruct=http://h1:8000/v1,http://h2:8000/v1;ollama=http://localhost:11434/v1;sglang(generate)#black-forest-labs/FLUX.1-dev=http://h3:30000/v1``.

    Raises:
        InvalidInputError: an entry that does not follow the format.
    """
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    found = []
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        head, sep, urls = entry.partition("=")
        named, _, model = head.partition("#")
        parts = _ENV_NAME.fullmatch(named)
        if not sep or parts is None:
            raise InvalidInputError(f"{ENV_VAR}: {entry!r} must look like "
                                    "NAME[(CAPABILITY,...)][#MODEL]=URL[,URL...].")
        name, listed = parts[1], parts[2]
        offered = _capabilities(name, None if listed is None else
                                [c.strip() for c in listed.split(",") if c.strip()])
        found.append(Endpoint(name, _validate(name, urls.split(",")),
                              models=(model.strip(),) if model.strip() else (),
                              capabilities=offered))
    return found


def register_all(register: Callable[[ProviderSpec], None]) -> None:
    """Register ``openai`` plus every endpoint in ``MMSDK_OPENAI_COMPATIBLE``."""
    register(openai_spec())
    for endpoint in endpoints_from_env():
        register(endpoint.spec())

