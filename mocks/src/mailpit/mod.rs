//! A Mailpit-compatible mail catcher (contracts.md §4): SMTP in, Mailpit's HTTP API out, under
//! an optional webroot with optional basic auth. Used offline, where the real Mailpit image
//! cannot be pulled.
mod api;
pub mod search;
pub mod smtp;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::MockError;
use crate::server::{Running, load_tls, serve_http};
use store::Store;

/// How the catcher behaves. `Default` matches Mailpit's defaults: webroot `/`, no UI auth,
/// SMTP AUTH off, 500 messages kept.
#[derive(Debug, Clone)]
pub struct MailpitConfig {
    /// URL prefix for every HTTP route, e.g. `/mailpit/` (MP_WEBROOT).
    pub webroot: String,
    /// Accounts for HTTP basic auth on UI and API (MP_UI_AUTH="user:pass user2:pass2").
    pub ui_auth: Vec<(String, String)>,
    /// Accept any SMTP AUTH credentials (MP_SMTP_AUTH_ACCEPT_ANY).
    pub smtp_auth_accept_any: bool,
    /// Allow SMTP AUTH without TLS (MP_SMTP_AUTH_ALLOW_INSECURE).
    pub smtp_auth_allow_insecure: bool,
    /// Oldest messages are pruned beyond this many; 0 keeps all (MP_MAX_MESSAGES).
    pub max_messages: usize,
    /// SMTP SIZE limit in bytes; larger mail gets 552.
    pub max_message_size: usize,
    /// PEM certificate and key; enables STARTTLS on SMTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Name used in the SMTP greeting.
    pub hostname: String,
}

impl Default for MailpitConfig {
    fn default() -> Self {
        Self {
            webroot: "/".into(),
            ui_auth: Vec::new(),
            smtp_auth_accept_any: false,
            smtp_auth_allow_insecure: false,
            max_messages: 500,
            max_message_size: 25 * 1024 * 1024,
            tls: None,
            hostname: "mailpit".into(),
        }
    }
}

/// Parses MP_UI_AUTH: space-separated `user:password` pairs.
pub fn parse_ui_auth(value: &str) -> Result<Vec<(String, String)>, MockError> {
    value
        .split_whitespace()
        .map(|pair| match pair.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok((u.to_string(), p.to_string())),
            _ => Err(MockError::BadArgument(
                "MP_UI_AUTH must be space-separated user:password pairs".into(),
            )),
        })
        .collect()
}

/// Normalises a webroot to "" (root) or "/prefix" without a trailing slash.
pub fn normalise_webroot(webroot: &str) -> Result<String, MockError> {
    let trimmed = webroot.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed.split('/').any(|seg| {
        seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    }) {
        return Err(MockError::BadArgument(format!(
            "webroot {webroot:?} must be a path like /mailpit/ (letters, digits, - _ . ~)"
        )));
    }
    Ok(format!("/{trimmed}"))
}

pub struct MailpitHandle {
    http: Running,
    smtp: Running,
    webroot: String,
    store: Arc<Store>,
}

impl MailpitHandle {
    /// The HTTP address (API, views, health).
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp.addr()
    }

    /// Base URL of the HTTP side including the webroot, with a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}{}/", self.addr(), self.webroot)
    }

    /// Messages stored now.
    pub fn message_count(&self) -> usize {
        self.store.count().0
    }

    pub async fn shutdown(self) {
        self.smtp.shutdown().await;
        self.http.shutdown().await;
    }
}

/// Starts the catcher: HTTP on `http`, SMTP on `smtp`.
pub async fn start(
    http: TcpListener,
    smtp: TcpListener,
    config: MailpitConfig,
) -> Result<MailpitHandle, MockError> {
    let webroot = normalise_webroot(&config.webroot)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(load_tls(cert, key)?),
        None => None,
    };
    let store = Arc::new(Store::new(config.max_messages));
    let ctx = Arc::new(smtp::SmtpContext {
        store: store.clone(),
        hostname: config.hostname.clone(),
        max_message_size: config.max_message_size,
        auth_accept_any: config.smtp_auth_accept_any,
        auth_allow_insecure: config.smtp_auth_allow_insecure,
        tls: tls.map(TlsAcceptor::from),
    });
    let app = api::router(api::ApiState {
        store: store.clone(),
        ui_auth: Arc::new(config.ui_auth.clone()),
        started: Instant::now(),
        webroot: webroot.clone(),
    });
    let smtp = smtp::serve_smtp(smtp, ctx)?;
    // The certificate is for SMTP STARTTLS only, as Mailpit's MP_SMTP_TLS_CERT: the proxy in
    // front of the catcher speaks plain HTTP to it.
    let http = serve_http(http, app, None)?;
    Ok(MailpitHandle {
        http,
        smtp,
        webroot,
        store,
    })
}
