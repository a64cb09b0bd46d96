//! `harness deploy webhosting`: only gated bytes reach production, a deploy never loses data, and
//! a release that does not answer is swapped back automatically.
//!
//! The bytes (a private copy, fingerprints recomputed) → the gate → the boot check, beside the
//! SSH preflight and the schema check → the planned remote steps (`plan.rs`), run by the release
//! transaction (`transaction.rs`) with the checks this file supplies.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::plan::{self, Facts};
use super::remote::{Preflight, Remote};
use super::transaction::{self, Change, NotRecorded, Outcome, Stage};
use super::{backup, boot, io_failure, shared, short};
use crate::config::{Config, WebhostingDeploy};
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::gate::{Force, PackageFacts};
use crate::ledger::unrecorded::Unrecorded;
use crate::ledger::{BackupKind, DeployOutcome, DeployRecord, Ledger};
use crate::model::build::{BuildId, BuildInfo};
use crate::model::release_name;
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;
use crate::probe as verify;
use crate::remote::ssh::failure as ssh_failure;
use crate::remote::step::{Check, RemoteStep, StepId};

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
    info: BuildInfo,
    _private: tempfile::TempDir,
}

pub fn deploy(
    config: &Config,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<DeployReceipt, Failure> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let remote = Remote::of(config)?;
    let layout = &remote.layout;
    remote.url()?;
    let wh = config.webhosting_deploy();

    // 1. The bytes and the gate.
    let shipment = shipment(config, req, reporter)?;
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let gate_decision_id = gate(config, &mut ledger, &shipment, req, reporter)?;

    // 2. The exact zip boots in the app image, in parallel with the read-only SSH work; it must
    // have passed before the upload.
    // The boot container's removal overlaps the upload; `booted` waits for it when dropped, at
    // the end of the deploy.
    let booted = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        let boot = scope.spawn(|| boot_check(config, &shipment, req, reporter));
        let booted = &booted;
        let join_boot = move || -> Result<(), Failure> {
            let passed = boot.join().unwrap_or_else(|_| {
                Err(Failure::new(Exit::Environment, "the boot check panicked"))
            })?;
            *booted.lock().expect("boot check") = passed;
            Ok(())
        };

        // 3. One SSH connection for everything else: preflight, schema, the plan.
        let db = config.database_path();
        let (ssh, pre) = remote.open(&wh, db.as_deref(), reporter)?;
        let break_lock = pre.break_lock(req.break_lock, reporter);
        let scratch = tempfile::tempdir().map_err(|e| io_failure("a temporary directory", e))?;
        pre.check(
            layout,
            break_lock,
            Some(&shipment.zip),
            &remote.destination,
            "a deploy",
        )?;
        let schema_differs = preflight_schema(
            &ssh,
            &pre,
            &layout.live,
            (config, req, &shipment),
            scratch.path(),
            reporter,
        )?;
        let plan_of = planned(
            config,
            req,
            &shipment,
            &pre,
            (break_lock, schema_differs),
            scratch.path(),
            layout,
        );
        let facts = &plan_of.facts;
        let steps = plan::plan(facts);
        let receipt = |release: Option<String>, dry_run: bool| DeployReceipt {
            build_id: shipment.build_id.clone(),
            destination: remote.destination.clone(),
            remote_dir: layout.live.clone(),
            release,
            backup: pre
                .live
                .then(|| facts.local_backup.clone())
                .filter(|_| !dry_run),
            plan: steps.clone(),
            dry_run,
            elapsed: started.elapsed(),
        };
        if req.dry_run {
            join_boot()?;
            return Ok(receipt(None, true));
        }
        let local_backups = backup::local_dir(&config.root);
        std::fs::create_dir_all(&local_backups).map_err(|e| io_failure(&local_backups, e))?;
        keep_deployed_copy(&shipment, &facts.zip)?;

        // 4. The transaction, with this deploy's checks, records and texts.
        let probe = remote.probe(config, &wh)?;
        // A `contains` probe checks a rollback against the live release's own build_info.json.
        let live_info = pre
            .live
            .then(|| super::remote::probe_info(&probe, &ssh, &layout.live))
            .flatten();
        let change = Deploy {
            config,
            req,
            wh: &wh,
            shipment: &shipment,
            plan: &plan_of,
            pre: &pre,
            probe: &probe,
            live_info,
            destination: &remote.destination,
            break_lock,
            started_at,
            gate_decision_id,
            reporter,
        };
        let session = transaction::Session {
            ssh,
            layout,
            root: &config.root,
            reporter,
        };
        let plan = change.transaction(&steps, Box::new(join_boot));
        transaction::run(session, &mut ledger, &change, plan)?;
        Ok(receipt(Some(shipment.build_id.clone()), false))
    })
}

/// Where step `id` is in a plan that has it.
fn at(steps: &[RemoteStep], id: StepId) -> usize {
    steps
        .iter()
        .position(|s| s.id == id)
        .expect("the plan has the step")
}

/// The package to ship: `--package`, or one built now (read back like any other package: a
/// build running beside this deploy may replace .harness/dist/ at any moment, so what ships is
/// the copy checked here).
fn shipment(
    config: &Config,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<Shipment, Failure> {
    match &req.package {
        Some(file) => read_package(config, file),
        None => {
            let built = crate::gatekeeper::build(
                config,
                &crate::package::BuildRequest {
                    reseed: req.reseed,
                    ..crate::package::BuildRequest::standard(Target::Webhosting)
                },
                reporter,
            )?;
            read_package(config, &built.zip)
        }
    }
}

/// The gate decides on the bytes that ship; a refusal changes nothing. Returns its decision id.
fn gate(
    config: &Config,
    ledger: &mut Ledger,
    shipment: &Shipment,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<i64, Failure> {
    let outcome = crate::events::phase(reporter, "gate", || {
        let outcome = crate::gatekeeper::evaluate(
            config,
            ledger,
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
    Ok(outcome.decision_id)
}

/// The exact zip boots in the app image. A forced deploy is forced past it too (the gate
/// decision records the reason); it still runs, so the warning says what production is about
/// to get.
fn boot_check(
    config: &Config,
    shipment: &Shipment,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<Option<boot::Booted>, Failure> {
    crate::events::phase(reporter, "boot-check", || {
        match boot::check(config, &shipment.zip, &shipment.build_id, reporter) {
            Ok(b) => {
                let detail = b.detail.clone();
                Ok((Some(b), detail))
            }
            Err(f) if req.force.is_some() => {
                reporter.event(&Event::Warning {
                    message: format!("--force: deploying although {}", f.message),
                });
                Ok((None, "failed, forced past it".to_string()))
            }
            Err(f) => Err(f),
        }
    })
}

/// The schema is checked before the lock too, from a throwaway snapshot, so a refusal changes
/// nothing at all; the plan depends on it (a migration pauses writes), and the same check under
/// the lock, on the backup's copy, refuses if it no longer agrees. Whether the schemas differ.
fn preflight_schema(
    ssh: &crate::remote::ssh::Ssh,
    pre: &Preflight,
    live: &str,
    change: (&Config, &DeployRequest, &Shipment),
    scratch: &Path,
    reporter: &dyn Reporter,
) -> Result<bool, Failure> {
    let (config, req, shipment) = change;
    let (true, Some(db)) = (pre.live_db, config.database_path()) else {
        return Ok(false);
    };
    crate::events::phase(reporter, "schema", || {
        let snap = scratch.join("preflight.db");
        ssh.run_to_file(
            &crate::remote::sqlite::to_stdout(&format!("{live}/{db}")),
            &snap,
        )
        .map_err(|e| ssh_failure(e, "nothing was changed"))?;
        let (detail, differs) =
            schema_check(&snap, shipment, &config.webhosting_deploy(), req.fresh_db)?;
        Ok::<_, Failure>((differs, detail))
    })
}

/// What the plan and the finish of one deploy depend on, gathered before anything changes.
struct Planned {
    facts: Facts,
    /// The builds whose releases (and newest database backup) stay after this deploy.
    kept: Vec<String>,
    retention: super::retention::Plan,
    /// The backup of the live release, when there is one.
    backup: Option<crate::remote::backup::Backup>,
}

fn planned(
    config: &Config,
    req: &DeployRequest,
    shipment: &Shipment,
    pre: &Preflight,
    (break_lock, schema_differs): (bool, bool),
    scratch: &Path,
    layout: &crate::remote::layout::Layout,
) -> Planned {
    let wh = config.webhosting_deploy();
    let backup_name = backup::new_name(pre.live_build.as_deref());
    // What stays on the server once this deploy is through: the releases after pruning (the
    // live one joins them) and, by retention, the backups; the newest backup of each kept
    // release is its database, which rollback --with-db restores, so it stays.
    let outgoing = pre
        .live
        .then_some((backup_name.as_str(), pre.live_build.as_deref()));
    let kept = backup::kept_builds(
        Some(&shipment.build_id),
        &pre.kept_after(outgoing, wh.keep_releases),
    );
    let retention = backup::server_plan(
        pre,
        pre.live.then_some(backup_name.as_str()),
        &kept,
        wh.retention,
    );
    let facts = Facts {
        layout: layout.clone(),
        build_id: shipment.build_id.clone(),
        // Shipped from its copy under .harness/deployed/, which `parity --remote` reads later.
        zip: super::deployed_zip(&config.root, &shipment.sha256),
        zip_sha256: shipment.sha256.clone(),
        db: config.database_path(),
        live_exists: pre.live,
        db_state: shared::DbState::of(pre.live_db, pre.db_shared),
        schema_differs,
        paused: pre.paused,
        version: config.stack.version_probe(),
        previous_release: backup_name.clone(),
        failed_release: release_name::failed(&backup_name, &shipment.build_id)
            .expect("a new name has a stamp"),
        backup_name: backup_name.clone(),
        local_backup: backup::local_path(&config.root, &backup_name),
        local_db_snapshot: scratch.join("production.db"),
        prune_releases: pre
            .releases_to_prune(pre.live.then_some(backup_name.as_str()), wh.keep_releases),
        prune_backups: retention.prune.clone(),
        fresh_db: req.fresh_db,
        preserve_secret_key: req.preserve_secret_key,
        break_lock,
        migrate_command: wh.migrate_command.clone(),
        lock_details: super::lock_details("deploy", &shipment.build_id),
        audit_line: String::new(),
    };
    let backup = pre.live.then(|| crate::remote::backup::Backup {
        name: facts.backup_name.clone(),
        db: facts.db.clone().filter(|_| pre.live_db),
        local: facts.local_backup.clone(),
        keep_db_snapshot: true,
    });
    Planned {
        facts,
        kept,
        retention,
        backup,
    }
}

/// One deploy, as the release transaction sees it.
struct Deploy<'a> {
    config: &'a Config,
    req: &'a DeployRequest,
    wh: &'a WebhostingDeploy,
    shipment: &'a Shipment,
    plan: &'a Planned,
    pre: &'a Preflight,
    probe: &'a verify::Probe,
    /// The live release's build_info.json, for a `contains` probe of a swap back.
    live_info: Option<BuildInfo>,
    destination: &'a str,
    break_lock: bool,
    started_at: Timestamp,
    gate_decision_id: i64,
    reporter: &'a dyn Reporter,
}

impl<'a> Deploy<'a> {
    /// The transaction of `steps`: everything before the upload, the boot check (which must have
    /// passed), the rest up to the swap, and the backup's record when something was live.
    fn transaction<'s>(
        &'s self,
        steps: &'s [RemoteStep],
        boot: Box<dyn FnOnce() -> Result<(), Failure> + Send + 's>,
    ) -> transaction::Plan<'s> {
        let facts = &self.plan.facts;
        let (upload_at, swap_at) = (at(steps, StepId::Upload), at(steps, StepId::Swap));
        let mut prepare = vec![
            Stage::Steps(&steps[..upload_at]),
            Stage::Local(boot),
            Stage::Steps(&steps[upload_at..swap_at]),
        ];
        if let Some(spec) = &self.plan.backup {
            prepare.push(Stage::RecordBackup {
                phase: "check-backup",
                spec,
                kind: BackupKind::Deploy,
                live_build: self.pre.live_build.as_deref(),
            });
        }
        transaction::Plan {
            prepare,
            swap: &steps[swap_at],
            verify: &steps[swap_at + 1],
            // The previous release is the newest under releases/, so it stays for a rollback.
            prune: vec![crate::remote::release::prune_releases(
                &facts.layout,
                &facts.prune_releases,
            )],
            revert: self.pre.live.then(|| plan::rollback(facts)),
            undo_pause: plan::undo_before_swap(facts),
        }
    }

    fn layout(&self) -> &crate::remote::layout::Layout {
        &self.plan.facts.layout
    }

    /// Under the lock: the schema on the backup's copy must still be what the preflight saw.
    fn schema_again(&self) -> Result<String, Failure> {
        let facts = &self.plan.facts;
        let (detail, differs) = schema_check(
            &facts.local_db_snapshot,
            self.shipment,
            self.wh,
            self.req.fresh_db,
        )?;
        if differs != facts.schema_differs {
            return Err(Failure::new(
                Exit::Refused,
                "production's database schema changed between the preflight and the lock; nothing was changed",
            )
            .hint("someone migrated production meanwhile: run the deploy again"));
        }
        Ok(detail)
    }

    /// After migrate_command: the staged database's fingerprint must now be the package's.
    fn migrated_schema(&self) -> Result<String, Failure> {
        let snapshot = plan::migrated_snapshot(&self.plan.facts);
        let (_, fp) = crate::package::database::fingerprint_file(&snapshot)?;
        if Some(&fp) == self.shipment.schema.as_ref() {
            return Ok(format!("migrated schema {} = the package's", short(&fp)));
        }
        Err(Failure::new(
            Exit::Refused,
            format!(
                "after migrate_command the schema is {}, the package's is {}; production is unchanged",
                short(&fp),
                self.shipment.schema.as_deref().map(short).unwrap_or("none")
            ),
        )
        .hint("fix migrate_command so it brings production's schema to the package's"))
    }
}

impl Change for Deploy<'_> {
    fn what(&self) -> &'static str {
        "deploy"
    }

    fn build(&self) -> &str {
        &self.shipment.build_id
    }

    fn check(&self, check: Check, swapped_at: Instant) -> Result<String, Failure> {
        match check {
            Check::Schema => self.schema_again(),
            Check::MigratedSchema => self.migrated_schema(),
            Check::Verify => self.probe.until(
                verify::Expected {
                    build_id: &self.shipment.build_id,
                    info: Some(&self.shipment.info),
                },
                swapped_at,
            ),
            Check::VerifyRollback => match &self.pre.live_build {
                Some(old) => self.probe.until(
                    verify::Expected {
                        build_id: old,
                        info: self.live_info.as_ref(),
                    },
                    swapped_at,
                ),
                None => Err(Failure::new(
                    Exit::Unknown,
                    "the previous release has no build id to verify",
                )),
            },
        }
    }

    fn record(
        &self,
        ledger: &mut Ledger,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), NotRecorded> {
        let rec = DeployRecord {
            started_at: self.started_at,
            finished_at: Timestamp::now(),
            target: Target::Webhosting.as_str().into(),
            package_sha256: self.shipment.sha256.clone(),
            gate_decision_id: Some(self.gate_decision_id),
            outcome: match outcome {
                Outcome::Failed => DeployOutcome::Failed,
                Outcome::Unknown => DeployOutcome::Unknown,
                Outcome::Reverted => DeployOutcome::RolledBack,
                Outcome::Done => DeployOutcome::Deployed,
            },
            release_id: (outcome == Outcome::Done).then(|| self.shipment.build_id.clone()),
            detail: detail.into(),
        };
        let written = ledger.record_deploy(&rec).map(drop);
        NotRecorded::check(
            written,
            &self.config.root,
            Unrecorded::Deploy(rec),
            self.reporter,
        )
    }

    fn audit_line(&self, outcome: Outcome, why: &str) -> String {
        let mut what = format!(
            "deploy {} build={} sha256={}{}",
            if outcome == Outcome::Done {
                "deployed"
            } else {
                "rolled_back"
            },
            self.shipment.build_id,
            self.shipment.sha256,
            super::audit_flags(
                self.req.force.as_ref(),
                self.req.allow_dirty,
                self.req.break_lock || self.break_lock
            )
        );
        if !why.is_empty() {
            what.push_str(&format!(" why={why}"));
        }
        let facts = &self.plan.facts;
        if let (Outcome::Done, shared::DbState::InRelease, Some(rel), false) =
            (outcome, facts.db_state, &facts.db, self.req.fresh_db)
        {
            what.push_str(&format!(
                " database moved to {}",
                facts.layout.shared_db(rel)
            ));
        }
        super::audit_text(&what, self.destination, self.layout())
    }

    fn swap_refused(&self, err: &crate::remote::ssh::SshError) -> Failure {
        Failure::new(
            Exit::Environment,
            format!(
                "the swap on {} refused before moving anything: {err}; production is unchanged",
                self.destination
            ),
        )
        .hint("someone changed the server since the preflight; `harness status webhosting` shows what is there now")
    }

    fn swap_failed(&self, err: &str) -> Failure {
        let l = self.layout();
        Failure::new(
            Exit::Unknown,
            format!("the swap on {} failed part-way: {err}", self.destination),
        )
        .hint(format!(
            "check on the server: does {} exist and hold a release? The previous one is {}/{}; \
             the new one may still be in {}. The lock {} is kept until you have looked \
             (then deploy again with --break-lock).",
            l.live,
            l.releases(),
            self.plan.facts.previous_release,
            l.staging(),
            l.lock()
        ))
    }

    fn verify_failed(&self, why: &str) -> String {
        format!("verification failed: {why}; rolling back")
    }

    fn nothing_to_revert(&self, why: &str) -> Failure {
        Failure::new(
            Exit::Unknown,
            format!(
                "the first release on {} failed verification ({why}) and there is nothing to roll back to",
                self.destination
            ),
        )
        .hint(format!(
            "look at {}/app.log and the web server's error log; the lock {} stays until you deploy again with --break-lock",
            self.layout().live,
            self.layout().lock()
        ))
    }

    fn reverted(&self, why: &str) -> Failure {
        Failure::new(
            Exit::RolledBack,
            format!(
                "build {} failed verification ({why}); rolled back: {} answers again",
                self.shipment.build_id,
                self.pre
                    .live_build
                    .as_deref()
                    .unwrap_or("the previous build")
            ),
        )
        .hint(format!(
            "the failed release is kept in {}/{} (see its app.log)",
            self.layout().releases(),
            self.plan.facts.failed_release
        ))
    }

    fn revert_failed(&self, why: &str, id: StepId, err: &str) -> Failure {
        let (l, facts) = (self.layout(), &self.plan.facts);
        Failure::new(
            Exit::Unknown,
            format!(
                "build {} failed verification ({why}) and the rollback failed at `{id}`: {err}",
                self.shipment.build_id
            ),
        )
        .hint(format!(
            "check on {}: which release is in {} (cat {}/build_info.json); whether \
             {}/{} still exists; {}{} answers; the web server's error log. Your backup is {}. \
             The lock {} is kept; remove it with --break-lock when done.",
            self.destination,
            l.live,
            l.live,
            l.releases(),
            facts.previous_release,
            self.probe.base,
            self.probe.health_path,
            facts.local_backup.display(),
            l.lock()
        ))
    }

    fn finish_steps(&self, line: &str) -> Vec<RemoteStep> {
        let mut facts = self.plan.facts.clone();
        facts.audit_line = line.to_string();
        // Its first step, the pruning of releases, ran beside the verification.
        plan::finish(&facts).split_off(1)
    }

    fn done(&self) -> &'static str {
        "deployed and verified"
    }

    fn after_recorded(&self, ledger: &mut Ledger, reporter: &dyn Reporter) {
        let root = &self.config.root;
        let pruned = &self.plan.retention.prune;
        backup::after_retention(
            root,
            ledger,
            pruned,
            &self.plan.kept,
            self.wh.retention,
            reporter,
        );
        prune_deployed(root, ledger, self.wh.keep_releases, reporter);
    }

    /// Adds what production now runs to deployment_state_webhosting.json, keeping every other
    /// key.
    fn write_state(&self, _: &Ledger) -> Result<(), Failure> {
        super::write_state(
            self.config,
            json!({
                "build_id": self.shipment.build_id,
                "package_sha256": self.shipment.sha256,
                "deployed_at": Timestamp::now().rfc3339(),
                "host": self.destination,
                "remote_dir": self.layout().live,
            }),
        )
    }
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
    let info = {
        let mut entry = zip
            .by_name("build_info.json")
            .map_err(|_| bad("has no build_info.json".into()))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)
            .map_err(|e| bad(format!("build_info.json: {e}")))?;
        BuildInfo::parse(&bytes).map_err(|e| bad(format!("build_info.json: {e}")))?
    };
    if info.build_id.is_empty() {
        return Err(bad("build_info.json has no build_id".into()));
    }
    let Some(build_id) = BuildId::parse(&info.build_id) else {
        return Err(bad(format!(
            "its build id {:?} is not one harness makes (<YYYYMMDD>T<HHMMSS>Z-<12 hex>); refused",
            info.build_id.chars().take(80).collect::<String>()
        )));
    };
    if info.target != Target::Webhosting.as_str() {
        return Err(bad(format!(
            "it was built for {:?}, not webhosting",
            info.target
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
    let claimed = &info.fingerprints;
    if claimed.scheme != u64::from(crate::package::fingerprint::SCHEME) {
        return Err(bad(format!(
            "it was built by an older harness (fingerprint scheme {}); build it again",
            claimed.scheme
        )));
    }
    let (claimed_code, claimed_schema) = (&claimed.code, &claimed.schema);
    if claimed_code.as_deref() != Some(code.as_str()) || *claimed_schema != schema {
        return Err(bad(format!(
            "its files do not match its build_info.json (code {} vs {}, schema {} vs {}); it was changed after the build",
            short(&code),
            claimed_code.as_deref().map(short).unwrap_or("none"),
            schema.as_deref().map(short).unwrap_or("none"),
            claimed_schema.as_deref().map(short).unwrap_or("none"),
        )));
    }
    let built_at = time::OffsetDateTime::parse(
        &info.built_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
    .map(|t| t.unix_timestamp())
    .ok_or_else(|| bad("build_info.json has no valid built_at".into()))?;
    let expected =
        crate::package::expected_build_id(Target::Webhosting, &code, schema.as_deref(), built_at);
    if build_id.as_str() != expected {
        return Err(bad(format!(
            "its build id {build_id} does not belong to its files and build time (they give \
             {expected}); refused"
        )));
    }
    Ok(Shipment {
        zip: copy,
        sha256,
        build_id: build_id.as_str().to_string(),
        code,
        schema,
        info,
        _private: private,
    })
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
    let keep = match ledger.recent_packages(Target::Webhosting, keep_releases as usize + 1) {
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
