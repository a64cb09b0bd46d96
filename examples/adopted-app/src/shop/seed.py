"""Creates the database and its first rows: the admin, one API client, the secret key.

`python -m shop.seed --db shop.db --state deployment_state_local.json` is how the old build script
called it. Passwords are hashed with bcrypt; the plaintext admin password and API token are written
to the state file only (keys it does not know are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import string

import bcrypt
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from . import tokens
from .models import ApiToken, Base, User, set_setting

_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def new_password(n: int = 20) -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(n))


def seed(db_path: str, target: str, state: dict) -> dict:
    """Creates the schema and seeds it; returns the state with the new credentials."""
    engine = create_engine(f"sqlite:///{db_path}", future=True)
    Base.metadata.create_all(engine)
    admin = state.get("admin") or {}
    password = admin.get("password") or new_password()
    alias, token = tokens.new_token()
    with Session(engine) as session:
        user = User(username="admin", email="admin@shop.example",
                    password_hash=bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode(),
                    is_admin=True)
        session.add(user)
        session.flush()
        session.add(ApiToken(alias=alias, token_sha256=tokens.digest(token), owner_id=user.id,
                             description="Primary API client"))
        set_setting(session, "SECRET_KEY", secrets.token_hex(32))
        set_setting(session, "seeded_at", dt.datetime.now(dt.timezone.utc).isoformat())
        set_setting(session, "target", target)
        session.commit()
    engine.dispose()
    state = dict(state)
    state["target"] = target
    state["admin"] = {**admin, "username": "admin", "password": password,
                      "password_changed_at": admin.get("password_changed_at")}
    state["clients"] = [{"client_id": "primary", "secret_key": token,
                         "description": "Primary API client", "is_primary": True}]
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--target", default=os.environ.get("DEPLOYMENT_TARGET", "local"))
    args = parser.parse_args(argv)
    try:
        with open(args.state, encoding="utf-8") as fh:
            state = json.load(fh)
    except FileNotFoundError:
        state = {}
    state = seed(args.db, args.target, state)
    tmp = args.state + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, args.state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
