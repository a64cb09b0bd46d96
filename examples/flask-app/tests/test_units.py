"""Pure logic: record validation, mail configuration precedence, Netcup endpoint URLs."""

import sqlite3

import pytest

from app import mailer, netcup, services
from conftest import build_database


@pytest.mark.parametrize("data, expected", [
    ({"hostname": "www", "type": "a", "destination": " 192.0.2.1 "},
     services.RecordRequest("www", "A", "192.0.2.1")),
    ({"hostname": "@", "type": "AAAA", "destination": "2001:DB8::1"},
     services.RecordRequest("@", "AAAA", "2001:db8::1")),
    ({"hostname": "_dmarc", "type": "TXT", "destination": "v=DMARC1; p=none"},
     services.RecordRequest("_dmarc", "TXT", "v=DMARC1; p=none")),
    ({"hostname": "@", "type": "MX", "destination": "mx.example.org.", "priority": 10},
     services.RecordRequest("@", "MX", "mx.example.org.", "10")),
    ({"hostname": "*.dev", "type": "CNAME", "destination": "www.example.org"},
     services.RecordRequest("*.dev", "CNAME", "www.example.org")),
])
def test_valid_records(data, expected):
    assert services.parse_record(data) == expected


@pytest.mark.parametrize("data, field", [
    ({"hostname": "", "type": "A", "destination": "192.0.2.1"}, "hostname"),
    ({"hostname": "a b", "type": "A", "destination": "192.0.2.1"}, "hostname"),
    ({"hostname": "-bad", "type": "A", "destination": "192.0.2.1"}, "hostname"),
    ({"hostname": "www", "type": "SRV", "destination": "x"}, "type"),
    ({"hostname": "www", "type": "A", "destination": "2001:db8::1"}, "destination"),
    ({"hostname": "www", "type": "AAAA", "destination": "192.0.2.1"}, "destination"),
    ({"hostname": "www", "type": "A", "destination": "999.1.1.1"}, "destination"),
    ({"hostname": "www", "type": "CNAME", "destination": "not a host"}, "destination"),
    ({"hostname": "www", "type": "TXT", "destination": "line\nbreak"}, "destination"),
    ({"hostname": "@", "type": "MX", "destination": "mx.example.org"}, "priority"),
    ({"hostname": "@", "type": "MX", "destination": "mx.example.org", "priority": "70000"}, "priority"),
    ({"hostname": "www", "type": "A", "destination": "192.0.2.1", "priority": "5"}, "priority"),
])
def test_invalid_records_name_the_field(data, field):
    with pytest.raises(services.InputError) as info:
        services.parse_record(data)
    assert str(info.value).startswith(field)


def test_mail_config_from_database_then_env(tmp_path):
    build_database(tmp_path / "app.db", target="webhosting")
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.row_factory = sqlite3.Row
    from_db = mailer.load_config(conn, env={})
    assert (from_db.host, from_db.port, from_db.use_tls) == ("localhost", 587, True)
    overridden = mailer.load_config(conn, env={
        "MAIL_HOST": "smtp.example.org", "MAIL_PORT": "2525", "MAIL_USERNAME": "u",
        "MAIL_PASSWORD": "p", "MAIL_FROM": "app@example.org", "MAIL_USE_TLS": "false"})
    assert overridden == mailer.MailConfig("smtp.example.org", 2525, "u", "p", False,
                                           "app@example.org", from_db.notify_to)
    with pytest.raises(mailer.MailError, match="MAIL_PORT"):
        mailer.load_config(conn, env={"MAIL_PORT": "smtp"})
    conn.close()


def test_local_target_mails_to_mailpit_without_tls(tmp_path):
    build_database(tmp_path / "app.db", target="local")
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.row_factory = sqlite3.Row
    config = mailer.load_config(conn, env={})
    conn.close()
    assert (config.host, config.port, config.use_tls, config.username) == ("mailpit", 1025, False, None)


def test_send_without_host_is_an_error():
    config = mailer.MailConfig(None, 25, None, None, False, "a@example.org", "b@example.org")
    with pytest.raises(mailer.MailError, match="no mail host"):
        mailer.send(config, "b@example.org", "s", "b")


@pytest.mark.parametrize("given, expected", [
    ("https://ccp.netcup.net/run/webservice/servers/endpoint.php?JSON",
     "https://ccp.netcup.net/run/webservice/servers/endpoint.php?JSON"),
    ("https://ccp.netcup.net/run/webservice/servers/endpoint.php",
     "https://ccp.netcup.net/run/webservice/servers/endpoint.php?JSON"),
    ("http://netcup:8080", "http://netcup:8080/run/webservice/servers/endpoint.php?JSON"),
    ("http://netcup:8080/", "http://netcup:8080/run/webservice/servers/endpoint.php?JSON"),
])
def test_netcup_endpoint_url(given, expected):
    assert netcup.endpoint_url(given) == expected


def test_netcup_needs_every_variable(monkeypatch):
    names = {"NETCUP_API_URL": "http://127.0.0.1:9", "NETCUP_CUSTOMER_NUMBER": "1",
             "NETCUP_API_KEY": "k", "NETCUP_API_PASSWORD": "p", "NETCUP_DOMAIN": "example.org"}
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    assert netcup.NetcupConfig.from_env() is not None
    for name in names:
        monkeypatch.setenv(name, "")
        assert netcup.NetcupConfig.from_env() is None, name
        monkeypatch.setenv(name, names[name])


def test_harness_werkzeug_placeholder_format_is_accepted():
    """The harness builds `{{NAME|werkzeug}}` in Rust without Werkzeug. This is the format it
    must produce: pbkdf2:sha256:<n>$<salt as text>$<hex of pbkdf2_hmac(password, salt)>."""
    import hashlib

    from app.security import verify_password

    password, salt, rounds = "correct horse battery staple", "AbCdEfGh12345678", 600000
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds).hex()
    built = f"pbkdf2:sha256:{rounds}${salt}${digest}"
    assert built == ("pbkdf2:sha256:600000$AbCdEfGh12345678$"
                     "c5a0c14dbb731b6e16dfd9b0560d5cc17c0eec105ceee6dad5a90b0348a6569b")
    assert verify_password(built, password)
    assert not verify_password(built, password + "x")
