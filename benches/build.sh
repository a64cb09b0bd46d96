#!/usr/bin/env bash
# Benchmarks `harness build` (issue 2): the example app, and a project in the reference app's shape
# (about 1,500 source files plus the reference requirements list, ~46 wheels). Prints cold time, warm
# time (hyperfine, median of 5) and peak RSS. Needs hyperfine; the cold build needs PyPI.
#   HARNESS=target/release/harness benches/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=$(realpath "${HARNESS:-target/release/harness}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HARNESS_CACHE_DIR="$work/cache" SOURCE_DATE_EPOCH=1767225600

copy_example() {
  mkdir -p "$1"
  (cd examples/flask-app && tar --exclude=.harness --exclude='deployment_state_*' --exclude=__pycache__ -cf - .) | tar -xf - -C "$1"
}

[ "${ONLY_BENCH:-}" = 1 ] || {
# The example app.
copy_example "$work/example"
echo "== example app: cold build (pip runs)"
/usr/bin/time -f "cold: %e s wall, peak RSS %M KB" "$HARNESS" --project "$work/example" build >/dev/null
echo "== example app: warm build"
hyperfine --warmup 1 --runs 5 --export-json "$work/example.json" "$HARNESS --project $work/example build"
/usr/bin/time -f "warm: %e s wall, peak RSS %M KB" "$HARNESS" --project "$work/example" build >/dev/null

}
# The reference-shaped project: the example's layout with ~1,500 generated source files.
bench="$work/bench"
copy_example "$bench"
python3 - "$bench" <<'PY'
import os, sys
root = sys.argv[1]
for pkg in range(30):
    d = os.path.join(root, "src", "app", f"feature{pkg:02d}")
    os.makedirs(os.path.join(d, "templates"), exist_ok=True)
    os.makedirs(os.path.join(d, "static"), exist_ok=True)
    open(os.path.join(d, "__init__.py"), "w").write("")
    for i in range(30):
        open(os.path.join(d, f"mod{i:02d}.py"), "w").write(
            "".join(f"def f{j}(x):\n    return x * {j} + {i}\n\n" for j in range(40)))
    for i in range(10):
        open(os.path.join(d, "templates", f"page{i}.html"), "w").write("<html>{{ x }}</html>\n" * 50)
        open(os.path.join(d, "static", f"style{i}.css"), "w").write(".c { color: red; }\n" * 100)
PY
cp benches/reference-requirements.txt "$bench/requirements.webhosting.txt"
echo "source files: $(find "$bench/src" -type f | wc -l)"
echo "== bench project: cold build (pip runs)"
/usr/bin/time -f "cold: %e s wall, peak RSS %M KB" "$HARNESS" --project "$bench" build --json > "$work/cold.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('files', s['files'], 'unpacked', s['unpacked_size']//1_000_000, 'MB', 'zip', s['zip_size']//1_000_000, 'MB', s['timings_ms'])" "$work/cold.json"
ls "$HARNESS_CACHE_DIR"/wheels/*/wheels/*/ | grep -c whl | sed 's/^/wheels: /'
echo "== bench project: warm build"
hyperfine --warmup 1 --runs 5 "$HARNESS --project $bench build"
/usr/bin/time -f "warm: %e s wall, peak RSS %M KB" "$HARNESS" --project "$bench" build --json > "$work/warm.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['timings_ms'])" "$work/warm.json"
