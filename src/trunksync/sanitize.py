"""The one place that makes untrusted text safe to print.

Everything a server, a file or an environment says is data. Before any
renderer (text, JSON, markdown, step summary, error messages) shows it:
- `printable` escapes what a terminal or a log would interpret (C0, C1, DEL,
  bidi controls, line and paragraph separators), so one value is one line;
- `Scrubber` removes every secret in raw, JSON-escaped and URL-encoded form,
  and any 8-character piece of one (a message cut in the middle of a secret);
- `bounded` cuts to a length, after scrubbing, never before.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "(sensitive)"
# Bidi embeddings, overrides and isolates, and the marks that steer them.
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
FRAGMENT = 8  # any run this long of a secret counts as a leak
MAX_MESSAGE = 300
MAX_EXCERPT = 160
EXCERPT_HEAD = 4096  # characters of a body looked at for an excerpt


def is_unsafe_char(char: str) -> bool:
    """Control characters (C0, C1, DEL), bidi controls, line/paragraph separators, and
    lone surrogates (a JSON answer or a YAML escape can hold one; no stream can write it)."""
    return char in BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


# The unsafe characters but lone surrogates, as the inside of a regex class.
_UNSAFE_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029" + "".join(sorted(BIDI))
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}\ud800-\udfff]")
# The same rule for pydantic's pattern engine (the state file): text with none of
# those characters. Surrogates are left out: pydantic's JSON parser refuses a lone
# one before any pattern runs, and its engine cannot be handed one.
PLAIN_PATTERN = f"^[^{_UNSAFE_CLASS}]*$"


def has_unsafe_chars(text: str) -> bool:
    return _UNSAFE.search(text) is not None


def printable(text: str) -> str:
    """`text` with every unsafe character written as a visible escape (`\\x1b`, `\\u202e`)."""
    if _UNSAFE.search(text) is None:
        return text  # the common case, at the cost of one regex scan
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Scrubber:
    """Removes secrets, in every form they may be echoed in, from a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(dict.fromkeys(secret for secret in secrets if secret))

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def with_secrets(self, secrets: Iterable[str]) -> Scrubber:
        """This scrubber plus more secrets (itself when they add nothing)."""
        extra = [secret for secret in secrets if secret and secret not in self._secrets]
        return Scrubber([*self._secrets, *extra]) if extra else self

    # Built on first use: a create makes a scrubber with its trunk's secrets, and
    # only a failed one ever scrubs (the forms cost ~0.1 ms per secret).
    @functools.cached_property
    def _whole(self) -> list[str]:
        forms = {form for secret in self._secrets for form in _forms(secret) if form.strip()}
        return sorted(forms, key=len, reverse=True)

    @functools.cached_property
    def _pieces(self) -> frozenset[str]:
        return frozenset(
            form[start : start + FRAGMENT]
            for form in self._whole
            for start in range(len(form) - FRAGMENT + 1)
        )

    def scrub(self, text: str) -> str:
        for form in self._whole:
            if form in text:
                text = text.replace(form, REDACTED)
        if not self._pieces or len(text) < FRAGMENT:
            return text
        hidden = [False] * len(text)
        found = False
        for start in range(len(text) - FRAGMENT + 1):
            if text[start : start + FRAGMENT] in self._pieces:
                hidden[start : start + FRAGMENT] = [True] * FRAGMENT
                found = True
        if not found:
            return text
        out: list[str] = []
        for index, char in enumerate(text):
            if not hidden[index]:
                out.append(char)
            elif index == 0 or not hidden[index - 1]:
                out.append(REDACTED)
        return "".join(out)

    def clean(self, text: str, limit: int = MAX_MESSAGE) -> str:
        """Scrubbed, escaped, then bounded: what any message from outside becomes."""
        return bounded(printable(self.scrub(text)), limit)

    def excerpt(self, text: str, limit: int = MAX_EXCERPT) -> str:
        """One short line from a possibly huge, multi-line text (an HTML page, an echo).

        Only the head is looked at: cutting it before scrubbing can split a secret,
        but what is left of it on either side is still caught as a fragment when it
        is long enough to count as a leak. Runs of whitespace (newlines included)
        become one space so a page reads as a line; anything else unsafe is escaped.
        Scrubbed again after that: a secret with spaces, echoed wrapped over lines,
        is whole again only once the lines are joined.
        """
        head = self.scrub(text[:EXCERPT_HEAD])
        return bounded(printable(self.scrub(" ".join(head.split()))), limit)


def _forms(secret: str) -> set[str]:
    """Every way a server or proxy commonly echoes a value: raw, inside a JSON string
    (with or without `\\/`), URL-encoded, and HTML-escaped in an error page."""
    json_form = json.dumps(secret)[1:-1]
    return {
        secret,
        json_form,
        json_form.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        html.escape(secret),
        html.escape(secret, quote=False),
        " ".join(secret.split()),  # as an excerpt shows it: whitespace runs made one space
        _PERCENT.sub(lambda m: m.group().lower(), quote(secret, safe="")),  # %2f, not %2F
        # Go's encoder (and others) escape <, > and & in JSON strings.
        json_form.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    }


_PERCENT = re.compile("%[0-9A-F]{2}")
