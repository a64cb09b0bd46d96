//! Measures the speed goals of issue 3 in process; figures only, nothing asserted.
//!
//!   cargo run --release -p harness-mocks --example bench
//!
//! - time from `start` to the first 200 from the health check, for each mock;
//! - SMTP messages per second from parallel senders into the catcher;
//! - list and search latency over HTTP with 500 messages stored.
//!
//! Netcup login throughput is measured with wrk against the real binary: mocks/bench/wrk-login.sh.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness_mocks::{geoip, mailpit, netcup};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP/1.1 GET on a fresh connection; returns the status code, or None if not answering.
async fn status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()
}

async fn until_healthy(addr: SocketAddr, path: &str) {
    while status(addr, path).await != Some(200) {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} median {:>8.3} ms   p95 {:>8.3} ms   max {:>8.3} ms   (n={})",
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.95).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}

async fn time_to_healthy() {
    const RUNS: usize = 30;
    let mut n = Vec::new();
    let mut g = Vec::new();
    let mut m = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = netcup::start(l, netcup::NetcupConfig::default())
            .await
            .unwrap();
        until_healthy(h.addr(), "/health").await;
        n.push(t.elapsed());
        h.shutdown().await;

        let t = Instant::now();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = geoip::start(l, geoip::GeoipConfig::default())
            .await
            .unwrap();
        until_healthy(h.addr(), "/health").await;
        g.push(t.elapsed());
        h.shutdown().await;

        let t = Instant::now();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = mailpit::start(http, smtp, mailpit::MailpitConfig::default())
            .await
            .unwrap();
        until_healthy(h.addr(), "/livez").await;
        m.push(t.elapsed());
        h.shutdown().await;
    }
    summary("time to healthy: netcup /health", n);
    summary("time to healthy: geoip /health", g);
    summary("time to healthy: mailpit /livez", m);
}

async fn smtp_reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> u16 {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line[..3].parse().unwrap();
        }
    }
}

async fn send_many(addr: SocketAddr, sender: usize, count: usize) {
    let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    assert_eq!(smtp_reply(&mut r).await, 220);
    w.write_all(b"EHLO bench\r\n").await.unwrap();
    assert_eq!(smtp_reply(&mut r).await, 250);
    for i in 0..count {
        let msg = format!("MAIL FROM:<s{sender}@example.com>\r\n");
        w.write_all(msg.as_bytes()).await.unwrap();
        assert_eq!(smtp_reply(&mut r).await, 250);
        w.write_all(b"RCPT TO:<inbox@example.com>\r\n")
            .await
            .unwrap();
        assert_eq!(smtp_reply(&mut r).await, 250);
        w.write_all(b"DATA\r\n").await.unwrap();
        assert_eq!(smtp_reply(&mut r).await, 354);
        let body = format!(
            "From: Sender {sender} <s{sender}@example.com>\r\nTo: inbox@example.com\r\nSubject: bench {sender}-{i} needle{}\r\nMessage-ID: <{sender}.{i}@bench>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHello number {i} from sender {sender}. {}\r\n--B\r\nContent-Type: text/html\r\n\r\n<p>Hello number {i}</p>\r\n--B--\r\n.\r\n",
            i % 10,
            "Lorem ipsum dolor sit amet. ".repeat(20)
        );
        w.write_all(body.as_bytes()).await.unwrap();
        assert_eq!(smtp_reply(&mut r).await, 250);
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
}

async fn smtp_and_queries() {
    const SENDERS: usize = 8;
    const PER_SENDER: usize = 250;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = mailpit::start(
        http,
        smtp,
        mailpit::MailpitConfig {
            max_messages: 0,
            ..mailpit::MailpitConfig::default()
        },
    )
    .await
    .unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|s| tokio::spawn(send_many(h.smtp_addr(), s, PER_SENDER)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = t.elapsed();
    let total = SENDERS * PER_SENDER;
    assert_eq!(h.message_count(), total);
    println!(
        "SMTP: {total} messages from {SENDERS} parallel senders in {:.3} s = {:.0} messages/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    h.shutdown().await;

    // A mailbox of exactly 500 messages (Mailpit's default limit) for the query timings.
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = mailpit::start(http, smtp, mailpit::MailpitConfig::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|s| tokio::spawn(send_many(h.smtp_addr(), s, 100)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(h.message_count(), 500);
    let client = reqwest::Client::new();
    let base = h.base_url();
    for (name, path) in [
        ("list (limit 50)", "api/v1/messages".to_string()),
        ("list (limit 500)", "api/v1/messages?limit=500".to_string()),
        (
            "search free text",
            "api/v1/search?query=needle3".to_string(),
        ),
        (
            "search to: + subject:",
            "api/v1/search?query=to:inbox%20subject:bench".to_string(),
        ),
        (
            "search no match",
            "api/v1/search?query=nomatchanywhere".to_string(),
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let resp = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let _ = resp.bytes().await.unwrap();
            samples.push(t.elapsed());
        }
        summary(&format!("500 stored: {name}"), samples);
    }
    h.shutdown().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        time_to_healthy().await;
        smtp_and_queries().await;
    });
}
