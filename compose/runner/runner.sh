#!/bin/sh
# Entrypoint of the playwright job (compose/test.yml), copied by harness into the run directory
# and mounted at /harness. It runs in two stages:
#   as root:          the test requirements go into a venv on a cache volume (/venv), keyed by
#                     every requirements file pip reads and the image, so a warm run installs
#                     nothing; pip reads them from the job's copy of the tree (/repo), from the
#                     project folder, as it would in the checkout;
#   as the host user: Chromium's NSS database trusts the run's CA, then pytest runs in the
#                     project folder of /repo, the job's own writable copy of the tree;
#                     afterwards what the run wrote there is copied to /report/tree/.
# The job starts together with the app and the mocks; once prepared it says "ready" and starts
# pytest, whose session waits (harness_pytest.py) for harness to create /report/.harness-go
# (every other service is ready then), so its own start-up is hidden behind theirs.
# Exit codes: pytest's own, or 90 when the job could not be prepared (an infrastructure failure,
# not a test result).
set -eu

fail() {
    echo "harness-runner: $*" >&2
    exit 90
}

workdir=${HARNESS_WORKDIR:-/repo}

if [ "${1:-}" != "--as-user" ]; then
    venv=/venv/env
    if [ ! -f /venv/.complete ]; then
        echo "harness-runner: preparing the test venv (first run for these requirements)"
        # flock: two runs sharing the cache volume must not build it at once.
        exec 9>/venv/.lock
        flock 9
        if [ ! -f /venv/.complete ]; then
            rm -rf "$venv"
            # No pip of its own: the image's /opt/venv (playwright, pytest) is visible through a
            # .pth file, so requirements it already satisfies are not installed again, and a
            # different pin (pytest>=9) installs into this venv, which comes first on sys.path.
            /usr/bin/python3 -m venv --without-pip "$venv" || fail "cannot create the venv"
            site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
            base=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
            echo "$base" > "$site/_harness_image_venv.pth"
            if [ -s /harness/pip-args ]; then
                (cd "$workdir" && xargs -d '\n' "$venv/bin/python" -m pip install \
                    --disable-pip-version-check --no-input --progress-bar off --quiet \
                    < /harness/pip-args) \
                    || fail "pip could not install the test requirements (output above)"
            fi
            touch /venv/.complete
        fi
        exec 9>&-
    fi
    mkdir -p /report /tmp/harness-home
    chown "${HARNESS_UID:-0}:${HARNESS_GID:-0}" /tmp/harness-home
    exec setpriv --reuid="${HARNESS_UID:-0}" --regid="${HARNESS_GID:-0}" --clear-groups \
        /bin/sh "$0" --as-user "$@"
fi
shift

export HOME=/tmp/harness-home
if [ -n "${HARNESS_CA_FILE:-}" ]; then
    # Chromium reads trust from the user's NSS database; no certificate error is ever ignored.
    db="sql:$HOME/.pki/nssdb"
    mkdir -p "$HOME/.pki/nssdb"
    certutil -d "$db" -N --empty-password || fail "cannot create the NSS database"
    certutil -d "$db" -A -t "C,," -n "harness run CA" -i "$HARNESS_CA_FILE" \
        || fail "cannot add the run's CA to the NSS database"
fi
chromium --version > /report/chromium-version.txt 2>/dev/null || true
mkdir -p "${SCREENSHOT_DIR:-/report/screenshots}"
echo "harness-runner: ready"
marker=/tmp/harness-started
touch "$marker"
cd "$workdir"
set +e
# pytest starts now; the harness plugin holds the session at its start until harness creates
# /report/.harness-go, so Python's and pytest's own start-up (imports, plugins, the root
# conftest) overlap the app's warm-up, and nothing of the suite's session runs before the stack
# answers.
/venv/env/bin/python -m pytest "$@"
code=$?
set -e
# harness removes the other services once it reads this (job::EXIT_LINE): what follows needs
# none of them.
echo "harness-runner: pytest exited $code"
/venv/env/bin/python /harness/harvest.py /repo "$marker" /report/tree /report/harness-tree.json \
    || echo "harness-runner: could not copy what the run wrote into the tree" >&2
exit "$code"
