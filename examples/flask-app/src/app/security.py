"""Session login for the admin UI, CSRF for its forms, bearer tokens for the JSON API."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from typing import Any, Callable

from flask import abort, g, jsonify, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from . import db

# Same scheme as the harness's `{{NAME|werkzeug}}` placeholder, and no dependency on
# hashlib.scrypt, which some hosting Pythons are built without.
PASSWORD_METHOD = "pbkdf2:sha256:600000"
MIN_PASSWORD_LENGTH = 12
TOKEN_RE = re.compile(r"^naf_([A-Za-z0-9]{16})_[A-Za-z0-9]{64}$")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


def password_problems(username: str, current: str, new: str, confirm: str) -> list[str]:
    problems = []
    if len(new) < MIN_PASSWORD_LENGTH:
        problems.append(f"The new password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if new != confirm:
        problems.append("The two new passwords differ.")
    if new == current:
        problems.append("The new password must differ from the current one.")
    if new.strip().lower() == username.lower():
        problems.append("The new password must not be the user name.")
    if new and (new != new.strip() or any(ord(c) < 32 for c in new)):
        problems.append("The new password must not contain control characters or edge spaces.")
    return problems


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form expired or was not sent by this site. Reload and retry.")


def current_user() -> Any:
    user_id = session.get("user_id")
    if user_id is None:
        return None
    if "user" not in g:
        g.user = db.get().execute(
            "SELECT id, username, password_hash, is_admin, must_change_password,"
            " password_changed_at FROM users WHERE id = ?",
            (user_id,),
        ).fetchone()
    return g.user


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        if user["must_change_password"]:
            return redirect(url_for("admin.change_password"))
        if not user["is_admin"]:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """`Authorization: Bearer naf_<alias>_<secret>`, checked against api_clients.token_sha256."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        match = TOKEN_RE.match(token)
        client = None
        if scheme.lower() == "bearer" and match:
            row = db.get().execute(
                "SELECT client_id, token_sha256 FROM api_clients WHERE alias = ?", (match[1],)
            ).fetchone()
            digest = hashlib.sha256(token.encode()).hexdigest()
            if row is not None and hmac.compare_digest(row["token_sha256"], digest):
                client = row["client_id"]
        if client is None:
            response = jsonify(error="unauthorized", detail="send Authorization: Bearer naf_...")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        g.api_client = client
        return view(*args, **kwargs)

    return wrapped
