import hashlib

import pytest

from conftest import CLIENT_ALIAS, CLIENT_TOKEN

AUTH = {"Authorization": f"Bearer {CLIENT_TOKEN}"}


def test_whoami_with_the_seeded_token(client):
    response = client.get("/api/whoami", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"client_id": "primary"}


@pytest.mark.parametrize("header", [
    None,
    "Bearer",
    f"Basic {CLIENT_TOKEN}",
    "Bearer naf_short_token",
    # Right alias, wrong secret.
    f"Bearer naf_{CLIENT_ALIAS}_" + "A" * 64,
    # Right secret, unknown alias.
    "Bearer naf_ZZZZZZZZZZZZZZZZ_" + CLIENT_TOKEN.rsplit("_", 1)[1],
    # The stored hash itself is not a credential.
    "Bearer " + hashlib.sha256(CLIENT_TOKEN.encode()).hexdigest(),
])
def test_bad_tokens_are_rejected(client, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("get", "/api/whoami"), ("get", "/api/geo/81.2.69.160"),
                         ("post", "/api/dns"), ("post", "/api/notify")):
        response = getattr(client, method)(path, headers=headers, json={})
        assert response.status_code == 401, (path, header)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_geo_api_validates_ip_then_reports_missing_configuration(client):
    bad = client.get("/api/geo/not-an-ip", headers=AUTH)
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "IP_ADDRESS_INVALID"
    unconfigured = client.get("/api/geo/81.2.69.160", headers=AUTH)
    assert unconfigured.status_code == 503
    assert "GEOIP_ACCOUNT_ID" in unconfigured.get_json()["detail"]


def test_dns_api_validates_before_calling_out(client):
    bad = client.post("/api/dns", headers=AUTH, json={"hostname": "www", "type": "A",
                                                       "destination": "2001:db8::1"})
    assert bad.status_code == 400
    assert "IPv4" in bad.get_json()["detail"]
    unconfigured = client.post("/api/dns", headers=AUTH, json={
        "hostname": "www", "type": "A", "destination": "192.0.2.10"})
    assert unconfigured.status_code == 503


def test_notify_api_validates_input(client):
    assert client.post("/api/notify", headers=AUTH, data="x").status_code == 400
    response = client.post("/api/notify", headers=AUTH, json={
        "subject": "Hi\r\nBcc: victim@example.org", "body": "x"})
    assert response.status_code == 400
    response = client.post("/api/notify", headers=AUTH, json={
        "subject": "Hi", "body": "x", "to": "not an address"})
    assert response.status_code == 400


def test_notify_api_failure_is_reported_and_recorded(client, app_root, monkeypatch):
    import sqlite3

    # Port 9 on 127.0.0.1 refuses connections: the delivery error must surface as 502.
    monkeypatch.setenv("MAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("MAIL_PORT", "9")
    response = client.post("/api/notify", headers=AUTH, json={"subject": "Hi", "body": "x"})
    assert response.status_code == 502
    assert "127.0.0.1:9" in response.get_json()["detail"]
    conn = sqlite3.connect(app_root / "app.db")
    rows = conn.execute("SELECT actor, status, recipient FROM notifications").fetchall()
    conn.close()
    assert rows == [("client:primary", "error", "admin@app.localtest.me")]


def test_writes_answer_201_after_the_commit_and_refuse_a_duplicate(client, app_root):
    api_headers, db_path = AUTH, app_root / "app.db"
    r = client.post("/api/writes", json={"ref": "w-1"}, headers=api_headers)
    assert r.status_code == 201 and r.get_json()["ref"] == "w-1"
    # Another connection sees the row: it was committed before the answer.
    import sqlite3
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM api_writes WHERE ref = 'w-1'").fetchone()[0] == 1
    assert client.post("/api/writes", json={"ref": "w-1"}, headers=api_headers).status_code == 409
    assert client.post("/api/writes", json={}, headers=api_headers).status_code == 400
    assert client.post("/api/writes", json={"ref": "w-2"}).status_code == 401
