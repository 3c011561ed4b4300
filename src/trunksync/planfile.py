"""Saved plans (`plan --out FILE`, `apply FILE`): what a reviewer approved is
exactly what gets applied, or nothing is.

The file holds the changes to carry out, the options that produced them
(targets, replace, prune, force, the deactivation share), the backend's
identity (never a credential), the state lineage and serial, the API URL, the
digest of the desired-state bytes that were parsed, and salted fingerprints
of the secrets (never the secrets: apply reads them again and they must
match). The whole document is authenticated by an HMAC-SHA256 whose key is
derived from the API key: whoever can edit the artifact but does not hold the
key cannot forge or alter a plan (turn on prune, add a target...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, NamedTuple

from trunksync import fingerprints
from trunksync.config import Desired
from trunksync.errors import TrunksyncError
from trunksync.plan import Change, Plan, PlanOptions
from trunksync.render import plan_json
from trunksync.sanitize import printable
from trunksync.state import State, atomic_write, utc_now

FORMAT = "trunksync-plan"
FORMAT_VERSION = 2
KEY_CONTEXT = b"trunksync saved plan v2"
MAC_SCHEME = "hmac-sha256"
MAX_PLAN_BYTES = 64 * 1024 * 1024


class PlanFileError(TrunksyncError):
    """The saved plan cannot be applied as it is."""


class Safety(NamedTuple):
    """The deactivation guard a plan was made with."""

    max_deactivate_share: float
    force: bool


class SavedPlan(NamedTuple):
    path: Path
    body: dict[str, Any]

    @property
    def desired_path(self) -> str:
        return str(self.body["desired"]["path"])

    @property
    def state_spec(self) -> str:
        """Where the state was (a path, or a URL without its password)."""
        return str(self.body["state"]["spec"])

    @property
    def backend(self) -> dict[str, Any]:
        backend: dict[str, Any] = self.body["backend"]
        return backend

    @property
    def safety(self) -> Safety:
        raw = self.body["safety"]
        return Safety(float(raw["max_deactivate_share"]), bool(raw["force"]))

    @property
    def options(self) -> PlanOptions:
        raw = self.body["options"]
        return PlanOptions(frozenset(raw["targets"]), frozenset(raw["replace"]), raw["prune"])

    @property
    def secrets_unchecked(self) -> bool:
        return bool(self.body["desired"].get("secrets_unchecked", False))


def plan_key(api_key: str) -> bytes:
    """The key that authenticates saved plans: derived from, never equal to, the API key."""
    return hmac.new(api_key.encode(), KEY_CONTEXT, hashlib.sha256).digest()


def desired_digest(desired: Desired) -> str:
    """SHA-256 of the bytes that were parsed (so `-f -` can be checked too)."""
    return desired.digest


def secrets_unchecked(desired: Desired) -> bool:
    return desired.secrets_unchecked


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


def make_body(
    plan: Plan,
    *,
    desired: Desired,
    state: State | None,
    state_spec: str,
    backend: dict[str, Any],
    api_url: str,
    options: PlanOptions,
    safety: Safety,
) -> dict[str, Any]:
    """The plan document before it is signed; `state` is None when there is none yet."""
    salt = fingerprints.new_salt()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": utc_now(),
        "api_url": api_url,
        "backend": backend,
        "desired": {
            "path": desired.path,
            "sha256": desired_digest(desired),
            "secrets_unchecked": secrets_unchecked(desired),
        },
        "state": {
            "spec": state_spec,
            "lineage": state.lineage if state else None,
            "serial": state.serial if state else 0,
        },
        "options": options.to_json(),
        "safety": safety._asdict(),
        "changes": executed_changes(plan),
        "secret_fingerprints": _secret_fingerprints(plan.creates(), salt),
        "plan": plan_json(plan),
    }


def encode(body: dict[str, Any], api_key: str) -> bytes:
    document = {**body, "mac": sign(body, api_key)}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def save(path: Path, body: dict[str, Any], api_key: str) -> None:
    """Write the signed plan; any OS error is one line, and nothing is left half-written."""
    data = encode(body, api_key)
    try:
        if not path.parent.is_dir():
            raise PlanFileError(f"cannot save the plan to {path}: folder {path.parent} not found")
        atomic_write(path, data)
    except OSError as error:
        raise PlanFileError(f"cannot save the plan to {path}: {error.strerror or error}") from None


def load(path: Path, api_key: str) -> SavedPlan:
    """Read and verify a plan; refuse anything not signed with this API key's plan key."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} not found") from None
    except OSError as error:
        raise PlanFileError(f"cannot read the plan file {path}: {error.strerror}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanFileError(f"{path} is larger than any trunksync plan file")
    try:
        document = json.loads(raw)
    except ValueError:
        raise PlanFileError(f"{path} is not a readable trunksync plan file") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlanFileError(f"{path} is not a trunksync plan file")
    if document.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format version {printable(str(document.get('format_version')))}; "
            f"this trunksync reads {FORMAT_VERSION}: make the plan again"
        )
    body = {key: value for key, value in document.items() if key != "mac"}
    mac = document.get("mac")
    # Compared as bytes: compare_digest raises TypeError on a str that is not ASCII
    # (a forged "mac"), and a forged plan must be one "cannot be verified" line.
    if not isinstance(mac, str) or not hmac.compare_digest(
        mac.encode("utf-8", "surrogatepass"), sign(body, api_key).encode()
    ):
        raise PlanFileError(
            f"{path} cannot be verified: it was edited after it was made, or made with another "
            "API key; make the plan again"
        )
    try:
        saved = SavedPlan(path, body)
        saved.options, saved.safety, saved.backend, saved.state_spec  # noqa: B018
    except (KeyError, TypeError, ValueError):
        raise PlanFileError(f"{path} is not a complete trunksync plan file") from None
    if saved.secrets_unchecked:
        raise PlanFileError(
            f"{path} was made with --allow-missing-secrets: its secrets were never checked, "
            "so it cannot be applied; make the plan again with the secrets set"
        )
    return saved


def sign(body: dict[str, Any], api_key: str) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hmac.new(plan_key(api_key), canonical.encode(), hashlib.sha256).hexdigest()
    return f"{MAC_SCHEME}:{digest}"


def check_backend(saved: SavedPlan, backend: dict[str, Any]) -> None:
    """Refuse a plan made against another state backend."""
    if saved.backend != backend:
        raise PlanFileError(
            f"{saved.path} was made for the state {_describe(saved.backend)}, "
            f"not {_describe(backend)}"
        )


def check_context(saved: SavedPlan, *, desired: Desired, state: State | None, api_url: str) -> None:
    """Refuse a plan made for another API, state or file, or a stale one.

    `state` is None when there is no state (yet)."""
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
    if state is not None and recorded["lineage"] != state.lineage:
        raise PlanFileError(
            f"{saved.path} was made for another state (lineage {recorded['lineage']}, "
            f"this one is {state.lineage})"
        )
    if state is not None and recorded["serial"] != state.serial:
        raise PlanFileError(
            f"{saved.path} is stale: the state changed since it was made (serial "
            f"{recorded['serial']} -> {state.serial}); make the plan again"
        )
    if saved.body["desired"]["sha256"] != desired_digest(desired):
        raise PlanFileError(
            f"{printable(desired.path)} changed since {saved.path} was made; make the plan again"
        )


def check_changes(saved: SavedPlan, fresh: Plan) -> None:
    """The plan apply would carry out now must be the one that was saved."""
    now = executed_changes(fresh)
    if now == saved.body["changes"]:
        return
    before = {(c["name"], c["action"]) for c in saved.body["changes"]}
    after = {(c["name"], c["action"]) for c in now}
    differences = [f"{a} {printable(n)!r} (not in the plan)" for n, a in sorted(after - before)]
    differences += [f"{a} {printable(n)!r} (no longer needed)" for n, a in sorted(before - after)]
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
                    f"the {field} of {printable(change.name)!r} in the environment differs from "
                    f"the one {saved.path} was made with; make the plan again"
                )


def _describe(backend: dict[str, Any]) -> str:
    kind, location = backend.get("kind", "?"), backend.get("location", "?")
    workspace = backend.get("workspace", "default")
    suffix = "" if workspace == "default" else f" (workspace {workspace})"
    return printable(f"{kind} {location}{suffix}")


def _secret_fingerprints(changes: list[Change], salt: str) -> dict[str, dict[str, str]]:
    return {
        change.name: fingerprints.fingerprint_secrets(change.desired.secrets, salt)
        for change in changes
        if change.desired is not None and change.desired.secrets
    }
