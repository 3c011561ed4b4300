"""The loader against hostile and careless files: names judged after expansion,
bounded work, secrets that are exactly one ${VAR}, printable names, whole-value
patterns, messages that name the real problem, stdin and the digest."""

from __future__ import annotations

import hashlib
import io
import json
import resource
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from trunksync.cli import cli
from trunksync.config import MAX_FILE_BYTES, Desired, UnknownSecret, load_desired
from trunksync.errors import SHOWN_PROBLEMS, ConfigError, Problem, TrunksyncError
from trunksync.sanitize import FRAGMENT, has_unsafe_chars

SID = "ACsentinel0000000000000000000000001"
TOKEN = "SENTINEL-AUTH-TOKEN-do-not-print"
ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}

TWILIO_ENTRY = """\
  - trunk_name: {name}
    trunk_type: twilio
    trunk_config:
      address: {address}
      numbers: ["+15550100000"]
      username: {username}
      password: {password}
"""


def twilio_file(
    name: str = "T",
    address: str = "example.pstn.twilio.com",
    username: str = "${TWILIO_ACCOUNT_SID}",
    password: str = "${TWILIO_AUTH_TOKEN}",
) -> str:
    entry = TWILIO_ENTRY.format(name=name, address=address, username=username, password=password)
    return "version: 1\ntrunks:\n" + entry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trunks.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path, env: dict[str, str] | None = None, **kwargs: bool) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_desired(path, ENV if env is None else env, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def assert_no_secret(texts: list[str], *secrets: str) -> None:
    joined = "\n".join(texts)
    for secret in secrets:
        for start in range(len(secret) - FRAGMENT + 1):
            assert secret[start : start + FRAGMENT] not in joined, joined


# --- duplicate names, judged after aliases, merge keys and ${VAR} ---------------------------


def test_entry_repeated_with_an_alias_is_a_duplicate_at_both_places(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
version: 1
trunks:
  - &t
    trunk_name: Same
    trunk_type: exotel
    trunk_config: {exotel_number: "+918044319240"}
  - *t
""",
    )
    (message,) = problems_of(path)
    assert message.startswith(f"{path}:7:5: duplicate trunk_name 'Same'")
    assert f"first used at {path}:3:5" in message


def test_two_entries_merging_one_name_are_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
version: 1
x-base: &base
  trunk_name: Merged
  trunk_type: exotel
trunks:
  - <<: *base
    trunk_config: {exotel_number: "+918044319240"}
  - <<: *base
    trunk_config: {exotel_number: "+918044319241"}
""",
    )
    (message,) = problems_of(path)
    assert message.startswith(f"{path}:8:5: duplicate trunk_name 'Merged'")
    assert f"first used at {path}:6:5" in message


def test_name_shared_through_an_alias_is_a_duplicate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
version: 1
trunks:
  - trunk_name: &n Shared
    trunk_type: exotel
    trunk_config: {exotel_number: "+918044319240"}
  - trunk_name: *n
    trunk_type: exotel
    trunk_config: {exotel_number: "+918044319241"}
""",
    )
    (message,) = problems_of(path)
    assert message.startswith(f"{path}:6:5: duplicate trunk_name 'Shared'")
    assert f"first used at {path}:3:5" in message


def test_names_equal_after_variables_are_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
version: 1
trunks:
  - trunk_name: prod
    trunk_type: exotel
    trunk_config: {exotel_number: "+918044319240"}
  - trunk_name: ${ENVIRONMENT}
    trunk_type: exotel
    trunk_config: {exotel_number: "+918044319241"}
""",
    )
    (message,) = problems_of(path, {"ENVIRONMENT": "prod"})
    assert message.startswith(f"{path}:6:17: duplicate trunk_name 'prod'")
    assert f"first used at {path}:3:17" in message


def test_duplicates_are_refused_by_validate(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\ntrunks:\n  - &t {trunk_name: A, trunk_type: exotel, "
          'trunk_config: {exotel_number: "+918044319240"}}\n  - *t\n')  # fmt: skip
    result = CliRunner().invoke(cli, ["validate", "-f", str(tmp_path / "trunks.yaml")], env=ENV)
    assert result.exit_code == 1
    assert "duplicate trunk_name 'A'" in result.stderr
    assert "Traceback" not in result.output + result.stderr


# --- bounded loading ------------------------------------------------------------------------


def bomb_in_trunks(size: int) -> str:
    """About `size` bytes of anchors, each level ten aliases of the one before, and the
    last level used as the numbers of every trunk: far more values than any cap."""
    text = 'version: 1\nx-n0: &n0 ["+1555010000"]\n'
    level = 0
    while len(text) < size - 1_000:
        level += 1
        text += f"x-n{level}: &n{level} [" + ", ".join([f"*n{level - 1}"] * 10) + "]\n"
    text += "trunks:\n"
    for index in range(5):
        text += (
            f"  - trunk_name: T{index}\n    trunk_type: twilio\n    trunk_config:\n"
            f"      address: a.example.com\n      numbers: *n{level}\n"
            "      username: ${TWILIO_ACCOUNT_SID}\n      password: ${TWILIO_AUTH_TOKEN}\n"
        )
    return text


@pytest.mark.parametrize("size", [67_000, 90_000])
def test_alias_bomb_is_refused_fast_with_one_bounded_error(tmp_path: Path, size: int) -> None:
    path = write(tmp_path, bomb_in_trunks(size))
    assert size - 1_500 < path.stat().st_size <= size
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    with pytest.raises(ConfigError) as caught:
        load_desired(path, ENV)
    cpu = time.process_time() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss) / 1024
    text = str(caught.value)
    assert "aliases (*name) expand to more than 250,000 values" in text
    assert len(text) < 2_000
    # Generous bounds, far from the 17 s and 2.3 GB the issue measured: they catch a
    # cap that stopped working, not a slow machine.
    assert cpu < 10
    assert grown_mb < 500


def test_many_problems_are_bounded_with_a_count(tmp_path: Path) -> None:
    entries = "".join(
        f"  - trunk_name: T{index}\n    trunk_type: exotel\n"
        f"    trunk_config: {{exotel_number: bad{index}}}\n"
        for index in range(1_500)
    )
    path = write(tmp_path, "version: 1\ntrunks:\n" + entries)
    with pytest.raises(ConfigError) as caught:
        load_desired(path, ENV)
    error = caught.value
    assert len(error.problems) == 1_000
    assert error.omitted == 500
    lines = str(error).splitlines()
    assert len(lines) == SHOWN_PROBLEMS + 1
    assert lines[-1] == f"... and {1_500 - SHOWN_PROBLEMS} more problem(s)"


def test_file_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    (message,) = problems_of(path)
    assert message == f"{path}: the file is larger than 4 MiB, the most trunksync reads"


def test_deep_nesting_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ntrunks: " + "[" * 200 + "]" * 200 + "\n")
    (message,) = problems_of(path)
    assert "nested" in message


def test_flow_nesting_beyond_the_parser_limit_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ntrunks: " + "[" * 100_000 + "\n")
    (message,) = problems_of(path)
    assert "invalid YAML" in message


# --- secrets: exactly one ${VAR}, never echoed --------------------------------------------


@pytest.mark.parametrize(
    "password",
    ['"hunter2${EMPTY}"', '"${TWILIO_AUTH_TOKEN}x"', '"${A}${B}"', '" ${TWILIO_AUTH_TOKEN}"'],
)
def test_secret_must_be_exactly_one_reference(tmp_path: Path, password: str) -> None:
    path = write(tmp_path, twilio_file(password=password))
    env = {**ENV, "EMPTY": "", "A": "a", "B": "b"}
    (message,) = problems_of(path, env)
    assert "password must be exactly one ${VARIABLE}" in message
    assert "hunter2" not in message


def test_mixed_secret_is_refused_even_when_plain_text_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, twilio_file(password='"hunter2${EMPTY}"'))
    (message,) = problems_of(path, {**ENV, "EMPTY": ""}, allow_plaintext_secrets=True)
    assert "exactly one ${VARIABLE}" in message


def test_secret_variable_in_a_plain_field_is_refused_without_its_value(tmp_path: Path) -> None:
    path = write(
        tmp_path, twilio_file(name="${TWILIO_ACCOUNT_SID}", address="${TWILIO_AUTH_TOKEN}")
    )
    found = problems_of(path)
    assert len(found) == 2, found
    assert "address uses ${TWILIO_AUTH_TOKEN}, which is used for a secret" in found[0] + found[1]
    assert "trunk_name uses ${TWILIO_ACCOUNT_SID}" in found[0] + found[1]
    assert_no_secret(found, SID, TOKEN)


def test_secret_anchor_under_an_x_key_may_feed_secret_fields(tmp_path: Path) -> None:
    text = "x-token: &token ${TWILIO_AUTH_TOKEN}\n" + twilio_file(password="*token")
    (trunk,) = load_desired(write(tmp_path, text), ENV).trunks
    assert trunk.secrets["password"].get_secret_value() == TOKEN


def test_secret_value_never_reaches_the_cli_output(tmp_path: Path) -> None:
    write(tmp_path, twilio_file(address="${TWILIO_AUTH_TOKEN}.example.com"))
    result = CliRunner().invoke(cli, ["validate", "-f", str(tmp_path / "trunks.yaml")], env=ENV)
    assert result.exit_code == 1
    assert_no_secret([result.output, result.stderr], SID, TOKEN)


def test_empty_secret_variable_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, twilio_file())
    (message,) = problems_of(path, {**ENV, "TWILIO_AUTH_TOKEN": ""})
    assert "environment variable TWILIO_AUTH_TOKEN is empty" in message


# --- --allow-missing-secrets (loader part) --------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}])
def test_missing_secrets_become_unknown_when_allowed(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, twilio_file())
    desired = load_desired(path, env, allow_missing_secrets=True)
    (trunk,) = desired.trunks
    assert desired.secrets_unchecked is True
    assert trunk.unknown_secrets == frozenset({"username", "password"})
    assert isinstance(trunk.secrets["password"], UnknownSecret)
    assert desired.secret_values() == []
    with pytest.raises(TrunksyncError, match="unknown"):
        trunk.request_body()
    with pytest.raises(TrunksyncError, match="TWILIO_AUTH_TOKEN"):
        trunk.secrets["password"].get_secret_value()
    # Comparing or hashing a plan's trunks must not try to reveal it.
    assert trunk.secrets["password"] == UnknownSecret("TWILIO_AUTH_TOKEN")
    assert trunk.secrets["password"] != UnknownSecret("OTHER")
    assert len({trunk.secrets["password"], UnknownSecret("TWILIO_AUTH_TOKEN")}) == 1
    assert trunk == load_desired(path, env, allow_missing_secrets=True).trunks[0]


def test_one_missing_secret_leaves_the_known_one(tmp_path: Path) -> None:
    path = write(tmp_path, twilio_file())
    desired = load_desired(path, {"TWILIO_ACCOUNT_SID": SID}, allow_missing_secrets=True)
    (trunk,) = desired.trunks
    assert trunk.unknown_secrets == frozenset({"password"})
    assert desired.secret_values() == [SID]


def test_unset_variables_elsewhere_stay_errors_when_missing_secrets_are_allowed(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, twilio_file(address="${HOST}"))
    (message,) = problems_of(path, {}, allow_missing_secrets=True)
    assert "environment variable HOST is not set" in message


def test_a_value_that_looks_like_the_marker_is_not_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, twilio_file(password='"\\0unknown-secret-0000000000000000:X"'))
    (trunk,) = load_desired(path, ENV, True, allow_missing_secrets=True).trunks
    assert trunk.unknown_secrets == frozenset()


def test_known_secrets_are_listed_for_scrubbing(tmp_path: Path) -> None:
    desired = load_desired(write(tmp_path, twilio_file()), ENV)
    assert sorted(desired.secret_values()) == sorted([SID, TOKEN])
    assert desired.secrets_unchecked is False


# --- names and patterns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ('"evil\\x1b[31mred"', "evil\\x1b[31mred"),
        ('"two\\nlines"', "two\\x0alines"),
        ('"del\\x7f"', "del\\x7f"),
        ('"c1\\x85"', "c1\\x85"),
        ('"bidi\\u202eevil"', "bidi\\u202eevil"),
        ('"sep\\u2028x"', "sep\\u2028x"),
    ],
)
def test_trunk_name_refuses_control_and_bidi_characters(
    tmp_path: Path, name: str, shown: str
) -> None:
    path = write(tmp_path, twilio_file(name=name))
    (message,) = problems_of(path)
    assert f"trunk_name: '{shown}' holds a control or bidi character" in message
    assert message.isprintable()


@pytest.mark.parametrize(
    "number",
    [
        '"+15550100000\\n"',
        '"+1555\\u0660\\u0661\\u0660\\u0660\\u0660\\u0660\\u0660"',  # Arabic-Indic digits
        '"x+15550100000"',
        '"+15550100000 "',
    ],
)
def test_phone_patterns_match_whole_ascii_values(tmp_path: Path, number: str) -> None:
    entry = f"{{trunk_name: E, trunk_type: exotel, trunk_config: {{exotel_number: {number}}}}}"
    text = f"version: 1\ntrunks:\n  - {entry}\n"
    (message,) = problems_of(write(tmp_path, text))
    assert "is not an E.164 number" in message


@pytest.mark.parametrize("host", ['"example.com\\n"', '"exämple.com"', '"example.com."'])
def test_host_patterns_match_whole_ascii_values(tmp_path: Path, host: str) -> None:
    (message,) = problems_of(write(tmp_path, twilio_file(address=host)))
    assert "must be a bare host name" in message


def exotel_port(port: str) -> str:
    return (
        "version: 1\ntrunks:\n  - trunk_name: E\n    trunk_type: exotel\n    trunk_config:\n"
        f'      exotel_number: "+918044319240"\n      sip_port: {port}\n'
    )


def test_port_with_a_leading_zero_names_the_zero(tmp_path: Path) -> None:
    (message,) = problems_of(write(tmp_path, exotel_port("05070")))
    assert message.endswith(
        "sip_port: 05070 has a leading zero, which YAML reads as an octal number: "
        'write 5070 (and "05070" in quotes is not a port)'
    )


@pytest.mark.parametrize(
    "port",
    ['"05070"', '"5070\\n"', '"\\u0665\\u0660\\u0667\\u0660"', '"70000"', "5070.0", '"+5070"'],
)
def test_port_text_must_be_plain_digits_in_range(tmp_path: Path, port: str) -> None:
    (message,) = problems_of(write(tmp_path, exotel_port(port)))
    assert "must be a whole number from 1 to 65535" in message


@pytest.mark.parametrize(("port", "value"), [("5070", 5070), ('"5070"', 5070), ("0x13CE", 5070)])
def test_port_forms_that_are_accepted(tmp_path: Path, port: str, value: int) -> None:
    (trunk,) = load_desired(write(tmp_path, exotel_port(port)), ENV).trunks
    assert trunk.config["sip_port"] == value


@pytest.mark.parametrize("version", ["true", "1.0", "01", '"01"', '"1.0"', "yes", '"0x1"', '"+1"'])
def test_version_other_than_one_is_refused(tmp_path: Path, version: str) -> None:
    text = f"version: {version}\ntrunks: []\n"
    (message,) = problems_of(write(tmp_path, text))
    assert "version must be 1" in message


@pytest.mark.parametrize("version", ["1", '"1"', "0x1", "+1"])
def test_version_one_as_number_or_text(tmp_path: Path, version: str) -> None:
    assert load_desired(write(tmp_path, f"version: {version}\ntrunks: []\n"), ENV).trunks == ()


# --- stdin, display name, digest, Problem -----------------------------------------------------


def test_dash_reads_stdin_and_hashes_the_bytes() -> None:
    data = twilio_file().encode()
    desired = load_desired("-", ENV, stdin=io.BytesIO(data))
    assert desired.path == "<stdin>"
    assert desired.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert [trunk.name for trunk in desired.trunks] == ["T"]


def test_stdin_problems_are_located_in_stdin() -> None:
    with pytest.raises(ConfigError) as caught:
        load_desired("-", ENV, stdin=io.BytesIO(b"version: 2\ntrunks: []\n"))
    (problem,) = caught.value.problems
    assert problem == Problem(
        "<stdin>", 1, 10, "version: version must be 1 (the only format this trunksync reads)"
    )


def test_digest_of_a_file_is_of_its_exact_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, twilio_file() + "# a comment changes the digest\n")
    desired: Desired = load_desired(path, ENV)
    assert desired.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_problem_text_forms() -> None:
    assert str(Problem("f.yaml", 3, 7, "bad")) == "f.yaml:3:7: bad"
    assert str(Problem("f.yaml", 3, None, "bad")) == "f.yaml:3: bad"
    assert str(Problem("f.yaml", None, None, "bad")) == "f.yaml: bad"
    assert str(ConfigError(["plain text"])) == "plain text"


# --- any name, any error: nothing unprintable reaches a message -----------------------------


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=30))
def test_any_name_loads_clean_or_fails_with_printable_messages(name: str) -> None:
    text = twilio_file(name=json.dumps(name))  # a JSON string is a YAML double-quoted scalar
    try:
        desired = load_desired("-", ENV, stdin=io.BytesIO(text.encode()))
    except ConfigError as error:
        for line in str(error).splitlines():
            assert not has_unsafe_chars(line), line
        return
    (trunk,) = desired.trunks
    assert trunk.name == name
    assert not has_unsafe_chars(name)


SECRET_IN_PLAIN_FIELDS = {
    "trunk_name": twilio_file(name="${TWILIO_AUTH_TOKEN}"),
    "address": twilio_file(address="${TWILIO_AUTH_TOKEN}"),
    "address, partly": twilio_file(address="x${TWILIO_AUTH_TOKEN}.example.com"),
    "a number": twilio_file().replace('"+15550100000"', '"${TWILIO_AUTH_TOKEN}"'),
    "trunk_type": twilio_file().replace("trunk_type: twilio", "trunk_type: ${TWILIO_AUTH_TOKEN}"),
    "an unknown field": twilio_file() + "    region: ${TWILIO_AUTH_TOKEN}\n",
    "sip_port": exotel_port("${TWILIO_AUTH_TOKEN}") + twilio_file().split("trunks:\n", 1)[1],
    "version": twilio_file().replace("version: 1", "version: ${TWILIO_AUTH_TOKEN}"),
}


@pytest.mark.parametrize("case", sorted(SECRET_IN_PLAIN_FIELDS))
def test_a_secret_variable_in_any_plain_field_is_refused_unseen(tmp_path: Path, case: str) -> None:
    path = write(tmp_path, SECRET_IN_PLAIN_FIELDS[case])
    with pytest.raises(ConfigError) as caught:
        load_desired(path, ENV)
    texts = [str(caught.value), *(str(problem) for problem in caught.value.problems)]
    assert any("which is used for a secret" in text for text in texts), texts
    assert_no_secret(texts, TOKEN, SID)
