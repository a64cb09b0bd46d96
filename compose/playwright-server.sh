#!/bin/sh
# Start script of the playwright-server service (compose/playwright-server.yml).
set -eu
export HOME=/tmp/playwright-server
mkdir -p "$HOME/.pki/nssdb"
if [ -n "${HARNESS_CA_FILE:-}" ]; then
    # Chromium trusts what the user's NSS database trusts: the run's CA, nothing ignored.
    certutil -d "sql:$HOME/.pki/nssdb" -N --empty-password
    certutil -d "sql:$HOME/.pki/nssdb" -A -t "C,," -n "harness run CA" -i "$HARNESS_CA_FILE"
fi
cat > "$HOME/server.json" <<'JSON'
{"executablePath": "/usr/bin/chromium", "args": ["--no-sandbox"], "headless": true,
 "host": "0.0.0.0", "port": 3000, "wsPath": "/playwright"}
JSON
echo "playwright-server: Playwright $(/opt/venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))'), $(chromium --version 2>/dev/null || echo chromium)"
exec /opt/venv/bin/python -m playwright launch-server --browser chromium --config "$HOME/server.json"
