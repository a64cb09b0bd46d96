"""Example Flask app in the shape of the reference project (see ../../README.md)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import db

# src/app/__init__.py -> the app root is two levels up, both in the repository and in deploy.zip.
DEFAULT_APP_ROOT = Path(__file__).resolve().parents[2]
_LOG_HANDLER_MARK = "_harness_example_handler"


def create_app(app_root: str | os.PathLike[str] | None = None, db_path: str | None = None) -> Flask:
    root = Path(app_root) if app_root is not None else DEFAULT_APP_ROOT
    app = Flask(__name__)
    app.config["APP_ROOT"] = str(root)
    app.config["DB_PATH"] = db_path or os.environ.get("APP_DB_PATH") or str(root / "app.db")
    app.config["DEPLOYMENT_TARGET"] = os.environ.get("DEPLOYMENT_TARGET", "local")
    _configure_logging(app, root / "app.log")

    app.config["SECRET_KEY"] = _secret_key(app)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=_env_flag(
            "SESSION_COOKIE_SECURE", app.config["DEPLOYMENT_TARGET"] == "webhosting"
        ),
    )

    # nginx in front sets exactly one hop of X-Forwarded-*; trusting more would let a
    # client spoof its address.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]

    from . import admin, api, public

    app.register_blueprint(public.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.teardown_appcontext(db.close_request_connection)

    app.logger.info(
        "started target=%s db=%s", app.config["DEPLOYMENT_TARGET"], app.config["DB_PATH"]
    )
    return app


def _secret_key(app: Flask) -> str:
    """The settings table wins over the environment, as in the reference project."""
    try:
        stored = db.read_setting(app.config["DB_PATH"], "secret_key")
    except db.DatabaseUnavailable as exc:
        app.logger.error("cannot read secret_key from the database: %s", exc)
        stored = None
    if isinstance(stored, str) and stored:
        return stored
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    # Sessions will not survive a restart or span processes; say so instead of failing.
    app.logger.warning("no secret_key in settings or SECRET_KEY env; using a random key")
    return secrets.token_hex(32)


def _configure_logging(app: Flask, log_path: Path) -> None:
    # Flask's logger is named after the import name, so "app.*" module loggers share it.
    logger = logging.getLogger("app")
    for handler in list(logger.handlers):
        if getattr(handler, _LOG_HANDLER_MARK, False):
            logger.removeHandler(handler)
            handler.close()
    handler: logging.Handler
    try:
        handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()  # Passenger forwards stderr to the web server log.
    setattr(handler, _LOG_HANDLER_MARK, True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}
