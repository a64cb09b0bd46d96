//! `harness mock netcup|geoip|mailpit`: flags, environment, and a runtime that serves until
//! SIGINT/SIGTERM. The bound addresses go to stdout as one JSON line so callers that asked for
//! `--port 0` can find the server.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::{MockError, geoip, mailpit, netcup, server};

#[derive(Debug, Clone, Subcommand)]
pub enum MockCommand {
    /// Netcup CCP DNS API (JSON endpoint at /run/webservice/servers/endpoint.php, control API
    /// under /_harness/, health at /health).
    Netcup(NetcupArgs),
    /// MaxMind GeoIP2 web service (/geoip/v2.1/{country|city|insights}/{ip|me}); HTTPS when
    /// given --tls-cert and --tls-key.
    Geoip(GeoipArgs),
    /// Mailpit-compatible mail catcher: SMTP plus Mailpit's HTTP API. Honours MP_UI_AUTH,
    /// MP_WEBROOT, MP_SMTP_AUTH_ACCEPT_ANY, MP_SMTP_AUTH_ALLOW_INSECURE and MP_MAX_MESSAGES.
    Mailpit(MailpitArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NetcupArgs {
    /// HTTP port; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Loopback by default: a mock started by hand must not answer the
    /// network. The stack's compose files pass --bind 0.0.0.0 inside their containers.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// JSON file with zones to preload: {"zones":[{"name","ttl"?,"records":[...]}]}.
    #[arg(long, value_name = "FILE")]
    pub zones: Option<PathBuf>,
    /// Idle seconds after which a session answers 4001.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub session_ttl: u64,
    /// Unknown zones answer 5028 instead of being created on first use.
    #[arg(long)]
    pub strict_zones: bool,
    /// The customer number `login` accepts.
    #[arg(long, env = "NETCUP_CUSTOMER_NUMBER", default_value = "123456")]
    pub customer_number: String,
    #[arg(
        long,
        env = "NETCUP_API_KEY",
        default_value = "test-api-key",
        hide_env_values = true
    )]
    pub api_key: String,
    /// The API password `login` accepts (prefer the environment: flags show in `ps`).
    #[arg(
        long,
        env = "NETCUP_API_PASSWORD",
        default_value = "test-api-password",
        hide_env_values = true
    )]
    pub api_password: String,
}

#[derive(Debug, Clone, Args)]
pub struct GeoipArgs {
    /// HTTP(S) port; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Address to listen on. Loopback by default: a mock started by hand must not answer the
    /// network. The stack's compose files pass --bind 0.0.0.0 inside their containers.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// PEM certificate chain; with --tls-key the service speaks HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// JSON file of extra entries by "ip" or "network" (see mocks/README.md); they override
    /// the built-in table and may cover private ranges.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// The HTTP Basic user (MaxMind account id) clients must send.
    #[arg(long, env = "GEOIP_ACCOUNT_ID", default_value = "42")]
    pub account_id: String,
    /// The HTTP Basic password (licence key) clients must send.
    #[arg(
        long,
        env = "GEOIP_LICENSE_KEY",
        default_value = "test-license-key",
        hide_env_values = true
    )]
    pub license_key: String,
}

#[derive(Debug, Clone, Args)]
pub struct MailpitArgs {
    /// HTTP port for the API; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 8025)]
    pub port: u16,
    /// SMTP port; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 1025)]
    pub smtp_port: u16,
    /// Address to listen on. Loopback by default: a mock started by hand must not answer the
    /// network. The stack's compose files pass --bind 0.0.0.0 inside their containers.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// URL prefix for every HTTP route, e.g. /mailpit/.
    #[arg(long, env = "MP_WEBROOT", default_value = "/")]
    pub webroot: String,
    /// PEM certificate for SMTP STARTTLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Basic auth for UI and API: space-separated user:password pairs.
    #[arg(long, env = "MP_UI_AUTH", hide_env_values = true)]
    pub ui_auth: Option<String>,
    /// Accept any SMTP AUTH credentials.
    #[arg(long, env = "MP_SMTP_AUTH_ACCEPT_ANY", value_parser = parse_flag, default_value = "false",
          num_args = 0..=1, default_missing_value = "true")]
    pub smtp_auth_accept_any: bool,
    /// Allow SMTP AUTH without TLS.
    #[arg(long, env = "MP_SMTP_AUTH_ALLOW_INSECURE", value_parser = parse_flag, default_value = "false",
          num_args = 0..=1, default_missing_value = "true")]
    pub smtp_auth_allow_insecure: bool,
    /// Keep at most this many messages (0 = unlimited).
    #[arg(long, env = "MP_MAX_MESSAGES", default_value_t = 500)]
    pub max_messages: usize,
    /// SMTP SIZE limit in bytes; bigger mail gets 552.
    #[arg(long, value_name = "BYTES", default_value_t = 25 * 1024 * 1024)]
    pub smtp_max_size: usize,
}

/// Mailpit's boolean environment variables take "true"/"1" and friends.
fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, MockError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| MockError::Io {
            context: "cannot start the async runtime".into(),
            source,
        })
}

/// SIGINT and SIGTERM, installed before the address is announced: a caller may signal as soon
/// as it has read the address line, and an uninstalled handler would let the signal kill us.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, MockError> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |source| MockError::Io {
            context: "cannot install signal handlers".into(),
            source,
        };
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn announce(value: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Runs one mock until SIGINT or SIGTERM, then shuts it down cleanly.
pub fn run(cmd: MockCommand) -> Result<(), MockError> {
    runtime()?.block_on(async move {
        let signals = Signals::install()?;
        match cmd {
            MockCommand::Netcup(a) => {
                let zones = match &a.zones {
                    Some(p) => netcup::load_zones_file(p)?,
                    None => Vec::new(),
                };
                let config = netcup::NetcupConfig {
                    customer_number: a.customer_number,
                    api_key: a.api_key,
                    api_password: a.api_password,
                    session_ttl: Duration::from_secs(a.session_ttl),
                    strict_zones: a.strict_zones,
                    zones,
                };
                let listener = server::bind(SocketAddr::new(a.bind, a.port)).await?;
                let handle = netcup::start(listener, config).await?;
                announce(json!({"service": "netcup", "http": handle.addr().to_string()}));
                signals.wait().await;
                handle.shutdown().await;
            }
            MockCommand::Geoip(a) => {
                let extra = match &a.data {
                    Some(p) => geoip::data::load_data_file(p)?,
                    None => Vec::new(),
                };
                let config = geoip::GeoipConfig {
                    account_id: a.account_id,
                    license_key: a.license_key,
                    tls: a.tls_cert.zip(a.tls_key),
                    extra,
                };
                let listener = server::bind(SocketAddr::new(a.bind, a.port)).await?;
                let handle = geoip::start(listener, config).await?;
                let key = if handle.base_url().starts_with("https") {
                    "https"
                } else {
                    "http"
                };
                announce(json!({"service": "geoip", key: handle.addr().to_string()}));
                signals.wait().await;
                handle.shutdown().await;
            }
            MockCommand::Mailpit(a) => {
                let ui_auth = match &a.ui_auth {
                    Some(v) => mailpit::parse_ui_auth(v)?,
                    None => Vec::new(),
                };
                let config = mailpit::MailpitConfig {
                    webroot: a.webroot,
                    ui_auth,
                    smtp_auth_accept_any: a.smtp_auth_accept_any,
                    smtp_auth_allow_insecure: a.smtp_auth_allow_insecure,
                    max_messages: a.max_messages,
                    max_message_size: a.smtp_max_size,
                    tls: a.tls_cert.zip(a.tls_key),
                    ..mailpit::MailpitConfig::default()
                };
                mailpit::normalise_webroot(&config.webroot)?;
                let http = server::bind(SocketAddr::new(a.bind, a.port)).await?;
                let smtp = server::bind(SocketAddr::new(a.bind, a.smtp_port)).await?;
                let handle = mailpit::start(http, smtp, config).await?;
                announce(json!({
                    "service": "mailpit",
                    "http": handle.addr().to_string(),
                    "smtp": handle.smtp_addr().to_string(),
                }));
                signals.wait().await;
                handle.shutdown().await;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(subcommand)]
        mock: MockCommand,
    }

    fn parse(args: &[&str]) -> MockCommand {
        Wrapper::try_parse_from(std::iter::once("mock").chain(args.iter().copied()))
            .unwrap()
            .mock
    }

    #[test]
    fn defaults_bind_loopback_with_documented_ports_and_credentials() {
        let MockCommand::Netcup(n) = parse(&["netcup"]) else {
            panic!()
        };
        assert_eq!(
            (n.bind.to_string(), n.port, n.session_ttl),
            ("127.0.0.1".into(), 8080, 900)
        );
        assert_eq!(
            (n.customer_number.as_str(), n.api_key.as_str()),
            ("123456", "test-api-key")
        );
        let MockCommand::Geoip(g) = parse(&["geoip"]) else {
            panic!()
        };
        assert_eq!(
            (g.account_id.as_str(), g.license_key.as_str()),
            ("42", "test-license-key")
        );
        let MockCommand::Mailpit(m) = parse(&["mailpit"]) else {
            panic!()
        };
        assert_eq!((m.port, m.smtp_port, m.max_messages), (8025, 1025, 500));
        assert!(!m.smtp_auth_accept_any);
    }

    #[test]
    fn flags_from_design_md_parse() {
        let MockCommand::Netcup(n) = parse(&[
            "netcup",
            "--port",
            "0",
            "--zones",
            "z.json",
            "--session-ttl",
            "5",
            "--strict-zones",
        ]) else {
            panic!()
        };
        assert!(n.strict_zones && n.session_ttl == 5 && n.zones.is_some());
        let MockCommand::Mailpit(m) = parse(&[
            "mailpit",
            "--port",
            "0",
            "--smtp-port",
            "0",
            "--webroot",
            "/mailpit/",
            "--smtp-auth-accept-any",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ]) else {
            panic!()
        };
        assert!(m.smtp_auth_accept_any && !m.smtp_auth_allow_insecure);
        assert_eq!(m.webroot, "/mailpit/");
        assert!(
            Wrapper::try_parse_from(["mock", "geoip", "--tls-cert", "c"]).is_err(),
            "a certificate without a key is refused"
        );
    }
}
