import json
import os

from conftest import build_database


def test_health_ok_when_database_opens(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_health_503_and_no_empty_database_created_when_file_missing(client, app_root):
    os.remove(app_root / "app.db")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert not (app_root / "app.db").exists()


def test_health_503_when_file_is_not_a_database(client, app_root):
    (app_root / "app.db").write_bytes(b"this is not sqlite" * 100)
    assert client.get("/health").status_code == 503


def test_version_reads_build_info_on_each_request(client, app_root):
    assert client.get("/version").get_json()["build_id"] == "unknown"
    (app_root / "build_info.json").write_text(json.dumps({
        "build_id": "b-1", "git_commit": "abc1234", "target": "local",
        "code_fingerprint": "f" * 64,
    }))
    first = client.get("/version").get_json()
    assert first["build_id"] == "b-1"
    assert first["git_commit"] == "abc1234"
    assert first["target"] == "local"
    (app_root / "build_info.json").write_text(json.dumps({"build_id": "b-2"}))
    assert client.get("/version").get_json()["build_id"] == "b-2"


def test_version_survives_malformed_build_info(client, app_root):
    (app_root / "build_info.json").write_text("{not json")
    response = client.get("/version")
    assert response.status_code == 200
    assert response.get_json()["build_id"] == "unknown"


def test_app_db_path_env_overrides_default(monkeypatch, tmp_path, app_root):
    from app import create_app

    other = tmp_path / "elsewhere.db"
    build_database(other)
    os.remove(app_root / "app.db")
    monkeypatch.setenv("APP_DB_PATH", str(other))
    client = create_app(app_root=app_root).test_client()
    assert client.get("/health").status_code == 200


def test_debug_request_applies_one_proxy_hop(client):
    response = client.get("/debug/request", headers={
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "app.localtest.me",
        "X-Forwarded-Port": "443",
    })
    seen = response.get_json()
    assert seen["scheme"] == "https"
    assert seen["host"] == "app.localtest.me"
    assert seen["remote_addr"] == "203.0.113.7"
    assert seen["is_secure"] is True
    assert seen["forwarded_headers"]["X-Forwarded-Proto"] == "https"


def test_debug_request_trusts_only_the_last_forwarded_hop(client):
    # A client-supplied X-Forwarded-For is prepended by nginx; only nginx's entry counts.
    seen = client.get("/debug/request", headers={
        "X-Forwarded-For": "6.6.6.6, 198.51.100.20",
    }).get_json()
    assert seen["remote_addr"] == "198.51.100.20"


def test_app_log_is_written_under_app_root(client, app_root):
    client.get("/health")
    assert "started target=local" in (app_root / "app.log").read_text()
