"""sanitize: the one place that escapes and scrubs what any renderer or message prints."""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from trunksync.sanitize import (
    FRAGMENT,
    REDACTED,
    Scrubber,
    bounded,
    has_unsafe_chars,
    is_unsafe_char,
    printable,
)

SECRET = 'pa/ss"word<&>+ é-0123456789'
KEY = "sanitize-api-key-0001"


def pieces(secret: str) -> set[str]:
    return {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def test_printable_escapes_every_kind_of_unsafe_character_visibly() -> None:
    text = "a\nb\rc\x1b[31md\x07e\x7ff\x85g\u202eh\u2028i\u2066j\u200fk\tl"
    assert printable(text) == (
        "a\\x0ab\\x0dc\\x1b[31md\\x07e\\x7ff\\x85g\\u202eh\\u2028i\\u2066j\\u200fk\\x09l"
    )


def test_printable_leaves_ordinary_text_alone() -> None:
    text = "Twilio Production — 東京 +15550100000 ST_abc-1"
    assert printable(text) is text
    assert not has_unsafe_chars(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_property_printable_output_has_no_unsafe_character(text: str) -> None:
    shown = printable(text)
    assert not has_unsafe_chars(shown)
    assert not any(is_unsafe_char(char) for char in shown)
    assert (shown == text) == (not has_unsafe_chars(text))


def test_every_echoed_form_of_a_secret_is_replaced() -> None:
    scrubber = Scrubber([SECRET])
    forms = [
        SECRET,
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        quote(SECRET, safe=""),
        quote_plus(SECRET, safe=""),
        html.escape(SECRET),
        html.escape(SECRET, quote=False),
    ]
    for form in forms:
        assert scrubber.scrub(f"<{form}>") == f"<{REDACTED}>", form


def test_a_secret_cut_anywhere_leaves_no_piece_of_fragment_length() -> None:
    scrubber = Scrubber([KEY])
    for start in range(len(KEY)):
        for end in range(start + FRAGMENT, len(KEY) + 1):
            cleaned = scrubber.scrub(f"echo: {KEY[start:end]} end")
            assert not any(piece in cleaned for piece in pieces(KEY)), cleaned


def test_clean_scrubs_before_cutting_and_escapes() -> None:
    scrubber = Scrubber([KEY])
    text = "x" * 290 + KEY + "\n"
    cleaned = scrubber.clean(text, 300)
    assert len(cleaned) <= 300
    assert not any(piece in cleaned for piece in pieces(KEY))
    assert "\n" not in cleaned


def test_excerpt_is_one_short_line_of_the_head() -> None:
    scrubber = Scrubber([KEY])
    page = "<html>\n  <body>\r\n\t" + KEY + "\x1b[2J</body>\n" + "z" * 10_000
    excerpt = scrubber.excerpt(page, 60)
    assert excerpt.startswith(f"<html> <body> {REDACTED}\\x1b[2J</body> zzz")
    assert len(excerpt) == 60
    assert not has_unsafe_chars(excerpt)


def test_with_secrets_adds_and_reuses() -> None:
    base = Scrubber([KEY])
    assert base.with_secrets([KEY, ""]) is base
    more = base.with_secrets([SECRET])
    assert more.secrets == (KEY, SECRET)
    assert more.scrub(f"{KEY} {SECRET}") == f"{REDACTED} {REDACTED}"
    assert base.scrub(SECRET) == SECRET  # the original is unchanged


def test_bounded_marks_the_cut() -> None:
    assert bounded("abc", 3) == "abc"
    assert bounded("abcdef", 4) == "abc…"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12) | st.just(KEY) | st.just(SECRET), max_size=6))
def test_property_clean_never_shows_a_fragment_or_a_control(parts: list[str]) -> None:
    cleaned = Scrubber([KEY, SECRET]).clean("".join(parts), 120)
    assert not has_unsafe_chars(cleaned)
    assert not any(piece in cleaned for piece in pieces(KEY) | pieces(SECRET))


def test_an_excerpt_never_joins_a_wrapped_secret_back_together() -> None:
    # A passphrase echoed wrapped over lines has no 8-character piece in common
    # with the secret until the excerpt joins its lines: it is scrubbed after that.
    secret = "correct horse battery staple"
    page = "<pre>password=correct\nhorse\nbattery\nstaple</pre>"
    shown = Scrubber([secret]).excerpt(page)
    assert "horse battery" not in shown and "(sensitive)" in shown
    assert Scrubber(["   "]).excerpt("a b c") == "a b c"  # a blank secret hides nothing


def test_lowercase_percent_escapes_and_go_json_escapes_are_scrubbed() -> None:
    # Every 8-character piece of this secret holds a character such encoders escape.
    secret = "a/b<c>d&e/f<g>h&i/j<"
    scrubber = Scrubber([secret])
    lower = quote(secret, safe="").lower()
    go_json = json.dumps(secret)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")
    go_json = go_json.replace("&", "\\u0026")
    for echoed in (lower, go_json):
        assert scrubber.scrub(f"echo: {echoed}!") == "echo: (sensitive)!"
