"""load_desired: YAML -> validated trunks, with every problem reported at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from trunksync.config import Desired, load_desired
from trunksync.errors import ConfigError

SID = "AC-SENTINEL-USERNAME-999"
TOKEN = "SENTINEL-PASSWORD-123"
ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}

EXAMPLE = """\
version: 1
trunks:
  - trunk_name: Twilio Production
    trunk_type: twilio
    trunk_config:
      address: example.pstn.twilio.com
      numbers: ["+15550100000"]
      username: ${TWILIO_ACCOUNT_SID}
      password: ${TWILIO_AUTH_TOKEN}
  - trunk_name: Exotel India
    trunk_type: exotel
    trunk_config:
      exotel_number: "+918044319240"
"""

TWILIO = """\
version: 1
trunks:
  - trunk_name: T
    trunk_type: twilio
    trunk_config:
      address: {address}
      numbers: {numbers}
      username: ${{TWILIO_ACCOUNT_SID}}
      password: ${{TWILIO_AUTH_TOKEN}}
"""

EXOTEL = """\
version: 1
trunks:
  - trunk_name: {name}
    trunk_type: exotel
    trunk_config:
      exotel_number: {number}
"""


Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(text: str, name: str = "trunks.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def load(path: Path, environ: dict[str, str] | None = None, **kwargs: bool) -> Desired:
    return load_desired(path, ENV if environ is None else environ, **kwargs)


def problems(path: Path, environ: dict[str, str] | None = None, **kwargs: bool) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path, environ, **kwargs)
    error = caught.value
    texts = [str(problem) for problem in error.problems]
    assert str(error) == "\n".join(
        texts[:20] + ([f"... and {len(texts) - 20} more problem(s)"] if len(texts) > 20 else [])
    )
    assert error.problems, "a ConfigError without problems"
    return texts


def only(path: Path, environ: dict[str, str] | None = None, **kwargs: bool) -> str:
    found = problems(path, environ, **kwargs)
    assert len(found) == 1, found
    return found[0]


def at(path: Path, line: int, column: int | None = None) -> str:
    return f"{path}:{line}:{column}: " if column else f"{path}:{line}:"


# --- the valid example ------------------------------------------------------------------------


def test_valid_example(write: Write) -> None:
    path = write(EXAMPLE)
    desired = load(path)
    assert desired.path == str(path)
    twilio, exotel = desired.trunks
    assert twilio.name == "Twilio Production"
    assert twilio.trunk_type == "twilio"
    assert twilio.config == {"address": "example.pstn.twilio.com", "numbers": ["+15550100000"]}
    assert set(twilio.secrets) == {"username", "password"}
    assert twilio.secrets["password"].get_secret_value() == TOKEN
    assert twilio.line == 3
    assert exotel.name == "Exotel India"
    assert exotel.trunk_type == "exotel"
    assert exotel.config == {"exotel_number": "+918044319240"}
    assert exotel.secrets == {}
    assert exotel.line == 10


def test_request_body_reveals_the_secrets(write: Write) -> None:
    twilio, exotel = load(write(EXAMPLE)).trunks
    assert twilio.request_body() == {
        "trunk_name": "Twilio Production",
        "trunk_type": "twilio",
        "trunk_config": {
            "address": "example.pstn.twilio.com",
            "numbers": ["+15550100000"],
            "username": SID,
            "password": TOKEN,
        },
    }
    assert exotel.request_body() == {
        "trunk_name": "Exotel India",
        "trunk_type": "exotel",
        "trunk_config": {"exotel_number": "+918044319240"},
    }


def test_repr_of_desired_does_not_contain_secrets(write: Write) -> None:
    desired = load(write(EXAMPLE))
    for text in (
        repr(desired),
        str(desired),
        repr(desired.trunks[0]),
        str(desired.trunks[0].secrets),
    ):
        assert TOKEN not in text
        assert SID not in text


def test_exotel_optional_fields(write: Write) -> None:
    path = write(
        EXOTEL.format(name="E", number='"+918044319240"')
        + "      sip_host: sip.exotel.example\n"
        + "      sip_port: 5060\n"
        + "      sip_domain: realm.example\n"
    )
    (trunk,) = load(path).trunks
    assert trunk.config == {
        "exotel_number": "+918044319240",
        "sip_host": "sip.exotel.example",
        "sip_port": 5060,
        "sip_domain": "realm.example",
    }
    assert type(trunk.config["sip_port"]) is int


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    message = only(path)
    assert str(path) in message and "not found" in message


# --- environment interpolation ----------------------------------------------------------------


def test_interpolation_in_any_string(write: Write) -> None:
    path = write(
        """\
version: 1
trunks:
  - trunk_name: "${ENV_NAME} primary"
    trunk_type: twilio
    trunk_config:
      address: ${HOST}.pstn.twilio.com
      numbers: ["${NUMBER}", "+1555${TAIL}"]
      username: ${TWILIO_ACCOUNT_SID}
      password: "${TWILIO_AUTH_TOKEN}"
  - trunk_name: exotel ${ENV_NAME}
    trunk_type: exotel
    trunk_config:
      exotel_number: ${NUMBER}
"""
    )
    environ = {
        **ENV,
        "ENV_NAME": "prod",
        "HOST": "acme",
        "NUMBER": "+15550100000",
        "TAIL": "0100001",
    }
    twilio, exotel = load(path, environ).trunks
    assert twilio.name == "prod primary"
    assert twilio.config == {
        "address": "acme.pstn.twilio.com",
        "numbers": ["+15550100000", "+15550100001"],
    }
    assert twilio.secrets["password"].get_secret_value() == TOKEN
    assert exotel.name == "exotel prod"
    assert exotel.config == {"exotel_number": "+15550100000"}


def test_dollar_dollar_escape_keeps_a_literal_reference(write: Write) -> None:
    path = write(EXOTEL.format(name='"cost $${X} and ${Y}"', number='"+918044319240"'))
    (trunk,) = load(path, {"X": "expanded", "Y": "why"}).trunks
    assert trunk.name == "cost ${X} and why"


def test_escape_needs_no_variable(write: Write) -> None:
    path = write(EXOTEL.format(name='"$${NOT_SET_ANYWHERE}"', number='"+918044319240"'))
    (trunk,) = load(path, {}).trunks
    assert trunk.name == "${NOT_SET_ANYWHERE}"


def test_substituted_values_are_not_expanded_again(write: Write) -> None:
    path = write(EXOTEL.format(name="${A}", number='"+918044319240"'))
    (trunk,) = load(path, {"A": "${B}", "B": "nope"}).trunks
    assert trunk.name == "${B}"


def test_unset_variable_is_reported_with_position(write: Write) -> None:
    path = write(EXOTEL.format(name="T", number="${EXOTEL_NUMBER}"))
    message = only(path, {})
    assert message.startswith(at(path, 6, 22))
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: ", message)
    assert "EXOTEL_NUMBER" in message
    assert "not set" in message


def test_unset_secret_variable_is_reported_once(write: Write) -> None:
    path = write(EXAMPLE)
    found = problems(path, {"TWILIO_ACCOUNT_SID": SID})
    assert found == [
        f"{at(path, 9, 17)}environment variable TWILIO_AUTH_TOKEN is not set "
        "(pass --allow-missing-secrets to validate or plan without it)"
    ]


def test_invalid_variable_reference(write: Write) -> None:
    path = write(EXOTEL.format(name='"${1BAD}"', number='"+918044319240"'))
    message = only(path, {"1BAD": "x"})
    assert message.startswith(at(path, 3))
    assert "${1BAD}" in message


# --- plaintext secrets ------------------------------------------------------------------------

PLAIN = TWILIO.replace("${{TWILIO_ACCOUNT_SID}}", "{username}").replace(
    "${{TWILIO_AUTH_TOKEN}}", "{password}"
)


@pytest.mark.parametrize(
    ("username", "password", "line"),
    [
        ("${TWILIO_ACCOUNT_SID}", "PLAIN-SENTINEL-TOKEN", 9),
        ("PLAIN-SENTINEL-TOKEN", "${TWILIO_AUTH_TOKEN}", 8),
        ('"$${TWILIO_AUTH_TOKEN}"', "${TWILIO_AUTH_TOKEN}", 8),  # an escape is plain text
    ],
)
def test_plaintext_secret_is_refused(write: Write, username: str, password: str, line: int) -> None:
    path = write(
        PLAIN.format(
            address="x.pstn.twilio.com",
            numbers='["+15550100000"]',
            username=username,
            password=password,
        )
    )
    message = only(path)
    assert message.startswith(at(path, line))
    assert "${" in message
    assert "--allow-plaintext-secrets" in message
    assert "PLAIN-SENTINEL-TOKEN" not in message


def test_plaintext_secret_accepted_with_flag(write: Write) -> None:
    path = write(
        PLAIN.format(
            address="x.pstn.twilio.com",
            numbers='["+15550100000"]',
            username="AC-plain",
            password="plain-token",
        )
    )
    (trunk,) = load(path, {}, allow_plaintext_secrets=True).trunks
    assert trunk.request_body()["trunk_config"]["username"] == "AC-plain"
    assert trunk.request_body()["trunk_config"]["password"] == "plain-token"
    assert "plain-token" not in repr(trunk)


@pytest.mark.parametrize("password", ["12345", "0123", "3.14"])
def test_numeric_plaintext_secret_is_refused(write: Write, password: str) -> None:
    path = write(
        PLAIN.format(
            address="x.pstn.twilio.com",
            numbers='["+15550100000"]',
            username="${TWILIO_ACCOUNT_SID}",
            password=password,
        )
    )
    message = only(path)
    assert "--allow-plaintext-secrets" in message


# --- unknown fields, types, shapes ------------------------------------------------------------


def test_unknown_config_field_suggests_the_right_one(write: Write) -> None:
    text = TWILIO.format(address="x.pstn.twilio.com", numbers='["+15550100000"]')
    path = write(text.replace("address:", "adress:"))
    found = problems(path)
    unknown = [line for line in found if "unknown field 'adress'" in line]
    assert len(unknown) == 1
    assert unknown[0].startswith(at(path, 6, 7))
    assert "did you mean 'address'?" in unknown[0]
    assert any("missing required field 'address'" in line for line in found)


def test_unknown_top_level_field_suggests_the_right_one(write: Write) -> None:
    path = write("verison: 1\ntrunks: []\n")
    found = problems(path)
    unknown = [line for line in found if "unknown field 'verison'" in line]
    assert len(unknown) == 1 and "did you mean 'version'?" in unknown[0]
    assert unknown[0].startswith(at(path, 1, 1))


TYPO_TRUNK = EXOTEL.format(name="T", number='"+918044319240"').replace("trunk_name", "trunk_nmae")


def test_unknown_trunk_field_is_reported(write: Write) -> None:
    path = write(TYPO_TRUNK)
    found = problems(path)
    unknown = [line for line in found if "unknown field 'trunk_nmae'" in line]
    assert len(unknown) == 1
    assert unknown[0].startswith(at(path, 3, 5))
    assert any("missing required field 'trunk_name'" in line for line in found)


def test_unknown_trunk_field_suggests_trunk_name(write: Write) -> None:
    path = write(TYPO_TRUNK)
    found = problems(path)
    unknown = [line for line in found if "unknown field 'trunk_nmae'" in line]
    assert "did you mean 'trunk_name'?" in unknown[0]


def test_numbers_as_a_string_instead_of_a_list(write: Write) -> None:
    path = write(TWILIO.format(address="x.pstn.twilio.com", numbers='"+15550100000"'))
    message = only(path)
    assert message.startswith(at(path, 7, 16))
    assert "numbers" in message and "expected a list" in message


@pytest.mark.parametrize("port", ["abc", '"5060x"', "5060.5", "[5060]"])
def test_sip_port_not_a_number(write: Write, port: str) -> None:
    path = write(EXOTEL.format(name="E", number='"+918044319240"') + f"      sip_port: {port}\n")
    message = only(path)
    assert message.startswith(at(path, 7, 17))
    assert "sip_port" in message and "whole number from 1 to 65535" in message


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_sip_port_out_of_range(write: Write, port: str) -> None:
    path = write(EXOTEL.format(name="E", number='"+918044319240"') + f"      sip_port: {port}\n")
    message = only(path)
    assert message.startswith(at(path, 7, 17))
    assert "1 to 65535" in message


@pytest.mark.parametrize("port", ["1", "5060", "65535"])
def test_sip_port_in_range(write: Write, port: str) -> None:
    path = write(EXOTEL.format(name="E", number='"+918044319240"') + f"      sip_port: {port}\n")
    (trunk,) = load(path).trunks
    assert trunk.config["sip_port"] == int(port)


def test_trunk_config_as_a_list(write: Write) -> None:
    path = write(
        "version: 1\ntrunks:\n  - trunk_name: T\n    trunk_type: exotel\n"
        "    trunk_config:\n      - exotel_number: '+918044319240'\n"
    )
    message = only(path)
    assert message.startswith(at(path, 6, 7))
    assert "trunk_config" in message and "expected a mapping, got a list" in message


def test_boolean_where_text_is_expected(write: Write) -> None:
    path = write(EXOTEL.format(name="yes", number='"+918044319240"'))
    message = only(path)
    assert message.startswith(at(path, 3, 17))
    assert "boolean" in message and "quote" in message


def test_unknown_trunk_type(write: Write) -> None:
    path = write(EXOTEL.format(name="T", number='"+1555"').replace("exotel\n", "twillio\n", 1))
    message = only(path)
    assert message.startswith(at(path, 3))
    assert "trunk_type must be 'twilio' or 'exotel'" in message


def test_exotel_field_under_twilio_is_unknown(write: Write) -> None:
    text = TWILIO.format(address="x.pstn.twilio.com", numbers='["+15550100000"]')
    path = write(text + "      exotel_number: '+918044319240'\n")
    message = only(path)
    assert message.startswith(at(path, 10, 7))
    assert "unknown field 'exotel_number'" in message


def test_missing_address(write: Write) -> None:
    text = TWILIO.format(address="x.pstn.twilio.com", numbers='["+15550100000"]')
    path = write(text.replace("      address: x.pstn.twilio.com\n", ""))
    message = only(path)
    assert message.startswith(at(path, 6))
    assert "missing required field 'address'" in message
    assert "trunks[0].trunk_config.address" in message


def test_empty_numbers_list(write: Write) -> None:
    path = write(TWILIO.format(address="x.pstn.twilio.com", numbers="[]"))
    message = only(path)
    assert "numbers" in message and "must not be empty" in message


# --- duplicate names and keys -----------------------------------------------------------------


def test_duplicate_trunk_names_name_both_lines(write: Write) -> None:
    path = write(
        EXOTEL.format(name="Same", number='"+918044319240"')
        + "  - trunk_name: Same\n    trunk_type: exotel\n"
        + "    trunk_config:\n      exotel_number: '+918044319241'\n"
    )
    message = only(path)
    assert message.startswith(at(path, 7, 17))
    assert "duplicate trunk_name 'Same'" in message
    assert f"{path}:3:17" in message


def test_duplicate_trunk_names_after_interpolation(write: Write) -> None:
    path = write(
        EXOTEL.format(name="${ENV}-main", number='"+918044319240"')
        + "  - trunk_name: prod-main\n    trunk_type: exotel\n"
        + "    trunk_config:\n      exotel_number: '+918044319241'\n"
    )
    message = only(path, {"ENV": "prod"})
    assert "duplicate trunk_name" in message


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("version: 1\nversion: 1\ntrunks: []\n", "version", 2, 1),
        (
            EXOTEL.format(name="T", number='"+918044319240"').replace(
                "    trunk_type: exotel\n", "    trunk_type: exotel\n    trunk_type: exotel\n"
            ),
            "trunk_type",
            5,
            4,
        ),
        (
            EXOTEL.format(name="T", number='"+918044319240"') + '      "exotel_number": "+1555"\n',
            "exotel_number",
            7,
            6,
        ),
    ],
)
def test_duplicate_mapping_keys_refused(
    write: Write, text: str, key: str, line: int, first: int
) -> None:
    path = write(text)
    message = only(path)
    assert message.startswith(at(path, line))
    assert f"duplicate key '{key}'" in message
    assert f"first defined on line {first}" in message


# --- E.164 and hosts --------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+15550100000", "+918044319240", "+12", "+123456789012345"])
def test_e164_good(write: Write, number: str) -> None:
    (trunk,) = load(write(EXOTEL.format(name="E", number=f'"{number}"'))).trunks
    assert trunk.config["exotel_number"] == number


@pytest.mark.parametrize(
    "number", ["+1555 010", "15550100000", "+0123", "+1", "+1234567890123456", "", "+1-555-0100"]
)
def test_e164_bad(write: Write, number: str) -> None:
    path = write(EXOTEL.format(name="E", number=f'"{number}"'))
    message = only(path)
    assert message.startswith(at(path, 6, 22))
    assert "exotel_number" in message and "E.164" in message
    assert repr(number) in message


def test_e164_bad_in_numbers_list_points_at_the_item(write: Write) -> None:
    path = write(
        TWILIO.format(address="x.pstn.twilio.com", numbers='["+15550100000", "+1555 010"]')
    )
    message = only(path)
    assert message.startswith(at(path, 7, 33))
    assert "numbers[1]" in message and "'+1555 010'" in message


@pytest.mark.parametrize(
    "address",
    ["sip:x.pstn.twilio.com", "user@x.com", "x.com:5060", "x.com;transport=tls", "https://x.com"],
)
def test_twilio_address_must_be_a_bare_host(write: Write, address: str) -> None:
    path = write(TWILIO.format(address=f'"{address}"', numbers='["+15550100000"]'))
    message = only(path)
    assert message.startswith(at(path, 6, 16))
    assert "bare host" in message
    assert repr(address) in message


@pytest.mark.parametrize("address", ["x.pstn.twilio.com", "localhost", "10.0.0.1", "a-b.example"])
def test_twilio_address_bare_hosts_accepted(write: Write, address: str) -> None:
    (trunk,) = load(write(TWILIO.format(address=address, numbers='["+15550100000"]'))).trunks
    assert trunk.config["address"] == address


# --- YAML 1.1 traps ---------------------------------------------------------------------------


def test_unquoted_plus_number_keeps_its_text(write: Write) -> None:
    (trunk,) = load(write(EXOTEL.format(name="E", number="+918044319240"))).trunks
    assert trunk.config["exotel_number"] == "+918044319240"
    assert type(trunk.config["exotel_number"]) is str


def test_unquoted_numbers_in_flow_list_keep_their_text(write: Write) -> None:
    path = write(TWILIO.format(address="x.pstn.twilio.com", numbers="[+15550100000, +15550100001]"))
    (trunk,) = load(path).trunks
    assert trunk.config["numbers"] == ["+15550100000", "+15550100001"]
    assert all(type(number) is str for number in trunk.config["numbers"])


@pytest.mark.parametrize("name", ["0123", "1_000", "0x1F", "12:30", "1.50", "2024-01-15"])
def test_unquoted_number_like_names_keep_their_text(write: Write, name: str) -> None:
    (trunk,) = load(write(EXOTEL.format(name=name, number='"+918044319240"'))).trunks
    assert trunk.name == name
    assert type(trunk.name) is str


def test_unquoted_octal_phone_number_is_refused_with_its_original_text(write: Write) -> None:
    path = write(EXOTEL.format(name="E", number="0123"))
    message = only(path)
    assert "'0123'" in message
    assert "'83'" not in message and " 83 " not in message
    assert "E.164" in message


# --- file-level shapes ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n# and another\n", "\n\n"])
def test_empty_file(write: Write, text: str) -> None:
    path = write(text)
    message = only(path)
    assert message.startswith(at(path, 1, 1))
    assert "empty" in message


def test_top_level_list(write: Write) -> None:
    path = write("- version: 1\n- trunks: []\n")
    message = only(path)
    assert message.startswith(at(path, 1, 1))
    assert "expected a mapping" in message


def test_top_level_scalar(write: Write) -> None:
    message = only(write("just text\n"))
    assert "expected a mapping" in message


@pytest.mark.parametrize("version", ["2", "0", '"one"', "1.0"])
def test_version_other_than_1(write: Write, version: str) -> None:
    path = write(f"version: {version}\ntrunks: []\n")
    message = only(path)
    assert message.startswith(at(path, 1, 10))
    assert "version must be 1" in message


def test_missing_version(write: Write) -> None:
    message = only(write("trunks: []\n"))
    assert "missing required field 'version'" in message


def test_missing_trunks(write: Write) -> None:
    path = write("version: 1\n")
    message = only(path)
    assert message.startswith(at(path, 1))
    assert "missing required field 'trunks'" in message


def test_empty_trunks_list_is_valid(write: Write) -> None:
    assert load(write("version: 1\ntrunks: []\n")).trunks == ()


def test_invalid_yaml_syntax_reports_the_line(write: Write) -> None:
    path = write("version: 1\ntrunks: [\n  {trunk_name: a,\n")
    message = only(path)
    assert re.match(rf"^{re.escape(str(path))}:[34]:\d+: invalid YAML", message), message


def test_tab_indented_file(write: Write) -> None:
    path = write("version: 1\ntrunks:\n\t- trunk_name: a\n")
    message = only(path)
    assert message.startswith(at(path, 3))
    assert "invalid YAML" in message


def test_multiple_documents(write: Write) -> None:
    path = write("---\nversion: 1\ntrunks: []\n---\nversion: 1\ntrunks: []\n")
    message = only(path)
    assert message.startswith(at(path, 4))
    assert "invalid YAML" in message and "document" in message


# --- anchors, aliases, merge keys -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x-loop: &loop [*loop]\nversion: 1\ntrunks: []\n",
        "x-loop: &loop {again: *loop}\nversion: 1\ntrunks: []\n",
        "x-loop: &loop {<<: *loop}\nversion: 1\ntrunks: []\n",
        "version: 1\ntrunks: &t [*t]\n",
    ],
)
def test_recursive_alias_is_a_config_error(write: Write, text: str) -> None:
    found = problems(write(text))
    assert any("recursive" in line for line in found), found


def test_alias_expansion_bomb_is_a_config_error(write: Write) -> None:
    # Nine levels of ten: 10**9 values once expanded; refused at the alias-expansion cap.
    levels = ["x-l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        levels.append(f"x-l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    path = write("version: 1\ntrunks: []\n" + "\n".join(levels) + "\n")
    message = only(path)
    assert "aliases (*name) expand to more than 250,000 values" in message


def test_merge_keys_with_x_defaults(write: Write) -> None:
    path = write(
        """\
version: 1
x-defaults: &defaults
  trunk_type: twilio
  trunk_config: &config
    address: x.pstn.twilio.com
    numbers: ["+15550100000"]
    username: ${TWILIO_ACCOUNT_SID}
    password: ${TWILIO_AUTH_TOKEN}
trunks:
  - <<: *defaults
    trunk_name: First
  - <<: *defaults
    trunk_name: Second
    trunk_config:
      <<: *config
      numbers: ["+15550100001"]
"""
    )
    first, second = load(path).trunks
    assert (first.name, first.trunk_type) == ("First", "twilio")
    assert first.config == {"address": "x.pstn.twilio.com", "numbers": ["+15550100000"]}
    assert first.secrets["password"].get_secret_value() == TOKEN
    assert second.name == "Second"
    assert second.config == {"address": "x.pstn.twilio.com", "numbers": ["+15550100001"]}
    assert second.secrets["username"].get_secret_value() == SID


def test_merge_of_a_non_mapping_is_refused(write: Write) -> None:
    path = write("x-a: &a [1, 2]\nversion: 1\ntrunks: []\n<<: *a\n")
    found = problems(path)
    assert any("merge key" in line for line in found), found


def test_plain_aliases_are_expanded(write: Write) -> None:
    path = write(
        "version: 1\nx-num: &num '+918044319240'\ntrunks:\n  - trunk_name: E\n"
        "    trunk_type: exotel\n    trunk_config:\n      exotel_number: *num\n"
    )
    (trunk,) = load(path).trunks
    assert trunk.config["exotel_number"] == "+918044319240"


# --- all problems at once ---------------------------------------------------------------------


def test_all_problems_reported_at_once_sorted_by_line(write: Write) -> None:
    path = write(
        """\
version: 1
trunks:
  - trunk_name: One
    trunk_type: exotel
    trunk_config:
      exotel_number: "+918044319240"
      sip_port: 0
  - trunk_name: Two
    trunk_type: exotel
    trunk_config:
      exotel_number: ${UNSET_NUMBER}
  - trunk_name: One
    trunk_type: exotel
    trunk_config:
      exotel_number: "+918044319241"
"""
    )
    found = problems(path, {})
    assert len(found) == 3, found
    assert [int(line.split(":")[1]) for line in found] == [7, 11, 12]
    assert "sip_port" in found[0]
    assert "UNSET_NUMBER" in found[1]
    assert "duplicate trunk_name 'One'" in found[2]


# --- lengths and tags -------------------------------------------------------------------------


def test_trunk_name_length_limit(write: Write) -> None:
    ok = "n" * 100
    (trunk,) = load(write(EXOTEL.format(name=ok, number='"+918044319240"'))).trunks
    assert trunk.name == ok
    path = write(EXOTEL.format(name="n" * 101, number='"+918044319240"'), "long.yaml")
    message = only(path)
    assert message.startswith(at(path, 3, 17))
    assert "trunk_name" in message and "at most 100" in message


def test_trunk_name_too_long_message_speaks_of_characters(write: Write) -> None:
    path = write(EXOTEL.format(name="n" * 101, number='"+918044319240"'))
    message = only(path)
    assert "must be at most 100 characters" in message
    assert "items" not in message


def test_empty_trunk_name(write: Write) -> None:
    message = only(write(EXOTEL.format(name='""', number='"+918044319240"')))
    assert "trunk_name" in message and "must not be empty" in message


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!binary aGVsbG8=", "tag:yaml.org,2002:binary"),
        ("!custom T", "!custom"),
        ("!custom {a: 1}", "!custom"),
        ("!!set {a, b}", "tag:yaml.org,2002:set"),
    ],
)
def test_unsupported_tags_are_clear_errors(write: Write, value: str, tag: str) -> None:
    path = write(EXOTEL.format(name=value, number='"+918044319240"'))
    message = only(path)
    assert message.startswith(at(path, 3, 17))
    assert f"unsupported YAML tag {tag}" in message


def test_explicit_str_tag_keeps_text(write: Write) -> None:
    (trunk,) = load(write(EXOTEL.format(name="!!str 0123", number='"+918044319240"'))).trunks
    assert trunk.name == "0123"


def test_explicit_bool_tag_with_non_boolean_text_is_a_config_error(write: Write) -> None:
    path = write(EXOTEL.format(name="!!bool maybe", number='"+918044319240"'))
    problems(path)


# --- secrets never appear in messages ---------------------------------------------------------

VALID_TWILIO = TWILIO.format(address="x.com", numbers='["+15550100000"]')
VALID_EXOTEL = EXOTEL.format(name="E", number='"+918044319240"')
SECRET_ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "PW": TOKEN}


@pytest.mark.parametrize(
    "text",
    [
        # password set from the environment, another field invalid
        TWILIO.format(address='"sip:x.com"', numbers='["+15550100000"]'),
        TWILIO.format(address="x.com", numbers='["123"]'),
        VALID_TWILIO.replace("twilio\n", "twillio\n"),
        VALID_TWILIO + "      extra: ${PW}\n",
        VALID_TWILIO + "      pasword: ${PW}\n",
        VALID_TWILIO
        + "  - trunk_name: T\n    trunk_type: exotel\n    trunk_config: {exotel_number: '1'}\n",
        VALID_TWILIO.replace("version: 1", "version: 3"),
        TWILIO.format(address="x.com", numbers="${UNSET}"),
        # a secret where it does not belong: an exotel trunk with a password
        VALID_EXOTEL + "      password: ${PW}\n",
        VALID_EXOTEL + "      username: ${TWILIO_ACCOUNT_SID}\n",
        # secret fields of the wrong type
        VALID_TWILIO.replace("password: ${TWILIO_AUTH_TOKEN}", "password: [${PW}]"),
        VALID_TWILIO.replace("password: ${TWILIO_AUTH_TOKEN}", "password: {value: ${PW}}"),
        # the whole trunk_config is not a mapping
        "version: 1\ntrunks:\n  - trunk_name: T\n    trunk_type: twilio\n"
        "    trunk_config: [${PW}, ${TWILIO_ACCOUNT_SID}]\n",
    ],
)
def test_config_errors_never_contain_secret_values(write: Write, text: str) -> None:
    found = problems(write(text), SECRET_ENV)
    joined = "\n".join(found)
    assert TOKEN not in joined
    assert SID not in joined


def test_plaintext_secret_value_not_in_message(write: Write) -> None:
    path = write(VALID_TWILIO.replace("${TWILIO_AUTH_TOKEN}", TOKEN))
    joined = "\n".join(problems(path, {"TWILIO_ACCOUNT_SID": SID}))
    assert TOKEN not in joined
    assert SID not in joined


MERGED_UNSET = """\
version: 1
x-defaults: &defaults
  trunk_type: twilio
  trunk_config:
    address: x.pstn.twilio.com
    numbers: ["+15550100000"]
    username: ${TWILIO_ACCOUNT_SID}
    password: ${TWILIO_AUTH_TOKEN}
trunks:
  - <<: *defaults
    trunk_name: A
  - <<: *defaults
    trunk_name: B
"""


def test_unset_variable_in_merged_defaults_is_reported(write: Write) -> None:
    path = write(MERGED_UNSET)
    found = problems(path, {"TWILIO_ACCOUNT_SID": SID})
    assert any(
        line.startswith(f"{at(path, 8, 15)}environment variable TWILIO_AUTH_TOKEN is not set")
        for line in found
    )


def test_problem_in_merged_defaults_is_reported_once(write: Write) -> None:
    path = write(MERGED_UNSET)
    found = problems(path, {"TWILIO_ACCOUNT_SID": SID})
    assert len(found) == len(set(found)), found


def test_unset_variable_in_merged_defaults_has_no_follow_up_errors(write: Write) -> None:
    path = write(MERGED_UNSET)
    found = problems(path, {"TWILIO_ACCOUNT_SID": SID})
    assert not [line for line in found if "must not be empty" in line], found


def test_sip_port_from_a_variable_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "version: 1\ntrunks:\n  - trunk_name: E\n    trunk_type: exotel\n    trunk_config:\n"
        "      exotel_number: '+918044319240'\n      sip_port: ${SIP_PORT}\n"
    )
    desired = load_desired(path, {"SIP_PORT": "5070"})
    assert desired.trunks[0].config["sip_port"] == 5070
    with pytest.raises(ConfigError, match="must be a whole number from 1 to 65535"):
        load_desired(path, {"SIP_PORT": "70000"})
