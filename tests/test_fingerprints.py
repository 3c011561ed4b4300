"""Salted secret fingerprints: format, matching, and robustness against garbage."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from trunksync import fingerprints

FORMAT = re.compile(r"^hmac-sha256:([0-9a-f]{32}):([0-9a-f]{64})$")


def test_fingerprint_format_is_scheme_salt_hex() -> None:
    salt = fingerprints.new_salt()
    recorded = fingerprints.fingerprint("hunter2", salt)
    match = FORMAT.match(recorded)
    assert match is not None, recorded
    assert match.group(1) == salt
    assert "hunter2" not in recorded


def test_new_salt_is_random_hex() -> None:
    first, second = fingerprints.new_salt(), fingerprints.new_salt()
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_fingerprint_is_deterministic_for_same_salt() -> None:
    salt = fingerprints.new_salt()
    assert fingerprints.fingerprint("s3cret", salt) == fingerprints.fingerprint("s3cret", salt)


def test_matches_true_for_the_same_secret() -> None:
    recorded = fingerprints.fingerprint("s3cret", fingerprints.new_salt())
    assert fingerprints.matches("s3cret", recorded) is True


@pytest.mark.parametrize("other", ["s3creT", "s3cret ", "", "s3cre"])
def test_matches_false_for_another_secret(other: str) -> None:
    recorded = fingerprints.fingerprint("s3cret", fingerprints.new_salt())
    assert fingerprints.matches(other, recorded) is False


def test_same_secret_different_salt_gives_different_fingerprint() -> None:
    one = fingerprints.fingerprint("s3cret", "00" * 16)
    two = fingerprints.fingerprint("s3cret", "11" * 16)
    assert one != two
    assert one.rsplit(":", 1)[1] != two.rsplit(":", 1)[1]
    assert fingerprints.matches("s3cret", one) and fingerprints.matches("s3cret", two)


@pytest.mark.parametrize(
    "recorded",
    [
        "",
        "garbage",
        "hmac-sha256",
        "hmac-sha256:",
        "hmac-sha256::",
        "hmac-sha256:zz:abc",
        "hmac-sha256:0:abc",  # odd-length hex salt
        "md5:" + "00" * 16 + ":" + "00" * 32,
        "hmac-sha256:" + "00" * 16 + ":" + "00" * 32,  # well formed, wrong digest
        "sha256:" + "00" * 32,
    ],
)
def test_garbage_recorded_strings_do_not_match(recorded: str) -> None:
    assert fingerprints.matches("s3cret", recorded) is False


def test_tampered_digest_does_not_match() -> None:
    recorded = fingerprints.fingerprint("s3cret", fingerprints.new_salt())
    flipped = recorded[:-1] + ("0" if recorded[-1] != "0" else "1")
    assert fingerprints.matches("s3cret", flipped) is False


def test_matches_ignores_scheme_with_right_digest_under_other_name() -> None:
    recorded = fingerprints.fingerprint("s3cret", fingerprints.new_salt())
    assert fingerprints.matches("s3cret", "HMAC-SHA256" + recorded[len("hmac-sha256") :]) is False


@pytest.mark.parametrize("tail", ["é", "☃"])
def test_non_ascii_garbage_recorded_string_does_not_match(tail: str) -> None:
    recorded = fingerprints.fingerprint("s3cret", fingerprints.new_salt())
    assert fingerprints.matches("s3cret", recorded[:-1] + tail) is False


def test_fingerprint_secrets_shares_one_salt_and_hides_values() -> None:
    result = fingerprints.fingerprint_secrets(
        {"username": SecretStr("AC-user"), "password": SecretStr("tok-123")}
    )
    assert set(result) == {"username", "password"}
    salts = {FORMAT.match(value).group(1) for value in result.values()}  # type: ignore[union-attr]
    assert len(salts) == 1
    assert fingerprints.matches("AC-user", result["username"])
    assert fingerprints.matches("tok-123", result["password"])
    assert not fingerprints.matches("tok-123", result["username"])
    assert "tok-123" not in repr(result) and "AC-user" not in repr(result)


def test_fingerprint_secrets_with_given_salt_is_reproducible() -> None:
    salt = "ab" * 16
    values = {"password": SecretStr("tok")}
    assert fingerprints.fingerprint_secrets(values, salt) == fingerprints.fingerprint_secrets(
        values, salt
    )


def test_fingerprint_request_is_independent_of_key_order() -> None:
    salt = "cd" * 16
    one = fingerprints.fingerprint_request({"a": 1, "b": {"x": "y", "z": [1, 2]}}, salt)
    two = fingerprints.fingerprint_request({"b": {"z": [1, 2], "x": "y"}, "a": 1}, salt)
    three = fingerprints.fingerprint_request({"a": 1, "b": {"x": "y", "z": [2, 1]}}, salt)
    assert one == two
    assert one != three
    assert FORMAT.match(one)
