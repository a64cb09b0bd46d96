//! Remote steps as data: each says what it means and the exact shell it runs (Kamal's idea).
//! Commands are planned as `RemoteStep`s (pure, unit-tested by their text, printed by
//! `--dry-run`); [`execute`] runs them in order over one SSH connection, with a timing event per
//! step, and stops at the first failure naming the step.
use std::path::PathBuf;

use super::ssh::{Ssh, SshError};
use crate::events::{Phase, Reporter};

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this script with `sh` on the server.
    Run(String),
    /// Run this script with the local file on its stdin.
    Upload { local: PathBuf, script: String },
    /// Run this script and keep its stdout in the local file.
    Download { script: String, local: PathBuf },
    /// A check done here, between remote steps.
    Check(Check),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Production's schema fingerprint (from the fetched snapshot) against the package's.
    Schema,
    /// After migrate_command: the staged database's fingerprint must now be the package's.
    MigratedSchema,
    /// Health 2xx and the new build id, after Passenger's throttle.
    Verify,
    /// The same for the previous build after a rollback.
    VerifyRollback,
}

/// Every remote step, by what it does. Control flow asks for a step by this id (where to resume,
/// which failure means a held lock); `as_str` is the name plans print and events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    /// Not run on the server: the package started in the app image before anything moves.
    BootCheck,
    Audit,
    Backup,
    CheckBackup,
    Checksum,
    Database,
    Extract,
    FetchBackup,
    FetchDb,
    FetchMigrated,
    Lock,
    Migrate,
    MigratedSchema,
    Pause,
    Prune,
    PruneBackups,
    Recover,
    RestoreDb,
    RestorePoint,
    Resume,
    Revert,
    Rollback,
    Schema,
    SecretKey,
    Swap,
    UndoDatabase,
    Unlock,
    Upload,
    Verify,
    VerifyRevert,
    VerifyRollback,
}

impl StepId {
    pub const fn as_str(self) -> &'static str {
        match self {
            StepId::BootCheck => "boot-check",
            StepId::Audit => "audit",
            StepId::Backup => "backup",
            StepId::CheckBackup => "check-backup",
            StepId::Checksum => "checksum",
            StepId::Database => "database",
            StepId::Extract => "extract",
            StepId::FetchBackup => "fetch-backup",
            StepId::FetchDb => "fetch-db",
            StepId::FetchMigrated => "fetch-migrated",
            StepId::Lock => "lock",
            StepId::Migrate => "migrate",
            StepId::MigratedSchema => "migrated-schema",
            StepId::Pause => "pause",
            StepId::Prune => "prune",
            StepId::PruneBackups => "prune-backups",
            StepId::Recover => "recover",
            StepId::RestoreDb => "restore-db",
            StepId::RestorePoint => "restore-point",
            StepId::Resume => "resume",
            StepId::Revert => "revert",
            StepId::Rollback => "rollback",
            StepId::Schema => "schema",
            StepId::SecretKey => "secret-key",
            StepId::Swap => "swap",
            StepId::UndoDatabase => "undo-database",
            StepId::Unlock => "unlock",
            StepId::Upload => "upload",
            StepId::Verify => "verify",
            StepId::VerifyRevert => "verify-revert",
            StepId::VerifyRollback => "verify-rollback",
        }
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so a plan's `{:<14}` column still lines up.
        f.pad(self.as_str())
    }
}

impl serde::Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `{ "id", "what", "command" }`: a step as `--json` receipts show it.
impl serde::Serialize for RemoteStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("RemoteStep", 3)?;
        m.serialize_field("id", &self.id)?;
        m.serialize_field("what", &self.what)?;
        m.serialize_field("command", &self.command())?;
        m.end()
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStep {
    pub id: StepId,
    /// What the step means, for people.
    pub what: String,
    pub action: Action,
}

impl RemoteStep {
    pub fn run(id: StepId, what: impl Into<String>, script: String) -> Self {
        RemoteStep {
            id,
            what: what.into(),
            action: Action::Run(script),
        }
    }

    /// The command as `--dry-run` prints it (and `--json` gives it).
    pub fn command(&self) -> String {
        match &self.action {
            Action::Run(s) => s.clone(),
            Action::Upload { local, script } => format!("{script} < {}", local.display()),
            Action::Download { script, local } => format!("{script} > {}", local.display()),
            Action::Check(c) => format!("(local check: {c:?})"),
        }
    }
}

/// Why a step failed.
#[derive(Debug)]
pub enum StepError {
    Ssh(SshError),
    Check(crate::error::Failure),
    /// Ctrl-C or SIGTERM arrived; the step did not start.
    Interrupted,
}

/// Runs `script` into `<local>.part`, renamed to `local` only when it succeeded: a file under
/// its final name is always whole (an interrupted or failed copy of a backup must never look
/// like one).
fn download(ssh: &Ssh, script: &str, local: &std::path::Path) -> Result<String, StepError> {
    let mut part = local.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = ssh.run_to_file(script, &part).map_err(StepError::Ssh);
    match result {
        Ok(_) => std::fs::rename(&part, local)
            .map(|_| String::new())
            .map_err(|e| {
                StepError::Check(crate::error::Failure::new(
                    crate::error::Exit::Environment,
                    format!(
                        "cannot rename {} to {}: {e}",
                        part.display(),
                        local.display()
                    ),
                ))
            }),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// Runs `steps` in order with per-step timing events; stops at the first failure and says which
/// step it was. With `interrupted` returning true, the next step is not started.
pub fn execute(
    steps: &[RemoteStep],
    ssh: &Ssh,
    reporter: &dyn Reporter,
    check: &mut dyn FnMut(Check) -> Result<String, crate::error::Failure>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), (StepId, StepError)> {
    for step in steps {
        if interrupted() {
            return Err((step.id, StepError::Interrupted));
        }
        let phase = Phase::start(reporter, step.id.as_str());
        let result = match &step.action {
            Action::Run(script) => ssh
                .run(script)
                .map(|_| String::new())
                .map_err(StepError::Ssh),
            Action::Upload { local, script } => ssh
                .run_with_input(script, local)
                .map(|_| String::new())
                .map_err(StepError::Ssh),
            Action::Download { script, local } => download(ssh, script, local),
            Action::Check(c) => check(*c).map_err(StepError::Check),
        };
        match result {
            Ok(detail) => {
                phase.finish(if detail.is_empty() {
                    step.what.clone()
                } else {
                    detail
                });
            }
            Err(e) => return Err((step.id, e)),
        }
    }
    Ok(())
}
