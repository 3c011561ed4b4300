"""The emulator as an independent oracle for trunksync's loader (issue 11, item 2).

The emulator's field rules are written from the platform's documentation
(API.md), not imported from trunksync's loader. This runs one corpus of trunk
definitions through both:

- the emulator, over HTTP: `POST /sip/create-outbound-trunk` with the body as is
  (200 = accepted; 400 or 422 = refused);
- trunksync's loader (`trunksync.config.load_desired`), with the same trunk
  written into a desired-state file; when it accepts, the body trunksync would
  send (`DesiredTrunk.request_body()`) is posted to the emulator too.

Each case gets one verdict (see `Verdict`). Every disagreement is listed in the
failure message. Known disagreements are listed below with why: `KNOWN` ones
are by design and must still hold (a stale entry fails too); `IN_FLUX` ones
depend on loader rules that are being changed (whole-value ASCII patterns,
control characters refused in names): either agreement or the stated kind is
accepted until they are settled, then they move to `KNOWN` or go away.
"""

from __future__ import annotations

import ast
import enum
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import yaml

from emulator_fixtures import EmulatorHandle
from trunksync.config import load_desired
from trunksync.errors import TrunksyncError

CREATE = "/sip/create-outbound-trunk"
EMULATOR_PACKAGE = Path(__file__).resolve().parent.parent / "src" / "trunksync" / "emulator"
TWILIO: dict[str, Any] = {
    "address": "example.pstn.twilio.com",
    "numbers": ["+15550100000"],
    "username": "AC0123456789abcdef0123456789abcdef",
    "password": "auth-token-0123456789",
}
EXOTEL: dict[str, Any] = {"exotel_number": "+918044319240"}


def twilio(name: str = "Twilio Production", **config: Any) -> dict[str, Any]:
    return {"trunk_name": name, "trunk_type": "twilio", "trunk_config": {**TWILIO, **config}}


def exotel(name: str = "Exotel India", **config: Any) -> dict[str, Any]:
    return {"trunk_name": name, "trunk_type": "exotel", "trunk_config": {**EXOTEL, **config}}


def without(body: dict[str, Any], *fields: str) -> dict[str, Any]:
    config = {k: v for k, v in body["trunk_config"].items() if k not in fields}
    return {**body, "trunk_config": config}


# id -> the JSON body of one create call. Values are JSON types, written into
# YAML by yaml.safe_dump, so each side sees the same value with the same type.
CORPUS: dict[str, Any] = {
    # Valid on both sides.
    "twilio-documented-example": twilio(),
    "exotel-documented-example": exotel(),
    "exotel-all-optional-fields": exotel(
        sip_host="sip.exotel.in", sip_port=5070, sip_domain="exotel.in"
    ),
    "exotel-optional-null": exotel(sip_host=None, sip_port=None, sip_domain=None),
    "twilio-several-numbers": twilio(numbers=["+15550100000", "+442071838750", "+918044319240"]),
    "twilio-repeated-number": twilio(numbers=["+15550100000", "+15550100000"]),
    "number-shortest": exotel(exotel_number="+12"),
    "number-longest": exotel(exotel_number="+123456789012345"),
    "port-lowest": exotel(sip_port=1),
    "port-highest": exotel(sip_port=65535),
    "name-one-char": twilio(name="x"),
    "name-100-chars": twilio(name="n" * 100),
    "name-100-non-bmp-chars": twilio(name="\U0001f4de" * 100),
    "name-only-spaces": twilio(name="   "),
    "name-non-ascii": exotel(name="Exotel Bengaluru \u0ca8\u0cae\u0cb8\u0ccd\u0c95\u0cbe\u0cb0"),
    # Invalid on both sides.
    "name-empty": twilio(name=""),
    "name-101-chars": twilio(name="n" * 101),
    "name-null": {**twilio(), "trunk_name": None},
    "name-list": {**twilio(), "trunk_name": ["a"]},
    "type-unknown": {**twilio(), "trunk_type": "vonage"},
    "type-capitalised": {**twilio(), "trunk_type": "Twilio"},
    "type-missing": {k: v for k, v in twilio().items() if k != "trunk_type"},
    "config-missing": {k: v for k, v in twilio().items() if k != "trunk_config"},
    "config-not-an-object": {**twilio(), "trunk_config": ["+15550100000"]},
    "config-of-the-other-type": {**twilio(), "trunk_config": dict(EXOTEL)},
    "config-unknown-field": twilio(region="us1"),
    "twilio-missing-address": without(twilio(), "address"),
    "twilio-missing-numbers": without(twilio(), "numbers"),
    "twilio-missing-username": without(twilio(), "username"),
    "twilio-missing-password": without(twilio(), "password"),
    "exotel-missing-number": without(exotel(), "exotel_number"),
    "address-empty": twilio(address=""),
    "address-list": twilio(address=["example.pstn.twilio.com"]),
    "numbers-empty": twilio(numbers=[]),
    "numbers-a-string": twilio(numbers="+15550100000"),
    "number-without-plus": twilio(numbers=["15550100000"]),
    "number-leading-zero": twilio(numbers=["+05550100000"]),
    "number-too-long": twilio(numbers=["+1234567890123456"]),
    "number-too-short": twilio(numbers=["+1"]),
    "number-with-spaces": twilio(numbers=["+91 80 4431 9240"]),
    "number-with-dashes": twilio(numbers=["+1-555-010-0000"]),
    "number-as-json-integer": exotel(exotel_number=918044319240),
    "number-null": exotel(exotel_number=None),
    "username-empty": twilio(username=""),
    "password-empty": twilio(password=""),
    "port-zero": exotel(sip_port=0),
    "port-too-high": exotel(sip_port=65536),
    "port-negative": exotel(sip_port=-1),
    "port-float": exotel(sip_port=5070.5),
    "port-boolean": exotel(sip_port=True),
    "sip-host-empty": exotel(sip_host=""),
    # Where the two differ by design or for now: see KNOWN and IN_FLUX.
    "body-extra-field": {**twilio(), "description": "not a documented field"},
    "name-json-integer": {**twilio(), "trunk_name": 12345},
    "port-as-digit-string": exotel(sip_port="5070"),
    "address-sip-uri": twilio(address="sip:example.pstn.twilio.com"),
    "address-with-port": twilio(address="example.pstn.twilio.com:5060"),
    "address-with-user": twilio(address="user@example.pstn.twilio.com"),
    "address-non-ascii": twilio(address="ex\u00e4mple.pstn.twilio.com"),
    "sip-host-with-scheme": exotel(sip_host="https://sip.exotel.in"),
    "sip-domain-with-space": exotel(sip_domain="exotel .in"),
    "number-trailing-newline": twilio(numbers=["+15550100000\n"]),
    "exotel-number-too-short": exotel(exotel_number="+1"),
    "exotel-number-with-spaces": exotel(exotel_number="+91 80 4431 9240"),
    "exotel-number-without-plus": exotel(exotel_number="918044319240"),
    "address-json-integer": twilio(address=5060),
    "password-json-integer": twilio(password=12345),
    "number-fullwidth-digits": twilio(numbers=["+1\uff15\uff15\uff15\uff10\uff11\uff10\uff10"]),
    "number-arabic-indic-digits": twilio(numbers=["+91\u0668\u0660\u0664\u0664\u0663\u0661"]),
    "number-first-digit-non-ascii": twilio(numbers=["+\uff11\uff15\uff15\uff15\uff10\uff11"]),
    "address-trailing-newline": twilio(address="example.pstn.twilio.com\n"),
    "name-control-character": twilio(name="Prod\x07uction"),
    "name-newline": twilio(name="Prod\nuction"),
    "name-escape-sequence": twilio(name="Prod \x1b[31mred\x1b[0m"),
    "name-bidi-override": twilio(name="Prod \u202eevil"),
}


class Verdict(enum.Enum):
    AGREE = "both sides give the same verdict"
    # The loader refuses what the platform would accept.
    STRICTER = "trunksync refuses, the emulator accepts"
    # The loader accepts, and the body it would send is refused: apply would fail.
    SENDS_REFUSED = "trunksync accepts, the emulator refuses the body trunksync would send"
    # The loader accepts a value the emulator refuses as written, and sends it in
    # a form that the emulator accepts (a documented conversion).
    CONVERTS = "trunksync converts a value the emulator refuses as written"


class Known(NamedTuple):
    verdict: Verdict
    why: str


NAMES_REFUSED = (
    "trunk_name refuses control characters and bidi controls (they would forge lines "
    "or reorder text wherever a name is shown); API.md only says 1 to 100 characters"
)

# By design: each must still disagree this way.
KNOWN: dict[str, Known] = {
    "body-extra-field": Known(
        Verdict.STRICTER,
        "the platform (like FastAPI) ignores unknown body fields; the file refuses them "
        "so a misspelt field is an error, not silently dropped",
    ),
    "name-json-integer": Known(
        Verdict.CONVERTS,
        "an unquoted `trunk_name: 12345` is a number to YAML 1.1; the loader keeps the "
        'text the user wrote and sends the string "12345"',
    ),
    "address-json-integer": Known(
        Verdict.CONVERTS, "as name-json-integer: a YAML number in a text field is kept as text"
    ),
    "password-json-integer": Known(
        Verdict.CONVERTS, "as name-json-integer: a secret is text whatever it looks like"
    ),
    "exotel-number-too-short": Known(
        Verdict.STRICTER,
        "API.md calls exotel_number only 'the Exotel virtual number' (E.164 is documented "
        "for twilio numbers only), so the emulator takes any non-empty string; trunksync "
        "requires E.164 for every number, as the documented example is",
    ),
    "exotel-number-with-spaces": Known(Verdict.STRICTER, "as exotel-number-too-short"),
    "exotel-number-without-plus": Known(Verdict.STRICTER, "as exotel-number-too-short"),
    "port-as-digit-string": Known(
        Verdict.CONVERTS,
        "the loader reads digits in quotes (or from ${VAR}) as the port number 5070; "
        "the platform documents sip_port as a number",
    ),
    "address-sip-uri": Known(
        Verdict.STRICTER,
        "API.md documents a termination domain; trunksync refuses sip:, user@, :port and "
        "schemes that would make a trunk that cannot place calls",
    ),
    "address-with-port": Known(Verdict.STRICTER, "as address-sip-uri: a bare host only"),
    "address-with-user": Known(Verdict.STRICTER, "as address-sip-uri: a bare host only"),
    "address-non-ascii": Known(
        Verdict.STRICTER, "a bare host is ASCII letters, digits, dots and dashes (IDNA is not)"
    ),
    "sip-host-with-scheme": Known(Verdict.STRICTER, "as address-sip-uri: a bare host only"),
    "sip-domain-with-space": Known(Verdict.STRICTER, "a realm is a bare host name"),
    "address-trailing-newline": Known(
        Verdict.STRICTER,
        "patterns match whole values in ASCII, so the loader refuses the newline; the "
        "emulator takes any non-empty string there, as API.md says",
    ),
    "name-control-character": Known(Verdict.STRICTER, NAMES_REFUSED),
    "name-newline": Known(Verdict.STRICTER, NAMES_REFUSED),
    "name-escape-sequence": Known(Verdict.STRICTER, NAMES_REFUSED),
    "name-bidi-override": Known(Verdict.STRICTER, NAMES_REFUSED),
}

# Loader rules settled this round; kept as a table so a test still reads them.
IN_FLUX: dict[str, Known] = {}


class Outcome(NamedTuple):
    case: str
    verdict: Verdict
    emulator: str  # what the emulator said to the body as written
    loader: str  # what the loader said, and the emulator to what trunksync would send


def emulator_status(client: httpx.Client, body: Any) -> int:
    status = client.post(CREATE, json=body).status_code
    assert status in (200, 400, 422), f"unexpected status {status}"
    return status


def loader_body(folder: Path, case: str, body: Any) -> tuple[dict[str, Any] | None, str]:
    """The body trunksync would send for this trunk, or None and the loader's first problem."""
    path = folder / f"{case}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "trunks": [body]}, allow_unicode=False))
    try:
        desired = load_desired(path, {}, allow_plaintext_secrets=True)
    except TrunksyncError as error:
        return None, str(error).splitlines()[0]
    (trunk,) = desired.trunks
    return trunk.request_body(), "accepted"


def judge(client: httpx.Client, folder: Path, case: str, body: Any) -> Outcome:
    raw_status = emulator_status(client, body)
    raw_ok = raw_status == 200
    sent, said = loader_body(folder, case, body)
    if sent is None:
        verdict = Verdict.STRICTER if raw_ok else Verdict.AGREE
        return Outcome(case, verdict, str(raw_status), said)
    sent_status = emulator_status(client, sent)
    if sent_status != 200:
        verdict = Verdict.SENDS_REFUSED
    else:
        verdict = Verdict.AGREE if raw_ok else Verdict.CONVERTS
    return Outcome(case, verdict, str(raw_status), f"accepted; sent body -> {sent_status}")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    from trunksync.emulator import EmulatorConfig, running_emulator

    folder = tmp_path_factory.mktemp("oracle")
    config = EmulatorConfig(api_key="oracle-key")
    with running_emulator(config) as emulator:
        headers = {"Authorization": "Bearer oracle-key"}
        with httpx.Client(base_url=emulator.url, headers=headers) as client:
            return {case: judge(client, folder, case, body) for case, body in CORPUS.items()}


def listing(rows: list[Outcome]) -> str:
    return "\n".join(
        f"  {row.case}: {row.verdict.name} (emulator {row.emulator}; loader {row.loader})"
        for row in rows
    )


def test_no_disagreement_beyond_the_listed_ones(outcomes: dict[str, Outcome]) -> None:
    unexplained = [
        outcome
        for case, outcome in outcomes.items()
        if outcome.verdict is not Verdict.AGREE
        and outcome.verdict is not KNOWN.get(case, IN_FLUX.get(case, Known(Verdict.AGREE, "")))[0]
    ]
    assert not unexplained, "disagreements nobody explained:\n" + listing(unexplained)


def test_every_known_disagreement_still_holds(outcomes: dict[str, Outcome]) -> None:
    stale = [outcomes[case] for case, known in KNOWN.items() if outcomes[case].verdict != known[0]]
    assert not stale, "KNOWN entries that no longer hold (update the list):\n" + listing(stale)


def test_in_flux_entries_either_agree_or_disagree_as_stated(
    outcomes: dict[str, Outcome],
) -> None:
    unexpected = [
        outcomes[case]
        for case, known in IN_FLUX.items()
        if outcomes[case].verdict not in (Verdict.AGREE, known.verdict)
    ]
    assert not unexpected, "IN_FLUX entries that changed another way:\n" + listing(unexpected)


def test_the_lists_name_only_corpus_cases_and_each_case_once() -> None:
    assert set(KNOWN) <= set(CORPUS)
    assert set(IN_FLUX) <= set(CORPUS)
    assert not set(KNOWN) & set(IN_FLUX)
    assert all(known.verdict is not Verdict.AGREE for known in [*KNOWN.values(), *IN_FLUX.values()])


def test_the_corpus_exercises_both_verdicts_on_both_sides(outcomes: dict[str, Outcome]) -> None:
    """A corpus where one side accepts everything would make agreement meaningless."""
    emulator_verdicts = {outcome.emulator for outcome in outcomes.values()}
    loader_verdicts = {outcome.loader.startswith("accepted") for outcome in outcomes.values()}
    assert "200" in emulator_verdicts and emulator_verdicts & {"400", "422"}
    assert loader_verdicts == {True, False}


def test_the_emulator_field_rules_do_not_come_from_trunksync() -> None:
    """The oracle is independent only while the emulator imports none of the loader's code."""
    allowed = ("trunksync.emulator", "trunksync.errors", "trunksync.loopback")
    borrowed: list[str] = []
    for source in sorted(EMULATOR_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            borrowed += [
                f"{source.name}: {name}"
                for name in names
                if name.startswith("trunksync") and not name.startswith(allowed)
            ]
    assert borrowed == []


def test_a_disagreement_is_reported(tmp_path: Path, emulator: EmulatorHandle) -> None:
    """The judge really tells the sides apart (a body only the emulator accepts)."""
    with emulator.client() as client:
        outcome = judge(client, tmp_path, "probe", CORPUS["address-sip-uri"])
        agreed = judge(client, tmp_path, "probe-ok", CORPUS["exotel-documented-example"])
    assert outcome.verdict is Verdict.STRICTER
    assert agreed.verdict is Verdict.AGREE
