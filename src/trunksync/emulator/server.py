"""Serving the emulator with uvicorn: in the foreground (the CLI) or in a thread (tests)."""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from trunksync.emulator.app import DroppedConnection, EmulatorState, create_app
from trunksync.emulator.config import EmulatorConfig

# In-flight requests (a `slow` fault, say) get this long after SIGTERM/SIGINT.
GRACEFUL_SHUTDOWN_SECONDS = 2


def announce_line(url: str) -> None:
    """The one line a script reads to learn where the emulator listens."""
    sys.stdout.write(f"trunksync emulator listening on {url}\n")
    sys.stdout.flush()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 lets the OS pick a free port.

    It listens before we announce the URL, so a client that connects at once
    waits in the backlog instead of being refused while uvicorn starts.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_for(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{port}"


class _QuietDrops(logging.Filter):
    """Log a drop-after fault as one line, not as an "Exception in ASGI application" trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], DroppedConnection):
            record.msg, record.args = "%s", (record.exc_info[1],)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _ClosingServer(uvicorn.Server):
    """A uvicorn server that closes the emulator's store once connections are closed.

    Here and not after run() returns: on SIGTERM/SIGINT uvicorn re-raises the
    signal at the end of run(), which kills the process before any code after it.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._emulator_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        close_app(self._emulator_app)


def _uvicorn_server(app: FastAPI, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # After uvicorn.Config, which (re)configures its loggers; dictConfig keeps filters.
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in error_log.filters):
        error_log.addFilter(_QuietDrops())
    return _ClosingServer(config, app)


def serve(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    announce: Callable[[str], None] = announce_line,
    log_level: str = "warning",
) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn handles both and shuts down cleanly)."""
    app = create_app(config)  # first, so a bad data file fails before we bind
    # The loaded trunks live as long as the process: keep the collector from
    # rescanning them (10,000 records) on every collection while serving.
    gc.freeze()
    try:
        sock = bind_socket(host, port)
        with sock:
            announce(url_for(host, sock))
            _uvicorn_server(app, log_level).run(sockets=[sock])
    finally:
        close_app(app)


def close_app(app: FastAPI) -> None:
    """Fold the data file's log into the data file (a no-op without --data; idempotent)."""
    state: EmulatorState = app.state.emulator
    state.store.close()


@dataclass
class RunningEmulator:
    """An emulator served from a background thread of this process."""

    url: str
    app: FastAPI
    config: EmulatorConfig
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def state(self) -> EmulatorState:
        """Direct access to trunks, stats and faults (same event loop rules apply)."""
        state: EmulatorState = self.app.state.emulator
        return state

    def stop(self, timeout: float = 10.0) -> None:
        # force_exit too: a test must not wait for a `slow` fault's sleep to end.
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the emulator thread did not stop")


def start_in_thread(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> RunningEmulator:
    """Start an emulator on a free loopback port; returns once it accepts requests."""
    app = create_app(config)
    try:
        sock = bind_socket(host, 0)
    except BaseException:
        close_app(app)
        raise
    url = url_for(host, sock)
    server = _uvicorn_server(app, log_level)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # uvicorn may even sys.exit(); report it
            failure.append(error)
        finally:
            sock.close()
            close_app(app)

    thread = threading.Thread(target=run, name="trunksync-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    # Poll a condition, not a fixed sleep: uvicorn offers no started-callback.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(startup_timeout)
            raise RuntimeError(f"the emulator did not start: {failure or 'timeout'}")
        time.sleep(0.005)
    return RunningEmulator(url, app, config, server, thread)


@contextlib.contextmanager
def running_emulator(
    config: EmulatorConfig, host: str = "127.0.0.1", log_level: str = "warning"
) -> Iterator[RunningEmulator]:
    """`with running_emulator(config) as emu: httpx.get(emu.url + ...)`."""
    emulator = start_in_thread(config, host=host, log_level=log_level)
    try:
        yield emulator
    finally:
        emulator.stop()
