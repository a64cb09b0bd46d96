//! The Netcup mock as a library server: started on an ephemeral port, driven over HTTP.
use std::time::Duration;

use harness_mocks::netcup::{self, NetcupConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;

async fn start(config: NetcupConfig) -> netcup::NetcupHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    netcup::start(listener, config).await.unwrap()
}

async fn call(client: &reqwest::Client, h: &netcup::NetcupHandle, body: Value) -> Value {
    let resp = client
        .post(h.endpoint())
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn login(client: &reqwest::Client, h: &netcup::NetcupHandle) -> String {
    let r = call(
        client,
        h,
        json!({"action":"login","param":{"customernumber":"123456","apikey":"test-api-key","apipassword":"test-api-password"}}),
    )
    .await;
    r["responsedata"]["apisessionid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn updates_touch_only_submitted_records() {
    let h = start(NetcupConfig::default()).await;
    let c = reqwest::Client::new();
    let sid = login(&c, &h).await;
    let p = |extra: Value| {
        let mut base = json!({"customernumber":"123456","apikey":"test-api-key","apisessionid":sid,"domainname":"example.com"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    let before = call(
        &c,
        &h,
        json!({"action":"infoDnsRecords","param":p(json!({}))}),
    )
    .await;
    let before = before["responsedata"]["dnsrecords"]
        .as_array()
        .unwrap()
        .clone();
    let first_id = before[0]["id"].as_str().unwrap().to_string();
    let after = call(
        &c,
        &h,
        json!({"action":"updateDnsRecords","param":p(json!({"dnsrecordset":{"dnsrecords":[
            {"id":first_id,"hostname":"@","type":"A","destination":"192.0.2.200","deleterecord":false,"state":"yes"},
            {"hostname":"new","type":"AAAA","destination":"2001:db8::200"}
        ]}}))}),
    )
    .await;
    assert_eq!(after["status"], "success", "{after}");
    let recs = after["responsedata"]["dnsrecords"].as_array().unwrap();
    assert_eq!(recs.len(), before.len() + 1);
    assert_eq!(recs[0]["destination"], "192.0.2.200");
    for (old, new) in before.iter().zip(recs.iter()).skip(1) {
        assert_eq!(old, new, "untouched records stay as they were");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_4013_and_the_server_stays_up() {
    let h = start(NetcupConfig::default()).await;
    let c = reqwest::Client::new();
    for body in [
        "",
        "{",
        "[]",
        r#"{"action":5}"#,
        r#"{"action":"bogus"}"#,
        r#"{"action":"login","param":[]}"#,
    ] {
        let r: Value = c
            .post(h.endpoint())
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["statuscode"], 4013, "{body}: {r}");
        assert_eq!(r["responsedata"], "");
    }
    let health = c
        .get(format!("http://{}/health", h.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn sessions_expire_after_the_idle_ttl() {
    let h = start(NetcupConfig {
        session_ttl: Duration::from_millis(300),
        ..NetcupConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let sid = login(&c, &h).await;
    let zone = json!({"action":"infoDnsZone","param":{"customernumber":"123456","apikey":"test-api-key","apisessionid":sid,"domainname":"example.com"}});
    assert_eq!(call(&c, &h, zone.clone()).await["statuscode"], 2000);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(call(&c, &h, zone).await["statuscode"], 4001);
    h.shutdown().await;
}

#[tokio::test]
async fn a_session_belongs_to_its_credentials() {
    let h = start(NetcupConfig::default()).await;
    let c = reqwest::Client::new();
    let sid = login(&c, &h).await;
    let r = call(
        &c,
        &h,
        json!({"action":"infoDnsZone","param":{"customernumber":"999999","apikey":"test-api-key","apisessionid":sid,"domainname":"example.com"}}),
    )
    .await;
    assert_eq!(r["statuscode"], 4001);
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_the_port() {
    let h = start(NetcupConfig::default()).await;
    let addr = h.addr();
    h.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // And the port can be bound again.
    TcpListener::bind(addr).await.unwrap();
}
