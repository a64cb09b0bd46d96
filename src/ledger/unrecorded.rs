//! Deploys and rollbacks that changed production while the ledger could not take their record
//! (locked by another process past the busy timeout, a full disk, a read-only file). What
//! production runs must not be forgotten: `status`, `parity --remote`, rollback and the pruning of
//! `.harness/deployed/` all read it from the ledger. So the record waits as a file under
//! `.harness/unrecorded/` and the next open of the project's ledger adds it.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DeployRecord, Ledger, LedgerError, RollbackRecord};
use crate::error::Failure;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unrecorded {
    Deploy(DeployRecord),
    Rollback(RollbackRecord),
}

/// The folder the waiting records live in.
pub fn dir(project_root: &Path) -> PathBuf {
    project_root.join(".harness").join("unrecorded")
}

/// Keeps `record` as a file (0600, .harness is private) until [`replay`] adds it.
pub fn keep(project_root: &Path, record: &Unrecorded) -> Result<PathBuf, Failure> {
    let (kind, at) = match record {
        Unrecorded::Deploy(d) => ("deploy", d.finished_at),
        Unrecorded::Rollback(r) => ("rollback", r.finished_at),
    };
    let dir = dir(project_root);
    crate::fsutil::create_private_dir(&dir)?;
    let path = dir.join(format!(
        "{kind}-{}-{}.json",
        at.unix_ms(),
        std::process::id()
    ));
    let json = serde_json::to_vec_pretty(record).expect("records serialize");
    crate::fsutil::write_private(&path, &json)?;
    Ok(path)
}

/// Adds every waiting record to the ledger, oldest first, removing each file once its row is in.
/// Stops at the first one the ledger still refuses (it stays for the next time). A file that is
/// not a record is left alone and named in the error.
pub fn replay(project_root: &Path, ledger: &mut Ledger) -> Result<usize, LedgerError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir(project_root)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => return Ok(0),
    };
    // Names start with the kind and the millisecond stamp: sort by the stamp.
    files.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stamp: i64 = name
            .split('-')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MAX);
        (stamp, name)
    });
    let mut added = 0;
    for path in files {
        let record: Unrecorded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| LedgerError::Unrecorded {
                path: path.clone(),
                why: e,
            })?;
        match &record {
            Unrecorded::Deploy(d) => ledger.record_deploy(d)?,
            Unrecorded::Rollback(r) => ledger.record_rollback(r)?,
        };
        let _ = std::fs::remove_file(&path);
        added += 1;
    }
    Ok(added)
}
