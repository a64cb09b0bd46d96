#!/usr/bin/python3
"""Start command of the app image (see compose/images/README.md).

Renders the Apache vhost for Passenger from the environment, optionally starts sshd, then replaces
itself with apache2 in the foreground. Apache is exec'd, not run as a child of a shell: PID 1 must be
Apache so that the SIGTERM from `docker stop` reaches it at once.
"""
import os
import pwd
import grp
import subprocess
import sys

VHOST = "/etc/apache2/sites-enabled/harness-app.conf"

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
    os.execve("/usr/sbin/apache2", ["apache2", "-D", "FOREGROUND"], env)


if __name__ == "__main__":
    main()
