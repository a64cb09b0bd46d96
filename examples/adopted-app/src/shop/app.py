"""The Flask application factory."""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import bcrypt
from flask import Flask, abort, flash, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import select

from . import __version__, services, tokens
from .models import ApiToken, ContactMessage, DnsChange, Note, User, get_setting, make_session_factory


def load_build_info() -> dict:
    """build_info.json as the old build script left it in this package's folder; {} in a checkout."""
    try:
        return json.loads(Path(__file__).with_name("build_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def create_app(app_root: str | None = None) -> Flask:
    root = Path(app_root or Path(__file__).resolve().parents[2])
    app = Flask(__name__)
    db_path = os.environ.get("SHOP_DB_PATH") or str(root / "shop.db")
    if not os.path.exists(db_path):
        raise RuntimeError(f"the database {db_path} does not exist; run the seed")
    sessions = make_session_factory(db_path)
    with sessions() as s:
        app.secret_key = get_setting(s, "SECRET_KEY")
    app.config.update(SESSION_COOKIE_SECURE=os.environ.get("SHOP_ENV") != "test",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    build = load_build_info()
    logging.basicConfig(filename=str(root / "shop.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("shop")

    @app.before_request
    def _open_session():
        g.db = sessions()

    @app.teardown_request
    def _close_session(exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.context_processor
    def _globals():
        return {"build": build, "version": __version__, "user": session.get("user")}

    def login_required(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not session.get("user"):
                return redirect(url_for("login", next=request.path))
            return view(*args, **kwargs)
        return wrapped

    def api_client() -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        alias = tokens.parse(token)
        if alias is None:
            abort(401)
        row = g.db.scalars(select(ApiToken).where(ApiToken.alias == alias)).first()
        if row is None or row.token_sha256 != tokens.digest(token):
            abort(401)
        return alias

    @app.errorhandler(401)
    def _unauthorized(_e):
        return jsonify(error="unauthorized"), 401

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.get("/")
    def index():
        return render_template("index.html")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "POST":
            user = g.db.scalars(select(User).where(User.username == request.form.get("username", ""))).first()
            password = request.form.get("password", "").encode()
            if user and bcrypt.checkpw(password, user.password_hash.encode()):
                session.clear()
                session["user"] = user.username
                log.info("login %s", user.username)
                return redirect(request.args.get("next") or url_for("dashboard"))
            flash("Wrong username or password.", "error")
            return render_template("login.html"), 401
        return render_template("login.html")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("index"))

    @app.get("/admin")
    @login_required
    def dashboard():
        messages = g.db.scalars(select(ContactMessage).order_by(ContactMessage.id.desc()).limit(10)).all()
        clients = g.db.scalars(select(ApiToken)).all()
        return render_template("dashboard.html", messages=messages, clients=clients)

    @app.route("/contact", methods=["GET", "POST"])
    def contact():
        if request.method == "POST":
            email = request.form.get("email", "").strip()
            subject = request.form.get("subject", "").strip()
            body = request.form.get("body", "").strip()
            if "@" not in email or not subject:
                flash("Please give your e-mail address and a subject.", "error")
                return render_template("contact.html"), 400
            g.db.add(ContactMessage(email=email, subject=subject, body=body))
            g.db.commit()
            admin = g.db.scalars(select(User).where(User.is_admin.is_(True))).first()
            try:
                services.send_mail(admin.email, f"[shop] {subject}", f"From: {email}\n\n{body}")
            except services.ServiceError as exc:
                log.error("contact mail: %s", exc)
                flash("Your message was saved, but the notification failed.", "error")
                return render_template("contact.html"), 502
            flash("Thank you, we will get back to you.", "info")
            return redirect(url_for("contact"))
        return render_template("contact.html")

    @app.route("/admin/dns", methods=["GET", "POST"])
    @login_required
    def dns():
        zone = os.environ.get("SHOP_DNS_ZONE", "shop.example")
        if request.method == "POST":
            hostname = request.form.get("hostname", "").strip()
            rtype = request.form.get("type", "A").strip().upper()
            destination = request.form.get("destination", "").strip()
            try:
                services.Netcup().set_record(zone, hostname, rtype, destination)
                result = "ok"
                flash(f"{hostname}.{zone} {rtype} {destination} saved.", "info")
            except services.ServiceError as exc:
                result = str(exc)[:200]
                flash(f"DNS update failed: {exc}", "error")
            g.db.add(DnsChange(zone=zone, hostname=hostname, type=rtype, destination=destination, result=result))
            g.db.commit()
            return redirect(url_for("dns"))
        changes = g.db.scalars(select(DnsChange).order_by(DnsChange.id.desc()).limit(20)).all()
        return render_template("dns.html", zone=zone, changes=changes)

    @app.get("/admin/geo")
    @login_required
    def geo():
        ip = request.args.get("ip", "").strip()
        answer, error = None, None
        if ip:
            try:
                answer = services.country_of(ip)
            except services.ServiceError as exc:
                error = str(exc)
        return render_template("geo.html", ip=ip, answer=answer, error=error)

    @app.get("/api/v1/whoami")
    def whoami():
        return jsonify(client=api_client())

    @app.post("/api/v1/notes")
    def add_note():
        alias = api_client()
        text = (request.get_json(silent=True) or {}).get("text", "")
        if not isinstance(text, str) or not text.strip():
            return jsonify(error="text is required"), 400
        note = Note(token_alias=alias, text=text.strip())
        g.db.add(note)
        g.db.commit()
        return jsonify(id=note.id, text=note.text), 201

    return app
