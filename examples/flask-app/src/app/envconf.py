"""Where the integrations read their settings.

Under Apache, Passenger hands `SetEnv` values to the app as OS environment variables at
spawn time and also in each request's WSGI environ; a variable added later may only be in
the latter. So the OS environment wins, and the request environ fills the gaps."""

from __future__ import annotations

import os

from flask import has_request_context, request


def lookup(name: str) -> str:
    value = os.environ.get(name)
    if value is None and has_request_context():
        candidate = request.environ.get(name)
        if isinstance(candidate, str):
            value = candidate
    return (value or "").strip()


def snapshot(names: tuple[str, ...]) -> dict[str, str]:
    return {name: value for name in names if (value := lookup(name))}
