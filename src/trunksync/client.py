"""The platform API client: the only module that speaks HTTP.

Its central job is to say, for every create, which of three things happened:
- created (a well-formed trunk id came back),
- not created for sure (never sent, or the server refused it with a 4xx),
- outcome unknown (sent, then a 5xx, a timeout, a dropped connection, or an
  answer that is not the documented one): the trunk may exist, so the caller
  must check the list before creating again.
Only requests that provably never reached the server, and 429s, are retried.

Every answer is evidence, never trusted: the parsers below are pure functions
of (status, content type, body) that accept only the documented shapes, and
every text taken from an answer goes through `describe_answer` (scrubbed of
every secret, escaped, bounded) before it can reach a message. Every request
has one total deadline (connect, headers and body together), and a cancel
event abandons waits and requests in flight at once.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import httpx
import tenacity

from trunksync.defaults import DEFAULT_API_URL
from trunksync.errors import ApiError, TrunksyncError
from trunksync.ids import is_trunk_id, is_trunk_type
from trunksync.loopback import is_loopback
from trunksync.reconcile import RemoteTrunk
from trunksync.sanitize import Scrubber, bounded, printable

__all__ = [
    "DEFAULT_API_URL",
    "Answer",
    "MalformedAnswer",
    "OutcomeUnknown",
    "PlatformClient",
    "RateLimited",
    "RemoteTrunk",
    "RequestNotSent",
    "RequestRejected",
    "check_api_url",
    "describe_answer",
    "parse_create_answer",
    "parse_deactivate_answer",
    "parse_list_answer",
]

MAX_RETRY_AFTER = 30.0
# A list of 10,000 trunks is about 1.5 MB; anything past this is not a list of ours.
LIST_BODY_LIMIT = 16 * 1024 * 1024
# Create, deactivate and error answers are a few hundred bytes.
ANSWER_BODY_LIMIT = 64 * 1024
MAX_NAME = 1000  # the API caps names at 100; a longer one is not a trunk of this API
MAX_CREATED_AT = 64
MAX_DETAIL_ITEMS = 5
# How often the watchdog looks at the cancel event while requests are in flight.
WATCH_TICK = 0.05
# The shortest wait of the watchdog: with a tiny budget, a deadline is late by at most this.
MIN_WATCH_WAIT = 0.005

ALREADY_GONE_404 = "Trunk not found"
ALREADY_GONE_400 = "already deactivated"


class RequestNotSent(ApiError):
    """The request never reached the server: nothing was created."""


class RequestRejected(ApiError):
    """The server answered with a 4xx: nothing was created."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class OutcomeUnknown(ApiError):
    """The request was sent but no usable answer came back: it may have been created.

    `answered` is True only for a 2xx that cannot be used (a garbled 200): the
    platform itself has finished with the request, so its list already shows the
    outcome. A 5xx or a 3xx is not that: a gateway in front of the platform (502,
    503, 504) answers while the platform may still be creating, and the platform's
    own 500 may come from a call to LiveKit that goes on without it.
    """

    def __init__(self, message: str, answered: bool = False) -> None:
        self.answered = answered
        super().__init__(message)


class RateLimited(ApiError):
    """429: nothing was done; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class MalformedAnswer(ApiError):
    """The server answered, but not with the documented shape: the answer is not used."""


class AnswerTooLarge(MalformedAnswer):
    """An answer (of HTTP `status`) over the size cap: it was not read further."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class RetryPolicy(NamedTuple):
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 8.0


class Answer(NamedTuple):
    """One complete HTTP answer, as read (body already size-capped)."""

    status: int
    content_type: str
    body: bytes


# --- URLs -------------------------------------------------------------------


def check_api_url(url: str) -> str:
    """Refuse credentials in the URL, and plain http except on loopback (the emulator).

    No message repeats a URL that may hold a credential: a user name, a password,
    a query or a fragment is refused by naming the part, never by quoting it.
    """
    if "@" in url:
        raise TrunksyncError(
            "the API URL must not contain a user name or password (user:pass@host): "
            "give only https://HOST and put the API key in TRUNKSYNC_API_KEY"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise TrunksyncError(f"invalid API URL {_shown(url)}: expected https://HOST") from None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise TrunksyncError(
            "the API URL must not contain a query or fragment (?... or #...): give only "
            "https://HOST, and put the API key in TRUNKSYNC_API_KEY"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TrunksyncError(f"invalid API URL {_shown(url)}: expected https://HOST")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise TrunksyncError(
            f"refusing plain http:// for {printable(bounded(parts.hostname, 120))}: "
            "the API key would travel unencrypted; use https:// (http is allowed only for loopback)"
        )
    return url.rstrip("/")


def _shown(text: str) -> str:
    return repr(printable(bounded(text, 120)))


# --- answers: pure functions of (status, content type, body) ----------------


def describe_answer(answer: Answer, scrubber: Scrubber, *, raw: bool = False) -> str:
    """The one way any answer becomes text: `HTTP 422: <message>` or, when the answer
    has no message in a documented error shape (or `raw`), its content type, size and
    a short excerpt. Every secret the scrubber knows is removed before anything is
    cut; control characters are escaped; the result is one bounded line."""
    message = "" if raw else _server_message(answer)
    if message:
        return f"HTTP {answer.status}: {scrubber.clean(message)}"
    kind = scrubber.excerpt(answer.content_type, 60) or "no content type"
    if not answer.body:
        return f"HTTP {answer.status}, {kind}, empty body"
    text = answer.body.decode("utf-8", errors="replace")
    return f'HTTP {answer.status}, {kind}, {len(answer.body)} bytes: "{scrubber.excerpt(text)}"'


def parse_list_answer(answer: Answer, scrubber: Scrubber) -> list[RemoteTrunk]:
    """The trunks of a `GET /sip/list` answer, or an error: never a guess.

    Only a 200 JSON object whose `data` is a list of well-formed trunks is a list.
    A trunk of a type trunksync does not manage is kept (the plan compares types).
    """
    _raise_for_error_status(answer, scrubber, "GET /sip/list")
    payload = _documented_payload(answer)
    items = payload.get("data") if payload is not None else None
    if not isinstance(items, list):
        raise _malformed("GET /sip/list", "not a JSON object with a `data` list", answer, scrubber)
    trunks: list[RemoteTrunk] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        trunk = _list_item(item)
        if trunk is None or trunk.trunk_id in seen:
            problem = "a repeated trunk id" if trunk else "a malformed trunk"
            raise _malformed("GET /sip/list", f"item {position + 1} is {problem}", answer, scrubber)
        seen.add(trunk.trunk_id)
        trunks.append(trunk)
    return trunks


def parse_create_answer(answer: Answer, scrubber: Scrubber) -> str:
    """The new trunk's id, or: RequestRejected (4xx, surely not created), or
    OutcomeUnknown for a 5xx, a 3xx, or any 2xx that is not the documented JSON
    with a well-formed id (the list decides; nothing is stored). Only the 2xx
    counts as `answered` (see OutcomeUnknown)."""
    if answer.status >= 500:
        raise OutcomeUnknown(describe_answer(answer, scrubber))
    if 400 <= answer.status < 500:
        _raise_for_error_status(answer, scrubber)
    payload = _documented_payload(answer)
    data = payload.get("data") if payload is not None else None
    trunk_id = data.get("trunk_id") if isinstance(data, dict) else None
    if not is_trunk_id(trunk_id):
        problem = "no well-formed trunk id" if payload is not None else "not the documented JSON"
        raise OutcomeUnknown(
            f"unexpected answer to create ({problem}): "
            f"{describe_answer(answer, scrubber, raw=True)}",
            answered=_is_success(answer.status),
        )
    return trunk_id


def _is_success(status: int) -> bool:
    return 200 <= status < 300


def parse_deactivate_answer(answer: Answer, trunk_id: str, scrubber: Scrubber) -> bool:
    """True when this answer deactivated the trunk, False when the API itself says it
    was already gone (its JSON 404 "Trunk not found" or 400 "already deactivated").

    Anything else raises: an HTML 404 from a proxy, a redirect or a 200 page is not
    evidence that the trunk is gone, so prune must not forget it. A 5xx raises
    OutcomeUnknown (deactivating is idempotent: ask again)."""
    if answer.status >= 500:
        raise OutcomeUnknown(describe_answer(answer, scrubber), answered=True)
    if answer.status in (400, 404) and _already_gone(answer):
        return False
    if 400 <= answer.status < 500:
        _raise_for_error_status(answer, scrubber)
    payload = _documented_payload(answer)
    data = payload.get("data") if payload is not None else None
    if not isinstance(data, dict) or data.get("trunk_id") != trunk_id:
        raise _malformed(
            "DELETE /sip/deactivate", "not a confirmation for this trunk", answer, scrubber
        )
    return True


def _raise_for_error_status(answer: Answer, scrubber: Scrubber, where: str = "") -> None:
    """4xx: RequestRejected; 5xx: ApiError; any other non-200 (1xx, 2xx, 3xx): malformed.

    `where` names the call in the message when the caller's context does not."""
    status = answer.status
    prefix = f"{where} failed: " if where else ""
    if status == 401:
        raise RequestRejected(401, "the API key was refused (HTTP 401): check TRUNKSYNC_API_KEY")
    if 400 <= status < 500:
        raise RequestRejected(status, prefix + describe_answer(answer, scrubber))
    if status >= 500:
        raise ApiError(prefix + describe_answer(answer, scrubber))
    if status != 200:
        what = "a redirect, which is never followed" if 300 <= status < 400 else "not a 200"
        source = f" from {where}" if where else ""
        raise MalformedAnswer(
            f"unexpected answer{source} ({what}): {describe_answer(answer, scrubber)}"
        )


def _malformed(where: str, problem: str, answer: Answer, scrubber: Scrubber) -> MalformedAnswer:
    return MalformedAnswer(
        f"unexpected answer from {where} ({problem}); nothing was changed because of it: "
        f"{describe_answer(answer, scrubber, raw=True)}"
    )


def _documented_payload(answer: Answer) -> dict[str, Any] | None:
    """The JSON object of a 200 JSON answer that does not say it failed; else None.

    The API documents 200 for every success. Other 2xx are not evidence: a 204 has
    no content, a 206 is part of one, a 202 says the work is not done yet."""
    if answer.status != 200 or not _is_json(answer.content_type):
        return None
    payload = _json_object(answer.body)
    if payload is None or payload.get("success") is False:
        return None
    return payload


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return payload if isinstance(payload, dict) else None


def _list_item(item: object) -> RemoteTrunk | None:
    if not isinstance(item, dict):
        return None
    trunk_id, name = item.get("trunk_id"), item.get("trunk_name")
    trunk_type, created_at = item.get("trunk_type"), item.get("trunk_created_at")
    if not is_trunk_id(trunk_id) or not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        return None
    if not is_trunk_type(trunk_type):
        return None
    if not isinstance(created_at, str) or not _bounded_plain(created_at, MAX_CREATED_AT):
        return None
    return RemoteTrunk(trunk_id, name, trunk_type, created_at)


def _bounded_plain(text: str, limit: int) -> bool:
    return 1 <= len(text) <= limit and printable(text) == text


def _already_gone(answer: Answer) -> bool:
    if not _is_json(answer.content_type):
        return False
    payload = _json_object(answer.body)
    detail = payload.get("detail") if payload is not None else None
    if not isinstance(detail, str):
        return False
    if answer.status == 404:
        return detail == ALREADY_GONE_404
    return ALREADY_GONE_400 in detail.lower()


def _server_message(answer: Answer) -> str:
    """The message of any documented error shape (`detail` string, FastAPI's `detail`
    list, `message`); never the `input` FastAPI echoes. Empty when there is none."""
    if not _is_json(answer.content_type):
        return ""
    payload = _json_object(answer.body)
    if payload is None:
        return ""
    detail = payload.get("detail", payload.get("message"))
    if isinstance(detail, list):
        parts = [_validation_item(item) for item in detail[:MAX_DETAIL_ITEMS]]
        more = len(detail) - MAX_DETAIL_ITEMS
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return detail if isinstance(detail, str) else ""


def _validation_item(item: object) -> str:
    if not isinstance(item, dict):
        return "invalid"
    loc = item.get("loc")
    parts = loc if isinstance(loc, list) else []
    where = ".".join(str(part) for part in parts if part != "body" and _is_scalar(part))
    message = item.get("msg")
    text = message if isinstance(message, str) else "invalid"
    return f"{where}: {text}" if where else text


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


# --- the client ---------------------------------------------------------------


class _Ticket:
    """One request in flight: its deadline, and why it was abandoned (if it was)."""

    __slots__ = ("deadline", "headers_sent", "stopped_by", "traced")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.traced = False  # the transport reports its steps (not a mock)
        self.headers_sent = False
        self.stopped_by = ""  # "", "deadline" or "cancel"

    @property
    def maybe_sent(self) -> bool:
        # Without a trace we cannot tell, and "maybe sent" is the safe answer.
        return self.headers_sent or not self.traced


class _Lane:
    """One thread's httpx transport (one keep-alive connection), its live socket,
    and its request in flight.

    The socket is learnt from httpcore's trace of each new connection, so the
    watchdog can shut it down: that wakes a read blocked in the kernel, which
    closing the transport from another thread does not.
    """

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self.transport = transport
        self.socket: socket.socket | None = None
        self.ticket: _Ticket | None = None
        self.lock = threading.Lock()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        ticket = self.ticket
        if ticket is not None:
            ticket.traced = True
            if event == "http11.send_request_headers.started":
                ticket.headers_sent = True
        # TLS wraps the TCP socket in a new one and detaches the first (its fd
        # becomes -1): the socket to shut down is the last one a step returned.
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            stream = info.get("return_value")
            found = stream.get_extra_info("socket") if stream is not None else None
            with self.lock:
                self.socket = found if isinstance(found, socket.socket) else None
            if ticket is not None and ticket.stopped_by:
                self.abandon()  # stopped while connecting: do not wait for the answer

    def abandon(self) -> None:
        with self.lock:
            if self.socket is not None:
                # An OSError means it is closed already: nothing is waiting on it.
                # The plain socket's shutdown, also for a TLS one: SSLSocket's own
                # drops its TLS state under the thread that is reading with it.
                with suppress(OSError):
                    socket.socket.shutdown(self.socket, socket.SHUT_RDWR)


class _Watchdog:
    """One thread per client that stops requests at their deadline or on cancel."""

    def __init__(self, cancel: threading.Event | None, budget: float) -> None:
        self._cancel = cancel
        self._budget = budget  # every request's deadline is its start plus this
        self._lanes: set[_Lane] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()  # only close() sets it
        self._closed = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, lane: _Lane, ticket: _Ticket) -> Iterator[None]:
        lane.ticket = ticket
        with self._lock:
            self._lanes.add(lane)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="trunksync-deadlines", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._lanes.discard(lane)
                lane.ticket = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                wait = self._stop_due(time.monotonic())
            self._wake.wait(wait)

    def _stop_due(self, now: float) -> float:
        """Abandon what is due (called with the lock held); how long until the next check.

        Never longer than the budget: a request that starts meanwhile has a deadline
        at least a budget away, so the next check comes before it is due, and
        starting a request never has to wake this thread (a switch per request).
        """
        cancelled = self._cancel is not None and self._cancel.is_set()
        next_deadline: float | None = None
        for lane in self._lanes:
            ticket = lane.ticket
            if ticket is None or ticket.stopped_by:
                continue
            if cancelled or now >= ticket.deadline:
                ticket.stopped_by = "cancel" if cancelled else "deadline"
                lane.abandon()
            elif next_deadline is None or ticket.deadline < next_deadline:
                next_deadline = ticket.deadline
        until = self._budget if next_deadline is None else min(next_deadline - now, self._budget)
        until = max(until, MIN_WATCH_WAIT)  # a zero budget must not make the thread spin
        return min(until, WATCH_TICK) if self._cancel is not None else until


class PlatformClient:
    """A thread-safe client for the trunk endpoints of one API key.

    Each thread gets its own httpx.Client with one keep-alive connection: a
    single pool shared by many threads serialises them on its lock and costs
    about 3x the CPU per request at 32 threads, which is what bounds a large
    parallel apply.

    `timeout` is the total deadline of each request (connect, headers, body).
    `secrets` are scrubbed, with the key and the Authorization value, from every
    message built from an answer. `cancel`, once set, wakes every wait at once
    and abandons requests in flight (a sent create becomes OutcomeUnknown; one
    not yet sent, RequestNotSent).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        secrets: Iterable[str] = (),
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        cancel: threading.Event | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        """`cancel` ends every wait and stops new sends; `abort` (default: `cancel`)
        also abandons requests already on the wire. Apart, a Ctrl-C can let the
        creates in flight be answered (within their deadline) while a SIGTERM,
        which a CI runner follows with SIGKILL, abandons them at once."""
        authorization = f"Bearer {api_key}"
        self._base_url = check_api_url(base_url)
        headers = {"Authorization": authorization, "User-Agent": "trunksync", "Accept": "*/*"}
        self._headers = httpx.Headers(headers)  # copied by each request, never changed
        self._json_headers = httpx.Headers({**headers, "Content-Type": "application/json"})
        # Each read may wait the whole budget; the watchdog enforces the total.
        timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._extensions = {"timeout": timeouts.as_dict()}
        self._transport = transport
        self._urls: dict[str, httpx.URL] = {}
        self._verify: ssl.SSLContext | None = None
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._cancel = cancel
        self._proxy = environment_proxy(self._base_url)
        self.scrubber = Scrubber([api_key, authorization, *secrets, *_proxy_secrets(self._proxy)])
        self._local = threading.local()
        self._lanes: list[_Lane] = []
        self._lock = threading.Lock()
        self._watchdog = _Watchdog(abort if abort is not None else cancel, timeout)

    def _lane(self) -> _Lane:
        lane: _Lane | None = getattr(self._local, "lane", None)
        if lane is None:
            with self._lock:
                lane = self._local.lane = _Lane(self._transport or self._new_transport())
                self._lanes.append(lane)
        return lane

    def _new_transport(self) -> httpx.BaseTransport:
        """A transport with one keep-alive connection, through the environment's proxy.

        Requests go to the transport directly, not through an httpx.Client: the
        client's per-request layers (URL merging, cookies, auth and redirect
        hooks) cost ~0.3 ms of CPU per request, none of which this API uses, and
        that CPU, under the GIL, is what bounds a parallel apply.
        """
        if self._verify is None:
            # Once per run, not once per thread: loading the CA bundle costs ~15 ms,
            # and even the unverified context of plain http (the loopback emulator,
            # never used for it) ~2 ms.
            https = self._base_url.startswith("https:")
            self._verify = httpx.create_ssl_context(verify=https)
        try:
            return httpx.HTTPTransport(
                verify=self._verify,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                proxy=self._proxy,
            )
        except (ValueError, ImportError):  # httpx's message would quote the whole proxy URL
            raise ApiError(
                f"cannot use the proxy {_proxy_host(self._proxy or '')} (from the environment): "
                "not an http:// or https:// proxy URL"
            ) from None

    @property
    def timeout(self) -> float:
        """The total deadline of each request, in seconds."""
        return self._timeout

    @property
    def base_url(self) -> str:
        """The checked API URL, without a trailing slash (never holds credentials)."""
        return self._base_url

    def close(self) -> None:
        self._watchdog.close()
        with self._lock:
            lanes, self._lanes = self._lanes, []
        for lane in lanes:
            lane.transport.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_trunk(
        self,
        body: dict[str, Any],
        redact: Iterable[str] = (),
        before_send: Callable[[], None] | None = None,
    ) -> str:
        """POST a create; the new trunk id, or one of the three failure kinds.

        `redact`: more secrets (this trunk's credentials) to scrub from messages.
        `before_send` is called before every attempt, retries included (a 429 may
        be retried many seconds later): the engine keeps the intent's time within
        its slack of the real send there.
        """
        scrubber = self.scrubber.with_secrets(redact)
        path = "/sip/create-outbound-trunk"
        try:
            answer = self._send("POST", path, ANSWER_BODY_LIMIT, body, before_send)
        except MalformedAnswer as error:  # too large, or undecodable: it may have been created
            success = isinstance(error, AnswerTooLarge) and _is_success(error.status)
            raise OutcomeUnknown(str(error), answered=success) from None
        return parse_create_answer(answer, scrubber)

    def list_trunks(self) -> list[RemoteTrunk]:
        """Every active trunk; any answer that is not a well-formed list raises ApiError."""
        try:
            answer = self._send("GET", "/sip/list", LIST_BODY_LIMIT)
        except OutcomeUnknown as error:
            raise ApiError(f"GET /sip/list failed: {error}") from None
        return parse_list_answer(answer, self.scrubber)

    def deactivate(self, trunk_id: str) -> bool:
        """Deactivate a trunk: True if this call did it, False if the API says it was
        already gone. Deactivating is idempotent, so an unknown outcome is asked again."""
        if not is_trunk_id(trunk_id):
            raise ApiError(f"refusing to deactivate a malformed trunk id {_shown(trunk_id)}")
        attempts = self._retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                answer = self._send("DELETE", f"/sip/deactivate/{trunk_id}", ANSWER_BODY_LIMIT)
                return parse_deactivate_answer(answer, trunk_id, self.scrubber)
            except OutcomeUnknown:
                if attempt == attempts or self._cancelled():
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _send(
        self,
        method: str,
        path: str,
        limit: int,
        body: Any = None,
        before_send: Callable[[], None] | None = None,
    ) -> Answer:
        def retryable(error: BaseException) -> bool:
            return isinstance(error, (RequestNotSent, RateLimited)) and not self._cancelled()

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retryable),
            wait=_wait_for(self._retry),
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send_once, method, path, limit, body, before_send)

    def _sleep(self, seconds: float) -> None:
        """A wait between attempts that a cancel ends at once."""
        if self._cancel is None:
            time.sleep(seconds)
        else:
            self._cancel.wait(seconds)

    def _send_once(
        self, method: str, path: str, limit: int, body: Any, before_send: Callable[[], None] | None
    ) -> Answer:
        if self._cancelled():
            raise RequestNotSent("stopped before the request was sent")
        if before_send is not None:
            before_send()
        lane = self._lane()
        ticket = _Ticket(time.monotonic() + self._timeout)
        with self._watchdog.watching(lane, ticket):
            try:
                return self._exchange(lane, ticket, method, path, limit, body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                if ticket.stopped_by == "cancel":
                    raise RequestNotSent("stopped before the request was sent") from None
                raise RequestNotSent(
                    f"cannot reach the API at {self._base_url}{_through(self._proxy)}: "
                    f"{self.scrubber.clean(_reason(error), 200)}"
                ) from None
            except httpx.DecodingError:
                # The server answered, in an encoding that does not decode: garbage.
                raise MalformedAnswer("the API's answer could not be decoded") from None
            except httpx.RequestError as error:  # read/write errors, timeouts, protocol errors
                timed_out = isinstance(error, httpx.TimeoutException)
                raise self._no_answer(ticket, _reason(error), timed_out) from None

    def _exchange(
        self, lane: _Lane, ticket: _Ticket, method: str, path: str, limit: int, body: Any
    ) -> Answer:
        content = None if body is None else _json_bytes(body)
        request = httpx.Request(
            method,
            self._url(path),
            headers=self._headers if content is None else self._json_headers,
            content=content,
            extensions={**self._extensions, "trace": lane.trace},
        )
        response = lane.transport.handle_request(request)
        try:
            response.request = request
            if response.status_code == 429:
                raise RateLimited("the API is rate limiting (HTTP 429)", _retry_after(response))
            answer = self._read_capped(response, ticket, limit)
            return Answer(response.status_code, response.headers.get("content-type", ""), answer)
        finally:
            response.close()

    def _url(self, path: str) -> httpx.URL:
        """The parsed URL of `path` (parsing one costs ~0.1 ms of CPU; the create and
        list URLs are parsed once, not one URL per deactivated trunk id)."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base_url + path)
            if not path.startswith("/sip/deactivate/"):
                self._urls[path] = url
        return url

    def _read_capped(self, response: httpx.Response, ticket: _Ticket, limit: int) -> bytes:
        """The body, decoded, read while the deadline and the size cap both allow."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(response.status_code, limit)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise self._too_large(response.status_code, limit)
            chunks.append(chunk)
            if ticket.stopped_by or time.monotonic() >= ticket.deadline:
                ticket.stopped_by = ticket.stopped_by or "deadline"
                raise self._no_answer(ticket, "the answer was incomplete")
        return b"".join(chunks)

    def _too_large(self, status: int, limit: int) -> AnswerTooLarge:
        return AnswerTooLarge(
            f"the API's answer (HTTP {status}) is larger than {limit // 1024} KiB; "
            "it was not read further",
            status,
        )

    def _no_answer(self, ticket: _Ticket, reason: str, timed_out: bool = False) -> ApiError:
        """What an interrupted exchange means: not sent, or outcome unknown."""
        if ticket.stopped_by == "cancel":
            if not ticket.maybe_sent:
                return RequestNotSent("stopped before the request was sent")
            return OutcomeUnknown("stopped while waiting for the API's answer")
        if ticket.stopped_by == "deadline" or timed_out:
            # The total deadline (--timeout) passed before a complete answer.
            return OutcomeUnknown("no answer from the API (timed out)")
        return OutcomeUnknown(f"no answer from the API ({self.scrubber.clean(reason, 200)})")


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY,
    NO_PROXY; either case), read the way urllib and httpx's own client read it."""
    import urllib.request  # here: only a client needs it, and it costs ~7 ms to import

    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all") or None
    if proxy is not None and "://" not in proxy:
        # `user:pass@host:port` is common; curl and httpx's own client read it as
        # http://. Read raw, its user would pass for a scheme and its password for
        # nothing to scrub.
        proxy = "http://" + proxy
    return proxy


def _through(proxy: str | None) -> str:
    """How a message names the proxy in use: its host and port, never its user info."""
    if proxy is None:
        return ""
    return f" through the proxy {_proxy_host(proxy)} (from the environment)"


def _proxy_host(proxy: str) -> str:
    """A proxy URL's host and port, printable: never its user info."""
    try:
        parts = urlsplit(proxy)
        where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        where = "(unreadable)"
    return printable(bounded(where, 120))


def _proxy_secrets(proxy: str | None) -> list[str]:
    """A proxy's password (or a token given as its user, with no password), and the
    Basic credentials made of it, to scrub from messages."""
    if proxy is None:
        return []
    with suppress(ValueError):
        parts = urlsplit(proxy)
        secret = parts.password or parts.username
        if secret:
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            return [secret, unquote(secret), basic]
    return []


def _wait_for(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    backoff = tenacity.wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            return error.retry_after
        return float(backoff(state))

    return wait


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    if not math.isfinite(seconds):
        seconds = MAX_RETRY_AFTER
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__
