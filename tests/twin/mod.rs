//! The webhosting twin: a container from the app image with sshd on a published 127.0.0.1 port,
//! Apache + Passenger serving `REMOTE_DIR` with production's 10 s stat throttle. Per-twin ed25519
//! keys, an `ssh -F` config with its own UserKnownHostsFile (host key pinned by ssh-keyscan of the
//! published port). The container carries the run labels, so the sweeper covers it, and Drop
//! removes it. Shared by the deploy and rollback end-to-end suites.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const USER: &str = "deploy";
pub const REMOTE_DIR: &str = "/home/deploy/app";
pub const HOST_ALIAS: &str = "twin";

pub struct Twin {
    pub container: String,
    pub ssh_port: u16,
    pub http_port: u16,
    pub dir: tempfile::TempDir,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(text(&out.stdout).trim().to_string())
    } else {
        Err(format!("docker {args:?}: {}", text(&out.stderr)))
    }
}

/// `HARNESS_IMAGE_APP`, else the newest local harness/app tag.
pub fn app_image() -> Result<String, String> {
    if let Ok(i) = std::env::var("HARNESS_IMAGE_APP") {
        return Ok(i);
    }
    let list = docker(&[
        "images",
        "harness/app",
        "--format",
        "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}",
    ])?;
    let mut lines: Vec<&str> = list.lines().filter(|l| !l.contains("<none>")).collect();
    lines.sort();
    lines
        .last()
        .and_then(|l| l.split('\t').nth(1))
        .map(str::to_string)
        .ok_or_else(|| "no harness/app image (bake it with `harness images --bake`)".into())
}

impl Twin {
    pub fn start() -> Result<Twin, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let key = dir.path().join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "harness-twin", "-f"])
            .arg(&key)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("ssh-keygen: {}", text(&out.stderr)));
        }
        let public =
            std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
        let image = app_image()?;
        let run = harness::stack::RunIdentity::new(dir.path(), false);
        let mut args: Vec<String> = vec!["run".into(), "-d".into()];
        args.push(format!("--name={}-twin", run.project));
        for (k, v) in run.labels() {
            args.push(format!("--label={k}={v}"));
        }
        args.push("--label=harness.service=twin".into());
        for a in [
            "-p",
            "127.0.0.1::22",
            "-p",
            "127.0.0.1::80",
            "-e",
            "HARNESS_SSHD=1",
            "-e",
            "PASSENGER_STAT_THROTTLE_RATE=10",
            "-e",
            "DEPLOYMENT_TARGET=webhosting",
            "--entrypoint",
            "/bin/sh",
        ] {
            args.push(a.into());
        }
        args.push(format!("-e=HARNESS_SSH_AUTHORIZED_KEYS={}", public.trim()));
        args.push(format!("-e=PASSENGER_APP_ROOT={REMOTE_DIR}"));
        args.push(image);
        args.push("-c".into());
        // A real account (not locked: "*" allows key logins) owning its home, as on the host.
        args.push(format!(
            "useradd -m -s /bin/sh {USER} && usermod -p '*' {USER} && mkdir -p {REMOTE_DIR} && \
             chown -R {USER}:{USER} /home/{USER} && exec /usr/local/bin/harness-app-entrypoint"
        ));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let container = docker(&argv)?;
        let mut twin = Twin {
            container,
            ssh_port: 0,
            http_port: 0,
            dir,
        };
        twin.ssh_port = twin.port("22/tcp")?;
        twin.http_port = twin.port("80/tcp")?;
        twin.pin_host_key()?;
        Ok(twin)
    }

    fn port(&self, p: &str) -> Result<u16, String> {
        let out = docker(&["port", &self.container, p])?;
        out.lines()
            .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
            .ok_or_else(|| format!("no published port for {p}: {out}"))
    }

    /// Waits for sshd, pins its host key, writes the ssh config.
    fn pin_host_key(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let keys = loop {
            let out = Command::new("ssh-keyscan")
                .args([
                    "-t",
                    "ed25519",
                    "-T",
                    "2",
                    "-p",
                    &self.ssh_port.to_string(),
                    "127.0.0.1",
                ])
                .output()
                .map_err(|e| e.to_string())?;
            let keys = text(&out.stdout);
            if keys.contains("ssh-ed25519") {
                break keys;
            }
            // A twin whose start command failed never answers: say so now, with its logs.
            let state = self.state();
            if !state.starts_with("running") || Instant::now() > deadline {
                return Err(format!(
                    "sshd in the twin did not answer on port {} (container {state}): {}",
                    self.ssh_port,
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        std::fs::write(self.dir.path().join("known_hosts"), keys).map_err(|e| e.to_string())?;
        self.write_config(self.ssh_port)
    }

    /// An ssh config naming `HOST_ALIAS` at `port` (another port makes an unreachable host).
    pub fn write_config(&self, port: u16) -> Result<(), String> {
        let d = self.dir.path();
        std::fs::write(
            self.ssh_config(),
            format!(
                "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {USER}\n  IdentityFile {}\n  \
                 IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                d.join("id_ed25519").display(),
                d.join("known_hosts").display()
            ),
        )
        .map_err(|e| e.to_string())
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A shell script in the twin as the hosting user, through `docker exec` (independent of
    /// the code under test).
    pub fn exec(&self, script: &str) -> Result<String, String> {
        docker(&["exec", "-u", USER, &self.container, "sh", "-c", script])
    }

    /// Puts a release in place the way a first manual upload would, and waits until it answers.
    pub fn install(&self, zip: &Path, build_id: &str) -> Result<(), String> {
        docker(&[
            "cp",
            zip.to_str().unwrap(),
            &format!("{}:/tmp/seed.zip", self.container),
        ])?;
        docker(&["exec", &self.container, "chmod", "644", "/tmp/seed.zip"])?;
        self.exec(&format!(
            "cd {REMOTE_DIR} && unzip -q /tmp/seed.zip && mkdir -p tmp && touch tmp/restart.txt"
        ))?;
        self.wait_for_build(build_id, Duration::from_secs(60))
    }

    pub fn wait_for_build(&self, build_id: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.build_id();
            if seen.as_deref() == Some(build_id) && self.health() == Some(200) {
                return Ok(());
            }
            let state = self.state();
            if !state.starts_with("running") || Instant::now() > deadline {
                return Err(format!(
                    "the twin does not serve {build_id} (sees {seen:?}; container {state}): {}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("curl")
            .args(["-sS", "-m", "5", "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.url()))
            .output()
            .ok()?;
        let t = text(&out.stdout);
        let (body, code) = t.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }

    pub fn health(&self) -> Option<u16> {
        self.get("/health").map(|(c, _)| c)
    }

    pub fn build_id(&self) -> Option<String> {
        let (code, body) = self.get("/version")?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["build_id"].as_str().map(str::to_string)
    }

    pub fn sql(&self, sql: &str) -> Result<String, String> {
        // The app may be writing (a test's writer): wait for its lock as the app's own
        // connections do, instead of failing at once with "database is locked".
        self.exec(&format!(
            "sqlite3 -cmd '.timeout 10000' {REMOTE_DIR}/app.db {}",
            shell_quote(sql)
        ))
    }

    /// sha256 of every file under the hosting user's home, sorted: "did anything change?"
    pub fn checksums(&self) -> Result<String, String> {
        self.exec(&format!(
            "cd /home/{USER} && find . -type f ! -path './.ssh/*' -print0 | sort -z | xargs -0 sha256sum"
        ))
    }

    /// `running`, or e.g. `exited (exit 2)`, as the daemon sees the container.
    pub fn state(&self) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.State.Status}} (exit {{.State.ExitCode}}{{with .State.Error}}: {{.}}{{end}})",
            &self.container,
        ])
        .unwrap_or_else(|e| format!("not inspectable: {e}"))
    }

    pub fn logs(&self) -> String {
        Command::new("docker")
            .args(["logs", "--tail", "30", &self.container])
            .output()
            .map(|o| format!("{}{}", text(&o.stdout), text(&o.stderr)))
            .unwrap_or_default()
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.container]);
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
