//! `harness rollback webhosting [--to ID] [--with-db]`: a kept release goes live again, under the
//! deploy's lock, with its verification (health 2xx and the release's build id, after Passenger's
//! throttle), its audit logs and a ledger record. If it does not answer, the release that was live
//! is put back (exit 5).
//!
//! Without --with-db the kept release gets production's database: the code goes back, the data
//! stays. With it, the release's own database backup (the newest backup taken while its build was
//! live) replaces production's, after a backup of what is live now and after saying what would
//! be lost.
use crate::deploy::plan::StepId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::plan::{self, Check, RemoteStep, RollbackFacts, StepError};
use super::remote::{KeptRelease, Remote};
use super::{backup, interrupt, io_failure, retention, ssh_failure, step_error_text};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::ledger::unrecorded::Unrecorded;
use crate::ledger::{BackupKind, Ledger, RollbackOutcome, RollbackRecord, Timestamp};

#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    /// A kept release by its name under releases/, or by build id; default the release before
    /// the live one.
    pub to: Option<String>,
    pub with_db: bool,
    /// Confirms --with-db without asking.
    pub yes: bool,
    pub dry_run: bool,
    pub break_lock: bool,
}

/// How `--with-db` is confirmed: the CLI asks on a terminal. `None`: there is no terminal.
pub type Ask<'a> = &'a dyn Fn(&str) -> Option<bool>;

/// Rows per table in production's database now and in the backup that would replace it.
#[derive(Debug, Clone, Serialize)]
pub struct Loss {
    pub backup: String,
    pub taken_at: Timestamp,
    pub tables: Vec<TableRows>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRows {
    pub table: String,
    /// `None`: the table does not exist there.
    pub now: Option<u64>,
    pub backup: Option<u64>,
}

impl Loss {
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "--with-db replaces production's database with the one in backup {}, taken {} ago ({} UTC).\n\
             Rows per table, production now against the backup:\n  {:<24} {:>10} {:>10} {:>10}\n",
            self.backup,
            backup::ago(self.taken_at),
            self.taken_at.short(),
            "table",
            "now",
            "backup",
            "lost"
        );
        let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        for t in &self.tables {
            let lost = t.now.unwrap_or(0).saturating_sub(t.backup.unwrap_or(0));
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>10} {:>10}",
                t.table,
                n(t.now),
                n(t.backup),
                if lost > 0 {
                    lost.to_string()
                } else {
                    String::new()
                }
            );
        }
        out.push_str(
            "Everything written since the backup is lost: the rows counted as lost, and every change \
             to the rows that stay.",
        );
        out
    }
}

/// What a rollback (or its dry run) hands back.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReceipt {
    pub destination: String,
    pub remote_dir: String,
    pub release: String,
    pub from_build: Option<String>,
    pub to_build: String,
    pub with_db: bool,
    pub db_backup: Option<String>,
    /// The backup of what was live, taken before --with-db replaced the database.
    pub safety_backup: Option<PathBuf>,
    pub loss: Option<Loss>,
    pub plan: Vec<RemoteStep>,
    pub dry_run: bool,
    pub elapsed_ms: u64,
}

/// Which kept release `to` names (or, without it, the newest kept release of another build that
/// did not fail verification). Unknown names are bad input, answered with the kept ids.
pub fn choose<'a>(
    releases: &'a [KeptRelease],
    live_build: Option<&str>,
    to: Option<&str>,
) -> Result<&'a KeptRelease, Failure> {
    let listing = || {
        if releases.is_empty() {
            "none".to_string()
        } else {
            releases
                .iter()
                .map(|r| {
                    format!(
                        "{} (build {})",
                        r.name,
                        r.build_id.as_deref().unwrap_or("unknown")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let found = match to {
        None => releases
            .iter()
            .find(|r| !r.failed() && r.build_id.is_some() && r.build_id.as_deref() != live_build)
            .ok_or_else(|| {
                Failure::new(
                    Exit::BadInput,
                    format!(
                        "there is no kept release to roll back to (live build {}); kept releases: {}",
                        live_build.unwrap_or("unknown"),
                        listing()
                    ),
                )
                .hint("a deploy keeps the release it replaces; keep_releases sets how many")
            })?,
        Some(id) => {
            let by_name = releases.iter().find(|r| r.name == id);
            // By build id: the newest that did not fail, else any.
            let by_build = || {
                let mut m = releases.iter().filter(|r| r.build_id.as_deref() == Some(id));
                let all: Vec<&KeptRelease> = m.by_ref().collect();
                all.iter()
                    .find(|r| !r.failed())
                    .or(all.first())
                    .copied()
            };
            match by_name.or_else(by_build) {
                Some(r) => r,
                None if live_build == Some(id) => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("build {id} is the live one; kept releases: {}", listing()),
                    ));
                }
                None => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("no kept release {id:?}; kept releases: {}", listing()),
                    )
                    .hint("pass a release name or a build id from that list (`harness status webhosting` shows them)"));
                }
            }
        }
    };
    if found.build_id.is_none() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "release {} has no build_info.json with a build id, so its answer cannot be verified",
                found.name
            ),
        ));
    }
    Ok(found)
}

/// Rows per table of a SQLite file (sqlite_* tables left out).
pub fn row_counts(db: &Path) -> Result<BTreeMap<String, u64>, Failure> {
    let fail = |e: rusqlite::Error| {
        Failure::new(
            Exit::Environment,
            format!("cannot count rows in {}: {e}", db.display()),
        )
    };
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(fail)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(fail)?;
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )
            .map_err(fail)?;
        out.insert(t, n.max(0) as u64);
    }
    Ok(out)
}

/// The rows production (`now`; `None` when it has no database file) would lose to `then`.
fn loss(backup: &str, now: Option<&Path>, then: &Path) -> Result<Loss, Failure> {
    let a = match now {
        Some(p) => row_counts(p)?,
        None => BTreeMap::new(),
    };
    let b = row_counts(then)?;
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    Ok(Loss {
        backup: backup.to_string(),
        taken_at: retention::parse_name(backup)
            .map(|(t, _)| t)
            .unwrap_or(Timestamp::from_unix_ms(0)),
        tables: names
            .into_iter()
            .map(|t| TableRows {
                table: t.clone(),
                now: a.get(t).copied(),
                backup: b.get(t).copied(),
            })
            .collect(),
    })
}

/// The database backup of `build`: the newest backup taken while it was live.
fn database_backup_of(names: &[String], build: &str, host: &str) -> Result<String, Failure> {
    match retention::newest_per_build(names, &[build]).first() {
        Some(name) => Ok(name.to_string()),
        None => Err(Failure::new(
            Exit::BadInput,
            format!(
                "there is no database backup of build {build} on {host}; backups: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )
        .hint("roll back without --with-db to keep production's database; a backup is taken of the live release by every deploy that replaces it and by `harness backup`")),
    }
}

pub fn rollback(
    config: &Config,
    req: &RollbackRequest,
    reporter: &dyn Reporter,
    ask: Ask<'_>,
) -> Result<RollbackReceipt, Failure> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let remote = Remote::of(config)?;
    let wh = config.webhosting_deploy();
    let probe = remote.probe(config, &wh)?;
    let (destination, layout) = (remote.destination.clone(), remote.layout.clone());
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let db = config.database_path();
    let unchanged = "nothing was changed";

    let (ssh, pre) = remote.open(&wh, db.as_deref(), reporter)?;
    let break_lock = pre.break_lock(req.break_lock, reporter);
    if !pre.live {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{} does not exist on {destination}: nothing is live to roll back",
                layout.live
            ),
        )
        .hint("check [targets.webhosting] remote_dir"));
    }
    let target = choose(&pre.releases, pre.live_build.as_deref(), req.to.as_deref())?.clone();
    let to_build = target.build_id.clone().expect("choose checks the build id");
    pre.check(&layout, break_lock, None, &destination, "a rollback")?;

    let outgoing = backup::new_name(pre.live_build.as_deref());
    let release_dir = format!("{}/{}", layout.releases(), target.name);
    let live_db = db.clone().filter(|_| pre.live_db);

    // The database: which backup --with-db restores, and what it would cost; without it, whether
    // the kept release's code fits production's schema.
    let scratch = tempfile::tempdir().map_err(|e| io_failure("a temporary directory", e))?;
    let names: Vec<String> = pre.backups.iter().map(|b| b.name.clone()).collect();
    if req.with_db && db.is_none() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "--with-db: {} has no [package.database], so there is no database to restore",
                config.file.display()
            ),
        ));
    }
    let restore_from = if req.with_db {
        Some(database_backup_of(&names, &to_build, &destination)?)
    } else {
        None
    };
    let mut loss_report = None;
    if let Some(db) = &db {
        crate::events::phase(reporter, "database", || {
            let now = scratch.path().join("production.db");
            if pre.live_db {
                ssh.run_to_file(&plan::db_snapshot(&format!("{}/{db}", layout.live)), &now)
                    .map_err(|e| ssh_failure(e, unchanged))?;
            }
            match &restore_from {
                Some(name) => {
                    let then = scratch.path().join("backup.db");
                    let script = format!(
                        "tar -xzOf {} {}",
                        super::ssh::quote(&format!("{}/{name}.tar.gz", layout.backups())),
                        super::ssh::quote(db)
                    );
                    ssh.run_to_file(&script, &then)
                        .map_err(|e| ssh_failure(e, unchanged))?;
                    let l = loss(name, pre.live_db.then_some(now.as_path()), &then)?;
                    let detail = format!("backup {name} from {} ago", backup::ago(l.taken_at));
                    loss_report = Some(l);
                    Ok::<_, Failure>(((), detail))
                }
                // What the release's code was tested with: its build_info.json says (a release
                // in the shared layout only links to production's database); a release from
                // before the fingerprint was recorded is compared by its own copy.
                None if pre.live_db => {
                    let theirs = match &target.schema {
                        Some(s) => s.clone(),
                        None => {
                            let kept = scratch.path().join("release.db");
                            let script = format!(
                                "f={}; if [ -f \"$f\" ]; then {}; fi",
                                super::ssh::quote(&format!("{release_dir}/{db}")),
                                plan::db_snapshot(&format!("{release_dir}/{db}"))
                            );
                            ssh.run_to_file(&script, &kept)
                                .map_err(|e| ssh_failure(e, unchanged))?;
                            if std::fs::metadata(&kept).map(|m| m.len()).unwrap_or(0) == 0 {
                                return Ok((
                                    (),
                                    format!("release {} holds no database to compare", target.name),
                                ));
                            }
                            crate::package::database::fingerprint_file(&kept)?.1
                        }
                    };
                    let (_, ours) = crate::package::database::fingerprint_file(&now)?;
                    if theirs != ours {
                        return Err(schema_misfit(&ours, &target.name, &theirs));
                    }
                    Ok((
                        (),
                        format!(
                            "schema {} fits release {}",
                            super::short(&ours),
                            target.name
                        ),
                    ))
                }
                None => Ok(((), "production has no database".to_string())),
            }
        })?;
    }
    if let Some(l) = &loss_report {
        reporter.event(&Event::Note { message: l.text() });
    }

    let restore = match &restore_from {
        Some(name) => Some(plan::Restore {
            backup: name.clone(),
            sha256: ledger.backup(backup::TARGET, name)?.map(|b| b.sha256),
            safety: plan::Backup {
                name: outgoing.clone(),
                db: live_db.clone(),
                local: backup::local_path(&config.root, &outgoing),
                keep_db_snapshot: false,
            },
        }),
        None => None,
    };
    if let Some(r) = &restore
        && r.sha256.is_none()
    {
        reporter.event(&Event::Warning {
            message: format!(
                "the ledger has no sha256 for backup {}; it is restored unchecked",
                r.backup
            ),
        });
    }
    let facts = RollbackFacts {
        layout: layout.clone(),
        release: target.name.clone(),
        outgoing: outgoing.clone(),
        db: db.clone(),
        db_state: super::shared::DbState::of(pre.live_db, pre.db_shared),
        paused: pre.paused,
        version: config.stack.version_probe(),
        restore,
        lock_details: super::lock_details("rollback", &to_build),
        break_lock,
    };
    let steps = plan::rollback_plan(&facts);
    let mut receipt = RollbackReceipt {
        destination: destination.clone(),
        remote_dir: layout.live.clone(),
        release: target.name.clone(),
        from_build: pre.live_build.clone(),
        to_build: to_build.clone(),
        with_db: req.with_db,
        db_backup: restore_from.clone(),
        safety_backup: None,
        loss: loss_report.clone(),
        plan: steps.clone(),
        dry_run: req.dry_run,
        elapsed_ms: 0,
    };
    if req.dry_run {
        ssh.close();
        receipt.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(receipt);
    }
    if req.with_db && !req.yes {
        let question = format!(
            "Replace production's database with backup {}? [y/N] ",
            restore_from.as_deref().unwrap_or("")
        );
        match ask(&question) {
            Some(true) => {}
            Some(false) => {
                return Err(Failure::new(
                    Exit::Refused,
                    "not confirmed; nothing was changed",
                ));
            }
            None => {
                return Err(Failure::new(
                    Exit::Refused,
                    "--with-db replaces production's database and there is no terminal to confirm it; nothing was changed",
                )
                .hint("read what would be lost (above), then run again with --yes"));
            }
        }
    }

    let record = |ledger: &mut Ledger, outcome: RollbackOutcome, detail: &str| {
        let package = ledger
            .package_of_build(backup::TARGET, &to_build)
            .ok()
            .flatten();
        let rec = RollbackRecord {
            started_at,
            finished_at: Timestamp::now(),
            target: backup::TARGET.into(),
            release: target.name.clone(),
            from_build: pre.live_build.clone(),
            to_build: Some(to_build.clone()),
            package_sha256: package,
            with_db: req.with_db,
            db_backup: restore_from.clone(),
            outcome,
            detail: detail.into(),
        };
        let written = ledger.record_rollback(&rec).map(drop);
        super::NotRecorded::check(written, &config.root, Unrecorded::Rollback(rec), reporter)
    };
    let audit = |outcome: &str, why: &str| {
        let mut what = format!(
            "rollback {outcome} release={} build={to_build} from={}",
            target.name,
            pre.live_build.as_deref().unwrap_or("unknown")
        );
        if let Some(b) = &restore_from {
            what.push_str(&format!(" with_db={b}"));
        }
        what.push_str(&super::audit_flags(
            None,
            false,
            req.break_lock || break_lock,
        ));
        if !why.is_empty() {
            what.push_str(&format!(" why={why}"));
        }
        super::audit_text(&what, &destination, &layout)
    };

    // Up to the swap nothing has changed: a failure unlocks and says so.
    let swap_at = steps
        .iter()
        .position(|s| s.id == StepId::Swap)
        .expect("a rollback swaps");
    let (before, after) = steps.split_at(swap_at);
    let (swap, verify_step) = after.split_at(1);
    let swapped_at = std::cell::Cell::new(Instant::now());
    let from_build = pre.live_build.clone();
    // A `contains` probe fills its template from each release's own build_info.json.
    let (to_info, from_info) = match probe.version {
        crate::config::VersionProbe::Contains { .. } => (
            super::remote::build_info_of(&ssh, &release_dir),
            super::remote::build_info_of(&ssh, &layout.live),
        ),
        _ => (None, None),
    };
    let mut check = |c: Check| -> Result<String, Failure> {
        match c {
            Check::Verify => probe.until(
                super::verify::Expected {
                    build_id: &to_build,
                    info: to_info.as_ref(),
                },
                swapped_at.get(),
            ),
            Check::VerifyRollback => match &from_build {
                Some(b) => probe.until(
                    super::verify::Expected {
                        build_id: b,
                        info: from_info.as_ref(),
                    },
                    swapped_at.get(),
                ),
                None => Err(Failure::new(
                    Exit::Unknown,
                    "the release that was live has no build id to verify",
                )),
            },
            _ => super::unreachable_check(),
        }
    };
    interrupt::install();
    // The backup of what is live goes into the ledger as soon as it is here.
    let fetched = before
        .iter()
        .position(|s| s.id == StepId::FetchBackup)
        .map_or(0, |i| i + 1);
    let (backing_up, preparing) = before.split_at(fetched);
    let unchanged_failure = |(id, e): (StepId, StepError)| {
        if id != StepId::Lock {
            let _ = ssh.run(&plan::unlock(&layout, super::lock_token()).command());
        }
        super::unchanged_failure(id, e, &layout, "production is unchanged")
    };
    let prepared = plan::execute(
        backing_up,
        &ssh,
        reporter,
        &mut check,
        &interrupt::requested,
    )
    .map_err(unchanged_failure)
    .and_then(|()| match &facts.restore {
        Some(r) => crate::events::phase(reporter, "record-backup", || {
            let rec = backup::record(
                &ssh,
                &mut ledger,
                &layout,
                &r.safety,
                BackupKind::Rollback,
                from_build.as_deref(),
            );
            if rec.is_err() {
                let _ = ssh.run(&plan::unlock(&layout, super::lock_token()).command());
            }
            let rec = rec?;
            Ok::<_, Failure>(((), format!("sha256 {} on both ends", rec.sha256)))
        }),
        None => Ok(()),
    })
    .and_then(|()| {
        plan::execute(preparing, &ssh, reporter, &mut check, &interrupt::requested)
            .map_err(unchanged_failure)
    });
    if let Err(failure) = prepared {
        let _ = record(&mut ledger, RollbackOutcome::Failed, &failure.message);
        return Err(failure);
    }
    receipt.safety_backup = facts.restore.as_ref().map(|r| r.safety.local.clone());

    if let Err((_, e)) = plan::execute(
        swap,
        &ssh,
        reporter,
        &mut |_| super::unreachable_check(),
        &super::never,
    ) {
        if let StepError::Ssh(err) = &e
            && err.remote_code() == Some(plan::SWAP_REFUSED)
        {
            let _ = ssh.run(&plan::unlock(&layout, super::lock_token()).command());
            let failure = Failure::new(
                Exit::Environment,
                format!(
                    "the swap on {destination} refused before moving anything: {err}; production is unchanged"
                ),
            )
            .hint("someone changed releases/ meanwhile; `harness status webhosting` shows what is there now");
            let _ = record(&mut ledger, RollbackOutcome::Failed, &failure.message);
            return Err(failure);
        }
        let failure = Failure::new(
            Exit::Unknown,
            format!("the rollback's swap on {destination} failed part-way: {}", step_error_text(&e)),
        )
        .hint(format!(
            "check on the server: does {} exist and hold a release? The release that was live may be in {}/{}, \
             the one going live in {release_dir}. The lock {} is kept until you have looked (then --break-lock).",
            layout.live,
            layout.releases(),
            outgoing,
            layout.lock()
        ));
        let _ = record(&mut ledger, RollbackOutcome::Unknown, &failure.message);
        return Err(failure);
    }
    swapped_at.set(Instant::now());
    // Old releases are pruned while Passenger's throttle runs out; the one that was live is the
    // newest under releases/, so it stays for a revert.
    let prune = [plan::prune_releases(
        &layout,
        &pre.releases_to_prune_after_rollback(&facts.release, &outgoing, wh.keep_releases),
    )];
    let verified = super::verify_while_pruning(&prune, verify_step, &ssh, reporter, &mut check);
    if let Err((_, e)) = verified {
        let why = step_error_text(&e);
        reporter.event(&Event::Warning {
            message: format!(
                "verification failed: {why}; putting {} back",
                from_build.as_deref().unwrap_or("the release that was live")
            ),
        });
        let reverted = super::swap_back_and_verify(
            &plan::revert_rollback(&facts),
            &ssh,
            reporter,
            &mut check,
            &swapped_at,
        );
        return Err(match reverted {
            Ok(()) => {
                let line = audit("reverted", &why);
                super::unlock_and_audit(&ssh, &layout, &config.root, &line);
                let _ = record(&mut ledger, RollbackOutcome::Reverted, &why);
                Failure::new(
                    Exit::RolledBack,
                    format!(
                        "release {} (build {to_build}) failed verification ({why}); put back: {} answers again",
                        target.name,
                        from_build.as_deref().unwrap_or("the previous build")
                    ),
                )
                .hint(format!("the release is kept as {release_dir} (see its app.log)"))
            }
            Err((id, e)) => {
                let msg = format!(
                    "release {} failed verification ({why}) and putting the previous one back failed at `{id}`: {}",
                    target.name,
                    step_error_text(&e)
                );
                let _ = record(&mut ledger, RollbackOutcome::Unknown, &msg);
                Failure::new(Exit::Unknown, msg).hint(format!(
                    "check on {destination}: which release is in {} (cat {}/build_info.json); {}/{} and {release_dir}; \
                     the web server's error log. The lock {} is kept; remove it with --break-lock when done.",
                    layout.live,
                    layout.live,
                    layout.releases(),
                    outgoing,
                    layout.lock()
                ))
            }
        });
    }

    // Done: retention (when a backup was taken), unlock, audit, ledger, state.
    let line = audit("done", "");
    let mut finish = Vec::new();
    let mut pruned = Vec::new();
    let mut kept = Vec::new();
    if facts.restore.is_some() {
        let mut releases: Vec<KeptRelease> = pre
            .releases
            .iter()
            .filter(|r| r.name != target.name)
            .cloned()
            .collect();
        releases.push(KeptRelease {
            name: outgoing.clone(),
            build_id: from_build.clone(),
            built_at: None,
            schema: None,
        });
        releases.sort_by(|a, b| b.name.cmp(&a.name));
        releases.truncate(wh.keep_releases as usize);
        kept = backup::kept_builds(Some(&to_build), &releases);
        let plan = backup::server_plan(&pre, Some(&outgoing), &kept, wh.retention);
        if !plan.prune.is_empty() {
            finish.push(plan::prune_backups(&layout, &plan.prune));
        }
        pruned = plan.prune;
    }
    finish.push(plan::unlock(&layout, super::lock_token()));
    finish.push(plan::audit(&layout, &line));
    super::finish_best_effort(&finish, &ssh, reporter, "rolled back and verified");
    ssh.close();
    super::append_local_audit(&config.root, &line);
    let recorded = record(&mut ledger, RollbackOutcome::Done, "verified");
    if facts.restore.is_some() && recorded.is_ok() {
        backup::after_retention(
            &config.root,
            &mut ledger,
            &pruned,
            &kept,
            wh.retention,
            reporter,
        );
    }
    let package = ledger
        .package_of_build(backup::TARGET, &to_build)
        .ok()
        .flatten();
    super::write_state(
        config,
        json!({
            "build_id": to_build,
            "package_sha256": package,
            "deployed_at": Timestamp::now().rfc3339(),
            "host": destination,
            "remote_dir": layout.live,
            "via": "rollback",
            "release": target.name,
            "database_from": restore_from,
        }),
    )?;
    recorded.map_err(|lost| lost.live_but_unrecorded("rollback", &to_build))?;
    receipt.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(receipt)
}

fn schema_misfit(ours: &str, release: &str, theirs: &str) -> Failure {
    Failure::new(
        Exit::Refused,
        format!(
            "production's database schema ({}) differs from the one release {release} ran with ({}): \
             its code may not work on it; nothing was changed",
            super::short(ours),
            super::short(theirs)
        ),
    )
    .hint("roll back with --with-db to restore that release's database too (what would be lost is shown first)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(name: &str, build: Option<&str>) -> KeptRelease {
        KeptRelease {
            name: name.into(),
            build_id: build.map(Into::into),
            built_at: None,
            schema: None,
        }
    }

    fn releases() -> Vec<KeptRelease> {
        // Newest first, as the look gives them.
        vec![
            kept("20260105T000000Z-failed-C", Some("C")),
            kept("20260104T000000Z-B", Some("B")),
            kept("20260103T000000Z-A", Some("A")),
            kept("20260102T000000Z-A", Some("A")),
            kept("20260101T000000Z-unknown", None),
        ]
    }

    #[test]
    fn the_default_is_the_newest_kept_release_of_another_build_that_did_not_fail() {
        let r = releases();
        assert_eq!(
            choose(&r, Some("D"), None).unwrap().name,
            "20260104T000000Z-B"
        );
        // The live build's own older copies are skipped.
        assert_eq!(
            choose(&r, Some("B"), None).unwrap().name,
            "20260103T000000Z-A"
        );
    }

    #[test]
    fn to_takes_a_release_name_or_a_build_id() {
        let r = releases();
        assert_eq!(
            choose(&r, Some("B"), Some("A")).unwrap().name,
            "20260103T000000Z-A"
        );
        assert_eq!(
            choose(&r, Some("B"), Some("20260102T000000Z-A"))
                .unwrap()
                .name,
            "20260102T000000Z-A"
        );
        // A failed release only when asked for.
        assert_eq!(
            choose(&r, Some("B"), Some("C")).unwrap().name,
            "20260105T000000Z-failed-C"
        );
    }

    #[test]
    fn unknown_ids_are_bad_input_listing_what_is_kept() {
        let r = releases();
        let e = choose(&r, Some("B"), Some("nope")).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message.contains("no kept release \"nope\""),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("20260104T000000Z-B (build B), 20260103T000000Z-A (build A)"),
            "{}",
            e.message
        );
        let e = choose(&r, Some("D"), Some("D")).unwrap_err();
        assert!(
            e.message.contains("build D is the live one"),
            "{}",
            e.message
        );
        let e = choose(&r, Some("B"), Some("20260101T000000Z-unknown")).unwrap_err();
        assert!(
            e.message.contains("has no build_info.json"),
            "{}",
            e.message
        );
        let e = choose(&[], Some("B"), None).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(e.message.contains("kept releases: none"), "{}", e.message);
    }

    #[test]
    fn the_loss_report_counts_rows_per_table() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |name: &str, rows: u32, extra: bool| {
            let p = dir.path().join(name);
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE \"odd \"\"name\" (x);",
            )
            .unwrap();
            for i in 0..rows {
                c.execute("INSERT INTO users (id) VALUES (?1)", [i])
                    .unwrap();
            }
            if extra {
                c.execute_batch("CREATE TABLE notes (x); INSERT INTO notes VALUES (1);")
                    .unwrap();
            }
            p
        };
        let now = mk("now.db", 5, true);
        let then = mk("then.db", 2, false);
        let l = loss("20260101T000000Z-A", Some(&now), &then).unwrap();
        assert_eq!(
            l.tables,
            [
                TableRows {
                    table: "notes".into(),
                    now: Some(1),
                    backup: None
                },
                TableRows {
                    table: "odd \"name".into(),
                    now: Some(0),
                    backup: Some(0)
                },
                TableRows {
                    table: "users".into(),
                    now: Some(5),
                    backup: Some(2)
                },
            ]
        );
        let text = l.text();
        assert!(text.contains("backup 20260101T000000Z-A, taken"), "{text}");
        let users = text
            .lines()
            .find(|l| l.trim_start().starts_with("users"))
            .unwrap();
        assert_eq!(
            users.split_whitespace().collect::<Vec<_>>(),
            ["users", "5", "2", "3"]
        );
    }
}
