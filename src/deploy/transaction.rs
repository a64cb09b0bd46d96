//! The release transaction, written once for `deploy` and `rollback`:
//!
//! lock → prepare → swap → verify (old releases pruned meanwhile) → revert or finish → audit,
//! ledger, state file.
//!
//! Up to the swap a failure leaves production as it was: the lock is released (unless the lock
//! step itself failed: then it is someone else's), a write pause that began is undone, and the
//! failure is recorded. From the swap on, an interrupt waits until production answers
//! (`interrupt.rs`), and a release that does not answer is swapped back. What differs between a
//! deploy and a rollback (what is checked, recorded, audited and said) comes from a [`Change`].
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use super::interrupt;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::ledger::unrecorded::Unrecorded;
use crate::ledger::{BackupKind, Ledger};
use crate::remote::layout::Layout;
use crate::remote::ssh::{Ssh, SshError, failure as ssh_failure};
use crate::remote::step::{Check, RemoteStep, StepError, StepId};

/// How a transaction ended, as the ledger is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Stopped before the swap: production is unchanged.
    Failed,
    /// Production's state is not known (a swap or a put-back failed part-way).
    Unknown,
    /// The new release did not answer and the one before it answers again.
    Reverted,
    /// The new release is live and verified.
    Done,
}

/// What a deploy or a rollback supplies to the transaction.
pub(super) trait Change {
    /// `deploy` or `rollback`, as the exit of an unrecorded change names it.
    fn what(&self) -> &'static str;
    /// The build going live.
    fn build(&self) -> &str;
    /// Runs a check step of the plan. `swapped_at`: when the last swap ran (Passenger's throttle
    /// counts from there).
    fn check(&self, check: Check, swapped_at: Instant) -> Result<String, Failure>;
    /// Writes the ledger record of this outcome (kept aside when the ledger refuses it).
    fn record(
        &self,
        ledger: &mut Ledger,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), NotRecorded>;
    /// The audit log line for a change that finished (`Done`) or was put back (`Reverted`).
    fn audit_line(&self, outcome: Outcome, why: &str) -> String;
    /// The swap refused before moving anything (the server changed since the preflight).
    fn swap_refused(&self, err: &SshError) -> Failure;
    /// The swap failed part-way: what to look at on the server.
    fn swap_failed(&self, err: &str) -> Failure;
    /// The warning when verification failed and the release is about to be swapped back.
    fn verify_failed(&self, why: &str) -> String;
    /// Verification failed and there is nothing to swap back to (a first deploy).
    fn nothing_to_revert(&self, why: &str) -> Failure;
    /// Verification failed and the put-back answers (exit 5).
    fn reverted(&self, why: &str) -> Failure;
    /// Verification failed and so did the put-back, at step `id`.
    fn revert_failed(&self, why: &str, id: StepId, err: &str) -> Failure;
    /// The steps after a verified change (its audit line given): retention, unlock, audit.
    fn finish_steps(&self, line: &str) -> Vec<RemoteStep>;
    /// What a warning about a failed finishing step starts with (`deployed and verified`).
    fn done(&self) -> &'static str;
    /// Local retention, once the ledger holds the outcome.
    fn after_recorded(&self, ledger: &mut Ledger, reporter: &dyn Reporter);
    /// The state file says what production now runs.
    fn write_state(&self, ledger: &Ledger) -> Result<(), Failure>;
}

/// One piece of the work before the swap.
pub(super) enum Stage<'a> {
    /// Remote steps, run in order.
    Steps(&'a [RemoteStep]),
    /// Local work that must have passed before the next stage (the deploy's boot check).
    Local(Box<dyn FnOnce() -> Result<(), Failure> + Send + 'a>),
    /// The backup just fetched is checked against the server's file and recorded in the ledger.
    RecordBackup {
        phase: &'static str,
        spec: &'a crate::remote::backup::Backup,
        kind: BackupKind,
        live_build: Option<&'a str>,
    },
}

/// The remote side of one transaction, planned before it runs.
pub(super) struct Plan<'a> {
    pub prepare: Vec<Stage<'a>>,
    pub swap: &'a RemoteStep,
    pub verify: &'a RemoteStep,
    /// Run beside the verification (Passenger's throttle leaves the time); a failure there is a
    /// warning only.
    pub prune: Vec<RemoteStep>,
    /// A swap back and its verification; `None` when nothing was live before.
    pub revert: Option<Vec<RemoteStep>>,
    /// Undoes a write pause that began before the swap (the deploy's paused database change).
    pub undo_pause: Option<RemoteStep>,
}

/// Where the transaction runs and who hears about it.
pub(super) struct Session<'a> {
    pub ssh: Ssh,
    pub layout: &'a Layout,
    pub root: &'a Path,
    pub reporter: &'a dyn Reporter,
}

/// Runs the transaction to its end. `Ok` means the change is live, verified and recorded.
pub(super) fn run(
    session: Session<'_>,
    ledger: &mut Ledger,
    change: &dyn Change,
    plan: Plan<'_>,
) -> Result<(), Failure> {
    let clock = PauseClock::new(session.reporter);
    let result = run_timed(&session, &clock, ledger, change, plan);
    clock.report();
    session.ssh.close();
    result
}

fn run_timed(
    s: &Session<'_>,
    clock: &PauseClock<'_>,
    ledger: &mut Ledger,
    change: &dyn Change,
    plan: Plan<'_>,
) -> Result<(), Failure> {
    let reporter: &dyn Reporter = clock;
    let swapped_at = std::cell::Cell::new(Instant::now());
    let mut check = |c: Check| change.check(c, swapped_at.get());
    // Before the swap, production is unchanged: a failure releases the lock and is recorded.
    let fail_unchanged = |ledger: &mut Ledger, (id, failure): (Option<StepId>, Failure)| {
        if id != Some(StepId::Lock) {
            // A paused change that began is undone first: production takes writes again.
            if clock.began()
                && let Some(undo) = &plan.undo_pause
            {
                let _ = execute_plain(std::slice::from_ref(undo), &s.ssh, reporter);
            }
            let _ = s.ssh.run(&unlock_script(s.layout));
        }
        let _ = change.record(ledger, Outcome::Failed, &failure.message);
        failure
    };

    // From the lock on, an interrupt must clean up: it is handled between steps.
    interrupt::install();
    for stage in plan.prepare {
        let done = match stage {
            Stage::Steps(steps) => crate::remote::step::execute(
                steps,
                &s.ssh,
                reporter,
                &mut check,
                &interrupt::requested,
            )
            .map_err(|(id, e)| (Some(id), unchanged_failure(id, e, s.layout))),
            Stage::Local(work) => work().map_err(|f| (None, f)),
            Stage::RecordBackup {
                phase,
                spec,
                kind,
                live_build,
            } => crate::events::phase(reporter, phase, || {
                let rec = super::backup::record(&s.ssh, ledger, s.layout, spec, kind, live_build)?;
                Ok::<_, Failure>(((), format!("sha256 {} on both ends", rec.sha256)))
            })
            .map_err(|f| (None, f)),
        };
        if let Err(failed) = done {
            return Err(fail_unchanged(ledger, failed));
        }
    }

    // The swap.
    if let Err((_, e)) = execute_plain(std::slice::from_ref(plan.swap), &s.ssh, reporter) {
        if let StepError::Ssh(err) = &e
            && err.remote_code() == Some(crate::remote::release::SWAP_REFUSED)
        {
            return Err(fail_unchanged(ledger, (None, change.swap_refused(err))));
        }
        let failure = change.swap_failed(&step_error_text(&e));
        let _ = change.record(ledger, Outcome::Unknown, &failure.message);
        return Err(failure);
    }
    swapped_at.set(Instant::now());

    // The verification, with the pruning beside it; a release that does not answer goes back.
    let verified = verify_while_pruning(&plan.prune, plan.verify, &s.ssh, reporter, &mut check);
    if let Err((_, e)) = verified {
        let why = step_error_text(&e);
        reporter.event(&Event::Warning {
            message: change.verify_failed(&why),
        });
        let Some(revert) = &plan.revert else {
            let failure = change.nothing_to_revert(&why);
            let _ = change.record(ledger, Outcome::Unknown, &failure.message);
            return Err(failure);
        };
        let (swap_back, verify_back) = revert.split_at(revert.len() - 1);
        let reverted = execute_plain(swap_back, &s.ssh, reporter).and_then(|()| {
            swapped_at.set(Instant::now());
            crate::remote::step::execute(verify_back, &s.ssh, reporter, &mut check, &never)
        });
        return Err(match reverted {
            Ok(()) => {
                // What production serves is settled: unlock and audit are best effort.
                let line = change.audit_line(Outcome::Reverted, &why);
                let _ = s.ssh.run(&unlock_script(s.layout));
                let _ = s
                    .ssh
                    .run(&crate::remote::audit::audit(s.layout, &line).command());
                super::append_local_audit(s.root, &line);
                let _ = change.record(ledger, Outcome::Reverted, &why);
                change.reverted(&why)
            }
            Err((id, e)) => {
                let failure = change.revert_failed(&why, id, &step_error_text(&e));
                let _ = change.record(ledger, Outcome::Unknown, &failure.message);
                failure
            }
        });
    }

    // Done: retention, unlock, audit, ledger, state. Production already serves what was
    // intended, so a failed finishing step is a warning naming the step, not an error.
    let line = change.audit_line(Outcome::Done, "");
    finish_best_effort(&change.finish_steps(&line), &s.ssh, reporter, change.done());
    super::append_local_audit(s.root, &line);
    let recorded = change.record(ledger, Outcome::Done, "verified");
    // Local backups and deployed packages are pruned by what the ledger says is live: not
    // while it lacks the newest change.
    if recorded.is_ok() {
        change.after_recorded(ledger, reporter);
    }
    change.write_state(ledger)?;
    recorded.map_err(|lost| lost.live_but_unrecorded(change.what(), change.build()))
}

/// Runs `verify` while `prune` runs beside it; a failed pruning is only a warning, the
/// verification decides.
fn verify_while_pruning(
    prune: &[RemoteStep],
    verify: &RemoteStep,
    ssh: &Ssh,
    reporter: &dyn Reporter,
    check: &mut dyn FnMut(Check) -> Result<String, Failure>,
) -> Result<(), (StepId, StepError)> {
    std::thread::scope(|inner| {
        let pruning = inner.spawn(|| execute_plain(prune, ssh, reporter));
        let verified = crate::remote::step::execute(
            std::slice::from_ref(verify),
            ssh,
            reporter,
            check,
            &never,
        );
        if let Ok(Err((id, e))) = pruning.join() {
            reporter.event(&Event::Warning {
                message: format!("`{id}` failed: {}", step_error_text(&e)),
            });
        }
        verified
    })
}

/// Runs the steps after the change itself (retention, unlock, audit). Production already serves
/// what was intended, so a failure among them is a warning naming the step, not an error.
pub(super) fn finish_best_effort(
    steps: &[RemoteStep],
    ssh: &Ssh,
    reporter: &dyn Reporter,
    done: &str,
) {
    if let Err((id, e)) = execute_plain(steps, ssh, reporter) {
        reporter.event(&Event::Warning {
            message: format!("{done}, but `{id}` failed: {}", step_error_text(&e)),
        });
    }
}

/// Runs steps that hold no check and that an interrupt does not stop (from the swap on, and the
/// cleanup after a failure).
pub(super) fn execute_plain(
    steps: &[RemoteStep],
    ssh: &Ssh,
    reporter: &dyn Reporter,
) -> Result<(), (StepId, StepError)> {
    crate::remote::step::execute(steps, ssh, reporter, &mut |_| unreachable_check(), &never)
}

fn never() -> bool {
    false
}

pub(super) fn unreachable_check() -> Result<String, Failure> {
    Err(Failure::new(
        Exit::Unknown,
        "internal: a check in a step list without checks",
    ))
}

pub(super) fn unlock_script(layout: &Layout) -> String {
    crate::remote::lock::unlock(layout, super::lock_token()).command()
}

pub(super) fn step_error_text(e: &StepError) -> String {
    match e {
        StepError::Ssh(e) => e.to_string(),
        StepError::Check(f) => f.message.clone(),
        StepError::Interrupted => "interrupted".into(),
    }
}

/// A failure before anything changed on the server, at step `id`.
pub(super) fn unchanged_failure(id: StepId, e: StepError, layout: &Layout) -> Failure {
    let state = "production is unchanged";
    match e {
        StepError::Ssh(SshError::Remote { code, stderr, .. })
            if id == StepId::Lock && code == crate::remote::lock::LOCK_HELD =>
        {
            lock_held(&stderr, layout)
        }
        StepError::Ssh(e) if id == StepId::Migrate => Failure::new(
            Exit::Refused,
            format!(
                "the schema differs and migrate_command failed on a copy of production's database; {state}: {e}"
            ),
        ),
        StepError::Ssh(e) => ssh_failure(e, state),
        StepError::Check(f) => f,
        StepError::Interrupted => Failure::new(
            Exit::Interrupted,
            format!("interrupted before `{id}`; {state} and the lock is released"),
        ),
    }
}

/// Someone else holds the lock: who, since when, for what (its details file).
pub(super) fn lock_held(stderr: &str, layout: &Layout) -> Failure {
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

/// Passes every event on, and notes when the write pause began (`pause` started) and ended
/// (`resume` or `undo-database` finished): the transaction says how long writes were refused.
struct PauseClock<'a> {
    inner: &'a dyn Reporter,
    began: Mutex<Option<Instant>>,
    ended: Mutex<Option<Instant>>,
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
        match (began, ended) {
            (Some(b), Some(e)) => self.inner.event(&Event::Note {
                message: format!(
                    "writes were paused for {:.1} s (503 with Retry-After, the database fenced); reads went on",
                    e.duration_since(b).as_secs_f64()
                ),
            }),
            (Some(b), None) => self.inner.event(&Event::Warning {
                message: format!(
                    "writes were paused {:.1} s ago and the pause did not end: production refuses writes \
                     until the next deploy or rollback ends it (its `recover` step, right after the lock)",
                    b.elapsed().as_secs_f64()
                ),
            }),
            _ => {}
        }
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

/// A deploy or rollback whose outcome the ledger refused; its record waits in
/// `.harness/unrecorded/` when that could be written (see `ledger::unrecorded`).
pub(crate) struct NotRecorded {
    why: String,
    kept: Result<std::path::PathBuf, Failure>,
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
