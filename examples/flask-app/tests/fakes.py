"""Small in-test servers on 127.0.0.1 for the app's outbound protocols. They check the app's
own logic (retry, record selection, what is sent); the real mocks are exercised by the
browser suite in ui_tests/."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeNetcup:
    """Netcup CCP envelope and record semantics (contracts.md §2), with 4001 injection."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = [
            {"id": "1", "hostname": "www", "type": "A", "priority": "0",
             "destination": "192.0.2.1", "deleterecord": False, "state": "yes"},
            {"id": "2", "hostname": "mail", "type": "MX", "priority": "10",
             "destination": "mx.example.org", "deleterecord": False, "state": "yes"},
        ]
        self.sessions: set[str] = set()
        self.journal: list[dict[str, Any]] = []
        self.fail_next_with_4001 = 0
        self.next_id = 3
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length))
                fake.journal.append({"path": self.path, **request})
                body = json.dumps(fake.handle(request)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/run/webservice/servers/endpoint.php?JSON"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def envelope(action: str, statuscode: int, data: Any = "") -> dict[str, Any]:
        ok = statuscode == 2000
        return {"serverrequestid": "srv", "clientrequestid": "", "action": action,
                "status": "success" if ok else "error", "statuscode": statuscode,
                "shortmessage": "ok" if ok else "failed", "longmessage": "",
                "responsedata": data if ok else ""}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        action, param = request.get("action", ""), request.get("param", {})
        if action == "login":
            if param.get("apipassword") != "api-password":
                return self.envelope(action, 4013)
            session = f"session-{len(self.sessions) + 1}"
            self.sessions.add(session)
            return self.envelope(action, 2000, {"apisessionid": session})
        if param.get("apisessionid") not in self.sessions:
            return self.envelope(action, 4001)
        if self.fail_next_with_4001 and action != "logout":
            self.fail_next_with_4001 -= 1
            self.sessions.discard(param["apisessionid"])
            return self.envelope(action, 4001)
        if action == "logout":
            self.sessions.discard(param["apisessionid"])
            return self.envelope(action, 2000)
        if action == "infoDnsRecords":
            return self.envelope(action, 2000, {"dnsrecords": self.records})
        if action == "updateDnsRecords":
            for record in param["dnsrecordset"]["dnsrecords"]:
                if "id" in record:
                    current = next(r for r in self.records if r["id"] == record["id"])
                    current.update({k: v for k, v in record.items() if k != "deleterecord"})
                else:
                    self.records.append({**record, "id": str(self.next_id), "state": "yes"})
                    self.next_id += 1
            return self.envelope(action, 2000, {"dnsrecords": self.records})
        return self.envelope(action, 4013)


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self.wfile.write(b"220 sink ESMTP\r\n")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-sink\r\n250 SIZE 1000000\r\n")
            elif verb == "MAIL":
                sender = command.split(":", 1)[1].strip()
                self.wfile.write(b"250 ok\r\n")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip())
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                sink.messages.append({"from": sender, "to": recipients, "data": data.decode()})
                sender, recipients = "", []
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class SmtpSink:
    """Plain SMTP without TLS or AUTH, as the local target's Mailpit is configured."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.sink = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_tls_certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    import subprocess
    from pathlib import Path

    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


class FakeGeoIP:
    """GeoIP2 web service country endpoint over HTTPS (contracts.md §3)."""

    COUNTRY_TYPE = "application/vnd.maxmind.com-country+json; charset=UTF-8; version=2.1"
    ERROR_TYPE = "application/vnd.maxmind.com-error+json; charset=UTF-8; version=2.1"
    KNOWN = {"81.2.69.160": ("GB", "United Kingdom", "EU", False, "81.2.69.160/27")}

    def __init__(self, cert: str, key: str, account: str = "42", license_key: str = "lic") -> None:
        import base64
        import ssl

        self.requests: list[str] = []
        expected = "Basic " + base64.b64encode(f"{account}:{license_key}".encode()).decode()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                prefix = "/geoip/v2.1/country/"
                if self.headers.get("Authorization") != expected:
                    return self.reply(401, fake.ERROR_TYPE, {"code": "AUTHORIZATION_INVALID",
                                                              "error": "bad account"})
                if not self.path.startswith(prefix):
                    return self.reply(404, fake.ERROR_TYPE, {"code": "NOT_FOUND", "error": "no"})
                ip = self.path[len(prefix):]
                if ip not in fake.KNOWN:
                    return self.reply(404, fake.ERROR_TYPE, {
                        "code": "IP_ADDRESS_NOT_FOUND", "error": f"{ip} not found"})
                iso, name, continent, eu, network = fake.KNOWN[ip]
                return self.reply(200, fake.COUNTRY_TYPE, {
                    "continent": {"code": continent, "geoname_id": 6255148, "names": {"en": "Europe"}},
                    "country": {"geoname_id": 2635167, "iso_code": iso, "names": {"en": name}},
                    "registered_country": {"geoname_id": 2635167, "iso_code": iso,
                                           "names": {"en": name}, "is_in_european_union": eu},
                    "maxmind": {"queries_remaining": 999},
                    "traits": {"ip_address": ip, "network": network},
                })

            def reply(self, status: int, content_type: str, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
