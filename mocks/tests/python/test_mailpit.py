"""Mailpit-compatible catcher: smtplib in, Mailpit's API out, every JSON answer checked against the
swagger definitions (with $ref resolved), once as published and once made strict (all properties
required, no unknown ones) so a missing or misspelled field fails."""
import copy
import json
import os
import pathlib
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage

import jsonschema
import pytest
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# Mailpit's published spec, kept beside this file (MIT, unchanged; see mocks/README.md), so a clone
# anywhere runs these tests. MAILPIT_SWAGGER checks against another copy (a newer upstream).
SWAGGER_PATH = os.environ.get("MAILPIT_SWAGGER") or str(
    pathlib.Path(__file__).resolve().with_name("mailpit-api-v1.swagger.json")
)
SWAGGER = json.loads(pathlib.Path(SWAGGER_PATH).read_text())

# Optional in Mailpit's output too: Username only for authenticated senders.
OPTIONAL = {"MessageSummary": {"Username"}, "Message": {"Username"}}


def strict(doc):
    doc = copy.deepcopy(doc)

    def tighten(schema, name=None):
        if isinstance(schema, dict):
            if schema.get("type") == "object" and "properties" in schema:
                schema["required"] = sorted(set(schema["properties"]) - OPTIONAL.get(name, set()))
                schema["additionalProperties"] = False
            for v in schema.values():
                tighten(v)
        elif isinstance(schema, list):
            for v in schema:
                tighten(v)

    for name, d in doc["definitions"].items():
        tighten(d, name)
    return doc


REGISTRIES = {
    "published": Registry().with_resource("urn:swagger", Resource.from_contents(SWAGGER, default_specification=DRAFT4)),
    "strict": Registry().with_resource("urn:swagger", Resource.from_contents(strict(SWAGGER), default_specification=DRAFT4)),
}


def validate(instance, pointer):
    """Validates against `urn:swagger#/definitions/X` (or a response schema) in both registries."""
    for registry in REGISTRIES.values():
        validator = jsonschema.Draft4Validator({"$ref": f"urn:swagger#{pointer}"}, registry=registry)
        validator.validate(instance)
    return instance


AUTH = ("admin", "s3cret")
WEBROOT = "/mailpit"


@pytest.fixture
def catcher(mock_factory):
    return mock_factory(
        ["mailpit", "--port", "0", "--smtp-port", "0", "--smtp-max-size", "200000"],
        env={
            "MP_UI_AUTH": "admin:s3cret",
            "MP_WEBROOT": "/mailpit/",
            "MP_SMTP_AUTH_ACCEPT_ANY": "1",
            "MP_SMTP_AUTH_ALLOW_INSECURE": "true",
            "MP_MAX_MESSAGES": "0",
        },
    )


class Api:
    def __init__(self, mock):
        self.base = mock.url(WEBROOT)

    def get(self, path, **kw):
        r = requests.get(self.base + path, auth=AUTH, **kw)
        return r

    def json(self, path, pointer, **kw):
        r = self.get(path, **kw)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        return validate(r.json(), pointer)

    def send(self, method, path, body=None):
        return requests.request(method, self.base + path, auth=AUTH, json=body)


def smtp(mock, login=True):
    host, port = mock.addr("smtp").rsplit(":", 1)
    s = smtplib.SMTP(host, int(port), timeout=10)
    s.ehlo("tests.local")
    if login:
        s.login("anyone", "anything")
    return s


def plain(subject="Plain hello", to="bob@example.com", body="Just text.\n.leading dot line\n"):
    m = EmailMessage()
    m["From"] = "Alice Sender <alice@example.com>"
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{subject.replace(' ', '-')}@tests.local>"
    m.set_content(body)
    return m


def alternative():
    m = plain("Welcome aboard", to="Carol <carol@example.org>", body="Welcome, Carol. Plain part.")
    m["Cc"] = "dave@example.org"
    m.add_alternative("<html><body><h1>Welcome, Carol</h1><p>HTML part</p></body></html>", subtype="html")
    return m


def with_attachment():
    m = plain("Quarterly report", to="erin@example.net", body="Report attached.")
    m.add_attachment(b"%PDF-1.4 fake report\n", maintype="application", subtype="pdf", filename="report.pdf")
    return m


@pytest.fixture
def three_mails(catcher):
    with smtp(catcher) as s:
        for m in (plain(), alternative(), with_attachment()):
            s.send_message(m)
    return Api(catcher)


def test_info_and_health(catcher, three_mails):
    api = three_mails
    info = api.json("/api/v1/info", "/definitions/AppInformation")
    assert info["Messages"] == 3 and info["Unread"] == 3
    assert info["RuntimeStats"]["SMTPAccepted"] == 3
    # Health is under the webroot and open without credentials, like Mailpit's.
    for path in ("/livez", "/readyz"):
        assert requests.get(catcher.url(WEBROOT + path)).status_code == 200
    assert requests.get(catcher.url("/livez")).status_code == 404


def test_ui_auth_is_required(catcher):
    r = requests.get(catcher.url(WEBROOT + "/api/v1/messages"))
    assert r.status_code == 401
    assert "Basic" in r.headers["WWW-Authenticate"]
    r = requests.get(catcher.url(WEBROOT + "/api/v1/messages"), auth=("admin", "wrong"))
    assert r.status_code == 401


def test_list_is_newest_first_with_summary_fields(three_mails):
    page = three_mails.json("/api/v1/messages", "/definitions/MessagesSummary")
    assert page["total"] == 3 and page["messages_count"] == 3 and page["unread"] == 3
    subjects = [m["Subject"] for m in page["messages"]]
    assert subjects == ["Quarterly report", "Welcome aboard", "Plain hello"]
    first = page["messages"][0]
    assert first["From"] == {"Name": "Alice Sender", "Address": "alice@example.com"}
    assert first["To"] == [{"Name": "", "Address": "erin@example.net"}]
    assert first["Attachments"] == 1 and first["Read"] is False
    assert first["Username"] == "anyone"
    assert page["messages"][1]["Cc"] == [{"Name": "", "Address": "dave@example.org"}]
    paged = three_mails.json("/api/v1/messages?start=1&limit=1", "/definitions/MessagesSummary")
    assert [m["Subject"] for m in paged["messages"]] == ["Welcome aboard"] and paged["start"] == 1


@pytest.mark.parametrize("query,subjects", [
    ("to:carol@example.org", ["Welcome aboard"]),
    ("subject:report", ["Quarterly report"]),
    ('subject:"plain hello"', ["Plain hello"]),
    ("welcome", ["Welcome aboard"]),
    ("has:attachment", ["Quarterly report"]),
    ("from:alice -subject:welcome", ["Quarterly report", "Plain hello"]),
    ("nothing-matches-this", []),
])
def test_search(three_mails, query, subjects):
    res = three_mails.json("/api/v1/search", "/definitions/MessagesSummary", params={"query": query})
    assert [m["Subject"] for m in res["messages"]] == subjects
    assert res["messages_count"] == len(subjects) and res["total"] == 3


def test_latest_message_and_its_views(three_mails):
    api = three_mails
    msg = api.json("/api/v1/message/latest", "/definitions/Message")
    assert msg["Subject"] == "Quarterly report"
    assert msg["Text"].strip() == "Report attached."
    assert msg["ReturnPath"] == "alice@example.com"
    att = msg["Attachments"][0]
    assert att["FileName"] == "report.pdf" and att["ContentType"] == "application/pdf"
    assert att["Size"] == len(b"%PDF-1.4 fake report\n")
    part = api.get(f"/api/v1/message/{msg['ID']}/part/{att['PartID']}")
    assert part.content == b"%PDF-1.4 fake report\n"

    page = api.json("/api/v1/messages", "/definitions/MessagesSummary")
    welcome = next(m for m in page["messages"] if m["Subject"] == "Welcome aboard")
    full = api.json(f"/api/v1/message/{welcome['ID']}", "/definitions/Message")
    assert "<h1>Welcome, Carol</h1>" in full["HTML"]
    assert full["Text"].strip() == "Welcome, Carol. Plain part."

    headers = api.json(f"/api/v1/message/{welcome['ID']}/headers", "/responses/MessageHeadersResponse/schema")
    assert headers["Subject"] == ["Welcome aboard"]
    assert list(headers) == sorted(headers)

    raw = api.get(f"/api/v1/message/{welcome['ID']}/raw")
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("text/plain")
    assert b"Subject: Welcome aboard" in raw.content

    html = api.get(f"/view/{welcome['ID']}.html")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "<h1>Welcome, Carol</h1>" in html.text
    txt = api.get(f"/view/{welcome['ID']}.txt")
    assert txt.headers["Content-Type"].startswith("text/plain") and "Plain part." in txt.text

    plain_msg = next(m for m in page["messages"] if m["Subject"] == "Plain hello")
    # Dot-stuffing was undone: the line that began with a dot arrives as sent.
    assert ".leading dot line" in api.get(f"/view/{plain_msg['ID']}.txt").text
    assert api.get(f"/view/{plain_msg['ID']}.html").status_code == 404
    assert api.get("/api/v1/message/doesnotexist").status_code == 404


def test_opening_marks_read_and_put_sets_read_and_unread(three_mails):
    api = three_mails
    api.json("/api/v1/message/latest", "/definitions/Message")
    page = api.json("/api/v1/messages", "/definitions/MessagesSummary")
    assert page["unread"] == 2 and page["messages"][0]["Read"] is True
    ids = [m["ID"] for m in page["messages"]]

    r = api.send("PUT", "/api/v1/messages", {"IDs": ids[:1], "Read": False})
    assert r.status_code == 200 and r.text == "ok"
    assert api.json("/api/v1/messages", "/definitions/MessagesSummary")["unread"] == 3
    r = api.send("PUT", "/api/v1/messages", {"IDs": ids[1:], "Read": True})
    page = api.json("/api/v1/messages", "/definitions/MessagesSummary")
    assert [m["Read"] for m in page["messages"]] == [False, True, True] and page["unread"] == 1
    unread = api.json("/api/v1/search", "/definitions/MessagesSummary", params={"query": "is:unread"})
    assert [m["ID"] for m in unread["messages"]] == ids[:1]
    api.send("PUT", "/api/v1/messages", {"Read": True})
    assert api.json("/api/v1/messages", "/definitions/MessagesSummary")["unread"] == 0


def test_delete_by_ids_then_all(three_mails):
    api = three_mails
    ids = [m["ID"] for m in api.json("/api/v1/messages", "/definitions/MessagesSummary")["messages"]]
    r = api.send("DELETE", "/api/v1/messages", {"IDs": ids[:2]})
    assert r.status_code == 200 and r.text == "ok"
    left = api.json("/api/v1/messages", "/definitions/MessagesSummary")
    assert [m["ID"] for m in left["messages"]] == ids[2:] and left["total"] == 1
    r = requests.delete(api.base + "/api/v1/messages", auth=AUTH)
    assert r.status_code == 200
    assert api.json("/api/v1/messages", "/definitions/MessagesSummary")["total"] == 0


def test_delete_by_search(three_mails):
    api = three_mails
    r = requests.delete(api.base + "/api/v1/search", params={"query": "subject:welcome"}, auth=AUTH)
    assert r.status_code == 200
    left = api.json("/api/v1/messages", "/definitions/MessagesSummary")
    assert [m["Subject"] for m in left["messages"]] == ["Quarterly report", "Plain hello"]


def test_auth_plain_and_login_mechanisms(catcher):
    host, port = catcher.addr("smtp").rsplit(":", 1)
    for mech in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(host, int(port), timeout=10) as s:
            s.ehlo("x")
            assert "plain" in s.esmtp_features["auth"].lower()
            s.user, s.password = f"user-{mech}", "pw"
            code, _ = s.auth(mech, getattr(s, f"auth_{mech.lower()}"), initial_response_ok=(mech == "PLAIN"))
            assert code == 235
            s.send_message(plain(subject=f"via {mech}"))
    page = Api(catcher).json("/api/v1/messages", "/definitions/MessagesSummary")
    assert {m["Username"] for m in page["messages"]} == {"user-PLAIN", "user-LOGIN"}


def test_oversize_mail_gets_552_and_the_server_stays_up(catcher):
    big = plain(subject="too big", body="x" * 300_000)
    with smtp(catcher) as s:
        with pytest.raises(smtplib.SMTPException) as e:
            s.send_message(big)
        assert getattr(e.value, "smtp_code", None) == 552 or "552" in str(e.value)
        s.rset()
        s.send_message(plain(subject="fits"))
    page = Api(catcher).json("/api/v1/messages", "/definitions/MessagesSummary")
    assert [m["Subject"] for m in page["messages"]] == ["fits"]


def _exchange(sock, f, line):
    sock.sendall(line.encode() + b"\r\n")
    reply = f.readline()
    while reply[3:4] == b"-":
        reply = f.readline()
    return int(reply[:3])


def test_garbage_commands_get_500_or_501_and_the_connection_stays_usable(catcher):
    host, port = catcher.addr("smtp").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        f = sock.makefile("rb")
        assert int(f.readline()[:3]) == 220
        assert _exchange(sock, f, "FROBNICATE now") == 500
        assert _exchange(sock, f, "\x00\x01garbage") == 500
        assert _exchange(sock, f, "EHLO") == 501
        assert _exchange(sock, f, "EHLO tests.local") == 250
        assert _exchange(sock, f, "MAIL FROM:<broken") == 501
        assert _exchange(sock, f, "RCPT TO:<a@b.c>") == 503
        assert _exchange(sock, f, "X" * 10_000) == 500
        assert _exchange(sock, f, "MAIL FROM:<a@example.com> SIZE=999999999") == 552
        assert _exchange(sock, f, "MAIL FROM:<a@example.com>") == 250
        assert _exchange(sock, f, "RCPT TO:<b@example.com>") == 250
        assert _exchange(sock, f, "DATA") == 354
        sock.sendall(b"Subject: after garbage\r\n\r\n..dot\r\n.\r\n")
        assert int(f.readline()[:3]) == 250
        assert _exchange(sock, f, "NOOP") == 250
        assert _exchange(sock, f, "QUIT") == 221
    page = Api(catcher).json("/api/v1/messages", "/definitions/MessagesSummary")
    assert [m["Subject"] for m in page["messages"]] == ["after garbage"]


def test_max_messages_prunes_the_oldest(mock_factory):
    m = mock_factory(["mailpit", "--port", "0", "--smtp-port", "0"], env={"MP_MAX_MESSAGES": "3"})
    with smtp(m, login=False) as s:
        for i in range(5):
            s.send_message(plain(subject=f"n{i}"))
    page = validate(requests.get(m.url("/api/v1/messages")).json(), "/definitions/MessagesSummary")
    assert [x["Subject"] for x in page["messages"]] == ["n4", "n3", "n2"]


def test_auth_refused_without_tls_unless_allowed(mock_factory):
    m = mock_factory(["mailpit", "--port", "0", "--smtp-port", "0"], env={"MP_SMTP_AUTH_ACCEPT_ANY": "1"})
    with smtp(m, login=False) as s:
        assert not s.has_extn("auth")
        code, _ = s.docmd("AUTH", "PLAIN AGEAYg==")
        assert code == 530


def test_starttls_then_auth(mock_factory, tls_files):
    m = mock_factory(
        ["mailpit", "--port", "0", "--smtp-port", "0", "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"]],
        env={"MP_SMTP_AUTH_ACCEPT_ANY": "1"},
    )
    host, port = m.addr("smtp").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=tls_files["ca"])
    with smtplib.SMTP(host, int(port), timeout=10) as s:
        s.ehlo("x")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        s.starttls(context=ctx)
        s.ehlo("x")
        assert s.has_extn("auth") and not s.has_extn("starttls")
        s.login("tls-user", "pw")
        s.send_message(plain(subject="over tls"))
    page = validate(requests.get(m.url("/api/v1/messages")).json(), "/definitions/MessagesSummary")
    assert page["messages"][0]["Subject"] == "over tls" and page["messages"][0]["Username"] == "tls-user"


def test_concurrent_smtp_and_http(mock_factory):
    m = mock_factory(["mailpit", "--port", "0", "--smtp-port", "0"], env={"MP_MAX_MESSAGES": "0"})
    errors = []
    stop = threading.Event()

    def sender(n):
        try:
            with smtp(m, login=False) as s:
                for i in range(25):
                    s.send_message(plain(subject=f"t{n}-{i}"))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    def reader():
        while not stop.is_set():
            try:
                validate(requests.get(m.url("/api/v1/messages?limit=10")).json(), "/definitions/MessagesSummary")
                r = requests.get(m.url("/api/v1/search"), params={"query": "t1"})
                r.raise_for_status()
                validate(r.json(), "/definitions/MessagesSummary")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in senders + readers:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    page = validate(requests.get(m.url("/api/v1/messages?limit=1000")).json(), "/definitions/MessagesSummary")
    assert page["total"] == 150
    assert len({x["ID"] for x in page["messages"]}) == 150


def test_bad_webroot_exits_2():
    from .mockproc import run_failing
    r = run_failing(["mailpit", "--port", "0", "--smtp-port", "0", "--bind", "127.0.0.1"], env={"MP_WEBROOT": "/bad root/"})
    assert r.returncode == 2 and "webroot" in r.stderr


def test_auth_flags_work_as_switches(mock_factory):
    m = mock_factory(["mailpit", "--port", "0", "--smtp-port", "0", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure"])
    with smtp(m, login=False) as s:
        assert s.has_extn("auth")
        s.login("switch-user", "pw")


def test_bad_boolean_env_exits_2():
    from .mockproc import run_failing
    r = run_failing(["mailpit", "--port", "0", "--smtp-port", "0", "--bind", "127.0.0.1"], env={"MP_SMTP_AUTH_ACCEPT_ANY": "maybe"})
    assert r.returncode == 2 and "MP_SMTP_AUTH_ACCEPT_ANY" in r.stderr or "maybe" in r.stderr
