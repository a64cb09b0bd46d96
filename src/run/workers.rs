//! `harness test --workers N`: what N stacks' results become as one run.
//!
//! Each worker is a complete run of its own (own id, folder, app copy, database, mocks); the
//! first worker's folder holds the merged junit.xml and the one report, whose links to the
//! other workers' screenshots, traces and written files point into their folders
//! (`../<id>/report/…`, siblings under .harness/runs/).
use std::sync::Mutex;

use super::job::{Collected, Session};
use super::{junit, proxylog};
use crate::error::{Exit, Failure};

/// The most stacks one `harness test` starts.
pub const MAX_WORKERS: u32 = 16;

/// One worker's finished part.
pub(super) struct Part {
    pub run_id: String,
    pub run_dir: std::path::PathBuf,
    pub collected: Collected,
    pub exit_code: i64,
}

/// pytest's exit codes of the workers as one: an unexpected code (infrastructure) wins, then
/// collection errors (2), then failures (1); "no tests collected" (5) only when no worker
/// collected any.
pub(super) fn exit_code(codes: &[i64]) -> i64 {
    if let Some(other) = codes.iter().find(|c| ![0, 1, 2, 5].contains(*c)) {
        return *other;
    }
    for worst in [2, 1] {
        if codes.contains(&worst) {
            return worst;
        }
    }
    if codes.iter().all(|c| *c == 5) { 5 } else { 0 }
}

/// The workers' results as one run's, written into the first worker's folder: junit.xml holds
/// every worker's test suites, routes come from every proxy log, the session's counts add up.
pub(super) fn merge(parts: Vec<Part>) -> Result<Collected, Failure> {
    let primary = parts[0].run_dir.clone();
    let mut junit_texts = Vec::new();
    let mut logs = String::new();
    let mut merged = Collected {
        suite: None,
        junit: None,
        attachments: Default::default(),
        page_screenshots: Vec::new(),
        routes: Vec::new(),
        browser: None,
        session: Session::default(),
        written: Default::default(),
        wrote_into_vendor_cache: false,
    };
    let mut seconds: f64 = 0.0;
    for (i, part) in parts.into_iter().enumerate() {
        // Paths in a worker's results are relative to its folder; the report sits in the first.
        let base = if i == 0 {
            String::new()
        } else {
            format!("../{}/", part.run_id)
        };
        let c = part.collected;
        if let Ok(text) = std::fs::read_to_string(part.run_dir.join("report/junit.xml")) {
            junit_texts.push(text);
        }
        logs.push_str(
            &std::fs::read_to_string(part.run_dir.join("proxy-log/access.jsonl"))
                .unwrap_or_default(),
        );
        seconds = seconds.max(c.suite.as_ref().map_or(0.0, |s| s.seconds));
        for (case, mut a) in c.attachments {
            for list in [&mut a.screenshots, &mut a.traces, &mut a.other] {
                for p in list.iter_mut() {
                    *p = format!("{base}{p}");
                }
            }
            merged.attachments.insert(case, a);
        }
        merged
            .page_screenshots
            .extend(c.page_screenshots.into_iter().map(|p| format!("{base}{p}")));
        merged
            .written
            .files
            .extend(c.written.files.into_iter().map(|mut f| {
                f.dir = base.clone();
                f
            }));
        merged.browser = merged.browser.or(c.browser);
        merged.wrote_into_vendor_cache |= c.wrote_into_vendor_cache;
        let s = c.session;
        merged.session.collected += s.collected;
        merged.session.ran += s.ran;
        merged.session.deselected += s.deselected;
        merged.session.deselected_by_mocks += s.deselected_by_mocks;
        for n in s.narrowing {
            if !merged.session.narrowing.contains(&n) {
                merged.session.narrowing.push(n);
            }
        }
    }
    merged.routes = proxylog::slowest_routes(&logs, crate::ledger::MAX_ROUTES_PER_RUN).0;
    if !junit_texts.is_empty() {
        let text = merged_junit(&junit_texts);
        let path = primary.join("report/junit.xml");
        crate::fsutil::write_private(&path, text.as_bytes())?;
        let mut suite = junit::parse(&text).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("{} (merged): {e}", path.display()),
            )
        })?;
        // The workers ran side by side: the session took as long as the slowest.
        suite.seconds = seconds;
        merged.suite = Some(suite);
        merged.junit = Some(path);
    }
    Ok(merged)
}

/// One `<testsuites>` document holding every file's test suites.
fn merged_junit(texts: &[String]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"harness workers\">",
    );
    for t in texts {
        out.push_str(suites_of(t));
    }
    out.push_str("</testsuites>");
    out
}

/// The `<testsuite>` elements of a junit document (inside `<testsuites>`, or the root itself).
fn suites_of(text: &str) -> &str {
    let body = match text.find("?>") {
        Some(i) if text.trim_start().starts_with("<?xml") => &text[i + 2..],
        _ => text,
    };
    match (body.find("<testsuites"), body.rfind("</testsuites>")) {
        (Some(open), Some(close)) => match body[open..].find('>') {
            Some(end) if open + end < close => &body[open + end + 1..close],
            _ => "",
        },
        _ => body.trim(),
    }
}

/// Prefixes each complete line of a worker's output with its label; keeps a partial line
/// until its end arrives (or `flush`).
pub(super) struct Prefixer {
    label: String,
    partial: Mutex<Vec<u8>>,
}

impl Prefixer {
    pub fn new(label: &str) -> Prefixer {
        Prefixer {
            label: format!("[{label}] "),
            partial: Mutex::new(Vec::new()),
        }
    }

    /// The complete lines `bytes` finishes, prefixed; empty while a line is still open.
    pub fn feed(&self, bytes: &[u8]) -> Vec<u8> {
        let mut partial = self.partial.lock().expect("prefixer");
        partial.extend_from_slice(bytes);
        let Some(last) = partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = partial.split_off(last + 1);
        let done = std::mem::replace(&mut *partial, rest);
        self.prefixed(&done)
    }

    /// What is left of an unfinished last line.
    pub fn flush(&self) -> Vec<u8> {
        let rest = std::mem::take(&mut *self.partial.lock().expect("prefixer"));
        if rest.is_empty() {
            return rest;
        }
        let mut out = self.prefixed(&rest);
        out.push(b'\n');
        out
    }

    fn prefixed(&self, lines: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(lines.len() + self.label.len() * 4);
        for line in lines.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(self.label.as_bytes());
            out.extend_from_slice(line);
        }
        out
    }
}

/// A worker's phase times folded into the run's: the workers ran side by side, so each phase
/// took as long as its slowest worker.
pub(super) fn slowest_phases(
    workers: &[crate::events::Timings],
) -> Vec<(&'static str, std::time::Duration)> {
    let mut out: Vec<(&'static str, std::time::Duration)> = Vec::new();
    for t in workers {
        for (name, d) in t.list() {
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, longest)) => *longest = (*longest).max(d),
                None => out.push((name, d)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_exit_code_wins_and_no_tests_only_when_none_collected() {
        assert_eq!(exit_code(&[0, 0]), 0);
        assert_eq!(exit_code(&[0, 1]), 1);
        assert_eq!(exit_code(&[1, 2, 0]), 2);
        assert_eq!(exit_code(&[0, 5]), 0);
        assert_eq!(exit_code(&[5, 5]), 5);
        assert_eq!(exit_code(&[1, 90]), 90);
        assert_eq!(exit_code(&[0, -1]), -1);
    }

    #[test]
    fn merged_junit_holds_every_suite_and_parses() {
        let a = "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"pytest tests\"><testsuite name=\"pytest\" time=\"1.5\"><testcase classname=\"test_a\" name=\"test_one\" time=\"0.1\"/></testsuite></testsuites>";
        let b = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuite name=\"pytest\" time=\"2.0\"><testcase classname=\"test_b\" name=\"test_two\" time=\"0.2\"><failure message=\"no\">boom</failure></testcase></testsuite>";
        let text = merged_junit(&[a.to_string(), b.to_string()]);
        let suite = junit::parse(&text).unwrap();
        let names: Vec<&str> = suite.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_one", "test_two"]);
        assert_eq!(suite.counts().failed, 1);
        assert_eq!(suite.counts().passed, 1);
    }

    #[test]
    fn output_lines_carry_the_worker_and_partial_lines_wait_for_their_end() {
        let p = Prefixer::new("w2");
        assert_eq!(p.feed(b"collecting "), b"");
        assert_eq!(
            p.feed(b"... 3 items\ntest_a.py ."),
            b"[w2] collecting ... 3 items\n"
        );
        assert_eq!(p.feed(b".\nx\ny\n"), b"[w2] test_a.py ..\n[w2] x\n[w2] y\n");
        assert_eq!(p.feed(b"tail"), b"");
        assert_eq!(p.flush(), b"[w2] tail\n");
        assert_eq!(p.flush(), b"");
    }
}
