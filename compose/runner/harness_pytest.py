"""pytest plugin that `harness test` loads into the suite (`-p harness_pytest`).

It registers the `mocks` marker for tests that need the mock services and, in a run without
--with-mocks (HARNESS_WITH_MOCKS=0), deselects them, counting them in
/report/harness-session.json so the ledger can record the run as partial. It also writes
/report/harness-tests.jsonl: one line per test with the JUnit names, the outcome, and the
artifacts pytest-playwright left for it (the failure screenshot and the trace), so the HTML
report can show them next to the failure.
"""

from __future__ import annotations

import json
import os
import time

import pytest

REPORT_DIR = os.environ.get("HARNESS_REPORT_DIR", "/report")
ARTIFACTS = os.path.join(REPORT_DIR, "artifacts")
SIDECAR = os.path.join(REPORT_DIR, "harness-tests.jsonl")
SESSION = os.path.join(REPORT_DIR, "harness-session.json")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mocks: needs the mock services (harness test --with-mocks)"
    )


def pytest_collection_modifyitems(config, items):
    deselected = []
    if os.environ.get("HARNESS_WITH_MOCKS", "1") == "0":
        keep = []
        for item in items:
            (deselected if item.get_closest_marker("mocks") else keep).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = keep
    with open(SESSION, "w", encoding="utf-8") as f:
        json.dump({"deselected_by_mocks": len(deselected)}, f)


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
    def __init__(self):
        self.before: dict[str, set[str]] = {}
        self.outcome: dict[str, str] = {}
        self.duration: dict[str, float] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid, location):
        self.before[nodeid] = _files_under(ARTIFACTS)
        self.outcome[nodeid] = "passed"
        self.duration[nodeid] = 0.0

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        self.duration[nodeid] = self.duration.get(nodeid, 0.0) + report.duration
        if report.failed:
            self.outcome[nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped and self.outcome.get(nodeid) == "passed":
            self.outcome[nodeid] = "skipped"

    def pytest_runtest_logfinish(self, nodeid, location):
        # pytest-playwright saves the trace and the failure screenshot while the `context`
        # fixture tears down, which is over by now; tests run one at a time, so what appeared
        # under artifacts/ since the test started is this test's.
        new = sorted(_files_under(ARTIFACTS) - self.before.pop(nodeid, set()))
        classname, name = _junit_names(nodeid)
        line = {
            "nodeid": nodeid,
            "classname": classname,
            "name": name,
            "outcome": self.outcome.pop(nodeid, "passed"),
            "duration": round(self.duration.pop(nodeid, 0.0), 3),
            "artifacts": [os.path.relpath(p, REPORT_DIR) for p in new],
            "finished_at": time.time(),
        }
        with open(SIDECAR, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def pytest_sessionstart(session):
    session.config.pluginmanager.register(_Recorder(), "harness-recorder")
