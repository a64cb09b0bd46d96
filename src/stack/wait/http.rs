//! Ready when `GET path` on the published port answers 2xx. Anything else, a 500 or 502
//! included, is not ready: an app whose import failed answers 500 on every path.
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{POLL, PROBE_USER_AGENT, Target, WaitError};
use crate::stack::compose::TlsWait;

pub(super) async fn wait(
    target: &Target<'_>,
    port: u16,
    path: &str,
    tls: Option<&TlsWait>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), WaitError> {
    // A container that died at once has no ports; say that, not "not published".
    target.ensure_running().await?;
    let Some(&host_port) = target.ports.get(&port) else {
        return Err(target
            .fail(format!("port {port} is not published"), None)
            .await);
    };
    // Built once: a CA file that cannot be read is a setup error, not something to retry.
    let tls = match tls {
        None => None,
        Some(t) => Some(connector(t).map_err(|e| {
            let ca = t.ca.display();
            WaitError {
                service: target.service.to_string(),
                reason: format!("cannot use the CA {ca} for the TLS wait: {e}"),
                exit_code: None,
                logs: Vec::new(),
            }
        })?),
    };
    loop {
        target.ensure_running().await?;
        let probe = match &tls {
            None => get_status(host_port, path).await,
            Some((connector, name)) => get_status_tls(host_port, path, connector, name).await,
        };
        let last = match probe {
            Ok(status) if (200..300).contains(&status) => return Ok(()),
            Ok(status) => format!("GET {path} answered {status}"),
            Err(e) => format!("GET {path}: {e}"),
        };
        if Instant::now() >= deadline {
            let what = format!("GET {path} on port {port} did not answer 2xx");
            return Err(target.timed_out(&what, timeout, &last).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The status code of one plain HTTP/1.1 GET to a published port, where the engine publishes
/// (127.0.0.1 for a local engine: the only addresses we talk to are our own containers').
pub async fn get_status(port: u16, path: &str) -> std::io::Result<u16> {
    within_deadline(async {
        let stream = TcpStream::connect((crate::docker::ports().host.as_str(), port)).await?;
        status_of_get(stream, path, "localhost").await
    })
    .await
}

/// Sends one GET over `stream` and reads the status line of the answer.
async fn status_of_get<S>(mut stream: S, path: &str, host: &str) -> std::io::Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: {PROBE_USER_AGENT}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no HTTP status line (connection closed early)",
        )
    })
}

/// One probe may take 2 s at most; the wait's own timeout governs the whole.
async fn within_deadline(
    probe: impl std::future::Future<Output = std::io::Result<u16>>,
) -> std::io::Result<u16> {
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 2 s"))?
}

/// A TLS client that trusts only the given CA: the wait passes only for a certificate our CA
/// issued for `server_name`, exactly what a browser in the stack will check.
pub fn connector(
    t: &TlsWait,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    ),
    String,
> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&t.ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(t.server_name.clone())
        .map_err(|e| format!("`{}` is not a server name: {e}", t.server_name))?;
    Ok((
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        name,
    ))
}

/// Like [`get_status`], through a verified TLS connection; the Host header is the server name.
pub async fn get_status_tls(
    port: u16,
    path: &str,
    connector: &tokio_rustls::TlsConnector,
    name: &rustls_pki_types::ServerName<'static>,
) -> std::io::Result<u16> {
    within_deadline(async {
        let tcp = TcpStream::connect((crate::docker::ports().host.as_str(), port)).await?;
        let stream = connector.connect(name.clone(), tcp).await?;
        let host = match name {
            rustls_pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
            other => format!("{other:?}"),
        };
        status_of_get(stream, path, &host).await
    })
    .await
}

fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 502 Bad Gateway\r\nX: y"),
            Some(502)
        );
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[tokio::test]
    async fn a_500_is_an_answer_but_not_ready_and_a_200_is() {
        use tokio::net::TcpListener;
        for (reply, want) in [
            ("HTTP/1.1 500 Internal Server Error", 500),
            ("HTTP/1.1 204 No Content", 204),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap();
                assert!(
                    std::str::from_utf8(&buf[..n])
                        .unwrap()
                        .starts_with("GET /health HTTP/1.1\r\n")
                );
                s.write_all(format!("{reply}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            });
            assert_eq!(get_status(port, "/health").await.unwrap(), want);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_listener_that_closes_without_answering_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            drop(s);
        });
        assert!(get_status(port, "/").await.is_err());
        server.await.unwrap();
    }
}
