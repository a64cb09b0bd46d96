//! The GeoIP mock as a library server over plain HTTP (HTTPS is covered by the Python acceptance
//! tests with MaxMind's own client).
use harness_mocks::geoip::{self, GeoipConfig};
use serde_json::Value;
use tokio::net::TcpListener;

async fn start() -> geoip::GeoipHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    geoip::start(listener, GeoipConfig::default())
        .await
        .unwrap()
}

async fn get(
    h: &geoip::GeoipHandle,
    path: &str,
    auth: Option<(&str, &str)>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", h.base_url()));
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, ct, resp.json().await.unwrap())
}

const AUTH: Option<(&str, &str)> = Some(("42", "test-license-key"));

#[tokio::test]
async fn answers_the_three_services_with_exact_content_types() {
    let h = start().await;
    let (s, ct, body) = get(&h, "/geoip/v2.1/country/8.8.8.8", AUTH).await;
    assert_eq!(s, 200);
    assert_eq!(
        ct,
        "application/vnd.maxmind.com-country+json; charset=UTF-8; version=2.1"
    );
    assert_eq!(body["country"]["iso_code"], "US");
    assert!(body.get("city").is_none());
    let (_, ct, body) = get(&h, "/geoip/v2.1/city/81.2.69.160", AUTH).await;
    assert_eq!(
        ct,
        "application/vnd.maxmind.com-city+json; charset=UTF-8; version=2.1"
    );
    assert_eq!(body["city"]["names"]["en"], "London");
    assert_eq!(body["subdivisions"][0]["iso_code"], "ENG");
    let (_, _, body) = get(&h, "/geoip/v2.1/insights/2001:4860:4860::8888", AUTH).await;
    assert_eq!(body["traits"]["autonomous_system_number"], 15169);
    assert_eq!(body["traits"]["ip_address"], "2001:4860:4860::8888");
    h.shutdown().await;
}

#[tokio::test]
async fn errors_use_maxmind_codes() {
    let h = start().await;
    let cases = [
        ("/geoip/v2.1/city/8.8.8.8", None, 401, "ACCOUNT_ID_REQUIRED"),
        (
            "/geoip/v2.1/city/8.8.8.8",
            Some(("42", "bad")),
            401,
            "AUTHORIZATION_INVALID",
        ),
        (
            "/geoip/v2.1/city/8.8.8.8",
            Some(("7", "test-license-key")),
            401,
            "AUTHORIZATION_INVALID",
        ),
        (
            "/geoip/v2.1/city/not-an-ip",
            AUTH,
            400,
            "IP_ADDRESS_INVALID",
        ),
        (
            "/geoip/v2.1/city/10.1.1.1",
            AUTH,
            400,
            "IP_ADDRESS_RESERVED",
        ),
        (
            "/geoip/v2.1/city/2001:db8::5",
            AUTH,
            400,
            "IP_ADDRESS_RESERVED",
        ),
        (
            "/geoip/v2.1/city/198.51.100.1",
            AUTH,
            400,
            "IP_ADDRESS_RESERVED",
        ),
        (
            "/geoip/v2.1/city/9.9.9.9",
            AUTH,
            404,
            "IP_ADDRESS_NOT_FOUND",
        ),
        ("/geoip/v2.1/city/", AUTH, 400, "IP_ADDRESS_REQUIRED"),
        ("/geoip/v2.1/me/8.8.8.8", AUTH, 404, "PATH_NOT_FOUND"),
        ("/geoip/v2.1/city/me", AUTH, 400, "IP_ADDRESS_RESERVED"),
    ];
    for (path, auth, status, code) in cases {
        let (s, ct, body) = get(&h, path, auth).await;
        assert_eq!(
            (s, body["code"].as_str().unwrap()),
            (status, code),
            "{path}"
        );
        assert_eq!(
            ct,
            "application/vnd.maxmind.com-error+json; charset=UTF-8; version=2.1"
        );
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_bad_certificate_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "not a pem").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = geoip::start(
        listener,
        GeoipConfig {
            tls: Some((cert.clone(), cert)),
            ..GeoipConfig::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.kind(), harness_mocks::ErrorKind::BadInput);
}
