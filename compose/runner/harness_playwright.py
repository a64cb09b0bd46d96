"""What the playwright job adds to Playwright itself, for suites that drive their own browser.

Imported by the harness pytest plugin before any test module, it patches Playwright's
implementation classes, below both the sync and the async API, so it sees every browser the
suite starts, however it starts it:

* ``chromium.launch()`` and ``launch_persistent_context()`` with no ``executable_path`` get the
  image's Chromium (Debian's, whose NSS database trusts the run's CA) and ``--no-sandbox``
  (a container has no user namespaces for Chromium's sandbox). Playwright would otherwise look
  for a browser it downloaded, and ``playwright install`` never runs here. ``channel=``,
  ``firefox`` and ``webkit`` fail with one line that says what the image has.
* Every browser context, launched or connected (``chromium.connect(ws)``), is recorded: a
  trace per test, kept only when the test fails, and a screenshot of each open page at the
  failure, written beside pytest-playwright's artifacts so the report shows them. Its pages'
  console errors, uncaught errors and failed requests are noted per test.

Tracing a context the suite traces itself still works: its ``tracing.start()`` becomes a no-op
on the recording that already runs, and its ``tracing.stop(path=...)`` saves that recording to
its path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import weakref

CHROMIUM = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")

# Contexts being recorded; weak, so a context the suite dropped is not kept alive by us.
_contexts: "weakref.WeakSet" = weakref.WeakSet()
# Traces of contexts that closed during the current test: kept if it fails.
_pending: list[str] = []
_pending_dir = os.path.join(tempfile.gettempdir(), "harness-pending")
_counter = [0]
_installed = [False]


def _chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or CHROMIUM
    except OSError:
        return CHROMIUM


def _fail(message: str):
    from playwright._impl._errors import Error

    return Error(message)


def _launch_defaults(browser_type, params: dict) -> None:
    """Fills in the image's Chromium, or refuses what the image cannot give."""
    name = browser_type.name
    if name != "chromium":
        raise _fail(
            f"harness: this job has only Chromium ({_chromium_version()} at {CHROMIUM}); "
            f"{name} is not installed. Use playwright.chromium."
        )
    channel = params.get("channel")
    if channel:
        raise _fail(
            f"harness: channel={channel!r} is not available in this job; it has Debian's "
            f"Chromium only ({_chromium_version()} at {CHROMIUM}). Drop channel= to use it."
        )
    if not params.get("executablePath"):
        params["executablePath"] = CHROMIUM
        args = list(params.get("args") or [])
        if "--no-sandbox" not in args:
            args.append("--no-sandbox")
        params["args"] = args


def _next_name(kind: str, ext: str) -> str:
    _counter[0] += 1
    return f"harness-{kind}-{_counter[0]}.{ext}"


def _free_path(out_dir: str, stem: str, ext: str) -> str:
    """`trace.zip`, then `trace-2.zip`, ...: the first keeps the name Playwright's tools know."""
    n = 1
    while True:
        name = f"{stem}.{ext}" if n == 1 else f"{stem}-{n}.{ext}"
        path = os.path.join(out_dir, name)
        if not os.path.exists(path):
            return path
        n += 1


# What the current test's pages reported; emptied when a test starts (`test_started`).
_browser_events: list[dict] = []
# Per test: enough to explain a failure, not a log of a chatty page.
MAX_EVENTS = 50
MAX_TEXT = 2000


def _note(kind: str, text: str, url: str) -> None:
    if len(_browser_events) < MAX_EVENTS:
        _browser_events.append({"kind": kind, "text": (text or "")[:MAX_TEXT], "url": url or ""})


def _page_url(page) -> str:
    try:
        return page.url if page is not None else ""
    except Exception:
        return ""


def _on_console(message) -> None:
    try:
        if message.type != "error":
            return
        location = message.location or {}
        url = location.get("url") or _page_url(message.page)
        _note("console.error", message.text, url)
    except Exception:
        pass


def _on_web_error(web_error) -> None:
    try:
        error = web_error.error
        text = getattr(error, "message", None) or str(error)
        _note("pageerror", text, _page_url(web_error.page))
    except Exception:
        pass


def _on_request_failed(request) -> None:
    try:
        _note("requestfailed", f"{request.method} {request.url}: {request.failure}", request.url)
    except Exception:
        pass


def _listen(context) -> None:
    """Listens for what the context's pages report, once per context. Implementation objects
    emit the same events the public API does (console messages subscribe on first listener)."""
    if getattr(context, "_harness_listening", False):
        return
    context._harness_listening = True
    try:
        context.on("console", _on_console)
        context.on("weberror", _on_web_error)
        context.on("requestfailed", _on_request_failed)
    except Exception:
        pass


def take_browser_events() -> list[dict]:
    events = list(_browser_events)
    _browser_events.clear()
    return events


async def _record(context) -> None:
    """Starts the trace of a new context and listens to its pages. A context someone already
    traces is left to them."""
    _listen(context)
    tracing = context.tracing
    try:
        await _ORIG["tracing_start"](tracing, screenshots=True, snapshots=True, sources=False)
    except Exception:
        return
    tracing._harness_active = True
    tracing._harness_user = False
    _contexts.add(context)


async def _save_pending(context) -> None:
    """Stops the trace of a context that is about to close; the current test decides on it."""
    tracing = context.tracing
    if not getattr(tracing, "_harness_active", False):
        return
    tracing._harness_active = False
    _contexts.discard(context)
    if getattr(tracing, "_harness_captured", False):
        # The failure's trace was saved when it happened; the teardown after it adds nothing.
        try:
            await _ORIG["tracing_stop"](tracing)
        except Exception:
            pass
        return
    os.makedirs(_pending_dir, exist_ok=True)
    path = os.path.join(_pending_dir, _next_name("trace", "zip"))
    try:
        await _ORIG["tracing_stop"](tracing, path=path)
        _pending.append(path)
    except Exception:
        pass


_ORIG: dict = {}


def install() -> bool:
    """Patches Playwright once; False when Playwright is not importable."""
    if _installed[0]:
        return True
    try:
        from playwright._impl import _browser, _browser_context, _browser_type, _tracing
    except ImportError:
        return False
    BT = _browser_type.BrowserType
    B = _browser.Browser
    C = _browser_context.BrowserContext
    T = _tracing.Tracing
    _ORIG.update(
        launch=BT.launch,
        launch_persistent_context=BT.launch_persistent_context,
        new_context=B.new_context,
        browser_close=B.close,
        context_close=C.close,
        tracing_start=T.start,
        tracing_stop=T.stop,
        tracing_start_chunk=T.start_chunk,
        tracing_stop_chunk=T.stop_chunk,
    )

    async def launch(self, **params):
        _launch_defaults(self, params)
        return await _ORIG["launch"](self, **params)

    async def launch_persistent_context(self, userDataDir, **params):
        _launch_defaults(self, params)
        context = await _ORIG["launch_persistent_context"](self, userDataDir, **params)
        await _record(context)
        return context

    async def new_context(self, *args, **params):
        context = await _ORIG["new_context"](self, *args, **params)
        await _record(context)
        return context

    async def browser_close(self, *args, **params):
        for context in list(self.contexts):
            await _save_pending(context)
        return await _ORIG["browser_close"](self, *args, **params)

    async def context_close(self, *args, **params):
        if not self.is_closed():
            await _save_pending(self)
        return await _ORIG["context_close"](self, *args, **params)

    async def tracing_start(self, *args, **params):
        if getattr(self, "_harness_active", False):
            # Already recording (with screenshots and snapshots); the suite's own stop() will
            # save what was recorded.
            self._harness_user = True
            return None
        return await _ORIG["tracing_start"](self, *args, **params)

    async def tracing_stop(self, *args, **params):
        if getattr(self, "_harness_active", False):
            path = params.get("path", args[0] if args else None)
            if getattr(self, "_harness_user", False):
                self._harness_user = False
                await _ORIG["tracing_stop_chunk"](self, path=path)
                await _ORIG["tracing_start_chunk"](self)
            return None
        return await _ORIG["tracing_stop"](self, *args, **params)

    BT.launch = launch
    BT.launch_persistent_context = launch_persistent_context
    B.new_context = new_context
    B.close = browser_close
    C.close = context_close
    T.start = tracing_start
    T.stop = tracing_stop
    _installed[0] = True
    return True


def _run(impl, coro):
    """Runs an implementation coroutine to its end from plain (pytest hook) code, on the loop
    the object belongs to: the sync API's dispatcher, or the async API's event loop, which is
    idle between a test's steps."""
    if getattr(impl._connection, "_is_sync", False):
        from playwright._impl._sync_base import mapping

        return mapping.from_impl(impl)._sync(coro)
    loop = impl._loop
    if loop.is_closed() or loop.is_running():
        coro.close()
        raise RuntimeError("the event loop of this browser is closed or busy")
    return loop.run_until_complete(coro)


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-")[:120]


def _live_contexts() -> list:
    return [c for c in list(_contexts) if not c.is_closed()]


def test_started() -> None:
    """A fresh trace chunk for each context that outlives tests, so a kept trace shows this test
    only; traces left over from earlier tests are dropped."""
    for path in _pending:
        _remove(path)
    _pending.clear()
    _browser_events.clear()
    for context in _live_contexts():
        tracing = context.tracing
        tracing._harness_captured = False
        try:
            _run(context, _ORIG["tracing_stop_chunk"](tracing))
            _run(context, _ORIG["tracing_start_chunk"](tracing))
        except Exception:
            pass


def capture_failure(artifacts: str, nodeid: str) -> list[str]:
    """At a failure: a screenshot of every open page and the trace so far of every live
    context, into ``artifacts/<test>/``. Returns the files written."""
    out_dir = os.path.join(artifacts, _slug(nodeid))
    written: list[str] = []
    for context in _live_contexts():
        for page in list(context.pages):
            if page.is_closed():
                continue
            try:
                os.makedirs(out_dir, exist_ok=True)
                path = _free_path(out_dir, "page", "png")
                _run(page, page.screenshot(path=path, timeout=5000))
                written.append(path)
            except Exception:
                pass
        tracing = context.tracing
        if getattr(tracing, "_harness_active", False):
            try:
                os.makedirs(out_dir, exist_ok=True)
                path = _free_path(out_dir, "trace", "zip")
                _run(context, _ORIG["tracing_stop_chunk"](tracing, path=path))
                _run(context, _ORIG["tracing_start_chunk"](tracing))
                tracing._harness_captured = True
                written.append(path)
            except Exception:
                pass
    return written


def test_finished(artifacts: str, nodeid: str, failed: bool) -> list[str]:
    """Keeps the traces of contexts that closed during a failed test; drops them otherwise."""
    kept: list[str] = []
    out_dir = os.path.join(artifacts, _slug(nodeid))
    for path in _pending:
        if failed and os.path.exists(path):
            os.makedirs(out_dir, exist_ok=True)
            dest = _free_path(out_dir, "trace", "zip")
            shutil.move(path, dest)
            kept.append(dest)
        else:
            _remove(path)
    _pending.clear()
    return kept


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
