#!/usr/bin/env bash
# `harness up --watch`: time from saving a file to the proxy serving what the edit changed.
#
#   benches/watch.sh [PROJECT]          (default examples/flask-app; N=10 saves of each kind)
#
# A copy of the project runs under `up --watch --no-tls`. Each round saves the login template
# with a new marker and polls GET /admin/login through the proxy (every 10 ms) until the marker
# is served; then saves a view (public.py's /health answer) and polls /health the same way. The
# time counts from just before the write. Prints each kind's median, min and max.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${HARNESS_BIN:-target/release/harness}")
project=$(realpath "${1:-examples/flask-app}")
rounds=${N:-10}
out=$(mktemp -d)
export HARNESS_OFFLINE=1
trap 'kill -INT $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$out"' EXIT

mkdir "$out/app"
tar -C "$project" --exclude=.harness -cf - . | tar -C "$out/app" -xf -
"$bin" --project "$out/app" up --watch --no-tls >"$out/stdout" 2>"$out/stderr" &
pid=$!
for _ in $(seq 1 600); do
  grep -q '^watching\|watching ' "$out/stderr" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$out/stderr" >&2; exit 1; }
  sleep 0.2
done
proxy=$(awk '$1 == "proxy" { print $2; exit }' "$out/stdout")
echo "watching; proxy at $proxy" >&2

python3 - "$out/app" "$proxy" "$rounds" <<'PY'
import statistics, sys, time, urllib.request, urllib.error
root, proxy, rounds = sys.argv[1], sys.argv[2].rstrip("/"), int(sys.argv[3])
template = f"{root}/src/app/templates/login.html"
view = f"{root}/src/app/public.py"
t_orig = open(template).read()
v_orig = open(view).read()
assert "<h1>Admin login</h1>" in t_orig and 'return jsonify(status="ok")' in v_orig

def body(path):
    try:
        with urllib.request.urlopen(proxy + path, timeout=5) as r:
            return r.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return ""

def timed(path, marker, write):
    t0 = time.monotonic()
    write()
    while marker not in body(path):
        if time.monotonic() - t0 > 30:
            raise SystemExit(f"{marker} not served after 30 s")
        time.sleep(0.01)
    return time.monotonic() - t0

kinds = {"template": [], "view": []}
for i in range(rounds):
    m = f"mark-{i}-{time.time_ns()}"
    kinds["template"].append(timed("/admin/login", m, lambda: open(template, "w").write(
        t_orig.replace("<h1>Admin login</h1>", f"<h1>Admin login {m}</h1>"))))
    time.sleep(0.3)
    kinds["view"].append(timed("/health", m, lambda: open(view, "w").write(
        v_orig.replace('return jsonify(status="ok")', f'return jsonify(status="ok", mark="{m}")'))))
    time.sleep(0.3)
for kind, times in kinds.items():
    print(f"{kind:9} save → served: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} saves "
          f"({', '.join(f'{t:.2f}' for t in times)})")
PY
