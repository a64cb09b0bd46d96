//! The run ledger: `.harness/ledger.db`, one SQLite file recording runs, gate decisions and deploys.
//!
//! Several harness processes may share it (two `harness test` at once, an import while a gate
//! runs), so it runs in WAL mode with a busy timeout, and every write takes the write lock up
//! front (`BEGIN IMMEDIATE`) instead of upgrading a read lock, which could fail with SQLITE_BUSY
//! regardless of the timeout. A damaged file is reported and left alone: it is the only copy of
//! that history, so harness never recreates it.
mod details;
mod record;
mod remote;
pub mod signing;
pub mod unrecorded;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::{Exit, Failure};
use crate::model::timestamp::Timestamp;
pub use details::{MAX_ROUTES_PER_RUN, RouteRow, RunDetails, TestRow, TestStatus};
pub use record::{EnvDigest, Origin, Outcome, RunRecord, SCHEMA, Selection, StoredRun};
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
    /// What went wrong, in words: SQLite's own messages (and the SQL behind them) mean nothing
    /// to someone importing a record or asking the gate.
    #[error("the run ledger {} cannot be used: {what}", path.display())]
    Sqlite {
        path: PathBuf,
        what: String,
        hint: &'static str,
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
    #[error("{} is not a record harness kept for the ledger: {why}", path.display())]
    Unrecorded { path: PathBuf, why: String },
    #[error("the run ledger {} holds no run {id}", path.display())]
    NoSuchRun { path: PathBuf, id: i64 },
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
            LedgerError::Sqlite { hint, .. } => (*hint).into(),
            LedgerError::Io { .. } => {
                "check that .harness/ is writable and the disk is not full".into()
            }
            LedgerError::NoSuchRun { .. } => {
                "`harness runs` lists the recorded runs and their ids".into()
            }
            LedgerError::Unrecorded { path, .. } => format!(
                "harness wrote it when a deploy or rollback could not be recorded; move it out of \
                 {} (keep it: it says what production runs)",
                path.parent().unwrap_or(path).display()
            ),
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
    // A run may carry several signatures (a record imported unsigned, then signed by CI, then
    // by a second key); they move out of `runs`, which kept one. `verified` was import-time
    // trust, which the gate never relied on: it checks the signatures again at every decision.
    r#"
CREATE TABLE run_signatures (
    run_id             INTEGER NOT NULL REFERENCES runs (id),
    signer_key         TEXT NOT NULL,
    signature          TEXT NOT NULL,
    added_at_ms        INTEGER NOT NULL,
    UNIQUE (run_id, signer_key, signature)
);
INSERT INTO run_signatures (run_id, signer_key, signature, added_at_ms)
    SELECT id, signer_key, signature, recorded_at_ms FROM runs
    WHERE signer_key IS NOT NULL AND signature IS NOT NULL;
ALTER TABLE runs DROP COLUMN signer_key;
ALTER TABLE runs DROP COLUMN signature;
ALTER TABLE runs DROP COLUMN verified;
"#,
    // Every package harness builds, by the sha256 of its bytes: the gate lets only these ship,
    // and binds them to the tree they were built from.
    r#"
CREATE TABLE builds (
    id                 INTEGER PRIMARY KEY,
    sha256             TEXT NOT NULL UNIQUE,
    target             TEXT NOT NULL,
    build_id           TEXT NOT NULL,
    code_fingerprint   TEXT NOT NULL,
    schema_fingerprint TEXT,
    git_commit         TEXT,
    dirty              INTEGER,               -- NULL: unknown
    recorded_at_ms     INTEGER NOT NULL
);
ALTER TABLE runs ADD COLUMN fingerprint_scheme INTEGER;
"#,
    // A run's details for its history (`ledger::details`): each test's result and duration, and
    // the proxy log's routes. Not part of the signed record; imported runs have none.
    r#"
CREATE TABLE run_tests (
    run_id             INTEGER NOT NULL REFERENCES runs (id),
    test               TEXT NOT NULL,         -- junit classname::name
    status             TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'error', 'skipped')),
    duration_ms        INTEGER NOT NULL,
    PRIMARY KEY (run_id, test)
) WITHOUT ROWID;
CREATE TABLE run_routes (
    run_id             INTEGER NOT NULL REFERENCES runs (id),
    method             TEXT NOT NULL,
    path               TEXT NOT NULL,         -- query dropped, as run::proxylog groups it
    count              INTEGER NOT NULL,
    median_ms          REAL NOT NULL,
    p95_ms             REAL NOT NULL,
    max_ms             REAL NOT NULL,
    PRIMARY KEY (run_id, method, path)
) WITHOUT ROWID;
"#,
];

const RUN_COLUMNS: &str = "id, uid, started_at_ms, finished_at_ms, git_commit, dirty, target, \
    package_sha256, code_fingerprint, schema_fingerprint, input_fingerprint, selection, passed, \
    failed, skipped, errors, outcome, image_ids, browser_version, report_path, origin, \
    record_schema, pytest_args, test_env, fingerprint_scheme";

/// An open ledger. Cheap to open; one per command.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

/// What `import_run` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    New(i64),
    /// The same record (by uid and content) is already here, with this signature if it has
    /// one; nothing changed.
    AlreadyPresent(i64),
    /// The same record is here; this copy's signature was added to it.
    SignatureAdded(i64),
    /// An unsigned import of this run was here with other content; this signed copy replaced
    /// it (an unsigned copy vouches for nothing, the signature does).
    Upgraded(i64),
}

/// Why `import_run` stored nothing: the ledger holds this run with other content that it
/// cannot set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConflict {
    pub id: i64,
    /// What the stored copy is: `recorded here`, `imported, signed by …`, …
    pub stored: String,
    /// The fields whose values differ.
    pub fields: Vec<String>,
}

/// A package harness built: what the gate binds a deploy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    pub sha256: String,
    pub target: String,
    pub build_id: String,
    pub code_fingerprint: String,
    pub schema_fingerprint: Option<String>,
    pub git_commit: Option<String>,
    pub dirty: Option<bool>,
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
    pub decision: crate::model::gate::GateDecision,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
                what: format!("it cannot be switched to write-ahead logging (journal mode {mode})"),
                hint: "keep .harness/ on a local file system; network file systems cannot hold the ledger",
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
        self.write(|tx| insert_run(tx, run, Origin::Local))
    }

    /// Stores an imported record and its signature, which the caller has verified against it.
    /// The outcome depends only on what arrives, never on the order: the same record merges
    /// (signatures accumulate), a signed copy replaces an unsigned import with other content,
    /// and any other difference is a conflict that stores nothing.
    pub fn import_run(
        &mut self,
        run: &RunRecord,
        signature: Option<&Signature>,
    ) -> Result<Result<Imported, ImportConflict>, LedgerError> {
        let path = self.path.clone();
        self.write(|tx| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE uid = ?1");
            let existing = tx.query_row(&sql, [&run.uid], read_run).optional()?;
            let Some(existing) = existing else {
                let id = insert_run(tx, run, Origin::Imported)?;
                if let Some(sig) = signature {
                    add_signature(tx, id, sig)?;
                }
                return Ok(Ok(Imported::New(id)));
            };
            let mut stored = match existing {
                Ok(s) => s,
                // A row harness cannot read stays as it is; report it as the conflict it is.
                Err(detail) => {
                    return Ok(Err(ImportConflict {
                        id: -1,
                        stored: format!("an unreadable row ({detail}) in {}", path.display()),
                        fields: Vec::new(),
                    }));
                }
            };
            stored.signatures = signatures_of(tx, stored.id)?;
            let id = stored.id;
            if same_record(&stored.record, run) {
                let Some(sig) = signature else {
                    return Ok(Ok(Imported::AlreadyPresent(id)));
                };
                if stored.signatures.contains(sig) {
                    return Ok(Ok(Imported::AlreadyPresent(id)));
                }
                add_signature(tx, id, sig)?;
                return Ok(Ok(Imported::SignatureAdded(id)));
            }
            match signature {
                Some(sig) if stored.origin == Origin::Imported && stored.signatures.is_empty() => {
                    // The row keeps its id: gate decisions that named it stay valid.
                    update_run(tx, id, run)?;
                    add_signature(tx, id, sig)?;
                    Ok(Ok(Imported::Upgraded(id)))
                }
                _ => Ok(Err(ImportConflict {
                    id,
                    stored: stored.describe(),
                    fields: differing_fields(&stored.record, run),
                })),
            }
        })
    }

    /// Records a package this harness built. The same bytes built again keep their first row.
    pub fn record_build(&mut self, b: &BuildRecord) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO builds (sha256, target, build_id, code_fingerprint, \
                 schema_fingerprint, git_commit, dirty, recorded_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    b.sha256,
                    b.target,
                    b.build_id,
                    b.code_fingerprint,
                    b.schema_fingerprint,
                    b.git_commit,
                    b.dirty,
                    Timestamp::now().unix_ms()
                ],
            )?;
            Ok(())
        })
    }

    /// The recorded build of the package with these bytes, if harness built it here.
    pub fn build_of(&self, sha256: &str) -> Result<Option<BuildRecord>, LedgerError> {
        self.conn
            .query_row(
                "SELECT sha256, target, build_id, code_fingerprint, schema_fingerprint, \
                 git_commit, dirty FROM builds WHERE sha256 = ?1",
                [sha256],
                |r| {
                    Ok(BuildRecord {
                        sha256: r.get(0)?,
                        target: r.get(1)?,
                        build_id: r.get(2)?,
                        code_fingerprint: r.get(3)?,
                        schema_fingerprint: r.get(4)?,
                        git_commit: r.get(5)?,
                        dirty: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<StoredRun>, LedgerError> {
        self.query_runs(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"), [])
    }

    /// The newest `n` runs, oldest first.
    pub fn newest_runs(&self, n: usize) -> Result<Vec<StoredRun>, LedgerError> {
        let sql = format!(
            "SELECT * FROM (SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1) ORDER BY id"
        );
        self.query_runs(&sql, [n as i64])
    }

    /// How many runs the ledger holds.
    pub fn run_count(&self) -> Result<usize, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .map_err(|e| self.err(e))
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
        let mut runs: Vec<StoredRun> = rows
            .into_iter()
            .map(|r| r.map_err(|e| self.bad_row(e)))
            .collect::<Result<_, _>>()?;
        self.attach_signatures(&mut runs)?;
        Ok(runs)
    }

    /// Fills in the runs' signatures with one query over the signature table, which holds few
    /// rows next to the runs (only imported, signed records).
    fn attach_signatures(&self, runs: &mut [StoredRun]) -> Result<(), LedgerError> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, signer_key, signature FROM run_signatures ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let index: std::collections::HashMap<i64, usize> =
            runs.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        for (id, key, value) in rows {
            if let Some(&i) = index.get(&id) {
                let sig = Signature::from_stored(&key, &value)
                    .map_err(|e| self.bad_row(format!("run {id}: {e}")))?;
                runs[i].signatures.push(sig);
            }
        }
        Ok(())
    }

    /// The runs that decide the gate for a package (see `gate::GateFacts::runs`): every green
    /// run with these fingerprints, the latest green run and the latest run, plus the census.
    /// With an index on the fingerprint this stays fast however long the history grows.
    pub fn gate_runs(
        &self,
        code: &str,
        schema: Option<&str>,
    ) -> Result<(Vec<StoredRun>, crate::model::gate::Census), LedgerError> {
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
            crate::model::gate::Census {
                runs: total as usize,
                green: green as usize,
            },
        ))
    }

    pub fn run(&self, id: i64) -> Result<Option<StoredRun>, LedgerError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let mut runs = self.query_runs(&sql, [id])?;
        Ok(runs.pop())
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
    let (what, hint) = describe_sqlite(&e);
    LedgerError::Sqlite {
        path: path.to_path_buf(),
        what,
        hint,
    }
}

/// An error of the database library as a person can act on it.
fn describe_sqlite(e: &rusqlite::Error) -> (String, &'static str) {
    const DISK: &str = "check that .harness/ is writable and the disk is not full";
    let rusqlite::Error::SqliteFailure(f, _) = e else {
        return (
            "harness used it in a way it does not allow (a harness bug; nothing was changed)"
                .into(),
            "run the command again; if it fails the same way, report it with this message",
        );
    };
    match f.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
            "another harness process kept it locked for longer than 15 s".into(),
            "wait for the other harness command (a test run, an import) to finish, then run this again",
        ),
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied => (
            "it is not writable".into(),
            "give your user write access to .harness/ and .harness/ledger.db*",
        ),
        ErrorCode::DiskFull => ("the disk is full".into(), DISK),
        ErrorCode::CannotOpen => ("it cannot be opened".into(), DISK),
        ErrorCode::SystemIoFailure => ("reading or writing it failed".into(), DISK),
        ErrorCode::ConstraintViolation => (
            "a write would have broken the ledger's own consistency rules (a harness bug; \
             nothing was changed)"
                .into(),
            "run the command again; if it fails the same way, report it with this message",
        ),
        _ => (
            format!("the database failed (code {})", f.extended_code),
            "run the command again; if it fails the same way, report it with this message",
        ),
    }
}

fn insert_run(
    tx: &rusqlite::Transaction<'_>,
    run: &RunRecord,
    origin: Origin,
) -> rusqlite::Result<i64> {
    tx.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLUMNS}, recorded_at_ms) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, \
             ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, \
             ?24, ?25)"
        ),
        rusqlite::params_from_iter(run_values(run, origin)),
    )?;
    Ok(tx.last_insert_rowid())
}

/// Puts another copy's content into run `id`, keeping the id (and so the gate decisions and
/// deploys that name it).
fn update_run(tx: &rusqlite::Transaction<'_>, id: i64, run: &RunRecord) -> rusqlite::Result<()> {
    let columns: Vec<&str> = RUN_COLUMNS.split(',').map(str::trim).skip(1).collect();
    let sets: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut values = run_values(run, Origin::Imported);
    values.pop(); // recorded_at_ms stays: when the run first arrived.
    values.push(rusqlite::types::Value::Integer(id));
    tx.execute(
        &format!(
            "UPDATE runs SET {} WHERE id = ?{}",
            sets.join(", "),
            columns.len() + 1
        ),
        rusqlite::params_from_iter(values),
    )?;
    Ok(())
}

/// The values of RUN_COLUMNS after `id`, then `recorded_at_ms`.
fn run_values(run: &RunRecord, origin: Origin) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let text = |s: &str| Value::Text(s.to_string());
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, text);
    vec![
        text(&run.uid),
        Value::Integer(run.started_at.unix_ms()),
        Value::Integer(run.finished_at.unix_ms()),
        opt(&run.git_commit),
        run.dirty.map_or(Value::Null, |d| Value::Integer(d as i64)),
        text(&run.target),
        text(&run.package_sha256),
        text(&run.code_fingerprint),
        opt(&run.schema_fingerprint),
        text(&run.input_fingerprint),
        Value::Text(serde_json::to_string(&run.selection).expect("selection serialises")),
        Value::Integer(run.passed.into()),
        Value::Integer(run.failed.into()),
        Value::Integer(run.skipped.into()),
        Value::Integer(run.errors.into()),
        text(run.outcome.as_str()),
        Value::Text(serde_json::to_string(&run.image_ids).expect("image ids serialise")),
        opt(&run.browser_version),
        opt(&run.report_path),
        text(origin.as_str()),
        Value::Integer(run.schema.into()),
        if run.pytest_args.is_empty() {
            Value::Null
        } else {
            Value::Text(serde_json::to_string(&run.pytest_args).expect("arguments serialise"))
        },
        run.test_env.as_ref().map_or(Value::Null, |e| {
            Value::Text(serde_json::to_string(e).expect("an env digest serialises"))
        }),
        run.fingerprint_scheme
            .map_or(Value::Null, |s| Value::Integer(s.into())),
        Value::Integer(Timestamp::now().unix_ms()),
    ]
}

fn add_signature(tx: &rusqlite::Transaction<'_>, id: i64, sig: &Signature) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO run_signatures (run_id, signer_key, signature, added_at_ms) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            id,
            sig.public_key.to_string(),
            sig.base64(),
            Timestamp::now().unix_ms()
        ],
    )?;
    Ok(())
}

fn signatures_of(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<Vec<Signature>> {
    let mut stmt = tx.prepare(
        "SELECT signer_key, signature FROM run_signatures WHERE run_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // A stored signature that no longer parses cannot vouch for anything; leave it out.
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| Signature::from_stored(&k, &v).ok())
        .collect())
}

/// Two copies of one run are the same record when the bytes a signature covers are equal.
fn same_record(a: &RunRecord, b: &RunRecord) -> bool {
    a.schema == b.schema && a.canonical_bytes() == b.canonical_bytes()
}

/// The top-level fields whose values differ between two copies of a record.
fn differing_fields(a: &RunRecord, b: &RunRecord) -> Vec<String> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(a).expect("a record serialises"),
        serde_json::to_value(b).expect("a record serialises"),
    ) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Reads one row; the inner `Err` is a row SQLite can read but harness cannot make sense of.
fn read_run(r: &Row<'_>) -> rusqlite::Result<Result<StoredRun, String>> {
    let id: i64 = r.get(0)?;
    let selection: String = r.get(11)?;
    let outcome: String = r.get(16)?;
    let image_ids: String = r.get(17)?;
    let origin: String = r.get(20)?;
    let schema: u8 = r.get(21)?;
    let pytest_args: Option<String> = r.get(22)?;
    let test_env: Option<String> = r.get(23)?;
    let fingerprint_scheme: Option<u8> = r.get(24)?;
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
    let origin = match origin.as_str() {
        "local" => Origin::Local,
        "imported" => Origin::Imported,
        other => return Ok(Err(format!("run {id}: origin `{other}`"))),
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
        fingerprint_scheme,
        schema,
    };
    Ok(Ok(StoredRun {
        id,
        record,
        origin,
        signatures: Vec::new(),
    }))
}

#[cfg(test)]
pub(crate) mod tests;
