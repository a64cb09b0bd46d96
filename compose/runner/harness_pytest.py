"""pytest plugin that `harness test` loads into the suite (`-p harness_pytest`).

It never changes what the suite does; it watches and writes down:

* /report/harness-session.json: how many tests were collected, how many ran, how many were
  deselected (by `-k`, `-m`, `--deselect`, `--lf`, or the `mocks` marker in a run without
  --with-mocks), and which options narrowed the collection (`--ignore`, ...). harness records
  a run as complete only when nothing was left out.
* /report/harness-tests.jsonl: one line per test with the JUnit names, the outcome, and the
  artifacts it left (pytest-playwright's, and harness_playwright's screenshots and traces for
  browsers the suite started itself), its start and end time, and what its pages reported
  (console errors, page errors, failed requests), so the HTML report can show them, and the
  app's log lines of that time, next to the failure.

It registers the `mocks` marker, and in a run without --with-mocks (HARNESS_WITH_MOCKS=0)
deselects those tests.
"""

from __future__ import annotations

import json
import os
import time

import pytest

import harness_playwright

REPORT_DIR = os.environ.get("HARNESS_REPORT_DIR", "/report")
ARTIFACTS = os.path.join(REPORT_DIR, "artifacts")
SIDECAR = os.path.join(REPORT_DIR, "harness-tests.jsonl")
SESSION = os.path.join(REPORT_DIR, "harness-session.json")

# Options that leave files or tests out without deselecting them one by one.
NARROWING = ("ignore", "ignore_glob", "deselect")


GO_FILE = os.path.join(REPORT_DIR, ".harness-go")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Holds the session until every service of the stack answers (harness creates the go
    file then). pytest, its plugins and the root conftest were imported meanwhile, while the app
    warmed up; sessionstart hooks, collection and the tests come after, as they would against
    a running server. First among the sessionstart hooks, so junitxml's clock starts after it."""
    while not os.path.exists(GO_FILE):
        time.sleep(0.02)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mocks: needs the mock services (harness test --with-mocks)"
    )
    harness_playwright.install()
    config.pluginmanager.register(_Recorder(config), "harness-recorder")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HARNESS_WITH_MOCKS", "1") == "0":
        keep, deselected = [], []
        for item in items:
            (deselected if item.get_closest_marker("mocks") else keep).append(item)
        if deselected:
            config.pluginmanager.get_plugin("harness-recorder").by_mocks += len(deselected)
            config.hook.pytest_deselected(items=deselected)
            items[:] = keep


def _files_under(root: str) -> set[str]:
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            found.add(os.path.join(dirpath, name))
    return found


def _junit_names(nodeid: str) -> tuple[str, str]:
    # The same mangling pytest's junitxml uses, so lines join with junit.xml's testcases.
    from _pytest.junitxml import mangle_test_address

    names = mangle_test_address(nodeid)
    return ".".join(names[:-1]), names[-1]


class _Recorder:
    def __init__(self, config):
        self.config = config
        self.before: dict[str, set[str]] = {}
        self.outcome: dict[str, str] = {}
        self.duration: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.deselected = 0
        self.by_mocks = 0
        self.collected = 0
        self.ran = 0

    def _narrowing(self) -> list[str]:
        found = []
        for name in NARROWING:
            for value in self.config.getoption(name, default=None) or []:
                found.append(f"--{name.replace('_', '-')}={value}")
        return found

    def _write_session(self, exitstatus=None) -> None:
        with open(SESSION, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "collected": self.collected,
                    "ran": self.ran,
                    "deselected": self.deselected,
                    "deselected_by_mocks": self.by_mocks,
                    "narrowing": self._narrowing(),
                    "exitstatus": exitstatus,
                    "pytest": pytest.__version__,
                },
                f,
            )

    def pytest_deselected(self, items):
        self.deselected += len(items)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self.collected = len(session.items)
        self._write_session()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid, location):
        self.before[nodeid] = _files_under(ARTIFACTS)
        self.started[nodeid] = time.time()
        self.outcome[nodeid] = "passed"
        self.duration[nodeid] = 0.0
        harness_playwright.test_started()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed and report.when in ("setup", "call"):
            # The pages are still open: the test's fixtures have not torn down yet.
            harness_playwright.capture_failure(ARTIFACTS, item.nodeid)
        return report

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        self.duration[nodeid] = self.duration.get(nodeid, 0.0) + report.duration
        if report.failed:
            self.outcome[nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped and self.outcome.get(nodeid) == "passed":
            self.outcome[nodeid] = "skipped"

    def pytest_runtest_logfinish(self, nodeid, location):
        self.ran += 1
        outcome = self.outcome.pop(nodeid, "passed")
        harness_playwright.test_finished(ARTIFACTS, nodeid, outcome in ("failed", "error"))
        # pytest-playwright saves its trace and failure screenshot while the `context` fixture
        # tears down, which is over by now; tests run one at a time, so what appeared under
        # artifacts/ since the test started is this test's.
        new = sorted(_files_under(ARTIFACTS) - self.before.pop(nodeid, set()))
        classname, name = _junit_names(nodeid)
        line = {
            "nodeid": nodeid,
            "classname": classname,
            "name": name,
            "outcome": outcome,
            "duration": round(self.duration.pop(nodeid, 0.0), 3),
            "artifacts": [os.path.relpath(p, REPORT_DIR) for p in new],
            "started_at": self.started.pop(nodeid, None),
            "finished_at": time.time(),
            "browser": harness_playwright.take_browser_events(),
        }
        with open(SIDECAR, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self._write_session(int(exitstatus))
