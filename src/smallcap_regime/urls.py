"""Database and server URLs in messages, logs and MLflow tags: never with their password, whatever the scheme."""

from __future__ import annotations

import re
from urllib.parse import unquote

# query parameters that carry a secret (libpq and SQLAlchemy accept ``?password=...``)
_SECRET_QUERY = re.compile(r"([?&;](?:password|passwd|pwd|secret|token)=)[^&;#]*", re.IGNORECASE)


def split_userinfo(rest: str) -> tuple[str, str] | None:
    """Split the part after ``scheme://`` into user info and ``@host/...``, at the LAST ``@``; None without user info.

    A password with an unencoded ``@`` (``u:p@ss@host``) defeats URL parsers, which cut at the first ``@`` and then
    show the tail of the password as part of the host. Cutting at the last ``@`` can only hide too much (an ``@`` in
    the path), never show a secret. A path right after ``://`` (``sqlite:///file@x.db``) has no user info.
    """
    at = rest.rfind("@")
    if at < 0 or rest.startswith("/"):
        return None
    return rest[:at], rest[at:]


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (user info and ``password=`` query parameters).

    Works for any ``scheme://`` URL, including ``sqlite+pysqlcipher://:key@/file.db``, ``postgresql+psycopg://``,
    passwords holding ``@`` or ``:`` unencoded, and ``http://user:token@host`` tracking servers. A plain path (no
    ``://``) is returned as it is.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    split = split_userinfo(rest)
    if split is not None:
        info, tail = split
        user, colon, _ = info.partition(":")
        rest = (user + ":***" if colon else user) + tail
    return scheme + "://" + _SECRET_QUERY.sub(r"\1***", rest)


def url_secrets(url: str) -> list[str]:
    """The secrets in ``url`` as written and percent-decoded (to scrub them from third-party error messages)."""
    scheme, sep, rest = url.partition("://")
    found = []
    split = split_userinfo(rest) if sep else None
    if split is not None and ":" in split[0]:
        found.append(split[0].partition(":")[2])
    found += [m.group(0).split("=", 1)[1] for m in _SECRET_QUERY.finditer(rest)]
    found = [s for s in found if s]
    return sorted({*found, *(unquote(s) for s in found)}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with every secret of ``url`` replaced by ``***``."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text
