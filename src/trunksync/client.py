"""The platform API client: the only module that speaks HTTP.

Its central job is to say, for every create, which of three things happened:
- created (an `ST_` id came back),
- not created for sure (never sent, or the server refused it with a 4xx),
- outcome unknown (sent, then a 5xx, a timeout or a dropped connection):
  the trunk may exist, so the caller must check before creating again.
Only requests that provably never reached the server, and 429s, are retried.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import tenacity

from trunksync.defaults import DEFAULT_API_URL
from trunksync.errors import ApiError, TrunksyncError
from trunksync.loopback import is_loopback
from trunksync.reconcile import RemoteTrunk

__all__ = ["DEFAULT_API_URL", "PlatformClient", "RemoteTrunk"]

MAX_RETRY_AFTER = 30.0


class RequestNotSent(ApiError):
    """The request never reached the server: nothing was created."""


class RequestRejected(ApiError):
    """The server answered with a 4xx: nothing was created."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class OutcomeUnknown(ApiError):
    """The request was sent but no usable answer came back: it may have been created.

    `answered` is True when the server itself answered (a 5xx, a garbled 200):
    it has finished with the request, so its list already shows the outcome.
    """

    def __init__(self, message: str, answered: bool = False) -> None:
        self.answered = answered
        super().__init__(message)


class RateLimited(ApiError):
    """429: nothing was done; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RetryPolicy(NamedTuple):
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 8.0


def check_api_url(url: str) -> str:
    """Refuse plain http except on loopback, where the emulator runs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TrunksyncError(f"invalid API URL {url!r}: expected https://HOST")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise TrunksyncError(
            f"refusing plain http:// for {parts.hostname}: the API key would travel "
            "unencrypted; use https:// (http is allowed only for loopback)"
        )
    return url.rstrip("/")


class PlatformClient:
    """A thread-safe client for the trunk endpoints of one API key.

    Each thread gets its own httpx.Client with one keep-alive connection: a
    single pool shared by many threads serialises them on its lock and costs
    about 3x the CPU per request at 32 threads, which is what bounds a large
    parallel apply.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "base_url": check_api_url(base_url),
            "headers": {"Authorization": f"Bearer {api_key}", "User-Agent": "trunksync"},
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
            "transport": transport,
        }
        self._retry = retry or RetryPolicy()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            with self._lock:
                # Loading the CA bundle costs ~15 ms: once per run, not once per
                # thread, and not at all for plain http (the loopback emulator).
                if "verify" not in self._settings:
                    https = str(self._settings["base_url"]).startswith("https:")
                    self._settings["verify"] = httpx.create_ssl_context() if https else False
                client = self._local.client = httpx.Client(**self._settings)
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_trunk(self, body: dict[str, Any], redact: Iterable[str] = ()) -> str:
        """POST a create; the new trunk id, or one of the three failure kinds."""
        secrets = [value for value in redact if value]
        response = self._send("POST", "/sip/create-outbound-trunk", json=body)
        if response.status_code >= 500:
            raise OutcomeUnknown(_describe(response, secrets), answered=True)
        _raise_for_client_error(response, secrets)
        trunk_id = _data(response).get("trunk_id") if response.status_code == 200 else None
        if not isinstance(trunk_id, str) or not trunk_id.startswith("ST_"):
            raise OutcomeUnknown(
                f"unexpected answer to create (HTTP {response.status_code}, no ST_ id)",
                answered=True,
            )
        return trunk_id

    def list_trunks(self) -> list[RemoteTrunk]:
        response = self._checked("GET", "/sip/list")
        items = _data(response, default=[])
        if not isinstance(items, list):
            raise ApiError("unexpected answer from /sip/list (data is not a list)")
        return [_remote_trunk(item) for item in items]

    def deactivate(self, trunk_id: str) -> None:
        """Deactivate a trunk; one that is already gone counts as done.

        Deactivating is idempotent, so an unknown outcome is simply asked again.
        """
        attempts = self._retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._send("DELETE", f"/sip/deactivate/{trunk_id}")
            except OutcomeUnknown:
                if attempt == attempts:
                    raise
                continue
            if response.status_code == 404 or (
                response.status_code == 400 and "already" in _server_message(response).lower()
            ):
                return
            if response.status_code < 500:
                _raise_for_client_error(response, [])
                return
            if attempt == attempts:
                raise OutcomeUnknown(_describe(response, []), answered=True)

    def _checked(self, method: str, path: str) -> httpx.Response:
        """A read-like call: any failure is an ApiError with the server's message."""
        try:
            response = self._send(method, path)
        except OutcomeUnknown as error:
            raise ApiError(str(error)) from None
        if response.status_code >= 500:
            raise ApiError(_describe(response, []))
        _raise_for_client_error(response, [])
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((RequestNotSent, RateLimited)),
            wait=_wait_for(self._retry),
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            reraise=True,
        )
        return retrying(self._send_once, method, path, **kwargs)

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise RequestNotSent(
                f"cannot reach the API at {self._http.base_url}: {_reason(error)}"
            ) from None
        except httpx.TransportError as error:
            raise OutcomeUnknown(f"no answer from the API ({_reason(error)})") from None
        if response.status_code == 429:
            raise RateLimited("the API is rate limiting (HTTP 429)", _retry_after(response))
        return response


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
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _raise_for_client_error(response: httpx.Response, secrets: list[str]) -> None:
    if response.status_code == 401:
        raise RequestRejected(401, "the API key was refused (HTTP 401): check TRUNKSYNC_API_KEY")
    if 400 <= response.status_code < 500:
        raise RequestRejected(response.status_code, _describe(response, secrets))


def _describe(response: httpx.Response, secrets: list[str]) -> str:
    message = _server_message(response) or response.reason_phrase or "no message"
    for secret in secrets:
        message = message.replace(secret, "(sensitive)")
    return f"HTTP {response.status_code}: {message}"


def _server_message(response: httpx.Response) -> str:
    """The message in any of the API's error shapes; never echoes submitted input."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200].strip()
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail", body.get("message"))
    if isinstance(detail, list):
        return "; ".join(_validation_item(item) for item in detail[:5])
    return str(detail) if detail is not None else ""


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)[:100]
    where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    return f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid"))


def _data(response: httpx.Response, default: Any = None) -> Any:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {} if default is None else default
    if not isinstance(body, dict):
        return {} if default is None else default
    data = body.get("data", default)
    return {} if data is None and default is None else data


def _remote_trunk(item: Any) -> RemoteTrunk:
    if not isinstance(item, dict) or not str(item.get("trunk_id", "")).startswith("ST_"):
        raise ApiError("unexpected trunk in /sip/list (no ST_ id)")
    return RemoteTrunk(
        str(item["trunk_id"]),
        str(item.get("trunk_name", "")),
        str(item.get("trunk_type", "")),
        str(item.get("trunk_created_at", "")),
    )
