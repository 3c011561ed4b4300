"""Salted fingerprints: how the state remembers secrets without holding them.

HMAC-SHA256 keyed by a random per-trunk salt: a changed secret gives a
different fingerprint, equal secrets in two trunks give unrelated ones, and the
state file alone gives an attacker nothing to look up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

SCHEME = "hmac-sha256"


def new_salt() -> str:
    return secrets.token_hex(16)


def fingerprint(value: str, salt: str) -> str:
    digest = hmac.new(bytes.fromhex(salt), value.encode(), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{salt}:{digest}"


def matches(value: str, recorded: str) -> bool:
    """Whether `value` is the secret behind the recorded fingerprint."""
    scheme, _, rest = recorded.partition(":")
    salt, _, _ = rest.partition(":")
    try:
        return scheme == SCHEME and hmac.compare_digest(fingerprint(value, salt), recorded)
    except (ValueError, TypeError):  # a hand-edited, non-hex or non-ASCII fingerprint
        return False


def fingerprint_secrets(values: Mapping[str, SecretStr], salt: str | None = None) -> dict[str, str]:
    salt = salt or new_salt()
    return {field: fingerprint(secret.get_secret_value(), salt) for field, secret in values.items()}


def fingerprint_request(body: Mapping[str, Any], salt: str | None = None) -> str:
    """One fingerprint of a whole create request, secrets included."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return fingerprint(canonical, salt or new_salt())
