//! TLS paths with a throwaway self-signed certificate: GeoIP over HTTPS and SMTP STARTTLS, both
//! with certificate verification on in the client.
use std::sync::Arc;

use harness_mocks::{geoip, mailpit};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

struct Certs {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    connector: TlsConnector,
}

fn certs() -> Certs {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Certs {
        _dir: dir,
        cert,
        key,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

#[tokio::test]
async fn geoip_serves_https_with_the_given_certificate() {
    let c = certs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = geoip::start(
        listener,
        geoip::GeoipConfig {
            tls: Some((c.cert.clone(), c.key.clone())),
            ..geoip::GeoipConfig::default()
        },
    )
    .await
    .unwrap();
    assert!(h.base_url().starts_with("https://"));
    let tcp = TcpStream::connect(h.addr()).await.unwrap();
    let mut tls = c.connector.connect(localhost(), tcp).await.unwrap();
    // "42:test-license-key"
    tls.write_all(
        b"GET /geoip/v2.1/country/1.1.1.1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic NDI6dGVzdC1saWNlbnNlLWtleQ==\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut resp = String::new();
    tls.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"iso_code\":\"AU\""), "{resp}");

    // Plain HTTP to the HTTPS port gets no answer, and the server carries on.
    let mut plain = TcpStream::connect(h.addr()).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    let tcp = TcpStream::connect(h.addr()).await.unwrap();
    assert!(c.connector.connect(localhost(), tcp).await.is_ok());
    h.shutdown().await;
}

async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> (u16, String) {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return (line[..3].parse().unwrap(), all);
        }
    }
}

#[tokio::test]
async fn smtp_starttls_upgrades_and_then_offers_auth() {
    let c = certs();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = mailpit::start(
        http,
        smtp,
        mailpit::MailpitConfig {
            tls: Some((c.cert.clone(), c.key.clone())),
            smtp_auth_accept_any: true,
            ..mailpit::MailpitConfig::default()
        },
    )
    .await
    .unwrap();
    let mut plain = BufReader::new(TcpStream::connect(h.smtp_addr()).await.unwrap());
    assert_eq!(reply(&mut plain).await.0, 220);
    plain.get_mut().write_all(b"EHLO t\r\n").await.unwrap();
    let (code, ehlo) = reply(&mut plain).await;
    assert_eq!(code, 250);
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    plain.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
    assert_eq!(reply(&mut plain).await.0, 220);

    let tls = c
        .connector
        .connect(localhost(), plain.into_inner())
        .await
        .unwrap();
    let mut tls = BufReader::new(tls);
    tls.get_mut().write_all(b"EHLO t\r\n").await.unwrap();
    let (code, ehlo) = reply(&mut tls).await;
    assert_eq!(code, 250);
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    // AUTH PLAIN "\0tls\0pw"
    for (line, expect) in [
        ("AUTH PLAIN AHRscwBwdw==", 235),
        ("MAIL FROM:<a@example.com>", 250),
        ("RCPT TO:<b@example.com>", 250),
        ("DATA", 354),
    ] {
        tls.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(reply(&mut tls).await.0, expect, "{line}");
    }
    tls.get_mut()
        .write_all(b"Subject: secret\r\n\r\nover TLS\r\n.\r\n")
        .await
        .unwrap();
    assert_eq!(reply(&mut tls).await.0, 250);
    assert_eq!(h.message_count(), 1);
    h.shutdown().await;
}
