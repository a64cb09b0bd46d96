//! The run history: what the ledger's runs and their details (each test's result and duration,
//! the proxy log's routes) say over time. `load` reads the rows, `analyse` and the functions
//! under it compute from rows alone (no I/O, unit-tested), and `html` renders one static page,
//! `.harness/history.html`, which `harness test` refreshes after every recorded run and
//! `harness runs --html` writes on demand. `harness runs --flaky` prints [`flaky`]'s list.
pub mod html;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::Failure;
use crate::ledger::{Ledger, Outcome, RouteRow, TestRow, TestStatus};
use crate::model::timestamp::Timestamp;

/// The page's file name inside `.harness/`.
pub const FILE_NAME: &str = "history.html";

/// How many of the newest runs the history covers unless asked for another number: enough for
/// months of runs, few enough that refreshing the page after every run stays in milliseconds.
pub const DEFAULT_WINDOW: usize = 500;

/// "Got slower": the median of a test's newest this-many passing runs against the this-many
/// before them.
pub const SLOWER_RUNS: usize = 5;
/// … when the newer median is more than this factor of the older one …
pub const SLOWER_RATIO: f64 = 1.2;
/// … and more than this many milliseconds above it.
pub const SLOWER_MIN_MS: f64 = 500.0;

/// Where the page lives in a project.
pub fn page_path(project_root: &Path) -> PathBuf {
    project_root.join(".harness").join(FILE_NAME)
}

/// One run as the history needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    pub code_fingerprint: String,
    pub git_commit: Option<String>,
    pub selection: String,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub errors: u32,
    pub imported: bool,
    pub report_path: Option<String>,
}

impl RunRow {
    pub fn duration_ms(&self) -> u64 {
        self.finished_at.since(self.started_at).as_millis() as u64
    }
}

/// The rows the history is computed from.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Oldest first by finish time (then id): the order of the chart and of "the last 5 runs".
    pub runs: Vec<RunRow>,
    /// Runs in the ledger; more than `runs.len()` when the window left older ones out.
    pub total_runs: usize,
    /// `(run id, row)`: each test of each run that has details.
    pub tests: Vec<(i64, TestRow)>,
    /// `(run id, row)`: each stored route of each run that has details.
    pub routes: Vec<(i64, RouteRow)>,
}

/// Reads the newest `window` runs (all when `None`) and their details.
pub fn load(ledger: &Ledger, window: Option<usize>) -> Result<History, Failure> {
    let stored = match window {
        Some(n) => ledger.newest_runs(n)?,
        None => ledger.runs()?,
    };
    let total_runs = match window {
        Some(n) if stored.len() >= n => ledger.run_count()?,
        _ => stored.len(),
    };
    let first = stored.iter().map(|r| r.id).min().unwrap_or(i64::MAX);
    let mut runs: Vec<RunRow> = stored
        .into_iter()
        .map(|s| {
            let r = s.record;
            RunRow {
                id: s.id,
                started_at: r.started_at,
                finished_at: r.finished_at,
                outcome: r.outcome,
                code_fingerprint: r.code_fingerprint,
                git_commit: r.git_commit,
                selection: r.selection.to_string(),
                passed: r.passed,
                failed: r.failed,
                skipped: r.skipped,
                errors: r.errors,
                imported: s.origin == crate::ledger::Origin::Imported,
                report_path: r.report_path,
            }
        })
        .collect();
    runs.sort_by_key(|r| (r.finished_at, r.id));
    Ok(History {
        runs,
        total_runs,
        tests: ledger.test_rows_since(first)?,
        routes: ledger.route_rows_since(first)?,
    })
}

/// Writes the page for the project's newest [`DEFAULT_WINDOW`] runs to `.harness/history.html`
/// (mode 0600) and returns its path. `harness test` calls it after recording a run.
pub fn refresh(project_root: &Path) -> Result<PathBuf, Failure> {
    let ledger = crate::gatekeeper::open_ledger(project_root)?;
    refresh_with(&ledger, project_root)
}

/// [`refresh`] with a ledger that is open already.
pub fn refresh_with(ledger: &Ledger, project_root: &Path) -> Result<PathBuf, Failure> {
    let path = page_path(project_root);
    write_page(ledger, &path, Some(DEFAULT_WINDOW))?;
    Ok(path)
}

/// Loads, analyses, renders and writes the page to `path` (atomically, mode 0600).
pub fn write_page(ledger: &Ledger, path: &Path, window: Option<usize>) -> Result<(), Failure> {
    let history = load(ledger, window)?;
    let analysis = analyse(&history);
    // Runs record their report's canonical path; links to them are relative to the page's folder.
    let dir = path.parent().map(|d| {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        d.canonicalize().unwrap_or_else(|_| d.to_path_buf())
    });
    let page = html::render(&history, &analysis, Timestamp::now(), dir.as_deref());
    crate::fsutil::write_private(path, page.as_bytes())
}

/// Everything the page shows, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub summary: Summary,
    pub series: Vec<TestSeries>,
    pub flaky: Vec<Flaky>,
    pub slower: Vec<Slower>,
    pub routes: Vec<RouteAggregate>,
}

pub fn analyse(h: &History) -> Analysis {
    let series = series(h);
    let flaky = flaky(h);
    let slower = slower(&series);
    let routes = routes(h);
    let summary = summary(h, flaky.len(), slower.len());
    Analysis {
        summary,
        series,
        flaky,
        slower,
        routes,
    }
}

/// The counts of the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs: usize,
    pub green: usize,
    pub red: usize,
    pub aborted: usize,
    pub infra: usize,
    /// Runs with per-test results (the others were imported or recorded before they were kept).
    pub with_details: usize,
    pub flaky: usize,
    pub slower: usize,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

pub fn summary(h: &History, flaky: usize, slower: usize) -> Summary {
    let mut s = Summary {
        runs: h.runs.len(),
        flaky,
        slower,
        first: h.runs.first().map(|r| r.finished_at),
        last: h.runs.last().map(|r| r.finished_at),
        ..Summary::default()
    };
    for r in &h.runs {
        match r.outcome {
            Outcome::Green => s.green += 1,
            Outcome::Red => s.red += 1,
            Outcome::Aborted => s.aborted += 1,
            Outcome::Infra => s.infra += 1,
        }
    }
    let known: HashSet<i64> = h.runs.iter().map(|r| r.id).collect();
    let with: HashSet<i64> = h.tests.iter().map(|(id, _)| *id).collect();
    s.with_details = with.intersection(&known).count();
    s
}

/// One result of a test in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub run_id: i64,
    pub status: TestStatus,
    pub duration_ms: u64,
}

/// A test's results in the runs where it ran (skips left out), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSeries {
    pub test: String,
    pub points: Vec<Point>,
    /// Runs that skipped it.
    pub skipped: usize,
}

impl TestSeries {
    pub fn failures(&self) -> usize {
        self.points.iter().filter(|p| p.status.is_failure()).count()
    }

    /// The median duration of its passing runs.
    pub fn median_passed_ms(&self) -> Option<f64> {
        median(
            self.points
                .iter()
                .filter(|p| p.status == TestStatus::Passed)
                .map(|p| p.duration_ms as f64)
                .collect(),
        )
    }
}

/// Position of each run in the history's time order.
fn positions(h: &History) -> HashMap<i64, usize> {
    h.runs.iter().enumerate().map(|(i, r)| (r.id, i)).collect()
}

/// Every test's series, by test name. Rows of runs outside the history are left out.
pub fn series(h: &History) -> Vec<TestSeries> {
    /// A test's points with their run's position in time, and its skips.
    #[derive(Default)]
    struct Gathered {
        points: Vec<(usize, Point)>,
        skipped: usize,
    }
    let at = positions(h);
    let mut by_test: BTreeMap<&str, Gathered> = BTreeMap::new();
    for (run_id, row) in &h.tests {
        let Some(&pos) = at.get(run_id) else {
            continue;
        };
        let entry = by_test.entry(row.test.as_str()).or_default();
        if row.status == TestStatus::Skipped {
            entry.skipped += 1;
            continue;
        }
        entry.points.push((
            pos,
            Point {
                run_id: *run_id,
                status: row.status,
                duration_ms: row.duration_ms,
            },
        ));
    }
    by_test
        .into_iter()
        .map(|(test, mut g)| {
            g.points.sort_by_key(|(pos, _)| *pos);
            TestSeries {
                test: test.to_string(),
                points: g.points.into_iter().map(|(_, p)| p).collect(),
                skipped: g.skipped,
            }
        })
        .collect()
}

/// A test that failed (or errored) and passed on the same code: the runs that show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flaky {
    pub test: String,
    pub code_fingerprint: String,
    /// Run ids, ascending.
    pub failed_runs: Vec<i64>,
    pub passed_runs: Vec<i64>,
}

/// Tests that both failed (failed or error) and passed in runs with the same code fingerprint.
/// Skips say nothing either way, and neither do runs that were interrupted (`aborted`: the
/// interrupt can fail the test that was running). By test name, then the newest evidence first.
pub fn flaky(h: &History) -> Vec<Flaky> {
    /// The runs of one test on one code.
    #[derive(Default)]
    struct Evidence {
        failed: Vec<i64>,
        passed: Vec<i64>,
    }
    let runs: HashMap<i64, &RunRow> = h.runs.iter().map(|r| (r.id, r)).collect();
    let mut groups: BTreeMap<(&str, &str), Evidence> = BTreeMap::new();
    for (run_id, row) in &h.tests {
        let Some(run) = runs.get(run_id) else {
            continue;
        };
        if run.outcome == Outcome::Aborted {
            continue;
        }
        let e = groups
            .entry((row.test.as_str(), run.code_fingerprint.as_str()))
            .or_default();
        match row.status {
            TestStatus::Passed => e.passed.push(*run_id),
            TestStatus::Failed | TestStatus::Error => e.failed.push(*run_id),
            TestStatus::Skipped => {}
        }
    }
    let mut out: Vec<Flaky> = groups
        .into_iter()
        .filter(|(_, e)| !e.failed.is_empty() && !e.passed.is_empty())
        .map(|((test, code), mut e)| {
            e.failed.sort_unstable();
            e.passed.sort_unstable();
            Flaky {
                test: test.to_string(),
                code_fingerprint: code.to_string(),
                failed_runs: e.failed,
                passed_runs: e.passed,
            }
        })
        .collect();
    let newest = |f: &Flaky| {
        f.failed_runs
            .iter()
            .chain(&f.passed_runs)
            .max()
            .copied()
            .unwrap_or(0)
    };
    out.sort_by(|a, b| a.test.cmp(&b.test).then(newest(b).cmp(&newest(a))));
    out
}

/// A test whose newest passing runs took clearly longer than the ones before.
#[derive(Debug, Clone, PartialEq)]
pub struct Slower {
    pub test: String,
    pub older_median_ms: f64,
    pub newer_median_ms: f64,
    /// The runs each median is over, oldest first.
    pub older_runs: Vec<i64>,
    pub newer_runs: Vec<i64>,
}

/// The rule: newer median over [`SLOWER_RATIO`] times the older AND more than [`SLOWER_MIN_MS`]
/// above it (a 40 ms test taking 60 ms is noise; a 20 s test taking 20.6 s too).
pub fn got_slower(older_ms: f64, newer_ms: f64) -> bool {
    newer_ms > older_ms * SLOWER_RATIO && newer_ms - older_ms > SLOWER_MIN_MS
}

/// Tests whose median duration over their newest [`SLOWER_RUNS`] passing runs got slower
/// ([`got_slower`]) than over the [`SLOWER_RUNS`] passing runs before. Only passing runs count: a
/// failure's duration is how long it took to fail (a timeout, or an early assertion). A test
/// with fewer than twice [`SLOWER_RUNS`] passing runs is not judged. Largest increase first.
pub fn slower(series: &[TestSeries]) -> Vec<Slower> {
    let mut out = Vec::new();
    for s in series {
        let passed: Vec<&Point> = s
            .points
            .iter()
            .filter(|p| p.status == TestStatus::Passed)
            .collect();
        if passed.len() < 2 * SLOWER_RUNS {
            continue;
        }
        let newer = &passed[passed.len() - SLOWER_RUNS..];
        let older = &passed[passed.len() - 2 * SLOWER_RUNS..passed.len() - SLOWER_RUNS];
        let med = |ps: &[&Point]| {
            median(ps.iter().map(|p| p.duration_ms as f64).collect()).unwrap_or(0.0)
        };
        let (o, n) = (med(older), med(newer));
        if got_slower(o, n) {
            out.push(Slower {
                test: s.test.clone(),
                older_median_ms: o,
                newer_median_ms: n,
                older_runs: older.iter().map(|p| p.run_id).collect(),
                newer_runs: newer.iter().map(|p| p.run_id).collect(),
            });
        }
    }
    out.sort_by(|a, b| {
        (b.newer_median_ms - b.older_median_ms)
            .total_cmp(&(a.newer_median_ms - a.older_median_ms))
            .then(a.test.cmp(&b.test))
    });
    out
}

/// A route over the runs that stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAggregate {
    pub method: String,
    pub path: String,
    /// Runs whose stored routes include it.
    pub runs: usize,
    /// Requests over those runs.
    pub requests: u64,
    /// The median over those runs of each run's p95: a typical run's slow end.
    pub typical_p95_ms: f64,
    /// The median over those runs of each run's median.
    pub typical_median_ms: f64,
    /// The highest p95 of any run, and that run.
    pub worst_p95_ms: f64,
    pub worst_run: i64,
    /// The slowest single request seen.
    pub max_ms: f64,
}

/// Each method and path over the runs, slowest typical p95 first (then worst p95). A single slow
/// run (a cold start) moves `worst_p95_ms` but not the order.
pub fn routes(h: &History) -> Vec<RouteAggregate> {
    let known: HashSet<i64> = h.runs.iter().map(|r| r.id).collect();
    let mut groups: BTreeMap<(&str, &str), Vec<(i64, &RouteRow)>> = BTreeMap::new();
    for (run_id, r) in &h.routes {
        if known.contains(run_id) {
            groups
                .entry((r.method.as_str(), r.path.as_str()))
                .or_default()
                .push((*run_id, r));
        }
    }
    let mut out: Vec<RouteAggregate> = groups
        .into_iter()
        .map(|((method, path), rows)| {
            let (worst_run, worst) = rows
                .iter()
                .max_by(|a, b| a.1.p95_ms.total_cmp(&b.1.p95_ms).then(b.0.cmp(&a.0)))
                .map(|(id, r)| (*id, r.p95_ms))
                .unwrap_or((0, 0.0));
            RouteAggregate {
                method: method.to_string(),
                path: path.to_string(),
                runs: rows.len(),
                requests: rows.iter().map(|(_, r)| r.count).sum(),
                typical_p95_ms: median(rows.iter().map(|(_, r)| r.p95_ms).collect()).unwrap_or(0.0),
                typical_median_ms: median(rows.iter().map(|(_, r)| r.median_ms).collect())
                    .unwrap_or(0.0),
                worst_p95_ms: worst,
                worst_run,
                max_ms: rows.iter().map(|(_, r)| r.max_ms).fold(0.0, f64::max),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.typical_p95_ms
            .total_cmp(&a.typical_p95_ms)
            .then(b.worst_p95_ms.total_cmp(&a.worst_p95_ms))
            .then(a.method.cmp(&b.method))
            .then(a.path.cmp(&b.path))
    });
    out
}

/// The median; the mean of the middle two for an even count; `None` for none.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests;
