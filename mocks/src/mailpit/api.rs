//! Mailpit's HTTP API subset (contracts.md §4) with the swagger shapes, under the webroot, behind
//! optional basic auth. Health (`livez`, `readyz`) stays open like Mailpit's.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::search;
use super::store::Store;

#[derive(Clone)]
pub(crate) struct ApiState {
    pub store: Arc<Store>,
    pub ui_auth: Arc<Vec<(String, String)>>,
    pub started: Instant,
    pub webroot: String,
}

pub(crate) fn router(state: ApiState) -> Router {
    let guarded = Router::new()
        .route("/", get(index))
        .route("/api/v1/info", get(info))
        .route(
            "/api/v1/messages",
            get(list).put(set_read).delete(delete_messages),
        )
        .route("/api/v1/message/{id}", get(message))
        .route("/api/v1/message/{id}/headers", get(headers))
        .route("/api/v1/message/{id}/raw", get(raw))
        .route("/api/v1/message/{id}/part/{part}", get(part))
        .route("/api/v1/search", get(search_messages).delete(delete_search))
        .route("/view/{file}", get(view))
        .route_layer(middleware::from_fn_with_state(state.clone(), basic_auth))
        .with_state(state.clone());
    let open = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let inner = guarded.merge(open);
    if state.webroot.is_empty() {
        inner
    } else {
        // `nest` serves "/mailpit" but not "/mailpit/", which is what MP_WEBROOT=/mailpit/ users
        // and the proxy ask for.
        let index_with_slash = Router::new()
            .route(&format!("{}/", state.webroot), get(index))
            .route_layer(middleware::from_fn_with_state(state.clone(), basic_auth))
            .with_state(state.clone());
        Router::new()
            .nest(&state.webroot, inner)
            .merge(index_with_slash)
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
    }
}

async fn basic_auth(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if state.ui_auth.is_empty() {
        return next.run(req).await;
    }
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::util::basic_auth)
        .is_some_and(|(u, p)| {
            let p = p.unwrap_or_default();
            state.ui_auth.iter().any(|(au, ap)| *au == u && *ap == p)
        });
    if ok {
        next.run(req).await
    } else {
        let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorised.\n").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Login\""),
        );
        resp
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "message not found")
}

fn ok() -> Response {
    text(StatusCode::OK, "ok")
}

async fn index(State(state): State<ApiState>) -> Response {
    let root = &state.webroot;
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><title>Mailpit-compatible catcher</title><h1>Mail catcher</h1>\
             <p>API: <a href=\"{root}/api/v1/messages\">{root}/api/v1/messages</a></p>"
        ),
    )
        .into_response()
}

async fn info(State(state): State<ApiState>) -> Response {
    let (messages, unread) = state.store.count();
    let stats = &state.store.stats;
    Json(json!({
        "Version": concat!("harness-mocks ", env!("CARGO_PKG_VERSION")),
        "LatestVersion": "",
        "Database": ":memory:",
        "DatabaseSize": state.store.total_size(),
        "Messages": messages,
        "Unread": unread,
        "Tags": {},
        "RuntimeStats": {
            "Uptime": state.started.elapsed().as_secs(),
            "Memory": 0,
            "MessagesDeleted": stats.messages_deleted.load(Ordering::Relaxed),
            "SMTPAccepted": stats.smtp_accepted.load(Ordering::Relaxed),
            "SMTPAcceptedSize": stats.smtp_accepted_size.load(Ordering::Relaxed),
            "SMTPRejected": stats.smtp_rejected.load(Ordering::Relaxed),
            "SMTPIgnored": 0,
        },
    }))
    .into_response()
}

fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), String> {
    let num = |name: &str, default: usize| match q.get(name).map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("invalid {name}: {v:?}")),
    };
    Ok((num("start", 0)?, num("limit", 50)?))
}

async fn list(State(state): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (start, limit) = match paging(&q) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    Json(state.store.page(None, start, limit).json()).into_response()
}

async fn search_messages(
    State(state): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = q.get("query").filter(|s| !s.trim().is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "query is required");
    };
    let (start, limit) = match paging(&q) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let parsed = search::parse(query);
    Json(state.store.page(Some(&parsed), start, limit).json()).into_response()
}

async fn delete_search(
    State(state): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = q.get("query").filter(|s| !s.trim().is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "query is required");
    };
    state.store.delete_matching(&search::parse(query));
    ok()
}

#[derive(Deserialize, Default)]
struct IdsBody {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ReadBody {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
    #[serde(rename = "Read", default)]
    read: bool,
    #[serde(rename = "Search", default)]
    search: Option<String>,
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

async fn delete_messages(State(state): State<ApiState>, body: Bytes) -> Response {
    match json_body::<IdsBody>(&body) {
        Ok(b) => {
            state.store.delete(&b.ids);
            ok()
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

async fn set_read(State(state): State<ApiState>, body: Bytes) -> Response {
    match json_body::<ReadBody>(&body) {
        Ok(b) => {
            let query = b
                .search
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(search::parse);
            state.store.set_read(&b.ids, query.as_ref(), b.read);
            ok()
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    }
}

async fn message(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.store.open(&id) {
        Some(m) => Json(m.message_json()).into_response(),
        None => not_found(),
    }
}

async fn headers(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id) {
        Some(m) => Json(&m.headers).into_response(),
        None => not_found(),
    }
}

async fn raw(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id) {
        Some(m) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from(m.raw.clone()),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn part(State(state): State<ApiState>, Path((id, part)): Path<(String, String)>) -> Response {
    let Some(m) = state.store.get(&id) else {
        return not_found();
    };
    match m.part(&part) {
        Some(p) => {
            let ct = HeaderValue::from_str(&p.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([(header::CONTENT_TYPE, ct)], Body::from(p.data.clone())).into_response()
        }
        None => text(StatusCode::NOT_FOUND, "part not found"),
    }
}

async fn view(State(state): State<ApiState>, Path(file): Path<String>) -> Response {
    let (id, html) = if let Some(id) = file.strip_suffix(".html") {
        (id, true)
    } else if let Some(id) = file.strip_suffix(".txt") {
        (id, false)
    } else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let Some(m) = state.store.get(id) else {
        return not_found();
    };
    if html {
        if m.html.is_empty() {
            return text(StatusCode::NOT_FOUND, "message does not contain HTML");
        }
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            m.html.clone(),
        )
            .into_response()
    } else {
        text(StatusCode::OK, m.text.clone())
    }
}
