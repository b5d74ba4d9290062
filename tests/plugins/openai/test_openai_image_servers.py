"""OpenAI-compatible image servers (SGLang Diffusion, vLLM-Omni): generate and edit on the wire,
model discovery at GET /v1/models, and what ``mmsdk providers`` says about them."""

from __future__ import annotations

import base64
import io
import socket
import time
from typing import Any

import mmsdk_openai
import pytest
from loopback import LoopbackServer, Received, Reply
from mmsdk_openai import _discovery
from PIL import Image

import mmsdk
from mmsdk._registry import Registry, get_registry

FLUX = "black-forest-labs/FLUX.1-dev"


class ImageServer:
    """A loopback server answering as SGLang Diffusion and vLLM-Omni document their API.

    ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits``
    (multipart) answer ``{"created": ..., "data": [...]}`` with ``n`` images
    of the asked ``size``, as ``b64_json`` or as a URL the server then serves
    (``answer``: ``None`` follows the request's ``response_format``; ``"url"``,
    ``"relative"`` or ``"b64_json"`` force one). ``GET /v1/models`` lists
    ``models``. Everything received is recorded by the loopback server.
    """

    def __init__(self, server: LoopbackServer, wire: Any, models: tuple[str, ...] = (FLUX,),
                 answer: str | None = None, image_host: str | None = None) -> None:
        self.server, self.wire, self.models, self.answer = server, wire, models, answer
        self.image_host = image_host or server.url  # where url answers point
        self.files: dict[str, bytes] = {}
        server.default = self.reply

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"

    def reply(self, received: Received) -> Reply:
        method, path = received.method, received.path
        if method == "GET" and path == "/v1/models":
            return Reply(body={"object": "list", "data": [
                {"id": model, "object": "model", "created": 1, "owned_by": "sglang",
                 "root": model} for model in self.models]})
        if method == "GET" and path in self.files:
            return Reply(body=self.files[path], content_type="image/png")
        if method == "POST" and path == "/v1/images/generations":
            fields = received.json()
        elif method == "POST" and path == "/v1/images/edits":
            fields = {name: data.decode() for name, (filename, _, data)
                      in self.wire.multipart(received).items() if filename is None}
        else:
            return Reply(status=404, body={"detail": "Not Found"})
        width, height = map(int, str(fields.get("size", "64x64")).split("x"))
        answer = self.answer or fields.get("response_format", "url")
        data = []
        for _ in range(int(fields.get("n", 1))):
            png = self.wire.png((width, height))
            if answer == "b64_json":
                data.append({"b64_json": base64.b64encode(png).decode()})
                continue
            path = f"/v1/images/files/{len(self.files)}.png"
            self.files[path] = png
            data.append({"url": path if answer == "relative" else self.image_host + path})
        return Reply(body={"created": 1, "data": data})

    def posts(self) -> list[Received]:
        return [r for r in self.server.received if r.method == "POST"]

    def gets(self, path: str) -> list[Received]:
        return [r for r in self.server.received if r.method == "GET" and r.path == path]


@pytest.fixture
def sglang(loopback: LoopbackServer, wire: Any, endpoint_names: list[str]) -> ImageServer:
    """An image server registered as ``sglangtest`` with its model named."""
    server = ImageServer(loopback, wire)
    mmsdk_openai.add_endpoint("sglangtest", server.base_url, models=[FLUX],
                              capabilities=["generate"])
    endpoint_names.append("sglangtest")
    return server


def _dead_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


# -- generate --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [
    pytest.param({"size": "96x64"}, id="size"),
    pytest.param({"width": 96, "height": 64}, id="width-height"),
])
def test_every_option_reaches_the_server_as_the_fields_it_reads(sglang: ImageServer, wire,
                                                                 size: dict[str, Any]) -> None:
    result = mmsdk.generate("a lighthouse at dusk", provider="sglangtest", n=2, steps=28,
                            guidance=3.5, seed=7, negative_prompt="blurry, text", **size)

    [sent] = sglang.server.received
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert wire.body(sent) == {
        "model": FLUX, "prompt": "a lighthouse at dusk", "n": 2, "size": "96x64",
        "response_format": "b64_json", "num_inference_steps": 28, "guidance_scale": 3.5,
        "seed": 7, "negative_prompt": "blurry, text"}
    assert wire.header(sent, "authorization") == "Bearer not-needed"  # never OPENAI_API_KEY
    assert [image.size for image in result.images] == [(96, 64), (96, 64)]
    assert all(isinstance(image, Image.Image) for image in result.images)
    assert (result.provider, result.seed, result.usage.images) == (f"sglangtest:{FLUX}", 7, 2)


def test_without_options_only_prompt_n_and_format_are_sent(sglang: ImageServer, wire) -> None:
    result = mmsdk.generate("a dot", provider=f"sglangtest:{FLUX}")
    assert wire.body(sglang.server.received[0]) == {
        "model": FLUX, "prompt": "a dot", "n": 1, "response_format": "b64_json"}
    assert [image.size for image in result.images] == [(64, 64)]
    assert result.seed is None and result.usage.images == 1


@pytest.mark.parametrize("answer", ["url", "relative"])
def test_url_answers_are_fetched_from_the_server(loopback: LoopbackServer, wire,
                                                 endpoint_names: list[str], answer: str) -> None:
    # allow_private_urls stays off: only the registered server's own host is reachable
    server = ImageServer(loopback, wire, answer=answer)
    mmsdk_openai.add_endpoint("omniurl", server.base_url, models=["omni"],
                              capabilities=["generate"])
    endpoint_names.append("omniurl")
    result = mmsdk.generate("two boats", provider="omniurl", size="40x30", n=2)
    assert [image.size for image in result.images] == [(40, 30), (40, 30)]
    assert [r.path for r in loopback.received] == [
        "/v1/images/generations", "/v1/images/files/0.png", "/v1/images/files/1.png"]


def test_asking_for_urls_sends_response_format_url(loopback: LoopbackServer, wire,
                                                   endpoint_names: list[str]) -> None:
    server = ImageServer(loopback, wire)  # answers in the format asked for
    mmsdk_openai.add_endpoint("omniask", server.base_url, models=["omni"],
                              capabilities=["generate"])
    endpoint_names.append("omniask")
    result = mmsdk.generate("a boat", provider="omniask", options={"response_format": "url"})
    assert wire.body(server.posts()[0])["response_format"] == "url"
    assert result.images[0].size == (64, 64) and len(server.gets("/v1/images/files/0.png")) == 1


def test_a_url_on_another_private_host_is_not_fetched(loopback: LoopbackServer,
                                                      second: LoopbackServer, wire,
                                                      endpoint_names: list[str]) -> None:
    # The server is registered as 127.0.0.1; its answer points at "localhost", another name
    # for a loopback address, which only allow_private_urls or url_allow_hosts would open.
    elsewhere = second.url.replace("127.0.0.1", "localhost")
    ImageServer(loopback, wire, answer="url", image_host=elsewhere)
    mmsdk_openai.add_endpoint("omnielse", loopback.url + "/v1", models=["omni"],
                              capabilities=["generate"])
    endpoint_names.append("omnielse")
    with pytest.raises(mmsdk.ProviderServerError, match=r"could not be fetched.*refused"):
        mmsdk.Router("omnielse", mmsdk.Policy(retries=0)).generate("a boat")
    assert second.received == []


async def test_async_generate_decodes_b64_and_fetches_urls(loopback: LoopbackServer, wire,
                                                           endpoint_names: list[str]) -> None:
    server = ImageServer(loopback, wire)
    mmsdk_openai.add_endpoint("omniasync", server.base_url, models=["omni"],
                              capabilities=["generate"])
    endpoint_names.append("omniasync")
    b64 = await mmsdk.agenerate("a", provider="omniasync", size="24x16", seed=3)
    url = await mmsdk.agenerate("b", provider="omniasync", size="24x16",
                                options={"response_format": "url"})
    assert (b64.images[0].size, b64.seed, url.images[0].size) == ((24, 16), 3, (24, 16))
    assert wire.body(server.posts()[0])["seed"] == 3
    assert len(server.gets("/v1/images/files/0.png")) == 1


def test_edit_goes_to_images_edits_as_multipart(sglang: ImageServer, wire) -> None:
    result = mmsdk.generate("add a moon", provider="sglangtest", image=wire.png((32, 24)),
                            size="32x24", steps=20, guidance=4.0, seed=11,
                            negative_prompt="sun")
    [sent] = sglang.server.received
    assert sent.path == "/v1/images/edits"
    fields = wire.multipart(sent)
    assert {name: data for name, (filename, _, data) in fields.items() if filename is None} == {
        "model": FLUX.encode(), "prompt": b"add a moon", "n": b"1", "size": b"32x24",
        "response_format": b"b64_json", "num_inference_steps": b"20",
        "guidance_scale": b"4.0", "seed": b"11", "negative_prompt": b"sun"}
    filename, content_type, data = fields["image"]
    assert (filename, content_type) == ("image.png", "image/png")
    assert Image.open(io.BytesIO(data)).size == (32, 24)
    assert (result.images[0].size, result.seed) == ((32, 24), 11)


@pytest.mark.parametrize("kwargs, error", [
    pytest.param({"control_image": "png", "control_type": "canny"}, mmsdk.CapabilityError,
                 id="control_image"),
    pytest.param({"image": "png", "mask": "png"}, mmsdk.CapabilityError, id="mask"),
    pytest.param({"image": "png", "strength": 0.5}, mmsdk.CapabilityError, id="strength"),
    pytest.param({"scheduler": "euler"}, mmsdk.CapabilityError, id="scheduler"),
    pytest.param({"reference_image": "png"}, mmsdk.CapabilityError, id="reference_image"),
    pytest.param({"options": {"quality": "high"}}, mmsdk.InvalidInputError, id="unknown-option"),
    pytest.param({"options": {"response_format": "png"}}, mmsdk.InvalidInputError,
                 id="bad-response-format"),
    pytest.param({"width": 512}, mmsdk.InvalidInputError, id="width-alone"),
])
def test_what_the_server_cannot_honour_fails_before_any_request(
        sglang: ImageServer, wire, kwargs: dict[str, Any], error: type[Exception]) -> None:
    kwargs = {k: wire.png((16, 16)) if v == "png" else v for k, v in kwargs.items()}
    with pytest.raises(error):
        mmsdk.generate("a boat", provider="sglangtest", **kwargs)
    assert sglang.server.received == []


def test_model_metadata_declares_what_the_servers_read(sglang: ImageServer) -> None:
    info = get_registry().resolve("sglangtest", mmsdk.Capability.GENERATE).info
    assert info.capabilities == {mmsdk.Capability.GENERATE}
    assert info.supports == {"negative_prompt", "width", "height", "steps", "guidance", "seed",
                             "n", "image"}
    assert info.local and info.max_n >= 4
    with pytest.raises(mmsdk.CapabilityError, match="cannot understand"):
        mmsdk.understand("Describe", provider=f"sglangtest:{FLUX}")


def test_an_endpoint_can_chat_and_make_images(loopback: LoopbackServer, wire,
                                              endpoint_names: list[str]) -> None:
    server = ImageServer(loopback, wire)
    image_reply = server.reply
    loopback.default = lambda received: (
        Reply(body=wire.chat("a boat")) if received.path == "/v1/chat/completions"
        else image_reply(received))
    mmsdk_openai.add_endpoint("omniboth", server.base_url, models=["omni"],
                              capabilities=["understand", "generate"])
    endpoint_names.append("omniboth")
    assert mmsdk.understand("What is it?", provider="omniboth").text == "a boat"
    assert mmsdk.generate("a boat", provider="omniboth", steps=4).images[0].size == (64, 64)
    assert [r.path for r in loopback.received] == ["/v1/chat/completions",
                                                   "/v1/images/generations"]
    with pytest.raises(mmsdk.CapabilityError, match="cannot classify"):
        mmsdk.classify(wire.png(), ["a", "b"], provider="omniboth:omni")


@pytest.mark.parametrize("capabilities", [["embed"], ["paint"], []])
def test_capabilities_an_endpoint_cannot_offer_are_refused(capabilities: list[str]) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="capabilit"):
        mmsdk_openai.add_endpoint("badcaps", "http://localhost:8000/v1",
                                  capabilities=capabilities)


# -- discovery ---------------------------------------------------------------------------
def test_models_are_asked_of_the_server_once(loopback: LoopbackServer, wire,
                                            endpoint_names: list[str]) -> None:
    server = ImageServer(loopback, wire, models=(FLUX, "other"))
    mmsdk_openai.add_endpoint("omnidisc", server.base_url, capabilities=["generate"])
    endpoint_names.append("omnidisc")
    assert loopback.received == []  # registering asks nothing
    [status] = [s for s in mmsdk.providers() if s.name == "omnidisc"]
    assert (status.capabilities, status.models, status.usable) == (  # every model it serves
        [mmsdk.Capability.GENERATE], [FLUX, "other"], True)
    results = [mmsdk.generate("a", provider="omnidisc") for _ in range(2)]
    assert [r.provider for r in results] == [f"omnidisc:{FLUX}"] * 2
    assert len(server.gets("/v1/models")) == 1
    assert [wire.body(r)["model"] for r in server.posts()] == [FLUX, FLUX]


def test_naming_a_model_asks_for_no_list(loopback: LoopbackServer, wire,
                                        endpoint_names: list[str]) -> None:
    server = ImageServer(loopback, wire)
    mmsdk_openai.add_endpoint("omniname", server.base_url, capabilities=["generate"])
    endpoint_names.append("omniname")
    mmsdk.generate("a", provider="omniname:my-model")
    assert [r.path for r in loopback.received] == ["/v1/images/generations"]


def test_a_server_that_is_down_is_reported_unavailable(endpoint_names: list[str]) -> None:
    dead = _dead_url()
    mmsdk_openai.add_endpoint("omnidown", dead, capabilities=["generate"])
    endpoint_names.append("omnidown")
    [status] = [s for s in mmsdk.providers() if s.name == "omnidown"]
    assert status.capabilities == [mmsdk.Capability.GENERATE] and not status.usable
    assert f"GET {dead}/models failed (ConnectError)" in status.reason
    assert "models=[...]" in status.fix
    with pytest.raises(mmsdk.ProviderUnavailableError, match="models failed"):
        mmsdk.generate("a", provider="omnidown")


def test_a_server_that_hangs_is_given_up_on_in_time(loopback: LoopbackServer, wire,
                                                    endpoint_names: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_discovery, "DISCOVERY_TIMEOUT", 0.3)
    loopback.default = Reply(hang=3.0, body={"object": "list", "data": [{"id": "late"}]})
    mmsdk_openai.add_endpoint("omnihang", loopback.url + "/v1", capabilities=["generate"])
    endpoint_names.append("omnihang")
    started = time.monotonic()
    [status] = [s for s in mmsdk.providers() if s.name == "omnihang"]
    assert time.monotonic() - started < 2.5
    assert not status.usable and "did not answer within 0.3 s" in status.reason
    # asked once: the next need within RETRY_AFTER reuses the verdict
    with pytest.raises(mmsdk.ProviderUnavailableError):
        mmsdk.generate("a", provider="omnihang")
    assert len(loopback.received) == 1


@pytest.mark.parametrize("reply, reason", [
    pytest.param(Reply(status=404, body={"detail": "Not Found"}), "answered HTTP 404",
                 id="404"),
    pytest.param(Reply(body={"object": "list", "data": []}), "listed no models", id="empty"),
    pytest.param(Reply(body=b"<html>", content_type="text/html"), "not answer with a model list",
                 id="not-json"),
])
def test_a_server_without_a_model_list_says_why(loopback: LoopbackServer, endpoint_names,
                                                reply: Reply, reason: str) -> None:
    loopback.default = reply
    mmsdk_openai.add_endpoint("omnibad", loopback.url + "/v1", capabilities=["generate"])
    endpoint_names.append("omnibad")
    [status] = [s for s in mmsdk.providers() if s.name == "omnibad"]
    assert not status.usable and reason in status.reason


def test_a_server_that_comes_up_later_is_asked_again(loopback: LoopbackServer, wire,
                                                     endpoint_names: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_discovery, "RETRY_AFTER", 0.0)
    loopback.queue(Reply(status=503, body={"detail": "loading"}))
    server = ImageServer(loopback, wire)
    mmsdk_openai.add_endpoint("omnilate", server.base_url, capabilities=["generate"])
    endpoint_names.append("omnilate")
    with pytest.raises(mmsdk.ProviderUnavailableError, match="HTTP 503"):
        mmsdk.generate("a", provider="omnilate")
    assert mmsdk.generate("a", provider="omnilate").provider == f"omnilate:{FLUX}"
    assert len(server.gets("/v1/models")) == 2


# -- the environment variable ------------------------------------------------------------
def test_environment_variable_registers_image_servers(loopback: LoopbackServer,
                                                      second: LoopbackServer, wire,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    named, listed = ImageServer(loopback, wire), ImageServer(second, wire, models=("omni-x",))
    monkeypatch.setenv("MMSDK_OPENAI_COMPATIBLE",
                       f"envflux(generate)#{FLUX}={named.base_url}; "
                       f"envomni ( generate, understand )={listed.base_url}")
    registry = Registry()
    registry.add_plugin(mmsdk_openai, "mmsdk_openai-envimages")
    try:
        assert registry.specs["envflux"].capabilities == {mmsdk.Capability.GENERATE}
        assert registry.specs["envomni"].capabilities == {mmsdk.Capability.GENERATE,
                                                          mmsdk.Capability.UNDERSTAND}
        first = mmsdk.Router("envflux", registry=registry).generate("a", steps=9, seed=1)
        other = mmsdk.Router("envomni", registry=registry).generate("b", guidance=2.0)
        assert (first.provider, other.provider) == (f"envflux:{FLUX}", "envomni:omni-x")
        assert wire.body(named.posts()[0])["num_inference_steps"] == 9
        assert wire.body(listed.posts()[0])["guidance_scale"] == 2.0
        assert (len(named.gets("/v1/models")), len(listed.gets("/v1/models"))) == (0, 1)
    finally:
        registry.unload()


@pytest.mark.parametrize("value", [
    pytest.param("img(paint)=http://localhost:8000/v1", id="unknown-capability"),
    pytest.param("img(generate=http://localhost:8000/v1", id="unclosed"),
    pytest.param("img()=http://localhost:8000/v1", id="empty"),
    pytest.param("img(generate)", id="no-url"),
])
def test_malformed_environment_entries_are_refused(value: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=r"MMSDK_OPENAI_COMPATIBLE|capabilit"):
        mmsdk_openai._endpoints.endpoints_from_env(value)
