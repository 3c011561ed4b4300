"""Saved plans (`plan --out FILE`, `apply FILE`): what a reviewer approved is
exactly what gets applied, or nothing is.

The file holds the changes to carry out, the state lineage and serial and the
API URL it was made against, a digest of the desired file, and salted
fingerprints of the secrets (never the secrets: they are read again from the
environment at apply time and must match). Its own digest catches edits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

from trunksync import fingerprints
from trunksync.config import Desired
from trunksync.errors import TrunksyncError
from trunksync.plan import Change, Plan, PlanOptions
from trunksync.render import plan_json
from trunksync.state import State, atomic_write, utc_now

FORMAT = "trunksync-plan"
FORMAT_VERSION = 1


class PlanFileError(TrunksyncError):
    """The saved plan cannot be applied as it is."""


class SavedPlan(NamedTuple):
    path: Path
    body: dict[str, Any]

    @property
    def desired_path(self) -> Path:
        return Path(self.body["desired"]["path"])

    @property
    def state_path(self) -> Path:
        return Path(self.body["state"]["path"])

    @property
    def max_share(self) -> float:
        return float(self.body["safety"]["max_deactivate_share"])

    @property
    def force(self) -> bool:
        return bool(self.body["safety"]["force"])

    @property
    def options(self) -> PlanOptions:
        raw = self.body["options"]
        return PlanOptions(frozenset(raw["targets"]), frozenset(raw["replace"]), raw["prune"])


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise PlanFileError(f"cannot read {path}: {error.strerror}") from None


def executed_changes(plan: Plan) -> list[dict[str, Any]]:
    """The comparable form of what apply would do (secrets by name only)."""
    return [
        {
            "name": change.name,
            "action": change.action,
            "trunk_type": change.trunk_type,
            "trunk_id": change.trunk_id,
            "fields": [[f.field, f.before, f.after, f.sensitive] for f in change.fields],
        }
        for change in plan.creates()
    ]


def save(
    path: Path,
    plan: Plan,
    *,
    desired: Desired,
    state: State | None,
    state_path: Path,
    api_url: str,
    options: PlanOptions,
    safety: dict[str, Any],
) -> None:
    """Write the plan; `state` is None when there is no state file yet."""
    salt = fingerprints.new_salt()
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": utc_now(),
        "api_url": api_url,
        "desired": {"path": desired.path, "sha256": file_digest(Path(desired.path))},
        "state": {
            "path": str(state_path),
            "lineage": state.lineage if state else None,
            "serial": state.serial if state else 0,
        },
        "options": options.to_json(),
        "safety": safety,
        "changes": executed_changes(plan),
        "secret_fingerprints": _secret_fingerprints(plan.creates(), salt),
        "plan": plan_json(plan),
    }
    document = {**body, "digest": _digest(body)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def load(path: Path) -> SavedPlan:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} not found") from None
    except (OSError, ValueError):
        raise PlanFileError(f"{path} is not a readable trunksync plan file") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlanFileError(f"{path} is not a trunksync plan file")
    if document.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format version {document.get('format_version')}; "
            f"this trunksync reads {FORMAT_VERSION}: make the plan again"
        )
    body = {key: value for key, value in document.items() if key != "digest"}
    if document.get("digest") != _digest(body):
        raise PlanFileError(f"{path} was edited after it was made: make the plan again")
    return SavedPlan(path, body)


def check_context(
    saved: SavedPlan, *, desired_path: Path, state: State | None, api_url: str
) -> None:
    """Refuse a plan made for another API, state or file, or a stale one.

    `state` is None when there is no state file (yet)."""
    if saved.body["api_url"] != api_url:
        raise PlanFileError(
            f"{saved.path} was made for the API at {saved.body['api_url']}, not {api_url}"
        )
    recorded = saved.body["state"]
    if (recorded["lineage"] is None) != (state is None):
        had = "no state" if recorded["lineage"] is None else "an existing state"
        raise PlanFileError(
            f"{saved.path} is stale: it was made with {had}, and that changed; make the plan again"
        )
    if state is None:
        return _check_desired(saved, desired_path)
    if recorded["lineage"] != state.lineage:
        raise PlanFileError(
            f"{saved.path} was made for another state (lineage {recorded['lineage']}, "
            f"this one is {state.lineage})"
        )
    if recorded["serial"] != state.serial:
        raise PlanFileError(
            f"{saved.path} is stale: the state changed since it was made (serial "
            f"{recorded['serial']} -> {state.serial}); make the plan again"
        )
    _check_desired(saved, desired_path)


def _check_desired(saved: SavedPlan, desired_path: Path) -> None:
    if saved.body["desired"]["sha256"] != file_digest(desired_path):
        raise PlanFileError(
            f"{desired_path} changed since {saved.path} was made; make the plan again"
        )


def check_changes(saved: SavedPlan, fresh: Plan) -> None:
    """The plan apply would carry out now must be the one that was saved."""
    now = executed_changes(fresh)
    if now == saved.body["changes"]:
        return
    before = {(c["name"], c["action"]) for c in saved.body["changes"]}
    after = {(c["name"], c["action"]) for c in now}
    differences = [f"{a} {n!r} (not in the plan)" for n, a in sorted(after - before)]
    differences += [f"{a} {n!r} (no longer needed)" for n, a in sorted(before - after)]
    detail = "; ".join(differences) or "a change's details differ"
    raise PlanFileError(
        f"the platform or the environment changed since {saved.path} was made: {detail}; "
        "make the plan again"
    )


def check_secrets(saved: SavedPlan, fresh: Plan) -> None:
    """Secrets from the environment must be the ones the plan was made with."""
    recorded: dict[str, dict[str, str]] = saved.body["secret_fingerprints"]
    for change in fresh.creates():
        if change.desired is None:
            continue
        for field, secret in change.desired.secrets.items():
            fingerprint = recorded.get(change.name, {}).get(field, "")
            if not fingerprints.matches(secret.get_secret_value(), fingerprint):
                raise PlanFileError(
                    f"the {field} of {change.name!r} in the environment differs from the one "
                    f"{saved.path} was made with; make the plan again"
                )


def _secret_fingerprints(changes: list[Change], salt: str) -> dict[str, dict[str, str]]:
    return {
        change.name: fingerprints.fingerprint_secrets(change.desired.secrets, salt)
        for change in changes
        if change.desired is not None and change.desired.secrets
    }


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
