//! The one way harness reaches the Docker engine, and the one async runtime it does so on.
//!
//! `DOCKER_HOST` is read here only, as the docker CLI reads it: unset or empty means the local
//! socket. The API version is negotiated, so older daemons such as Debian's 20.10 (API 1.41) work,
//! and a daemon that does not answer fails within a bound instead of hanging the command. The
//! images, the stack, the sweep and the deploy's boot check all connect through [`connect`].
//!
//! A process has one runtime ([`runtime`]) and one client, made on first use and shared after
//! that: a client's connection pool lives on the runtime it first ran on, so one runtime is what
//! lets the start-up sweep, the images and the stack use the same connection.
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;

use crate::error::{Exit, Failure};

/// Where the engine is when `DOCKER_HOST` is unset or empty.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Where the engine's published ports are reached, and what they are published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// The address to connect to: the engine's host for a tcp:// engine, else loopback.
    pub host: String,
    /// The host IP a port binding names: loopback for a local engine (never the LAN), the
    /// engine's own address when DOCKER_HOST gives it as an IP, else "" (the engine's default).
    pub bind: String,
}

impl Ports {
    /// `host:port`, an IPv6 host in brackets (for URLs).
    pub fn at(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

/// How the stack's published ports are reached, from `DOCKER_HOST` as the docker CLI reads
/// it.
pub fn ports() -> &'static Ports {
    static PORTS: OnceLock<Ports> = OnceLock::new();
    PORTS.get_or_init(|| ports_for(std::env::var("DOCKER_HOST").ok().as_deref()))
}

fn ports_for(docker_host: Option<&str>) -> Ports {
    let local = Ports {
        host: "127.0.0.1".into(),
        bind: "127.0.0.1".into(),
    };
    let Some(rest) = docker_host.and_then(|h| {
        ["tcp://", "http://", "https://"]
            .iter()
            .find_map(|scheme| h.strip_prefix(scheme))
    }) else {
        return local;
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() {
        return local;
    }
    let bind = if host.parse::<std::net::IpAddr>().is_ok() {
        host.to_string()
    } else {
        String::new()
    };
    Ports {
        host: host.to_string(),
        bind,
    }
}

/// How long a command waits for the engine's first answer.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// The engine did not answer: where harness looked, why there, and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot reach the Docker daemon at {endpoint} ({docker_host}): {reason}")]
pub struct Unreachable {
    pub endpoint: String,
    /// `DOCKER_HOST=…`, or that it is unset.
    pub docker_host: String,
    pub reason: String,
}

impl From<Unreachable> for Failure {
    fn from(e: Unreachable) -> Failure {
        let hint = if e.endpoint.starts_with("unix://") {
            "start the Docker daemon, or point DOCKER_HOST at a running one \
             (e.g. unix:///var/run/docker.sock); the user needs access to its socket"
        } else {
            "check that the engine answers there (`docker version` with the same DOCKER_HOST, \
             DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), or unset DOCKER_HOST for the local socket"
        };
        Failure::new(Exit::Environment, e.to_string()).hint(hint)
    }
}

/// The process's client: made on the first call (the engine `DOCKER_HOST` names, or the local
/// socket, version-negotiated within `limit`), the same one after that. A failed attempt is not
/// kept, so a later call with a longer `limit` tries again.
pub async fn connect(limit: Duration) -> Result<Docker, Unreachable> {
    static CLIENT: tokio::sync::OnceCell<Docker> = tokio::sync::OnceCell::const_new();
    CLIENT.get_or_try_init(|| negotiated(limit)).await.cloned()
}

async fn negotiated(limit: Duration) -> Result<Docker, Unreachable> {
    let docker_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let endpoint = docker_host
        .clone()
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
    let unreachable = |reason: String| Unreachable {
        endpoint: endpoint.clone(),
        docker_host: match &docker_host {
            Some(h) => format!("DOCKER_HOST={h}"),
            None => "DOCKER_HOST is not set, so the default socket was tried".into(),
        },
        reason,
    };
    if endpoint.starts_with("ssh://") {
        return Err(unreachable(
            "ssh:// engines are not supported yet; expose the engine on tcp:// with TLS \
             (dockerd --tlsverify) and set DOCKER_HOST=tcp://HOST:2376, DOCKER_TLS_VERIFY=1 and \
             DOCKER_CERT_PATH (docs/scale.md)"
                .into(),
        ));
    }
    // An empty DOCKER_HOST means unset, as for the docker CLI (bollard would reject it).
    // tcp:// with DOCKER_TLS_VERIFY set connects with DOCKER_CERT_PATH's ca.pem, cert.pem and
    // key.pem, as the docker CLI does.
    let docker = Docker::connect_with_host(&endpoint).map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(limit, docker.negotiate_version()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            limit.as_secs()
        ))),
    }
}

/// The process's runtime for Docker work, built on first use: two workers (the engine does the
/// heavy lifting; blocking work goes to tokio's blocking pool). Every `block_on` of harness runs
/// on it, from whichever thread, so the one client in [`connect`] serves them all.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    // Two threads racing here: the loser's runtime is dropped unused.
    Ok(RUNTIME.get_or_init(|| rt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_reached_at_the_engines_address() {
        let local = Ports {
            host: "127.0.0.1".into(),
            bind: "127.0.0.1".into(),
        };
        assert_eq!(ports_for(None), local);
        assert_eq!(ports_for(Some("unix:///var/run/docker.sock")), local);
        assert_eq!(
            ports_for(Some("tcp://127.0.0.2:23750")),
            Ports {
                host: "127.0.0.2".into(),
                bind: "127.0.0.2".into()
            }
        );
        assert_eq!(
            ports_for(Some("tcp://docker.internal:2376")),
            Ports {
                host: "docker.internal".into(),
                bind: String::new()
            }
        );
        assert_eq!(
            ports_for(Some("tcp://[::1]:2376")),
            Ports {
                host: "::1".into(),
                bind: "::1".into()
            }
        );
    }
}
