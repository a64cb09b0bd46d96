"""Passenger entry point: exposes `application`.

If the app cannot start, it still exposes a WSGI app, one that answers 500 on every path,
with the traceback in <app_root>/app.log. A health probe therefore fails loudly instead of
Passenger showing its own error page, and the readiness check must insist on 2xx.
"""

import os
import sys
import traceback
from datetime import datetime, timezone

APP_ROOT = os.path.dirname(os.path.abspath(__file__))

# Wheels unpacked for the target come first, then the app's own code; both before the
# system site-packages, so the host's Python cannot shadow a vendored version.
for _entry in (os.path.join(APP_ROOT, "src"), os.path.join(APP_ROOT, "vendor")):
    while _entry in sys.path:
        sys.path.remove(_entry)
    sys.path.insert(0, _entry)

STARTUP_ERROR = None


def _log_startup_failure(text):
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} CRITICAL passenger_wsgi: application failed to start\n{text}"
    try:
        with open(os.path.join(APP_ROOT, "app.log"), "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:
        pass
    # Passenger copies stderr into the web server's error log: a second place to look.
    sys.stderr.write(line)


def _startup_failed(environ, start_response):
    body = b"Internal Server Error: the application failed to start; see app.log.\n"
    start_response("500 Internal Server Error", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ])
    return [body]


try:
    from app import create_app

    application = create_app(app_root=APP_ROOT)
except (Exception, SystemExit):
    STARTUP_ERROR = traceback.format_exc()
    _log_startup_failure(STARTUP_ERROR)
    application = _startup_failed
