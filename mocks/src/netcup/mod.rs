//! Netcup CCP DNS API mock (contracts.md §2): the JSON endpoint, idle-expiring sessions, zones
//! created on first use (or preloaded), partial record updates, and a control API under
//! `/_harness/` that tests use to reset, load and read zones, read the call journal and inject
//! faults.
pub mod protocol;
mod zones;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::MockError;
use crate::server::{Running, serve_http};
use protocol::{Action, Envelope, Request};
use zones::Zone;
pub use zones::{RecordSeed, ZoneSeed, load_zones_file};

/// How the mock behaves. `Default` gives the documented credentials and the real service's
/// 15-minute idle expiry.
#[derive(Debug, Clone)]
pub struct NetcupConfig {
    pub customer_number: String,
    pub api_key: String,
    pub api_password: String,
    /// Idle time after which a session id answers 4001.
    pub session_ttl: Duration,
    /// Unknown zones answer 5028 instead of being created on first use.
    pub strict_zones: bool,
    /// Zones present at start and after a reset.
    pub zones: Vec<ZoneSeed>,
}

impl Default for NetcupConfig {
    fn default() -> Self {
        Self {
            customer_number: "123456".into(),
            api_key: "test-api-key".into(),
            api_password: "test-api-password".into(),
            session_ttl: Duration::from_secs(900),
            strict_zones: false,
            zones: Vec::new(),
        }
    }
}

/// A running Netcup mock.
pub struct NetcupHandle {
    running: Running,
}

impl NetcupHandle {
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// The endpoint URL clients are pointed at.
    pub fn endpoint(&self) -> String {
        format!("http://{}{ENDPOINT_PATH}?JSON", self.addr())
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await
    }
}

pub const ENDPOINT_PATH: &str = "/run/webservice/servers/endpoint.php";

/// Starts the mock on `listener`.
pub async fn start(listener: TcpListener, config: NetcupConfig) -> Result<NetcupHandle, MockError> {
    let shared = Arc::new(Shared::new(config));
    let app = router(shared);
    Ok(NetcupHandle {
        running: serve_http(listener, app, None)?,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(ENDPOINT_PATH, post(endpoint))
        .route("/health", get(health))
        .route("/_harness/reset", post(control_reset))
        .route(
            "/_harness/zones",
            post(control_load_zones).get(control_list_zones),
        )
        .route("/_harness/zones/{name}", get(control_zone))
        .route(
            "/_harness/journal",
            get(control_journal).delete(control_clear_journal),
        )
        .route(
            "/_harness/faults",
            post(control_add_fault)
                .get(control_list_faults)
                .delete(control_clear_faults),
        )
        .with_state(shared)
}

/// The journal keeps the most recent calls only, so a load test cannot grow it without bound.
const JOURNAL_CAP: usize = 10_000;

struct Shared {
    config: NetcupConfig,
    state: Mutex<MockState>,
}

/// Login only accepts the configured credentials, so a session needs no owner of its own: every
/// later call must carry those same credentials.
struct Session {
    last_used: Instant,
}

struct MockState {
    sessions: HashMap<String, Session>,
    prune_at: usize,
    zones: HashMap<String, Zone>,
    next_record_id: u64,
    journal: VecDeque<JournalEntry>,
    seq: u64,
    faults: Vec<Fault>,
}

/// One call as the journal shows it. Secrets (api key, password, session id) never appear.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub action: Cow<'static, str>,
    pub domainname: Option<String>,
    pub http_status: u16,
    pub status: &'static str,
    pub statuscode: Option<u16>,
    pub fault: Option<FaultKind>,
}

/// What an injected fault does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// Answer 4001, as the real service intermittently does.
    SessionInvalid,
    /// Answer 5028.
    ZoneError,
    /// HTTP 500 with a non-JSON body.
    #[serde(rename = "http_500")]
    Http500,
    /// HTTP 200 with a truncated JSON body.
    InvalidJson,
    /// Answer normally after `delay_ms`.
    Delay { delay_ms: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// Only calls of this action are affected; none means every action.
    #[serde(default)]
    pub action: Option<String>,
    /// How many calls it affects.
    #[serde(default = "one")]
    pub count: u32,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn one() -> u32 {
    1
}

impl Shared {
    fn new(config: NetcupConfig) -> Self {
        let mut state = MockState {
            sessions: HashMap::new(),
            prune_at: 10_000,
            zones: HashMap::new(),
            next_record_id: 1,
            journal: VecDeque::new(),
            seq: 0,
            faults: Vec::new(),
        };
        state.load(&config.zones);
        Self {
            config,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        // A panic while holding the lock must not take the mock down for every later test.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MockState {
    fn load(&mut self, seeds: &[ZoneSeed]) {
        for seed in seeds {
            let zone = Zone::from_seed(seed, &mut self.next_record_id);
            self.zones.insert(zone.info.name.clone(), zone);
        }
    }

    fn journal(&mut self, mut entry: JournalEntry) {
        self.seq += 1;
        entry.seq = self.seq;
        if self.journal.len() == JOURNAL_CAP {
            self.journal.pop_front();
        }
        self.journal.push_back(entry);
    }

    fn take_fault(&mut self, action: Option<Action>) -> Option<FaultKind> {
        let i = self.faults.iter().position(|f| match &f.action {
            None => true,
            Some(name) => action.is_some_and(|a| a.name().eq_ignore_ascii_case(name)),
        })?;
        let kind = self.faults[i].kind;
        self.faults[i].count -= 1;
        if self.faults[i].count == 0 {
            self.faults.remove(i);
        }
        Some(kind)
    }
}

/// The outcome of an action before it is wrapped in the envelope.
struct Outcome {
    code: u16,
    short: &'static str,
    long: String,
    data: Value,
}

impl Outcome {
    fn ok(short: &'static str, data: Value) -> Self {
        Self {
            code: 2000,
            short,
            long: short.to_string(),
            data,
        }
    }
    fn err(code: u16, short: &'static str, long: impl Into<String>) -> Self {
        Self {
            code,
            short,
            long: long.into(),
            data: Value::String(String::new()),
        }
    }
    fn validation(long: impl Into<String>) -> Self {
        Self::err(4013, "Validation Error.", long)
    }
    fn session_invalid() -> Self {
        Self::err(
            4001,
            "Api session id in invalid format",
            "The session id is not in a valid format.",
        )
    }
    fn zone_error(domain: &str) -> Self {
        Self::err(
            5028,
            "Error in DNS zone",
            format!("Can not get DNS zone {domain}, or it could not be updated."),
        )
    }
}

fn envelope_response(action: &str, client_request_id: &str, outcome: Outcome) -> Response {
    let server_request_id = crate::util::random_id(18);
    let env = Envelope {
        serverrequestid: &server_request_id,
        clientrequestid: client_request_id,
        action,
        status: if outcome.code == 2000 {
            "success"
        } else {
            "error"
        },
        statuscode: outcome.code,
        shortmessage: outcome.short,
        longmessage: &outcome.long,
        responsedata: outcome.data,
    };
    let body = serde_json::to_vec(&env).expect("envelope serialises");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "service": "netcup"}))
}

async fn endpoint(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match protocol::decode(&body) {
        Ok(r) => r,
        Err(rejected) => {
            let outcome = Outcome::validation(rejected.error.long_message());
            let mut st = shared.lock();
            let fault = st.take_fault(None);
            st.journal(JournalEntry {
                seq: 0,
                action: Cow::Owned(rejected.action.clone()),
                domainname: None,
                http_status: 200,
                status: "error",
                statuscode: Some(4013),
                fault,
            });
            drop(st);
            return envelope_response(&rejected.action, &rejected.client_request_id, outcome);
        }
    };
    let action = request.action;
    let crid = request.client_request_id();
    let domainname = request
        .param
        .get("domainname")
        .and_then(protocol::text)
        .map(|d| d.to_ascii_lowercase());

    // The common path takes the lock once: fault check, the action and its journal entry. The
    // guard lives in this block so it is never held across an await.
    let fault = {
        let mut st = shared.lock();
        match st.take_fault(Some(action)) {
            Some(kind) => Some(kind),
            None => {
                let outcome = perform(&shared.config, &mut st, &request);
                let code = outcome.code;
                st.journal(JournalEntry {
                    seq: 0,
                    action: Cow::Borrowed(action.name()),
                    domainname: domainname.clone(),
                    http_status: 200,
                    status: if code == 2000 { "success" } else { "error" },
                    statuscode: Some(code),
                    fault: None,
                });
                drop(st);
                return envelope_response(action.name(), &crid, outcome);
            }
        }
    };
    if let Some(FaultKind::Delay { delay_ms }) = fault {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let journal = |st: &mut MockState, http_status: u16, code: Option<u16>| {
        st.journal(JournalEntry {
            seq: 0,
            action: Cow::Borrowed(action.name()),
            domainname: domainname.clone(),
            http_status,
            status: match code {
                Some(2000) => "success",
                Some(_) => "error",
                None => "broken",
            },
            statuscode: code,
            fault,
        })
    };
    match fault {
        Some(FaultKind::Http500) => {
            journal(&mut shared.lock(), 500, None);
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>500 Internal Server Error</h1></body></html>",
            )
                .into_response();
        }
        Some(FaultKind::InvalidJson) => {
            journal(&mut shared.lock(), 200, None);
            return (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"serverrequestid":"x","status":"succ"#,
            )
                .into_response();
        }
        Some(FaultKind::SessionInvalid) => {
            journal(&mut shared.lock(), 200, Some(4001));
            return envelope_response(action.name(), &crid, Outcome::session_invalid());
        }
        Some(FaultKind::ZoneError) => {
            journal(&mut shared.lock(), 200, Some(5028));
            let d = domainname.clone().unwrap_or_default();
            return envelope_response(action.name(), &crid, Outcome::zone_error(&d));
        }
        Some(FaultKind::Delay { .. }) | None => {}
    }
    let outcome = {
        let mut st = shared.lock();
        let outcome = perform(&shared.config, &mut st, &request);
        journal(&mut st, 200, Some(outcome.code));
        outcome
    };
    envelope_response(action.name(), &crid, outcome)
}

fn perform(config: &NetcupConfig, st: &mut MockState, req: &Request) -> Outcome {
    let creds = match protocol::credentials(&req.param) {
        Ok(c) => c,
        Err(e) => return Outcome::validation(e.long_message()),
    };
    if req.action == Action::Login {
        let password = match protocol::required_text(&req.param, "apipassword") {
            Ok(p) => p,
            Err(e) => return Outcome::validation(e.long_message()),
        };
        if creds.customer_number != config.customer_number
            || creds.api_key != config.api_key
            || password != config.api_password
        {
            return Outcome::validation(
                "The customer number, API key or API password is not valid.",
            );
        }
        let now = Instant::now();
        if st.sessions.len() >= st.prune_at {
            let ttl = config.session_ttl;
            st.sessions
                .retain(|_, s| now.duration_since(s.last_used) < ttl);
            st.prune_at = (st.sessions.len() * 2).max(10_000);
        }
        let id = crate::util::random_id(32);
        st.sessions.insert(id.clone(), Session { last_used: now });
        return Outcome::ok("Login successful", json!({ "apisessionid": id }));
    }

    // Every other action needs a live session that belongs to these credentials.
    let session_id = match protocol::required_text(&req.param, "apisessionid") {
        Ok(s) => s,
        Err(_) => return Outcome::session_invalid(),
    };
    let now = Instant::now();
    let live = st.sessions.get_mut(&session_id).is_some_and(|s| {
        let fresh = now.duration_since(s.last_used) < config.session_ttl;
        let owner =
            creds.customer_number == config.customer_number && creds.api_key == config.api_key;
        if fresh && owner {
            s.last_used = now;
        }
        fresh && owner
    });
    if !live {
        st.sessions.remove(&session_id);
        return Outcome::session_invalid();
    }
    if req.action == Action::Logout {
        st.sessions.remove(&session_id);
        return Outcome::ok("Logout successful", Value::String(String::new()));
    }

    let domain = match protocol::required_text(&req.param, "domainname") {
        Ok(d) => d.to_ascii_lowercase(),
        Err(e) => return Outcome::validation(e.long_message()),
    };
    if !zones::valid_domain(&domain) {
        return Outcome::validation(format!("The domain name \"{domain}\" is not valid."));
    }
    if !st.zones.contains_key(&domain) {
        if config.strict_zones {
            return Outcome::zone_error(&domain);
        }
        let zone = Zone::example(&domain, &mut st.next_record_id);
        st.zones.insert(domain.clone(), zone);
    }
    let MockState {
        zones,
        next_record_id,
        ..
    } = st;
    let zone = zones.get_mut(&domain).expect("zone exists");
    match req.action {
        Action::InfoDnsZone => Outcome::ok("DNS zone found", zone.info_json()),
        Action::UpdateDnsZone => match protocol::zone_update(&req.param) {
            Ok(update) => {
                zone.apply_zone_update(&update);
                Outcome::ok("DNS zone was updated", zone.info_json())
            }
            Err(e) => Outcome::validation(e.long_message()),
        },
        Action::InfoDnsRecords => {
            if zone.records.is_empty() {
                // The real API reports an empty zone as an error; clients special-case 5029.
                return Outcome::err(
                    5029,
                    "Can not get DNS records for zone.",
                    "The zone has no DNS records.",
                );
            }
            Outcome::ok("DNS records found", zone.records_json())
        }
        Action::UpdateDnsRecords => match protocol::record_set(&req.param) {
            Ok(inputs) => match zone.apply_records(&inputs, next_record_id) {
                Ok(()) => Outcome::ok("DNS records successful updated", zone.records_json()),
                Err(reason) => Outcome::err(5028, "Error in DNS records", reason),
            },
            Err(e) => Outcome::validation(e.long_message()),
        },
        Action::Login | Action::Logout => unreachable!("handled above"),
    }
}

// ---- control API ------------------------------------------------------------------------------

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn control_reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut st = shared.lock();
    st.sessions.clear();
    st.zones.clear();
    st.journal.clear();
    st.faults.clear();
    st.next_record_id = 1;
    let seeds = shared.config.zones.clone();
    st.load(&seeds);
    Json(json!({"status": "reset"}))
}

async fn control_load_zones(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let seeds = match zones::parse_zones(&body) {
        Ok(s) => s,
        Err(message) => return control_error(StatusCode::BAD_REQUEST, message),
    };
    let mut st = shared.lock();
    st.load(&seeds);
    let names: Vec<&str> = seeds.iter().map(|s| s.name.as_str()).collect();
    Json(json!({ "loaded": names })).into_response()
}

async fn control_list_zones(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let st = shared.lock();
    let mut names: Vec<&String> = st.zones.keys().collect();
    names.sort();
    Json(json!({ "zones": names }))
}

async fn control_zone(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let st = shared.lock();
    match st.zones.get(&name.to_ascii_lowercase()) {
        Some(zone) => Json(json!({
            "zone": zone.info_json(),
            "records": zone.records_json()["dnsrecords"],
        }))
        .into_response(),
        None => control_error(StatusCode::NOT_FOUND, format!("no zone named {name}")),
    }
}

async fn control_journal(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let st = shared.lock();
    Json(json!({ "calls": st.journal }))
}

async fn control_clear_journal(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.lock().journal.clear();
    Json(json!({"status": "cleared"}))
}

async fn control_add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad fault: {e}; expected {{\"action\"?:NAME,\"count\"?:N,\"kind\":\"session_invalid\"|\"zone_error\"|\"http_500\"|\"invalid_json\"|\"delay\",\"delay_ms\"?:MS}}"
                ),
            );
        }
    };
    if let Some(a) = &fault.action
        && !Action::ALL.iter().any(|x| x.name().eq_ignore_ascii_case(a))
    {
        return control_error(StatusCode::BAD_REQUEST, format!("unknown action {a:?}"));
    }
    if fault.count == 0 {
        return control_error(StatusCode::BAD_REQUEST, "count must be at least 1");
    }
    shared.lock().faults.push(fault.clone());
    (StatusCode::CREATED, Json(json!({ "added": fault }))).into_response()
}

async fn control_list_faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "faults": shared.lock().faults }))
}

async fn control_clear_faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.lock().faults.clear();
    Json(json!({"status": "cleared"}))
}
