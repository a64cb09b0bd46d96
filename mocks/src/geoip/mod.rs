//! MaxMind GeoIP2 web service mock (contracts.md §3): `country`, `city` and `insights` under
//! `/geoip/v2.1/`, HTTPS when given a certificate, HTTP Basic auth, MaxMind's error codes and
//! exact content types. Answers come from a deterministic table (see `data`).
pub mod data;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::MockError;
use crate::server::{Running, load_tls, serve_http};
use data::{Entry, Lookup, Table};

/// How the mock behaves. `Default`: account 42, licence key "test-license-key", plain HTTP,
/// built-in table only.
#[derive(Debug, Clone)]
pub struct GeoipConfig {
    pub account_id: String,
    pub license_key: String,
    /// PEM certificate chain and key; with them the mock speaks HTTPS only.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Entries added to (and overriding) the built-in table.
    pub extra: Vec<Entry>,
}

impl Default for GeoipConfig {
    fn default() -> Self {
        Self {
            account_id: "42".into(),
            license_key: "test-license-key".into(),
            tls: None,
            extra: Vec::new(),
        }
    }
}

pub struct GeoipHandle {
    running: Running,
    tls: bool,
}

impl GeoipHandle {
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await
    }
}

struct Shared {
    account_id: String,
    license_key: String,
    table: Table,
}

pub async fn start(listener: TcpListener, config: GeoipConfig) -> Result<GeoipHandle, MockError> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(load_tls(cert, key)?),
        None => None,
    };
    let shared = Arc::new(Shared {
        account_id: config.account_id,
        license_key: config.license_key,
        table: Table::new(config.extra),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/geoip/v2.1/{service}/{ip}", get(lookup))
        .route("/geoip/v2.1/{service}", get(missing_ip))
        .route("/geoip/v2.1/{service}/", get(missing_ip))
        .fallback(not_found)
        .with_state(shared);
    let is_tls = tls.is_some();
    Ok(GeoipHandle {
        running: serve_http(listener, app, tls)?,
        tls: is_tls,
    })
}

const ERROR_TYPE: &str = "application/vnd.maxmind.com-error+json; charset=UTF-8; version=2.1";

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"code": code, "error": message.into()});
    (
        status,
        [(header::CONTENT_TYPE, ERROR_TYPE)],
        serde_json::to_vec(&body).expect("serialises"),
    )
        .into_response()
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "service": "geoip"}))
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "PATH_NOT_FOUND",
        "The requested path is not part of the GeoIP2 web service: use /geoip/v2.1/{country|city|insights}/{ip|me}.",
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Service {
    Country,
    City,
    Insights,
}

fn service(name: &str) -> Option<Service> {
    match name {
        "country" => Some(Service::Country),
        "city" => Some(Service::City),
        "insights" => Some(Service::Insights),
        _ => None,
    }
}

/// Checks HTTP Basic auth the way MaxMind reports it: which part is missing, or that the pair
/// is wrong.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let unauthorized = |code: &str, msg: &str| Box::new(error(StatusCode::UNAUTHORIZED, code, msg));
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized(
            "ACCOUNT_ID_REQUIRED",
            "You have not supplied a MaxMind account ID in the Authorization header.",
        ));
    };
    let Some((user, password)) = crate::util::basic_auth(value) else {
        return Err(unauthorized(
            "AUTHORIZATION_INVALID",
            "The Authorization header is not valid HTTP Basic authentication.",
        ));
    };
    if user.is_empty() {
        return Err(unauthorized(
            "ACCOUNT_ID_REQUIRED",
            "You have not supplied a MaxMind account ID in the Authorization header.",
        ));
    }
    let password = password.unwrap_or_default();
    if password.is_empty() {
        return Err(unauthorized(
            "LICENSE_KEY_REQUIRED",
            "You have not supplied a MaxMind license key in the Authorization header.",
        ));
    }
    if user != shared.account_id || password != shared.license_key {
        return Err(unauthorized(
            "AUTHORIZATION_INVALID",
            "Your account ID or license key could not be authenticated.",
        ));
    }
    Ok(())
}

async fn missing_ip(
    State(shared): State<Arc<Shared>>,
    UrlPath(svc): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared, &headers) {
        return *r;
    }
    if service(&svc).is_none() {
        return not_found().await;
    }
    error(
        StatusCode::BAD_REQUEST,
        "IP_ADDRESS_REQUIRED",
        "You have not supplied an IP address, which is a required field.",
    )
}

async fn lookup(
    State(shared): State<Arc<Shared>>,
    UrlPath((svc, ip_text)): UrlPath<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&shared, &headers) {
        return *r;
    }
    let Some(svc) = service(&svc) else {
        return not_found().await;
    };
    let ip: IpAddr = if ip_text == "me" {
        data::canonical(peer.ip())
    } else {
        match ip_text.parse() {
            Ok(ip) => ip,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "IP_ADDRESS_INVALID",
                    format!("The value \"{ip_text}\" is not a valid IP address."),
                );
            }
        }
    };
    match shared.table.lookup(ip) {
        Lookup::Reserved => error(
            StatusCode::BAD_REQUEST,
            "IP_ADDRESS_RESERVED",
            format!("The IP address you provided ({ip}) is not a public IP address."),
        ),
        Lookup::NotFound => error(
            StatusCode::NOT_FOUND,
            "IP_ADDRESS_NOT_FOUND",
            format!("The address {ip} is not in our database."),
        ),
        Lookup::Found(entry) => {
            let (name, body) = match svc {
                Service::Country => ("country", body(svc, ip, entry)),
                Service::City => ("city", body(svc, ip, entry)),
                Service::Insights => ("insights", body(svc, ip, entry)),
            };
            let content_type =
                format!("application/vnd.maxmind.com-{name}+json; charset=UTF-8; version=2.1");
            (
                [(header::CONTENT_TYPE, content_type)],
                serde_json::to_vec(&body).expect("serialises"),
            )
                .into_response()
        }
    }
}

fn names(en: &str) -> Value {
    json!({ "en": en })
}

/// The response body for one service. Country carries continent, country and the network;
/// city and insights add city, location, postal, subdivisions and the network owner.
fn body(svc: Service, ip: IpAddr, entry: &Entry) -> Value {
    let l = &entry.location;
    let mut country = json!({
        "geoname_id": l.country_geoname_id,
        "iso_code": l.country_iso_code,
        "names": names(&l.country_name),
    });
    if l.is_in_european_union {
        country["is_in_european_union"] = json!(true);
    }
    let mut traits = json!({
        "ip_address": ip.to_string(),
        "network": entry.network.to_string(),
    });
    let mut out = json!({
        "continent": {
            "code": l.continent_code,
            "geoname_id": l.continent_geoname_id,
            "names": names(&l.continent_name),
        },
        "country": country.clone(),
        "registered_country": country,
        "maxmind": { "queries_remaining": 999_999 },
    });
    if svc == Service::Country {
        out["traits"] = traits;
        return out;
    }
    if let (Some(name), Some(id)) = (&l.city_name, l.city_geoname_id) {
        out["city"] = json!({"geoname_id": id, "names": names(name)});
    }
    out["location"] = json!({
        "accuracy_radius": l.accuracy_radius,
        "latitude": l.latitude,
        "longitude": l.longitude,
        "time_zone": l.time_zone,
    });
    if let Some(code) = &l.postal_code {
        out["postal"] = json!({"code": code});
    }
    if let (Some(iso), Some(name), Some(id)) = (
        &l.subdivision_iso_code,
        &l.subdivision_name,
        l.subdivision_geoname_id,
    ) {
        out["subdivisions"] = json!([{"geoname_id": id, "iso_code": iso, "names": names(name)}]);
    }
    if let Some(asn) = l.autonomous_system_number {
        traits["autonomous_system_number"] = json!(asn);
    }
    for (key, value) in [
        (
            "autonomous_system_organization",
            &l.autonomous_system_organization,
        ),
        ("isp", &l.isp),
        ("organization", &l.organization),
    ] {
        if let Some(v) = value {
            traits[key] = json!(v);
        }
    }
    if svc == Service::Insights {
        traits["user_type"] = json!("business");
        traits["connection_type"] = json!("Corporate");
        traits["static_ip_score"] = json!(1.0);
        traits["user_count"] = json!(1);
        out["country"]["confidence"] = json!(99);
        if out.get("city").is_some() {
            out["city"]["confidence"] = json!(80);
        }
    }
    out["traits"] = traits;
    out
}
