#!/usr/bin/env bash
# Benchmarks the seed cache (issue 16): a copy of examples/adopted-app grown to ~140 source files,
# the 17 requirements of benches/build.sh (~46 wheels), and a seed of about 3 s (SQLAlchemy
# create_all plus bcrypt rounds, through a wrapper outside `sources`). Prints the seeding build,
# the warm build (hyperfine) and whether two warm builds give one sha256. Needs hyperfine; the
# first run needs PyPI for the wheels (cached in HARNESS_CACHE_DIR, default ~/.cache/harness-bench).
#   HARNESS=target/release/harness benches/seed_cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=$(realpath "${HARNESS:-target/release/harness}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HARNESS_CACHE_DIR="${HARNESS_CACHE_DIR:-$HOME/.cache/harness-bench}" SOURCE_DATE_EPOCH=1767225600
bench="$work/shop"
mkdir -p "$bench"
(cd examples/adopted-app && tar --exclude=.harness --exclude='deployment_state_*' --exclude=__pycache__ -cf - .) | tar -xf - -C "$bench"
python3 - "$bench" <<'PY'
import os, sys
root = sys.argv[1]
for pkg in range(9):
    d = os.path.join(root, "src", "shop", f"feature{pkg}")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "__init__.py"), "w").write("")
    for i in range(14):
        open(os.path.join(d, f"mod{i:02d}.py"), "w").write(
            "".join(f"def f{j}(x):\n    return x * {j} + {i}\n\n" for j in range(40)))
PY
cp benches/reference-requirements.txt "$bench/requirements.webhosting.txt"
# The app's seed, then the extra bcrypt work a seed with more users does: about 3 s in all.
cat > "$bench/tools/harness_seed.py" <<'PY'
import os, sys
import bcrypt
from shop.seed import main
code = main(["--db", os.environ["HARNESS_DB_PATH"], "--state", os.environ["HARNESS_STATE_FILE"],
             "--target", os.environ["HARNESS_TARGET"]])
for _ in range(2):
    bcrypt.hashpw(b"demo user", bcrypt.gensalt(rounds=14))
sys.exit(code)
PY
(cd "$bench" && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm bench)
echo "source files: $(find "$bench/src" -type f | wc -l)"
echo "== first build (wheels cold unless cached; the seed runs)"
/usr/bin/time -f "first: %e s wall" "$HARNESS" --project "$bench" build 2>&1 | grep -E "vendor|database|first:"
echo "wheels: $(unzip -l "$bench/.harness/dist/webhosting/deploy.zip" | grep -c '\.dist-info/METADATA')"
a=$("$HARNESS" --project "$bench" --json build | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
b=$("$HARNESS" --project "$bench" --json build | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
echo "two warm builds: $a $b $([ "$a" = "$b" ] && echo same || echo DIFFER)"
echo "== warm build (seed reused)"
hyperfine --warmup 1 --runs 10 "$HARNESS --project $bench build"
echo "== --reseed (the seed runs every time)"
hyperfine --runs 3 "$HARNESS --project $bench build --reseed"
