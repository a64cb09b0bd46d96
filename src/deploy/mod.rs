//! `harness deploy webhosting`: only gated bytes reach production, a deploy never loses data, and
//! a release that does not answer is swapped back automatically.
//!
//! Gate → boot check → SSH (one master connection) → preflight → the planned remote steps
//! (`plan.rs`) → verify → rollback or finish → ledger, audit logs, state file.
pub mod backup;
pub(crate) mod boot;
mod interrupt;
pub mod plan;
pub mod remote;
pub mod retention;
pub mod rollback;
pub mod shared;
pub use crate::remote::ssh::failure as ssh_failure;
pub use crate::remote::{sqlite, ssh};
pub mod status;
pub use crate::probe as verify;

use crate::deploy::plan::StepId;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::gate::{Force, PackageFacts};
use crate::ledger::unrecorded::Unrecorded;
use crate::ledger::{DeployOutcome, DeployRecord, Timestamp};
use plan::{Check, Facts, Layout, RemoteStep, StepError};
use remote::Remote;
use ssh::SshError;

pub use boot::app_image;

/// Overrides `[targets.webhosting] url` for verification (tests point it at the twin's port).
pub const URL_ENV: &str = "HARNESS_DEPLOY_URL";

/// Passenger checks tmp/restart.txt at most this often (PassengerStatThrottleRate, production's
/// value); a probe is trusted only after it has passed, or the old process may still be answering.
pub const STAT_THROTTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub package: Option<PathBuf>,
    pub preserve_secret_key: bool,
    pub fresh_db: bool,
    /// Seed the built package's database again (`--reseed`).
    pub reseed: bool,
    pub dry_run: bool,
    pub allow_dirty: bool,
    pub break_lock: bool,
    pub force: Option<Force>,
}

/// What a finished deploy (or dry run) hands back; `--json` prints it as it serialises.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployReceipt {
    pub build_id: String,
    #[serde(rename = "host")]
    pub destination: String,
    pub remote_dir: String,
    pub release: Option<String>,
    pub backup: Option<PathBuf>,
    pub plan: Vec<RemoteStep>,
    pub dry_run: bool,
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The package that will ship: its bytes and what it says about itself. `zip` is a private copy
/// (0600, in a 0700 folder that lives as long as this): it is read, hashed, boot-checked and
/// uploaded from there, so nothing that changes the original path afterwards ships.
struct Shipment {
    zip: PathBuf,
    sha256: String,
    build_id: String,
    code: String,
    schema: Option<String>,
    /// Its build_info.json (a `contains` version probe fills its template from it).
    info: Value,
    _private: tempfile::TempDir,
}

pub fn deploy(
    config: &Config,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<DeployReceipt, Failure> {
    let clock = PauseClock::new(reporter);
    let result = deploy_timed(config, req, &clock);
    clock.report();
    result
}

/// Passes every event on, and notes when the write pause began (`pause` started) and ended
/// (`resume` or `undo-database` finished): the deploy says how long writes were refused.
struct PauseClock<'a> {
    inner: &'a dyn Reporter,
    began: std::sync::Mutex<Option<Instant>>,
    ended: std::sync::Mutex<Option<Instant>>,
}

impl<'a> PauseClock<'a> {
    fn new(inner: &'a dyn Reporter) -> Self {
        PauseClock {
            inner,
            began: Default::default(),
            ended: Default::default(),
        }
    }

    fn began(&self) -> bool {
        self.began.lock().map(|b| b.is_some()).unwrap_or(true)
    }

    fn report(&self) {
        let began = *self.began.lock().unwrap_or_else(|e| e.into_inner());
        let ended = *self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let message = match (began, ended) {
            (Some(b), Some(e)) => format!(
                "writes were paused for {:.1} s (503 with Retry-After, the database fenced); reads went on",
                e.duration_since(b).as_secs_f64()
            ),
            (Some(b), None) => {
                self.inner.event(&Event::Warning {
                    message: format!(
                        "writes were paused {:.1} s ago and the pause did not end: production refuses writes \
                         until the next deploy or rollback ends it (its `recover` step, right after the lock)",
                        b.elapsed().as_secs_f64()
                    ),
                });
                return;
            }
            _ => return,
        };
        self.inner.event(&Event::Note { message });
    }
}

impl Reporter for PauseClock<'_> {
    fn event(&self, event: &Event) {
        let now = Instant::now();
        match event {
            Event::PhaseStarted { phase: "pause" } => {
                *self.began.lock().unwrap_or_else(|e| e.into_inner()) = Some(now)
            }
            Event::PhaseFinished {
                phase: "resume" | "undo-database",
                ..
            } => *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(now),
            _ => {}
        }
        self.inner.event(event);
    }
}

fn deploy_timed(
    config: &Config,
    req: &DeployRequest,
    clock: &PauseClock,
) -> Result<DeployReceipt, Failure> {
    let reporter: &dyn Reporter = clock;
    let started = Instant::now();
    let started_at = Timestamp::now();

    let remote = Remote::of(config)?;
    let (destination, layout) = (remote.destination.clone(), remote.layout.clone());
    remote.url()?;
    let wh = config.webhosting_deploy();

    // 1. The bytes and the gate.
    let shipment = match &req.package {
        Some(file) => read_package(config, file)?,
        None => {
            let m = crate::gatekeeper::build(
                config,
                &crate::package::BuildRequest {
                    reseed: req.reseed,
                    ..crate::package::BuildRequest::standard("webhosting")
                },
                reporter,
            )?;
            // Read back like any other package: a build running beside this deploy may replace
            // .harness/dist/ at any moment, so what ships is the copy checked here.
            read_package(config, &m.zip)?
        }
    };
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let gate = crate::events::phase(reporter, "gate", || {
        let outcome = crate::gatekeeper::evaluate(
            config,
            &mut ledger,
            PackageFacts {
                sha256: &shipment.sha256,
                code: &shipment.code,
                schema: shipment.schema.as_deref(),
            },
            &crate::gatekeeper::GateRequest {
                allow_dirty: req.allow_dirty,
                force: req.force.clone(),
            },
            Timestamp::now(),
        )?;
        if !outcome.decision.open {
            return Err(Failure::new(
                Exit::Refused,
                format!(
                    "the gate refuses this package; nothing was changed\n{}",
                    crate::gatekeeper::decision_text(&outcome).trim_end()
                ),
            ));
        }
        let detail = outcome.decision.summary.clone();
        Ok((outcome, detail))
    })?;
    let recorder = Recorder {
        root: &config.root,
        started_at,
        shipment: &shipment,
        gate_decision_id: gate.decision_id,
        reporter,
    };

    // 2. The exact zip boots in the app image, in parallel with the read-only SSH work, the lock
    // and the backup; it must have passed before the upload.
    // A forced deploy is forced past it too (the gate decision records the reason); it still
    // runs, so the warning says what production is about to get.
    let (boot_zip, boot_id) = (shipment.zip.clone(), shipment.build_id.clone());
    std::thread::scope(|scope| {
        let boot = scope.spawn(move || {
            crate::events::phase(reporter, "boot-check", || {
                match boot::check(config, &boot_zip, &boot_id) {
                    Ok(d) => Ok(((), d)),
                    Err(f) if req.force.is_some() => {
                        reporter.event(&Event::Warning {
                            message: format!("--force: deploying although {}", f.message),
                        });
                        Ok(((), "failed, forced past it".to_string()))
                    }
                    Err(f) => Err(f),
                }
            })
        });
        let join_boot = move || -> Result<(), Failure> {
            boot.join()
                .unwrap_or_else(|_| Err(Failure::new(Exit::Environment, "the boot check panicked")))
        };

        // 3. One SSH connection for everything else.
        let db = config.database_path();
        let (ssh, pre) = remote.open(&wh, db.as_deref(), reporter)?;
        let break_lock = pre.break_lock(req.break_lock, reporter);
        pre.check(
            &layout,
            break_lock,
            Some(&shipment.zip),
            &destination,
            "a deploy",
        )?;

        let backup_name = backup::new_name(pre.live_build.as_deref());
        let stamp = backup_name[..16].to_string();
        let local_backups = backup::local_dir(&config.root);
        let scratch = tempfile::tempdir().map_err(|e| io_failure("a temporary directory", e))?;
        // What stays on the server once this deploy is through: the releases after pruning (the
        // live one joins them) and, by retention, the backups; the newest backup of each kept
        // release is its database, which rollback --with-db restores, so it stays.
        let kept = backup::kept_builds(
            Some(&shipment.build_id),
            &pre.kept_after(
                pre.live
                    .then_some((backup_name.as_str(), pre.live_build.as_deref())),
                wh.keep_releases,
            ),
        );
        let retention = backup::server_plan(
            &pre,
            pre.live.then_some(backup_name.as_str()),
            &kept,
            wh.retention,
        );
        // The schema is checked before the lock too, from a throwaway snapshot, so a refusal changes
        // nothing at all; the plan depends on it (a migration pauses writes), and the same check
        // under the lock, on the backup's copy, refuses if it no longer agrees.
        let mut schema_differs = false;
        if let (true, Some(db)) = (pre.live_db, &db) {
            crate::events::phase(reporter, "schema", || {
                let snap = scratch.path().join("preflight.db");
                let script = plan::db_snapshot(&format!("{}/{db}", layout.live));
                ssh.run_to_file(&script, &snap)
                    .map_err(|e| ssh_failure(e, "nothing was changed"))?;
                let (detail, differs) = schema_check(&snap, &shipment, &wh, req.fresh_db)?;
                schema_differs = differs;
                Ok::<_, Failure>(((), detail))
            })?;
        }
        let facts = Facts {
            layout: layout.clone(),
            build_id: shipment.build_id.clone(),
            // Shipped from its copy under .harness/deployed/, which `parity --remote` reads later.
            zip: deployed_zip(&config.root, &shipment.sha256),
            zip_sha256: shipment.sha256.clone(),
            db: db.clone(),
            live_exists: pre.live,
            db_state: shared::DbState::of(pre.live_db, pre.db_shared),
            schema_differs,
            paused: pre.paused,
            version: config.stack.version_probe(),
            previous_release: backup_name.clone(),
            failed_release: format!("{stamp}-failed-{}", shipment.build_id),
            backup_name: backup_name.clone(),
            local_backup: backup::local_path(&config.root, &backup_name),
            local_db_snapshot: scratch.path().join("production.db"),
            prune_releases: pre
                .releases_to_prune(pre.live.then_some(backup_name.as_str()), wh.keep_releases),
            prune_backups: retention.prune.clone(),
            fresh_db: req.fresh_db,
            preserve_secret_key: req.preserve_secret_key,
            break_lock,
            migrate_command: wh.migrate_command.clone(),
            lock_details: lock_details("deploy", &shipment.build_id),
            audit_line: String::new(),
        };
        let steps = plan::plan(&facts);

        if req.dry_run {
            join_boot()?;
            ssh.close();
            return Ok(DeployReceipt {
                build_id: shipment.build_id.clone(),
                destination,
                remote_dir: layout.live,
                release: None,
                backup: None,
                plan: steps,
                dry_run: true,
                elapsed: started.elapsed(),
            });
        }
        std::fs::create_dir_all(&local_backups).map_err(|e| io_failure(&local_backups, e))?;
        keep_deployed_copy(&shipment, &facts.zip)?;

        let probe = remote.probe(config, &wh)?;
        // A `contains` probe checks a rollback against the live release's own build_info.json.
        let live_info = match (&probe.version, pre.live) {
            (crate::config::VersionProbe::Contains { .. }, true) => {
                remote::build_info_of(&ssh, &layout.live)
            }
            _ => None,
        };
        let swapped_at = std::cell::Cell::new(Instant::now());
        let mut check = |c: Check| -> Result<String, Failure> {
            match c {
                Check::Schema => {
                    let (detail, differs) =
                        schema_check(&facts.local_db_snapshot, &shipment, &wh, req.fresh_db)?;
                    if differs != facts.schema_differs {
                        return Err(Failure::new(
                            Exit::Refused,
                            "production's database schema changed between the preflight and the lock; nothing was changed",
                        )
                        .hint("someone migrated production meanwhile: run the deploy again"));
                    }
                    Ok(detail)
                }
                Check::MigratedSchema => {
                    let (_, fp) = crate::package::database::fingerprint_file(
                        &plan::migrated_snapshot(&facts),
                    )?;
                    if Some(&fp) == shipment.schema.as_ref() {
                        Ok(format!("migrated schema {} = the package's", short(&fp)))
                    } else {
                        Err(Failure::new(
                            Exit::Refused,
                            format!(
                                "after migrate_command the schema is {}, the package's is {}; production is unchanged",
                                short(&fp),
                                shipment.schema.as_deref().map(short).unwrap_or("none")
                            ),
                        )
                        .hint("fix migrate_command so it brings production's schema to the package's"))
                    }
                }
                Check::Verify => probe.until(
                    verify::Expected {
                        build_id: &shipment.build_id,
                        info: Some(&shipment.info),
                    },
                    swapped_at.get(),
                ),
                Check::VerifyRollback => match &pre.live_build {
                    Some(old) => probe.until(
                        verify::Expected {
                            build_id: old,
                            info: live_info.as_ref(),
                        },
                        swapped_at.get(),
                    ),
                    None => Err(Failure::new(
                        Exit::Unknown,
                        "the previous release has no build id to verify",
                    )),
                },
            }
        };

        // Up to the swap, a failure leaves production untouched: unlock and report.
        let swap_at = steps
            .iter()
            .position(|s| s.id == StepId::Swap)
            .expect("a plan swaps");
        let upload_at = steps
            .iter()
            .position(|s| s.id == StepId::Upload)
            .expect("a plan uploads");
        let (before, after) = steps.split_at(swap_at);
        let mut receipt_backup = None;
        let mut join_boot = Some(join_boot);
        let mut run_before = || -> Result<(), (StepId, StepError)> {
            plan::execute(
                &before[..upload_at],
                &ssh,
                reporter,
                &mut check,
                &interrupt::requested,
            )?;
            if let Some(join) = join_boot.take() {
                join().map_err(|f| (StepId::BootCheck, StepError::Check(f)))?;
            }
            plan::execute(
                &before[upload_at..],
                &ssh,
                reporter,
                &mut check,
                &interrupt::requested,
            )
        };
        // Before the swap, production is unchanged: a failure releases the lock and is recorded.
        let fail_unchanged = |ledger: &mut crate::ledger::Ledger, failure: Failure| {
            // A paused change that began is undone first: production takes writes again.
            if clock.began()
                && let Some(undo) = plan::undo_before_swap(&facts)
            {
                let _ = plan::execute(
                    std::slice::from_ref(&undo),
                    &ssh,
                    reporter,
                    &mut |_| unreachable_check(),
                    &never,
                );
            }
            let _ = ssh.run(&unlock_script(&layout));
            let _ = recorder.record(ledger, DeployOutcome::Failed, None, &failure.message);
            failure
        };
        // From the lock on, an interrupt must clean up: it is handled between steps.
        interrupt::install();
        if let Err((id, e)) = run_before() {
            let failure = match e {
                StepError::Ssh(SshError::Remote { code, stderr, .. })
                    if id == StepId::Lock && code == plan::LOCK_HELD =>
                {
                    return Err(lock_held(&stderr, &layout));
                }
                StepError::Ssh(e) if id == StepId::Migrate => Failure::new(
                    Exit::Refused,
                    format!(
                        "the schema differs and migrate_command failed on a copy of production's database; production is unchanged: {e}"
                    ),
                ),
                StepError::Ssh(e) => ssh_failure(e, "production is unchanged"),
                StepError::Check(f) => f,
                StepError::Interrupted => Failure::new(
                    Exit::Interrupted,
                    format!(
                        "interrupted before `{id}`; production is unchanged and the lock is released"
                    ),
                ),
            };
            return Err(fail_unchanged(&mut ledger, failure));
        }
        if pre.live {
            let spec = plan::Backup {
                name: backup_name.clone(),
                db: db.clone().filter(|_| pre.live_db),
                local: facts.local_backup.clone(),
                keep_db_snapshot: true,
            };
            let recorded = crate::events::phase(reporter, "check-backup", || {
                let rec = backup::record(
                    &ssh,
                    &mut ledger,
                    &layout,
                    &spec,
                    crate::ledger::BackupKind::Deploy,
                    pre.live_build.as_deref(),
                )?;
                let detail = format!("sha256 {} on both ends", rec.sha256);
                Ok::<_, Failure>(((), detail))
            });
            if let Err(failure) = recorded {
                return Err(fail_unchanged(&mut ledger, failure));
            }
            receipt_backup = Some(facts.local_backup.clone());
        }

        // The swap and the verification.
        let (swap, verify_step) = after.split_at(1);
        if let Err((_, e)) = plan::execute(
            swap,
            &ssh,
            reporter,
            &mut |_| unreachable_check(),
            &interrupt::requested,
        ) {
            if let StepError::Ssh(err) = &e
                && err.remote_code() == Some(plan::SWAP_REFUSED)
            {
                let failure = Failure::new(
                    Exit::Environment,
                    format!(
                        "the swap on {destination} refused before moving anything: {err}; production is unchanged"
                    ),
                )
                .hint("someone changed the server since the preflight; `harness status webhosting` shows what is there now");
                return Err(fail_unchanged(&mut ledger, failure));
            }
            let failure = Failure::new(
                Exit::Unknown,
                format!(
                    "the swap on {destination} failed part-way: {}",
                    step_error_text(&e)
                ),
            )
            .hint(format!(
                "check on the server: does {} exist and hold a release? The previous one is {}/{}; \
             the new one may still be in {}. The lock {} is kept until you have looked \
             (then deploy again with --break-lock).",
                layout.live,
                layout.releases(),
                facts.previous_release,
                layout.staging(),
                layout.lock()
            ));
            let _ = recorder.record(&mut ledger, DeployOutcome::Unknown, None, &failure.message);
            return Err(failure);
        }
        swapped_at.set(Instant::now());
        // Old releases are pruned while Passenger's throttle runs out (the previous release is the
        // newest under releases/, so it stays for a rollback).
        let mut line = audit_line(
            &destination,
            &layout,
            &shipment,
            "deployed",
            "",
            req,
            break_lock,
        );
        if let (shared::DbState::InRelease, Some(rel), false) = (facts.db_state, &db, req.fresh_db)
        {
            line.push_str(&format!(" database moved to {}", layout.shared_db(rel)));
        }
        let (prune, finish_steps) = {
            let mut f = facts.clone();
            f.audit_line = line.clone();
            let mut all = plan::finish(&f);
            let rest = all.split_off(1);
            (all, rest)
        };
        let verified = verify_while_pruning(&prune, verify_step, &ssh, reporter, &mut check);
        if let Err((_, e)) = verified {
            let why = step_error_text(&e);
            reporter.event(&Event::Warning {
                message: format!("verification failed: {why}; rolling back"),
            });
            if !pre.live {
                let failure = Failure::new(
                Exit::Unknown,
                format!("the first release on {destination} failed verification ({why}) and there is nothing to roll back to"),
            )
            .hint(format!(
                "look at {}/app.log and the web server's error log; the lock {} stays until you deploy again with --break-lock",
                layout.live,
                layout.lock()
            ));
                let _ =
                    recorder.record(&mut ledger, DeployOutcome::Unknown, None, &failure.message);
                return Err(failure);
            }
            let rolled = swap_back_and_verify(
                &plan::rollback(&facts),
                &ssh,
                reporter,
                &mut check,
                &swapped_at,
            );
            return Err(match rolled {
                Ok(()) => {
                    let line = audit_line(
                        &destination,
                        &layout,
                        &shipment,
                        "rolled_back",
                        &why,
                        req,
                        break_lock,
                    );
                    unlock_and_audit(&ssh, &layout, &config.root, &line);
                    let _ = recorder.record(&mut ledger, DeployOutcome::RolledBack, None, &why);
                    Failure::new(
                        Exit::RolledBack,
                        format!(
                            "build {} failed verification ({why}); rolled back: {} answers again",
                            shipment.build_id,
                            pre.live_build.as_deref().unwrap_or("the previous build")
                        ),
                    )
                    .hint(format!(
                        "the failed release is kept in {}/{} (see its app.log)",
                        layout.releases(),
                        facts.failed_release
                    ))
                }
                Err((id, e)) => {
                    let msg = format!(
                        "build {} failed verification ({why}) and the rollback failed at `{id}`: {}",
                        shipment.build_id,
                        step_error_text(&e)
                    );
                    let _ = recorder.record(&mut ledger, DeployOutcome::Unknown, None, &msg);
                    Failure::new(Exit::Unknown, msg).hint(format!(
                    "check on {destination}: which release is in {} (cat {}/build_info.json); whether \
                     {}/{} still exists; {}{} answers; the web server's error log. Your backup is {}. \
                     The lock {} is kept; remove it with --break-lock when done.",
                    layout.live,
                    layout.live,
                    layout.releases(),
                    facts.previous_release,
                    probe.base,
                    probe.health_path,
                    facts.local_backup.display(),
                    layout.lock()
                ))
                }
            });
        }

        // Done: prune, unlock, audit, ledger, state.
        let release = shipment.build_id.clone();
        finish_best_effort(&finish_steps, &ssh, reporter, "deployed and verified");
        ssh.close();
        append_local_audit(&config.root, &line);
        let recorded = recorder.record(
            &mut ledger,
            DeployOutcome::Deployed,
            Some(release.clone()),
            "verified",
        );
        // Local backups and deployed packages are pruned by what the ledger says is live: not
        // while it lacks the newest deploy.
        if recorded.is_ok() {
            backup::after_retention(
                &config.root,
                &mut ledger,
                &retention.prune,
                &kept,
                wh.retention,
                reporter,
            );
            prune_deployed(&config.root, &ledger, wh.keep_releases, reporter);
        }
        update_state(config, &shipment, &destination, &layout)?;
        recorded.map_err(|lost| lost.live_but_unrecorded("deploy", &release))?;
        Ok(DeployReceipt {
            build_id: shipment.build_id.clone(),
            destination,
            remote_dir: layout.live,
            release: Some(release),
            backup: receipt_backup,
            plan: steps,
            dry_run: false,
            elapsed: started.elapsed(),
        })
    })
}

/// From the swap on, an interrupt waits until production answers (see interrupt.rs).
/// Runs `verify` while `prune` runs beside it (Passenger's restart throttle leaves the time); a
/// failed pruning is only a warning, the verification decides.
fn verify_while_pruning(
    prune: &[RemoteStep],
    verify: &[RemoteStep],
    ssh: &ssh::Ssh,
    reporter: &dyn Reporter,
    check: &mut dyn FnMut(Check) -> Result<String, Failure>,
) -> Result<(), (StepId, StepError)> {
    std::thread::scope(|inner| {
        let pruning = inner
            .spawn(|| plan::execute(prune, ssh, reporter, &mut |_| unreachable_check(), &never));
        let verified = plan::execute(verify, ssh, reporter, check, &never);
        if let Ok(Err((id, e))) = pruning.join() {
            reporter.event(&Event::Warning {
                message: format!("`{id}` failed: {}", step_error_text(&e)),
            });
        }
        verified
    })
}

/// Puts the previous state back: `steps` is a swap followed by its verification, and the clock
/// the verification counts Passenger's throttle from is reset at the swap.
fn swap_back_and_verify(
    steps: &[RemoteStep],
    ssh: &ssh::Ssh,
    reporter: &dyn Reporter,
    check: &mut dyn FnMut(Check) -> Result<String, Failure>,
    swapped_at: &std::cell::Cell<Instant>,
) -> Result<(), (StepId, StepError)> {
    let (swap, verify) = steps.split_at(steps.len() - 1);
    plan::execute(swap, ssh, reporter, &mut |_| unreachable_check(), &never)?;
    swapped_at.set(Instant::now());
    plan::execute(verify, ssh, reporter, check, &never)
}

/// After a put-back that answers: release the lock and write the audit line on the server and
/// here. Best effort: what production serves is already settled.
fn unlock_and_audit(ssh: &ssh::Ssh, layout: &Layout, root: &Path, line: &str) {
    let _ = ssh.run(&unlock_script(layout));
    let _ = ssh.run(&plan::audit(layout, line).command());
    append_local_audit(root, line);
}

/// Runs the steps after the change itself (prune, unlock, audit). Production already serves what
/// was intended, so a failure among them is a warning naming the step, not an error.
fn finish_best_effort(steps: &[RemoteStep], ssh: &ssh::Ssh, reporter: &dyn Reporter, done: &str) {
    if let Err((id, e)) = plan::execute(steps, ssh, reporter, &mut |_| unreachable_check(), &never)
    {
        reporter.event(&Event::Warning {
            message: format!("{done}, but `{id}` failed: {}", step_error_text(&e)),
        });
    }
}

fn never() -> bool {
    false
}

fn unreachable_check() -> Result<String, Failure> {
    Err(Failure::new(
        Exit::Unknown,
        "internal: a check in a step list without checks",
    ))
}

fn unlock_script(layout: &Layout) -> String {
    plan::unlock(layout, lock_token()).command()
}

fn step_error_text(e: &StepError) -> String {
    match e {
        StepError::Ssh(e) => e.to_string(),
        StepError::Check(f) => f.message.clone(),
        StepError::Interrupted => "interrupted".into(),
    }
}

fn io_failure(what: impl std::fmt::Debug, e: std::io::Error) -> Failure {
    Failure::new(Exit::Environment, format!("{what:?}: {e}"))
}

fn lock_held(stderr: &str, layout: &Layout) -> Failure {
    let details: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains('=') && !l.starts_with("lock held"))
        .collect();
    Failure::new(
        Exit::Refused,
        format!(
            "another deploy, rollback or backup holds the lock {}: {}; nothing was changed",
            layout.lock(),
            if details.is_empty() {
                "no details file".to_string()
            } else {
                details.join(", ")
            }
        ),
    )
    .hint("wait for it to finish; if that deploy is gone (a crash), run again with --break-lock")
}

/// Production's schema against the package's: the phase's detail, and whether they differ.
fn schema_check(
    snapshot: &Path,
    shipment: &Shipment,
    wh: &crate::config::WebhostingDeploy,
    fresh_db: bool,
) -> Result<(String, bool), Failure> {
    let (_, production) = crate::package::database::fingerprint_file(snapshot)?;
    let Some(package) = &shipment.schema else {
        return Ok(("the package has no database".into(), false));
    };
    if &production == package {
        return Ok((format!("schema {} unchanged", short(package)), false));
    }
    if fresh_db {
        return Ok((
            format!(
                "schema differs ({} → {}); --fresh-db installs the package's database",
                short(&production),
                short(package)
            ),
            true,
        ));
    }
    if wh.migrate_command.is_some() {
        return Ok((
            format!(
                "schema differs ({} → {}); migrate_command will run under a write pause",
                short(&production),
                short(package)
            ),
            true,
        ));
    }
    Err(Failure::new(
        Exit::Refused,
        format!(
            "production's database schema ({}) differs from the package's ({}); nothing was changed",
            short(&production),
            short(package)
        ),
    )
    .hint("configure [targets.webhosting] migrate_command, or deploy with --fresh-db to replace the database (a backup is kept)"))
}

fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

/// Copies `file` into a private folder and hashes the copy; everything after reads the copy.
fn private_copy(file: &Path) -> Result<(tempfile::TempDir, PathBuf, String), Failure> {
    let dir = tempfile::Builder::new()
        .prefix("harness-deploy-")
        .tempdir()
        .map_err(|e| io_failure("a temporary directory", e))?;
    let copy = dir.path().join("deploy.zip");
    let mut src = std::fs::File::open(file).map_err(|e| {
        Failure::new(Exit::BadInput, format!("{}: {e}", file.display()))
            .hint("pass a deploy.zip written by `harness build --target webhosting`")
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut dest = options.open(&copy).map_err(|e| io_failure(&copy, e))?;
    std::io::copy(&mut src, &mut dest).map_err(|e| io_failure(file, e))?;
    drop(dest);
    let sha256 = crate::package::sha256_file(&copy)?;
    Ok((dir, copy, sha256))
}

/// Reads a package from a private copy. Its fingerprints are recomputed from its bytes, not
/// taken from its build_info.json (the gate must decide on what will ship, and a label can
/// lie), its build id must be one harness makes for exactly those fingerprints and that build
/// time, and no file name may hold a control character. Any of that wrong is exit 2, which
/// --force never overrides.
fn read_package(config: &Config, file: &Path) -> Result<Shipment, Failure> {
    use sha2::{Digest, Sha256};
    let bad = |why: String| {
        Failure::new(Exit::BadInput, format!("{}: {why}", file.display()))
            .hint("pass a deploy.zip written by `harness build --target webhosting`")
    };
    let (private, copy, sha256) = private_copy(file)?;
    let f = std::fs::File::open(&copy).map_err(|e| bad(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a zip: {e}")))?;
    let info: Value = {
        let entry = zip
            .by_name("build_info.json")
            .map_err(|_| bad("has no build_info.json".into()))?;
        serde_json::from_reader(entry).map_err(|e| bad(format!("build_info.json: {e}")))?
    };
    let s = |v: &Value| v.as_str().map(str::to_string);
    let build_id =
        s(&info["build_id"]).ok_or_else(|| bad("build_info.json has no build_id".into()))?;
    if !crate::package::valid_build_id(&build_id) {
        return Err(bad(format!(
            "its build id {:?} is not one harness makes (<YYYYMMDD>T<HHMMSS>Z-<12 hex>); refused",
            build_id.chars().take(80).collect::<String>()
        )));
    }
    if info["target"].as_str() != Some("webhosting") {
        return Err(bad(format!(
            "it was built for {}, not webhosting",
            info["target"]
        )));
    }
    const GENERATED: [&str; 3] = ["build_info.json", "MANIFEST.json", "DEPLOY_README.md"];
    let db_path = config.database_path();
    let scratch = tempfile::tempdir().map_err(|e| io_failure("a temporary directory", e))?;
    let mut files: Vec<(String, String)> = Vec::new();
    let mut db_copy = None;
    let copies: Vec<&str> = config
        .package
        .build_info_copies
        .iter()
        .map(|c| c.get_ref().as_str())
        .collect();
    let (mut copy_bytes, mut info_bytes) = (Vec::new(), Vec::new());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| bad(e.to_string()))?.into_owned();
        if name.chars().any(char::is_control) {
            return Err(bad(format!(
                "it holds a file whose name has a control character ({name:?}); refused"
            )));
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        if db_path.as_deref() == Some(name.as_str()) {
            let p = scratch.path().join("package.db");
            std::fs::write(&p, &data).map_err(|e| io_failure(&p, e))?;
            db_copy = Some(p);
        }
        if copies.contains(&name.as_str()) {
            copy_bytes.push((name, data));
            continue;
        }
        if name == "build_info.json" {
            info_bytes = data.clone();
        }
        if GENERATED.contains(&name.as_str()) || config.package.data_files.contains(&name) {
            continue;
        }
        files.push((name, hex::encode(Sha256::digest(&data))));
    }
    // A copy is build_info.json at another path, byte for byte, or the app reads other facts
    // than the gate checked.
    for (name, data) in &copy_bytes {
        if *data != info_bytes {
            return Err(bad(format!(
                "its {name} differs from its build_info.json ([package] build_info_copies); refused"
            )));
        }
    }
    let missing: Vec<&&str> = copies
        .iter()
        .filter(|c| !copy_bytes.iter().any(|(n, _)| n == **c))
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "it lacks the build_info.json copies {missing:?} that [package] build_info_copies names; build it again"
        )));
    }
    let code =
        crate::package::fingerprint::code(files.iter().map(|(p, h)| (p.as_str(), h.as_str())));
    let schema = match &db_copy {
        Some(p) => Some(crate::package::database::fingerprint_file(p)?.1),
        None => None,
    };
    if info["fingerprints"]["scheme"].as_u64() != Some(crate::package::fingerprint::SCHEME.into()) {
        return Err(bad(format!(
            "it was built by an older harness (fingerprint scheme {}); build it again",
            info["fingerprints"]["scheme"].as_u64().unwrap_or(1)
        )));
    }
    let claimed_code = s(&info["fingerprints"]["code"]);
    let claimed_schema = s(&info["fingerprints"]["schema"]);
    if claimed_code.as_deref() != Some(code.as_str()) || claimed_schema != schema {
        return Err(bad(format!(
            "its files do not match its build_info.json (code {} vs {}, schema {} vs {}); it was changed after the build",
            short(&code),
            claimed_code.as_deref().map(short).unwrap_or("none"),
            schema.as_deref().map(short).unwrap_or("none"),
            claimed_schema.as_deref().map(short).unwrap_or("none"),
        )));
    }
    let built_at = s(&info["built_at"])
        .and_then(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp())
        .ok_or_else(|| bad("build_info.json has no valid built_at".into()))?;
    let expected =
        crate::package::expected_build_id("webhosting", &code, schema.as_deref(), built_at);
    if build_id != expected {
        return Err(bad(format!(
            "its build id {build_id} does not belong to its files and build time (they give \
             {expected}); refused"
        )));
    }
    Ok(Shipment {
        zip: copy,
        sha256,
        build_id,
        code,
        schema,
        info,
        _private: private,
    })
}

pub(crate) fn whoami() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into());
    (user, host)
}

/// This process's claim on the server's lock: unlocking removes only a lock that carries it.
pub(crate) fn lock_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| hex::encode(rand::random::<[u8; 12]>()))
}

/// The lock's details file: who holds it, since when, for what, and this process's token.
fn lock_details(action: &str, build_id: &str) -> Vec<(String, String)> {
    let (user, host) = whoami();
    vec![
        ("action".into(), action.into()),
        ("user".into(), user),
        ("host".into(), host),
        ("pid".into(), std::process::id().to_string()),
        ("time".into(), Timestamp::now().rfc3339()),
        ("build_id".into(), build_id.into()),
        ("token".into(), lock_token().into()),
    ]
}

/// One audit log line: `<time> <what> by=<user>@<host> to=<dest>:<remote_dir>`.
fn audit_text(what: &str, dest: &str, layout: &Layout) -> String {
    let (user, host) = whoami();
    format!(
        "{} {} by={user}@{host} to={dest}:{}",
        Timestamp::now().rfc3339(),
        what.replace('\n', " "),
        layout.live
    )
}

/// The overrides a command ran with, for its audit line: ` forced="REASON" allow_dirty
/// break_lock`, each only when given. Whoever reads the log later must see what was waived.
fn audit_flags(force: Option<&Force>, allow_dirty: bool, break_lock: bool) -> String {
    let mut out = String::new();
    if let Some(f) = force {
        out.push_str(&format!(" forced={:?}", f.reason()));
    }
    if allow_dirty {
        out.push_str(" allow_dirty");
    }
    if break_lock {
        out.push_str(" break_lock");
    }
    out
}

fn audit_line(
    dest: &str,
    layout: &Layout,
    s: &Shipment,
    outcome: &str,
    why: &str,
    req: &DeployRequest,
    broke_lock: bool,
) -> String {
    let mut what = format!(
        "deploy {outcome} build={} sha256={}{}",
        s.build_id,
        s.sha256,
        audit_flags(
            req.force.as_ref(),
            req.allow_dirty,
            req.break_lock || broke_lock
        )
    );
    if !why.is_empty() {
        what.push_str(&format!(" why={why}"));
    }
    audit_text(&what, dest, layout)
}

/// `[package.database] path`, when the package has a database.
/// Where a shipped package is kept: `.harness/deployed/<sha256>.zip`.
/// build_info.json of the package `zip`, when it has a readable one.
pub(crate) fn read_build_info(zip: &Path) -> Option<Value> {
    let f = std::fs::File::open(zip).ok()?;
    let mut z = zip::ZipArchive::new(f).ok()?;
    let entry = z.by_name("build_info.json").ok()?;
    serde_json::from_reader(entry).ok()
}

pub fn deployed_zip(root: &Path, sha256: &str) -> PathBuf {
    root.join(".harness")
        .join("deployed")
        .join(format!("{sha256}.zip"))
}

/// Copies the package to `dest` (unless an intact copy is there) and checks the copy's bytes: the
/// upload reads the copy, so what ships is what is kept.
fn keep_deployed_copy(s: &Shipment, dest: &Path) -> Result<(), Failure> {
    if dest.is_file() && crate::package::sha256_file(dest)? == s.sha256 {
        return Ok(());
    }
    let dir = dest.parent().expect("under .harness/deployed");
    std::fs::create_dir_all(dir).map_err(|e| io_failure(dir, e))?;
    let part = dest.with_extension("zip.part");
    std::fs::copy(&s.zip, &part).map_err(|e| io_failure(&s.zip, e))?;
    let sha = crate::package::sha256_file(&part)?;
    if sha != s.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Failure::new(
            Exit::Environment,
            format!(
                "{} changed while it was copied (sha256 {sha}, the gate checked {}); nothing was changed",
                s.zip.display(),
                s.sha256
            ),
        )
        .hint("was a build running at the same time? deploy again"));
    }
    std::fs::rename(&part, dest).map_err(|e| io_failure(dest, e))
}

/// Keeps the packages of the newest `keep_releases + 1` distinct successful deploys (the live
/// one and one per kept release) under .harness/deployed/.
fn prune_deployed(
    root: &Path,
    ledger: &crate::ledger::Ledger,
    keep_releases: u32,
    reporter: &dyn Reporter,
) {
    let keep = match ledger.recent_packages("webhosting", keep_releases as usize + 1) {
        Ok(k) => k,
        Err(e) => {
            reporter.event(&Event::Warning {
                message: format!("not pruning .harness/deployed/: {e}"),
            });
            return;
        }
    };
    let dir = root.join(".harness").join("deployed");
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(sha) = name.strip_suffix(".zip") else {
            continue;
        };
        if !keep.iter().any(|k| k == sha) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A failure before anything changed on the server. `id` is the step that failed; the caller
/// releases the lock unless that step was the lock itself (then it is someone else's).
fn unchanged_failure(id: StepId, e: StepError, layout: &Layout, state: &str) -> Failure {
    match e {
        StepError::Ssh(SshError::Remote { code, stderr, .. })
            if id == StepId::Lock && code == plan::LOCK_HELD =>
        {
            lock_held(&stderr, layout)
        }
        StepError::Ssh(e) => ssh_failure(e, state),
        StepError::Check(f) => f,
        StepError::Interrupted => Failure::new(
            Exit::Interrupted,
            format!("interrupted before `{id}`; {state} and the lock is released"),
        ),
    }
}

fn append_local_audit(root: &Path, line: &str) {
    use std::io::Write;
    let path = root.join(".harness").join("audit.log");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
}

/// What every deploy record of one `harness deploy` shares.
struct Recorder<'a> {
    root: &'a Path,
    started_at: Timestamp,
    shipment: &'a Shipment,
    gate_decision_id: i64,
    reporter: &'a dyn Reporter,
}

impl Recorder<'_> {
    fn record(
        &self,
        ledger: &mut crate::ledger::Ledger,
        outcome: DeployOutcome,
        release: Option<String>,
        detail: &str,
    ) -> Result<(), NotRecorded> {
        let rec = DeployRecord {
            started_at: self.started_at,
            finished_at: Timestamp::now(),
            target: "webhosting".into(),
            package_sha256: self.shipment.sha256.clone(),
            gate_decision_id: Some(self.gate_decision_id),
            outcome,
            release_id: release,
            detail: detail.into(),
        };
        let written = ledger.record_deploy(&rec).map(drop);
        NotRecorded::check(written, self.root, Unrecorded::Deploy(rec), self.reporter)
    }
}

/// A deploy or rollback whose outcome the ledger refused; its record waits in
/// `.harness/unrecorded/` when that could be written (see `ledger::unrecorded`).
pub(crate) struct NotRecorded {
    why: String,
    kept: Result<PathBuf, Failure>,
}

impl NotRecorded {
    /// Keeps the record when the ledger refused it, and warns.
    pub(crate) fn check(
        written: Result<(), crate::ledger::LedgerError>,
        root: &Path,
        record: Unrecorded,
        reporter: &dyn Reporter,
    ) -> Result<(), NotRecorded> {
        let Err(e) = written else { return Ok(()) };
        let lost = NotRecorded {
            why: e.to_string(),
            kept: crate::ledger::unrecorded::keep(root, &record),
        };
        reporter.event(&Event::Warning {
            message: match &lost.kept {
                Ok(path) => format!(
                    "the ledger did not take this outcome ({}); it waits in {} and is added at the next harness command",
                    lost.why,
                    path.display()
                ),
                Err(f) => format!(
                    "the ledger did not take this outcome ({}), and it could not be kept either: {}",
                    lost.why, f.message
                ),
            },
        });
        Err(lost)
    }

    /// The exit of a deploy or rollback that changed production but could not say so: the
    /// change stands, the ledger does not show it yet.
    pub(crate) fn live_but_unrecorded(self, what: &str, build: &str) -> Failure {
        let hint = match &self.kept {
            Ok(path) => format!(
                "the record waits in {}; fix the ledger (another harness holding it, a full disk, \
                 .harness/ not writable), then run `harness status webhosting`: it adds the record \
                 first. Nothing under .harness/deployed/ or .harness/backups/ was pruned.",
                path.display()
            ),
            Err(_) => format!(
                "write down that production runs {build}; fix the ledger, then check with \
                 `harness status webhosting` (it reads the build from the server). Nothing under \
                 .harness/deployed/ or .harness/backups/ was pruned."
            ),
        };
        Failure::new(
            Exit::Environment,
            format!(
                "live but unrecorded: the {what} succeeded and production runs {build}, but the ledger refused the record: {}",
                self.why
            ),
        )
        .hint(hint)
    }
}

/// Adds what production now runs to deployment_state_webhosting.json, keeping every other key.
fn update_state(config: &Config, s: &Shipment, dest: &str, layout: &Layout) -> Result<(), Failure> {
    write_state(
        config,
        json!({
            "build_id": s.build_id,
            "package_sha256": s.sha256,
            "deployed_at": Timestamp::now().rfc3339(),
            "host": dest,
            "remote_dir": layout.live,
        }),
    )
}

/// Sets `deployment` in deployment_state_webhosting.json (what production now runs), keeping
/// every other key and mode 0600.
fn write_state(config: &Config, deployment: Value) -> Result<(), Failure> {
    crate::package::secrets::set_state_key(&config.root, "webhosting", "deployment", deployment)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, finding 8: the audit line says what was waived.
    #[test]
    fn audit_lines_carry_force_and_its_reason_allow_dirty_and_break_lock() {
        let force = Force::new("hotfix \"now\"\nplease").unwrap();
        assert_eq!(
            audit_flags(Some(&force), true, true),
            " forced=\"hotfix \\\"now\\\"\\nplease\" allow_dirty break_lock"
        );
        assert_eq!(audit_flags(None, false, false), "");
        let layout = Layout::of("/home/u/app").unwrap();
        let line = audit_text(
            &format!(
                "deploy deployed build=b{}",
                audit_flags(Some(&force), false, false)
            ),
            "u@h",
            &layout,
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("forced=\"hotfix"), "{line}");
    }
}
