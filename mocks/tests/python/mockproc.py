"""Running the real `harness mock ...` binary for the acceptance tests.

The binary comes from $HARNESS_BIN, else $CARGO_TARGET_DIR/debug/harness, else target/debug/harness
at the workspace root. Each mock prints one JSON line with its bound addresses; we read it instead of
guessing ports.
"""
from __future__ import annotations

import json
import os
import pathlib
import select
import signal
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]


def harness_bin() -> str:
    if os.environ.get("HARNESS_BIN"):
        return os.environ["HARNESS_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return str(pathlib.Path(target) / "debug" / "harness")


class Mock:
    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc = proc
        self.info = info

    def addr(self, key: str = "http") -> str:
        return self.info[key]

    def port(self, key: str = "http") -> int:
        return int(self.info[key].rsplit(":", 1)[1])

    def url(self, path: str = "", key: str = "http") -> str:
        scheme = "https" if key == "https" else "http"
        return f"{scheme}://{self.info[key]}{path}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mock did not stop within 10 s of SIGTERM")
        return self.proc.returncode


def run_mock(args: list[str], env: dict | None = None, timeout: float = 15.0) -> Mock:
    """Starts `harness mock ARGS` bound to 127.0.0.1 and waits for its address line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [harness_bin(), "mock", *args, "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line:
                return Mock(proc, json.loads(line))
        if proc.poll() is not None:
            raise AssertionError(
                f"mock exited with {proc.returncode}: {proc.stderr.read().decode()}"
            )
    proc.kill()
    raise AssertionError("mock printed no address line in time")


def run_failing(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
    full_env.update(env or {})
    return subprocess.run(
        [harness_bin(), "mock", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=20,
    )
