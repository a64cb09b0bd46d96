"""SMTP notifications. The database row (email_config) is the default; MAIL_* env vars win."""

from __future__ import annotations

import re
import smtplib
import sqlite3
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from . import envconf

ADDRESS_RE = re.compile(r"^[^@\s<>,;\"']+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$|^[^@\s<>,;\"']+@[A-Za-z0-9-]+$")


ENV_NAMES = ("MAIL_HOST", "MAIL_PORT", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_FROM",
             "MAIL_USE_TLS", "MAIL_NOTIFY_TO")


@dataclass(frozen=True)
class MailConfig:
    host: str | None
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    from_address: str
    notify_to: str


class MailError(Exception):
    pass


def load_config(conn: sqlite3.Connection, env: dict[str, str] | None = None) -> MailConfig:
    env = envconf.snapshot(ENV_NAMES) if env is None else env
    row = conn.execute(
        "SELECT host, port, username, password, use_tls, from_address, notify_to"
        " FROM email_config WHERE id = 1"
    ).fetchone()
    if row is None:
        config = MailConfig(None, 25, None, None, True, "noreply@localhost", "admin@localhost")
    else:
        config = MailConfig(row["host"], int(row["port"]), row["username"], row["password"],
                            bool(row["use_tls"]), row["from_address"], row["notify_to"])
    overrides: dict[str, object] = {}
    for name, field in (("MAIL_HOST", "host"), ("MAIL_USERNAME", "username"),
                        ("MAIL_PASSWORD", "password"), ("MAIL_FROM", "from_address"),
                        ("MAIL_NOTIFY_TO", "notify_to")):
        if env.get(name):
            overrides[field] = env[name]
    if env.get("MAIL_PORT"):
        try:
            overrides["port"] = int(env["MAIL_PORT"])
        except ValueError as exc:
            raise MailError(f"MAIL_PORT={env['MAIL_PORT']!r} is not a port number") from exc
    if env.get("MAIL_USE_TLS"):
        overrides["use_tls"] = env["MAIL_USE_TLS"].strip().lower() in {"1", "true", "yes", "on"}
    return replace(config, **overrides)  # type: ignore[arg-type]


def valid_address(address: str) -> bool:
    return bool(ADDRESS_RE.match(address))


def send(config: MailConfig, to: str, subject: str, body: str) -> str:
    """Send one plain-text mail; returns its Message-ID."""
    if not config.host:
        raise MailError("no mail host configured (email_config.host or MAIL_HOST)")
    if not valid_address(to):
        raise MailError(f"{to!r} is not a mail address")
    message = EmailMessage()
    message["From"] = config.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=config.from_address.rpartition("@")[2] or None)
    message.set_content(body)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=15) as smtp:
            if config.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"sending to {config.host}:{config.port} failed: {exc}") from exc
    return str(message["Message-ID"])
