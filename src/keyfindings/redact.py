"""Credentials out of URLs before they reach a message, a log or a file."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str, *, keep_user: bool = False) -> str:
    """``url`` without its password, and without its user too unless ``keep_user``.

    A model server's ``user@`` part may itself be a token, so it goes by default; a database
    user name is no secret and helps to read the message.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    shown = userinfo.split(":", 1)[0] + (":***" if ":" in userinfo else "") if keep_user else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))
