#!/usr/bin/env bash
# `harness test --workers 2` against `--workers 1` on the example suite (with mocks), on this
# machine: wall time per run (hyperfine) and the machine's peak memory in use during each
# variant, above what was in use before it started (sampled every 200 ms from /proc/meminfo:
# the stacks' containers, Chromium, Apache and harness together).
#
#   benches/workers.sh [PROJECT]          (default examples/flask-app; RUNS=3)
#
# One warm-up run first bakes any missing image, fills the wheel cache and the test venv
# volume; the measured runs use --skip-build, as a developer's repeated run would.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HARNESS_BIN:-target/release/harness}
project=${1:-examples/flask-app}
runs=${RUNS:-3}
out=$(mktemp -d)
export HARNESS_OFFLINE=1

used_kb() { awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t-a}' /proc/meminfo; }

echo "warm-up run (images, wheels, test venv, package)" >&2
"$bin" --project "$project" test --with-mocks >/dev/null 2>&1

for w in 1 2; do
  base=$(used_kb)
  ( peak=0; while :; do u=$(used_kb); [ "$u" -gt "$peak" ] && peak=$u && echo "$peak" > "$out/peak-$w"; sleep 0.2; done ) &
  sampler=$!
  hyperfine --runs "$runs" --export-json "$out/w$w.json" \
    --command-name "workers=$w" \
    "$bin --project $project test --with-mocks --skip-build --workers $w > /dev/null 2>&1"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  echo $(( ($(cat "$out/peak-$w") - base) / 1024 )) > "$out/mem-$w"
done

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
med = {}
for w in (1, 2):
    times = json.load(open(f"{out}/w{w}.json"))["results"][0]["times"]
    med[w] = statistics.median(times)
    mem = open(f"{out}/mem-{w}").read().strip()
    print(f"--workers {w}: median {med[w]:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}), peak memory +{mem} MiB")
print(f"speed-up --workers 2 over 1: {med[1] / med[2]:.2f}x (goal >= 1.3x)")
PY
