"""Property-based tests: any YAML document and any state file gives either a valid
plan or one clear error, never a traceback, and never a changed state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SECRET_ENV, TWO_TRUNKS
from trunksync.cli import cli
from trunksync.config import load_desired
from trunksync.errors import ConfigError, StateError
from trunksync.plan import compute_plan
from trunksync.state import State, StateStore

FIELDS = [
    "version", "trunks", "trunk_name", "trunk_type", "trunk_config", "address", "numbers",
    "username", "password", "exotel_number", "sip_host", "sip_port", "sip_domain", "twilio",
    "exotel", "x-defaults",
]  # fmt: skip
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**16), 10**16),
    st.floats(allow_nan=False),
    st.sampled_from(["+15550100000", "+918044319240", "0123", "${TWILIO_AUTH_TOKEN}", "${NOPE}"]),
    st.sampled_from(["twilio", "exotel", "example.pstn.twilio.com", "sip:x@y;z", "", "1"]),
    st.text(max_size=20),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)


def near_valid() -> st.SearchStrategy[str]:
    """The valid example with one line dropped, duplicated, or a span replaced."""
    lines = TWO_TRUNKS.splitlines(keepends=True)

    def mutate(choice: tuple[int, int, str]) -> str:
        index, mode, text = choice
        index %= len(lines)
        copy = list(lines)
        if mode == 0:
            del copy[index]
        elif mode == 1:
            copy.insert(index, copy[index])
        else:
            copy[index] = copy[index][: len(text)] + text + "\n"
        return "".join(copy)

    return st.tuples(st.integers(0, 100), st.integers(0, 2), st.text(max_size=12)).map(mutate)


def check_load(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        desired = load_desired(path, SECRET_ENV)
    except ConfigError as error:
        assert error.problems and all(str(line).startswith(str(path)) for line in error.problems)
        return
    compute_plan(desired, State.new())


@FUZZ
@given(documents)
def test_any_yaml_structure_loads_or_fails_clearly(tmp_path: Path, document: Any) -> None:
    check_load(tmp_path / "trunks.yaml", yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_or_fails_clearly(tmp_path: Path, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        return  # a file cannot hold lone surrogates
    check_load(tmp_path / "trunks.yaml", text)


@FUZZ
@given(near_valid())
def test_near_valid_files_load_or_fail_clearly(tmp_path: Path, text: str) -> None:
    check_load(tmp_path / "trunks.yaml", text)


def valid_state_bytes() -> bytes:
    state = State.new()
    desired = load_desired(_write(Path("valid.yaml"), TWO_TRUNKS), SECRET_ENV)
    from trunksync.apply import record_created

    for index, trunk in enumerate(desired.trunks):
        record_created(state, trunk, f"ST_{index:012d}")
    return state.to_json()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@st.composite
def state_files(draw: st.DrawFn) -> bytes:
    base = valid_state_bytes()
    mode = draw(st.integers(0, 3))
    if mode == 0:
        return base[: draw(st.integers(0, len(base)))]  # truncated
    if mode == 1:
        position = draw(st.integers(0, len(base) - 1))
        return base[:position] + bytes([draw(st.integers(0, 255))]) + base[position + 1 :]
    if mode == 2:
        data = json.loads(base)
        key = draw(st.sampled_from(["format_version", "lineage", "serial", "trunks", "intents"]))
        data[key] = draw(documents)
        return json.dumps(data).encode()
    return draw(st.binary(max_size=200))


@FUZZ
@given(state_files())
def test_any_state_file_loads_or_is_refused_and_never_changed(isolated: Path, raw: bytes) -> None:
    path = isolated / "state" / "trunks.json"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    try:
        state = StateStore(path).load()
    except StateError as error:
        assert str(path) in str(error)
    else:
        desired = load_desired(_write(isolated / "t.yaml", TWO_TRUNKS), SECRET_ENV)
        compute_plan(desired, state)
    assert path.read_bytes() == raw


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(near_valid(), state_files())
def test_cli_plan_never_shows_a_traceback(isolated: Path, text: str, raw: bytes) -> None:
    (isolated / "trunks.yaml").write_text(text)
    state = isolated / "state" / "trunks.json"
    state.parent.mkdir(exist_ok=True)
    state.write_bytes(raw)
    result = CliRunner().invoke(cli, ["plan", "--detailed-exitcode"], env=SECRET_ENV)
    assert result.exit_code in (0, 1, 2), result.output
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.output
    assert state.read_bytes() == raw
