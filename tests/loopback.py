"""A loopback HTTP server that cloud-plugin tests script reply by reply.

Each test queues :class:`Reply` objects; the server answers requests in order
(the last reply repeats when the queue runs dry only if ``repeat=True``) and
records every request it received, so tests assert on what reached the wire.
Faults: any status with any headers, SSE streams (optionally stalling or
dropping mid-stream), hangs past the client's timeout, dropped connections and
malformed bodies. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        body: a dict/list (sent as JSON), ``bytes``/``str`` (sent raw), or ``None``.
        headers: extra response headers.
        events: SSE events; each a dict (``data:`` JSON line), a ``(event, data)``
            pair, or a raw ``str`` written as is. Sent instead of ``body``.
        hang: seconds to sleep before answering (past the client's timeout).
        drop: close the connection without answering.
        drop_after_events: close the connection after this many SSE events.
        stall_after_events: sleep ``stall`` seconds after this many SSE events.
        stall: how long a mid-stream stall lasts.
        content_type: overrides the content type.
        chunked: send ``body`` with chunked transfer encoding (no content-length).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Any] | None = None
    hang: float = 0.0
    drop: bool = False
    drop_after_events: int | None = None
    stall_after_events: int | None = None
    stall: float = 5.0
    content_type: str | None = None
    chunked: bool = False


@dataclass
class Received:
    """A request as it reached the server."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer:
    """A scripted HTTP server on 127.0.0.1 (use as a context manager)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.default: Reply | Callable[[Received], Reply] | None = None
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = self._quiet_disconnects  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.received.clear()
            self.default = None

    def _next(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            if self.replies:
                return self.replies.pop(0)
        if callable(self.default):
            return self.default(request)
        if self.default is not None:
            return self.default
        return Reply(status=599, body={"error": "loopback server: no reply queued"})

    def _quiet_disconnects(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-reply is part of the script, not an error to print."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            ThreadingHTTPServer.handle_error(self._server, request, client_address)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else keep-alive replies wait ~40 ms for an ACK

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(self.command, self.path, dict(self.headers.items()), body)
                reply = server._next(request)
                if reply.hang:
                    time.sleep(reply.hang)
                if reply.drop:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if reply.events is not None:
                    self._stream(reply)
                else:
                    self._plain(reply)

            def _plain(self, reply: Reply) -> None:
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, str):
                    payload, content_type = reply.body.encode(), "application/json"
                else:
                    payload, content_type = reply.body or b"", "application/octet-stream"
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type or content_type)
                if reply.chunked:
                    self.send_header("transfer-encoding", "chunked")
                else:
                    self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if not reply.chunked:
                    self.wfile.write(payload)
                    return
                for start in range(0, len(payload), 4096):
                    piece = payload[start:start + 4096]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def _stream(self, reply: Reply) -> None:
                # Chunked, as real APIs stream: a connection dropped before the
                # terminating chunk is a protocol error for the client, not a clean end.
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type or "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for index, chunk in enumerate(_sse(reply.events or [])):
                    if reply.drop_after_events is not None and index >= reply.drop_after_events:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if reply.stall_after_events is not None and \
                            index == reply.stall_after_events:
                        time.sleep(reply.stall)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                if reply.drop_after_events is not None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler


def _sse(events: list[Any]) -> Iterator[bytes]:
    for event in events:
        if isinstance(event, str):
            yield event.encode()
        elif isinstance(event, tuple):
            name, data = event
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        else:
            yield f"data: {json.dumps(event)}\n\n".encode()
