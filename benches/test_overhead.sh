#!/usr/bin/env bash
# What `harness test` adds to pytest's own time: total wall time (hyperfine) minus the time pytest
# reports for its session (junit.xml, via `--json`'s pytest_seconds), per run.
#
#   benches/test_overhead.sh [PROJECT]          (default examples/flask-app; RUNS=5; LEDGER_RUNS=N)
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

# Before the warm-up's half minute, not after it.
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 2; }

echo "warm-up run (images, wheels, test venv, package)" >&2
"$bin" --project "$project" test --with-mocks >/dev/null 2>&1

# LEDGER_RUNS=200: the ledger holds at least that many runs before the measured ones (copies of
# the newest run, its tests and routes too), so what a run adds to a long history is measured.
if [ -n "${LEDGER_RUNS:-}" ]; then
  python3 - "$project/.harness/ledger.db" "$LEDGER_RUNS" <<'PY'
import secrets, sqlite3, sys
db, want = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
have = c.execute("SELECT count(*) FROM runs").fetchone()[0]
cols = [r[1] for r in c.execute("PRAGMA table_info(runs)") if r[1] not in ("id", "uid")]
newest = c.execute("SELECT max(id) FROM runs").fetchone()[0]
tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
for _ in range(max(0, want - have)):
    cur = c.execute(f"INSERT INTO runs (uid, {', '.join(cols)}) SELECT ?, {', '.join(cols)} FROM runs WHERE id = ?",
                    (secrets.token_hex(16), newest))
    for t in ("run_tests", "run_routes"):
        if t in tables:
            tc = [r[1] for r in c.execute(f"PRAGMA table_info({t})") if r[1] != "run_id"]
            c.execute(f"INSERT INTO {t} (run_id, {', '.join(tc)}) SELECT ?, {', '.join(tc)} FROM {t} WHERE run_id = ?",
                      (cur.lastrowid, newest))
c.commit()
print(f"ledger: {c.execute('SELECT count(*) FROM runs').fetchone()[0]} runs", file=sys.stderr)
PY
fi

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
