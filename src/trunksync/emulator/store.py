"""The emulator's trunks: in memory, optionally mirrored to a JSON file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trunksync.errors import TrunksyncError

_ID_ALPHABET = string.ascii_letters + string.digits
_FILE_FORMAT = 1


def utc_timestamp() -> str:
    """Now in UTC, ISO 8601 without a zone and with microseconds, as the platform."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass
class TrunkRecord:
    trunk_id: str
    trunk_name: str
    trunk_type: str
    trunk_config: dict[str, Any]
    trunk_created_at: str
    active: bool = True

    def summary(self) -> dict[str, str]:
        """What GET /sip/list shows: never the config."""
        return {
            "trunk_id": self.trunk_id,
            "trunk_name": self.trunk_name,
            "trunk_type": self.trunk_type,
            "trunk_created_at": self.trunk_created_at,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> TrunkRecord:
        if not isinstance(data, dict):
            raise ValueError("a trunk record is not an object")
        try:
            record = cls(**data)
        except TypeError as error:
            raise ValueError(f"bad trunk record: {error}") from None
        text_fields = (record.trunk_id, record.trunk_name, record.trunk_type)
        if not all(isinstance(value, str) for value in text_fields):
            raise ValueError("bad trunk record: id, name and type must be strings")
        if not isinstance(record.trunk_config, dict) or not isinstance(record.active, bool):
            raise ValueError(f"bad trunk record {record.trunk_id}")
        return record


@dataclass
class Stats:
    create_calls: int = 0
    trunks_created: int = 0
    list_calls: int = 0
    deactivate_calls: int = 0
    faults_injected: int = 0


@dataclass
class TrunkStore:
    """All trunks ever created (deactivated ones are kept, as on the platform)."""

    data_file: Path | None = None
    _trunks: dict[str, TrunkRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_file is not None and self.data_file.exists():
            self._trunks = _load(self.data_file)

    def create(self, name: str, trunk_type: str, config: dict[str, Any]) -> TrunkRecord:
        trunk_id = _new_id()
        while trunk_id in self._trunks:
            trunk_id = _new_id()
        record = TrunkRecord(trunk_id, name, trunk_type, config, utc_timestamp())
        self._trunks[trunk_id] = record
        self._save()
        return record

    def get(self, trunk_id: str) -> TrunkRecord | None:
        return self._trunks.get(trunk_id)

    def all(self) -> list[TrunkRecord]:
        return list(self._trunks.values())

    def active(self) -> list[TrunkRecord]:
        return [record for record in self._trunks.values() if record.active]

    def deactivate(self, record: TrunkRecord) -> None:
        record.active = False
        self._save()

    def clear(self) -> None:
        self._trunks.clear()
        self._save()

    def _save(self) -> None:
        if self.data_file is not None:
            document = {"format": _FILE_FORMAT, "trunks": [t.to_json() for t in self.all()]}
            write_atomically(self.data_file, json.dumps(document, indent=2) + "\n")


def _new_id() -> str:
    return "ST_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def _load(path: Path) -> dict[str, TrunkRecord]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != _FILE_FORMAT:
            raise ValueError(f"not an emulator data file (format {_FILE_FORMAT})")
        items = document.get("trunks")
        if not isinstance(items, list):
            raise ValueError("'trunks' must be a list")
        records = [TrunkRecord.from_json(item) for item in items]
    except (OSError, ValueError) as error:
        # json.JSONDecodeError is a ValueError, so a corrupt file lands here too.
        raise TrunksyncError(f"emulator data file {path}: {error}") from None
    return {record.trunk_id: record for record in records}


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` so a reader (or a crash) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
