//! The deploy and the rollback as data: each remote step says what it means and the exact shell it
//! runs, built from `remote`'s per-concern builders. `plan` is pure (unit-tested by its commands,
//! printed by `--dry-run`); `remote::step::execute` does the I/O.
use std::path::PathBuf;

use super::shared::{self, Db, DbChange, DbState};
use crate::remote::audit::audit;
use crate::remote::backup::{Backup, backup_steps, prune_backups, sha256_check};
use crate::remote::layout::Layout;
use crate::remote::lock::{lock, token_of, unlock};
use crate::remote::release::{prune_releases, swap_back, swap_in_staging, swap_kept};
use crate::remote::sqlite::journals;
use crate::remote::ssh::quote;
use crate::remote::step::{Action, Check, RemoteStep, StepId};

/// Everything the plan depends on; gathered by `deploy` before anything changes.
#[derive(Debug, Clone)]
pub struct Facts {
    pub layout: Layout,
    pub build_id: String,
    pub zip: PathBuf,
    pub zip_sha256: String,
    /// The database file relative to the package root, when the package has one.
    pub db: Option<String>,
    /// Whether `remote_dir` exists (false on the first deploy).
    pub live_exists: bool,
    /// Where production's database is (see `shared`); `Absent` when production has none.
    pub db_state: DbState,
    /// Production's schema differs from the package's (the preflight's check; the same check
    /// under the lock refuses when it no longer agrees).
    pub schema_differs: bool,
    /// A write pause left on by a deploy that did not finish: ended after the lock.
    pub paused: bool,
    /// How the switch is verified (`[stack] version`).
    pub version: crate::config::VersionProbe,
    /// What the current release is called under releases/ once it is swapped out.
    pub previous_release: String,
    /// What the new release is called under releases/ if it has to be swapped out again.
    pub failed_release: String,
    pub backup_name: String,
    /// Where the backup goes locally.
    pub local_backup: PathBuf,
    /// Where the database snapshot for the schema check goes locally.
    pub local_db_snapshot: PathBuf,
    /// Releases to delete once this deploy is verified (`Preflight::releases_to_prune`).
    pub prune_releases: Vec<String>,
    /// Backups that retention deletes once the deploy is verified (`retention::plan_names`).
    pub prune_backups: Vec<String>,
    pub fresh_db: bool,
    pub preserve_secret_key: bool,
    pub break_lock: bool,
    pub migrate_command: Option<String>,
    /// `key=value` lines for the lock's details file.
    pub lock_details: Vec<(String, String)>,
    pub audit_line: String,
}

/// The remote steps of a deploy, up to and including verification.
pub fn plan(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let staging = quote(&l.staging());
    let upload = quote(&format!("{}/{}.zip", l.uploads(), f.zip_sha256));
    let mut steps = Vec::new();

    steps.push(lock(l, &f.lock_details, f.break_lock));
    if let (true, Some(rel)) = (f.paused, &f.db) {
        steps.push(shared::recover(Db { layout: l, rel }));
    }

    if f.live_exists {
        let name = &f.backup_name;
        let backup = Backup {
            name: name.clone(),
            db: f.db.clone().filter(|_| f.db_state.exists()),
            local: f.local_backup.clone(),
            keep_db_snapshot: true,
        };
        steps.extend(backup_steps(l, &backup));
        if let (Some(_), true) = (&f.db, f.db_state.exists()) {
            let snap = quote(&format!("{}/{name}.db", l.backups()));
            steps.push(RemoteStep {
                id: StepId::FetchDb,
                what: "fetch the database snapshot for the schema check".into(),
                action: Action::Download {
                    script: format!("cat {snap} && rm -f {snap}"),
                    local: f.local_db_snapshot.clone(),
                },
            });
            steps.push(RemoteStep {
                id: StepId::Schema,
                what: "compare production's schema fingerprint with the package's".into(),
                action: Action::Check(Check::Schema),
            });
        }
    }

    steps.push(RemoteStep {
        id: StepId::Upload,
        what: format!("upload {} ({})", f.zip.display(), f.zip_sha256),
        action: Action::Upload {
            local: f.zip.clone(),
            script: format!("mkdir -p {} && cat > {upload}", quote(&l.uploads())),
        },
    });
    steps.push(RemoteStep::run(
        StepId::Checksum,
        "verify the upload's sha256 on the server",
        format!(
            "cd {} && printf '%s  %s\\n' {} {} | sha256sum -c --quiet -",
            quote(&l.uploads()),
            f.zip_sha256,
            quote(&format!("{}.zip", f.zip_sha256))
        ),
    ));
    steps.push(RemoteStep::run(
        StepId::Extract,
        format!("extract to {}", l.staging()),
        format!(
            "rm -rf {staging} && mkdir {staging} && unzip -q {upload} -d {staging} && mkdir -p {staging}/tmp && rm -f {upload}"
        ),
    ));

    if let (Some(rel), Some(change)) = (&f.db, db_change(f)) {
        let db = Db { layout: l, rel };
        steps.extend(shared::prepare(
            db,
            &change,
            crate::model::release_name::stamp(&f.previous_release).unwrap_or(&f.previous_release),
            &migrated_snapshot(f),
        ));
    }

    steps.push(RemoteStep::run(
        StepId::Swap,
        format!(
            "swap in one script: {} -> releases/{}, staging -> {}, touch tmp/restart.txt",
            l.live, f.previous_release, l.live
        ),
        swap_in_staging(l, &f.previous_release, f.live_exists),
    ));
    steps.push(RemoteStep {
        id: StepId::Verify,
        what: format!(
            "{} after Passenger's restart",
            crate::probe::describe(&f.version, &f.build_id)
        ),
        action: Action::Check(Check::Verify),
    });
    steps
}

/// What this deploy does with the database, when the package has one.
pub fn db_change(f: &Facts) -> Option<DbChange> {
    f.db.as_ref()?;
    Some(match f.db_state {
        DbState::Absent => DbChange::Install,
        _ if f.fresh_db => DbChange::Fresh {
            preserve_secret_key: f.preserve_secret_key,
        },
        DbState::InRelease => DbChange::Move {
            migrate: f.migrate_command.clone().filter(|_| f.schema_differs),
        },
        DbState::Shared => match (&f.migrate_command, f.schema_differs) {
            (Some(command), true) => DbChange::Migrate {
                command: command.clone(),
            },
            _ => DbChange::Link,
        },
    })
}

/// Production's database copied consistently into `dir` (staging, or a kept release about to go
/// live). A kept release may still hold its old copy's -wal or -shm, which SQLite would replay
/// into the new copy; they go first.
pub fn keep_production_db(l: &Layout, db: &str, dir: &str) -> RemoteStep {
    let target = format!("{dir}/{db}");
    RemoteStep::run(
        StepId::Database,
        format!(
            "keep production's database: consistent copy of {}/{db} into {dir}",
            l.live
        ),
        format!(
            "rm -f {} && {}",
            journals(&target),
            crate::remote::sqlite::copy(&format!("{}/{db}", l.live), &target)
        ),
    )
}

/// What a rollback depends on; gathered by `rollback` before anything changes.
#[derive(Debug, Clone)]
pub struct RollbackFacts {
    pub layout: Layout,
    /// The kept release to put back: its name under releases/.
    pub release: String,
    /// The name the live release gets under releases/ (`<stamp>-<live build>`).
    pub outgoing: String,
    /// The database, relative to remote_dir (`[package.database] path`).
    pub db: Option<String>,
    /// Where production's database is (`Absent`: it has none): in the shared layout the kept
    /// release is linked to it, in a release it is copied into the kept one (without --with-db).
    pub db_state: DbState,
    /// A write pause left on by a deploy that did not finish: ended after the lock.
    pub paused: bool,
    /// How the switch is verified (`[stack] version`).
    pub version: crate::config::VersionProbe,
    /// `--with-db`: restore the database from this backup (by name, under backups/) after
    /// checking its sha256 when the ledger has it; and back up the live release first.
    pub restore: Option<Restore>,
    pub lock_details: Vec<(String, String)>,
    pub break_lock: bool,
}

#[derive(Debug, Clone)]
pub struct Restore {
    pub backup: String,
    pub sha256: Option<String>,
    /// The backup of the live release taken first.
    pub safety: Backup,
}

/// The remote steps of a rollback, up to and including verification. Without --with-db the
/// kept release gets production's database (the code goes back, the data stays); with it, the
/// kept release's database backup, after a backup of what is live now.
pub fn rollback_plan(f: &RollbackFacts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let dir = format!("{}/{}", l.releases(), f.release);
    let mut steps = vec![lock(l, &f.lock_details, f.break_lock)];
    if let (true, Some(rel)) = (f.paused, &f.db) {
        steps.push(shared::recover(Db { layout: l, rel }));
    }
    let shared_layout = f.db_state == DbState::Shared;
    if let (Some(r), Some(_)) = (&f.restore, &f.db) {
        steps.extend(backup_steps(l, &r.safety));
        if let Some(sha) = &r.sha256 {
            steps.push(sha256_check(
                StepId::CheckBackup,
                &l.backups(),
                &format!("{}.tar.gz", r.backup),
                sha,
            ));
        }
    }
    match (&f.restore, &f.db) {
        (Some(r), Some(rel)) if shared_layout => {
            // --with-db in the shared layout: the backup's database goes into production's
            // file (same inode, so every open connection sees it); the kept release links to it.
            let db = Db { layout: l, rel };
            let scratch = format!("{}.restoring", db.shared());
            steps.push(RemoteStep::run(
                StepId::RestoreDb,
                format!("the database of backup {} into {}", r.backup, db.shared()),
                format!(
                    "set -e\nrm -f -- {s}\ntar -xzOf {} {} > {s}\n{}\nrm -f -- {s}\n{}",
                    quote(&format!("{}/{}.tar.gz", l.backups(), r.backup)),
                    quote(rel),
                    crate::remote::sqlite::put(&scratch, &db.shared()),
                    shared::link(db, &dir),
                    s = quote(&scratch),
                ),
            ));
        }
        (None, Some(rel)) if shared_layout => steps.push(RemoteStep::run(
            StepId::Database,
            format!(
                "link releases/{} to production's database {} (nothing is copied)",
                f.release,
                l.shared_db(rel)
            ),
            shared::link(Db { layout: l, rel }, &dir),
        )),
        (Some(r), Some(db)) => {
            let target = format!("{dir}/{db}");
            steps.push(RemoteStep::run(
                StepId::RestoreDb,
                format!(
                    "the database of backup {} into releases/{}",
                    r.backup, f.release
                ),
                format!(
                    "rm -f {} {} && tar -xzf {} -C {} {}\n[ -f {} ]",
                    quote(&target),
                    journals(&target),
                    quote(&format!("{}/{}.tar.gz", l.backups(), r.backup)),
                    quote(&dir),
                    quote(db),
                    quote(&target)
                ),
            ));
        }
        (None, Some(db)) if f.db_state.exists() => steps.push(keep_production_db(l, db, &dir)),
        _ => {}
    }
    steps.push(RemoteStep::run(
        StepId::Swap,
        format!(
            "swap in one script: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
            l.live, f.outgoing, f.release, l.live
        ),
        swap_kept(l, &f.release, &f.outgoing),
    ));
    steps.push(RemoteStep {
        id: StepId::Verify,
        what: crate::probe::describe(&f.version, &format!("of release {}", f.release)),
        action: Action::Check(Check::Verify),
    });
    steps
}

/// When the rolled-back release does not answer: the release that was live goes back.
pub fn revert_rollback(f: &RollbackFacts) -> Vec<RemoteStep> {
    vec![
        RemoteStep::run(
            StepId::Revert,
            format!(
                "swap back: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
                f.layout.live, f.release, f.outgoing, f.layout.live
            ),
            swap_kept(&f.layout, &f.outgoing, &f.release),
        ),
        RemoteStep {
            id: StepId::VerifyRevert,
            what: "the build that was live answers health and version again".into(),
            action: Action::Check(Check::VerifyRollback),
        },
    ]
}

/// Where the migrated database is fetched to for its check.
pub fn migrated_snapshot(f: &Facts) -> PathBuf {
    f.local_db_snapshot.with_extension("migrated.db")
}

/// What runs after a successful verification.
pub fn finish(f: &Facts) -> Vec<RemoteStep> {
    let mut steps = vec![prune_releases(&f.layout, &f.prune_releases)];
    if let (Some(rel), Some(true)) = (&f.db, db_change(f).map(|c| c.pauses())) {
        steps.push(shared::resume(Db {
            layout: &f.layout,
            rel,
        }));
    }
    if !f.prune_backups.is_empty() {
        steps.push(prune_backups(&f.layout, &f.prune_backups));
    }
    steps.push(unlock(&f.layout, token_of(&f.lock_details)));
    steps.push(audit(&f.layout, &f.audit_line));
    steps
}

/// Swaps the previous release back in; only possible when there was one.
pub fn rollback(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    // A paused change goes back with the code: the database as the pause found it.
    let undo = match (&f.db, db_change(f)) {
        (Some(rel), Some(change)) => shared::undo(Db { layout: l, rel }, &change),
        _ => None,
    };
    let mut steps = vec![RemoteStep::run(
        StepId::Rollback,
        format!(
            "swap back: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
            l.live, f.failed_release, f.previous_release, l.live
        ),
        swap_back(l, &f.previous_release, &f.failed_release),
    )];
    steps.extend(undo);
    steps.push(RemoteStep {
        id: StepId::VerifyRollback,
        what: "the previous build answers health and version again".into(),
        action: Action::Check(Check::VerifyRollback),
    });
    steps
}

/// Run when a deploy fails or is interrupted before its swap, after its `pause` step began.
pub fn undo_before_swap(f: &Facts) -> Option<RemoteStep> {
    match (&f.db, db_change(f)) {
        (Some(rel), Some(change)) => shared::undo(
            Db {
                layout: &f.layout,
                rel,
            },
            &change,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
