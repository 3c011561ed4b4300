"""Shared test data: the desired-state files the CLI and end-to-end tests use."""

from __future__ import annotations

from pathlib import Path

from trunksync.state import TrunkRecord

SID = "ACsentinel0000000000000000000000001"
TOKEN = "SENTINEL-AUTH-TOKEN-do-not-print"
API_KEY = "test-key"
SECRET_ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
SENTINELS = (SID, TOKEN, API_KEY)

TWO_TRUNKS = """\
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
      exotel_number: +918044319240
"""


def exotel_trunks(count: int, prefix: str = "Trunk") -> str:
    """A file of `count` exotel trunks with distinct names and numbers."""
    entries = "".join(
        f"  - trunk_name: {prefix} {index:05d}\n"
        f"    trunk_type: exotel\n"
        f"    trunk_config:\n"
        f'      exotel_number: "+9180{index:08d}"\n'
        for index in range(count)
    )
    return "version: 1\ntrunks:\n" + entries


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def exotel_record(trunk_id: str, number: str = "+918000000000") -> TrunkRecord:
    """A state record of an exotel trunk, for tests that build a state by hand."""
    return TrunkRecord(
        trunk_id=trunk_id,
        trunk_type="exotel",
        config={"exotel_number": number},
        created_at="2026-01-01T00:00:00.000000Z",
    )
