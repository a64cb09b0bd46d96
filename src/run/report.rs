//! The run's single-file HTML report: result summary, every test with its duration and failure
//! (the failure screenshot embedded, the trace linked), the slowest routes from the proxy log,
//! parity of the package, and the run's fingerprints and images. A pure function of
//! [`ReportData`]; the caller writes it with mode 0600 (traces and screenshots can show typed
//! passwords, and the report links them).
use crate::model::html::esc;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;

use super::evidence::{BrowserEvent, ServerSide};
use super::junit::{CaseStatus, SuiteResult};
use super::proxylog::RouteStats;
use crate::ledger::{Outcome, Selection};
use crate::parity::ParityReport;

/// Files a test left behind, relative to the run directory (where report.html lives).
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    pub screenshots: Vec<String>,
    pub traces: Vec<String>,
    pub other: Vec<String>,
    /// What the test's pages reported (console errors, page errors, failed requests).
    pub browser: Vec<BrowserEvent>,
    /// For a failed test: what the app and the proxy did while it ran.
    pub server: Option<ServerSide>,
}

pub struct ReportData<'a> {
    pub run_id: &'a str,
    pub outcome: Outcome,
    /// One line: why the run ended as it did.
    pub verdict: String,
    pub started_at: String,
    pub elapsed: Duration,
    pub selection: &'a Selection,
    pub with_mocks: bool,
    pub tls: bool,
    pub package_zip: &'a Path,
    pub package_sha256: &'a str,
    pub build_id: &'a str,
    pub code_fingerprint: &'a str,
    pub schema_fingerprint: Option<&'a str>,
    pub input_fingerprint: &'a str,
    pub git_commit: Option<&'a str>,
    pub dirty: Option<bool>,
    /// `None` when pytest left no junit.xml.
    pub suite: Option<&'a SuiteResult>,
    /// By `classname::name`.
    pub attachments: &'a BTreeMap<String, Attachments>,
    /// Screenshots the tests saved themselves (SCREENSHOT_DIR), relative to the run directory.
    pub page_screenshots: &'a [String],
    /// What the run wrote into the job's copy of the tree (coverage.xml, screenshots beside
    /// the tests, ...); copies are under `report/tree/`.
    pub written: &'a [super::job::WrittenFile],
    pub routes: &'a [RouteStats],
    pub parity: Result<&'a ParityReport, String>,
    pub images: &'a BTreeMap<String, String>,
    pub browser: Option<&'a str>,
    pub phases: &'a [(&'static str, Duration)],
    /// Where relative attachment paths start (the run directory), to embed screenshots.
    pub run_dir: &'a Path,
}

/// A relative path as an `href`: each segment percent-encoded where needed.
fn href(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn secs(d: f64) -> String {
    if d >= 1.0 {
        format!("{d:.2} s")
    } else {
        format!("{:.0} ms", d * 1000.0)
    }
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{padding:18px 28px;color:#fff}
header.green{background:#1f7a3f}header.red{background:#b3261e}header.aborted{background:#8a6d00}header.infra{background:#5a3e8a}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;opacity:.92}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:16px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
table.tests td:first-child,table.tests th:first-child{width:auto}table.tests td:nth-child(2),table.tests th:nth-child(2){width:90px}table.tests td:nth-child(3),table.tests th:nth-child(3){width:90px}
td{overflow-wrap:anywhere}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{font-weight:600;color:#4a5566;background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.passed{background:#1f7a3f}.failed{background:#b3261e}.error{background:#c2410c}.skipped{background:#6b7280}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}
pre{background:#1d2330;color:#e6e9ef;padding:10px;border-radius:4px;overflow:auto;max-height:360px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.msg{font-weight:600;color:#8c1d18;margin:4px 0}
details summary{cursor:pointer}
img.shot{max-width:min(100%,320px);border:1px solid #dde1e6;margin-top:6px;cursor:zoom-in}
.ev{margin-top:8px}.ev ul{margin:4px 0;padding-left:20px}table.reqs{margin-top:4px}tr.bad td{color:#8c1d18}
code{font-size:12px;word-break:break-all}
.warn{background:#fff4e5;border:1px solid #f0c36d;padding:8px 12px;border-radius:4px}
"#;

/// The report lists the slowest of the run's routes; the ledger keeps them all (up to
/// `ledger::MAX_ROUTES_PER_RUN`) for the run history.
const REPORT_ROUTES: usize = 15;

pub fn render(d: &ReportData) -> String {
    let mut h = String::new();
    let outcome = d.outcome.as_str();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness run {} — {}</title>\
         <style>{STYLE}</style></head><body>",
        esc(d.run_id),
        outcome
    );
    let _ = write!(
        h,
        "<header class=\"{outcome}\"><h1>{} — run {}</h1><p>{}</p></header><main>",
        outcome.to_uppercase(),
        esc(d.run_id),
        esc(&d.verdict)
    );

    // Summary cards.
    let counts = d.suite.map(|s| s.counts()).unwrap_or_default();
    let _ = write!(h, "<div class=\"cards\" style=\"margin-top:16px\">");
    for (label, value) in [
        ("passed", counts.passed.to_string()),
        ("failed", counts.failed.to_string()),
        ("errors", counts.errors.to_string()),
        ("skipped", counts.skipped.to_string()),
        (
            "pytest time",
            d.suite
                .map(|s| secs(s.seconds))
                .unwrap_or_else(|| "—".into()),
        ),
        ("total time", secs(d.elapsed.as_secs_f64())),
    ] {
        let _ = write!(h, "<div class=\"card\"><b>{}</b>{label}</div>", esc(&value));
    }
    let _ = write!(h, "</div>");
    let _ = write!(
        h,
        "<p class=\"warn\">This report and the traces it links can show what the tests typed, \
         passwords included: they are readable only by you (mode 0600). Do not attach them to \
         public tickets.</p>"
    );

    // Tests.
    let _ = write!(h, "<section><h2>Tests</h2>");
    match d.suite {
        None => {
            let _ = write!(
                h,
                "<p>pytest left no junit.xml: the suite did not run to the end. The job's \
                 output is in <code>logs/playwright.log</code>.</p>"
            );
        }
        Some(suite) => {
            let _ = write!(
                h,
                "<table class=\"tests\"><tr><th>test</th><th>result</th><th class=\"num\">duration</th></tr>"
            );
            // Failures first, then the rest in run order.
            let mut order: Vec<usize> = (0..suite.cases.len()).collect();
            order.sort_by_key(|&i| match suite.cases[i].status {
                CaseStatus::Failed | CaseStatus::Error => 0,
                _ => 1,
            });
            for i in order {
                let c = &suite.cases[i];
                let status = match c.status {
                    CaseStatus::Passed => "passed",
                    CaseStatus::Failed => "failed",
                    CaseStatus::Error => "error",
                    CaseStatus::Skipped => "skipped",
                };
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code>",
                    esc(&format!("{}::{}", c.classname, c.name))
                );
                if c.status != CaseStatus::Passed {
                    if let Some(m) = &c.message {
                        // Playwright's messages carry the whole call log; the details hold it all.
                        let first = m.lines().next().unwrap_or_default();
                        let short: String = first.chars().take(300).collect();
                        let more = if short.len() < m.len() { " …" } else { "" };
                        let _ = write!(h, "<div class=\"msg\">{}{more}</div>", esc(&short));
                    }
                    if let Some(t) = &c.details {
                        let _ = write!(
                            h,
                            "<details{}><summary>details</summary><pre>{}</pre></details>",
                            if c.status == CaseStatus::Skipped {
                                ""
                            } else {
                                " open"
                            },
                            esc(t)
                        );
                    }
                }
                if let Some(a) = d.attachments.get(&c.key()) {
                    for t in &a.traces {
                        let _ = write!(
                            h,
                            "<div>trace: <a href=\"{}\">{}</a> (open with \
                             <code>playwright show-trace</code>)</div>",
                            href(t),
                            esc(t)
                        );
                    }
                    for s in &a.screenshots {
                        match embed_png(&d.run_dir.join(s)) {
                            Some(uri) => {
                                // The thumbnail is the link: a click opens the file full size.
                                let _ = write!(
                                    h,
                                    "<div class=\"shotbox\">screenshot <a href=\"{}\">{}</a><br>\
                                     <a href=\"{0}\" title=\"open full size\"><img class=\"shot\" \
                                     alt=\"screenshot of the failed test\" src=\"{uri}\"></a></div>",
                                    href(s),
                                    esc(s)
                                );
                            }
                            None => {
                                let _ = write!(
                                    h,
                                    "<div>screenshot: <a href=\"{}\">{}</a></div>",
                                    href(s),
                                    esc(s)
                                );
                            }
                        }
                    }
                    for o in &a.other {
                        let _ =
                            write!(h, "<div>file: <a href=\"{}\">{}</a></div>", href(o), esc(o));
                    }
                    if matches!(c.status, CaseStatus::Failed | CaseStatus::Error) {
                        explain(&mut h, a);
                    }
                }
                let _ = write!(
                    h,
                    "</td><td><span class=\"badge {status}\">{status}</span></td><td class=\"num\">{}</td></tr>",
                    secs(c.seconds)
                );
            }
            let _ = write!(h, "</table>");
        }
    }
    let _ = write!(h, "</section>");

    if !d.page_screenshots.is_empty() {
        let _ = write!(
            h,
            "<section><h2>Screenshots the tests saved ({})</h2><ul>",
            d.page_screenshots.len()
        );
        for s in d.page_screenshots {
            let _ = write!(h, "<li><a href=\"{}\">{}</a></li>", href(s), esc(s));
        }
        let _ = write!(h, "</ul></section>");
    }

    if !d.written.is_empty() {
        let _ = write!(
            h,
            "<section><h2>What the run wrote into its copy of the tree ({})</h2>\
             <p>The suite ran in its own copy of the repository; your checkout was not touched. \
             Copies of these files are in <code>report/tree/</code>.</p><table>",
            d.written.len()
        );
        for f in d.written {
            let link = format!("{}report/tree/{}", f.dir, f.path);
            let cell = match &f.skipped {
                Some(why) => format!("{} <small>(not copied: {})</small>", esc(&f.path), esc(why)),
                None => format!("<a href=\"{}\">{}</a>", href(&link), esc(&f.path)),
            };
            let _ = write!(h, "<tr><td>{cell}</td><td>{} bytes</td></tr>", f.size);
        }
        let _ = write!(h, "</table></section>");
    }

    // Routes.
    let _ = write!(
        h,
        "<section><h2>Slowest routes (proxy access log{})</h2>",
        if d.routes.len() > REPORT_ROUTES {
            format!(", {REPORT_ROUTES} of {}", d.routes.len())
        } else {
            String::new()
        }
    );
    if d.routes.is_empty() {
        let _ = write!(h, "<p>No requests were logged by the proxy.</p>");
    } else {
        let _ = write!(
            h,
            "<table><tr><th>route</th><th class=\"num\">requests</th><th>status</th>\
             <th class=\"num\">median</th><th class=\"num\">p95</th><th class=\"num\">max</th>\
             <th class=\"num\">app median</th></tr>"
        );
        for r in d.routes.iter().take(REPORT_ROUTES) {
            let _ = write!(
                h,
                "<tr><td><code>{} {}</code></td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"num\">{:.1} ms</td><td class=\"num\">{:.1} ms</td><td class=\"num\">{:.1} ms</td>\
                 <td class=\"num\">{}</td></tr>",
                esc(&r.method),
                esc(&r.path),
                r.count,
                esc(&r.statuses),
                r.median_ms,
                r.p95_ms,
                r.max_ms,
                r.upstream_median_ms
                    .map(|m| format!("{m:.1} ms"))
                    .unwrap_or_else(|| "—".into())
            );
        }
        let _ = write!(h, "</table>");
    }
    let _ = write!(h, "</section>");

    // Parity.
    let _ = write!(h, "<section><h2>Parity with the webhosting package</h2>");
    match &d.parity {
        Err(why) => {
            let _ = write!(h, "<p>Not compared: {}</p>", esc(why));
        }
        Ok(p) => {
            let bad: Vec<_> = p.violations().collect();
            let _ = write!(
                h,
                "<p>{} — {} local and {} webhosting files; {} differences, {} of them not allowed.</p>",
                if bad.is_empty() {
                    "<span class=\"badge passed\">clean</span>"
                } else {
                    "<span class=\"badge failed\">differs</span>"
                },
                p.local_files,
                p.webhosting_files,
                p.differences.len(),
                bad.len()
            );
            if !p.differences.is_empty() {
                let _ = write!(
                    h,
                    "<table><tr><th>kind</th><th>subject</th><th>local</th><th>webhosting</th><th>allowed by</th></tr>"
                );
                for diff in &p.differences {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                        esc(diff.kind.label()),
                        esc(&diff.subject()),
                        esc(diff.local.as_deref().unwrap_or("(absent)")),
                        esc(diff.webhosting.as_deref().unwrap_or("(absent)")),
                        esc(diff.allowed_by.as_deref().unwrap_or(if diff.allowed {
                            "allowed"
                        } else {
                            "NOT ALLOWED"
                        }))
                    );
                }
                let _ = write!(h, "</table>");
            }
        }
    }
    let _ = write!(h, "</section>");

    // Facts.
    let _ = write!(h, "<section><h2>What ran</h2><table>");
    let mut facts: Vec<(&str, String)> = vec![
        ("run", d.run_id.to_string()),
        ("started", d.started_at.clone()),
        ("selection", d.selection.to_string()),
        (
            "mocks",
            if d.with_mocks {
                "yes"
            } else {
                "no (tests marked `mocks` deselected)"
            }
            .into(),
        ),
        (
            "TLS",
            if d.tls {
                "yes, the run's CA"
            } else {
                "no (--no-tls)"
            }
            .into(),
        ),
        ("package", d.package_zip.display().to_string()),
        ("package sha256", d.package_sha256.to_string()),
        ("build id", d.build_id.to_string()),
        ("code fingerprint", d.code_fingerprint.to_string()),
        (
            "schema fingerprint",
            d.schema_fingerprint.unwrap_or("(no database)").to_string(),
        ),
        ("input fingerprint", d.input_fingerprint.to_string()),
        (
            "git",
            match (d.git_commit, d.dirty) {
                (Some(c), Some(true)) => format!("{c} (uncommitted changes)"),
                (Some(c), _) => c.to_string(),
                (None, _) => "(not a git repository)".into(),
            },
        ),
        ("browser", d.browser.unwrap_or("(unknown)").to_string()),
    ];
    for (service, id) in d.images {
        facts.push(("image", format!("{service}: {id}")));
    }
    for (k, v) in facts {
        let _ = write!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(k),
            esc(&v)
        );
    }
    let _ = write!(h, "</table></section>");

    let _ = write!(h, "<section><h2>Timings</h2><table>");
    for (phase, t) in d.phases {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(phase),
            secs(t.as_secs_f64())
        );
    }
    let _ = write!(
        h,
        "</table><p>Logs of every service: <a href=\"logs/\">logs/</a>; proxy access log: \
         <a href=\"proxy-log/access.jsonl\">proxy-log/access.jsonl</a>; JUnit: \
         <a href=\"report/junit.xml\">report/junit.xml</a>.</p></section>"
    );
    let _ = writeln!(h, "</main></body></html>");
    h
}

/// A PNG as a data URI, so the report stays one file. Big images (over 4 MB) are only linked.
/// A failed test's evidence from outside pytest: what its pages reported, the requests the
/// proxy served while it ran, and the app's output of that time.
fn explain(h: &mut String, a: &Attachments) {
    if !a.browser.is_empty() {
        let _ = write!(
            h,
            "<div class=\"ev\"><b>browser</b>: {} console errors, page errors and failed requests<ul>",
            a.browser.len()
        );
        for e in &a.browser {
            let _ = write!(h, "<li><code>{}</code> {}", esc(&e.kind), esc(&e.text));
            if !e.url.is_empty() && !e.text.contains(&e.url) {
                let _ = write!(h, " <small>at {}</small>", esc(&e.url));
            }
            let _ = write!(h, "</li>");
        }
        let _ = write!(h, "</ul></div>");
    }
    let Some(server) = &a.server else {
        return;
    };
    if !server.requests.is_empty() {
        let _ = write!(
            h,
            "<div class=\"ev\"><b>requests through the proxy while the test ran</b> ({})\
             <table class=\"reqs\"><tr><th>request</th><th>status</th><th class=\"num\">time</th>\
             <th>X-Request-Id</th></tr>",
            server.requests.len()
        );
        for r in &server.requests {
            let _ = write!(
                h,
                "<tr{}><td><code>{} {}</code></td><td>{}</td><td class=\"num\">{:.0} ms</td>\
                 <td><code>{}</code></td></tr>",
                if r.status >= 500 {
                    " class=\"bad\""
                } else {
                    ""
                },
                esc(&r.method),
                esc(&r.uri),
                r.status,
                r.ms,
                esc(&r.request_id)
            );
        }
        let _ = write!(h, "</table></div>");
    }
    if server.app_lines.is_empty() {
        let _ = write!(
            h,
            "<div class=\"ev\"><b>app log</b>: nothing while the test ran</div>"
        );
    } else {
        let _ = write!(
            h,
            "<details class=\"ev\" open><summary><b>app log while the test ran</b> ({} lines; \
             Apache, Passenger and the app's own output; all of it in <code>logs/app.log</code>)\
             </summary><pre class=\"applog\">{}</pre></details>",
            server.app_lines.len(),
            esc(&server.app_lines.join("\n"))
        );
    }
}

fn embed_png(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 4 * 1024 * 1024 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if !bytes.starts_with(b"\x89PNG") {
        return None;
    }
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::junit::CaseResult;

    #[test]
    fn shows_failures_first_with_escaped_text_embedded_screenshot_and_trace_link() {
        let dir = tempfile::tempdir().unwrap();
        let shot = "report/artifacts/test-x/test-failed-1.png";
        std::fs::create_dir_all(dir.path().join("report/artifacts/test-x")).unwrap();
        std::fs::write(dir.path().join(shot), b"\x89PNG\r\n\x1a\nfake").unwrap();
        let suite = SuiteResult {
            seconds: 3.5,
            cases: vec![
                CaseResult {
                    classname: "test_a".into(),
                    name: "test_ok".into(),
                    seconds: 0.5,
                    status: CaseStatus::Passed,
                    message: None,
                    details: None,
                },
                CaseResult {
                    classname: "test_a".into(),
                    name: "test_bad".into(),
                    seconds: 3.0,
                    status: CaseStatus::Failed,
                    message: Some("assert <b> == 1".into()),
                    details: Some("Traceback & more".into()),
                },
            ],
        };
        let attachments = BTreeMap::from([(
            "test_a::test_bad".to_string(),
            Attachments {
                screenshots: vec![shot.into()],
                traces: vec!["report/artifacts/test-x/trace.zip".into()],
                other: vec![],
                browser: vec![crate::run::evidence::BrowserEvent {
                    kind: "console.error".into(),
                    text: "Failed to load resource: <500>".into(),
                    url: "https://app.localtest.me/boom".into(),
                }],
                server: Some(crate::run::evidence::ServerSide {
                    app_lines: vec!["RuntimeError: boom <alpha>".into()],
                    requests: vec![crate::run::evidence::Request {
                        start: 1.0,
                        end: 1.1,
                        method: "GET".into(),
                        uri: "/boom?x=<1>".into(),
                        status: 500,
                        ms: 100.0,
                        request_id: "0123456789abcdef".into(),
                    }],
                }),
            },
        )]);
        let images = BTreeMap::from([("app".to_string(), "sha256:abc".to_string())]);
        let html = render(&ReportData {
            run_id: "20261126-090000-abcd",
            outcome: Outcome::Red,
            verdict: "1 of 2 tests failed".into(),
            started_at: "2026-11-26T09:00:00.000Z".into(),
            elapsed: Duration::from_secs(20),
            selection: &Selection::Full,
            with_mocks: true,
            tls: true,
            package_zip: Path::new("/p/.harness/dist/local/deploy.zip"),
            package_sha256: "ab",
            build_id: "local-1",
            code_fingerprint: "c0de",
            schema_fingerprint: Some("5c4e"),
            input_fingerprint: "1n",
            git_commit: Some("abc"),
            dirty: Some(false),
            suite: Some(&suite),
            attachments: &attachments,
            page_screenshots: &[],
            written: &[
                crate::run::job::WrittenFile {
                    path: "apps/shop/coverage.xml".into(),
                    size: 120,
                    skipped: None,
                    dir: String::new(),
                },
                crate::run::job::WrittenFile {
                    path: "big.bin".into(),
                    size: 1 << 30,
                    skipped: Some("too large".into()),
                    dir: String::new(),
                },
            ],
            routes: &[],
            parity: Err("no webhosting package".into()),
            images: &images,
            browser: Some("Chromium 131"),
            phases: &[("suite", Duration::from_secs(4))],
            run_dir: dir.path(),
        });
        assert!(html.contains("<header class=\"red\">"));
        assert!(html.contains("assert &lt;b&gt; == 1"));
        assert!(html.contains("Traceback &amp; more"));
        assert!(html.contains("data:image/png;base64,"));
        // The thumbnail links to the full-size file.
        assert!(html.contains(&format!(
            "<a href=\"{shot}\" title=\"open full size\"><img class=\"shot\""
        )));
        assert!(html.contains("<code>console.error</code> Failed to load resource: &lt;500&gt;"));
        assert!(html.contains("RuntimeError: boom &lt;alpha&gt;"));
        assert!(html.contains("GET /boom?x=&lt;1&gt;") && html.contains("0123456789abcdef"));
        assert!(html.contains("href=\"report/artifacts/test-x/trace.zip\""));
        assert!(html.contains("mode 0600"));
        assert!(html.find("test_bad").unwrap() < html.find("test_ok").unwrap());
        assert!(html.contains("c0de") && html.contains("5c4e") && html.contains("sha256:abc"));
        assert!(html.contains("Not compared: no webhosting package"));
        assert!(html.contains("href=\"report/tree/apps/shop/coverage.xml\""));
        assert!(html.contains("not copied: too large"));
    }

    #[test]
    fn href_encodes_what_a_url_cannot_hold() {
        assert_eq!(href("a b/c#d.png"), "a%20b/c%23d.png");
    }
}
