//! What a recorded run holds beyond its portable record: each test's status and duration, and the
//! proxy log's routes. Kept for the run history (`harness runs --html`, `--flaky`); never part of
//! the signed record, so imported runs have none.
use std::collections::BTreeMap;

use rusqlite::params;

use super::{Ledger, LedgerError};

/// The most routes kept per run, slowest first (as the caller orders them).
pub const MAX_ROUTES_PER_RUN: usize = 100;

/// A test's result, as junit.xml reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Error => "error",
            TestStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "passed" => TestStatus::Passed,
            "failed" => TestStatus::Failed,
            "error" => TestStatus::Error,
            "skipped" => TestStatus::Skipped,
            _ => return None,
        })
    }

    /// A failure or an error: the test did not pass although it ran.
    pub fn is_failure(self) -> bool {
        matches!(self, TestStatus::Failed | TestStatus::Error)
    }

    /// Which of two results of one test in one run is kept: a failure over an error over a pass
    /// over a skip (a test reported twice, e.g. by a rerun plugin, failed in that run).
    fn rank(self) -> u8 {
        match self {
            TestStatus::Skipped => 0,
            TestStatus::Passed => 1,
            TestStatus::Error => 2,
            TestStatus::Failed => 3,
        }
    }
}

/// One test of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRow {
    /// junit's `classname::name` (the key the report and the plugin use).
    pub test: String,
    pub status: TestStatus,
    pub duration_ms: u64,
}

/// One route of one run's proxy log: method and path (query dropped), and its request times.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRow {
    pub method: String,
    pub path: String,
    pub count: u64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// A run's tests and routes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunDetails {
    pub tests: Vec<TestRow>,
    /// Slowest first; only the first [`MAX_ROUTES_PER_RUN`] are kept.
    pub routes: Vec<RouteRow>,
}

impl Ledger {
    /// Stores run `run_id`'s tests and routes, replacing any stored before for it (recording the
    /// same details twice leaves one copy). A test reported twice keeps its worst result and the
    /// sum of its durations; a route reported twice keeps its first row.
    pub fn record_run_details(
        &mut self,
        run_id: i64,
        details: &RunDetails,
    ) -> Result<(), LedgerError> {
        let mut tests: BTreeMap<&str, (TestStatus, u64)> = BTreeMap::new();
        for t in &details.tests {
            let entry = tests
                .entry(t.test.as_str())
                .or_insert((TestStatus::Skipped, 0));
            if t.status.rank() >= entry.0.rank() {
                entry.0 = t.status;
            }
            entry.1 = entry.1.saturating_add(t.duration_ms);
        }
        let known = self.write(|tx| {
            let known = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [run_id], |_| Ok(()))
                .map(|_| true)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(false),
                    e => Err(e),
                })?;
            if !known {
                return Ok(false);
            }
            tx.execute("DELETE FROM run_tests WHERE run_id = ?1", [run_id])?;
            tx.execute("DELETE FROM run_routes WHERE run_id = ?1", [run_id])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO run_tests (run_id, test, status, duration_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (test, (status, ms)) in &tests {
                insert.execute(params![
                    run_id,
                    test,
                    status.as_str(),
                    i64::try_from(*ms).unwrap_or(i64::MAX)
                ])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO run_routes (run_id, method, path, count, median_ms, \
                 p95_ms, max_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in details.routes.iter().take(MAX_ROUTES_PER_RUN) {
                insert.execute(params![
                    run_id,
                    r.method,
                    r.path,
                    i64::try_from(r.count).unwrap_or(i64::MAX),
                    r.median_ms,
                    r.p95_ms,
                    r.max_ms
                ])?;
            }
            Ok(true)
        })?;
        if known {
            Ok(())
        } else {
            Err(LedgerError::NoSuchRun {
                path: self.path.clone(),
                id: run_id,
            })
        }
    }

    /// Run `run_id`'s stored details: tests by name, routes slowest (by p95) first. Empty for a
    /// run that has none (imported, or recorded before details were kept).
    pub fn run_details(&self, run_id: i64) -> Result<RunDetails, LedgerError> {
        let tests = self.test_rows("run_id = ?1", run_id)?;
        let mut routes = self.route_rows("run_id = ?1", run_id)?;
        routes.sort_by(|(_, a), (_, b)| {
            b.p95_ms
                .total_cmp(&a.p95_ms)
                .then(b.max_ms.total_cmp(&a.max_ms))
        });
        Ok(RunDetails {
            tests: tests.into_iter().map(|(_, t)| t).collect(),
            routes: routes.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// Every stored test row of the runs with id `first_run` or above: `(run id, row)`, by run
    /// id, then test name.
    pub fn test_rows_since(&self, first_run: i64) -> Result<Vec<(i64, TestRow)>, LedgerError> {
        self.test_rows("run_id >= ?1", first_run)
    }

    /// Every stored route row of the runs with id `first_run` or above: `(run id, row)`, by run
    /// id, then method and path.
    pub fn route_rows_since(&self, first_run: i64) -> Result<Vec<(i64, RouteRow)>, LedgerError> {
        self.route_rows("run_id >= ?1", first_run)
    }

    fn test_rows(&self, filter: &str, id: i64) -> Result<Vec<(i64, TestRow)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT run_id, test, status, duration_ms FROM run_tests WHERE {filter} \
                 ORDER BY run_id, test"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(id, test, status, ms)| {
                let status = TestStatus::parse(&status).ok_or_else(|| LedgerError::BadRow {
                    path: self.path.clone(),
                    what: "test result",
                    detail: format!("run {id}, {test}: status `{status}`"),
                })?;
                Ok((
                    id,
                    TestRow {
                        test,
                        status,
                        duration_ms: ms.max(0) as u64,
                    },
                ))
            })
            .collect()
    }

    fn route_rows(&self, filter: &str, id: i64) -> Result<Vec<(i64, RouteRow)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT run_id, method, path, count, median_ms, p95_ms, max_ms FROM run_routes \
                 WHERE {filter} ORDER BY run_id, method, path"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                RouteRow {
                    method: r.get(1)?,
                    path: r.get(2)?,
                    count: r.get::<_, i64>(3)?.max(0) as u64,
                    median_ms: r.get(4)?,
                    p95_ms: r.get(5)?,
                    max_ms: r.get(6)?,
                },
            ))
        })
        .map_err(|e| self.err(e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| self.err(e))
    }
}
