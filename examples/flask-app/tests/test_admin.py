import sqlite3

from werkzeug.security import check_password_hash

from conftest import ADMIN_PASSWORD, SECRET_KEY, csrf_from, login

NEW_PASSWORD = "a-brand-new-Passw0rd"


def change_password(client, current, new, confirm=None):
    page = client.get("/admin/change-password")
    return client.post("/admin/change-password", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    })


def user_row(app_root, username="admin"):
    conn = sqlite3.connect(app_root / "app.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    finally:
        conn.close()


def test_login_page_is_a_form(client):
    response = client.get("/admin/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="username"' in html and 'name="password"' in html


def test_wrong_password_is_rejected(client):
    response = login(client, password="not-the-password")
    assert response.status_code == 401
    assert "Invalid user name or password" in response.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_unknown_user_is_rejected(client):
    assert login(client, username="nobody").status_code == 401


def test_demo_accounts_cannot_log_in(tmp_path):
    from app import create_app
    from conftest import build_database

    build_database(tmp_path / "app.db", demo=True)
    client = create_app(app_root=tmp_path).test_client()
    for password in ("", "!", "demo"):
        assert login(client, username="demo-editor", password=password).status_code == 401


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400


def test_seeded_admin_is_forced_to_change_password(client):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/change-password")
    # Every admin page sends the user back until the password is changed.
    for path in ("/admin", "/admin/dns", "/geo", "/admin/notify"):
        blocked = client.get(path)
        assert blocked.status_code == 302, path
        assert blocked.headers["Location"].endswith("/admin/change-password"), path
    assert "must choose a new password" in client.get("/admin/change-password").get_data(as_text=True)


def test_forced_change_stores_new_password(client, app_root):
    login(client)
    response = change_password(client, ADMIN_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    row = user_row(app_root)
    assert row["must_change_password"] == 0
    assert row["password_changed_at"] is not None
    assert check_password_hash(row["password_hash"], NEW_PASSWORD)
    assert not check_password_hash(row["password_hash"], ADMIN_PASSWORD)
    dashboard = client.get("/admin")
    assert dashboard.status_code == 200
    assert 'id="username">admin<' in dashboard.get_data(as_text=True)


def test_new_password_works_after_logout_and_old_one_does_not(client):
    login(client)
    change_password(client, ADMIN_PASSWORD, NEW_PASSWORD)
    page = client.get("/admin")
    client.post("/admin/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert client.get("/admin").status_code == 302
    assert login(client, password=ADMIN_PASSWORD).status_code == 401
    response = login(client, password=NEW_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin")


def test_password_change_validation(client, app_root):
    login(client)
    cases = [
        ("wrong-current-password", NEW_PASSWORD, None, "current password is wrong"),
        (ADMIN_PASSWORD, "short", None, "at least 12"),
        (ADMIN_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "differ"),
        (ADMIN_PASSWORD, ADMIN_PASSWORD, None, "must differ from the current"),
    ]
    for current, new, confirm, message in cases:
        response = change_password(client, current, new, confirm)
        assert response.status_code == 400, message
        assert message in response.get_data(as_text=True), message
    row = user_row(app_root)
    assert row["must_change_password"] == 1
    assert check_password_hash(row["password_hash"], ADMIN_PASSWORD)


def test_login_next_parameter_is_not_an_open_redirect(client, app_root):
    login(client)
    change_password(client, ADMIN_PASSWORD, NEW_PASSWORD)
    client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin").get_data(as_text=True))})
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "username": "admin", "password": NEW_PASSWORD, "next": "//evil.example/",
    })
    assert response.headers["Location"].endswith("/admin")


def test_secret_key_from_settings_overrides_env(monkeypatch, app_root):
    from app import create_app

    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app(app_root=app_root).secret_key == SECRET_KEY


def test_env_secret_key_used_when_settings_lack_it(monkeypatch, app_root):
    from app import create_app

    conn = sqlite3.connect(app_root / "app.db")
    conn.execute("DELETE FROM settings WHERE key = 'secret_key'")
    conn.commit()
    conn.close()
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app(app_root=app_root).secret_key == "from-the-environment"


def test_session_cookie_secure_on_webhosting(monkeypatch, app_root):
    from app import create_app

    monkeypatch.setenv("DEPLOYMENT_TARGET", "webhosting")
    assert create_app(app_root=app_root).config["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("DEPLOYMENT_TARGET", "local")
    assert create_app(app_root=app_root).config["SESSION_COOKIE_SECURE"] is False
