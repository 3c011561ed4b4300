"""PostgreSQL state URLs as text: their secrets, and the URL without them.

Done by hand, not with urllib's urlsplit/urlunsplit: libpq accepts URLs that
urllib cannot rebuild or read a port from (several hosts `h1:5432,h2:5432`,
no host at all `postgresql:///db`, `postgresql://?service=x`), and an IPv6 host
`[::1]` must come out exactly as it went in. No psycopg here: `api` uses it to
record a spec safely even where the PostgreSQL extra is not installed.
"""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple

# libpq parameters whose value is a secret: never recorded, never printed.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


class UrlParts(NamedTuple):
    """`scheme://netloc rest?query`: rest is the path (and anything before the query)."""

    scheme: str
    netloc: str
    rest: str
    query: str


def split(url: str) -> UrlParts:
    scheme, _, after = url.partition("://")
    before_query, _, query = after.partition("?")
    cut = len(before_query)
    for mark in ("/", "#"):
        found = before_query.find(mark)
        if found != -1:
            cut = min(cut, found)
    return UrlParts(scheme, before_query[:cut], before_query[cut:], query)


def join(parts: UrlParts) -> str:
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.rest}{query}"


def query_items(query: str) -> list[tuple[str, str, str]]:
    """(key, value, raw item) of each `key=value` item, decoded as libpq does
    (%XX only: a '+' stays a '+')."""
    items = []
    for raw in query.split("&"):
        if raw:
            key, _, value = raw.partition("=")
            items.append((urllib.parse.unquote(key), urllib.parse.unquote(value), raw))
    return items


def _userinfo_and_hosts(netloc: str) -> tuple[str | None, str]:
    # The user info ends at the LAST '@' (a password may hold an unescaped '@').
    userinfo, at, hosts = netloc.rpartition("@")
    return (userinfo, hosts) if at else (None, netloc)


def secrets(url: str) -> list[str]:
    """The password of the user info and of every secret query parameter, decoded."""
    parts = split(url)
    found = []
    userinfo, _ = _userinfo_and_hosts(parts.netloc)
    if userinfo is not None and ":" in userinfo:
        found.append(urllib.parse.unquote(userinfo.partition(":")[2]))
    found += [value for key, value, _ in query_items(parts.query) if key in SECRET_PARAMETERS]
    return [secret for secret in found if secret]


def without_password(url: str) -> str:
    """The URL without its user info's password nor any secret query parameter; the
    rest (user, hosts, ports, path, other parameters) exactly as given."""
    parts = split(url)
    userinfo, hosts = _userinfo_and_hosts(parts.netloc)
    netloc = parts.netloc
    if userinfo is not None:
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{hosts}" if user else hosts
    query = "&".join(
        raw for key, _, raw in query_items(parts.query) if key not in SECRET_PARAMETERS
    )
    return join(UrlParts(parts.scheme, netloc, parts.rest, query))
