"""API tokens: `naf_<16 alnum alias>_<64 alnum secret>`. Only a sha256 of a token is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

TOKEN_RE = re.compile(r"^naf_(?P<alias>[A-Za-z0-9]{16})_(?P<secret>[A-Za-z0-9]{64})$")
_ALPHABET = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_token() -> tuple[str, str]:
    """A fresh (alias, token) pair."""
    alias = _random(16)
    return alias, f"naf_{alias}_{_random(64)}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse(token: str) -> str | None:
    """The alias of a well-formed token, else None."""
    m = TOKEN_RE.match(token.strip())
    return m.group("alias") if m else None
