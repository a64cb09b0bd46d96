//! The ledger and the gate through the real `harness` binary, on real git repositories.
//!
//! Runs are created through the library API until `harness test` exists (issue 6, "building blocks").
//! Tests that need a real `harness build` are at the end; see `build`.
use harness::model::target::Target;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::config::Config;
use harness::gate::{PackageFacts, Rule};
use harness::gatekeeper::{self, GateRequest};
use harness::ledger::signing::{Export, SecretKey};
use harness::ledger::{self, Ledger, Outcome, RunRecord, Selection};
use harness::model::timestamp::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_harness");
const CODE: &str = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de";

/// Runs the CLI. Whatever it says, no database internals reach the user: every ledger error is
/// a message that says what, where and what to do.
fn harness(project: &Path, args: &[&str]) -> Output {
    let o = Command::new(BIN)
        .arg("--project")
        .arg(project)
        .args(args)
        .output()
        .expect("harness runs");
    assert_no_sql(&String::from_utf8_lossy(&o.stderr));
    o
}

fn assert_no_sql(said: &str) {
    let lower = said.to_lowercase();
    assert!(
        !lower.contains("constraint") && !said.contains("SQLITE") && !lower.contains("rusqlite"),
        "database internals reached the user: {said}"
    );
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=harness test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A committed project: a tiny WSGI app, harness.toml (plus `gate_toml` under [gate]), .gitignore.
fn project(gate_toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("src/app")).unwrap();
    std::fs::write(d.join("src/app/__init__.py"), "GREETING = 'hello'\n").unwrap();
    std::fs::write(
        d.join("passenger_wsgi.py"),
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n",
    )
    .unwrap();
    std::fs::write(
        d.join("harness.toml"),
        format!(
            "[package]\nsources = [{{ from = \"src\", to = \"src\" }}]\n\
             entry_point = {{ from = \"passenger_wsgi.py\", to = \"passenger_wsgi.py\" }}\n\n[gate]\n{gate_toml}\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join(".gitignore"), ".harness/\n*.pem\nexports/\n").unwrap();
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "app"]);
    dir
}

fn green_run(dir: &Path, code: &str, schema: Option<&str>) -> RunRecord {
    let fingerprints = harness::package::Fingerprints {
        code: code.into(),
        schema: schema.map(Into::into),
        input: "1n".repeat(32),
    };
    let mut r = RunRecord::start(
        Target::Local,
        &"ab".repeat(32),
        &fingerprints,
        &harness::git::head_facts(dir),
        Selection::Full,
    );
    r.passed = 9;
    r.outcome = Outcome::Green;
    r.finished_at = Timestamp::now();
    r
}

fn record(dir: &Path, run: &RunRecord) -> i64 {
    Ledger::open(&ledger::path_in(dir))
        .unwrap()
        .record_run(run)
        .unwrap()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.insert(e.path().to_path_buf(), std::fs::read(e.path()).unwrap());
        }
    }
    out
}

// --- runs ------------------------------------------------------------------------------------

#[test]
fn runs_on_a_fresh_project_says_none_and_json_is_an_empty_list() {
    let p = project("");
    let o = harness(p.path(), &["runs"]);
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).0.contains("no runs recorded yet"));
    let o = harness(p.path(), &["runs", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn runs_lists_what_the_library_recorded() {
    let p = project("");
    let mut red = green_run(p.path(), CODE, None);
    red.outcome = Outcome::Red;
    red.failed = 2;
    red.selection = Selection::Shard { index: 2, total: 3 };
    let a = record(p.path(), &green_run(p.path(), CODE, Some(&"5c".repeat(32))));
    let b = record(p.path(), &red);
    let (out, _) = text(&harness(p.path(), &["runs"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].contains("green") && lines[1].contains("full") && lines[1].contains("9/0/0/0")
    );
    assert!(
        lines[2].contains("red") && lines[2].contains("shard 2/3") && lines[2].contains("9/2/0/0")
    );
    let json: serde_json::Value =
        serde_json::from_slice(&harness(p.path(), &["--json", "runs"]).stdout).unwrap();
    assert_eq!(json[0]["id"], a);
    assert_eq!(json[1]["id"], b);
    assert_eq!(
        json[1]["selection"],
        serde_json::json!({"kind": "shard", "index": 2, "total": 3})
    );
    assert_eq!(json[0]["schema_fingerprint"], "5c".repeat(32));
    assert_eq!(json[0]["origin"]["kind"], "local");
    assert_eq!(json[0]["git_commit"], git(p.path(), &["rev-parse", "HEAD"]));
    assert_eq!(json[0]["dirty"], false);
}

// --- damage ----------------------------------------------------------------------------------

#[test]
fn a_corrupted_ledger_exits_3_and_nothing_in_dot_harness_changes() {
    let p = project("");
    let d = p.path();
    let dot = d.join(".harness");
    std::fs::create_dir_all(dot.join("dist/webhosting")).unwrap();
    std::fs::create_dir_all(dot.join("runs/r1")).unwrap();
    std::fs::write(
        dot.join("dist/webhosting/deploy.zip"),
        b"PK\x03\x04 not really",
    )
    .unwrap();
    std::fs::write(dot.join("runs/r1/report.html"), "<h1>green</h1>").unwrap();
    std::fs::write(
        dot.join("ledger.db"),
        b"SQLite format 2\0 but actually garbage".repeat(100),
    )
    .unwrap();
    let export = d.join("exports/run.json");
    std::fs::create_dir_all(export.parent().unwrap()).unwrap();
    std::fs::write(
        &export,
        serde_json::to_string(&Export::new(&green_run(d, CODE, None), None)).unwrap(),
    )
    .unwrap();
    let before = snapshot(&dot);

    for args in [
        vec!["runs"],
        vec!["runs", "export", "1"],
        vec!["runs", "import", export.to_str().unwrap()],
        vec!["gate", "webhosting"],
    ] {
        let o = harness(d, &args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("ledger.db is damaged"), "{args:?}: {err}");
        assert!(err.contains("Move it aside"), "{args:?}: {err}");
        assert_eq!(snapshot(&dot), before, "{args:?} changed .harness/");
    }
}

// --- concurrency -----------------------------------------------------------------------------

#[test]
fn two_processes_importing_at_once_lose_nothing() {
    let p = project("");
    let d = p.path();
    let exports = d.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let mut uids = BTreeSet::new();
    let mut files: [Vec<PathBuf>; 2] = Default::default();
    for n in 0..300 {
        let run = green_run(d, CODE, None);
        uids.insert(run.uid.clone());
        let f = exports.join(format!("{n}.json"));
        std::fs::write(&f, serde_json::to_string(&Export::new(&run, None)).unwrap()).unwrap();
        files[n % 2].push(f);
    }
    // Both start on a project without a ledger, so they also race to create and migrate it.
    let children: Vec<_> = files
        .iter()
        .map(|fs| {
            Command::new(BIN)
                .arg("--project")
                .arg(d)
                .args(["runs", "import"])
                .args(fs)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let runs = Ledger::open(&ledger::path_in(d)).unwrap().runs().unwrap();
    let stored: BTreeSet<String> = runs.iter().map(|r| r.record.uid.clone()).collect();
    assert_eq!(runs.len(), 300);
    assert_eq!(stored, uids);
}

// --- gate arguments and config ---------------------------------------------------------------

#[test]
fn force_without_a_reason_is_exit_2() {
    let p = project("");
    let o = harness(p.path(), &["gate", "webhosting", "--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--reason"));
    let o = harness(
        p.path(),
        &["gate", "webhosting", "--force", "--reason", "  "],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("--force needs a reason"),
        "{}",
        text(&o).1
    );
    let o = harness(p.path(), &["gate", "webhosting", "--reason", "why"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_bad_max_age_is_exit_2_naming_file_and_line() {
    let p = project("max_age = \"a while\"");
    let o = harness(p.path(), &["gate", "webhosting"]);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(err.contains("harness.toml:6:11: [gate] max_age"), "{err}");
}

// --- portable records ------------------------------------------------------------------------

/// The `[gate]` line that trusts `key` under the name `ci`.
fn trusting(key: &str) -> String {
    format!("trusted_keys = [{{ name = \"ci\", key = \"{key}\" }}]")
}

/// CI side: a project (whose committed harness.toml trusts `trusted`) with a green run, exported
/// with `--sign KEY` through the CLI.
fn ci_export(key_file: &Path, trusted: &str, code: &str) -> (tempfile::TempDir, String) {
    let ci = project(&trusting(trusted));
    let run = green_run(ci.path(), code, None);
    let id = record(ci.path(), &run);
    let export = export_signed(ci.path(), id, key_file);
    (ci, export)
}

/// `harness runs export ID --sign KEY`, through the CLI.
fn export_signed(dir: &Path, id: i64, key_file: &Path) -> String {
    let id = id.to_string();
    let o = harness(
        dir,
        &["runs", "export", &id, "--sign", key_file.to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    text(&o).0
}

/// Deployer side: a fresh clone of `origin`, with `export` imported by the CLI.
fn clone_and_import(origin: &Path, export: &str) -> (tempfile::TempDir, Output) {
    let clone = tempfile::tempdir().unwrap();
    git(
        clone.path(),
        &["clone", "-q", origin.to_str().unwrap(), "."],
    );
    // Outside the checkout: a downloaded record inside it would be an untracked file, and the
    // gate rightly calls that tree dirty.
    let download = tempfile::tempdir().unwrap();
    let file = download.path().join("run.json");
    std::fs::write(&file, export).unwrap();
    let o = harness(clone.path(), &["runs", "import", file.to_str().unwrap()]);
    (clone, o)
}

fn gate_in(dir: &Path, code: &str) -> harness::gate::GateDecision {
    let config = Config::load(dir, None).unwrap();
    let mut ledger = gatekeeper::open_ledger(dir).unwrap();
    // The package these tests ask about, as `harness build` would have recorded it here.
    ledger
        .record_build(&ledger::BuildRecord {
            sha256: "unused-by-the-rules".into(),
            target: "webhosting".into(),
            build_id: "20260101T000000Z-000000000000".into(),
            code_fingerprint: code.into(),
            schema_fingerprint: None,
            git_commit: Some(git(dir, &["rev-parse", "HEAD"])),
            dirty: Some(false),
        })
        .unwrap();
    let package = PackageFacts {
        sha256: "unused-by-the-rules",
        code,
        schema: None,
    };
    gatekeeper::evaluate(
        &config,
        &mut ledger,
        package,
        &GateRequest::default(),
        Timestamp::now(),
    )
    .unwrap()
    .decision
}

#[test]
fn a_signed_export_imported_into_a_fresh_clone_opens_the_gate_there() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ci.pem");
    let o = Command::new(BIN)
        .args(["runs", "keygen"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let (out, _) = text(&o);
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap()
        .to_string();

    let (ci, export) = ci_export(&key_file, &public, CODE);
    let (clone, o) = clone_and_import(ci.path(), &export);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("signed by trusted key `ci`") && out.contains("counts for the gate"),
        "{out}{err}"
    );
    let d = gate_in(clone.path(), CODE);
    assert!(d.open, "{d:#?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("signed by trusted key `ci`")),
        "{d:#?}"
    );
    // The gate still compares fingerprints: an imported run does not vouch for other bytes.
    let d = gate_in(clone.path(), &"ff".repeat(32));
    assert_eq!(d.deciding_rule, Rule::SameFingerprints);
}

#[test]
fn a_schema_1_record_from_an_older_harness_still_imports_and_opens_the_gate() {
    let key = SecretKey::generate();
    let ci = project(&trusting(&key.public_key().to_string()));
    // What an older harness wrote: format /1, signed over "harness-run-record/1\n" + the record.
    let mut run = green_run(ci.path(), CODE, None);
    run.schema = 1;
    let export = serde_json::to_string_pretty(&Export::new(&run, Some(&key))).unwrap();
    assert!(export.contains("\"harness-run-record/1\""), "{export}");
    let (clone, o) = clone_and_import(ci.path(), &export);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("counts for the gate"), "{out}{err}");
    let d = gate_in(clone.path(), CODE);
    assert!(d.open, "{d:#?}");
    // Exported again, it keeps its schema, so its signature still holds elsewhere.
    let again = harness(clone.path(), &["runs", "export", "1"]);
    assert!(
        text(&again).0.contains("\"harness-run-record/1\""),
        "{again:?}"
    );
}

#[test]
fn a_record_signed_by_another_key_is_stored_but_does_not_open_the_gate() {
    let keys = tempfile::tempdir().unwrap();
    let other_file = keys.path().join("other.pem");
    std::fs::write(&other_file, SecretKey::generate().to_pem()).unwrap();
    let trusted = SecretKey::generate().public_key().to_string();

    let (ci, export) = ci_export(&other_file, &trusted, CODE);
    let (clone, o) = clone_and_import(ci.path(), &export);
    let (_, err) = text(&o);
    assert!(o.status.success());
    assert!(
        err.contains("warning:")
            && err.contains("will not open the gate")
            && err.contains("foreign"),
        "{err}"
    );
    let d = gate_in(clone.path(), CODE);
    assert!(!d.open);
    assert_eq!(d.deciding_rule, Rule::TrustedRecord);
    assert!(
        d.summary.contains("not in [gate] trusted_keys (foreign)"),
        "{}",
        d.summary
    );
    // Importing again changes nothing, and --json says so.
    let again = clone.path().join(".harness/again.json");
    std::fs::write(&again, &export).unwrap();
    let o = harness(
        clone.path(),
        &["--json", "runs", "import", again.to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report[0]["stored"], "already_present");
    assert_eq!(report[0]["counts"], false);
    assert_eq!(report[0]["run_id"], 1);
    let runs: serde_json::Value =
        serde_json::from_slice(&harness(clone.path(), &["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["origin"]["kind"], "imported");
    assert_eq!(runs[0]["origin"]["signers"].as_array().unwrap().len(), 1);
}

#[test]
fn a_record_edited_after_signing_is_refused_and_stored_nowhere() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ci.pem");
    let key = SecretKey::generate();
    std::fs::write(&key_file, key.to_pem()).unwrap();

    let (ci, export) = ci_export(&key_file, &key.public_key().to_string(), CODE);
    // Someone turns a red run green, or any other single field: here the failure count.
    assert!(export.contains("\"failed\": 0"));
    let edited = export.replacen("\"failed\": 0", "\"failed\": 1", 1);
    let (clone, o) = clone_and_import(ci.path(), &edited);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("changed after signing") && err.contains("nothing stored"),
        "{err}"
    );
    let runs = harness(clone.path(), &["runs", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&runs.stdout).unwrap(),
        serde_json::json!([])
    );
    let d = gate_in(clone.path(), CODE);
    assert!(!d.open);
    assert_eq!(d.deciding_rule, Rule::GreenRun);
}

#[test]
fn an_openssl_key_signs_and_its_pubout_line_is_accepted_as_trusted() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!(
            "openssl is not installed; the keygen path is covered by the other signed-record tests"
        );
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ci.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key_file)
        .status()
        .unwrap();
    assert!(ok.success());
    let pubout = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_file)
        .output()
        .unwrap();
    let pem = String::from_utf8(pubout.stdout).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();

    let (ci, export) = ci_export(&key_file, &body, CODE);
    let (clone, o) = clone_and_import(ci.path(), &export);
    assert!(text(&o).0.contains("counts for the gate"), "{o:?}");
    assert!(gate_in(clone.path(), CODE).open);
}

// --- the whole gate through the CLI (needs a real `harness build`) ----------------------------

/// Builds the webhosting package and returns (sha256, code, schema) from `harness build --json`.
fn build(dir: &Path) -> (String, String, Option<String>) {
    let o = harness(dir, &["--json", "build", "--target", "webhosting"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "harness build failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fp = &v["fingerprints"];
    (
        v["sha256"].as_str().unwrap().to_string(),
        fp["code"].as_str().unwrap().to_string(),
        fp["schema"].as_str().map(String::from),
    )
}

#[test]
fn gate_on_a_fresh_project_is_closed_naming_no_green_run_then_opens_then_closes_on_one_byte() {
    let p = project("");
    let d = p.path();
    let (_, code, schema) = build(d);

    let o = harness(d, &["gate", "webhosting"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}{err}");
    assert!(
        out.contains("CLOSED") && out.contains("no green run"),
        "{out}"
    );

    record(d, &green_run(d, &code, schema.as_deref()));
    let o = harness(d, &["gate", "webhosting"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("OPEN") && out.contains("closest  run 1"),
        "{out}"
    );

    // One byte of a source file changes (and is committed, so only the fingerprint differs).
    std::fs::write(d.join("src/app/__init__.py"), "GREETING = 'hellO'\n").unwrap();
    git(d, &["commit", "-q", "-am", "one byte"]);
    let o = harness(d, &["gate", "webhosting"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}{err}");
    assert!(out.contains("code fingerprint differs"), "{out}");

    let o = harness(
        d,
        &[
            "gate",
            "webhosting",
            "--force",
            "--reason",
            "hotfix, checked by hand",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let decisions = Ledger::open(&ledger::path_in(d))
        .unwrap()
        .gate_decisions()
        .unwrap();
    let last = decisions.last().unwrap();
    assert_eq!(
        last.forced_reason.as_deref(),
        Some("hotfix, checked by hand")
    );
    assert_eq!(decisions.iter().filter(|g| g.open).count(), 2);
}

#[test]
fn gate_cli_treats_uncommitted_changes_as_dirty_unless_allowed() {
    let p = project("");
    let d = p.path();
    let (_, code, schema) = build(d);
    record(d, &green_run(d, &code, schema.as_deref()));
    // A file outside the package: the fingerprints stay equal, but the tree is dirty.
    std::fs::write(d.join("NOTES.md"), "todo\n").unwrap();
    let o = harness(d, &["gate", "webhosting"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("uncommitted changes: NOTES.md"), "{out}");
    let o = harness(d, &["--json", "gate", "webhosting", "--allow-dirty"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["dirty_waived"].as_str().unwrap().contains("NOTES.md"));
    let decisions = Ledger::open(&ledger::path_in(d))
        .unwrap()
        .gate_decisions()
        .unwrap();
    assert!(decisions.last().unwrap().allow_dirty);
}

#[test]
fn gate_cli_opens_in_a_fresh_clone_from_a_signed_ci_record() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ci.pem");
    let key = SecretKey::generate();
    std::fs::write(&key_file, key.to_pem()).unwrap();
    let ci = project(&trusting(&key.public_key().to_string()));
    let (_, code, schema) = build(ci.path());
    let id = record(ci.path(), &green_run(ci.path(), &code, schema.as_deref()));
    let export = export_signed(ci.path(), id, &key_file);
    let (clone, imported) = clone_and_import(ci.path(), &export);
    assert!(imported.status.success());
    let o = harness(clone.path(), &["gate", "webhosting"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("signed by trusted key `ci`"), "{out}");
}

// --- imports in any order ----------------------------------------------------------------

/// The four copies of one CI run a deployer may be handed: signed with the trusted key, signed
/// with another key, unsigned, and the trusted-signed one with a count changed.
struct Copies {
    ci: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Copies {
    const NAMES: [&'static str; 4] = ["trusted", "foreign", "unsigned", "tampered"];

    fn new() -> Copies {
        let trusted = SecretKey::generate();
        let foreign = SecretKey::generate();
        let ci = project(&trusting(&trusted.public_key().to_string()));
        let run = green_run(ci.path(), CODE, None);
        record(ci.path(), &run);
        let files = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            std::fs::write(files.path().join(format!("{name}.json")), text).unwrap()
        };
        let export = |key: Option<&SecretKey>| {
            serde_json::to_string_pretty(&Export::new(&run, key)).unwrap()
        };
        write("trusted", export(Some(&trusted)));
        write("foreign", export(Some(&foreign)));
        write("unsigned", export(None));
        let tampered = export(Some(&trusted)).replacen("\"passed\": 9", "\"passed\": 10", 1);
        assert_ne!(tampered, export(Some(&trusted)));
        write("tampered", tampered);
        Copies { ci, files }
    }

    fn file(&self, i: usize) -> PathBuf {
        self.files.path().join(format!("{}.json", Self::NAMES[i]))
    }

    fn laptop(&self) -> tempfile::TempDir {
        let clone = tempfile::tempdir().unwrap();
        git(
            clone.path(),
            &["clone", "-q", self.ci.path().to_str().unwrap(), "."],
        );
        clone
    }
}

#[test]
fn an_unsigned_copy_then_the_signed_one_opens_the_gate_through_the_cli() {
    let c = Copies::new();
    let laptop = c.laptop();
    let o = harness(
        laptop.path(),
        &["runs", "import", c.file(2).to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(!gate_in(laptop.path(), CODE).open);
    let o = harness(
        laptop.path(),
        &["runs", "import", c.file(0).to_str().unwrap()],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("its signature was added") && out.contains("counts for the gate"),
        "{out}{err}"
    );
    assert!(gate_in(laptop.path(), CODE).open);
    // The foreign signature joins too, and `runs` names both signers.
    let o = harness(
        laptop.path(),
        &["runs", "import", c.file(1).to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    let runs = harness(laptop.path(), &["runs"]);
    let table = text(&runs).0;
    assert_eq!(table.matches("imported, signed by").count(), 1, "{table}");
    assert_eq!(table.lines().count(), 2, "one run: {table}");
    let json: serde_json::Value =
        serde_json::from_slice(&harness(laptop.path(), &["runs", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["origin"]["signers"].as_array().unwrap().len(), 2);
}

#[test]
fn several_files_and_folders_import_in_one_call_and_a_refused_one_does_not_stop_the_rest() {
    let c = Copies::new();
    let laptop = c.laptop();
    // The folder holds all four; the tampered one is refused, the rest land.
    let o = harness(
        laptop.path(),
        &["runs", "import", c.files.path().to_str().unwrap()],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert_eq!(
        out.lines().count() + err.lines().filter(|l| l.starts_with("warning:")).count(),
        3,
        "one line per imported file: {out}{err}"
    );
    assert!(
        err.contains("tampered.json") && err.contains("nothing stored"),
        "{err}"
    );
    assert!(gate_in(laptop.path(), CODE).open);
    let empty = tempfile::tempdir().unwrap();
    let o = harness(
        laptop.path(),
        &["runs", "import", empty.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("holds no .json run records"), "{o:?}");
}

#[test]
fn three_shard_records_in_one_call_open_the_gate_and_two_do_not() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ci.pem");
    let key = SecretKey::generate();
    std::fs::write(&key_file, key.to_pem()).unwrap();
    let ci = project(&trusting(&key.public_key().to_string()));
    let shards = tempfile::tempdir().unwrap();
    for index in 1..=3 {
        let mut run = green_run(ci.path(), CODE, None);
        run.selection = Selection::Shard { index, total: 3 };
        let id = record(ci.path(), &run);
        std::fs::write(
            shards.path().join(format!("shard-{index}.json")),
            export_signed(ci.path(), id, &key_file),
        )
        .unwrap();
    }
    let two = c_laptop(&ci);
    let files: Vec<String> = (1..=2)
        .map(|i| {
            shards
                .path()
                .join(format!("shard-{i}.json"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["runs", "import"];
    args.extend(files.iter().map(String::as_str));
    let o = harness(two.path(), &args);
    assert!(o.status.success(), "{o:?}");
    let d = gate_in(two.path(), CODE);
    assert!(!d.open);
    assert_eq!(d.deciding_rule, Rule::CompleteRun, "{d:#?}");
    let three = c_laptop(&ci);
    let o = harness(
        three.path(),
        &["runs", "import", shards.path().to_str().unwrap()],
    );
    assert!(o.status.success(), "{o:?}");
    let d = gate_in(three.path(), CODE);
    assert!(d.open, "{d:#?}");
}

fn c_laptop(ci: &tempfile::TempDir) -> tempfile::TempDir {
    let clone = tempfile::tempdir().unwrap();
    git(
        clone.path(),
        &["clone", "-q", ci.path().to_str().unwrap(), "."],
    );
    clone
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Every order of the four copies, with repeats: the gate's decision depends only on which
    /// copies arrived (open exactly when the trusted one did), and no import fails with an
    /// environment error (exit 3).
    #[test]
    fn the_order_of_imports_never_matters(order in proptest::collection::vec(0usize..4, 1..9)) {
        let c = COPIES.with(|c| c.clone());
        let (copies, laptop) = &*c;
        let _ = std::fs::remove_dir_all(laptop.path().join(".harness"));
        let config = Config::load(laptop.path(), None).unwrap();
        for &i in &order {
            let mut ledger = gatekeeper::open_ledger(laptop.path()).unwrap();
            match gatekeeper::import(&config, &mut ledger, &copies.file(i)) {
                Ok(_) => proptest::prop_assert!(i != 3, "the tampered copy was stored"),
                Err(f) => {
                    proptest::prop_assert_eq!(i, 3, "{} refused: {}", Copies::NAMES[i], f.message);
                    proptest::prop_assert_eq!(f.exit, harness::error::Exit::BadInput);
                    assert_no_sql(&f.to_string());
                }
            }
            drop(ledger);
            // A deployer checks the gate between imports; its decisions name the runs they saw,
            // and a later import must not trip over them.
            gate_in(laptop.path(), CODE);
        }
        let d = gate_in(laptop.path(), CODE);
        let arrived: BTreeSet<usize> = order.iter().copied().filter(|&i| i != 3).collect();
        proptest::prop_assert_eq!(d.open, arrived.contains(&0), "{:?}: {:#?}", order, d);
        if !d.open {
            let expected = if arrived.is_empty() { Rule::GreenRun } else { Rule::TrustedRecord };
            proptest::prop_assert_eq!(d.deciding_rule, expected);
        }
        let runs = Ledger::open(&ledger::path_in(laptop.path())).unwrap().runs().unwrap();
        proptest::prop_assert_eq!(runs.len(), usize::from(!arrived.is_empty()));
    }
}

thread_local! {
    /// One CI project, its four copies and one laptop clone for every proptest case (each case
    /// starts from an empty ledger).
    static COPIES: std::rc::Rc<(Copies, tempfile::TempDir)> = {
        let c = Copies::new();
        let laptop = c.laptop();
        std::rc::Rc::new((c, laptop))
    };
}
