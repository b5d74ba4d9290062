"""understand through google-genai: inline images, options, streaming, schemas, video."""

from __future__ import annotations

from pathlib import Path

import mmsdk_gemini
from loopback import LoopbackServer, Reply
from pydantic import BaseModel

import mmsdk


class Receipt(BaseModel):
    total: float
    currency: str


def test_inline_images_and_call_options_reach_the_wire(api: LoopbackServer, wire, ok) -> None:
    api.queue(Reply(body=wire.answer("Two shapes.", prompt_tokens=300, output_tokens=3)))
    big = wire.picture(4000, 1000, "blue")  # long edge over 3072: prepare() shrinks it
    result = mmsdk.understand(
        "What is shown?", images=[wire.picture(), big], provider=wire.PROVIDER,
        system="Answer tersely.", max_tokens=50, temperature=0.2, detail="low",
        options={"seed": 7, "top_k": 3})

    assert result.text == "Two shapes."
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.images) == \
        (300, 3, 2)
    assert result.finish_reason == "stop" and result.model == wire.MODEL
    [request] = api.received
    assert request.method == "POST" and request.path == wire.GENERATE_PATH
    assert request.headers["x-goog-api-key"] == wire.KEY
    inline = wire.inline(request)
    assert [wire.mime(i) for i in inline] == ["image/png", "image/png"]
    assert [wire.decoded(i).size for i in inline] == [(64, 48), (3072, 768)]
    assert wire.parts(request)[-1] == {"text": "What is shown?"}
    body = request.json()
    assert body["systemInstruction"]["parts"] == [{"text": "Answer tersely."}]
    assert wire.config(request) == {"maxOutputTokens": 50, "temperature": 0.2, "seed": 7,
                                    "topK": 3, "mediaResolution": "MEDIA_RESOLUTION_LOW"}


def test_policy_timeout_is_passed_to_the_sdk(api: LoopbackServer, wire, ok) -> None:
    api.queue(ok)
    router = mmsdk.Router("gemini", policy=mmsdk.Policy(timeout=7.5))
    router.understand("Hi", images=[wire.picture()])
    # HttpOptions.timeout is in milliseconds; the SDK forwards it as X-Server-Timeout seconds.
    assert api.received[0].headers["X-Server-Timeout"] == "8"


def test_bare_plugin_name_uses_the_default_model_and_env_override(
        api: LoopbackServer, wire, ok, monkeypatch) -> None:
    api.queue(ok, Reply(body=wire.answer()))
    mmsdk.understand("Hi", provider="gemini")
    monkeypatch.setenv("MMSDK_GEMINI_MODEL", "gemini-2.5-flash")
    result = mmsdk.understand("Hi", provider="gemini")
    assert [r.path for r in api.received] == [
        "/v1/models/gemini-3.8-flash:generateContent",
        "/v1/models/gemini-2.5-flash:generateContent"]
    assert result.provider == "gemini:gemini-2.5-flash"


def test_stream_yields_chunks_and_a_final_result(api: LoopbackServer, wire) -> None:
    api.queue(Reply(events=wire.chunks("A red ", "square ", "on white.")))
    stream = mmsdk.understand("Describe", images=[wire.picture()], provider=wire.PROVIDER,
                              stream=True)
    chunks = list(stream)
    assert chunks == ["A red ", "square ", "on white."]
    assert stream.result.text == "A red square on white."
    assert stream.result.usage.output_tokens == 3 and stream.result.finish_reason == "stop"
    [request] = api.received
    assert request.path == wire.STREAM_PATH
    assert len(wire.inline(request)) == 1


def test_schema_is_sent_natively_and_validated(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.answer('{"total": 12.5, "currency": "EUR"}')))
    result = mmsdk.understand("Extract the total", images=[wire.picture()],
                              provider=wire.PROVIDER, schema=Receipt)
    assert result.data == Receipt(total=12.5, currency="EUR")
    config = wire.config(api.received[0])
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == Receipt.model_json_schema()


def test_thought_parts_are_not_part_of_the_answer(api: LoopbackServer, wire) -> None:
    body = wire.answer("Final.")
    body["candidates"][0]["content"]["parts"].insert(0, {"text": "hmm...", "thought": True})
    body["usageMetadata"]["thoughtsTokenCount"] = 20
    api.queue(Reply(body=body))
    result = mmsdk.understand("Hi", provider=wire.PROVIDER)
    assert result.text == "Final."
    assert result.usage.output_tokens == 24  # thinking tokens are billed as output


def test_small_video_goes_inline(api: LoopbackServer, wire, clip: Path) -> None:
    api.queue(Reply(body=wire.answer("A fade.")))
    result = mmsdk.understand("What happens?", video=clip, provider=wire.PROVIDER)
    assert result.text == "A fade."
    [request] = api.received
    [inline] = wire.inline(request)
    assert wire.mime(inline) == "video/mp4"
    assert wire.data(inline) == clip.read_bytes()
    assert not any("fileData" in part for part in wire.parts(request))


def _upload_replies(server: LoopbackServer, wire) -> list[Reply]:
    return [
        Reply(body={}, headers={"x-goog-upload-url": f"{server.url}/upload/session-1",
                                "x-goog-upload-status": "active"}),
        Reply(body={"file": {"name": "files/clip1", "mimeType": "video/mp4",
                             "uri": "https://files.example/v1/files/clip1",
                             "state": "PROCESSING"}},
              headers={"x-goog-upload-status": "final"}),
        Reply(body={"name": "files/clip1", "mimeType": "video/mp4", "state": "PROCESSING",
                    "uri": "https://files.example/v1/files/clip1"}),
        Reply(body={"name": "files/clip1", "mimeType": "video/mp4", "state": "ACTIVE",
                    "uri": "https://files.example/v1/files/clip1"}),
    ]


def test_large_video_goes_through_the_files_api(api: LoopbackServer, wire, clip: Path) -> None:
    mmsdk_gemini.configure(inline_request_bytes=1024)  # the clip is ~1 KB: over the limit
    api.queue(*_upload_replies(api, wire), Reply(body=wire.answer("A fade.")))
    result = mmsdk.understand("What happens?", video=clip, images=[wire.picture(8, 8)],
                              provider=wire.PROVIDER)
    assert result.text == "A fade."
    start, chunk, poll1, poll2, generate = api.received
    assert (start.method, start.path) == ("POST", "/upload/v1/files")
    assert start.headers["X-Goog-Upload-Protocol"] == "resumable"
    assert start.headers["X-Goog-Upload-Command"] == "start"
    assert start.headers["X-Goog-Upload-Header-Content-Length"] == str(clip.stat().st_size)
    assert start.headers["X-Goog-Upload-Header-Content-Type"] == "video/mp4"
    assert chunk.path == "/upload/session-1" and chunk.body == clip.read_bytes()
    assert chunk.headers["X-Goog-Upload-Command"] == "upload, finalize"
    assert (poll1.method, poll1.path, poll2.path) == ("GET", "/v1/files/clip1", "/v1/files/clip1")
    assert generate.path == wire.GENERATE_PATH
    parts = wire.parts(generate)
    # the small image stays inline; the video is referenced by its file URI
    assert [wire.mime(i) for i in wire.inline(generate)] == ["image/png"]
    [file_part] = [p["fileData"] for p in parts if "fileData" in p]
    assert wire.field(file_part, "fileUri") == "https://files.example/v1/files/clip1"
    assert wire.mime(file_part) == "video/mp4"


def test_a_retry_reuses_the_uploaded_file(api: LoopbackServer, wire, clip: Path) -> None:
    mmsdk_gemini.configure(inline_request_bytes=1024)
    api.queue(*_upload_replies(api, wire)[:2],
              Reply(body={"name": "files/clip1", "state": "ACTIVE",
                          "uri": "https://files.example/v1/files/clip1"}),
              Reply(status=503, body=wire.error(503, "UNAVAILABLE", "overloaded")),
              Reply(body=wire.answer("A fade.")))
    router = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(retries=1, backoff=0))
    result = router.understand("What happens?", video=clip)
    assert result.text == "A fade."
    paths = [r.path for r in api.received]
    assert paths == ["/upload/v1/files", "/upload/session-1", "/v1/files/clip1",
                     wire.GENERATE_PATH, wire.GENERATE_PATH]
    assert [a.outcome for a in result.attempts] == ["error", "ok"]


async def test_async_understand_and_stream(api: LoopbackServer, wire, clip: Path) -> None:
    mmsdk_gemini.configure(inline_request_bytes=1024)
    api.queue(*_upload_replies(api, wire), Reply(body=wire.answer("Async.")),
              Reply(events=wire.chunks("as", "ync")))
    result = await mmsdk.aunderstand("Hi", video=clip, provider=wire.PROVIDER, system="S")
    assert result.text == "Async."
    stream = await mmsdk.aunderstand("Hi", images=[wire.picture()], provider=wire.PROVIDER,
                                     stream=True)
    assert [chunk async for chunk in stream] == ["as", "ync"]
    assert stream.result.text == "async"
    paths = [r.path for r in api.received]
    assert paths == ["/upload/v1/files", "/upload/session-1", "/v1/files/clip1",
                     "/v1/files/clip1", wire.GENERATE_PATH, wire.STREAM_PATH]
    assert "fileData" in wire.parts(api.received[4])[0]


def test_a_retry_resumes_waiting_for_a_file_still_processing(api: LoopbackServer, wire,
                                                             clip: Path) -> None:
    mmsdk_gemini.configure(inline_request_bytes=1024)
    api.queue(*_upload_replies(api, wire)[:2],
              Reply(status=503, body=wire.error(503, "UNAVAILABLE", "busy")),  # the poll fails
              _upload_replies(api, wire)[3],
              Reply(body=wire.answer("A fade.")))
    router = mmsdk.Router(wire.PROVIDER, policy=mmsdk.Policy(retries=1, backoff=0))
    assert router.understand("What happens?", video=clip).text == "A fade."
    # the second attempt asks about the file the first one uploaded instead of uploading again
    assert [r.path for r in api.received] == [
        "/upload/v1/files", "/upload/session-1", "/v1/files/clip1", "/v1/files/clip1",
        wire.GENERATE_PATH]
