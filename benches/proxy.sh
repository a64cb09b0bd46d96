#!/usr/bin/env bash
# Proxy overhead (issue 5): median latency of /health through the TLS proxy vs the app directly,
# with wrk on 127.0.0.1 (published ports of our own run only). Needs wrk and the baked images.
#   HARNESS=target/release/harness benches/proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=$(realpath "${HARNESS:-target/debug/harness}")
project=examples/flask-app
out=$("$HARNESS" --project "$project" --json up --skip-build)
run=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])' <<<"$out")
trap '"$HARNESS" --project "$project" down --run "$run" >/dev/null' EXIT
app=$(python3 -c 'import json,sys; print([u["url"] for u in json.load(sys.stdin)["urls"] if u["service"]=="app"][0])' <<<"$out")
proxy=$(python3 -c 'import json,sys; print([u["url"] for u in json.load(sys.stdin)["urls"] if u["service"]=="proxy" and u["url"].startswith("https")][0])' <<<"$out")
for i in 1 2 3; do curl -s -o /dev/null "${app}health"; done
for target in "app direct|${app}health" "through TLS proxy|${proxy}health"; do
  name=${target%%|*}; url=${target#*|}
  echo "== $name: $url"
  wrk -t1 -c1 -d5s --latency "$url" | grep -E "Latency|50%|90%|99%|Requests/sec"
done
