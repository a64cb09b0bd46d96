//! `harness rollback webhosting [--to ID] [--with-db]`: a kept release goes live again, under the
//! deploy's lock, with its verification (health 2xx and the release's build id, after Passenger's
//! throttle), its audit logs and a ledger record. If it does not answer, the release that was live
//! is put back (exit 5).
//!
//! Without --with-db the kept release gets production's database: the code goes back, the data
//! stays. With it, the release's own database backup (the newest backup taken while its build was
//! live) replaces production's, after a backup of what is live now and after saying what would
//! be lost.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::plan::{self, RollbackFacts};
use super::remote::{KeptRelease, Remote};
use super::transaction::{self, Change, NotRecorded, Outcome, Stage};
use super::{backup, io_failure, retention};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::ledger::unrecorded::Unrecorded;
use crate::ledger::{BackupKind, Ledger, RollbackOutcome, RollbackRecord};
use crate::model::build::BuildInfo;
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;
use crate::remote::layout::Layout;
use crate::remote::ssh::failure as ssh_failure;
use crate::remote::step::{Check, RemoteStep, StepId};

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
        taken_at: crate::model::release_name::parse(backup)
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
    let (destination, layout) = (&remote.destination, &remote.layout);
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let db = config.database_path();

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
    pre.check(layout, break_lock, None, destination, "a rollback")?;
    let outgoing = backup::new_name(pre.live_build.as_deref());

    // The database: which backup --with-db restores, and what it would cost; without it, whether
    // the kept release's code fits production's schema.
    let restore_from = restore_from(config, req, &pre, &to_build, destination)?;
    let loss_report = database_check(
        &ssh,
        &pre,
        (layout, &target),
        db.as_deref(),
        restore_from.as_deref(),
        reporter,
    )?;
    let facts = RollbackFacts {
        layout: layout.clone(),
        release: target.name.clone(),
        outgoing: outgoing.clone(),
        db: db.clone(),
        db_state: super::shared::DbState::of(pre.live_db, pre.db_shared),
        paused: pre.paused,
        version: config.stack.version_probe(),
        restore: restore(
            config,
            &ledger,
            restore_from.as_deref(),
            &outgoing,
            &pre,
            reporter,
        )?,
        lock_details: super::lock_details("rollback", &to_build),
        break_lock,
    };
    let steps = plan::rollback_plan(&facts);
    let receipt = |dry_run: bool| RollbackReceipt {
        destination: destination.clone(),
        remote_dir: layout.live.clone(),
        release: target.name.clone(),
        from_build: pre.live_build.clone(),
        to_build: to_build.clone(),
        with_db: req.with_db,
        db_backup: restore_from.clone(),
        safety_backup: facts
            .restore
            .as_ref()
            .map(|r| r.safety.local.clone())
            .filter(|_| !dry_run),
        loss: loss_report.clone(),
        plan: steps.clone(),
        dry_run,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if req.dry_run {
        return Ok(receipt(true));
    }
    if req.with_db && !req.yes {
        confirm(ask, restore_from.as_deref().unwrap_or(""))?;
    }

    // A `contains` probe fills its template from each release's own build_info.json.
    let release_dir = format!("{}/{}", layout.releases(), target.name);
    let infos = (
        super::remote::probe_info(&probe, &ssh, &release_dir),
        super::remote::probe_info(&probe, &ssh, &layout.live),
    );
    let change = Rollback {
        config,
        req,
        wh: &wh,
        facts: &facts,
        pre: &pre,
        probe: &probe,
        to_build: &to_build,
        infos,
        destination,
        started_at,
        reporter,
    };
    let session = transaction::Session {
        ssh,
        layout,
        root: &config.root,
        reporter,
    };
    transaction::run(session, &mut ledger, &change, change.transaction(&steps))?;
    Ok(receipt(false))
}

/// --with-db: the backup whose database is restored (the newest taken while `to_build` was live).
fn restore_from(
    config: &Config,
    req: &RollbackRequest,
    pre: &super::remote::Preflight,
    to_build: &str,
    destination: &str,
) -> Result<Option<String>, Failure> {
    if !req.with_db {
        return Ok(None);
    }
    if config.database_path().is_none() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "--with-db: {} has no [package.database], so there is no database to restore",
                config.file.display()
            ),
        ));
    }
    let names: Vec<String> = pre.backups.iter().map(|b| b.name.clone()).collect();
    database_backup_of(&names, to_build, destination).map(Some)
}

/// The `database` phase: with --with-db, what restoring `restore_from` would lose (also shown as
/// a note); without it, whether the kept release's code fits production's schema (a misfit
/// refuses).
fn database_check(
    ssh: &crate::remote::ssh::Ssh,
    pre: &super::remote::Preflight,
    (layout, target): (&Layout, &KeptRelease),
    db: Option<&str>,
    restore_from: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Option<Loss>, Failure> {
    let unchanged = "nothing was changed";
    let Some(db) = db else { return Ok(None) };
    let scratch = tempfile::tempdir().map_err(|e| io_failure("a temporary directory", e))?;
    let release_dir = format!("{}/{}", layout.releases(), target.name);
    let loss_report = crate::events::phase(reporter, "database", || {
        let now = scratch.path().join("production.db");
        if pre.live_db {
            ssh.run_to_file(
                &crate::remote::sqlite::to_stdout(&format!("{}/{db}", layout.live)),
                &now,
            )
            .map_err(|e| ssh_failure(e, unchanged))?;
        }
        match restore_from {
            Some(name) => {
                let then = scratch.path().join("backup.db");
                let script = format!(
                    "tar -xzOf {} {}",
                    crate::remote::ssh::quote(&format!("{}/{name}.tar.gz", layout.backups())),
                    crate::remote::ssh::quote(db)
                );
                ssh.run_to_file(&script, &then)
                    .map_err(|e| ssh_failure(e, unchanged))?;
                let l = loss(name, pre.live_db.then_some(now.as_path()), &then)?;
                let detail = format!("backup {name} from {} ago", backup::ago(l.taken_at));
                Ok::<_, Failure>((Some(l), detail))
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
                            crate::remote::ssh::quote(&format!("{release_dir}/{db}")),
                            crate::remote::sqlite::to_stdout(&format!("{release_dir}/{db}"))
                        );
                        ssh.run_to_file(&script, &kept)
                            .map_err(|e| ssh_failure(e, unchanged))?;
                        if std::fs::metadata(&kept).map(|m| m.len()).unwrap_or(0) == 0 {
                            return Ok((
                                None,
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
                let detail = format!(
                    "schema {} fits release {}",
                    super::short(&ours),
                    target.name
                );
                Ok((None, detail))
            }
            None => Ok((None, "production has no database".to_string())),
        }
    })?;
    if let Some(l) = &loss_report {
        reporter.event(&Event::Note { message: l.text() });
    }
    Ok(loss_report)
}

/// --with-db: what is restored, checked by the ledger's sha256 when it has one, after a safety
/// backup of what is live now.
fn restore(
    config: &Config,
    ledger: &Ledger,
    restore_from: Option<&str>,
    outgoing: &str,
    pre: &super::remote::Preflight,
    reporter: &dyn Reporter,
) -> Result<Option<plan::Restore>, Failure> {
    let Some(name) = restore_from else {
        return Ok(None);
    };
    let sha256 = ledger.backup(Target::Webhosting, name)?.map(|b| b.sha256);
    if sha256.is_none() {
        reporter.event(&Event::Warning {
            message: format!(
                "the ledger has no sha256 for backup {name}; it is restored unchecked"
            ),
        });
    }
    Ok(Some(plan::Restore {
        backup: name.to_string(),
        sha256,
        safety: crate::remote::backup::Backup {
            name: outgoing.to_string(),
            db: config.database_path().filter(|_| pre.live_db),
            local: backup::local_path(&config.root, outgoing),
            keep_db_snapshot: false,
        },
    }))
}

/// --with-db replaces production's database: asked on a terminal, refused without one.
fn confirm(ask: Ask<'_>, backup: &str) -> Result<(), Failure> {
    match ask(&format!(
        "Replace production's database with backup {backup}? [y/N] "
    )) {
        Some(true) => Ok(()),
        Some(false) => Err(Failure::new(
            Exit::Refused,
            "not confirmed; nothing was changed",
        )),
        None => Err(Failure::new(
            Exit::Refused,
            "--with-db replaces production's database and there is no terminal to confirm it; nothing was changed",
        )
        .hint("read what would be lost (above), then run again with --yes")),
    }
}

/// One rollback, as the release transaction sees it.
struct Rollback<'a> {
    config: &'a Config,
    req: &'a RollbackRequest,
    wh: &'a crate::config::WebhostingDeploy,
    facts: &'a RollbackFacts,
    pre: &'a super::remote::Preflight,
    probe: &'a crate::probe::Probe,
    to_build: &'a str,
    /// build_info.json of the release going live and of the one that was live (a `contains`
    /// probe fills its template from them).
    infos: (Option<BuildInfo>, Option<BuildInfo>),
    destination: &'a str,
    started_at: Timestamp,
    reporter: &'a dyn Reporter,
}

impl Rollback<'_> {
    /// The transaction of `steps`: the safety backup goes into the ledger as soon as it is here
    /// (--with-db), then the rest up to the swap.
    fn transaction<'s>(&'s self, steps: &'s [RemoteStep]) -> transaction::Plan<'s> {
        let at = |id: StepId| steps.iter().position(|s| s.id == id);
        let swap_at = at(StepId::Swap).expect("a rollback swaps");
        let fetched = at(StepId::FetchBackup).map_or(0, |i| i + 1);
        let mut prepare = vec![Stage::Steps(&steps[..fetched])];
        if let Some(r) = &self.facts.restore {
            prepare.push(Stage::RecordBackup {
                phase: "record-backup",
                spec: &r.safety,
                kind: BackupKind::Rollback,
                live_build: self.live_build(),
            });
        }
        prepare.push(Stage::Steps(&steps[fetched..swap_at]));
        let (f, keep) = (self.facts, self.wh.keep_releases);
        transaction::Plan {
            prepare,
            swap: &steps[swap_at],
            verify: &steps[swap_at + 1],
            // The one that was live is the newest under releases/, so it stays for a revert.
            prune: vec![crate::remote::release::prune_releases(
                &f.layout,
                &self
                    .pre
                    .releases_to_prune_after_rollback(&f.release, &f.outgoing, keep),
            )],
            revert: Some(plan::revert_rollback(f)),
            undo_pause: None,
        }
    }

    fn release_dir(&self) -> String {
        format!("{}/{}", self.facts.layout.releases(), self.facts.release)
    }

    fn live_build(&self) -> Option<&str> {
        self.pre.live_build.as_deref()
    }

    fn db_backup(&self) -> Option<String> {
        self.facts.restore.as_ref().map(|r| r.backup.clone())
    }

    fn package(&self, ledger: &Ledger) -> Option<String> {
        ledger
            .package_of_build(Target::Webhosting, self.to_build)
            .ok()
            .flatten()
    }
}

impl Change for Rollback<'_> {
    fn what(&self) -> &'static str {
        "rollback"
    }

    fn build(&self) -> &str {
        self.to_build
    }

    fn check(&self, check: Check, swapped_at: Instant) -> Result<String, Failure> {
        match check {
            Check::Verify => self.probe.until(
                crate::probe::Expected {
                    build_id: self.to_build,
                    info: self.infos.0.as_ref(),
                },
                swapped_at,
            ),
            Check::VerifyRollback => match self.live_build() {
                Some(b) => self.probe.until(
                    crate::probe::Expected {
                        build_id: b,
                        info: self.infos.1.as_ref(),
                    },
                    swapped_at,
                ),
                None => Err(Failure::new(
                    Exit::Unknown,
                    "the release that was live has no build id to verify",
                )),
            },
            _ => transaction::unreachable_check(),
        }
    }

    fn record(
        &self,
        ledger: &mut Ledger,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), NotRecorded> {
        let rec = RollbackRecord {
            started_at: self.started_at,
            finished_at: Timestamp::now(),
            target: Target::Webhosting.as_str().into(),
            release: self.facts.release.clone(),
            from_build: self.pre.live_build.clone(),
            to_build: Some(self.to_build.to_string()),
            package_sha256: self.package(ledger),
            with_db: self.req.with_db,
            db_backup: self.db_backup(),
            outcome: match outcome {
                Outcome::Failed => RollbackOutcome::Failed,
                Outcome::Unknown => RollbackOutcome::Unknown,
                Outcome::Reverted => RollbackOutcome::Reverted,
                Outcome::Done => RollbackOutcome::Done,
            },
            detail: detail.into(),
        };
        let written = ledger.record_rollback(&rec).map(drop);
        NotRecorded::check(
            written,
            &self.config.root,
            Unrecorded::Rollback(rec),
            self.reporter,
        )
    }

    fn audit_line(&self, outcome: Outcome, why: &str) -> String {
        let mut what = format!(
            "rollback {} release={} build={} from={}",
            if outcome == Outcome::Done {
                "done"
            } else {
                "reverted"
            },
            self.facts.release,
            self.to_build,
            self.live_build().unwrap_or("unknown")
        );
        if let Some(b) = self.db_backup() {
            what.push_str(&format!(" with_db={b}"));
        }
        what.push_str(&super::audit_flags(
            None,
            false,
            self.req.break_lock || self.facts.break_lock,
        ));
        if !why.is_empty() {
            what.push_str(&format!(" why={why}"));
        }
        super::audit_text(&what, self.destination, &self.facts.layout)
    }

    fn swap_refused(&self, err: &crate::remote::ssh::SshError) -> Failure {
        Failure::new(
            Exit::Environment,
            format!(
                "the swap on {} refused before moving anything: {err}; production is unchanged",
                self.destination
            ),
        )
        .hint("someone changed releases/ meanwhile; `harness status webhosting` shows what is there now")
    }

    fn swap_failed(&self, err: &str) -> Failure {
        let l = &self.facts.layout;
        Failure::new(
            Exit::Unknown,
            format!("the rollback's swap on {} failed part-way: {err}", self.destination),
        )
        .hint(format!(
            "check on the server: does {} exist and hold a release? The release that was live may be in {}/{}, \
             the one going live in {}. The lock {} is kept until you have looked (then --break-lock).",
            l.live,
            l.releases(),
            self.facts.outgoing,
            self.release_dir(),
            l.lock()
        ))
    }

    fn verify_failed(&self, why: &str) -> String {
        format!(
            "verification failed: {why}; putting {} back",
            self.live_build().unwrap_or("the release that was live")
        )
    }

    fn nothing_to_revert(&self, why: &str) -> Failure {
        // A rollback always has the release that was live to put back.
        Failure::new(Exit::Unknown, format!("verification failed ({why})"))
    }

    fn reverted(&self, why: &str) -> Failure {
        Failure::new(
            Exit::RolledBack,
            format!(
                "release {} (build {}) failed verification ({why}); put back: {} answers again",
                self.facts.release,
                self.to_build,
                self.live_build().unwrap_or("the previous build")
            ),
        )
        .hint(format!(
            "the release is kept as {} (see its app.log)",
            self.release_dir()
        ))
    }

    fn revert_failed(&self, why: &str, id: StepId, err: &str) -> Failure {
        let l = &self.facts.layout;
        Failure::new(
            Exit::Unknown,
            format!(
                "release {} failed verification ({why}) and putting the previous one back failed at `{id}`: {err}",
                self.facts.release
            ),
        )
        .hint(format!(
            "check on {}: which release is in {} (cat {}/build_info.json); {}/{} and {}; \
             the web server's error log. The lock {} is kept; remove it with --break-lock when done.",
            self.destination,
            l.live,
            l.live,
            l.releases(),
            self.facts.outgoing,
            self.release_dir(),
            l.lock()
        ))
    }

    fn finish_steps(&self, line: &str) -> Vec<RemoteStep> {
        let l = &self.facts.layout;
        let mut finish = Vec::new();
        let pruned = &self.retention().1.prune;
        if self.facts.restore.is_some() && !pruned.is_empty() {
            finish.push(crate::remote::backup::prune_backups(l, pruned));
        }
        finish.push(crate::remote::lock::unlock(l, super::lock_token()));
        finish.push(crate::remote::audit::audit(l, line));
        finish
    }

    fn done(&self) -> &'static str {
        "rolled back and verified"
    }

    fn after_recorded(&self, ledger: &mut Ledger, reporter: &dyn Reporter) {
        if self.facts.restore.is_none() {
            return;
        }
        let (kept, plan) = self.retention();
        let root = &self.config.root;
        backup::after_retention(
            root,
            ledger,
            &plan.prune,
            &kept,
            self.wh.retention,
            reporter,
        );
    }

    fn write_state(&self, ledger: &Ledger) -> Result<(), Failure> {
        let package = self.package(ledger);
        super::write_state(
            self.config,
            json!({
                "build_id": self.to_build,
                "package_sha256": package,
                "deployed_at": Timestamp::now().rfc3339(),
                "host": self.destination,
                "remote_dir": self.facts.layout.live,
                "via": "rollback",
                "release": self.facts.release,
                "database_from": self.db_backup(),
            }),
        )
    }
}

impl Rollback<'_> {
    /// After a --with-db rollback took a backup: the builds whose releases stay (the one that was
    /// live joins releases/) and retention's plan for the backups on the server.
    fn retention(&self) -> (Vec<String>, super::retention::Plan) {
        let mut releases: Vec<KeptRelease> = self
            .pre
            .releases
            .iter()
            .filter(|r| r.name != self.facts.release)
            .cloned()
            .collect();
        releases.push(KeptRelease {
            name: self.facts.outgoing.clone(),
            build_id: self.pre.live_build.clone(),
            built_at: None,
            schema: None,
        });
        releases.sort_by(|a, b| b.name.cmp(&a.name));
        releases.truncate(self.wh.keep_releases as usize);
        let kept = backup::kept_builds(Some(self.to_build), &releases);
        let plan = backup::server_plan(
            self.pre,
            Some(&self.facts.outgoing),
            &kept,
            self.wh.retention,
        );
        (kept, plan)
    }
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
