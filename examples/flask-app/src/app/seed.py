"""Seed a database with the app's own code: `python3 -m app.seed`.

The alternative to db/*.sql for projects that seed in Python. The harness runs it with:
  HARNESS_DB_PATH     the database to create (must not exist yet, or be empty)
  HARNESS_TARGET      local | webhosting (default: DEPLOYMENT_TARGET, else local)
  HARNESS_STATE_FILE  deployment_state_<target>.json; secrets in it are reused, missing
                      ones are generated and written back (unknown keys kept, mode 0600)
  HARNESS_SEED_DEMO   1/true to add the demo accounts
Exit codes: 0 done, 2 bad environment, 3 the database or state file could not be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import string
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .security import hash_password

ALNUM = string.ascii_letters + string.digits
PRIMARY_CLIENT = {"client_id": "primary", "description": "Primary API client", "is_primary": True}

# Same schema as db/schema.sql; tests/test_seed.py checks that both give identical tables.
SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    must_change_password INTEGER NOT NULL DEFAULT 1 CHECK (must_change_password IN (0, 1)),
    password_changed_at TEXT
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
);
CREATE TABLE api_clients (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    alias TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL CHECK (length(token_sha256) = 64),
    description TEXT NOT NULL DEFAULT '',
    is_primary INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1))
);
CREATE TABLE email_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    host TEXT,
    port INTEGER NOT NULL DEFAULT 25,
    username TEXT,
    password TEXT,
    use_tls INTEGER NOT NULL DEFAULT 1 CHECK (use_tls IN (0, 1)),
    from_address TEXT NOT NULL,
    notify_to TEXT NOT NULL
);
CREATE TABLE dns_updates (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    domain TEXT NOT NULL,
    hostname TEXT NOT NULL,
    type TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    statuscode INTEGER,
    logins INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dns_updates_created_at ON dns_updates (created_at);
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'error')),
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE api_writes (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    client TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE
);
"""

EMAIL = {
    "local": ("mailpit", 1025, 0, "noreply@app.localtest.me", "admin@app.localtest.me"),
    "webhosting": ("localhost", 587, 1, "noreply@app.example.org", "admin@app.example.org"),
}


class SeedError(Exception):
    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def new_token() -> str:
    return f"naf_{random_alnum(16)}_{random_alnum(64)}"


def read_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SeedError(3, f"{path}: cannot read the state file: {exc}") from exc
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise SeedError(2, f"{path}: not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(state, dict):
        raise SeedError(2, f"{path}: the state file must hold a JSON object")
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def resolve_secrets(state: dict[str, Any], target: str) -> dict[str, Any]:
    """Fill in whatever secret the state file lacks; keep every key it already has."""
    admin = state.get("admin") if isinstance(state.get("admin"), dict) else {}
    if not isinstance(admin.get("password"), str) or not admin["password"]:
        admin["password"] = random_alnum(24)
        admin["password_changed_at"] = None
    admin["username"] = "admin"
    admin.setdefault("password_changed_at", None)
    state["admin"] = admin

    clients = state.get("clients") if isinstance(state.get("clients"), list) else []
    primary = next((c for c in clients if isinstance(c, dict)
                    and c.get("client_id") == PRIMARY_CLIENT["client_id"]), None)
    if primary is None:
        primary = dict(PRIMARY_CLIENT)
        clients.append(primary)
    token = primary.get("secret_key")
    if not isinstance(token, str) or not token.startswith("naf_") or len(token.split("_")) != 3:
        primary["secret_key"] = new_token()
    primary.setdefault("description", PRIMARY_CLIENT["description"])
    primary.setdefault("is_primary", True)
    state["clients"] = clients

    stored = state.get("secrets") if isinstance(state.get("secrets"), dict) else {}
    if not isinstance(stored.get("secret_key"), str) or not stored["secret_key"]:
        stored["secret_key"] = secrets.token_hex(32)
    state["secrets"] = stored
    state["target"] = target
    state["last_updated_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    state["updated_by"] = "app.seed"
    return state


def seed(conn: sqlite3.Connection, state: dict[str, Any], target: str, demo: bool) -> None:
    conn.executescript(SCHEMA)
    admin = state["admin"]
    conn.execute(
        "INSERT INTO users (username, password_hash, is_admin, must_change_password,"
        " password_changed_at) VALUES ('admin', ?, 1, 1, NULL)",
        (hash_password(admin["password"]),),
    )
    conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", [
        ("secret_key", json.dumps(state["secrets"]["secret_key"])),
        ("deployment_target", json.dumps(target)),
        ("site_name", json.dumps("Harness example app")),
    ])
    for client in state["clients"]:
        token = client["secret_key"]
        conn.execute(
            "INSERT INTO api_clients (client_id, alias, token_sha256, description, is_primary)"
            " VALUES (?, ?, ?, ?, ?)",
            (client["client_id"], token.split("_")[1], hashlib.sha256(token.encode()).hexdigest(),
             client.get("description", ""), 1 if client.get("is_primary") else 0),
        )
    host, port, use_tls, sender, notify_to = EMAIL[target]
    conn.execute(
        "INSERT INTO email_config (id, host, port, username, password, use_tls, from_address,"
        " notify_to) VALUES (1, ?, ?, NULL, NULL, ?, ?, ?)",
        (host, port, use_tls, sender, notify_to),
    )
    if demo:
        conn.executemany(
            "INSERT INTO users (username, password_hash, is_admin, must_change_password,"
            " password_changed_at) VALUES (?, '!', 0, 1, NULL)",
            [("demo-editor",), ("demo-viewer",)],
        )
    conn.commit()


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        db_path = env.get("HARNESS_DB_PATH", "").strip()
        state_path = env.get("HARNESS_STATE_FILE", "").strip()
        target = (env.get("HARNESS_TARGET") or env.get("DEPLOYMENT_TARGET") or "local").strip()
        demo = env.get("HARNESS_SEED_DEMO", "").strip().lower() in {"1", "true", "yes"}
        if not db_path:
            raise SeedError(2, "HARNESS_DB_PATH is not set; it names the database to create")
        if not state_path:
            raise SeedError(2, "HARNESS_STATE_FILE is not set; the generated admin password "
                               "must be recorded somewhere")
        if target not in EMAIL:
            raise SeedError(2, f"HARNESS_TARGET={target!r}: expected local or webhosting")
        db_file = Path(db_path)
        if db_file.exists() and db_file.stat().st_size > 0:
            raise SeedError(2, f"{db_file}: exists already; the seed only creates new databases")
        state_file = Path(state_path)
        state = resolve_secrets(read_state(state_file), target)
        try:
            conn = sqlite3.connect(db_file)
            try:
                seed(conn, state, target, demo)
            finally:
                conn.close()
            write_state(state_file, state)
        except (OSError, sqlite3.Error) as exc:
            raise SeedError(3, f"seeding {db_file} failed: {exc}") from exc
    except SeedError as exc:
        print(f"app.seed: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"app.seed: seeded {db_file} for {target}"
          f"{' with demo accounts' if demo else ''}; credentials in {state_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
