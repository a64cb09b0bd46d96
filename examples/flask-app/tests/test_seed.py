"""The Python seed (`python3 -m app.seed`) against the SQL seed and the state file contract."""

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from werkzeug.security import check_password_hash

from conftest import PROJECT, build_database


def run_seed(db_path: Path, state_path: Path, target="local", demo=False, **extra):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT / "src"),
           "PYTHONDONTWRITEBYTECODE": "1", "HARNESS_DB_PATH": str(db_path),
           "HARNESS_TARGET": target, "HARNESS_STATE_FILE": str(state_path)}
    if demo:
        env["HARNESS_SEED_DEMO"] = "1"
    env.update(extra)
    return subprocess.run([sys.executable, "-m", "app.seed"], env=env, capture_output=True,
                          text=True, timeout=120)


def rows(db_path: Path, sql: str):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def schema(db_path: Path):
    return rows(db_path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


def normalised(sql: str) -> str:
    return " ".join(sql.split())


def test_python_schema_equals_sql_schema(tmp_path):
    build_database(tmp_path / "sql.db")
    assert run_seed(tmp_path / "py.db", tmp_path / "state.json").returncode == 0
    from_sql = [(t, n, tb, normalised(s or "")) for t, n, tb, s in schema(tmp_path / "sql.db")]
    from_py = [(t, n, tb, normalised(s or "")) for t, n, tb, s in schema(tmp_path / "py.db")]
    assert from_py == from_sql


def test_seed_generates_secrets_into_a_private_state_file(tmp_path):
    state_path = tmp_path / "deployment_state_local.json"
    result = run_seed(tmp_path / "app.db", state_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(state_path).st_mode) == 0o600
    state = json.loads(state_path.read_text())
    password = state["admin"]["password"]
    assert password not in result.stdout + result.stderr
    assert state["admin"]["username"] == "admin"
    [(pw_hash, must_change)] = rows(tmp_path / "app.db",
                                    "SELECT password_hash, must_change_password FROM users")
    assert check_password_hash(pw_hash, password)
    assert must_change == 1

    [client] = state["clients"]
    assert client["client_id"] == "primary" and client["is_primary"] is True
    token = client["secret_key"]
    prefix, alias, secret = token.split("_")
    assert prefix == "naf" and len(alias) == 16 and len(secret) == 64
    assert rows(tmp_path / "app.db", "SELECT alias, token_sha256 FROM api_clients") == [
        (alias, hashlib.sha256(token.encode()).hexdigest())]

    [(stored_key,)] = rows(tmp_path / "app.db", "SELECT value FROM settings WHERE key='secret_key'")
    assert json.loads(stored_key) == state["secrets"]["secret_key"]
    assert stored_key.startswith('"')
    assert rows(tmp_path / "app.db", "SELECT host, port, use_tls FROM email_config") == [
        ("mailpit", 1025, 0)]


def test_seed_reuses_state_and_keeps_unknown_keys(tmp_path):
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps({
        "target": "local",
        "deploy_dir": "/somewhere",
        "build": {"git_commit": "abc1234"},
        "admin": {"username": "admin", "password": "changed-by-a-test-123",
                  "password_changed_at": "2026-01-01T00:00:00Z"},
        "clients": [{"client_id": "primary", "secret_key": "naf_" + "a" * 16 + "_" + "b" * 64,
                     "description": "Primary API client", "is_primary": True, "note": "kept"}],
        "secrets": {"secret_key": "c" * 64},
    }))
    result = run_seed(tmp_path / "app.db", state_path, target="webhosting", demo=True)
    assert result.returncode == 0, result.stderr
    state = json.loads(state_path.read_text())
    assert state["deploy_dir"] == "/somewhere"
    assert state["build"] == {"git_commit": "abc1234"}
    assert state["clients"][0]["note"] == "kept"
    assert state["clients"][0]["secret_key"] == "naf_" + "a" * 16 + "_" + "b" * 64
    assert state["secrets"]["secret_key"] == "c" * 64
    assert state["target"] == "webhosting"
    [(pw_hash,)] = rows(tmp_path / "app.db", "SELECT password_hash FROM users WHERE username='admin'")
    assert check_password_hash(pw_hash, "changed-by-a-test-123")
    users = rows(tmp_path / "app.db", "SELECT username FROM users ORDER BY username")
    assert users == [("admin",), ("demo-editor",), ("demo-viewer",)]
    assert rows(tmp_path / "app.db", "SELECT host, use_tls FROM email_config") == [("localhost", 1)]


def test_seed_refuses_bad_environment(tmp_path):
    missing_state = run_seed(tmp_path / "a.db", tmp_path / "s.json", HARNESS_STATE_FILE="")
    assert missing_state.returncode == 2
    assert "HARNESS_STATE_FILE" in missing_state.stderr
    bad_target = run_seed(tmp_path / "a.db", tmp_path / "s.json", target="staging")
    assert bad_target.returncode == 2 and "staging" in bad_target.stderr
    (tmp_path / "s.json").write_text("{broken")
    bad_state = run_seed(tmp_path / "a.db", tmp_path / "s.json")
    assert bad_state.returncode == 2 and "not valid JSON" in bad_state.stderr
    assert not (tmp_path / "a.db").exists()


def test_seed_refuses_to_overwrite_a_database(tmp_path):
    build_database(tmp_path / "app.db")
    before = (tmp_path / "app.db").read_bytes()
    result = run_seed(tmp_path / "app.db", tmp_path / "s.json")
    assert result.returncode == 2 and "exists already" in result.stderr
    assert (tmp_path / "app.db").read_bytes() == before
