//! OpenSSH as the user has it: their ~/.ssh/config, agent and known_hosts (or the file named by
//! `HARNESS_SSH_CONFIG`), over ONE multiplexed connection per deploy.
//!
//! The master runs in the background (`-f -N`, ControlMaster=yes). `ssh -f` keeps the stderr it was
//! given, so it gets a file, not a pipe: a pipe would never reach EOF while the master lives.
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Environment variable naming an ssh config file used instead of ~/.ssh/config (`ssh -F`).
pub const CONFIG_ENV: &str = "HARNESS_SSH_CONFIG";

#[derive(Debug, Error)]
pub enum SshError {
    #[error("cannot reach {host} over SSH within {timeout_s} s: {detail}")]
    Connect {
        host: String,
        timeout_s: u64,
        detail: String,
    },
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    #[error("remote command failed on {host} (exit {code}): {stderr}")]
    Remote {
        host: String,
        code: i32,
        stderr: String,
    },
    #[error(
        "a remote step on {host} ran longer than {timeout_s} s and was stopped ([targets.webhosting] step_timeout)"
    )]
    Timeout { host: String, timeout_s: u64 },
    #[error("local file {path}: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SshError {
    /// The remote exit code, when the remote command ran and failed.
    pub fn remote_code(&self) -> Option<i32> {
        match self {
            SshError::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a finished remote command produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// `user@host`, or a Host alias from the ssh config.
    pub destination: String,
    /// `ssh -F FILE` instead of ~/.ssh/config.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// How long one remote step may run before it is stopped: a hung command (a full disk, a
    /// stuck mount) must not hold the deploy and its lock forever.
    pub step_timeout: Duration,
}

pub use crate::config::DEFAULT_STEP_TIMEOUT;

impl SshTarget {
    /// `destination` as the user's OpenSSH reaches it: ~/.ssh/config, or the file named by
    /// `HARNESS_SSH_CONFIG`.
    pub fn with_user_config(destination: &str, connect_timeout: Duration) -> SshTarget {
        SshTarget {
            destination: destination.to_string(),
            config_file: std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            connect_timeout,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// An open master connection. Closed by [`Ssh::close`] or, on any other exit path, by Drop.
pub struct Ssh {
    target: SshTarget,
    control_path: PathBuf,
    open: bool,
}

impl Ssh {
    /// Opens the master connection; fails within the connect timeout when the host is unreachable.
    pub fn connect(target: SshTarget) -> Result<Ssh, SshError> {
        // sun_path is 108 bytes; a short path under /tmp leaves room whatever TMPDIR is.
        let control_path = PathBuf::from(format!("/tmp/hs-{:08x}", rand::random::<u32>()));
        let err_file = tempfile::NamedTempFile::new().map_err(SshError::Spawn)?;
        let mut cmd = Command::new("ssh");
        cmd.process_group(0);
        cmd.args(base_args(&target, &control_path))
            .args([
                "-o",
                "ControlMaster=yes",
                // A safety net: a crashed harness leaves a master that ends on its own.
                "-o",
                "ControlPersist=600",
                "-f",
                "-N",
                // Whatever the destination says, it is never an option.
                "--",
            ])
            .arg(&target.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err_file.reopen().map_err(SshError::Spawn)?));
        let status = cmd.status().map_err(SshError::Spawn)?;
        if !status.success() {
            let mut detail = String::new();
            let _ = err_file
                .reopen()
                .and_then(|mut f| f.read_to_string(&mut detail));
            return Err(SshError::Connect {
                host: target.destination.clone(),
                timeout_s: target.connect_timeout.as_secs(),
                detail: last_line(&detail),
            });
        }
        Ok(Ssh {
            target,
            control_path,
            open: true,
        })
    }

    pub fn destination(&self) -> &str {
        &self.target.destination
    }

    /// Runs `script` with the remote user's `sh` and returns its output; non-zero exit is an error.
    pub fn run(&self, script: &str) -> Result<Output, SshError> {
        self.run_io(script, None, None)
    }

    /// Runs `script` with `input`'s bytes on its stdin (an upload without a second connection).
    pub fn run_with_input(&self, script: &str, input: &Path) -> Result<Output, SshError> {
        self.run_io(script, Some(input), None)
    }

    /// Runs `script` and writes its stdout to `out` (a download).
    pub fn run_to_file(&self, script: &str, out: &Path) -> Result<Output, SshError> {
        self.run_io(script, None, Some(out))
    }

    fn run_io(
        &self,
        script: &str,
        input: Option<&Path>,
        out: Option<&Path>,
    ) -> Result<Output, SshError> {
        let mut cmd = Command::new("ssh");
        // Not in the terminal's process group: Ctrl-C must not kill a remote step half-way.
        cmd.process_group(0);
        cmd.args(base_args(&self.target, &self.control_path))
            // After `--` the destination is never an option, and ssh parses no option after it,
            // so the command follows it directly.
            .args(["-o", "ControlMaster=no", "-T", "--"])
            .arg(&self.target.destination)
            // The remote login shell may be anything; the script is POSIX sh.
            .arg(format!("sh -c {}", quote(script)));
        match input {
            Some(p) => {
                let f = std::fs::File::open(p).map_err(|source| SshError::Local {
                    path: p.to_path_buf(),
                    source,
                })?;
                cmd.stdin(Stdio::from(f));
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        if let Some(p) = out {
            // What comes back from the server (backups, database copies) is production's data:
            // only its owner may read it.
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .and_then(|f| {
                    use std::os::unix::fs::PermissionsExt;
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                    Ok(f)
                })
                .map_err(|source| SshError::Local {
                    path: p.to_path_buf(),
                    source,
                })?;
            cmd.stdout(Stdio::from(f));
        } else {
            cmd.stdout(Stdio::piped());
        }
        cmd.stderr(Stdio::piped());
        let output = run_bounded(cmd, self.target.step_timeout).map_err(|e| match e {
            None => SshError::Timeout {
                host: self.target.destination.clone(),
                timeout_s: self.target.step_timeout.as_secs(),
            },
            Some(e) => SshError::Spawn(e),
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        match output.status.code() {
            Some(0) => Ok(Output {
                stdout: output.stdout,
                stderr,
            }),
            // 255 is ssh's own failure: the connection, not the command.
            Some(255) => Err(SshError::Connect {
                host: self.target.destination.clone(),
                timeout_s: self.target.connect_timeout.as_secs(),
                detail: last_line(&stderr),
            }),
            code => Err(SshError::Remote {
                host: self.target.destination.clone(),
                code: code.unwrap_or(-1),
                stderr,
            }),
        }
    }

    /// Ends the master connection (`ssh -O exit`).
    pub fn close(mut self) {
        self.exit();
    }

    fn exit(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let _ = Command::new("ssh")
            .args(base_args(&self.target, &self.control_path))
            .args(["-O", "exit", "--"])
            .arg(&self.target.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.control_path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        self.exit();
    }
}

/// Options every ssh invocation of a deploy carries.
pub fn base_args(target: &SshTarget, control_path: &Path) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(f) = &target.config_file {
        a.push("-F".to_string());
        a.push(f.display().to_string());
    }
    for o in [
        "BatchMode=yes".to_string(),
        format!("ConnectTimeout={}", target.connect_timeout.as_secs().max(1)),
        // A dead network must not hang a deploy: 3 missed probes 5 s apart end the connection.
        "ServerAliveInterval=5".to_string(),
        "ServerAliveCountMax=3".to_string(),
        format!("ControlPath={}", control_path.display()),
    ] {
        a.push("-o".to_string());
        a.push(o);
    }
    a
}

/// Runs `cmd` (its own process group) to its end, or kills the group after `limit`: `Err(None)`.
fn run_bounded(
    mut cmd: Command,
    limit: Duration,
) -> Result<std::process::Output, Option<std::io::Error>> {
    let mut child = cmd.spawn().map_err(Some)?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    // Most steps take tens of milliseconds over the open connection: poll often at first, so the
    // bound costs them nothing, and back off to 50 ms for long ones.
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(Some)? {
            break status;
        }
        if Instant::now() >= deadline {
            // SAFETY: signals the process group ssh leads (process_group(0) made it).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Quotes `s` for a POSIX shell: single quotes, with `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn last_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("ssh gave no reason")
        .to_string()
}

/// An SSH error as a command's failure; `state` says what it left on the server.
pub fn failure(e: SshError, state: &str) -> crate::error::Failure {
    use crate::error::{Exit, Failure};
    match e {
        SshError::Connect { .. } => Failure::new(Exit::Environment, format!("{e}; {state}"))
            .hint("check that `ssh HOST true` works from this shell (BatchMode: keys via the agent or ~/.ssh/config, the host in known_hosts)"),
        other => Failure::new(Exit::Environment, format!("{other}; {state}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, finding 9: a remote step that hangs is stopped at its timeout, and so is
    /// everything it started.
    #[test]
    fn a_step_that_outlives_its_timeout_is_killed_with_its_process_group() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("still-running");
        let mut cmd = Command::new("sh");
        cmd.process_group(0);
        cmd.arg("-c")
            .arg(format!("(sleep 2; touch {}) & sleep 30", marker.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t = Instant::now();
        assert!(matches!(
            run_bounded(cmd, Duration::from_millis(300)),
            Err(None)
        ));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "a child of the step survived");
        let mut ok = Command::new("sh");
        ok.process_group(0);
        ok.arg("-c")
            .arg("echo hi")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = run_bounded(ok, Duration::from_secs(5)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn quote_leaves_plain_words_and_escapes_single_quotes() {
        assert_eq!(quote("/home/u/app"), "/home/u/app");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn every_invocation_sets_batch_mode_timeout_and_control_path() {
        let t = SshTarget {
            destination: "u@h".into(),
            config_file: Some("/tmp/cfg".into()),
            connect_timeout: Duration::from_secs(7),
            step_timeout: DEFAULT_STEP_TIMEOUT,
        };
        let a = base_args(&t, Path::new("/tmp/hs-0000abcd"));
        assert_eq!(
            a,
            [
                "-F",
                "/tmp/cfg",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=7",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                "ControlPath=/tmp/hs-0000abcd"
            ]
        );
    }
}
