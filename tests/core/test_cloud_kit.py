"""The kit for cloud plugins (``mmsdk.plugin``): settings, clients, the error boundary, fetching.

The kit's pieces are tested on their own, then through the three cloud plugins
built on it, each driven with its official SDK against a loopback server.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from keyless import assert_keyless
from loopback import LoopbackServer, Received, Reply

import mmsdk
from mmsdk._registry import PluginWarning, get_registry
from mmsdk.plugin import (
    Capability,
    ClientCache,
    CloudSettings,
    Connection,
    DefaultModels,
    ErrorBoundary,
    InvalidInputError,
    PluginSettings,
    ProviderError,
    RateLimitError,
    safe_fetch,
)

# Another plugin failing to load (someone's work in progress) must not fail these tests.
pytestmark = pytest.mark.filterwarnings("ignore", category=PluginWarning)

SECRET = "sk-kit-PLANTED-secret-0123456789abcdef"


# -- settings --------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class AcmeSettings(CloudSettings):
    api_key: str | None = None
    base_url: str | None = None
    model: str | None = None
    verbose: bool | None = None
    retries: int = 2


def _acme(**kwargs: Any) -> PluginSettings[AcmeSettings]:
    def validate(settings: AcmeSettings) -> None:
        if settings.retries < 0:
            raise InvalidInputError("retries must be >= 0.")

    return PluginSettings("acme", AcmeSettings(), env={
        "api_key": ("ACME_API_KEY", "ACME_KEY"), "base_url": "ACME_BASE_URL",
        "model": "MMSDK_ACME_MODEL", "verbose": "ACME_VERBOSE"},
        defaults={"model": "acme-1", "verbose": False},
        parse={"verbose": lambda text: text == "1"}, validate=validate, **kwargs)


def test_precedence_is_explicit_then_environment_then_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _acme()
    assert settings.resolved() == AcmeSettings(model="acme-1", verbose=False)  # defaults
    monkeypatch.setenv("ACME_KEY", "from-second-variable")
    monkeypatch.setenv("MMSDK_ACME_MODEL", "acme-env")
    monkeypatch.setenv("ACME_VERBOSE", "1")
    resolved = settings.resolved()  # the environment, read now (not when created)
    assert (resolved.api_key, resolved.model, resolved.verbose) == \
        ("from-second-variable", "acme-env", True)
    monkeypatch.setenv("ACME_API_KEY", "from-first-variable")
    assert settings.resolved().api_key == "from-first-variable"  # variables in order
    settings.configure(api_key="explicit", model="acme-explicit", verbose=False)
    resolved = settings.resolved()
    assert (resolved.api_key, resolved.model, resolved.verbose) == \
        ("explicit", "acme-explicit", False)  # explicit False beats the variable's True
    settings.configure(model=None)  # None hands the setting back to the environment
    assert settings.resolved().model == "acme-env"
    monkeypatch.delenv("MMSDK_ACME_MODEL")
    assert settings.resolved().model == "acme-1"
    assert settings.explicit.model is None and settings.explicit.api_key == "explicit"


def test_configure_checks_names_and_values_and_counts_changes() -> None:
    settings = _acme()
    version = settings.version
    with pytest.raises(InvalidInputError, match=r"Unknown acme setting\(s\) \['api_token'\]"):
        settings.configure(api_token="x")
    with pytest.raises(InvalidInputError, match="retries must be >= 0"):
        settings.configure(retries=-1)
    assert settings.version == version and settings.explicit == AcmeSettings()
    settings.configure(retries=5)
    assert settings.version == version + 1
    settings.reset()
    assert settings.explicit == AcmeSettings() and settings.version == version + 2
    with pytest.raises(ValueError, match="unknown settings"):
        PluginSettings("acme", AcmeSettings(), env={"nope": "X"})


@pytest.mark.parametrize(("change", "message"), [
    ({"api_key": 12345}, "acme setting 'api_key' must be of type str"),
    ({"retries": "3"}, "acme setting 'retries' must be of type int"),
    ({"retries": True}, "acme setting 'retries' must be of type int"),
    ({"verbose": "yes"}, "acme setting 'verbose' must be of type bool"),
], ids=["int-key", "str-for-int", "bool-for-int", "str-for-bool"])
def test_configure_refuses_a_value_of_the_wrong_type_naming_the_setting(
        change: dict[str, Any], message: str) -> None:
    settings = _acme()
    with pytest.raises(InvalidInputError, match=message) as info:
        settings.configure(**change)
    assert info.value.__cause__ is None and settings.explicit == AcmeSettings()


@pytest.mark.parametrize("plugin", ["mmsdk_openai", "mmsdk_anthropic", "mmsdk_gemini"])
def test_each_cloud_plugin_refuses_a_key_that_is_not_a_string(plugin: str) -> None:
    module = importlib.import_module(plugin)
    with pytest.raises(InvalidInputError, match="'api_key' must be of type str"):
        module.configure(api_key=12345)


def test_default_models_are_read_from_settings_at_each_lookup(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _acme()
    defaults = DefaultModels(settings, {Capability.UNDERSTAND: "model",
                                        Capability.GENERATE: "base_url"},
                             builtin={Capability.GENERATE: "acme-paint-1"})
    assert dict(defaults) == {Capability.UNDERSTAND: "acme-1",
                              Capability.GENERATE: "acme-paint-1"}
    monkeypatch.setenv("MMSDK_ACME_MODEL", "acme-env")
    assert defaults[Capability.UNDERSTAND] == "acme-env"
    settings.configure(model="acme-explicit")
    assert defaults[Capability.UNDERSTAND] == "acme-explicit"
    with pytest.raises(KeyError):
        defaults[Capability.CLASSIFY]  # not a capability of this plugin
    assert Capability.CLASSIFY not in defaults and len(defaults) == 2


def test_settings_never_show_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _acme()
    settings.configure(api_key=SECRET)
    monkeypatch.setenv("ACME_BASE_URL", "http://api.acme.test")
    for text in (repr(settings), repr(settings.explicit), repr(settings.resolved()),
                 str(settings.resolved()), repr(Connection(SECRET, "http://x", (("t", SECRET),)))):
        assert SECRET not in text
    assert "api_key='set'" in repr(settings.resolved())
    assert repr(AcmeSettings()).startswith("AcmeSettings(api_key=None,")


@pytest.mark.parametrize(("plugin", "key_env", "model_env", "field", "default"), [
    ("openai", "OPENAI_API_KEY", "MMSDK_OPENAI_UNDERSTAND_MODEL", "understand_model", "gpt-5.5"),
    ("anthropic", "ANTHROPIC_API_KEY", "MMSDK_ANTHROPIC_MODEL", "model", None),
    ("gemini", "GEMINI_API_KEY", "MMSDK_GEMINI_MODEL", "model", "gemini-3.8-flash"),
])
def test_each_cloud_plugin_reads_settings_in_the_one_order(
        plugin: str, key_env: str, model_env: str, field: str, default: str | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(f"mmsdk_{plugin}")
    store = _store(plugin)
    monkeypatch.delenv(model_env, raising=False)
    try:
        assert getattr(store.resolved(), field) == default
        assert store.resolved().api_key is None
        monkeypatch.setenv(key_env, "key-from-env")
        monkeypatch.setenv(model_env, "model-from-env")
        assert (store.resolved().api_key, getattr(store.resolved(), field)) == \
            ("key-from-env", "model-from-env")
        module.configure(api_key="key-explicit", **{field: "model-explicit"})
        assert (store.resolved().api_key, getattr(store.resolved(), field)) == \
            ("key-explicit", "model-explicit")
        assert "key-explicit" not in repr(module.configure())
    finally:
        store.reset()


def _store(plugin: str) -> PluginSettings[Any]:
    name = {"openai": "_config", "anthropic": "_settings", "gemini": "_settings"}[plugin]
    store: PluginSettings[Any] = importlib.import_module(f"mmsdk_{plugin}.{name}").SETTINGS
    return store


# -- clients ---------------------------------------------------------------------------------
class FakeClient:
    def __init__(self, conn: Connection, thread: int) -> None:
        self.key = conn.api_key
        self.thread = thread
        self.closed = False


class Factory:
    """Counts what the cache builds and closes."""

    def __init__(self) -> None:
        self.made: list[FakeClient] = []
        self.lock = threading.Lock()

    def make(self, conn: Connection) -> FakeClient:
        client = FakeClient(conn, threading.get_ident())
        with self.lock:
            self.made.append(client)
        return client

    def close(self, client: FakeClient) -> None:
        client.closed = True

    async def aclose(self, client: FakeClient) -> None:
        client.closed = True

    def cache(self) -> ClientCache[FakeClient, FakeClient]:
        return ClientCache(make=self.make, amake=self.make, close=self.close, aclose=self.aclose)


def test_a_sync_client_per_connection_and_the_stale_one_closed() -> None:
    factory = Factory()
    cache = factory.cache()
    first = cache.get(Connection("key-1"))
    assert cache.get(Connection("key-1")) is first and len(factory.made) == 1
    second = cache.get(Connection("key-2"))  # the key changed: a new client, the old closed
    assert second.key == "key-2" and first.closed and not second.closed
    assert cache.get(Connection("key-2", "http://elsewhere")) is not second  # endpoint too
    cache.close()
    assert all(client.closed for client in factory.made)


def test_an_async_client_per_event_loop_built_off_the_loop_closed_with_it() -> None:
    factory = Factory()
    cache = factory.cache()
    conn = Connection("key-1")
    seen: list[tuple[FakeClient, int]] = []

    async def burst() -> None:
        clients = await asyncio.gather(*(cache.aget(conn) for _ in range(5)))
        assert all(client is clients[0] for client in clients)  # one build for the burst
        assert cache.current(asyncio.get_running_loop()) is clients[0]
        seen.append((clients[0], threading.get_ident()))

    asyncio.run(burst())
    asyncio.run(burst())  # a second loop gets its own client
    (first, loop_thread), (second, _) = seen
    assert first is not second and len(factory.made) == 2
    assert first.closed and second.closed  # each closed when its loop shut down
    assert first.thread != loop_thread  # built in a worker thread, not on the loop


def test_loops_in_two_threads_get_two_clients_and_close_closes_both() -> None:
    factory = Factory()
    cache = factory.cache()
    conn = Connection("key-1")
    ready, done = threading.Barrier(3), threading.Event()
    got: list[FakeClient] = []

    def run() -> None:
        async def main() -> None:
            got.append(await cache.aget(conn))
            ready.wait()
            while not done.is_set():
                await asyncio.sleep(0.01)
        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    ready.wait()
    assert got[0] is not got[1] and cache.loops() == 2
    cache.close()  # from a third thread: each closed on its own running loop
    assert all(client.closed for client in got)
    done.set()
    for thread in threads:
        thread.join()


async def test_a_new_key_on_a_running_loop_replaces_its_client() -> None:
    factory = Factory()
    cache = factory.cache()
    old = await cache.aget(Connection("key-1"))
    new = await cache.aget(Connection("key-2"))
    assert new is not old and old.closed and not new.closed
    await cache.aclose()
    assert new.closed


# -- the error boundary ---------------------------------------------------------------------
class LeakyError(Exception):
    """What an SDK raises: it holds the request, and so the key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.request = {"headers": {"authorization": f"Bearer {SECRET}"}}


def _translate(exc: BaseException, provider: str) -> mmsdk.MMSDKError | None:
    if isinstance(exc, LeakyError) and "429" in str(exc):
        return RateLimitError(f"{provider} is rate limiting", provider=provider, retry_after=2.0)
    return None


def test_the_boundary_maps_and_never_chains_the_sdk_exception() -> None:
    with pytest.raises(RateLimitError) as mapped, ErrorBoundary("acme:x", _translate):
        raise LeakyError("429 too many")
    assert mapped.value.retry_after == 2.0
    assert mapped.value.__cause__ is None and mapped.value.__context__ is None
    assert_keyless(mapped.value, SECRET)
    # Not mapped by the plugin, but from a network client: a ProviderError, still unchained.
    with pytest.raises(ProviderError) as unknown, ErrorBoundary("acme:x", _translate):
        raise LeakyError(f"odd failure with {SECRET}")
    assert type(unknown.value) is ProviderError and "LeakyError" in str(unknown.value)
    assert_keyless(unknown.value, SECRET)


def test_the_boundary_lets_mmsdk_errors_and_plugin_bugs_through() -> None:
    error = InvalidInputError("bad input")
    with pytest.raises(InvalidInputError) as caught, ErrorBoundary("acme:x", _translate):
        raise error
    assert caught.value is error
    with pytest.raises(KeyError), ErrorBoundary("acme:x", _translate):
        raise KeyError("a bug in the plugin keeps its traceback")
    with pytest.raises(mmsdk.ProviderTimeoutError), ErrorBoundary("acme:x", _translate):
        raise TimeoutError  # transport failures through error_for_transport


# -- the three cloud plugins on the kit ------------------------------------------------------
@dataclass(frozen=True)
class Cloud:
    plugin: str
    provider: str
    key_env: str
    base_env: str
    path: str
    ok: dict[str, Any]
    clients: Callable[[Any], ClientCache[Any, Any]]


CLOUDS = [
    Cloud("openai", "openai:gpt-5.5", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1", {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-5.5",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
        lambda model: model.pool.clients),
    Cloud("anthropic", "anthropic:claude-sonnet-5-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
          "", {"id": "m1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
               "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
               "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}},
          lambda model: model._clients.cache),
    Cloud("gemini", "gemini:gemini-3.8-flash", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "", {
        "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1,
                          "totalTokenCount": 4}, "modelVersion": "gemini-3.8-flash"},
        lambda model: model._clients),
]


def _key(received: Received) -> str | None:
    """The credential a request carried, whichever header its SDK puts it in."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    value = headers.get("x-goog-api-key") or headers.get("x-api-key") or \
        headers.get("authorization")
    return value.removeprefix("Bearer ") if value else None


@pytest.fixture(params=CLOUDS, ids=[cloud.plugin for cloud in CLOUDS])
def cloud(request: pytest.FixtureRequest, loopback: LoopbackServer,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A cloud plugin pointed at the loopback server by its SDK's variables, with a key."""
    chosen: Cloud = request.param
    for name in ("GOOGLE_API_KEY", "ANTHROPIC_AUTH_TOKEN", "MMSDK_GEMINI_MODEL",
                 "MMSDK_ANTHROPIC_MODEL", "MMSDK_OPENAI_UNDERSTAND_MODEL",
                 "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(chosen.key_env, "key-env-1")
    monkeypatch.setenv(chosen.base_env, loopback.url + chosen.path)
    store = _store(chosen.plugin)
    store.reset()
    loopback.default = Reply(body=chosen.ok)
    mmsdk.unload(chosen.plugin)
    yield chosen
    mmsdk.unload(chosen.plugin)
    store.reset()


def _model(provider: str) -> Any:
    registry = get_registry()
    return registry.model(registry.resolve(provider))


def test_credentials_change_at_run_time_without_unload(
        cloud: Cloud, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    configure = importlib.import_module(f"mmsdk_{cloud.plugin}").configure
    ask = lambda: mmsdk.understand("hi", provider=cloud.provider).text  # noqa: E731
    assert ask() == "ok"
    model = _model(cloud.provider)
    configure(api_key="key-configured")
    assert ask() == "ok"
    monkeypatch.setenv(cloud.key_env, "key-env-2")  # shadowed by configure
    assert ask() == "ok"
    configure(api_key=None)  # back to the environment, now rotated
    assert ask() == "ok"
    tenant = mmsdk.Router(cloud.provider, credentials={cloud.plugin: "key-tenant"})
    assert tenant.understand("hi").text == "ok"
    configure(api_key="key-async")
    assert asyncio.run(mmsdk.aunderstand("hi", provider=cloud.provider)).text == "ok"
    assert ask() == "ok"
    assert [_key(r) for r in loopback.received] == [
        "key-env-1", "key-configured", "key-configured", "key-env-2", "key-tenant",
        "key-async", "key-async"]
    assert _model(cloud.provider) is model  # the same model object throughout: no unload


def test_endpoint_changes_at_run_time_without_unload(
        cloud: Cloud, loopback: LoopbackServer) -> None:
    configure = importlib.import_module(f"mmsdk_{cloud.plugin}").configure
    with LoopbackServer() as other:
        other.default = Reply(body=cloud.ok)
        assert mmsdk.understand("hi", provider=cloud.provider).text == "ok"
        configure(base_url=other.url + cloud.path)
        assert mmsdk.understand("hi", provider=cloud.provider).text == "ok"
        assert (len(loopback.received), len(other.received)) == (1, 1)


def test_an_async_client_per_loop_in_each_plugin(cloud: Cloud) -> None:
    used: list[Any] = []

    async def ask() -> None:
        await mmsdk.aunderstand("hi", provider=cloud.provider)
        used.append(cloud.clients(_model(cloud.provider)).current(asyncio.get_running_loop()))

    asyncio.run(ask())
    asyncio.run(ask())
    assert used[0] is not None and used[1] is not None and used[0] is not used[1]


def test_no_key_in_any_plugin_error_chain(cloud: Cloud, loopback: LoopbackServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cloud.key_env, SECRET)
    # The server echoes the key, as some APIs do in a 401 body.
    loopback.default = Reply(status=401, body={"error": {
        "code": 401, "status": "UNAUTHENTICATED", "type": "authentication_error",
        "message": f"invalid key {SECRET}"}, "type": "error"})
    with pytest.raises(mmsdk.AuthenticationError) as refused:
        mmsdk.understand("hi", provider=cloud.provider)
    assert_keyless(refused.value, SECRET)
    loopback.default = Reply(drop=True)
    with pytest.raises(mmsdk.ProviderError) as dropped:
        mmsdk.understand("hi", provider=cloud.provider, policy=mmsdk.Policy(retries=0))
    assert_keyless(dropped.value, SECRET)
    assert all(_key(r) == SECRET for r in loopback.received)  # the key was sent


# -- fetching --------------------------------------------------------------------------------
def test_safe_fetch_keeps_the_core_rules_and_allows_named_hosts(
        loopback: LoopbackServer) -> None:
    loopback.default = Reply(body=b"\x89PNG-bytes", content_type="image/png")
    url = loopback.url + "/image.png"
    with pytest.raises(InvalidInputError):  # loopback: refused, as for a URL input
        safe_fetch(url, label="test image")
    assert safe_fetch(url, label="test image", allow_hosts=("127.0.0.1",)) == b"\x89PNG-bytes"


def test_cloud_plugins_import_only_the_public_plugin_api() -> None:
    import ast

    root = Path(__file__).resolve().parents[2] / "plugins"
    for plugin in ("openai", "anthropic", "gemini"):
        sources = sorted((root / f"mmsdk-{plugin}" / f"mmsdk_{plugin}").glob("*.py"))
        assert len(sources) > 3, plugin  # the plugin's modules were found
        for source in sources:
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                    if node.module == "mmsdk":  # public names of mmsdk itself only
                        assert not [a.name for a in node.names if a.name.startswith("_")], \
                            source.name
                else:
                    continue
                for module in modules:
                    assert module.partition(".")[0] != "mmsdk" or \
                        module in ("mmsdk", "mmsdk.plugin"), f"{source.name} imports {module}"
