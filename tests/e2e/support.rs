//! Shared framework of the Docker end-to-end suite.
//!
//! - [`docker_state`] decides once whether the suite can run: Docker absent skips the suite only
//!   when `CI` is unset; under CI it is a failure.
//! - [`Scope`] is one test's share of the engine: every container and network it creates carries
//!   `harness.run=<id>` and `harness.project=e2e`, and [`scoped`] removes them all when the test
//!   ends, passed, failed or panicked. [`sweep_run`] removes whatever the whole run left.
//! - [`harness`] runs the binary under test; [`http_get`] talks HTTP to 127.0.0.1 only.
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use libtest_mimic::Failed;

pub type TestResult = Result<(), Failed>;

/// One named test case of a suite module.
pub type Case = (&'static str, fn() -> TestResult);

/// Turns any error into a test failure with context.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, Failed>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, Failed> {
        self.map_err(|e| Failed::from(format!("{what}: {e}")))
    }
}

impl<T> Context<T> for Option<T> {
    fn ctx(self, what: &str) -> Result<T, Failed> {
        self.ok_or_else(|| Failed::from(what.to_string()))
    }
}

/// `ensure!(cond, "format", args)`: fail the test with a message instead of panicking.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(libtest_mimic::Failed::from(format!($($arg)+)));
        }
    };
}

/// The id of this test process's run; every resource it creates carries it.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("e2e-{}-{:08x}", std::process::id(), nanos)
    })
}

pub fn labels() -> HashMap<String, String> {
    HashMap::from([
        ("harness.run".to_string(), run_id().to_string()),
        ("harness.project".to_string(), "e2e".to_string()),
    ])
}

/// Whether the suite can talk to a Docker engine.
#[derive(Debug, Clone)]
pub enum DockerState {
    Ready,
    /// Absent and CI unset: tests are ignored.
    Skip(String),
    /// Absent under CI: every test fails with this.
    Missing(String),
}

pub fn docker_state() -> &'static DockerState {
    static STATE: OnceLock<DockerState> = OnceLock::new();
    STATE.get_or_init(|| {
        let probe = runtime().and_then(|rt| {
            rt.block_on(async {
                let d = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
                let d = d.negotiate_version().await.map_err(|e| e.to_string())?;
                d.ping().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            })
        });
        match probe {
            Ok(()) => DockerState::Ready,
            Err(e) => {
                let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
                if ci {
                    DockerState::Missing(format!("CI is set but Docker is unreachable: {e}"))
                } else {
                    DockerState::Skip(format!("Docker is unreachable ({e}); CI unset, skipping"))
                }
            }
        }
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

pub async fn docker() -> Result<Docker, Failed> {
    Docker::connect_with_defaults()
        .ctx("connect to Docker")?
        .negotiate_version()
        .await
        .ctx("negotiate the Docker API version")
}

/// A container to start: image, command, env, network aliases, mounts, published ports.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    /// host path → container path
    pub binds: Vec<(PathBuf, String)>,
    /// container ports published on 127.0.0.1 at an ephemeral host port, e.g. "80/tcp"
    pub publish: Vec<String>,
    pub network: Option<(String, Vec<String>)>,
}

/// One test's resources. Created by [`scoped`].
pub struct Scope {
    pub docker: Docker,
    pub name: String,
}

impl Scope {
    /// Creates and starts a container; returns its id.
    pub async fn start(&self, spec: &Spec) -> Result<String, Failed> {
        let port_bindings = spec
            .publish
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Some(vec![bollard::models::PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect::<HashMap<_, _>>();
        let networking =
            spec.network
                .as_ref()
                .map(|(net, aliases)| bollard::models::NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        net.clone(),
                        EndpointSettings {
                            aliases: Some(aliases.clone()),
                            ..Default::default()
                        },
                    )])),
                });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.clone()),
            labels: Some(labels()),
            exposed_ports: Some(spec.publish.clone()),
            host_config: Some(HostConfig {
                binds: Some(
                    spec.binds
                        .iter()
                        .map(|(h, c)| format!("{}:{c}", h.display()))
                        .collect(),
                ),
                port_bindings: Some(port_bindings),
                network_mode: spec.network.as_ref().map(|(n, _)| n.clone()),
                ..Default::default()
            }),
            networking_config: networking,
            ..Default::default()
        };
        let name = format!("{}-{}-{}", run_id(), self.name, short_nonce());
        let id = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .ctx(&format!("create container from {}", spec.image))?
            .id;
        self.docker
            .start_container(&id, None)
            .await
            .ctx(&format!("start container from {}", spec.image))?;
        Ok(id)
    }

    /// Creates a network for this test, labelled like the containers.
    pub async fn network(&self) -> Result<String, Failed> {
        let name = format!("{}-{}-{}", run_id(), self.name, short_nonce());
        self.docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                labels: Some(labels()),
                ..Default::default()
            })
            .await
            .ctx("create network")?;
        Ok(name)
    }

    /// The 127.0.0.1 port Docker published for `container_port` ("80/tcp"). Without one (a
    /// container that already stopped has none), the error carries its state and log.
    pub async fn host_port(&self, id: &str, container_port: &str) -> Result<u16, Failed> {
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .ctx("inspect container")?;
        let state = info
            .state
            .as_ref()
            .map(|s| format!("{:?} (exit {:?})", s.status, s.exit_code))
            .unwrap_or_default();
        let port = info
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|p| p.get(container_port).cloned().flatten())
            .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
            .and_then(|p| p.parse().ok());
        match port {
            Some(p) => Ok(p),
            None => Err(format!(
                "no published port for {container_port} on {id}, state {state}; its log:\n{}",
                self.logs(id).await
            )
            .into()),
        }
    }

    /// `docker stop` with a grace of `secs` seconds before Docker kills the container.
    pub async fn stop(&self, id: &str, secs: i32) -> Result<(), Failed> {
        self.docker
            .stop_container(
                id,
                Some(
                    bollard::query_parameters::StopContainerOptionsBuilder::new()
                        .t(secs)
                        .build(),
                ),
            )
            .await
            .ctx("docker stop")
    }

    /// Runs a command in a running container; returns (exit code, stdout+stderr).
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> Result<(i64, String), Failed> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .ctx("create exec")?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .ctx("start exec")?
        {
            while let Some(Ok(chunk)) = output.next().await {
                text.push_str(&chunk.to_string());
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .ctx("inspect exec")?
            .exit_code
            .unwrap_or(-1);
        Ok((code, text))
    }

    /// Waits for the container to exit and returns its exit code and logs.
    pub async fn wait_exit(&self, id: &str, limit: Duration) -> Result<(i64, String), Failed> {
        let start = Instant::now();
        loop {
            let info = self
                .docker
                .inspect_container(id, None)
                .await
                .ctx("inspect container")?;
            let state = info.state.unwrap_or_default();
            if state.running != Some(true) {
                return Ok((state.exit_code.unwrap_or(-1), self.logs(id).await));
            }
            if start.elapsed() > limit {
                return Err(Failed::from(format!(
                    "container still running after {limit:?}; logs:\n{}",
                    self.logs(id).await
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn logs(&self, id: &str) -> String {
        let mut s = String::new();
        let mut stream = self.docker.logs(
            id,
            Some(
                bollard::query_parameters::LogsOptionsBuilder::new()
                    .stdout(true)
                    .stderr(true)
                    .tail("200")
                    .build(),
            ),
        );
        while let Some(Ok(chunk)) = stream.next().await {
            s.push_str(&chunk.to_string());
        }
        s
    }
}

fn short_nonce() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Runs one test body with a [`Scope`] and removes everything the scope created afterwards,
/// whatever the outcome.
pub fn scoped<F, Fut>(name: &str, body: F) -> TestResult
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let rt = runtime().map_err(Failed::from)?;
    let docker = rt.block_on(docker())?;
    let scope = Scope {
        docker: docker.clone(),
        name: name.to_string(),
    };
    let prefix = format!("{}-{}-", run_id(), name);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body(scope))));
    rt.block_on(remove_by_prefix(&docker, &prefix));
    match outcome {
        Ok(r) => r,
        Err(p) => Err(Failed::from(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ))),
    }
}

async fn remove_by_prefix(docker: &Docker, prefix: &str) {
    let filters = HashMap::from([
        (
            "label".to_string(),
            vec![format!("harness.run={}", run_id())],
        ),
        ("name".to_string(), vec![prefix.to_string()]),
    ]);
    remove_containers(docker, &filters).await;
    remove_networks(docker, &filters).await;
}

async fn remove_containers(docker: &Docker, filters: &HashMap<String, Vec<String>>) {
    if let Ok(list) = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(filters)
                .build(),
        ))
        .await
    {
        for c in list {
            if let Some(id) = c.id {
                let _ = docker
                    .remove_container(
                        &id,
                        Some(
                            RemoveContainerOptionsBuilder::new()
                                .force(true)
                                .v(true)
                                .build(),
                        ),
                    )
                    .await;
            }
        }
    }
}

async fn remove_networks(docker: &Docker, filters: &HashMap<String, Vec<String>>) {
    if let Ok(list) = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(filters).build(),
        ))
        .await
    {
        for n in list {
            if let Some(id) = n.id {
                let _ = docker.remove_network(&id).await;
            }
        }
    }
}

/// Removes an image the test built (after the scope removed the containers that used it).
pub fn remove_image(reference: &str) {
    let Ok(rt) = runtime() else { return };
    rt.block_on(async {
        if let Ok(d) = docker().await {
            let _ = d
                .remove_image(
                    reference,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        }
    });
}

/// Removes every container and network of this run, and this process's copy of the binary (the
/// suite's last step).
pub fn sweep_run() {
    let _ = std::fs::remove_dir_all(bin_dir());
    if !matches!(docker_state(), DockerState::Ready) {
        return;
    }
    let Ok(rt) = runtime() else { return };
    rt.block_on(async {
        if let Ok(d) = docker().await {
            let filters = HashMap::from([(
                "label".to_string(),
                vec![format!("harness.run={}", run_id())],
            )]);
            remove_containers(&d, &filters).await;
            remove_networks(&d, &filters).await;
        }
    });
}

/// The harness binary under test: cargo's build of it, or `HARNESS_E2E_BIN` (for a shared target
/// directory that other checkouts rebuild while the suite runs). Copied once to a private place so
/// a rebuild mid-run cannot swap it.
pub fn harness_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = std::env::var_os("HARNESS_E2E_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_harness")));
        let dir = bin_dir();
        std::fs::create_dir_all(&dir).expect("temp dir for the harness binary");
        let dst = dir.join("harness");
        std::fs::copy(&src, &dst).expect("copy the harness binary");
        dst
    })
}

/// Runs `harness ARGS` (offline) and returns its output.
pub fn harness(args: &[&str]) -> Result<Output, Failed> {
    harness_env(args, &[])
}

/// Runs `harness ARGS` (offline) with extra environment variables.
pub fn harness_env(args: &[&str], env: &[(&str, &str)]) -> Result<Output, Failed> {
    Command::new(harness_bin())
        .args(args)
        .env("HARNESS_OFFLINE", "1")
        .envs(env.iter().copied())
        .output()
        .ctx("run harness")
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A minimal HTTP/1.0 GET to 127.0.0.1:port. Returns (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:.200}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls until `port` answers `path` with any HTTP status (docker-proxy accepts TCP before the
/// service listens, so a connect alone proves nothing).
pub async fn wait_http(port: u16, path: &str, limit: Duration) -> Result<(u16, String), Failed> {
    let start = Instant::now();
    loop {
        let p = path.to_string();
        let r = tokio::task::spawn_blocking(move || http_get(port, &p))
            .await
            .ctx("http thread")?;
        match r {
            Ok(answer) => return Ok(answer),
            Err(e) if start.elapsed() > limit => {
                return Err(Failed::from(format!(
                    "127.0.0.1:{port}{path} gave no HTTP answer within {limit:?}: {e}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn bin_dir() -> PathBuf {
    std::env::temp_dir().join(format!("harness-{}", run_id()))
}
