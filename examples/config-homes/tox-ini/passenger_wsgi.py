"""The smallest app a run needs: /health answers 200."""


def application(environ, start_response):
    body = b'{"status": "ok"}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
