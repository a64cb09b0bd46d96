"""passenger_wsgi.py is imported in a fresh interpreter, as Passenger does, from a copy of
the package layout in a temp dir."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import PROJECT, build_database

PROBE = textwrap.dedent("""
    import json, sys
    from wsgiref.util import setup_testing_defaults
    import passenger_wsgi

    answers = {}
    for path in ("/", "/health", "/admin/login", "/version"):
        environ = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        status = []
        body = b"".join(passenger_wsgi.application(environ, lambda s, h, e=None: status.append(s)))
        answers[path] = [status[0], body.decode("utf-8", "replace")]
    print(json.dumps({
        "answers": answers,
        "startup_error": passenger_wsgi.STARTUP_ERROR,
        "path": sys.path[:2],
    }))
""")


def make_package(root: Path, broken_init: str | None = None) -> None:
    shutil.copy(PROJECT / "passenger_wsgi.py", root / "passenger_wsgi.py")
    shutil.copytree(PROJECT / "src", root / "src",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "vendor").mkdir()
    if broken_init is not None:
        (root / "src" / "app" / "__init__.py").write_text(broken_init)


def run_probe(root: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_good_package_serves_and_puts_vendor_then_src_first(tmp_path):
    make_package(tmp_path)
    build_database(tmp_path / "app.db")
    (tmp_path / "build_info.json").write_text(json.dumps({"build_id": "pkg-123"}))
    seen = run_probe(tmp_path)
    assert seen["startup_error"] is None
    assert seen["path"] == [str(tmp_path / "vendor"), str(tmp_path / "src")]
    assert seen["answers"]["/health"][0].startswith("200")
    assert seen["answers"]["/admin/login"][0].startswith("200")
    assert json.loads(seen["answers"]["/version"][1])["build_id"] == "pkg-123"


def test_import_error_gives_500_everywhere_and_logs_traceback(tmp_path):
    make_package(tmp_path, broken_init="import module_that_does_not_exist_xyz\n")
    build_database(tmp_path / "app.db")
    seen = run_probe(tmp_path)
    for path, (status, body) in seen["answers"].items():
        assert status.startswith("500"), path
        assert "Traceback" not in body, "the traceback must not reach the client"
    assert "module_that_does_not_exist_xyz" in seen["startup_error"]
    log = (tmp_path / "app.log").read_text()
    assert "application failed to start" in log
    assert "ModuleNotFoundError: No module named 'module_that_does_not_exist_xyz'" in log


def test_error_in_create_app_is_caught_too(tmp_path):
    make_package(tmp_path, broken_init="def create_app(app_root=None):\n    raise SystemExit(3)\n")
    seen = run_probe(tmp_path)
    assert all(status.startswith("500") for status, _ in seen["answers"].values())
    assert "SystemExit" in (tmp_path / "app.log").read_text()


def test_missing_database_still_starts_but_health_is_503(tmp_path):
    make_package(tmp_path)
    seen = run_probe(tmp_path)
    assert seen["startup_error"] is None
    assert seen["answers"]["/health"][0].startswith("503")
    assert not (tmp_path / "app.db").exists()
