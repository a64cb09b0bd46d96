

# --- Added by harness at build time; not in the app's own file (docs/deploy.md, "The write pause"). ---
# While a deploy changes the database (a schema migration, the one-time move to the shared
# layout), it creates <parent>/.<name>.harness/pause beside the app folder. Requests that may
# write (any method but GET, HEAD, OPTIONS) then get 503 with Retry-After instead of reaching
# the app; reads go on. The path is taken once, at import, from the path Passenger loaded this
# file by: a process that keeps running after a release switch still looks at the live folder.
def _harness_write_pause(app, entry_file):
    import os

    root = os.path.dirname(os.path.abspath(entry_file))
    parent, name = os.path.split(root)
    flag = os.path.join(parent, "." + name + ".harness", "pause")
    safe = ("GET", "HEAD", "OPTIONS")

    def paused(environ, start_response):
        if environ.get("REQUEST_METHOD", "GET") in safe:
            return app(environ, start_response)
        try:
            with open(flag, "rb") as fh:
                retry = fh.read(8).strip().decode("ascii", "replace")
        except OSError:
            return app(environ, start_response)
        if not retry.isdigit():
            retry = "15"
        body = ("Writes are paused while a deploy changes the database; retry after %s s.\n" % retry).encode()
        start_response("503 Service Unavailable", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Retry-After", retry),
            ("Cache-Control", "no-store"),
        ])
        return [body]

    return paused


if "application" in globals():
    application = _harness_write_pause(application, __file__)
