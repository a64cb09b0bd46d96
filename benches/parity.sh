#!/usr/bin/env bash
# Benchmarks `harness parity` (issue 10): the example app grown to about 1,500 files per package
# (the example's ~530 files incl. vendor/ plus 1,000 generated sources), both packages fresh, so
# the timed run is what a user pays: the freshness check (walk + stat) and the comparison (read,
# inflate and hash every entry of both zips, schema of both databases). Needs hyperfine and the
# example's wheels in the cache (build examples/flask-app once); it never reaches an index.
#   HARNESS=target/debug/harness benches/parity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=$(realpath "${HARNESS:-target/release/harness}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1767225600 PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_RETRIES=0

bench="$work/bench"
mkdir -p "$bench"
(cd examples/flask-app && tar --exclude=.harness --exclude='deployment_state_*' --exclude=__pycache__ -cf - .) | tar -xf - -C "$bench"
python3 - "$bench" <<'PY'
import os, sys
root = sys.argv[1]
for pkg in range(20):
    d = os.path.join(root, "src", "app", f"feature{pkg:02d}")
    os.makedirs(os.path.join(d, "templates"), exist_ok=True)
    open(os.path.join(d, "__init__.py"), "w").write("")
    for i in range(40):
        open(os.path.join(d, f"mod{i:02d}.py"), "w").write(
            "".join(f"def f{j}(x):\n    return x * {j} + {i}\n\n" for j in range(40)))
    for i in range(9):
        open(os.path.join(d, "templates", f"page{i}.html"), "w").write("<html>{{ x }}</html>\n" * 50)
PY
"$HARNESS" --project "$bench" build --local >/dev/null 2>&1
"$HARNESS" --project "$bench" build >/dev/null 2>&1
"$HARNESS" --project "$bench" parity --json > "$work/report.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('files per package:', r['local_files'], r['webhosting_files'], '| differences:', len(r['differences']), '| clean:', r['clean'], '| rebuilt:', r['rebuilt'])" "$work/report.json"
ls -l "$bench"/.harness/dist/*/deploy.zip | awk '{print "zip bytes:", $5, $9}'
hyperfine --warmup 2 --runs 10 "$HARNESS --project $bench parity"
/usr/bin/time -f "peak RSS %M KB, %e s wall" "$HARNESS" --project "$bench" parity >/dev/null
