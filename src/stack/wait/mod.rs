//! Readiness waits, one module per kind. Every wait has a timeout and fails fast when the
//! container exits; its error carries the exit code and the last 50 log lines.
//!
//! A TCP connect is deliberately not a wait: docker-proxy accepts connections on a published
//! port before the service inside listens.
mod exit;
mod healthcheck;
mod http;
pub use http::get_status;
mod log;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use super::compose::WaitSpec;

/// How many log lines a failed wait shows.
pub const LOG_TAIL: usize = 50;

/// The User-Agent of the HTTP readiness probes, so access logs can tell them from real traffic.
pub const PROBE_USER_AGENT: &str = "harness-wait";

/// How often waits look again; short, because every poll is a local call.
const POLL: Duration = Duration::from_millis(50);

/// A service that did not become ready.
#[derive(Debug, Clone)]
pub struct WaitError {
    pub service: String,
    /// What was awaited and what happened instead.
    pub reason: String,
    /// Set when the container exited.
    pub exit_code: Option<i64>,
    pub logs: Vec<String>,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service `{}` is not ready: {}",
            self.service, self.reason
        )?;
        if let Some(code) = self.exit_code {
            write!(f, " (container exited with code {code})")?;
        }
        if self.logs.is_empty() {
            write!(f, "\n  (the container wrote no log lines)")?;
        } else {
            write!(
                f,
                "\n  last {} log lines of `{}`:",
                self.logs.len(),
                self.service
            )?;
            for l in &self.logs {
                write!(f, "\n  | {l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for WaitError {}

/// What a wait needs to know about the container it watches.
pub struct Target<'a> {
    pub docker: &'a Docker,
    pub service: &'a str,
    pub container: &'a str,
    /// Container port → host port on the engine's address (`docker::ports`).
    pub ports: &'a BTreeMap<u16, u16>,
}

impl Target<'_> {
    /// `Err` once the container has stopped: waiting longer cannot help.
    async fn ensure_running(&self) -> Result<(), WaitError> {
        let (running, code) = self.state().await;
        if running {
            Ok(())
        } else {
            Err(self.fail("the container stopped", code).await)
        }
    }

    /// (running, exit code when stopped).
    async fn state(&self) -> (bool, Option<i64>) {
        match self
            .docker
            .inspect_container(self.container, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => {
                let s = c.state.unwrap_or_default();
                let running = s.running.unwrap_or(false) || s.restarting.unwrap_or(false);
                (running, if running { None } else { s.exit_code })
            }
            Err(_) => (false, None),
        }
    }

    async fn fail(&self, reason: impl Into<String>, exit_code: Option<i64>) -> WaitError {
        WaitError {
            service: self.service.to_string(),
            reason: reason.into(),
            exit_code,
            logs: last_lines(self.docker, self.container, LOG_TAIL).await,
        }
    }

    async fn timed_out(&self, what: &str, timeout: Duration, last: &str) -> WaitError {
        let reason = if last.is_empty() {
            format!("{what} within {}", secs(timeout))
        } else {
            format!("{what} within {} (last: {last})", secs(timeout))
        };
        let (_, code) = self.state().await;
        self.fail(reason, code).await
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Waits until `target` is ready by `spec`, or fails.
pub async fn until_ready(
    target: &Target<'_>,
    spec: &WaitSpec,
    timeout: Duration,
) -> Result<(), WaitError> {
    let deadline = Instant::now() + timeout;
    match spec {
        WaitSpec::Started => target.ensure_running().await,
        WaitSpec::Healthy => healthcheck::wait(target, deadline, timeout).await,
        WaitSpec::Http { port, path, tls } => {
            http::wait(target, *port, path, tls.as_ref(), deadline, timeout).await
        }
        WaitSpec::Log { text } => log::wait(target, text, deadline, timeout).await,
        WaitSpec::Exit => exit::wait(target, deadline, timeout).await,
    }
}

/// The last `n` lines the container wrote to stdout and stderr.
pub async fn last_lines(docker: &Docker, container: &str, n: usize) -> Vec<String> {
    tail(docker, container, n, true).await
}

/// The last `n` lines a container wrote to stderr only: for Apache that is the error log, where
/// Passenger puts the app's traceback, without the access log lines of the probes in between.
pub async fn last_stderr_lines(docker: &Docker, container: &str, n: usize) -> Vec<String> {
    tail(docker, container, n, false).await
}

async fn tail(docker: &Docker, container: &str, n: usize, stdout: bool) -> Vec<String> {
    let options = LogsOptions {
        stdout,
        stderr: true,
        // The daemon counts `tail` over both streams before it filters one out, so stderr alone
        // reads further back (a probe loop can write hundreds of access lines after a traceback).
        tail: if stdout { n.to_string() } else { "2000".into() },
        ..Default::default()
    };
    let mut stream = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let skip = lines.len().saturating_sub(n);
    lines.into_iter().skip(skip).collect()
}
