//! What the ledger keeps about the server besides deploys: backups (with their sha256) and
//! rollbacks, and from both plus the deploys, what production should be running now.
use crate::model::target::Target;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError};
use crate::model::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// `harness backup`.
    Scheduled,
    /// Taken by a deploy before the swap.
    Deploy,
    /// Taken by `rollback --with-db` before the database is replaced.
    Rollback,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Scheduled => "scheduled",
            BackupKind::Deploy => "deploy",
            BackupKind::Rollback => "rollback",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => BackupKind::Scheduled,
            "deploy" => BackupKind::Deploy,
            "rollback" => BackupKind::Rollback,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupRecord {
    pub target: String,
    /// `<stamp>-<build id>`: the same on the server and locally.
    pub name: String,
    pub kind: BackupKind,
    pub taken_at: Timestamp,
    pub build_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub remote_path: String,
    pub local_path: String,
    pub pruned_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackOutcome {
    /// The kept release answers (health and build id).
    Done,
    /// It did not answer and the release that was live before was put back.
    Reverted,
    /// Stopped before any change.
    Failed,
    /// Stopped after the swap in a state that needs a look.
    Unknown,
}

impl RollbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOutcome::Done => "done",
            RollbackOutcome::Reverted => "reverted",
            RollbackOutcome::Failed => "failed",
            RollbackOutcome::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "done" => RollbackOutcome::Done,
            "reverted" => RollbackOutcome::Reverted,
            "failed" => RollbackOutcome::Failed,
            "unknown" => RollbackOutcome::Unknown,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub target: String,
    /// The kept release put back, by its name under releases/.
    pub release: String,
    pub from_build: Option<String>,
    pub to_build: Option<String>,
    pub package_sha256: Option<String>,
    pub with_db: bool,
    pub db_backup: Option<String>,
    pub outcome: RollbackOutcome,
    pub detail: String,
}

/// What production should run, by the ledger: the newest successful deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRecord {
    /// `deploy` or `rollback`.
    pub via: &'static str,
    /// Its id in the deploys or rollbacks table.
    pub id: i64,
    pub at: Timestamp,
    pub build_id: Option<String>,
    /// The package that holds that build, when known (a rollback to a release harness did not
    /// deploy has none).
    pub package_sha256: Option<String>,
}

const BACKUP_COLUMNS: &str = "target, name, kind, taken_at_ms, build_id, sha256, size, \
    remote_path, local_path, pruned_at_ms";

fn read_backup(r: &Row<'_>) -> rusqlite::Result<BackupRecord> {
    let kind: String = r.get(2)?;
    Ok(BackupRecord {
        target: r.get(0)?,
        name: r.get(1)?,
        kind: BackupKind::parse(&kind).unwrap_or(BackupKind::Scheduled),
        taken_at: Timestamp::from_unix_ms(r.get(3)?),
        build_id: r.get(4)?,
        sha256: r.get(5)?,
        size: r.get::<_, i64>(6)?.max(0) as u64,
        remote_path: r.get(7)?,
        local_path: r.get(8)?,
        pruned_at: r.get::<_, Option<i64>>(9)?.map(Timestamp::from_unix_ms),
    })
}

impl Ledger {
    /// Records a backup; a second record with the same target and name replaces the first (the
    /// file on the server was overwritten).
    pub fn record_backup(&mut self, b: &BackupRecord) -> Result<i64, LedgerError> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO backups ({BACKUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (target, name) DO UPDATE SET kind = excluded.kind, \
                     taken_at_ms = excluded.taken_at_ms, build_id = excluded.build_id, \
                     sha256 = excluded.sha256, size = excluded.size, remote_path = excluded.remote_path, \
                     local_path = excluded.local_path, pruned_at_ms = excluded.pruned_at_ms"
                ),
                params![
                    b.target,
                    b.name,
                    b.kind.as_str(),
                    b.taken_at.unix_ms(),
                    b.build_id,
                    b.sha256,
                    b.size as i64,
                    b.remote_path,
                    b.local_path,
                    b.pruned_at.map(Timestamp::unix_ms),
                ],
            )?;
            tx.query_row(
                "SELECT id FROM backups WHERE target = ?1 AND name = ?2",
                params![b.target, b.name],
                |r| r.get(0),
            )
        })
    }

    /// The backups recorded for `target`, oldest first (pruned ones included).
    pub fn backups(&self, target: Target) -> Result<Vec<BackupRecord>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE target = ?1 ORDER BY taken_at_ms, id"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map([target.as_str()], read_backup)
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    pub fn backup(&self, target: Target, name: &str) -> Result<Option<BackupRecord>, LedgerError> {
        self.conn
            .query_row(
                &format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE target = ?1 AND name = ?2"),
                params![target.as_str(), name],
                read_backup,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Notes that retention deleted these backups; returns how many records it touched.
    pub fn mark_backups_pruned(
        &mut self,
        target: Target,
        names: &[String],
        at: Timestamp,
    ) -> Result<usize, LedgerError> {
        self.write(|tx| {
            let mut n = 0;
            for name in names {
                n += tx.execute(
                    "UPDATE backups SET pruned_at_ms = ?3 WHERE target = ?1 AND name = ?2 \
                     AND pruned_at_ms IS NULL",
                    params![target.as_str(), name, at.unix_ms()],
                )?;
            }
            Ok(n)
        })
    }

    pub fn record_rollback(&mut self, r: &RollbackRecord) -> Result<i64, LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO rollbacks (started_at_ms, finished_at_ms, target, release, from_build, \
                 to_build, package_sha256, with_db, db_backup, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    r.started_at.unix_ms(),
                    r.finished_at.unix_ms(),
                    r.target,
                    r.release,
                    r.from_build,
                    r.to_build,
                    r.package_sha256,
                    r.with_db,
                    r.db_backup,
                    r.outcome.as_str(),
                    r.detail,
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Recorded rollbacks, oldest first.
    pub fn rollbacks(&self) -> Result<Vec<(i64, RollbackRecord)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at_ms, finished_at_ms, target, release, from_build, to_build, \
                 package_sha256, with_db, db_backup, outcome, detail FROM rollbacks ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            let outcome: String = r.get(10)?;
            Ok((
                r.get(0)?,
                RollbackRecord {
                    started_at: Timestamp::from_unix_ms(r.get(1)?),
                    finished_at: Timestamp::from_unix_ms(r.get(2)?),
                    target: r.get(3)?,
                    release: r.get(4)?,
                    from_build: r.get(5)?,
                    to_build: r.get(6)?,
                    package_sha256: r.get(7)?,
                    with_db: r.get(8)?,
                    db_backup: r.get(9)?,
                    outcome: RollbackOutcome::parse(&outcome).unwrap_or(RollbackOutcome::Unknown),
                    detail: r.get(11)?,
                },
            ))
        })
        .map_err(|e| self.err(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.err(e))
    }

    /// The newest successful deploy or rollback to `target`: what production should run.
    pub fn live(&self, target: Target) -> Result<Option<LiveRecord>, LedgerError> {
        self.conn
            .query_row(
                "SELECT via, id, at, build, package FROM ( \
                   SELECT 'deploy' AS via, id, finished_at_ms AS at, release_id AS build, \
                          package_sha256 AS package FROM deploys \
                   WHERE target = ?1 AND outcome = 'deployed' \
                   UNION ALL \
                   SELECT 'rollback', id, finished_at_ms, to_build, package_sha256 FROM rollbacks \
                   WHERE target = ?1 AND outcome = 'done') \
                 ORDER BY at DESC, via = 'rollback' DESC, id DESC LIMIT 1",
                [target.as_str()],
                |r| {
                    let via: String = r.get(0)?;
                    Ok(LiveRecord {
                        via: if via == "rollback" {
                            "rollback"
                        } else {
                            "deploy"
                        },
                        id: r.get(1)?,
                        at: Timestamp::from_unix_ms(r.get(2)?),
                        build_id: r.get(3)?,
                        package_sha256: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The package of the newest successful deploy of `build_id` to `target`.
    pub fn package_of_build(
        &self,
        target: Target,
        build_id: &str,
    ) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT package_sha256 FROM deploys WHERE target = ?1 AND release_id = ?2 \
                 AND outcome = 'deployed' ORDER BY id DESC LIMIT 1",
                params![target.as_str(), build_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The packages (sha256) of the newest `n` distinct successful deploys to `target`, newest
    /// first: what `.harness/deployed/` keeps.
    pub fn recent_packages(&self, target: Target, n: usize) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT package_sha256 FROM deploys WHERE target = ?1 AND outcome = 'deployed' \
                 GROUP BY package_sha256 ORDER BY max(id) DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![target.as_str(), n as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}

/// One restore drill (`backup --verify`): a backup restored into a local stack, its database
/// checked, the smoke selection run against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillRecord {
    pub target: String,
    pub backup_name: String,
    pub backup_sha256: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: super::Outcome,
    pub integrity: String,
    pub passed: u32,
    pub failed: u32,
    pub report_path: Option<String>,
}

impl Ledger {
    pub fn record_drill(&mut self, d: &DrillRecord) -> Result<i64, LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO backup_drills (target, backup_name, backup_sha256, started_at_ms, \
                 finished_at_ms, outcome, integrity, passed, failed, report_path) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    d.target,
                    d.backup_name,
                    d.backup_sha256,
                    d.started_at.unix_ms(),
                    d.finished_at.unix_ms(),
                    d.outcome.as_str(),
                    d.integrity,
                    d.passed,
                    d.failed,
                    d.report_path,
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The drills of `target`'s backups, oldest first.
    pub fn drills(&self, target: Target) -> Result<Vec<DrillRecord>, LedgerError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT target, backup_name, backup_sha256, started_at_ms, finished_at_ms, outcome, \
                 integrity, passed, failed, report_path FROM backup_drills WHERE target = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![target.as_str()], |r| {
            let outcome: String = r.get(5)?;
            Ok(DrillRecord {
                target: r.get(0)?,
                backup_name: r.get(1)?,
                backup_sha256: r.get(2)?,
                started_at: Timestamp::from_unix_ms(r.get(3)?),
                finished_at: Timestamp::from_unix_ms(r.get(4)?),
                outcome: super::Outcome::parse(&outcome).unwrap_or(super::Outcome::Infra),
                integrity: r.get(6)?,
                passed: r.get(7)?,
                failed: r.get(8)?,
                report_path: r.get(9)?,
            })
        });
        rows.map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}
