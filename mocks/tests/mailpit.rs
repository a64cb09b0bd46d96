//! The catcher as a library server: SMTP conversations on a raw socket, then the HTTP API.
use harness_mocks::mailpit::{self, MailpitConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn start(config: MailpitConfig) -> mailpit::MailpitHandle {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    mailpit::start(http, smtp, config).await.unwrap()
}

struct Smtp {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Smtp {
    async fn connect(h: &mailpit::MailpitHandle) -> Smtp {
        let (r, w) = TcpStream::connect(h.smtp_addr())
            .await
            .unwrap()
            .into_split();
        let mut s = Smtp {
            r: BufReader::new(r),
            w,
        };
        assert_eq!(s.reply().await, 220);
        s
    }

    async fn reply(&mut self) -> u16 {
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line[..3].parse().unwrap();
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> u16 {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    async fn send(&mut self, from: &str, to: &str, data: &str) -> u16 {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).await, 250);
        assert_eq!(self.cmd(&format!("RCPT TO:<{to}>")).await, 250);
        assert_eq!(self.cmd("DATA").await, 354);
        self.w.write_all(data.as_bytes()).await.unwrap();
        self.w.write_all(b"\r\n.\r\n").await.unwrap();
        self.reply().await
    }
}

async fn json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_session_survives_garbage_and_delivers() {
    let h = start(MailpitConfig::default()).await;
    let mut s = Smtp::connect(&h).await;
    assert_eq!(s.cmd("HELLO?").await, 500);
    assert_eq!(s.cmd("MAIL FROM:<a@b.c>").await, 503, "needs EHLO first");
    assert_eq!(s.cmd("EHLO me").await, 250);
    assert_eq!(s.cmd("DATA").await, 503);
    assert_eq!(
        s.cmd("AUTH PLAIN AGEAYg==").await,
        502,
        "AUTH is off by default"
    );
    let code = s
        .send(
            "a@example.com",
            "b@example.com",
            "Subject: hi\r\nTo: b@example.com\r\n\r\n..x\r\nbody",
        )
        .await;
    assert_eq!(code, 250);
    assert_eq!(s.cmd("RSET").await, 250);
    assert_eq!(s.cmd("QUIT").await, 221);
    let list = json(format!("{}api/v1/messages", h.base_url())).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["messages"][0]["Subject"], "hi");
    let id = list["messages"][0]["ID"].as_str().unwrap();
    let txt = reqwest::get(format!("{}view/{id}.txt", h.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(txt, ".x\r\nbody\r\n");
    h.shutdown().await;
}

#[tokio::test]
async fn the_webroot_prefixes_every_route() {
    let h = start(MailpitConfig {
        webroot: "/mailpit/".into(),
        ..MailpitConfig::default()
    })
    .await;
    assert!(h.base_url().ends_with("/mailpit/"));
    let base = h.base_url();
    for path in ["", "livez", "readyz", "api/v1/info", "api/v1/messages"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{base}{path}");
    }
    let r = reqwest::get(format!("http://{}/api/v1/messages", h.addr()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    h.shutdown().await;
}

#[tokio::test]
async fn many_parallel_senders_all_land() {
    let h = start(MailpitConfig {
        max_messages: 0,
        ..MailpitConfig::default()
    })
    .await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let addr = h.smtp_addr();
        tasks.push(tokio::spawn(async move {
            let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
            let mut s = Smtp {
                r: BufReader::new(r),
                w,
            };
            assert_eq!(s.reply().await, 220);
            assert_eq!(s.cmd("EHLO p").await, 250);
            for i in 0..20 {
                let data = format!("Subject: p{n}-{i}\r\n\r\nbody");
                assert_eq!(s.send("a@example.com", "b@example.com", &data).await, 250);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(h.message_count(), 160);
    let found = json(format!("{}api/v1/search?query=subject:p3-", h.base_url())).await;
    assert_eq!(found["messages_count"], 20);
    h.shutdown().await;
}
