#!/usr/bin/env bash
# Runs every test of the project: the Rust suites (unit, CLI integration, Docker end-to-end) and the
# Python suites (the example app's unit tests, the mocks' acceptance tests with the real clients).
# Safe to run on a fresh machine of the rust-docker kind: it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

# The offline image bake needs debootstrap; harness installs it itself when it is missing (as root,
# through apt-get; HARNESS_NO_INSTALL=1 turns that off), as it does for the README's main command.

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# One venv for every Python suite, rebuilt when a requirements file changes.
venv="$root/.venv-test"
reqs=(examples/flask-app/requirements-dev.txt mocks/tests/python/requirements.txt tests/python-requirements.txt)
stamp=$(cat "${reqs[@]}" 2>/dev/null | sha256sum | cut -c1-16)
if [ ! -f "$venv/.stamp-$stamp" ]; then
  log "preparing the Python test venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  for r in "${reqs[@]}"; do
    [ -f "$r" ] && "$venv/bin/pip" install --quiet -r "$r"
  done
  touch "$venv/.stamp-$stamp"
fi

log "building harness"
cargo build --workspace --all-targets
export HARNESS_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/harness"

# Every Docker suite needs the stack's images. On a fresh machine the daemon has none and no
# registry is reachable: bake them once from the offline recipes (cached by recipe hash after that).
# No registry is reachable on this machine kind, and tests talk only to 127.0.0.1 and their own
# containers: never try a pull.
export HARNESS_OFFLINE=1
log "images: harness images --bake"
"$HARNESS_BIN" images --bake

# The README's main command. It also warms the wheel cache that tests/example.rs relies on (the
# tests themselves never reach a package index) and builds both packages of the example.
log "main job: harness test --with-mocks on examples/flask-app"
"$HARNESS_BIN" --project examples/flask-app test --with-mocks
"$HARNESS_BIN" --project examples/flask-app build
# The deploy suite ships examples/adopted-app to the twin too; its wheels come from here.
"$HARNESS_BIN" --project examples/adopted-app build

log "Rust tests (unit, integration, end-to-end)"
cargo nextest run --workspace --no-fail-fast

py_suites=()
for d in examples/flask-app/tests mocks/tests/python; do
  [ -d "$d" ] && py_suites+=("$d")
done
if [ ${#py_suites[@]} -gt 0 ]; then
  log "Python tests: ${py_suites[*]}"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "${py_suites[@]}"
fi
