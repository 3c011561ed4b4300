"""The API client on its own: strict parsing of every answer (pure functions of
status, content type and body), messages that never carry a secret or a control
character, credentials refused in the URL, total deadlines and cancellation
(against the loopback hostile server)."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest

from hostile_server import (
    CREATE,
    DEACTIVATE,
    LIST,
    HostileServer,
    drip,
    echo_headers,
    fixed,
    hang,
    html,
    json_answer,
    list_of,
    redirect,
)
from trunksync.client import (
    MIN_WATCH_WAIT,
    Answer,
    MalformedAnswer,
    OutcomeUnknown,
    PlatformClient,
    RateLimited,
    RequestNotSent,
    RequestRejected,
    RetryPolicy,
    _proxy_secrets,
    _Watchdog,
    check_api_url,
    describe_answer,
    environment_proxy,
    parse_create_answer,
    parse_deactivate_answer,
    parse_list_answer,
)
from trunksync.errors import ApiError, TrunksyncError
from trunksync.reconcile import RemoteTrunk
from trunksync.sanitize import FRAGMENT, Scrubber, has_unsafe_chars

KEY = "client-test-api-key-0001"
TOKEN = "client-secret-token/with+chars"
SCRUB = Scrubber([KEY, f"Bearer {KEY}", TOKEN])
JSON = "application/json"
GOOD_ITEM = {
    "trunk_id": "ST_abc123",
    "trunk_name": "Exotel India",
    "trunk_type": "exotel",
    "trunk_created_at": "2026-01-15T10:00:00.000000",
}
FAST = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0)


def answer(status: int, payload: Any, content_type: str = JSON) -> Answer:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Answer(status, content_type, body)


def listed(*items: Any) -> Answer:
    return answer(200, {"success": True, "message": "ok", "data": list(items)})


def fragments(secret: str) -> set[str]:
    return {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def assert_clean(text: str) -> None:
    assert not has_unsafe_chars(text), text
    for secret in (KEY, TOKEN):
        for piece in fragments(secret):
            assert piece not in text, (piece, text)


# --- list ---------------------------------------------------------------------


def test_a_well_formed_list_is_read_whole_including_types_not_managed() -> None:
    other = {**GOOD_ITEM, "trunk_id": "ST_other", "trunk_type": "plivo", "extra": [1]}
    trunks = parse_list_answer(listed(GOOD_ITEM, other), SCRUB)
    assert trunks == [
        RemoteTrunk("ST_abc123", "Exotel India", "exotel", "2026-01-15T10:00:00.000000"),
        RemoteTrunk("ST_other", "Exotel India", "plivo", "2026-01-15T10:00:00.000000"),
    ]


def test_an_empty_list_is_a_list() -> None:
    assert parse_list_answer(listed(), SCRUB) == []


def item(**changes: Any) -> dict[str, Any]:
    changed = {**GOOD_ITEM, **changes}
    return {key: value for key, value in changed.items() if value is not ...}


MALFORMED_LISTS = {
    "html 200": Answer(200, "text/html", b"<html><body>Maintenance</body></html>"),
    "204": Answer(204, "", b""),
    "301": Answer(301, "", b""),
    "302 with a json body": answer(302, {"data": []}),
    "json without data": answer(200, {"success": True, "message": "ok"}),
    "data null": answer(200, {"success": True, "data": None}),
    "data an object": answer(200, {"success": True, "data": {"trunks": []}}),
    "a json array": answer(200, [GOOD_ITEM]),
    "success false": answer(200, {"success": False, "data": []}),
    "json as text/plain": Answer(200, "text/plain", json.dumps({"data": []}).encode()),
    "truncated": Answer(200, JSON, json.dumps({"data": [GOOD_ITEM, GOOD_ITEM]}).encode()[:60]),
    "garbage bytes": Answer(200, JSON, b"\xff\xfe\x00\x1b[2J"),
    "item not an object": listed("ST_abc123"),
    "id with a newline": listed(item(trunk_id="ST_abc\nST_fake")),
    "id with a carriage return": listed(item(trunk_id="ST_abc\r")),
    "id with an escape": listed(item(trunk_id="ST_\x1b[31mred")),
    "id without ST_": listed(item(trunk_id="abc123")),
    "id not a string": listed(item(trunk_id=123)),
    "id too long": listed(item(trunk_id="ST_" + "a" * 65)),
    "no id": listed(item(trunk_id=...)),
    "no name": listed(item(trunk_name=...)),
    "name not a string": listed(item(trunk_name=5)),
    "empty name": listed(item(trunk_name="")),
    "type with capitals": listed(item(trunk_type="Twilio")),
    "type too long": listed(item(trunk_type="t" * 33)),
    "type not a string": listed(item(trunk_type=None)),
    "no created_at": listed(item(trunk_created_at=...)),
    "created_at with a newline": listed(item(trunk_created_at="2026\n")),
    "a repeated id": listed(GOOD_ITEM, item(trunk_name="Other")),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED_LISTS))
def test_a_malformed_list_is_an_error_never_a_list(shape: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_list_answer(MALFORMED_LISTS[shape], SCRUB)
    message = str(caught.value)
    assert f"HTTP {MALFORMED_LISTS[shape].status}" in message
    assert "\n" not in message
    assert_clean(message)


def test_a_malformed_list_error_names_status_content_type_and_an_excerpt() -> None:
    page = Answer(200, "text/html; charset=utf-8", b"<html>\n<h1>Down for\tmaintenance</h1>")
    with pytest.raises(MalformedAnswer) as caught:
        parse_list_answer(page, SCRUB)
    assert str(caught.value) == (
        "unexpected answer from GET /sip/list (not a JSON object with a `data` list); nothing was "
        'changed because of it: HTTP 200, text/html; charset=utf-8, 36 bytes: "<html> <h1>Down '
        'for maintenance</h1>"'
    )


@pytest.mark.parametrize(
    ("status", "kind"), [(401, RequestRejected), (404, RequestRejected), (500, ApiError)]
)
def test_list_error_statuses_are_errors_with_the_servers_message(
    status: int, kind: type[ApiError]
) -> None:
    with pytest.raises(kind) as caught:
        parse_list_answer(answer(status, {"detail": "nope"}), SCRUB)
    assert ("HTTP 401" if status == 401 else f"HTTP {status}: nope") in str(caught.value)


# --- create ---------------------------------------------------------------------


def created(trunk_id: Any) -> Answer:
    return answer(200, {"success": True, "message": "Created", "data": {"trunk_id": trunk_id}})


def test_create_returns_a_well_formed_id() -> None:
    assert parse_create_answer(created("ST_new-1_x"), SCRUB) == "ST_new-1_x"


UNKNOWN_CREATES = {
    "id with a newline": created("ST_abc\nfake"),
    "id with an escape": created("ST_\x1b]0;x\x07"),
    "id without ST_": created("abc"),
    "id not a string": created(["ST_abc"]),
    "no data": answer(200, {"success": True}),
    "success false": answer(200, {"success": False, "data": {"trunk_id": "ST_abc"}}),
    "html 200": Answer(200, "text/html", b"<html>ok ST_abc</html>"),
    "json as text/plain": Answer(
        200, "text/plain", json.dumps({"data": {"trunk_id": "ST_a"}}).encode()
    ),
    "204": Answer(204, "", b""),
    "302": Answer(302, "", b""),
    "307 with json": answer(307, {"data": {"trunk_id": "ST_abc"}}),
    "500": answer(500, {"detail": "boom"}),
    "502 html": Answer(502, "text/html", b"<html>Bad gateway</html>"),
    "503": Answer(503, "text/plain", b"Service Unavailable"),
    "504 html": Answer(504, "text/html", b"<html>504 Gateway Time-out</html>"),
}


@pytest.mark.parametrize("shape", sorted(UNKNOWN_CREATES))
def test_a_create_answer_that_is_not_the_documented_one_is_an_unknown_outcome(shape: str) -> None:
    with pytest.raises(OutcomeUnknown) as caught:
        parse_create_answer(UNKNOWN_CREATES[shape], SCRUB)
    # Only a 2xx proves the platform finished with the request (its list is final
    # at once). A gateway's 502/504, a 500 or a redirect does not: the engine waits
    # until the create cannot be in flight any more before it trusts the list.
    status = UNKNOWN_CREATES[shape].status
    assert caught.value.answered is (200 <= status < 300)
    assert_clean(str(caught.value))


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_a_4xx_to_a_create_means_surely_not_created(status: int) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_create_answer(answer(status, {"detail": "bad"}), SCRUB)
    assert caught.value.status == status


# --- deactivate -------------------------------------------------------------------


def test_deactivate_is_done_only_on_the_documented_confirmation() -> None:
    confirmation = answer(200, {"success": True, "data": {"trunk_id": "ST_abc"}})
    assert parse_deactivate_answer(confirmation, "ST_abc", SCRUB) is True


@pytest.mark.parametrize(
    "gone",
    [
        answer(404, {"detail": "Trunk not found"}),
        answer(400, {"detail": "Trunk is already deactivated"}),
    ],
)
def test_deactivate_already_gone_only_in_the_apis_own_words(gone: Answer) -> None:
    assert parse_deactivate_answer(gone, "ST_abc", SCRUB) is False


NOT_DEACTIVATED = {
    "html 404": Answer(404, "text/html", b"<html>Not Found</html>"),
    "json 404 of a proxy": answer(404, {"detail": "Not Found"}),
    "400 other": answer(400, {"detail": "bad id"}),
    "302": Answer(302, "", b""),
    "html 200": Answer(200, "text/html", b"<html>OK</html>"),
    "204": Answer(204, "", b""),
    "200 without data": answer(200, {"success": True}),
    "200 for another trunk": answer(200, {"success": True, "data": {"trunk_id": "ST_other"}}),
    "200 success false": answer(200, {"success": False, "data": {"trunk_id": "ST_abc"}}),
}


@pytest.mark.parametrize("shape", sorted(NOT_DEACTIVATED))
def test_any_other_deactivate_answer_is_an_error_not_done(shape: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_deactivate_answer(NOT_DEACTIVATED[shape], "ST_abc", SCRUB)
    assert not isinstance(caught.value, OutcomeUnknown)


def test_a_5xx_to_deactivate_is_asked_again_then_unknown(hostile: HostileServer) -> None:
    hostile.answer(DEACTIVATE, json_answer(503, {"detail": "busy"}))
    with PlatformClient(hostile.url, KEY, retry=FAST) as client, pytest.raises(OutcomeUnknown):
        client.deactivate("ST_abc")
    assert hostile.count(DEACTIVATE) == 3


@pytest.mark.parametrize("shape", [html(200), redirect(302), html(404)])
def test_deactivate_over_http_never_counts_a_wrong_answer_as_done(
    hostile: HostileServer, shape: Any
) -> None:
    trunk_id = hostile.add_trunk("Live")
    hostile.answer(DEACTIVATE, shape)
    with PlatformClient(hostile.url, KEY, retry=FAST) as client, pytest.raises(ApiError):
        client.deactivate(trunk_id)
    assert hostile.count(DEACTIVATE) == 1


def test_deactivate_refuses_a_malformed_id_without_sending(hostile: HostileServer) -> None:
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(ApiError) as caught:
        client.deactivate("ST_x/../../sip/list")
    assert hostile.count(DEACTIVATE) == 0
    assert "malformed trunk id" in str(caught.value)


# --- messages ---------------------------------------------------------------------


def test_fastapi_422_shows_locations_and_messages_never_the_input() -> None:
    detail = [
        {"loc": ["body", "trunk_config", "password"], "msg": "Field required", "input": TOKEN},
        {"loc": ["body", "trunk_name"], "msg": f"too long: {TOKEN}", "input": {"x": KEY}},
    ]
    text = describe_answer(answer(422, {"detail": detail}), SCRUB)
    assert text == (
        "HTTP 422: trunk_config.password: Field required; trunk_name: too long: (sensitive)"
    )


@pytest.mark.parametrize(
    "echo",
    [
        f"Authorization: Bearer {KEY}",
        json.dumps({"password": TOKEN}),
        json.dumps(json.dumps({"password": TOKEN})),
        "token=client-secret-token%2Fwith%2Bchars",
        "token=client-secret-token%2Fwith+chars",
        "client-secret-token\\/with+chars",
        f"cut in the middle: {TOKEN[:12]}",
        f"key cut: ...{KEY[6:]}",
    ],
)
def test_every_echoed_form_of_a_secret_is_scrubbed(echo: str) -> None:
    for shaped in (
        answer(400, {"detail": echo}),
        answer(500, {"success": False, "message": echo}),
        Answer(502, "text/html", f"<pre>{echo}</pre>".encode()),
    ):
        assert_clean(describe_answer(shaped, SCRUB))


def test_messages_are_one_bounded_line_with_controls_escaped() -> None:
    text = describe_answer(answer(400, {"detail": "a\nb\x1b[31mc\u202ed" + "x" * 1000}), SCRUB)
    assert text.startswith("HTTP 400: a\\x0ab\\x1b[31mc\\u202ed")
    assert len(text) < 400
    assert not has_unsafe_chars(text)


def test_a_secret_spread_past_the_excerpt_cut_is_still_scrubbed() -> None:
    body = ("x" * 4090 + TOKEN).encode()  # the excerpt looks at 4096 characters
    assert_clean(describe_answer(Answer(500, "text/plain", body), SCRUB, raw=True))


def test_a_create_echo_over_http_carries_no_secret(hostile: HostileServer) -> None:
    hostile.answer(CREATE, echo_headers(400))
    body = {"trunk_name": "x", "trunk_type": "twilio", "trunk_config": {"password": TOKEN}}
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(RequestRejected) as caught:
        client.create_trunk(body, redact=[TOKEN])
    assert "headers were" in str(caught.value)
    assert_clean(str(caught.value))


def test_secrets_given_to_the_client_are_scrubbed_from_list_errors(
    hostile: HostileServer,
) -> None:
    hostile.answer(LIST, json_answer(500, {"detail": f"config was {TOKEN}"}))
    with PlatformClient(hostile.url, KEY, secrets=[TOKEN]) as client, pytest.raises(ApiError) as e:
        client.list_trunks()
    assert str(e.value) == "GET /sip/list failed: HTTP 500: config was (sensitive)"


# --- URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cr3t-pass@api.example.com",
        "https://s3cr3t-token@api.example.com",
        "https://alice:s3cr3t-pass@[::1",
        "http://alice:s3cr3t-pass@127.0.0.1:8000",
        "https://api.example.com/?api_key=s3cr3t-token",
        "https://api.example.com/#s3cr3t-token",
    ],
)
def test_credentials_in_the_api_url_are_refused_without_repeating_them(url: str) -> None:
    with pytest.raises(TrunksyncError) as caught:
        check_api_url(url)
    message = str(caught.value)
    for part in ("alice", "s3cr3t", "api_key", "example"):
        assert part not in message
    assert "TRUNKSYNC_API_KEY" in message


def test_a_url_with_control_characters_is_shown_escaped() -> None:
    with pytest.raises(TrunksyncError) as caught:
        check_api_url("ftp://host\x1b[2J")
    assert "\x1b" not in str(caught.value)


def test_plain_urls_still_work() -> None:
    assert check_api_url("https://api.example.com/") == "https://api.example.com"
    assert check_api_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


# --- size caps, deadlines, cancellation ---------------------------------------------


def test_an_oversized_list_is_refused_while_streaming(hostile: HostileServer) -> None:
    from hostile_server import huge

    hostile.answer(LIST, huge(200, megabytes=40))
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(ApiError) as caught:
        client.list_trunks()
    assert "larger than 16384 KiB" in str(caught.value)


@pytest.mark.parametrize(("status", "answered"), [(200, True), (502, False)])
def test_an_oversized_create_answer_is_an_unknown_outcome(
    hostile: HostileServer, status: int, answered: bool
) -> None:
    hostile.answer(CREATE, fixed(status, b'{"data": "' + b"x" * 200_000 + b'"}'))
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(OutcomeUnknown) as caught:
        client.create_trunk({"trunk_name": "x"})
    assert caught.value.answered is answered


def _long_list(hostile: HostileServer) -> None:
    # ~60 KB dripped a byte at a time: a per-read timeout would wait for all of it.
    for index in range(400):
        hostile.add_trunk(f"Trunk {index:05d} " + "n" * 100)


def test_a_dripping_list_fails_at_the_total_deadline(hostile: HostileServer) -> None:
    _long_list(hostile)
    hostile.answer(LIST, drip(0.01))
    with PlatformClient(hostile.url, KEY, timeout=1.0) as client, pytest.raises(ApiError) as caught:
        client.list_trunks()
    assert "no answer from the API (timed out)" in str(caught.value)


def test_a_dripping_create_is_an_unknown_outcome_at_the_deadline(hostile: HostileServer) -> None:
    padded = json.dumps({"data": {"trunk_id": "ST_late"}, "message": "m" * 50_000}).encode()
    hostile.answer(CREATE, drip(0.01, fixed(200, padded)))
    with PlatformClient(hostile.url, KEY, timeout=1.0) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            client.create_trunk({"trunk_name": "x"})
        assert caught.value.answered is False
        # The lane's connection was abandoned; the next request opens a new one.
        hostile.answer(CREATE, json_answer(200, {"data": {"trunk_id": "ST_next"}}))
        assert client.create_trunk({"trunk_name": "y"}) == "ST_next"


def test_a_silent_server_fails_at_the_deadline(hostile: HostileServer) -> None:
    hostile.answer(LIST, hang())
    with PlatformClient(hostile.url, KEY, timeout=0.5) as client, pytest.raises(ApiError):
        client.list_trunks()


def test_a_cancel_abandons_a_sent_create_as_an_unknown_outcome(hostile: HostileServer) -> None:
    hostile.answer(CREATE, hang())
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def create() -> None:
        with PlatformClient(hostile.url, KEY, timeout=600, cancel=cancel) as client:
            try:
                client.create_trunk({"trunk_name": "x"})
            except ApiError as error:
                outcome.append(error)

    worker = threading.Thread(target=create)
    worker.start()
    assert hostile.arrived[CREATE].wait(30)
    cancel.set()
    worker.join(30)  # far below the 600 s deadline: only the cancel can end it
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], OutcomeUnknown)
    assert str(outcome[0]) == "stopped while waiting for the API's answer"


def test_a_cancel_before_sending_sends_nothing(hostile: HostileServer) -> None:
    cancel = threading.Event()
    cancel.set()
    with PlatformClient(hostile.url, KEY, cancel=cancel) as client:
        with pytest.raises(RequestNotSent):
            client.create_trunk({"trunk_name": "x"})
        with pytest.raises(ApiError):
            client.list_trunks()
    assert hostile.requests == []


class CancelledWhileWaiting(threading.Event):
    """A cancel event that is set the moment the client starts a wait on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.set()
        return super().wait(timeout)


def test_a_cancel_wakes_a_retry_after_wait_and_sends_nothing_more(
    hostile: HostileServer,
) -> None:
    def limited(request: Any, server: HostileServer) -> Any:
        from hostile_server import Reply

        return Reply(429, b'{"detail": "slow down"}', headers=(("Retry-After", "30"),))

    hostile.answer(CREATE, limited)
    cancel = CancelledWhileWaiting()
    client = PlatformClient(hostile.url, KEY, cancel=cancel)
    with client, pytest.raises(RequestNotSent) as caught:
        client.create_trunk({"trunk_name": "x"})
    assert cancel.waits == [30.0]
    assert hostile.count(CREATE) == 1
    assert str(caught.value) == "stopped before the request was sent"


def test_rate_limit_is_retried_without_a_cancel(hostile: HostileServer) -> None:
    replies = iter([429, 200])

    def limited_once(request: Any, server: HostileServer) -> Any:
        from hostile_server import Reply

        if next(replies) == 429:
            return Reply(429, b"{}", headers=(("Retry-After", "0"),))
        return Reply(200, json.dumps({"data": {"trunk_id": "ST_ok"}}).encode())

    hostile.answer(CREATE, limited_once)
    before_each_send: list[int] = []
    with PlatformClient(hostile.url, KEY) as client:
        created = client.create_trunk(
            {"trunk_name": "x"}, before_send=lambda: before_each_send.append(hostile.count(CREATE))
        )
        assert created == "ST_ok"
    assert hostile.count(CREATE) == 2
    # Called before each attempt (the engine refreshes the intent's time there).
    assert before_each_send == [0, 1]


def test_retry_after_is_bounded_and_garbage_tolerant() -> None:
    import httpx

    from trunksync.client import _retry_after

    def seconds(value: str) -> float:
        return _retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert [seconds(v) for v in ("2", "-5", "nan", "inf", "1e9", "soon")] == [
        2.0,
        0.0,
        30.0,
        30.0,
        30.0,
        1.0,
    ]
    assert RateLimited("x", 1.0).retry_after == 1.0


def test_a_redirected_list_is_never_followed(hostile: HostileServer) -> None:
    hostile.answer(LIST, redirect(307))
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(MalformedAnswer) as caught:
        client.list_trunks()
    assert "redirect, which is never followed" in str(caught.value)
    assert hostile.count(LIST) == 1


def test_a_list_of_ids_with_controls_over_http_is_refused(hostile: HostileServer) -> None:
    hostile.answer(LIST, list_of([item(trunk_id="ST_a\r\nST_b")]))
    with PlatformClient(hostile.url, KEY) as client, pytest.raises(MalformedAnswer) as caught:
        client.list_trunks()
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)


# --- proxies --------------------------------------------------------------------

PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_the_environments_proxy_is_used_as_httpx_and_urllib_use_it(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    env = no_proxy_environment
    assert environment_proxy("https://api.example.com") is None
    env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    env.setenv("ALL_PROXY", "http://all.corp:3128")
    assert environment_proxy("https://api.example.com") == "http://proxy.corp:3128"
    assert environment_proxy("http://127.0.0.1:8000") == "http://all.corp:3128"
    env.setenv("NO_PROXY", "example.com,localhost")
    assert environment_proxy("https://api.example.com") is None


def test_requests_go_through_the_environments_proxy(
    hostile: HostileServer, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    # 127.0.0.2 is loopback but nothing listens there: only the proxy can answer.
    no_proxy_environment.setenv("HTTP_PROXY", hostile.url)
    with PlatformClient("http://127.0.0.2:9", KEY, retry=FAST) as client:
        assert client.list_trunks() == []
    (request,) = hostile.received(LIST)
    assert request.path == "http://127.0.0.2:9/sip/list"


def test_a_proxy_password_never_reaches_a_message(
    hostile: HostileServer, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    password = "proxy-pass-0042"
    proxy = hostile.url.replace("http://", f"http://corp-user:{password}@")
    no_proxy_environment.setenv("HTTP_PROXY", proxy)
    hostile.answer(LIST, echo_headers(400))  # a proxy that echoes what it was sent
    with (
        PlatformClient("http://127.0.0.2:9", KEY, retry=FAST) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.list_trunks()
    message = str(caught.value)
    (request,) = hostile.received(LIST)
    assert any(name.lower() == "proxy-authorization" for name, _ in request.headers)
    assert "bad request, headers were:" in message
    for piece in fragments(password):
        assert piece not in message
    assert "Y29ycC11c2Vy" not in message  # base64 of "corp-user:..." (the Basic token)


def test_an_unreachable_proxy_is_named_without_its_credentials(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", "http://corp-user:proxy-pass-0042@127.0.0.1:9")
    with (
        PlatformClient("http://127.0.0.2:9", KEY, retry=FAST) as client,
        pytest.raises(RequestNotSent) as caught,
    ):
        client.list_trunks()
    message = str(caught.value)
    assert "through the proxy 127.0.0.1:9 (from the environment)" in message
    assert "corp-user" not in message and "proxy-pass" not in message


def test_a_proxy_without_a_scheme_is_http_and_its_password_is_scrubbed(
    hostile: HostileServer, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    # `user:pass@host:port` is read as http://, as curl and httpx's client read it;
    # read raw, httpx refused it with the whole URL in its message.
    password = "proxy-pass-0043"
    where = hostile.url.removeprefix("http://")
    no_proxy_environment.setenv("HTTP_PROXY", f"corp-user:{password}@{where}")
    assert environment_proxy("http://127.0.0.2:9") == f"http://corp-user:{password}@{where}"
    hostile.answer(LIST, echo_headers(400))
    with (
        PlatformClient("http://127.0.0.2:9", KEY, retry=FAST) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.list_trunks()
    assert hostile.received(LIST)[0].path == "http://127.0.0.2:9/sip/list"
    for piece in fragments(password):
        assert piece not in str(caught.value)


def test_a_proxy_token_given_as_the_user_is_scrubbed_too() -> None:
    token = "tok-0123456789abcdef"
    basic = base64.b64encode(f"{token}:".encode()).decode()  # its Proxy-Authorization
    secrets = _proxy_secrets(f"http://{token}@proxy.corp:3128")
    assert token in secrets and basic in secrets


@pytest.mark.parametrize("proxy", ["ftp://corp-user:proxy-pass-0044@proxy.corp:21", "socks9://x"])
def test_an_unusable_proxy_url_is_one_error_without_its_credentials(
    proxy: str, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", proxy)
    with (
        PlatformClient("http://127.0.0.2:9", KEY, retry=FAST) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.list_trunks()
    message = str(caught.value)
    assert message.startswith("cannot use the proxy ") and "(from the environment)" in message
    assert "corp-user" not in message and "proxy-pass" not in message


@pytest.mark.parametrize("budget", [0.0, 0.001, 30.0])
def test_the_deadline_watchdog_never_spins(budget: float) -> None:
    # It checks at least once per budget and is never woken by a request start, so
    # its wait must stay positive however small the budget (the Python API allows 0).
    for cancel in (None, threading.Event()):
        watchdog = _Watchdog(cancel, budget)
        assert watchdog._stop_due(time.monotonic()) >= MIN_WATCH_WAIT
