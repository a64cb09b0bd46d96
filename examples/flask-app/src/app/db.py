"""SQLite access. Connections never create a missing database file: a deploy that lost
app.db must fail health, not start over with an empty one."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import current_app, g


class DatabaseUnavailable(RuntimeError):
    pass


def connect(path: str) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"{path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


# One connection per process and thread, kept open across requests as SQLAlchemy's pool
# does: a process that outlives a release switch (Passenger finishes its requests first) keeps
# writing through it, which is what a deploy must not lose.
_pool: dict[tuple[str, int], sqlite3.Connection] = {}


def get() -> sqlite3.Connection:
    key = (current_app.config["DB_PATH"], threading.get_ident())
    conn = _pool.get(key)
    if conn is None:
        conn = _pool[key] = connect(key[0])
    return conn


def close_request_connection(_exc: BaseException | None = None) -> None:
    """The connection stays open; a request that failed half-way must not leave its
    transaction to the next one."""
    conn = _pool.get((current_app.config["DB_PATH"], threading.get_ident()))
    if conn is not None and conn.in_transaction:
        conn.rollback()


def read_setting(path: str, key: str) -> Any:
    try:
        conn = connect(path)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"{path}: {exc}") from exc
    return None if row is None else json.loads(row["value"])


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
