"""A loopback HTTP server whose every endpoint answers whatever shape a test sets.

By default it behaves as a polite platform (an in-memory list of trunks, creates
that return `ST_` ids, deactivations). A test replaces the behaviour of one
endpoint with a shape from this module (`html(200)`, `redirect(302)`,
`echo_headers(400)`, `drip(...)`...) and then drives trunksync against it.
Every request is recorded, so a test can count creates.

    def test_x(hostile: HostileServer) -> None:
        hostile.answer(LIST, html(200))
        ...
        assert hostile.count(CREATE) == 0

The server runs in threads of the test process on 127.0.0.1, port 0. Shapes that
take time (a drip, a hang) wait on the server's `stopping` event, which the
fixture sets at teardown: no test sleeps, and nothing outlives its test.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

LIST = "list"
CREATE = "create"
DEACTIVATE = "deactivate"
CHECK_KEY = "check-key"
ENDPOINTS = (LIST, CREATE, DEACTIVATE, CHECK_KEY)
ELSEWHERE = "http://127.0.0.1:9/elsewhere"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    endpoint: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def text(self) -> str:
        """The request line, headers and body, as a naive server would echo them."""
        head = "".join(f"{name}: {value}\n" for name, value in self.headers)
        return f"{self.method} {self.path}\n{head}\n{self.body.decode('utf-8', 'replace')}"


@dataclass(frozen=True)
class Reply:
    """What to send back. `body` may be a function yielding chunks (sent until the
    client hangs up, with no length). `drip` sends the body one byte at a time,
    that many seconds apart. `hang` answers nothing until the server stops; `drop`
    closes the connection at once without a word (the request was read)."""

    status: int
    body: bytes | Callable[[], Iterator[bytes]] = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    drip: float | None = None
    hang: bool = False
    drop: bool = False


Behaviour = Callable[[Received, "HostileServer"], Reply]


@dataclass
class HostileServer:
    url: str
    stopping: threading.Event
    trunks: list[dict[str, str]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    arrived: dict[str, threading.Event] = field(
        default_factory=lambda: {name: threading.Event() for name in ENDPOINTS}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def answer(self, endpoint: str, behaviour: Behaviour) -> None:
        self.behaviours[endpoint] = behaviour

    def count(self, endpoint: str) -> int:
        with self.lock:
            return sum(1 for request in self.requests if request.endpoint == endpoint)

    def received(self, endpoint: str) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if request.endpoint == endpoint]

    def add_trunk(self, name: str, trunk_type: str = "exotel") -> str:
        trunk_id = f"ST_hostile{next(self._ids):04d}"
        with self.lock:
            self.trunks.append(
                {
                    "trunk_id": trunk_id,
                    "trunk_name": name,
                    "trunk_type": trunk_type,
                    # Now, in the API's format (ISO 8601 without a zone, UTC).
                    "trunk_created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f"),
                }
            )
        return trunk_id

    def list_payload(self) -> dict[str, Any]:
        with self.lock:
            return {"success": True, "message": "Trunks retrieved", "data": list(self.trunks)}

    def handle(self, request: Received) -> Reply:
        with self.lock:
            self.requests.append(request)
        self.arrived[request.endpoint].set()
        behaviour = self.behaviours.get(request.endpoint, POLITE[request.endpoint])
        return behaviour(request, self)


# --- the polite platform --------------------------------------------------------


def _polite_list(request: Received, server: HostileServer) -> Reply:
    return _json_reply(200, server.list_payload())


def _polite_create(request: Received, server: HostileServer) -> Reply:
    body = json.loads(request.body)
    trunk_id = server.add_trunk(body["trunk_name"], body["trunk_type"])
    return _json_reply(200, {"success": True, "message": "Created", "data": {"trunk_id": trunk_id}})


def _polite_deactivate(request: Received, server: HostileServer) -> Reply:
    trunk_id = request.path.rsplit("/", 1)[-1]
    with server.lock:
        found = [trunk for trunk in server.trunks if trunk["trunk_id"] == trunk_id]
        for trunk in found:
            server.trunks.remove(trunk)
    if not found:
        return _json_reply(404, {"detail": "Trunk not found"})
    return _json_reply(
        200, {"success": True, "message": "Deactivated", "data": {"trunk_id": trunk_id}}
    )


def _polite_check(request: Received, server: HostileServer) -> Reply:
    return _json_reply(200, {"success": True, "message": "API key is valid", "data": {}})


POLITE: dict[str, Behaviour] = {
    LIST: _polite_list,
    CREATE: _polite_create,
    DEACTIVATE: _polite_deactivate,
    CHECK_KEY: _polite_check,
}


# --- shapes -----------------------------------------------------------------------


def _json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def fixed(
    status: int, body: bytes = b"", content_type: str | None = "application/json"
) -> Behaviour:
    """The same answer every time."""
    return lambda request, server: Reply(status, body, content_type)


def json_answer(status: int, payload: Any) -> Behaviour:
    return fixed(status, json.dumps(payload).encode())


def html(status: int) -> Behaviour:
    page = b"<!DOCTYPE html>\n<html><body><h1>Down for maintenance</h1>\n</body></html>\n"
    return fixed(status, page, "text/html; charset=utf-8")


def redirect(status: int) -> Behaviour:
    return lambda request, server: Reply(status, b"", None, (("Location", ELSEWHERE),))


def list_of(items: list[Any]) -> Behaviour:
    """A 200 JSON list answer whose `data` is exactly `items` (well-formed or not)."""
    return json_answer(200, {"success": True, "message": "ok", "data": items})


def truncated_list() -> Behaviour:
    """The polite list, cut in the middle of its JSON (a proxy gave up)."""

    def reply(request: Received, server: HostileServer) -> Reply:
        text = json.dumps(server.list_payload()).encode()
        return Reply(200, text[: len(text) // 2])

    return reply


def huge(status: int, megabytes: int = 40) -> Behaviour:
    """A JSON-typed body far larger than any answer trunksync reads, streamed
    without a length until the client hangs up."""

    def chunks() -> Iterator[bytes]:
        yield b'{"success": true, "data": ['
        item = b'{"trunk_id": "ST_x", "trunk_name": "x"},' * 1024
        for _ in range(megabytes * 1024 * 1024 // len(item)):
            yield item

    return lambda request, server: Reply(status, chunks)


def drip(interval: float, inner: Behaviour | None = None) -> Behaviour:
    """The polite answer (or `inner`'s), one byte every `interval` seconds."""

    def reply(request: Received, server: HostileServer) -> Reply:
        answer = (inner or POLITE[request.endpoint])(request, server)
        return Reply(answer.status, answer.body, answer.content_type, answer.headers, interval)

    return reply


def hang() -> Behaviour:
    """Read the request, then say nothing until the server stops."""
    return lambda request, server: Reply(200, hang=True)


def dropped() -> Behaviour:
    """Read the request, then close the connection without answering."""
    return lambda request, server: Reply(200, drop=True)


def garbage(status: int = 200) -> Behaviour:
    return fixed(
        status, b"\xff\xfe\x00\x1b[2J\x1b]0;owned\x07\r\nnot json\x9b31m", "application/json"
    )


def echo_headers(status: int) -> Behaviour:
    """A proxy that echoes the request's headers (the Authorization one too)."""

    def reply(request: Received, server: HostileServer) -> Reply:
        head = "; ".join(f"{name}: {value}" for name, value in request.headers)
        return _json_reply(status, {"detail": f"bad request, headers were: {head}"})

    return reply


def echo_body(status: int, content_type: str = "text/plain") -> Behaviour:
    """A server that echoes the whole request, raw, as a text page."""
    return lambda request, server: Reply(status, request.text().encode(), content_type)


def echo_json_escaped(status: int) -> Behaviour:
    """The whole request, JSON-escaped inside an HTML page (quotes become \\")."""

    def reply(request: Received, server: HostileServer) -> Reply:
        page = f"<pre>{json.dumps(request.text())}</pre>"
        return Reply(status, page.encode(), "text/html")

    return reply


def echo_fastapi_422() -> Behaviour:
    """FastAPI's default 422: a `detail` list whose items echo the `input`, plus a
    `msg` that quotes a submitted value, as some validators do."""

    def reply(request: Received, server: HostileServer) -> Reply:
        submitted = json.loads(request.body) if request.body else {}
        config = submitted.get("trunk_config", {}) if isinstance(submitted, dict) else {}
        quoted = json.dumps(config)
        detail = [
            {
                "type": "value_error",
                "loc": ["body", "trunk_config"],
                "msg": f"Value error, unexpected config {quoted}",
                "input": submitted,
            },
            {
                "type": "string_type",
                "loc": ["body", "trunk_config", "password"],
                "msg": f"Input should be valid, got {config.get('password', '')!r}",
                "input": config.get("password"),
            },
        ]
        return _json_reply(422, {"detail": detail})

    return reply


def echo_cut(status: int, secrets: Iterable[str]) -> Behaviour:
    """An echo of the request cut off in the middle of the first secret found in it
    (a length-limited log line or error field)."""
    wanted = list(secrets)

    def reply(request: Received, server: HostileServer) -> Reply:
        text = request.text()
        cut = len(text)
        for secret in wanted:
            where = text.find(secret)
            if where >= 0:
                cut = min(cut, where + len(secret) // 2 + 4)
        return _json_reply(status, {"success": False, "message": text[:cut]})

    return reply


# --- the HTTP side ----------------------------------------------------------------


def _endpoint(method: str, path: str) -> str | None:
    if method == "GET" and path == "/sip/list":
        return LIST
    if method == "POST" and path == "/sip/create-outbound-trunk":
        return CREATE
    if method == "DELETE" and path.startswith("/sip/deactivate/"):
        return DEACTIVATE
    if method == "GET" and path == "/auth/check-key":
        return CHECK_KEY
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not every request

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # A request through a proxy names the whole URL (absolute form).
        path = urlsplit(self.path).path if self.path.startswith("http") else self.path
        endpoint = _endpoint(self.command, path)
        if endpoint is None:
            self._send(Reply(404, b'{"detail": "Not Found"}'))
            return
        request = Received(endpoint, self.command, self.path, tuple(self.headers.items()), body)
        self._send(self.server.hostile.handle(request))

    def _send(self, reply: Reply) -> None:
        stopping = self.server.hostile.stopping
        if reply.drop:
            self.close_connection = True
            return
        if reply.hang:
            stopping.wait()
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            if reply.content_type is not None:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            if callable(reply.body):
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                for chunk in reply.body():
                    if stopping.is_set():
                        return
                    self.wfile.write(chunk)
                return
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.drip is None:
                self.wfile.write(reply.body)
                return
            self.wfile.flush()
            for index in range(len(reply.body)):
                if stopping.wait(reply.drip):
                    self.close_connection = True
                    return
                self.wfile.write(reply.body[index : index + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up: that is its right


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, hostile: HostileServer) -> None:
        self.hostile = hostile
        super().__init__(("127.0.0.1", 0), _Handler)


def start() -> tuple[HostileServer, Callable[[], None]]:
    """A running server and the function that stops it."""
    hostile = HostileServer(url="", stopping=threading.Event())
    server = _Server(hostile)
    hostile.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="hostile-server", daemon=True
    )
    thread.start()

    def stop() -> None:
        hostile.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()

    return hostile, stop


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A hostile (by default polite) platform on loopback, stopped when the test ends."""
    server, stop = start()
    yield server
    stop()
