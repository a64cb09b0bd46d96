#!/usr/bin/python3
"""Start command of the app image (see compose/images/README.md).

Renders the Apache vhost for Passenger from the environment, optionally starts sshd, then runs
apache2 in the foreground and watches its start-up.

Why not exec Apache: about one start in a few hundred under load (seen on the CI machines while a
compile ran), Apache dies between its two configuration passes, when Passenger shuts down the agent
it started in the first pass: "terminate called after throwing an instance of
'boost::wrapexcept<boost::lock_error>' ... mutex lock failed in pthread_mutex_lock: Invalid
argument". The container then never answers. Rarer still, it hangs there instead, with port 80
already bound (Apache binds in its first pass). So this script stays PID 1: it starts Apache in a
process group of its own, and until a worker answers on an internal, Passenger-free vhost
(127.0.0.1:8079, which proves both passes are done, where a listening socket does not), a start
that exits or takes longer than HARNESS_APACHE_START_TIMEOUT seconds (15) is killed with its
whole group and started again (up to three times, saying so on stderr). Once Apache answers, the
script only forwards signals (SIGTERM from `docker stop` reaches Apache at once), reaps orphaned
processes as PID 1 must, and exits with Apache's status.
"""
import os
import pwd
import grp
import signal
import socket
import subprocess
import sys
import time

VHOST = "/etc/apache2/sites-enabled/harness-app.conf"
# Apache itself serves this vhost (no Passenger, no app): its answer means the workers serve.
PROBE_PORT = 8079
PROBE_ROOT = "/var/www/harness-probe"

# Variables that describe the container, Apache or this script, never the app. Everything else in
# the environment reaches the app unless HARNESS_APP_ENV names the variables to pass explicitly.
BLOCKED_NAMES = {"HOME", "HOSTNAME", "PATH", "PWD", "OLDPWD", "SHLVL", "TERM", "_", "LANG", "LC_ALL"}
BLOCKED_PREFIXES = ("PASSENGER_", "HARNESS_", "APACHE_")


def fail(message):
    print(f"harness-app-entrypoint: {message}", file=sys.stderr)
    sys.exit(2)


def apache_quote(value):
    if "\n" in value or "\r" in value:
        return None
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_env():
    explicit = os.environ.get("HARNESS_APP_ENV")
    if explicit is not None:
        names = [n for n in explicit.replace(",", " ").split() if n]
        return [(n, os.environ[n]) for n in names if n in os.environ]
    return sorted(
        (k, v)
        for k, v in os.environ.items()
        if k not in BLOCKED_NAMES and not k.startswith(BLOCKED_PREFIXES)
    )


def app_user(app_root):
    """The owner of the app root runs the app, so the app can write its package (database, log,
    tmp/) without anyone chown-ing the mount. A uid without a passwd entry gets one."""
    st = os.stat(app_root)
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = "app"
        subprocess.run(["useradd", "--no-create-home", "--home-dir", app_root, "--uid",
                        str(st.st_uid), "--non-unique", "--shell", "/bin/sh", user], check=True)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = "app"
        subprocess.run(["groupadd", "--gid", str(st.st_gid), "--non-unique", group], check=True)
    return user, group, st.st_uid


def render(app_root, throttle):
    user, group, uid = app_user(app_root)
    # Apache serves files under DocumentRoot itself, so it must never be the app root (that would
    # publish passenger_wsgi.py and the database): public/ if the app has one, else an empty dir.
    docroot = f"{app_root}/public"
    if not os.path.isdir(docroot):
        docroot = "/var/www/harness-empty"
        os.makedirs(docroot, exist_ok=True)
    lines = [
        "# Rendered by harness-app-entrypoint at container start; edits are lost on restart.",
        "PassengerDefaultUser " + ("root" if uid == 0 else user),
        "PassengerDefaultGroup " + group,
        # Server-wide in Apache (not allowed inside <VirtualHost>).
        f"PassengerStatThrottleRate {throttle}",
        # Passenger phones home by default; the stack talks only to its own containers.
        "PassengerDisableSecurityUpdateCheck on",
        "PassengerDisableAnonymousTelemetry on",
        "ServerName localhost",
        f"Listen 127.0.0.1:{PROBE_PORT}",
    ]
    if uid == 0:
        # Passenger refuses to switch to root; with switching off the app runs as the user Passenger
        # itself runs as (root), which is the only user that can write a root-owned mount.
        lines.append("PassengerUserSwitching off")
    lines += [
        "<VirtualHost *:80>",
        "    ServerName localhost",
        f"    DocumentRoot {docroot}",
        f"    <Directory {app_root}>",
        "        Require all granted",
        "        Options -MultiViews",
        "        AllowOverride None",
        "    </Directory>",
        f"    PassengerAppRoot {app_root}",
        "    PassengerAppType wsgi",
        "    PassengerStartupFile passenger_wsgi.py",
        "    PassengerPython /usr/bin/python3",
        "    PassengerFriendlyErrorPages off",
    ]
    if uid != 0:
        lines += [f"    PassengerUser {user}", f"    PassengerGroup {group}"]
    for name, value in app_env():
        quoted = apache_quote(value)
        if quoted is None:
            fail(f"environment variable {name} holds a line break; Apache cannot pass it to the app")
        # Apache's Passenger has no PassengerEnvVar (that is Nginx's passenger_env_var); it hands
        # SetEnv variables to the app process's environment.
        lines.append(f"    SetEnv {name} {quoted}")
    lines.append("</VirtualHost>")
    os.makedirs(PROBE_ROOT, exist_ok=True)
    with open(os.path.join(PROBE_ROOT, "ok"), "w") as f:
        f.write("ok\n")
    lines += [
        f"<VirtualHost 127.0.0.1:{PROBE_PORT}>",
        "    ServerName localhost",
        "    PassengerEnabled off",
        f"    DocumentRoot {PROBE_ROOT}",
        f"    <Directory {PROBE_ROOT}>",
        "        Require all granted",
        "    </Directory>",
        "</VirtualHost>",
    ]
    with open(VHOST, "w") as f:
        f.write("\n".join(lines) + "\n")
    return user


def start_sshd(user):
    subprocess.run(["ssh-keygen", "-A"], check=True, stdout=subprocess.DEVNULL)
    keys = os.environ.get("HARNESS_SSH_AUTHORIZED_KEYS")
    if keys:
        home = pwd.getpwnam(user).pw_dir
        ssh_dir = os.path.join(home, ".ssh")
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        path = os.path.join(ssh_dir, "authorized_keys")
        with open(path, "w") as f:
            f.write(keys.strip() + "\n")
        os.chmod(path, 0o600)
        pw = pwd.getpwnam(user)
        for p in (ssh_dir, path):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["/usr/sbin/sshd"], check=True)


def apache_env():
    out = subprocess.run(["sh", "-c", ". /etc/apache2/envvars && env -0"], check=True,
                         capture_output=True).stdout
    env = dict(os.environ)
    for item in out.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode()] = v.decode()
    return env


START_ATTEMPTS = 3
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGWINCH)


def start_timeout():
    """How long one start may take before it counts as hung (Apache's two passes, not the app)."""
    raw = os.environ.get("HARNESS_APACHE_START_TIMEOUT", "15")
    try:
        return max(1.0, float(raw))
    except ValueError:
        fail(f"HARNESS_APACHE_START_TIMEOUT must be a number of seconds, got {raw!r}")


def answers():
    """Whether Apache's workers answer on the probe vhost: any HTTP status line counts."""
    try:
        with socket.create_connection(("127.0.0.1", PROBE_PORT), timeout=1) as s:
            s.settimeout(1)
            s.sendall(b"GET /ok HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def kill_group(apache):
    """Apache and everything it started (Passenger's agents may hold port 80 too)."""
    try:
        os.killpg(apache.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while apache.returncode is None:
        reap(apache)
        time.sleep(0.05)


def reap(apache):
    """Reaps exited children; returns Apache's exit status once it is among them."""
    status = None
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == apache.pid:
            status = os.waitstatus_to_exitcode(raw)
            apache.returncode = status


def run_apache(env):
    stopping = []
    current = [None]

    def forward(signum, _frame):
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping.append(signum)
        if current[0] is not None and current[0].returncode is None:
            current[0].send_signal(signum)

    for s in FORWARDED:
        signal.signal(s, forward)
    limit = start_timeout()
    for attempt in range(1, START_ATTEMPTS + 1):
        apache = subprocess.Popen(["/usr/sbin/apache2", "-D", "FOREGROUND"], env=env,
                                  start_new_session=True)
        current[0] = apache
        deadline = time.monotonic() + limit
        up = False
        what = None
        while apache.returncode is None and not stopping:
            reap(apache)
            if apache.returncode is None and answers():
                up = True
                break
            if time.monotonic() > deadline:
                what = f"does not answer after {limit:.0f} s; killed it and what it started"
                break
            time.sleep(0.05)
        if up or stopping:
            break
        # What the failed start left (Passenger's agents) must not hold port 80 for the next.
        kill_group(apache)
        code = apache.returncode
        what = what or f"exited during start-up (status {code})"
        if attempt < START_ATTEMPTS:
            print(f"harness-app-entrypoint: Apache {what} (attempt {attempt} of "
                  f"{START_ATTEMPTS}); starting it again", file=sys.stderr, flush=True)
            time.sleep(1)
        else:
            print(f"harness-app-entrypoint: Apache {what}; it did not start in {START_ATTEMPTS} "
                  "attempts, its own messages are above", file=sys.stderr, flush=True)
            return (128 - code if code < 0 else code) or 1
    apache = current[0]
    while apache.returncode is None:
        reap(apache)
        time.sleep(0.1)
    code = apache.returncode
    # Killed by a signal: report it as a shell would (128 + the signal).
    return 128 - code if code < 0 else code


def main():
    app_root = os.environ.get("PASSENGER_APP_ROOT", "/srv/app").rstrip("/") or "/"
    throttle = os.environ.get("PASSENGER_STAT_THROTTLE_RATE", "10")
    if not throttle.isdigit():
        fail(f"PASSENGER_STAT_THROTTLE_RATE must be a whole number of seconds, got {throttle!r}")
    if not os.path.isdir(app_root):
        fail(f"app root {app_root} does not exist: mount the extracted package there")
    user = render(app_root, throttle)
    if os.environ.get("HARNESS_SSHD") == "1":
        start_sshd(user)
    env = apache_env()
    os.makedirs(env.get("APACHE_RUN_DIR", "/var/run/apache2"), exist_ok=True)
    os.makedirs(env.get("APACHE_LOCK_DIR", "/var/lock/apache2"), exist_ok=True)
    sys.exit(run_apache(env))


if __name__ == "__main__":
    main()
