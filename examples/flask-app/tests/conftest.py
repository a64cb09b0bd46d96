"""Fixtures: an app root in a temp dir with a database seeded from db/*.sql."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
# Keep src/ free of __pycache__: a later `harness build` must not find stale bytecode there.
sys.dont_write_bytecode = True

ADMIN_PASSWORD = "seeded-Admin-pw-0123"
SECRET_KEY = "5f" * 32
CLIENT_ALIAS = "AbCdEfGh12345678"
CLIENT_TOKEN = f"naf_{CLIENT_ALIAS}_" + "Z9" * 32

PLACEHOLDER_RE = re.compile(r"\{\{([A-Za-z0-9_.\-]+)(?:\|([a-z0-9]+))?\}\}")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def harness_placeholder_expand(sql: str, values: dict[str, str]) -> str:
    """Test stand-in for the harness's SQL placeholder expansion (the real one is Rust):
    {{NAME}}, {{NAME|sha256}}, {{NAME|json}}, {{NAME|werkzeug}} become quoted SQL literals.
    The werkzeug hash uses few iterations so the tests stay fast; the format is the same."""

    def expand(match: re.Match[str]) -> str:
        name, transform = match[1], match[2]
        if name not in values:
            raise KeyError(f"unknown placeholder {name!r}")
        plain = values[name]
        if transform is None:
            return sql_literal(plain)
        if transform == "sha256":
            return sql_literal(hashlib.sha256(plain.encode()).hexdigest())
        if transform == "json":
            return sql_literal(json.dumps(plain))
        if transform == "werkzeug":
            return sql_literal(generate_password_hash(plain, method="pbkdf2:sha256:1000"))
        raise KeyError(f"unknown transform {transform!r}")

    return PLACEHOLDER_RE.sub(expand, sql)


def placeholder_values(target: str) -> dict[str, str]:
    return {
        "admin_password": ADMIN_PASSWORD,
        "secret_key": SECRET_KEY,
        "client_token.primary": CLIENT_TOKEN,
        "client_alias.primary": CLIENT_ALIAS,
        "target": target,
    }


def build_database(path: Path, target: str = "local", demo: bool = False) -> None:
    files = ["schema.sql", "seed.sql"]
    if target == "local":
        files.append("local.sql")
    if demo:
        files.append("demo.sql")
    conn = sqlite3.connect(path)
    try:
        for name in files:
            sql = (PROJECT / "db" / name).read_text(encoding="utf-8")
            conn.executescript(harness_placeholder_expand(sql, placeholder_values(target)))
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's shell must not leak integration endpoints into unit tests.
    for name in ("APP_DB_PATH", "SECRET_KEY", "DEPLOYMENT_TARGET", "SESSION_COOKIE_SECURE",
                 "NETCUP_API_URL", "NETCUP_CUSTOMER_NUMBER", "NETCUP_API_KEY",
                 "NETCUP_API_PASSWORD", "NETCUP_DOMAIN", "GEOIP_ACCOUNT_ID",
                 "GEOIP_LICENSE_KEY", "GEOIP_HOST", "MAIL_HOST", "MAIL_PORT", "MAIL_USERNAME",
                 "MAIL_PASSWORD", "MAIL_FROM", "MAIL_USE_TLS", "MAIL_NOTIFY_TO",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    root = tmp_path / "approot"
    root.mkdir()
    build_database(root / "app.db")
    return root


@pytest.fixture
def app(app_root: Path):
    from app import create_app

    flask_app = create_app(app_root=app_root)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form without csrf_token"
    return match[1]


def login(client, username: str = "admin", password: str = ADMIN_PASSWORD):
    page = client.get("/admin/login")
    return client.post("/admin/login", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "username": username, "password": password, "next": "",
    })
