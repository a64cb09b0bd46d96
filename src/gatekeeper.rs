//! The gate's I/O side: gathers the facts (ledger, git, the package that would ship), asks
//! `gate::decide`, and records the decision. `harness gate` and, later, `harness deploy` call it.
//! Also the ledger's portable records: export with an optional signature, import with a verdict.
use std::path::Path;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::Reporter;
use crate::gate::{self, Force, GateDecision, GateFacts, PackageFacts};
use crate::ledger::signing::{Export, SecretKey, Trust};
use crate::ledger::{self, GateDecisionRecord, Imported, Ledger, Origin, Timestamp};

/// What the caller asks of the gate besides the rules.
#[derive(Debug, Clone, Default)]
pub struct GateRequest {
    pub allow_dirty: bool,
    pub force: Option<Force>,
}

/// A decision together with the facts it was made on and its ledger id.
#[derive(Debug, Clone)]
pub struct GateOutcome {
    pub decision: GateDecision,
    pub decision_id: i64,
    pub package_sha256: String,
    pub code_fingerprint: String,
    pub schema_fingerprint: Option<String>,
}

/// Opens the project's ledger.
pub fn open_ledger(project_root: &Path) -> Result<Ledger, Failure> {
    Ok(Ledger::open(&ledger::path_in(project_root))?)
}

/// Decides for the webhosting package that would ship now: builds it, then evaluates.
pub fn check(
    config: &Config,
    request: &GateRequest,
    reporter: &dyn Reporter,
) -> Result<GateOutcome, Failure> {
    // The ledger first: a damaged one must stop us before the build writes into .harness/.
    let mut ledger = open_ledger(&config.root)?;
    let manifest = crate::package::build(
        config,
        &crate::package::BuildRequest::standard("webhosting"),
        reporter,
    )?;
    let package = PackageFacts {
        sha256: &manifest.sha256,
        code: &manifest.fingerprints.code,
        schema: manifest.fingerprints.schema.as_deref(),
    };
    evaluate(config, &mut ledger, package, request, Timestamp::now())
}

/// Decides for a package whose facts are known, and records the decision.
pub fn evaluate(
    config: &Config,
    ledger: &mut Ledger,
    package: PackageFacts<'_>,
    request: &GateRequest,
    now: Timestamp,
) -> Result<GateOutcome, Failure> {
    let (runs, census) = ledger.gate_runs(package.code, package.schema)?;
    let tree = crate::git::tree_facts(&config.root, gate::candidate_commits(&runs, &package));
    let decision = gate::decide(&GateFacts {
        package,
        runs: &runs,
        census,
        now,
        max_age: config.gate.max_age,
        tree: &tree,
        trusted_keys: &config.gate.trusted_keys,
        allow_dirty: request.allow_dirty,
        force: request.force.as_ref(),
    });
    let decision_id = ledger.record_gate_decision(&GateDecisionRecord {
        decided_at: now,
        target: "webhosting".into(),
        package_sha256: package.sha256.into(),
        code_fingerprint: package.code.into(),
        schema_fingerprint: package.schema.map(Into::into),
        git_commit: tree.head.clone(),
        allow_dirty: request.allow_dirty,
        decision: decision.clone(),
    })?;
    Ok(GateOutcome {
        decision,
        decision_id,
        package_sha256: package.sha256.into(),
        code_fingerprint: package.code.into(),
        schema_fingerprint: package.schema.map(Into::into),
    })
}

/// The JSON `runs export` writes, signed when a key file is given.
pub fn export(ledger: &Ledger, id: i64, key_file: Option<&Path>) -> Result<String, Failure> {
    let run = ledger.run(id)?.ok_or_else(|| {
        Failure::new(
            Exit::BadInput,
            format!("no run {id} in {}", ledger.path().display()),
        )
        .hint("`harness runs` lists the recorded runs and their ids")
    })?;
    let key = key_file
        .map(|p| {
            SecretKey::read_pem(p).map_err(|e| {
                Failure::new(Exit::BadInput, e).hint(
                    "make one with `harness runs keygen FILE` or `openssl genpkey -algorithm ed25519 -out FILE`",
                )
            })
        })
        .transpose()?;
    let text = serde_json::to_string_pretty(&Export::new(&run.record, key.as_ref()))
        .expect("an export serialises");
    Ok(text + "\n")
}

/// What importing one file did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub stored: Imported,
    pub uid: String,
    pub trust: Trust,
}

/// Stores a record from an export file. Untrusted records are stored too (so `runs` shows what
/// arrived), but they never open the gate; the report says why.
pub fn import(config: &Config, ledger: &mut Ledger, file: &Path) -> Result<ImportReport, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let (record, signature) = Export::parse(&text).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("{} is not a harness run record: {e}", file.display()),
        )
        .hint("import files written by `harness runs export ID [--sign KEY]`")
    })?;
    let trust = Trust::of(signature.as_ref(), &record, &config.gate.trusted_keys);
    let origin = Origin::Imported {
        signature,
        verified: trust.counts(),
    };
    let stored = ledger.import_run(&record, &origin)?;
    Ok(ImportReport {
        stored,
        uid: record.uid,
        trust,
    })
}

/// Writes a new signing key (PKCS#8 PEM, mode 0600); refuses to overwrite an existing file.
pub fn keygen(file: &Path) -> Result<SecretKey, Failure> {
    use std::io::Write;
    let key = SecretKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file).map_err(|e| {
        let f = Failure::new(
            Exit::BadInput,
            format!("cannot create {}: {e}", file.display()),
        );
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            f.hint(
                "harness never overwrites a key; pick another file name or move the old key away",
            )
        } else {
            f
        }
    })?;
    f.write_all(key.to_pem().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot write {}: {e}", file.display()),
            )
        })?;
    Ok(key)
}

/// One line per imported file: what was stored and whether it can count.
pub fn describe_import(file: &Path, r: &ImportReport) -> String {
    let stored = match r.stored {
        Imported::New(id) => format!("imported as run {id}"),
        Imported::Replaced(id) => format!("replaced the unverified copy of run {id}"),
        Imported::AlreadyPresent(id) => format!("already in the ledger as run {id}; unchanged"),
    };
    let counts = if r.trust.counts() {
        format!("{}; it counts for the gate", r.trust.explain())
    } else {
        format!("it will not open the gate: {}", r.trust.explain())
    };
    format!("{}: {stored} ({}): {counts}", file.display(), &r.uid)
}

pub fn import_json(file: &Path, r: &ImportReport) -> serde_json::Value {
    let (stored, id) = match r.stored {
        Imported::New(id) => ("new", id),
        Imported::Replaced(id) => ("replaced", id),
        Imported::AlreadyPresent(id) => ("already_present", id),
    };
    serde_json::json!({
        "file": file,
        "run_id": id,
        "uid": r.uid,
        "stored": stored,
        "counts": r.trust.counts(),
        "trust": r.trust.explain(),
    })
}

pub fn runs_table(runs: &[ledger::StoredRun]) -> String {
    if runs.is_empty() {
        return "no runs recorded yet (harness test records them; harness runs import FILE brings \
                them from CI)\n"
            .into();
    }
    let mut out = format!(
        "{:>5}  {:<19}  {:<7}  {:<14}  {:>18}  {:<13}  {:<12}  {}\n",
        "ID",
        "FINISHED (UTC)",
        "OUTCOME",
        "SELECTION",
        "PASS/FAIL/SKIP/ERR",
        "COMMIT",
        "CODE",
        "ORIGIN"
    );
    for run in runs {
        let r = &run.record;
        let commit = r
            .git_commit
            .as_deref()
            .map(|c| c.get(..12).unwrap_or(c))
            .unwrap_or("-");
        let dirty = match r.dirty {
            Some(false) => "",
            Some(true) => "+",
            None => "?",
        };
        out.push_str(&format!(
            "{:>5}  {:<19}  {:<7}  {:<14}  {:>18}  {:<13}  {:<12}  {}\n",
            run.id,
            r.finished_at.short(),
            r.outcome.as_str(),
            r.selection.to_string(),
            format!("{}/{}/{}/{}", r.passed, r.failed, r.skipped, r.errors),
            format!("{commit}{dirty}"),
            r.code_fingerprint.get(..12).unwrap_or(&r.code_fingerprint),
            run.origin.describe(),
        ));
    }
    out
}

pub fn runs_json(runs: &[ledger::StoredRun]) -> String {
    let list: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let mut v = serde_json::to_value(&run.record).expect("a record serialises");
            v["id"] = run.id.into();
            v["origin"] = match &run.origin {
                Origin::Local => serde_json::json!({ "kind": "local" }),
                Origin::Imported {
                    signature,
                    verified,
                } => serde_json::json!({
                    "kind": "imported",
                    "signer_key_id": signature.as_ref().map(|s| s.public_key.id()),
                    "verified": verified,
                }),
            };
            v
        })
        .collect();
    serde_json::to_string_pretty(&list).expect("a list serialises")
}

pub fn decision_json(o: &GateOutcome) -> String {
    let mut v = serde_json::to_value(&o.decision).expect("a decision serialises");
    v["decision_id"] = o.decision_id.into();
    v["package"] = serde_json::json!({
        "sha256": o.package_sha256,
        "code_fingerprint": o.code_fingerprint,
        "schema_fingerprint": o.schema_fingerprint,
    });
    serde_json::to_string_pretty(&v).expect("a value serialises")
}

pub fn decision_text(o: &GateOutcome) -> String {
    let d = &o.decision;
    let mut out = format!(
        "gate webhosting: {}\n  rule     {}\n  verdict  {}\n",
        if d.open { "OPEN" } else { "CLOSED" },
        d.deciding_rule.title(),
        d.summary
    );
    out.push_str(&format!(
        "  package  sha256 {}  code {}  schema {}\n",
        o.package_sha256,
        o.code_fingerprint,
        o.schema_fingerprint.as_deref().unwrap_or("none")
    ));
    match &d.closest_run {
        Some(c) => out.push_str(&format!("  closest  {}\n", c.why)),
        None => out.push_str("  closest  none: no run is recorded\n"),
    }
    for r in &d.reasons {
        out.push_str(&format!("  - {r}\n"));
    }
    if !d.open {
        out.push_str(&format!("  next     {}\n", d.deciding_rule.remedy()));
    }
    out.push_str(&format!(
        "  (recorded as gate decision {})\n",
        o.decision_id
    ));
    out
}
