//! `harness backup webhosting`, and the backup handling deploy and rollback share: names, the
//! checked local copy, the ledger record, retention on the server and here, and extraction.
//!
//! A backup is `<parent>/.<name>.harness/backups/<stamp>-<live build>.tar.gz` on the server and
//! `.harness/backups/webhosting-<stamp>-<live build>.tar.gz` here: the database as a consistent
//! copy at its path (`app.db`) plus the live tree without the live database file. Extracted
//! ([`extract`]), it looks like an extracted package: app files, build_info.json, the database.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::remote::{Preflight, Remote};
use super::retention;
use super::transaction::{self, unchanged_failure};
use super::{interrupt, io_failure};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::ledger::{BackupKind, BackupRecord, Ledger};
use crate::model::retention::RetentionPolicy;
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;
use crate::remote::layout::Layout;
use crate::remote::ssh::Ssh;
use crate::remote::step::StepId;

/// Where local copies go: `.harness/backups/`.
pub fn local_dir(root: &Path) -> PathBuf {
    root.join(".harness").join("backups")
}

/// The local copy of backup `name`.
pub fn local_path(root: &Path, name: &str) -> PathBuf {
    local_dir(root).join(format!("{}-{name}.tar.gz", Target::Webhosting))
}

/// A new backup's name: now, and the build that is live (`unknown` without build_info.json).
pub fn new_name(live_build: Option<&str>) -> String {
    crate::model::release_name::new(Timestamp::now(), live_build)
}

/// After the fetch: the local copy's sha256 must be the server's file's (`sha256sum -c` there),
/// then it goes into the ledger.
pub(super) fn record(
    ssh: &Ssh,
    ledger: &mut Ledger,
    layout: &Layout,
    b: &crate::remote::backup::Backup,
    kind: BackupKind,
    build_id: Option<&str>,
) -> Result<BackupRecord, Failure> {
    let sha256 = crate::package::sha256_file(&b.local)?;
    let file = format!("{}.tar.gz", b.name);
    let check =
        crate::remote::backup::sha256_check(StepId::CheckBackup, &layout.backups(), &file, &sha256);
    ssh.run(&check.command()).map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!(
                "the local copy {} of backup {} differs from the server's file: {e}",
                b.local.display(),
                b.name
            ),
        )
        .hint("the transfer was damaged; run the command again")
    })?;
    let size = std::fs::metadata(&b.local)
        .map_err(|e| io_failure(&b.local, e))?
        .len();
    let taken_at = crate::model::release_name::parse(&b.name)
        .map(|(t, _)| t)
        .unwrap_or_else(Timestamp::now);
    let rec = BackupRecord {
        target: Target::Webhosting.as_str().into(),
        name: b.name.clone(),
        kind,
        taken_at,
        build_id: build_id.map(str::to_string),
        sha256,
        size,
        remote_path: format!("{}/{file}", layout.backups()),
        local_path: b.local.display().to_string(),
        pruned_at: None,
    };
    ledger.record_backup(&rec)?;
    Ok(rec)
}

/// Retention over the server's backups (`pre.backups` plus `new`), with the newest backup of each
/// build in `kept_builds` pinned: a kept release's database stays restorable.
pub(super) fn server_plan(
    pre: &Preflight,
    new: Option<&str>,
    kept_builds: &[String],
    policy: RetentionPolicy,
) -> retention::Plan {
    let mut names: Vec<String> = pre.backups.iter().map(|b| b.name.clone()).collect();
    if let Some(n) = new
        && !names.iter().any(|x| x == n)
    {
        names.push(n.to_string());
    }
    plan_for(&names, kept_builds, policy)
}

fn plan_for(names: &[String], kept_builds: &[String], policy: RetentionPolicy) -> retention::Plan {
    let builds: Vec<&str> = kept_builds.iter().map(String::as_str).collect();
    let pinned: Vec<String> = retention::newest_per_build(names, &builds)
        .into_iter()
        .map(str::to_string)
        .collect();
    retention::plan_names(
        names,
        &|n| pinned.iter().any(|p| p == n),
        Timestamp::now(),
        policy,
    )
}

/// The builds whose database backups are pinned: the live one and those of the releases kept.
pub(super) fn kept_builds(live: Option<&str>, kept: &[super::remote::KeptRelease]) -> Vec<String> {
    live.into_iter()
        .map(str::to_string)
        .chain(kept.iter().filter_map(|r| r.build_id.clone()))
        .collect()
}

/// Applies the same policy to the local copies, deletes what it does not keep, and notes in the
/// ledger which backups the server no longer has. Problems here are warnings: the backup exists.
pub(super) fn after_retention(
    root: &Path,
    ledger: &mut Ledger,
    server_pruned: &[String],
    kept_builds: &[String],
    policy: RetentionPolicy,
    reporter: &dyn Reporter,
) {
    let dir = local_dir(root);
    let prefix = format!("{}-", Target::Webhosting);
    let local: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            Some(
                n.strip_prefix(&prefix)?
                    .strip_suffix(".tar.gz")?
                    .to_string(),
            )
        })
        .collect();
    let plan = plan_for(&local, kept_builds, policy);
    for name in &plan.prune {
        let p = local_path(root, name);
        if let Err(e) = std::fs::remove_file(&p) {
            reporter.event(&Event::Warning {
                message: format!("cannot delete the old backup {}: {e}", p.display()),
            });
        }
    }
    if let Err(e) = ledger.mark_backups_pruned(Target::Webhosting, server_pruned, Timestamp::now())
    {
        reporter.event(&Event::Warning {
            message: format!("the ledger does not know which backups were pruned: {e}"),
        });
    }
}

#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    pub break_lock: bool,
}

/// What `harness backup webhosting` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReceipt {
    pub name: String,
    pub build_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub remote: String,
    pub local: PathBuf,
    /// The server's backups after retention, newest first, with why each is kept.
    pub kept: Vec<(String, Vec<retention::Reason>)>,
    pub pruned: Vec<String>,
    pub policy: RetentionPolicy,
    pub elapsed_ms: u64,
}

/// `harness backup webhosting`: under the deploy lock, a consistent backup of remote_dir, copied
/// here, checked by sha256 on both ends, recorded in the ledger, then retention on both sides.
pub fn backup(
    config: &Config,
    req: &BackupRequest,
    reporter: &dyn Reporter,
) -> Result<BackupReceipt, Failure> {
    let started = Instant::now();
    let remote = Remote::of(config)?;
    let wh = config.webhosting_deploy();
    let layout = &remote.layout;
    // A damaged ledger stops us before anything happens on the server.
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let db = config.database_path();
    let (ssh, pre) = remote.open(&wh, db.as_deref(), reporter)?;
    let break_lock = pre.break_lock(req.break_lock, reporter);
    if !pre.live {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{} does not exist on {}: nothing to back up",
                layout.live, remote.destination
            ),
        )
        .hint("check [targets.webhosting] remote_dir; the first `harness deploy webhosting` creates it"));
    }
    pre.check(layout, break_lock, None, &remote.destination, "a backup")?;

    let name = new_name(pre.live_build.as_deref());
    let spec = crate::remote::backup::Backup {
        name: name.clone(),
        db: db.clone().filter(|_| pre.live_db),
        local: local_path(&config.root, &name),
        keep_db_snapshot: false,
    };
    std::fs::create_dir_all(local_dir(&config.root))
        .map_err(|e| io_failure(local_dir(&config.root), e))?;
    let mut steps = vec![crate::remote::lock::lock(
        layout,
        &super::lock_details("backup", pre.live_build.as_deref().unwrap_or("unknown")),
        break_lock,
    )];
    steps.extend(crate::remote::backup::backup_steps(layout, &spec));
    interrupt::install();
    if let Err((id, e)) = crate::remote::step::execute(
        &steps,
        &ssh,
        reporter,
        &mut |_| transaction::unreachable_check(),
        &interrupt::requested,
    ) {
        if id != StepId::Lock {
            let _ = ssh.run(&crate::remote::lock::unlock(layout, super::lock_token()).command());
            let _ = std::fs::remove_file(&spec.local);
        }
        return Err(unchanged_failure(id, e, layout));
    }
    let rec = crate::events::phase(reporter, "check-backup", || {
        let rec = record(
            &ssh,
            &mut ledger,
            layout,
            &spec,
            BackupKind::Scheduled,
            pre.live_build.as_deref(),
        );
        if rec.is_err() {
            let _ = ssh.run(&crate::remote::lock::unlock(layout, super::lock_token()).command());
        }
        let rec = rec?;
        let detail = format!("sha256 {} on both ends, {} bytes", rec.sha256, rec.size);
        Ok::<_, Failure>((rec, detail))
    })?;

    // Retention, then unlock and audit.
    let kept = kept_builds(pre.live_build.as_deref(), &pre.releases);
    let plan = server_plan(&pre, Some(&name), &kept, wh.retention);
    let line = super::audit_text(
        &format!(
            "backup taken name={name} sha256={}{}",
            rec.sha256,
            super::audit_flags(None, false, req.break_lock || break_lock)
        ),
        &remote.destination,
        layout,
    );
    let mut finish = Vec::new();
    if !plan.prune.is_empty() {
        finish.push(crate::remote::backup::prune_backups(layout, &plan.prune));
    }
    finish.push(crate::remote::lock::unlock(layout, super::lock_token()));
    finish.push(crate::remote::audit::audit(layout, &line));
    transaction::finish_best_effort(&finish, &ssh, reporter, "the backup is taken");
    ssh.close();
    super::append_local_audit(&config.root, &line);
    after_retention(
        &config.root,
        &mut ledger,
        &plan.prune,
        &kept,
        wh.retention,
        reporter,
    );
    Ok(BackupReceipt {
        name,
        build_id: pre.live_build.clone(),
        sha256: rec.sha256,
        size: rec.size,
        remote: rec.remote_path,
        local: spec.local,
        kept: plan.keep,
        pruned: plan.prune,
        policy: wh.retention,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// `backup webhosting --verify [ID]`: the restore drill on a local backup (the newest, or `id`),
/// its sha256 checked first; the drill's outcome is recorded in the ledger.
pub fn verify(
    config: &Config,
    id: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<crate::run::DrillOutcome, Failure> {
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let backup = find_local(config, &ledger, id)?;
    backup.check_sha256()?;
    let started_at = crate::model::timestamp::Timestamp::now();
    let o = crate::run::drill(
        config,
        &crate::run::DrillRequest {
            tarball: backup.path.clone(),
            backup_id: backup.record.name.clone(),
        },
        reporter,
    )?;
    ledger.record_drill(&crate::ledger::DrillRecord {
        target: Target::Webhosting.as_str().into(),
        backup_name: o.backup_id.clone(),
        backup_sha256: o.backup_sha256.clone(),
        started_at,
        finished_at: crate::model::timestamp::Timestamp::now(),
        outcome: crate::ledger::Outcome::parse(o.outcome).unwrap_or(crate::ledger::Outcome::Infra),
        integrity: o.integrity.clone(),
        passed: o.counts.passed,
        failed: o.counts.failed + o.counts.errors,
        report_path: o.report.as_ref().map(|p| p.display().to_string()),
    })?;
    Ok(o)
}

/// A backup's local copy, as the ledger knows it.
#[derive(Debug, Clone)]
pub struct LocalBackup {
    pub record: BackupRecord,
    pub path: PathBuf,
}

/// The local copy of backup `name` (by its name or a unique prefix of it; the newest without
/// one). Unknown names fail with exit 2 and the list of backups that have a local copy.
pub fn find_local(
    config: &Config,
    ledger: &Ledger,
    name: Option<&str>,
) -> Result<LocalBackup, Failure> {
    let mut all: Vec<LocalBackup> = ledger
        .backups(Target::Webhosting)?
        .into_iter()
        .map(|record| LocalBackup {
            path: local_path(&config.root, &record.name),
            record,
        })
        .filter(|b| b.path.is_file())
        .collect();
    all.sort_by(|a, b| b.record.name.cmp(&a.record.name));
    let found: Vec<&LocalBackup> = match name {
        None => all.iter().take(1).collect(),
        Some(n) => {
            let exact: Vec<&LocalBackup> = all.iter().filter(|b| b.record.name == n).collect();
            if exact.is_empty() {
                all.iter()
                    .filter(|b| b.record.name.starts_with(n))
                    .collect()
            } else {
                exact
            }
        }
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        _ => {
            let names: Vec<&str> = all.iter().map(|b| b.record.name.as_str()).collect();
            let what = match name {
                None => "there is no backup with a local copy".to_string(),
                Some(n) if found.is_empty() => format!("no backup {n:?}"),
                Some(n) => format!("{n:?} matches {} backups", found.len()),
            };
            Err(Failure::new(
                Exit::BadInput,
                format!(
                    "{what} in {}; backups here: {}",
                    local_dir(&config.root).display(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
            .hint("`harness backup webhosting` takes one; `harness status webhosting` lists them"))
        }
    }
}

impl LocalBackup {
    /// Exit 1 when the file is not the one recorded when it was taken.
    pub fn check_sha256(&self) -> Result<(), Failure> {
        let sha = crate::package::sha256_file(&self.path)?;
        if sha == self.record.sha256 {
            return Ok(());
        }
        Err(Failure::new(
            Exit::Failed,
            format!(
                "{} has sha256 {sha}, but {} was recorded when backup {} was taken: the file changed",
                self.path.display(),
                self.record.sha256,
                self.record.name
            ),
        )
        .hint(format!(
            "the server's copy is {}; fetch it again, or use another backup",
            self.record.remote_path
        )))
    }
}

/// How long ago `t` was, for people: "3 h 12 min", "2 d 4 h".
pub fn ago(t: Timestamp) -> String {
    let d: Duration = Timestamp::now().since(t);
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = Timestamp::now();
        assert_eq!(ago(now.minus(Duration::from_secs(5))), "5 s");
        assert_eq!(
            ago(now.minus(Duration::from_secs(3 * 3600 + 12 * 60))),
            "3 h 12 min"
        );
        assert_eq!(
            ago(now.minus(Duration::from_secs(2 * 86400 + 4 * 3600))),
            "2 d 4 h"
        );
    }
}
