#!/usr/bin/env bash
# What `harness test` adds to pytest's own time: total wall time (hyperfine) minus the time pytest
# reports for its session (junit.xml, via `--json`'s pytest_seconds), per run.
#
#   benches/test_overhead.sh [PROJECT]          (default examples/flask-app; RUNS=5)
#
# Precondition (the issue's "images baked and wheels cached"): one warm-up run first bakes any
# missing image, fills the wheel cache and the test venv volume. The measured runs use
# --skip-build, as a developer's repeated run would.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HARNESS_BIN:-target/release/harness}
project=${1:-examples/flask-app}
runs=${RUNS:-5}
out=$(mktemp -d)
export HARNESS_OFFLINE=1

echo "warm-up run (images, wheels, test venv, package)" >&2
"$bin" --project "$project" test --with-mocks >/dev/null 2>&1

hyperfine --runs "$runs" --export-json "$out/hyperfine.json" \
  --command-name "harness test --with-mocks --skip-build" \
  "$bin --project $project --json test --with-mocks --skip-build > $out/run-\$(date +%s%N).json 2>/dev/null"

python3 - "$out" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
walls = json.load(open(f"{out}/hyperfine.json"))["results"][0]["times"]
runs = [json.load(open(p)) for p in sorted(glob.glob(f"{out}/run-*.json"))]
rows = []
for wall, r in zip(walls, runs):
    phases = dict((p, s) for p, s in r["phases"])
    rows.append((wall, r["pytest_seconds"], wall - r["pytest_seconds"], phases, r["passed"]))
print(f"{'wall s':>8} {'pytest s':>9} {'overhead s':>11}  stack   suite  teardown  passed")
for wall, py, over, ph, passed in rows:
    print(f"{wall:8.2f} {py:9.2f} {over:11.2f}  {ph.get('stack',0):5.2f}  {ph.get('suite',0):6.2f}  {ph.get('teardown',0):8.2f}  {passed}")
over = [r[2] for r in rows]
print(f"overhead: median {statistics.median(over):.2f} s, min {min(over):.2f} s, max {max(over):.2f} s (goal <= 4.0 s)")
PY
