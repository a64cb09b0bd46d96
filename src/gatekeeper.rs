//! The gate's I/O side: gathers the facts (ledger, git, the package that would ship), asks
//! `gate::decide`, and records the decision. `harness gate` and, later, `harness deploy` call it.
//! Also the ledger's portable records: export with an optional signature, import with a verdict.
use std::path::Path;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::Reporter;
use crate::gate::{self, Force, GateDecision, GateFacts, PackageFacts};
use crate::ledger::signing::{Export, SecretKey, Trust};
use crate::ledger::{self, GateDecisionRecord, Imported, Ledger};
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;

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

/// Opens the project's ledger, adding the deploys and rollbacks an earlier command could not
/// record (`ledger::unrecorded`). A ledger that still refuses them is no reason to stop a
/// command that only reads; the records wait for the next open.
pub fn open_ledger(project_root: &Path) -> Result<Ledger, Failure> {
    let mut ledger = Ledger::open(&ledger::path_in(project_root))?;
    let _ = ledger::unrecorded::replay(project_root, &mut ledger);
    Ok(ledger)
}

/// Builds a package (`package::build`) and records the build in the ledger: the deploy gate lets
/// only bytes harness built here ship, bound to the tree they came from. Not recording them is no
/// reason to fail the build; that package just cannot be deployed, and a warning says so.
pub fn build(
    config: &Config,
    request: &crate::package::BuildRequest,
    reporter: &dyn Reporter,
) -> Result<crate::package::PackageManifest, Failure> {
    let m = crate::package::build(config, request, reporter)?;
    let recorded = open_ledger(&config.root).and_then(|mut l| {
        l.record_build(&crate::ledger::BuildRecord {
            sha256: m.sha256.clone(),
            target: m.target.clone(),
            build_id: m.build_id.clone(),
            code_fingerprint: m.fingerprints.code.clone(),
            schema_fingerprint: m.fingerprints.schema.clone(),
            git_commit: m.git_commit.clone(),
            dirty: m.dirty,
        })
        .map_err(Failure::from)
    });
    if let Err(e) = recorded {
        reporter.event(&crate::events::Event::Warning {
            message: format!(
                "the build was not recorded in the ledger, so `harness deploy` will refuse it: {e}"
            ),
        });
    }
    Ok(m)
}

/// Decides for the webhosting package that would ship now: builds it, then evaluates.
pub fn check(
    config: &Config,
    request: &GateRequest,
    reporter: &dyn Reporter,
) -> Result<GateOutcome, Failure> {
    // The ledger first: a damaged one must stop us before the build writes into .harness/.
    let mut ledger = open_ledger(&config.root)?;
    let manifest = build(
        config,
        &crate::package::BuildRequest::standard(Target::Webhosting),
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
    // Only a build of these bytes for this target counts.
    let build = ledger
        .build_of(package.sha256)?
        .filter(|b| b.target == Target::Webhosting.as_str());
    let mut commits = gate::candidate_commits(&runs, &package);
    if let Some(c) = build.as_ref().and_then(|b| b.git_commit.as_deref()) {
        commits.insert(c);
    }
    let tree = crate::git::tree_facts(&config.root, commits);
    let decision = gate::decide(&GateFacts {
        package,
        built: build.as_ref().map(|b| gate::BuildFacts {
            git_commit: b.git_commit.as_deref(),
            dirty: b.dirty,
        }),
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
        target: Target::Webhosting.as_str().into(),
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
    /// What the run as now stored (with every signature it has) amounts to for the gate; `None`
    /// for a run this ledger recorded itself, which needs no signature.
    pub trust: Option<Trust>,
    /// Everyone who signed it, as `harness runs` shows them.
    pub signers: String,
}

/// Stores a record from an export file. Untrusted records are stored too (so `runs` shows what
/// arrived), but they never open the gate; the report says why. A record that differs from
/// what its own signature covers, or from a signed copy already stored, is refused and stored
/// nowhere (exit 2).
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
    if let Some(sig) = &signature
        && !sig.matches(&record)
    {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{}: run {} differs from what its signature (key {}) covers: it was changed after \
                 signing; refused, nothing stored",
                file.display(),
                record.uid,
                sig.public_key.id()
            ),
        )
        .hint("import the file exactly as `harness runs export --sign` wrote it"));
    }
    let stored = ledger
        .import_run(&record, signature.as_ref())?
        .map_err(|c| {
            Failure::new(
                Exit::BadInput,
                format!(
                    "{}: run {} is already in the ledger as run {} ({}), and this copy differs in {}; \
                     refused, nothing stored",
                    file.display(),
                    record.uid,
                    c.id,
                    c.stored,
                    if c.fields.is_empty() {
                        "its content".to_string()
                    } else {
                        c.fields.join(", ")
                    }
                ),
            )
            .hint(
                "two copies of one run must be the same record; only a signed copy replaces an \
                 unsigned import. Export the run again from where it was recorded",
            )
        })?;
    let id = match stored {
        Imported::New(id)
        | Imported::AlreadyPresent(id)
        | Imported::SignatureAdded(id)
        | Imported::Upgraded(id) => id,
    };
    let run = ledger.run(id)?.ok_or_else(|| {
        Failure::new(
            Exit::Environment,
            format!(
                "run {id} vanished from {} while importing",
                ledger.path().display()
            ),
        )
    })?;
    let trust = match run.origin {
        ledger::Origin::Local => None,
        ledger::Origin::Imported => Some(Trust::of_all(
            &run.signatures,
            &run.record,
            &config.gate.trusted_keys,
        )),
    };
    Ok(ImportReport {
        stored,
        uid: record.uid,
        trust,
        signers: run.describe(),
    })
}

impl ImportReport {
    pub fn counts(&self) -> bool {
        self.trust.as_ref().is_none_or(Trust::counts)
    }

    pub fn explain(&self) -> String {
        self.trust
            .as_ref()
            .map_or("it was recorded here".into(), Trust::explain)
    }
}

/// The export files named on the command line: files as given, folders searched (recursively,
/// sorted) for `*.json`, as CI artifacts arrive. A folder with none is an error.
pub fn import_files(paths: &[std::path::PathBuf]) -> Vec<Result<std::path::PathBuf, Failure>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(Ok(p.clone()));
            continue;
        }
        let mut found: Vec<std::path::PathBuf> = walkdir::WalkDir::new(p)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json")
            })
            .map(|e| e.into_path())
            .collect();
        found.sort();
        if found.is_empty() {
            out.push(Err(Failure::new(
                Exit::BadInput,
                format!("{} holds no .json run records", p.display()),
            )
            .hint(
                "point at the files `harness runs export` wrote, or the folder they are in",
            )));
        }
        out.extend(found.into_iter().map(Ok));
    }
    out
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
        Imported::SignatureAdded(id) => {
            format!("already in the ledger as run {id}; its signature was added")
        }
        Imported::Upgraded(id) => {
            format!("replaced the unsigned copy of run {id} with this signed one")
        }
        Imported::AlreadyPresent(id) => format!("already in the ledger as run {id}; unchanged"),
    };
    let counts = if r.counts() {
        format!("{}; it counts for the gate", r.explain())
    } else {
        format!("it will not open the gate: {}", r.explain())
    };
    format!(
        "{}: {stored} ({}; {}): {counts}",
        file.display(),
        &r.uid,
        r.signers
    )
}

pub fn import_json(file: &Path, r: &ImportReport) -> serde_json::Value {
    let (stored, id) = match r.stored {
        Imported::New(id) => ("new", id),
        Imported::SignatureAdded(id) => ("signature_added", id),
        Imported::Upgraded(id) => ("upgraded", id),
        Imported::AlreadyPresent(id) => ("already_present", id),
    };
    serde_json::json!({
        "file": file,
        "run_id": id,
        "uid": r.uid,
        "stored": stored,
        "counts": r.counts(),
        "trust": r.explain(),
        "signers": r.signers,
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
            run.describe(),
        ));
    }
    out
}

/// `runs --json`, written straight to `out`: with thousands of runs, building a JSON value
/// tree first costs more than reading the ledger.
pub fn write_runs_json(
    runs: &[ledger::StoredRun],
    out: impl std::io::Write,
) -> std::io::Result<()> {
    use std::io::Write;
    #[derive(serde::Serialize)]
    struct Signer {
        key_id: String,
        public_key: String,
    }
    #[derive(serde::Serialize)]
    struct OriginJson {
        kind: &'static str,
        signers: Vec<Signer>,
    }
    #[derive(serde::Serialize)]
    struct RunJson<'a> {
        id: i64,
        #[serde(flatten)]
        record: &'a ledger::RunRecord,
        origin: OriginJson,
    }
    let list: Vec<RunJson> = runs
        .iter()
        .map(|run| RunJson {
            id: run.id,
            record: &run.record,
            origin: OriginJson {
                kind: run.origin.as_str(),
                signers: run
                    .signatures
                    .iter()
                    .map(|s| Signer {
                        key_id: s.public_key.id(),
                        public_key: s.public_key.to_string(),
                    })
                    .collect(),
            },
        })
        .collect();
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &list).map_err(std::io::Error::other)?;
    writeln!(out)?;
    out.flush()
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
