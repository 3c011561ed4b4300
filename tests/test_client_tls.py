"""The client over https, as against the real platform: its total deadline and a
cancel stop a request whose answer drips in, as they do over plain http.

TLS wraps the TCP socket in a new one; the watchdog must shut down that one (the
first is detached). A server here drips the status line and headers a byte at a
time, each gap shorter than a per-read timeout, so only the watchdog can stop the
request: it did when the server saw the client hang up before its last byte.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from trunksync.client import PlatformClient
from trunksync.errors import ApiError

KEY = "tls-test-key-000000001"
# ~200 bytes a byte at a time, 50 ms apart: ~10 s if nothing stops the request.
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 150
GAP = 0.05


class DripServer:
    """One loopback listener (TLS or plain) that reads a request, then drips HEAD."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.first_byte = threading.Event()
        self.hung_up = threading.Event()  # the client closed before HEAD was all sent
        self.stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self._context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def finish(self) -> None:
        self._thread.join()

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        self._thread.join()

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
        except OSError:
            return
        try:
            conn = self._context.wrap_socket(raw, server_side=True) if self._context else raw
            with conn:
                conn.recv(65536)
                self._drip(conn)
        except OSError:
            self.hung_up.set()

    def _drip(self, conn: socket.socket) -> None:
        for byte in HEAD:
            conn.sendall(bytes([byte]))
            self.sent += 1
            self.first_byte.set()
            if self.stop.wait(GAP):
                return


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["https", "http"])
def dripping(
    request: pytest.FixtureRequest, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DripServer]:
    context = None
    if request.param == "https":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # what httpx trusts
    server = DripServer(context)
    try:
        yield server
    finally:
        server.close()


def _hung_up_early(server: DripServer) -> bool:
    server.finish()  # it writes until the client's shutdown reaches it, or HEAD ends
    return server.hung_up.is_set() and server.sent < len(HEAD)


def test_the_deadline_stops_a_dripping_answer(dripping: DripServer) -> None:
    with (
        PlatformClient(dripping.url, KEY, timeout=0.5) as client,
        pytest.raises(ApiError, match="timed out"),
    ):
        client.list_trunks()
    assert _hung_up_early(dripping)


def test_a_cancel_stops_a_dripping_answer(dripping: DripServer) -> None:
    abort = threading.Event()
    with PlatformClient(dripping.url, KEY, timeout=60.0, cancel=abort, abort=abort) as client:
        threading.Thread(target=lambda: dripping.first_byte.wait() and abort.set()).start()
        with pytest.raises(ApiError):
            client.list_trunks()
    assert _hung_up_early(dripping)
