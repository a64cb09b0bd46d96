"""Passenger entry point of the shop: exposes `application`.

vendor/ and src/ go first on sys.path, so the server's own site-packages cannot shadow a vendored
version. If the app cannot start, every path answers 500 and the traceback goes to shop.log.
"""

import os
import sys
import traceback

APP_ROOT = os.path.dirname(os.path.abspath(__file__))

for _entry in (os.path.join(APP_ROOT, "src"), os.path.join(APP_ROOT, "vendor")):
    while _entry in sys.path:
        sys.path.remove(_entry)
    sys.path.insert(0, _entry)


def _failed(environ, start_response):
    body = b"Internal Server Error: the shop failed to start; see shop.log.\n"
    start_response("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8"),
                                                 ("Content-Length", str(len(body)))])
    return [body]


try:
    from shop.app import create_app

    application = create_app(app_root=APP_ROOT)
except Exception:
    text = traceback.format_exc()
    try:
        with open(os.path.join(APP_ROOT, "shop.log"), "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        pass
    sys.stderr.write(text)
    application = _failed
