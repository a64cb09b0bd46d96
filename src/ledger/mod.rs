//! The run ledger: `.harness/ledger.db`, one SQLite file recording runs, gate decisions and deploys.
//!
//! Several harness processes may share it (two `harness test` at once, an import while a gate
//! runs), so it runs in WAL mode with a busy timeout, and every write takes the write lock up
//! front (`BEGIN IMMEDIATE`) instead of upgrading a read lock, which could fail with SQLITE_BUSY
//! regardless of the timeout. A damaged file is reported and left alone: it is the only copy of
//! that history, so harness never recreates it.
mod record;
mod remote;
pub mod signing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::{Exit, Failure};
pub use record::{EnvDigest, Origin, Outcome, RunRecord, SCHEMA, Selection, StoredRun, Timestamp};
pub use remote::{
    BackupKind, BackupRecord, DrillRecord, LiveRecord, RollbackOutcome, RollbackRecord,
};
use signing::Signature;

/// Where the ledger lives inside a project.
pub fn path_in(project_root: &Path) -> PathBuf {
    project_root.join(".harness").join("ledger.db")
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the run ledger {} is damaged: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("the run ledger {} has schema version {found}; this harness knows up to {known}", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the run ledger {} cannot be used: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the run ledger {} holds an unreadable {what}: {detail}", path.display())]
    BadRow {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
}

impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Failure {
        let hint = match &e {
            LedgerError::Corrupt { path, .. } | LedgerError::BadRow { path, .. } => format!(
                "harness leaves the file as it is. Move it aside (mv {p} {p}.damaged) and run again to \
                 start a new ledger; the old runs can be re-imported from signed exports \
                 (harness runs import), and the file can be inspected with sqlite3",
                p = path.display()
            ),
            LedgerError::TooNew { .. } => {
                "use the newer harness that wrote it, or move the file aside to start a new ledger"
                    .into()
            }
            LedgerError::Sqlite { .. } | LedgerError::Io { .. } => {
                "check that .harness/ is writable and the disk is not full".into()
            }
        };
        Failure::new(Exit::Environment, e.to_string()).hint(hint)
    }
}

/// Schema versions, applied in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    uid                TEXT NOT NULL UNIQUE,
    started_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER NOT NULL,
    git_commit         TEXT,
    dirty              INTEGER,               -- NULL: unknown
    target             TEXT NOT NULL,
    package_sha256     TEXT NOT NULL,
    code_fingerprint   TEXT NOT NULL,
    schema_fingerprint TEXT,
    input_fingerprint  TEXT NOT NULL,
    selection          TEXT NOT NULL,         -- JSON, see record::Selection
    passed             INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    skipped            INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('green', 'red', 'aborted', 'infra')),
    image_ids          TEXT NOT NULL,         -- JSON object: service -> image id
    browser_version    TEXT,
    report_path        TEXT,
    origin             TEXT NOT NULL CHECK (origin IN ('local', 'imported')),
    signer_key         TEXT,
    signature          TEXT,
    verified           INTEGER NOT NULL DEFAULT 0,
    recorded_at_ms     INTEGER NOT NULL
);
CREATE INDEX runs_by_code ON runs (code_fingerprint, outcome);
CREATE INDEX runs_by_finish ON runs (finished_at_ms, id);
CREATE TABLE gate_decisions (
    id                 INTEGER PRIMARY KEY,
    decided_at_ms      INTEGER NOT NULL,
    target             TEXT NOT NULL,
    package_sha256     TEXT NOT NULL,
    code_fingerprint   TEXT NOT NULL,
    schema_fingerprint TEXT,
    open               INTEGER NOT NULL,
    rule               TEXT NOT NULL,
    run_id             INTEGER REFERENCES runs (id),
    allow_dirty        INTEGER NOT NULL,
    forced_reason      TEXT,
    git_commit         TEXT,
    decision           TEXT NOT NULL          -- JSON of gate::GateDecision
);
CREATE TABLE deploys (
    id                 INTEGER PRIMARY KEY,
    started_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER NOT NULL,
    target             TEXT NOT NULL,
    package_sha256     TEXT NOT NULL,
    gate_decision_id   INTEGER REFERENCES gate_decisions (id),
    outcome            TEXT NOT NULL CHECK (outcome IN ('deployed', 'rolled_back', 'failed', 'unknown')),
    release_id         TEXT,
    detail             TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE backups (
    id                 INTEGER PRIMARY KEY,
    target             TEXT NOT NULL,
    name               TEXT NOT NULL,         -- <stamp>-<live build id>, as on the server
    kind               TEXT NOT NULL CHECK (kind IN ('scheduled', 'deploy', 'rollback')),
    taken_at_ms        INTEGER NOT NULL,
    build_id           TEXT,                  -- the build that was live
    sha256             TEXT NOT NULL,         -- of the .tar.gz, checked on both ends
    size               INTEGER NOT NULL,
    remote_path        TEXT NOT NULL,
    local_path         TEXT NOT NULL,
    pruned_at_ms       INTEGER,               -- when retention deleted it on the server
    UNIQUE (target, name)
);
CREATE TABLE rollbacks (
    id                 INTEGER PRIMARY KEY,
    started_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER NOT NULL,
    target             TEXT NOT NULL,
    release            TEXT NOT NULL,         -- the kept release put back (its name under releases/)
    from_build         TEXT,
    to_build           TEXT,
    package_sha256     TEXT,                  -- to_build's package, when a deploy recorded it
    with_db            INTEGER NOT NULL,
    db_backup          TEXT,                  -- backups.name restored with --with-db
    outcome            TEXT NOT NULL CHECK (outcome IN ('done', 'reverted', 'failed', 'unknown')),
    detail             TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE backup_drills (
    id                 INTEGER PRIMARY KEY,
    target             TEXT NOT NULL,
    backup_name        TEXT NOT NULL,
    backup_sha256      TEXT NOT NULL,
    started_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('green', 'red', 'aborted', 'infra')),
    integrity          TEXT NOT NULL,         -- 'ok' or what PRAGMA integrity_check said
    passed             INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    report_path        TEXT
);
"#,
    // Record schema 2: the user's pytest arguments and [test] env's names and digest; rows
    // from before are schema 1 records (their signatures cover schema 1 bytes).
    r#"
ALTER TABLE runs ADD COLUMN record_schema INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN pytest_args TEXT;
ALTER TABLE runs ADD COLUMN test_env TEXT;
"#,
];

const RUN_COLUMNS: &str = "id, uid, started_at_ms, finished_at_ms, git_commit, dirty, target, \
    package_sha256, code_fingerprint, schema_fingerprint, input_fingerprint, selection, passed, \
    failed, skipped, errors, outcome, image_ids, browser_version, report_path, origin, signer_key, \
    signature, verified, record_schema, pytest_args, test_env";

/// An open ledger. Cheap to open; one per command.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

/// What `import_run` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    New(i64),
    /// The same run (by uid) is already here; nothing changed.
    AlreadyPresent(i64),
    /// An unverified copy was here and this verified one replaced it.
    Replaced(i64),
}

/// A gate decision as recorded: the facts it was made on plus the decision itself.
#[derive(Debug, Clone)]
pub struct GateDecisionRecord {
    pub decided_at: Timestamp,
    pub target: String,
    pub package_sha256: String,
    pub code_fingerprint: String,
    pub schema_fingerprint: Option<String>,
    pub git_commit: Option<String>,
    pub allow_dirty: bool,
    pub decision: crate::gate::GateDecision,
}

#[derive(Debug, Clone)]
pub struct StoredGateDecision {
    pub id: i64,
    pub decided_at: Timestamp,
    pub open: bool,
    pub rule: String,
    pub run_id: Option<i64>,
    pub allow_dirty: bool,
    pub forced_reason: Option<String>,
    pub package_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployOutcome {
    Deployed,
    RolledBack,
    Failed,
    Unknown,
}

impl DeployOutcome {
    fn as_str(self) -> &'static str {
        match self {
            DeployOutcome::Deployed => "deployed",
            DeployOutcome::RolledBack => "rolled_back",
            DeployOutcome::Failed => "failed",
            DeployOutcome::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "deployed" => DeployOutcome::Deployed,
            "rolled_back" => DeployOutcome::RolledBack,
            "failed" => DeployOutcome::Failed,
            "unknown" => DeployOutcome::Unknown,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRecord {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub target: String,
    pub package_sha256: String,
    pub gate_decision_id: Option<i64>,
    pub outcome: DeployOutcome,
    pub release_id: Option<String>,
    pub detail: String,
}

impl Ledger {
    /// Opens the ledger, creating it (and `.harness/`) when absent and migrating it when older.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let path = path.to_path_buf();
        let err = |e: rusqlite::Error| classify(&path, e);
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(15)).map_err(err)?;
        let mut ledger = Ledger { conn, path };
        ledger.prepare()?;
        Ok(ledger)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> LedgerError {
        classify(&self.path, e)
    }

    fn prepare(&mut self) -> Result<(), LedgerError> {
        // Reading the header first means a file that is not a database fails here, before the
        // journal-mode switch could write a -wal or -shm beside it.
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        // WAL lets readers (a gate, `runs`) proceed while a test run writes. NORMAL sync is
        // durable across application crashes in WAL mode, which is the failure that matters here.
        let mode: String = retry_busy(|| {
            self.conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        })
        .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Sqlite {
                path: self.path.clone(),
                source: rusqlite::Error::InvalidQuery,
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.err(e))?;
        if version < known {
            self.migrate()?;
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(&path, e))?;
        // Another process may have migrated between our read and the write lock: read again.
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(sql).map_err(|e| classify(&path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| classify(&path, e))?;
        }
        tx.commit().map_err(|e| classify(&path, e))
    }

    /// The schema version this ledger is at.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Records a run made here; returns its local id.
    pub fn record_run(&mut self, run: &RunRecord) -> Result<i64, LedgerError> {
        self.write(|tx| insert_run(tx, run, &Origin::Local))
    }

    /// Stores an imported run. A run already present (same uid) is kept, unless it was an
    /// unverified import and this copy is verified.
    pub fn import_run(
        &mut self,
        run: &RunRecord,
        origin: &Origin,
    ) -> Result<Imported, LedgerError> {
        let verified = matches!(origin, Origin::Imported { verified: true, .. });
        self.write(|tx| {
            let existing: Option<(i64, String, bool)> = tx
                .query_row(
                    "SELECT id, origin, verified FROM runs WHERE uid = ?1",
                    [&run.uid],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match existing {
                None => insert_run(tx, run, origin).map(Imported::New),
                Some((id, o, false)) if o == "imported" && verified => {
                    tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
                    insert_run_with_id(tx, Some(id), run, origin).map(Imported::Replaced)
                }
                Some((id, ..)) => Ok(Imported::AlreadyPresent(id)),
            }
        })
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<StoredRun>, LedgerError> {
        self.query_runs(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"), [])
    }

    fn query_runs(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredRun>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params, read_run)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| r.map_err(|e| self.bad_row(e)))
            .collect()
    }

    /// The runs that decide the gate for a package (see `gate::GateFacts::runs`): every green
    /// run with these fingerprints, the latest green run and the latest run, plus the census.
    /// With an index on the fingerprint this stays fast however long the history grows.
    pub fn gate_runs(
        &self,
        code: &str,
        schema: Option<&str>,
    ) -> Result<(Vec<StoredRun>, crate::gate::Census), LedgerError> {
        let latest = "ORDER BY finished_at_ms DESC, id DESC LIMIT 1";
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE code_fingerprint = ?1 AND outcome = 'green' \
             AND schema_fingerprint IS ?2 \
             UNION SELECT * FROM (SELECT {RUN_COLUMNS} FROM runs WHERE outcome = 'green' {latest}) \
             UNION SELECT * FROM (SELECT {RUN_COLUMNS} FROM runs {latest}) \
             ORDER BY id"
        );
        let runs = self.query_runs(&sql, params![code, schema])?;
        let (total, green): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'green') FROM runs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        Ok((
            runs,
            crate::gate::Census {
                runs: total as usize,
                green: green as usize,
            },
        ))
    }

    pub fn run(&self, id: i64) -> Result<Option<StoredRun>, LedgerError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let row = self
            .conn
            .query_row(&sql, [id], read_run)
            .optional()
            .map_err(|e| self.err(e))?;
        row.transpose().map_err(|e| self.bad_row(e))
    }

    pub fn record_gate_decision(&mut self, d: &GateDecisionRecord) -> Result<i64, LedgerError> {
        let json = serde_json::to_string(&d.decision).expect("a decision serialises");
        self.write(|tx| {
            tx.execute(
                "INSERT INTO gate_decisions (decided_at_ms, target, package_sha256, code_fingerprint, \
                 schema_fingerprint, open, rule, run_id, allow_dirty, forced_reason, git_commit, decision) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    d.decided_at.unix_ms(),
                    d.target,
                    d.package_sha256,
                    d.code_fingerprint,
                    d.schema_fingerprint,
                    d.decision.open,
                    d.decision.deciding_rule.key(),
                    d.decision.closest_run.as_ref().map(|c| c.id),
                    d.allow_dirty,
                    d.decision.forced,
                    d.git_commit,
                    json,
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Recorded gate decisions, oldest first.
    pub fn gate_decisions(&self) -> Result<Vec<StoredGateDecision>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, decided_at_ms, open, rule, run_id, allow_dirty, forced_reason, \
                 package_sha256 FROM gate_decisions ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(StoredGateDecision {
                id: r.get(0)?,
                decided_at: Timestamp::from_unix_ms(r.get(1)?),
                open: r.get(2)?,
                rule: r.get(3)?,
                run_id: r.get(4)?,
                allow_dirty: r.get(5)?,
                forced_reason: r.get(6)?,
                package_sha256: r.get(7)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.err(e))
    }

    pub fn record_deploy(&mut self, d: &DeployRecord) -> Result<i64, LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO deploys (started_at_ms, finished_at_ms, target, package_sha256, \
                 gate_decision_id, outcome, release_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    d.started_at.unix_ms(),
                    d.finished_at.unix_ms(),
                    d.target,
                    d.package_sha256,
                    d.gate_decision_id,
                    d.outcome.as_str(),
                    d.release_id,
                    d.detail,
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Recorded deploys, oldest first.
    pub fn deploys(&self) -> Result<Vec<(i64, DeployRecord)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at_ms, finished_at_ms, target, package_sha256, gate_decision_id, \
                 outcome, release_id, detail FROM deploys ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let outcome: String = r.get(6)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    DeployRecord {
                        started_at: Timestamp::from_unix_ms(r.get(1)?),
                        finished_at: Timestamp::from_unix_ms(r.get(2)?),
                        target: r.get(3)?,
                        package_sha256: r.get(4)?,
                        gate_decision_id: r.get(5)?,
                        outcome: DeployOutcome::parse(&outcome).unwrap_or(DeployOutcome::Unknown),
                        release_id: r.get(7)?,
                        detail: r.get(8)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Runs `f` in a transaction that holds the write lock from its first statement.
    fn write<T>(
        &mut self,
        f: impl Fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let path = self.path.clone();
        retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .map_err(|e| classify(&path, e))
    }

    fn bad_row(&self, detail: String) -> LedgerError {
        LedgerError::BadRow {
            path: self.path.clone(),
            what: "run",
            detail,
        }
    }
}

/// The busy handler covers lock waits, but SQLite returns SQLITE_BUSY without calling it in a
/// few WAL situations (another connection recovering the WAL index, a journal-mode switch).
/// Those last milliseconds, so a short retry loop turns them into waits too.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut delay = Duration::from_millis(5);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn classify(path: &Path, e: rusqlite::Error) -> LedgerError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e
        && matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    {
        return LedgerError::Corrupt {
            path: path.to_path_buf(),
            detail: msg.clone().unwrap_or_else(|| f.to_string()),
        };
    }
    LedgerError::Sqlite {
        path: path.to_path_buf(),
        source: e,
    }
}

fn insert_run(
    tx: &rusqlite::Transaction<'_>,
    run: &RunRecord,
    origin: &Origin,
) -> rusqlite::Result<i64> {
    insert_run_with_id(tx, None, run, origin)
}

fn insert_run_with_id(
    tx: &rusqlite::Transaction<'_>,
    id: Option<i64>,
    run: &RunRecord,
    origin: &Origin,
) -> rusqlite::Result<i64> {
    let (origin_name, signature, verified): (&str, Option<&Signature>, bool) = match origin {
        Origin::Local => ("local", None, false),
        Origin::Imported {
            signature,
            verified,
        } => ("imported", signature.as_ref(), *verified),
    };
    tx.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLUMNS}, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
             ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, \
             ?26, ?27, ?28)"
        ),
        params![
            id,
            run.uid,
            run.started_at.unix_ms(),
            run.finished_at.unix_ms(),
            run.git_commit,
            run.dirty,
            run.target,
            run.package_sha256,
            run.code_fingerprint,
            run.schema_fingerprint,
            run.input_fingerprint,
            serde_json::to_string(&run.selection).expect("selection serialises"),
            run.passed,
            run.failed,
            run.skipped,
            run.errors,
            run.outcome.as_str(),
            serde_json::to_string(&run.image_ids).expect("image ids serialise"),
            run.browser_version,
            run.report_path,
            origin_name,
            signature.map(|s| s.public_key.to_string()),
            signature.map(|s| s.base64()),
            verified,
            run.schema,
            (!run.pytest_args.is_empty())
                .then(|| serde_json::to_string(&run.pytest_args).expect("arguments serialise")),
            run.test_env
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("an env digest serialises")),
            Timestamp::now().unix_ms(),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Reads one row; the inner `Err` is a row SQLite can read but harness cannot make sense of.
fn read_run(r: &Row<'_>) -> rusqlite::Result<Result<StoredRun, String>> {
    let id: i64 = r.get(0)?;
    let selection: String = r.get(11)?;
    let outcome: String = r.get(16)?;
    let image_ids: String = r.get(17)?;
    let origin: String = r.get(20)?;
    let signer: Option<String> = r.get(21)?;
    let signature: Option<String> = r.get(22)?;
    let verified: bool = r.get(23)?;
    let schema: u8 = r.get(24)?;
    let pytest_args: Option<String> = r.get(25)?;
    let test_env: Option<String> = r.get(26)?;
    let pytest_args = match pytest_args.map(|a| serde_json::from_str::<Vec<String>>(&a)) {
        None => Vec::new(),
        Some(Ok(a)) => a,
        Some(Err(_)) => return Ok(Err(format!("run {id}: pytest arguments"))),
    };
    let test_env = match test_env.map(|e| serde_json::from_str(&e)) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => return Ok(Err(format!("run {id}: test environment digest"))),
    };
    let Ok(selection) = serde_json::from_str(&selection) else {
        return Ok(Err(format!("run {id}: selection `{selection}`")));
    };
    let Some(outcome) = Outcome::parse(&outcome) else {
        return Ok(Err(format!("run {id}: outcome `{outcome}`")));
    };
    let Ok(image_ids) = serde_json::from_str(&image_ids) else {
        return Ok(Err(format!("run {id}: image ids `{image_ids}`")));
    };
    let origin = match (origin.as_str(), signer, signature) {
        ("local", ..) => Origin::Local,
        ("imported", Some(k), Some(s)) => match Signature::from_stored(&k, &s) {
            Ok(sig) => Origin::Imported {
                signature: Some(sig),
                verified,
            },
            Err(e) => return Ok(Err(format!("run {id}: {e}"))),
        },
        ("imported", ..) => Origin::Imported {
            signature: None,
            verified,
        },
        (other, ..) => return Ok(Err(format!("run {id}: origin `{other}`"))),
    };
    let record = RunRecord {
        uid: r.get(1)?,
        started_at: Timestamp::from_unix_ms(r.get(2)?),
        finished_at: Timestamp::from_unix_ms(r.get(3)?),
        git_commit: r.get(4)?,
        dirty: r.get(5)?,
        target: r.get(6)?,
        package_sha256: r.get(7)?,
        code_fingerprint: r.get(8)?,
        schema_fingerprint: r.get(9)?,
        input_fingerprint: r.get(10)?,
        selection,
        passed: r.get(12)?,
        failed: r.get(13)?,
        skipped: r.get(14)?,
        errors: r.get(15)?,
        outcome,
        image_ids,
        browser_version: r.get(18)?,
        report_path: r.get(19)?,
        pytest_args,
        test_env,
        schema,
    };
    Ok(Ok(StoredRun { id, record, origin }))
}

#[cfg(test)]
mod tests;
