//! The history as one static HTML page: inline CSS and SVG, no script, nothing loaded from
//! anywhere (a Content-Security-Policy says so to the browser too). Every string that comes from
//! the ledger goes through `model::html::esc`.
use crate::model::html::esc;
use std::fmt::Write;
use std::path::Path;

use super::{Analysis, History, RunRow, SLOWER_MIN_MS, SLOWER_RATIO, SLOWER_RUNS, TestSeries};
use crate::ledger::Outcome;
use crate::model::timestamp::Timestamp;

/// The newest points a test's sparkline shows.
pub const SPARK_POINTS: usize = 60;
/// The newest runs the run table lists.
pub const TABLE_RUNS: usize = 50;
/// The routes the route table lists.
pub const TABLE_ROUTES: usize = 30;

/// `850 ms`, `12.3 s`, `2m 05s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

fn run_list(ids: &[i64]) -> String {
    ids.iter()
        .map(|id| format!("#{id}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A link to a run's report when it lies under the page's folder (a relative link keeps the
/// page working wherever `.harness/` is opened from).
fn report_href(run: &RunRow, page_dir: Option<&Path>) -> Option<String> {
    let report = Path::new(run.report_path.as_deref()?);
    let rel = report.strip_prefix(page_dir?).ok()?;
    if !rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{padding:18px 28px;background:#1d2330;color:#fff}header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;opacity:.92}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:16px;margin:4px 0 6px}p.note{color:#4a5566;margin:0 0 10px;font-size:13px}
table{border-collapse:collapse;width:100%}
td{overflow-wrap:anywhere}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3;vertical-align:middle}
th{font-weight:600;color:#4a5566;background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:12px}
.o-green{fill:#1f7a3f}.o-red{fill:#b3261e}.o-aborted{fill:#8a6d00}.o-infra{fill:#5a3e8a}
.b-green{background:#1f7a3f}.b-red{background:#b3261e}.b-aborted{background:#8a6d00}.b-infra{background:#5a3e8a}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}
.legend span{margin-right:14px;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
svg.chart{width:100%;height:auto;display:block}svg.chart text{font-size:11px;fill:#4a5566}
svg.spark polyline{fill:none;stroke:#4a5566;stroke-width:1.2}svg.spark circle.fail{fill:#b3261e}svg.spark circle.last{fill:#1d2330}
.none{color:#4a5566;font-style:italic}
"#;

/// The whole page. `page_dir` is where it will be written (for links to run reports).
pub fn render(h: &History, a: &Analysis, now: Timestamp, page_dir: Option<&Path>) -> String {
    let mut out = String::with_capacity(64 * 1024 + h.tests.len() * 64);
    out.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>harness run history</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body>");
    header(&mut out, h, a, now);
    out.push_str("<main>");
    runs_chart(&mut out, h, page_dir);
    flaky(&mut out, a);
    slower(&mut out, a);
    routes(&mut out, a);
    tests(&mut out, a);
    runs_table(&mut out, h, page_dir);
    out.push_str("</main></body></html>\n");
    out
}

fn header(out: &mut String, h: &History, a: &Analysis, now: Timestamp) {
    let s = &a.summary;
    let _ = write!(
        out,
        "<header><h1>Run history</h1><p class=\"summary\">{} · {} green · {} red · {} aborted · {} infra · {} · {}</p>",
        plural(s.runs, "run", "runs"),
        s.green,
        s.red,
        s.aborted,
        s.infra,
        plural(s.flaky, "flaky test", "flaky tests"),
        plural(s.slower, "test got slower", "tests got slower"),
    );
    if let (Some(first), Some(last)) = (s.first, s.last) {
        let _ = write!(
            out,
            "<p>Runs finished from {} to {} UTC; page written {} UTC.",
            first.short(),
            last.short(),
            now.short()
        );
    } else {
        let _ = write!(
            out,
            "<p>No runs recorded yet (<code>harness test</code> records them). Page written {} UTC.",
            now.short()
        );
    }
    if h.total_runs > s.runs {
        let _ = write!(
            out,
            " The newest {} of {} recorded runs (<code>harness runs --html --limit N</code> for another number).",
            s.runs, h.total_runs
        );
    }
    if s.with_details < s.runs {
        let _ = write!(
            out,
            " {} of {} runs have per-test results; imported runs and runs recorded before harness kept them have none.",
            s.with_details, s.runs
        );
    }
    out.push_str("</p></header>");
}

fn outcome_tip(r: &RunRow) -> String {
    format!(
        "run #{} · {} UTC · {} · {} · {} passed, {} failed, {} errors, {} skipped · {} · code {}{}",
        r.id,
        r.finished_at.short(),
        r.outcome.as_str(),
        fmt_ms(r.duration_ms() as f64),
        r.passed,
        r.failed,
        r.errors,
        r.skipped,
        r.selection,
        short(&r.code_fingerprint),
        if r.imported { " · imported" } else { "" }
    )
}

fn runs_chart(out: &mut String, h: &History, page_dir: Option<&Path>) {
    out.push_str("<section><h2>Runs over time</h2>");
    if h.runs.is_empty() {
        out.push_str("<p class=\"none\">No runs yet.</p></section>");
        return;
    }
    out.push_str(
        "<p class=\"note\">One bar per run, oldest on the left; its height is the run's wall time \
         (start to finish), its colour the outcome. Hover for details; a click opens the run's report \
         when it is still there.</p><p class=\"legend\">",
    );
    for o in [
        Outcome::Green,
        Outcome::Red,
        Outcome::Aborted,
        Outcome::Infra,
    ] {
        let _ = write!(out, "<span><i class=\"b-{0}\"></i>{0}</span>", o.as_str());
    }
    out.push_str("</p>");
    const W: f64 = 960.0;
    const H: f64 = 190.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 22.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = h.runs.len() as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).clamp(1.0, 24.0);
    let max = h
        .runs
        .iter()
        .map(RunRow::duration_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"run durations and outcomes\">\
         <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{right}\" y2=\"{base}\" stroke=\"#c5cbd3\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{right}\" y2=\"{TOP}\" stroke=\"#eceff3\"/>\
         <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{maxl}</text>\
         <text x=\"{lx}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        base = TOP + plot_h,
        right = W - RIGHT,
        lx = LEFT - 4.0,
        ty = TOP + 8.0,
        maxl = esc(&fmt_ms(max)),
    );
    for (i, r) in h.runs.iter().enumerate() {
        let hgt = (r.duration_ms() as f64 / max * plot_h).max(2.0);
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let y = TOP + plot_h - hgt;
        let link = report_href(r, page_dir);
        if let Some(href) = &link {
            let _ = write!(out, "<a href=\"{}\">", esc(href));
        }
        let _ = write!(
            out,
            "<rect class=\"o-{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{hgt:.1}\"><title>{}</title></rect>",
            r.outcome.as_str(),
            esc(&outcome_tip(r))
        );
        if link.is_some() {
            out.push_str("</a>");
        }
    }
    let first = h
        .runs
        .first()
        .map(|r| r.finished_at.short())
        .unwrap_or_default();
    let last = h
        .runs
        .last()
        .map(|r| r.finished_at.short())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{ly}\">{} UTC</text><text x=\"{right}\" y=\"{ly}\" text-anchor=\"end\">{} UTC</text></svg></section>",
        esc(&first),
        esc(&last),
        right = W - RIGHT,
        ly = H - 6.0,
    );
}

fn flaky(out: &mut String, a: &Analysis) {
    out.push_str(
        "<section id=\"flaky\"><h2>Flaky tests</h2><p class=\"note\">Tests that failed (or errored) \
         and passed on the same code: runs with the same code fingerprint. Skips count for neither; \
         interrupted (aborted) runs are left out.</p>",
    );
    if a.flaky.is_empty() {
        out.push_str("<p class=\"none\">None.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Test</th><th>Code</th><th>Failed in runs</th><th>Passed in runs</th></tr>",
    );
    for f in &a.flaky {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&f.test),
            esc(&f.code_fingerprint),
            esc(short(&f.code_fingerprint)),
            run_list(&f.failed_runs),
            run_list(&f.passed_runs)
        );
    }
    out.push_str("</table></section>");
}

fn slower(out: &mut String, a: &Analysis) {
    let _ = write!(
        out,
        "<section id=\"slower\"><h2>Tests that got slower</h2><p class=\"note\">The median duration of a \
         test's newest {SLOWER_RUNS} passing runs against the {SLOWER_RUNS} passing runs before them; \
         listed when it is more than {pct:.0}% and more than {min} above. Tests with fewer than {two} \
         passing runs are not judged.</p>",
        pct = (SLOWER_RATIO - 1.0) * 100.0,
        min = fmt_ms(SLOWER_MIN_MS),
        two = 2 * SLOWER_RUNS,
    );
    if a.slower.is_empty() {
        out.push_str("<p class=\"none\">None.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Test</th><th class=\"num\">Before</th><th class=\"num\">Now</th>\
         <th class=\"num\">Change</th><th>Runs before</th><th>Runs now</th></tr>",
    );
    for s in &a.slower {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">+{} (+{:.0}%)</td><td>{}</td><td>{}</td></tr>",
            esc(&s.test),
            fmt_ms(s.older_median_ms),
            fmt_ms(s.newer_median_ms),
            fmt_ms(s.newer_median_ms - s.older_median_ms),
            if s.older_median_ms > 0.0 {
                (s.newer_median_ms / s.older_median_ms - 1.0) * 100.0
            } else {
                100.0
            },
            run_list(&s.older_runs),
            run_list(&s.newer_runs)
        );
    }
    out.push_str("</table></section>");
}

fn routes(out: &mut String, a: &Analysis) {
    out.push_str(
        "<section id=\"routes\"><h2>Slowest routes</h2><p class=\"note\">From the proxy's access log \
         (the stack's readiness probes left out), per method and path without the query. Each run \
         keeps its slowest routes by p95; a route counts in the runs that kept it. Ordered by the \
         typical p95: the median over those runs of each run's p95, so one cold start does not \
         decide the order; the worst run's p95 is beside it.</p>",
    );
    if a.routes.is_empty() {
        out.push_str("<p class=\"none\">No routes recorded.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Route</th><th class=\"num\">Runs</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Typical p95</th><th class=\"num\">Typical median</th>\
         <th class=\"num\">Worst p95 (run)</th><th class=\"num\">Slowest request</th></tr>",
    );
    for r in a.routes.iter().take(TABLE_ROUTES) {
        let _ = write!(
            out,
            "<tr><td><code>{} {}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} (#{})</td>\
             <td class=\"num\">{}</td></tr>",
            esc(&r.method),
            esc(&r.path),
            r.runs,
            r.requests,
            fmt_ms(r.typical_p95_ms),
            fmt_ms(r.typical_median_ms),
            fmt_ms(r.worst_p95_ms),
            r.worst_run,
            fmt_ms(r.max_ms)
        );
    }
    out.push_str("</table>");
    if a.routes.len() > TABLE_ROUTES {
        let _ = write!(
            out,
            "<p class=\"note\">{} more routes not shown.</p>",
            a.routes.len() - TABLE_ROUTES
        );
    }
    out.push_str("</section>");
}

fn tests(out: &mut String, a: &Analysis) {
    let _ = write!(
        out,
        "<section id=\"tests\"><h2>Tests</h2><p class=\"note\">Each test's duration in the runs where \
         it ran (skips left out), oldest on the left, the newest {SPARK_POINTS} at most; red dots are \
         failures and errors. The scale is the test's own.</p>",
    );
    if a.series.is_empty() {
        out.push_str("<p class=\"none\">No per-test results recorded.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Test</th><th class=\"num\">Ran</th><th class=\"num\">Failed</th>\
         <th class=\"num\">Skipped</th><th class=\"num\">Median (passing)</th>\
         <th class=\"num\">Last</th><th>Duration</th></tr>",
    );
    for s in &a.series {
        let last = s.points.last().map_or("–".to_string(), |p| {
            let d = fmt_ms(p.duration_ms as f64);
            if p.status.is_failure() {
                format!("{d} ({})", p.status.as_str())
            } else {
                d
            }
        });
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>",
            esc(&s.test),
            s.points.len(),
            s.failures(),
            s.skipped,
            s.median_passed_ms().map_or("–".to_string(), fmt_ms),
            esc(&last)
        );
        sparkline(out, s);
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
}

fn sparkline(out: &mut String, s: &TestSeries) {
    const W: f64 = 180.0;
    const H: f64 = 30.0;
    const PAD: f64 = 3.0;
    let points = &s.points[s.points.len().saturating_sub(SPARK_POINTS)..];
    if points.is_empty() {
        return;
    }
    let max = points
        .iter()
        .map(|p| p.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = if points.len() > 1 {
        (W - 2.0 * PAD) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let xy = |i: usize, ms: u64| {
        let x = if points.len() > 1 {
            PAD + i as f64 * step
        } else {
            W / 2.0
        };
        (x, H - PAD - ms as f64 / max * (H - 2.0 * PAD))
    };
    let _ = write!(
        out,
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"durations\"><polyline points=\""
    );
    for (i, p) in points.iter().enumerate() {
        let (x, y) = xy(i, p.duration_ms);
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.push_str("\"/>");
    for (i, p) in points.iter().enumerate() {
        let last = i + 1 == points.len();
        if !p.status.is_failure() && !last {
            continue;
        }
        let (x, y) = xy(i, p.duration_ms);
        let _ = write!(
            out,
            "<circle class=\"{}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{}\"><title>run #{}: {}, {}</title></circle>",
            if p.status.is_failure() {
                "fail"
            } else {
                "last"
            },
            if p.status.is_failure() { 2.6 } else { 1.8 },
            p.run_id,
            p.status.as_str(),
            fmt_ms(p.duration_ms as f64)
        );
    }
    out.push_str("</svg>");
}

fn runs_table(out: &mut String, h: &History, page_dir: Option<&Path>) {
    if h.runs.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section id=\"runs\"><h2>Latest runs</h2><p class=\"note\">The newest {} runs, newest first \
         (<code>harness runs</code> lists all).</p><table><tr><th class=\"num\">Run</th>\
         <th>Finished (UTC)</th><th>Outcome</th><th class=\"num\">Pass/Fail/Err/Skip</th>\
         <th class=\"num\">Time</th><th>Selection</th><th>Commit</th><th>Code</th><th>Report</th></tr>",
        h.runs.len().min(TABLE_RUNS)
    );
    for r in h.runs.iter().rev().take(TABLE_RUNS) {
        let report = match report_href(r, page_dir) {
            Some(href) => format!("<a href=\"{}\">report</a>", esc(&href)),
            None if r.imported => "imported".to_string(),
            None => String::new(),
        };
        let _ = write!(
            out,
            "<tr><td class=\"num\">#{}</td><td>{}</td><td><span class=\"badge b-{}\">{}</span></td>\
             <td class=\"num\">{}/{}/{}/{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td>\
             <td><code>{}</code></td><td>{}</td></tr>",
            r.id,
            r.finished_at.short(),
            r.outcome.as_str(),
            r.outcome.as_str(),
            r.passed,
            r.failed,
            r.errors,
            r.skipped,
            fmt_ms(r.duration_ms() as f64),
            esc(&r.selection),
            esc(r.git_commit.as_deref().map_or("-", short)),
            esc(short(&r.code_fingerprint)),
            report
        );
    }
    out.push_str("</table></section>");
}
