"""SQLite access. Connections never create a missing database file: a deploy that lost
app.db must fail health, not start over with an empty one."""

from __future__ import annotations

import json
import sqlite3
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


def get() -> sqlite3.Connection:
    if "db" not in g:
        g.db = connect(current_app.config["DB_PATH"])
    return g.db


def close_request_connection(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


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
