//! The proxy's JSON-lines access log (proxy/nginx.conf.template, `harness_json`) turned into the
//! run report's "slowest routes": per method and path (query dropped), how often, and how long.
use std::collections::BTreeMap;

// The stack's readiness probes run while the app is starting: counted, they would make the
// health path the slowest route of every run.
use crate::stack::wait::PROBE_USER_AGENT;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RouteStats {
    pub method: String,
    pub path: String,
    pub count: usize,
    /// Status codes seen, e.g. "200, 302".
    pub statuses: String,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Median of nginx's `$upstream_response_time`, the app's share; `None` when no request
    /// reached the app (redirects answered by nginx itself).
    pub upstream_median_ms: Option<f64>,
}

impl RouteStats {
    /// The route as the ledger keeps it for the run history.
    pub fn ledger_row(&self) -> crate::ledger::RouteRow {
        crate::ledger::RouteRow {
            method: self.method.clone(),
            path: self.path.clone(),
            count: self.count as u64,
            median_ms: self.median_ms,
            p95_ms: self.p95_ms,
            max_ms: self.max_ms,
        }
    }
}

/// One line of the `harness_json` access log; `evidence` reads the same lines for a failed
/// test's requests.
#[derive(serde::Deserialize)]
pub(super) struct Line {
    /// When the request ended (absent in logs from before it was logged).
    #[serde(default)]
    pub msec: Option<f64>,
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub request_time: f64,
    #[serde(default)]
    upstream_response_time: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    agent: String,
}

impl Line {
    /// The stack's own readiness probes, which no report counts.
    pub(super) fn is_probe(&self) -> bool {
        self.agent == PROBE_USER_AGENT
    }
}

/// The `limit` routes with the highest p95, then the highest max, of the requests the suite made
/// (the readiness probes left out). Unreadable lines are counted and returned so the report can
/// say how many were skipped.
pub fn slowest_routes(jsonl: &str, limit: usize) -> (Vec<RouteStats>, usize) {
    let mut groups: BTreeMap<(String, String), Vec<Line>> = BTreeMap::new();
    let mut unreadable = 0;
    for raw in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Line>(raw) {
            Ok(line) if line.is_probe() => {}
            Ok(line) => {
                let path = line.uri.split('?').next().unwrap_or("").to_string();
                groups
                    .entry((line.method.clone(), path))
                    .or_default()
                    .push(line);
            }
            Err(_) => unreadable += 1,
        }
    }
    let mut stats: Vec<RouteStats> = groups
        .into_iter()
        .map(|((method, path), lines)| {
            let mut times: Vec<f64> = lines.iter().map(|l| l.request_time * 1000.0).collect();
            times.sort_by(f64::total_cmp);
            // "0.004" or, after a retry, "0.002, 0.003"; "-" when nginx answered itself.
            let mut upstream: Vec<f64> = lines
                .iter()
                .filter_map(|l| {
                    let parts: Vec<f64> = l
                        .upstream_response_time
                        .split([',', ':'])
                        .filter_map(|p| p.trim().parse::<f64>().ok())
                        .collect();
                    (!parts.is_empty()).then(|| parts.iter().sum::<f64>() * 1000.0)
                })
                .collect();
            upstream.sort_by(f64::total_cmp);
            let mut statuses: Vec<u16> = lines.iter().map(|l| l.status).collect();
            statuses.sort_unstable();
            statuses.dedup();
            RouteStats {
                method,
                path,
                count: lines.len(),
                statuses: statuses
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                median_ms: percentile(&times, 50.0),
                p95_ms: percentile(&times, 95.0),
                max_ms: times.last().copied().unwrap_or(0.0),
                upstream_median_ms: (!upstream.is_empty()).then(|| percentile(&upstream, 50.0)),
            }
        })
        .collect();
    stats.sort_by(|a, b| {
        b.p95_ms
            .total_cmp(&a.p95_ms)
            .then(b.max_ms.total_cmp(&a.max_ms))
            .then(a.path.cmp(&b.path))
    });
    stats.truncate(limit);
    (stats, unreadable)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(method: &str, uri: &str, status: u16, t: f64, up: &str) -> String {
        format!(
            r#"{{"time":"2026-11-26T09:00:00+00:00","method":"{method}","uri":"{uri}","status":{status},"bytes":10,"request_time":{t},"upstream_response_time":"{up}","host":"app.localtest.me"}}"#
        )
    }

    #[test]
    fn groups_by_method_and_path_and_orders_by_p95() {
        let log = [
            line("GET", "/health", 200, 0.001, "0.001"),
            line("GET", "/health", 200, 0.003, "0.002"),
            line("GET", "/geo?ip=8.8.8.8", 200, 0.250, "0.249"),
            line("GET", "/geo?ip=1.1.1.1", 200, 0.150, "0.149"),
            line("POST", "/admin/login", 302, 0.050, "0.049"),
            line("GET", "/", 301, 0.000, "-"),
            "not json".to_string(),
        ]
        .join("\n");
        let (routes, bad) = slowest_routes(&log, 10);
        assert_eq!(bad, 1);
        assert_eq!(routes[0].path, "/geo");
        assert_eq!(routes[0].count, 2);
        assert_eq!(routes[0].max_ms, 250.0);
        assert_eq!(routes[0].median_ms, 150.0);
        assert_eq!(routes[1].path, "/admin/login");
        assert_eq!(routes[1].statuses, "302");
        let redirect = routes.iter().find(|r| r.path == "/").unwrap();
        assert_eq!(redirect.upstream_median_ms, None);
        let (top, _) = slowest_routes(&log, 2);
        assert_eq!(top.len(), 2);
    }

    #[test]
    fn readiness_probes_are_not_routes_of_the_suite() {
        let slow_probe = line("GET", "/health", 200, 1.9, "1.9").replace(
            r#""host""#,
            &format!(r#""agent":"{PROBE_USER_AGENT}","host""#),
        );
        let log = [
            slow_probe,
            line("GET", "/health", 200, 0.002, "0.002"),
            line("GET", "/geo", 200, 0.1, "0.1"),
        ]
        .join("\n");
        let (routes, bad) = slowest_routes(&log, 10);
        assert_eq!(bad, 0);
        assert_eq!(routes[0].path, "/geo");
        let health = routes.iter().find(|r| r.path == "/health").unwrap();
        assert_eq!((health.count, health.max_ms), (1, 2.0));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
