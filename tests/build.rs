//! `harness build` from the outside: the real binary on small fixture projects, with real pip
//! (offline: local wheels and a closed 127.0.0.1 index) and real Python checking the result.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod small_project;
mod support;

use small_project::{CONFIG, Project};

const BIN: &str = env!("CARGO_BIN_EXE_harness");

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn zip_names(zip: &Path) -> Vec<String> {
    let a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    a.file_names().map(|n| n.unwrap().into_owned()).collect()
}

fn json_summary(out: &Output) -> serde_json::Value {
    ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn package_holds_code_vendor_and_db_but_no_bytecode_or_secrets() {
    let p = Project::new();
    p.write("src/app/.env", "SECRET=1\n");
    p.write(
        "harness.toml",
        &CONFIG.replace(
            "[package.database]",
            "exclude = [\"**/.env\"]\n\n[package.database]",
        ),
    );
    ok(&p.build(&[]));
    let names = zip_names(&p.zip("webhosting"));
    for must in [
        "passenger_wsgi.py",
        "src/app/__init__.py",
        "vendor/demo_pkg/__init__.py",
        "vendor/demo_pkg-1.2.3.dist-info/METADATA",
        "vendor.lock",
        "app.db",
        "build_info.json",
        "DEPLOY_README.md",
        "MANIFEST.json",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} missing from {names:?}"
        );
    }
    for n in &names {
        assert!(
            !n.contains("__pycache__") && !n.ends_with(".pyc"),
            "bytecode shipped: {n}"
        );
        assert!(
            !n.contains(".env") && !n.contains("deployment_state"),
            "secret shipped: {n}"
        );
        assert!(!n.ends_with('/'), "directory entry {n}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    let state = p.path("deployment_state_webhosting.json");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sha =
        std::fs::read_to_string(p.path(".harness/dist/webhosting/deploy.zip.sha256")).unwrap();
    assert!(sha.ends_with("  deploy.zip\n"), "{sha}");
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("deploy.zip.sha256")
        .current_dir(p.path(".harness/dist/webhosting"))
        .output()
        .unwrap();
    ok(&check);
}

#[test]
fn unpacked_package_imports_and_reports_vendored_versions() {
    let p = Project::new();
    ok(&p.build(&[]));
    let out = tempfile::tempdir().unwrap();
    let mut a = zip::ZipArchive::new(std::fs::File::open(p.zip("webhosting")).unwrap()).unwrap();
    a.extract(out.path()).unwrap();
    let script = r#"
import sys, json, sqlite3, importlib.metadata as md
# Python >= 3.11: -I implies -P, so the package root must be named explicitly.
sys.path[:0] = ['vendor', 'src', '']
import passenger_wsgi
lock = json.load(open('vendor.lock'))
for w in lock['wheels']:
    assert md.version(w['name']) == w['version'], (w, md.version(w['name']))
print('versions ok', len(lock['wheels']))
"#;
    let run = Command::new("python3")
        .args(["-I", "-c", script])
        .current_dir(out.path())
        .output()
        .unwrap();
    ok(&run);
    assert!(
        text(&run.stdout).contains("versions ok 1"),
        "{}",
        text(&run.stdout)
    );
    // The seeded database is self-contained (no WAL) and carries the hashed secrets.
    let db = rusqlite::Connection::open(out.path().join("app.db")).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("deployment_state_webhosting.json")).unwrap())
            .unwrap();
    let secret: String = db
        .query_row(
            "SELECT value FROM settings WHERE key='secret_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        secret,
        serde_json::to_string(&state["secrets"]["secret_key"]).unwrap(),
        "SECRET_KEY stored JSON-encoded"
    );
}

/// Two copies of one project, built under different umasks with different mtimes, give the same
/// bytes when the state file is shared and SOURCE_DATE_EPOCH is fixed.
#[test]
fn builds_are_byte_identical_across_copies_umask_and_mtimes() {
    let a = Project::new();
    ok(&a.build(&[]));
    let b = Project::new();
    std::fs::copy(
        a.path("deployment_state_webhosting.json"),
        b.path("deployment_state_webhosting.json"),
    )
    .unwrap();
    // Different mtimes and permission bits on every source file of the second copy.
    for entry in walkdir::WalkDir::new(b.path("src"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let f = std::fs::File::options()
            .write(true)
            .open(entry.path())
            .unwrap();
        f.set_modified(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567),
        )
        .unwrap();
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Same command line, run under a different umask.
    let mut cmd = b.harness(&["build"]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut sh = Command::new("sh");
    sh.args(["-c", "umask 077 && exec \"$0\" \"$@\"", BIN])
        .args(&args);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    let _ = &mut cmd;
    ok(&sh.output().unwrap());
    let za = std::fs::read(a.zip("webhosting")).unwrap();
    let zb = std::fs::read(b.zip("webhosting")).unwrap();
    assert!(za == zb, "deploy.zip differs between copies");
    // Rebuilding in place changes nothing either.
    let before = std::fs::read(a.zip("webhosting")).unwrap();
    ok(&a.build(&[]));
    assert_eq!(before, std::fs::read(a.zip("webhosting")).unwrap());
}

#[test]
fn local_and_webhosting_share_the_code_fingerprint() {
    let p = Project::new();
    p.write(
        "db/local.sql",
        "INSERT INTO settings VALUES ('mail_host', 'mailpit');\n",
    );
    p.write(
        "harness.toml",
        &CONFIG.replace(
            "env = { DEPLOYMENT_TARGET = \"local\" }",
            "env = { DEPLOYMENT_TARGET = \"local\" }\nextra_sql = [\"db/local.sql\"]",
        ),
    );
    let web = json_summary(&p.build(&["--json"]));
    let local = json_summary(&p.build(&["--local", "--json"]));
    assert_eq!(web["fingerprints"]["code"], local["fingerprints"]["code"]);
    assert_eq!(
        web["fingerprints"]["schema"], local["fingerprints"]["schema"],
        "extra rows do not change the schema"
    );
    assert_ne!(web["sha256"], local["sha256"]);
    assert!(p.zip("local").is_file());
    // A one-byte source change moves the code fingerprint.
    p.write("src/app/helpers.py", "X = 2\n");
    let changed = json_summary(&p.build(&["--json"]));
    assert_ne!(changed["fingerprints"]["code"], web["fingerprints"]["code"]);
}

#[test]
fn warm_cache_spawns_no_pip() {
    let p = Project::new();
    let first = json_summary(&p.build(&["--json"]));
    assert_eq!(first["vendor_cache"], "cold");
    // Any python started now would leave a marker and fail the build.
    let marker = p.path("pip-was-run");
    let fake = p.path("fake-python");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = p
        .harness(&["build", "--json"])
        .env("HARNESS_PYTHON", &fake)
        .output()
        .unwrap();
    let warm = json_summary(&out);
    assert_eq!(warm["vendor_cache"], "warm");
    assert!(!marker.exists(), "a warm build ran pip");
    assert_eq!(warm["sha256"], first["sha256"]);
}

#[test]
fn offline_cold_cache_is_exit_3_naming_the_wheels() {
    let p = Project::new();
    p.write("requirements.txt", "flask==3.1.0\nrequests==2.32.3\n");
    let out = p
        .harness(&["build"])
        .env_remove("PIP_NO_INDEX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("flask") && err.contains("requests"), "{err}");
    assert!(err.contains("cold"), "{err}");
}

#[test]
fn pip_failure_is_exit_3_with_its_stderr() {
    let p = Project::new();
    p.write("requirements.txt", "this is not a requirement ===\n");
    let out = p.build(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("pip download failed") && err.to_lowercase().contains("invalid requirement"),
        "{err}"
    );
}

/// Every bad input exits with its code, says what and where, and leaves the last good package alone.
#[test]
fn bad_input_keeps_the_previous_package() {
    let p = Project::new();
    ok(&p.build(&[]));
    let zip = std::fs::read(p.zip("webhosting")).unwrap();
    let sha = std::fs::read(p.path(".harness/dist/webhosting/deploy.zip.sha256")).unwrap();
    let unchanged = |case: &str| {
        assert_eq!(
            std::fs::read(p.zip("webhosting")).unwrap(),
            zip,
            "{case}: deploy.zip changed"
        );
        assert_eq!(
            std::fs::read(p.path(".harness/dist/webhosting/deploy.zip.sha256")).unwrap(),
            sha,
            "{case}: .sha256 changed"
        );
    };
    let expect = |case: &str, out: Output, code: i32, needles: &[&str]| {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{case}: {err}");
        for n in needles {
            assert!(err.contains(n), "{case}: `{n}` not in:\n{err}");
        }
        unchanged(case);
    };

    // An unknown key, with file:line:column.
    p.write(
        "harness.toml",
        &CONFIG.replace("[package.database]", "sorces = []\n\n[package.database]"),
    );
    expect(
        "bad key",
        p.build(&[]),
        2,
        &["harness.toml:8:1", "sorces", "hint"],
    );

    // A missing requirements file, pointing at the line that names it.
    p.write(
        "harness.toml",
        &CONFIG.replace("requirements.txt", "missing.txt"),
    );
    expect(
        "missing requirements",
        p.build(&[]),
        2,
        &["harness.toml:5:", "missing.txt"],
    );
    p.write("harness.toml", CONFIG);

    // --local together with another target.
    expect(
        "--local with --target",
        p.build(&["--local", "--target", "webhosting"]),
        2,
        &["--local"],
    );

    // A secret among the sources, named.
    p.write("src/app/.env.production", "DB_PASSWORD=x\n");
    expect(
        "secret",
        p.build(&[]),
        2,
        &["src/app/.env.production", "allow_secrets"],
    );
    std::fs::remove_file(p.path("src/app/.env.production")).unwrap();
    p.write(
        "src/app/deploy_key.txt",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    expect(
        "pem key",
        p.build(&[]),
        2,
        &["src/app/deploy_key.txt", "private key"],
    );
    std::fs::remove_file(p.path("src/app/deploy_key.txt")).unwrap();

    // A wheel that would write outside vendor/.
    harness::package::vendor::write_test_wheel(
        &p.path("wheels/evil-1.0-py3-none-any.whl"),
        &[
            ("evil/__init__.py", b""),
            (
                "evil-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
            ),
            (
                "evil-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
            ("evil-1.0.dist-info/RECORD", b""),
            ("../../../outside.py", b"pwned = True\n"),
        ],
    )
    .unwrap();
    p.write("requirements.txt", "./wheels/evil-1.0-py3-none-any.whl\n");
    expect(
        "traversal wheel",
        p.build(&[]),
        2,
        &["evil-1.0-py3-none-any.whl", "../../../outside.py"],
    );
    p.write(
        "requirements.txt",
        "./wheels/demo_pkg-1.2.3-py3-none-any.whl\n",
    );

    // A failing seed command, with its output.
    p.write("harness.toml", &CONFIG.replace("sql = [\"db/schema.sql\"]", "seed_command = [\"python3\", \"-c\", \"import sys; print('seed says no'); sys.exit(4)\"]"));
    expect(
        "failing seed",
        p.build(&[]),
        3,
        &["seed says no", "seed command"],
    );

    // A SQL error, naming the file.
    p.write("harness.toml", CONFIG);
    p.write("db/schema.sql", "CREATE TABLE broken(;\n");
    expect("bad sql", p.build(&[]), 2, &["db/schema.sql", "SQL failed"]);

    // No harness.toml at all.
    std::fs::remove_file(p.path("harness.toml")).unwrap();
    expect("no config", p.build(&[]), 2, &["harness.toml", "hint"]);
}

#[test]
fn seed_command_gets_the_documented_environment_and_may_record_state() {
    let p = Project::new();
    with_seed_command(
        &p,
        r#"
import json, os, sqlite3, sys
import app  # staged src/ is importable
import demo_pkg  # and so is vendor/
db = sqlite3.connect(os.environ["HARNESS_DB_PATH"])
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE meta(k TEXT, v TEXT)")
for k in ["HARNESS_TARGET", "DEPLOYMENT_TARGET", "HARNESS_SEED_DEMO"]:
    db.execute("INSERT INTO meta VALUES (?, ?)", (k, os.environ[k]))
db.commit()
assert os.path.isdir(os.environ["HARNESS_BUILD_DIR"])
path = os.environ["HARNESS_STATE_FILE"]
state = json.load(open(path)) if os.path.exists(path) else {}
state.setdefault("seeded_by_app", 0)
state["seeded_by_app"] += 1
json.dump(state, open(path, "w"))
"#,
        CONFIG,
    );
    ok(&p.build(&["--local", "--seed-demo"]));
    ok(&p.build(&["--local"]));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("deployment_state_local.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["seeded_by_app"], 2,
        "the app's own keys survive and it sees its previous state: {state}"
    );
    assert!(state["admin"]["password"].is_string());
    let out = tempfile::tempdir().unwrap();
    zip::ZipArchive::new(std::fs::File::open(p.zip("local")).unwrap())
        .unwrap()
        .extract(out.path())
        .unwrap();
    let db = rusqlite::Connection::open(out.path().join("app.db")).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT k, v FROM meta")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            ("HARNESS_TARGET".into(), "local".into()),
            ("DEPLOYMENT_TARGET".into(), "local".into()),
            ("HARNESS_SEED_DEMO".into(), "0".into())
        ]
    );
    assert!(!out.path().join("app.db-wal").exists());
    let names = zip_names(&p.zip("local"));
    assert!(
        !names.iter().any(|n| n.contains("__pycache__")),
        "{names:?}"
    );
}

#[test]
fn json_output_reports_paths_hashes_fingerprints_sizes_and_timings() {
    let p = Project::new();
    let s = json_summary(&p.build(&[
        "--json",
        "--output",
        p.path("out/pkg.zip").to_str().unwrap(),
    ]));
    for key in [
        "zip",
        "sha256",
        "zip_size",
        "unpacked_size",
        "files",
        "build_id",
        "timings_ms",
    ] {
        assert!(!s[key].is_null(), "{key} missing: {s}");
    }
    assert_eq!(s["fingerprints"]["code"].as_str().unwrap().len(), 64);
    assert_eq!(s["fingerprints"]["schema"].as_str().unwrap().len(), 64);
    let sha_line = std::fs::read_to_string(p.path("out/pkg.zip.sha256")).unwrap();
    assert_eq!(
        sha_line,
        format!("{}  pkg.zip\n", s["sha256"].as_str().unwrap())
    );
    assert!(
        !p.zip("webhosting").exists(),
        "--output replaces the default path"
    );
}

/// The seed cache: a warm build takes the seeded database of the build before it, byte for byte,
/// until a source, the seed wrapper outside `sources` or the state file changes, or `--reseed`.
#[test]
fn the_seed_cache_reuses_a_seed_until_a_source_the_wrapper_or_the_state_changes() {
    let p = Project::new();
    // Random bytes in the database and the state file on every seed, as real seeds do.
    p.write(
        "tools/seed.py",
        r#"
import json, os, secrets, sqlite3
db = sqlite3.connect(os.environ["HARNESS_DB_PATH"])
db.execute("CREATE TABLE t(token TEXT)")
db.execute("INSERT INTO t VALUES (?)", (secrets.token_hex(16),))
db.commit()
path = os.environ["HARNESS_STATE_FILE"]
state = json.load(open(path)) if os.path.exists(path) else {}
state["seed_token"] = secrets.token_hex(8)
json.dump(state, open(path, "w"))
"#,
    );
    p.write(
        "harness.toml",
        &CONFIG.replace(
            "sql = [\"db/schema.sql\"]",
            "seed_command = [\"python3\", \"tools/seed.py\"]",
        ),
    );
    let build = |args: &[&str]| -> (String, String) {
        let mut all = vec!["--local"];
        all.extend_from_slice(args);
        let o = p.build(&all);
        ok(&o);
        let sha = harness::package::sha256_file(&p.zip("local")).unwrap();
        let line = String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.trim_start().starts_with("database"))
            .unwrap_or_default()
            .to_string();
        (sha, line)
    };
    let (first, line) = build(&[]);
    assert!(line.contains("seeded (no cached seed"), "{line}");
    let (second, line) = build(&[]);
    assert!(line.contains("seed: reused (key "), "{line}");
    assert_eq!(first, second, "a reused seed gives the same bytes");

    p.write("src/app/extra.py", "X = 1\n");
    let (_, line) = build(&[]);
    assert!(
        line.contains("seeded (no cached seed"),
        "a source edit: {line}"
    );
    let (_, line) = build(&[]);
    assert!(line.contains("seed: reused"), "{line}");

    p.write(
        "tools/seed.py",
        &format!(
            "# edited\n{}",
            std::fs::read_to_string(p.path("tools/seed.py")).unwrap()
        ),
    );
    let (_, line) = build(&[]);
    assert!(
        line.contains("seeded (no cached seed"),
        "a wrapper edit: {line}"
    );

    // A test that writes a changed admin password back makes the database stale.
    let state_path = p.path("deployment_state_local.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["admin"]["password"] = "changed-by-a-test".into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let (_, line) = build(&[]);
    assert!(line.contains("the state file changed"), "{line}");
    let (_, line) = build(&["--reseed"]);
    assert!(line.contains("--reseed given"), "{line}");

    // Entries: 0600, the newest three, one folder per target.
    use std::os::unix::fs::PermissionsExt;
    let dir = p.path(".harness/seed-cache/local");
    let dbs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "db"))
        .collect();
    assert_eq!(dbs.len(), 3, "{dbs:?}");
    for e in &dbs {
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
    let o = p.build(&["--target", "webhosting"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("seeded (no cached seed"));
}

/// `build_info_copies`: build_info.json's bytes at another package path, listed in MANIFEST.json
/// and outside the code fingerprint; a source file at that path is refused with its config line.
#[test]
fn build_info_copies_are_the_same_bytes_outside_the_code_fingerprint() {
    let p = Project::new();
    let fingerprint = |o: &Output| -> String {
        ok(o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["fingerprints"]["code"].as_str().unwrap().to_string()
    };
    let without = fingerprint(&p.harness(&["--json", "build"]).output().unwrap());
    p.write(
        "harness.toml",
        &CONFIG.replace(
            "data_files = [\"app.db\"]",
            "data_files = [\"app.db\"]\nbuild_info_copies = [\"src/app/build_info.json\"]",
        ),
    );
    let with = fingerprint(&p.harness(&["--json", "build"]).output().unwrap());
    assert_eq!(with, without, "the copy is outside the code fingerprint");
    let mut z = zip::ZipArchive::new(std::fs::File::open(p.zip("webhosting")).unwrap()).unwrap();
    let read = |z: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut z.by_name(name).unwrap(), &mut b).unwrap();
        b
    };
    assert_eq!(
        read(&mut z, "src/app/build_info.json"),
        read(&mut z, "build_info.json")
    );
    let manifest = String::from_utf8(read(&mut z, "MANIFEST.json")).unwrap();
    assert!(manifest.contains("\"src/app/build_info.json\""));
    // A package whose copy says something else is refused before anything connects.
    let forged = p.path("forged.zip");
    let mut out = zip::ZipWriter::new(std::fs::File::create(&forged).unwrap());
    for i in 0..z.len() {
        let name = z.by_index(i).unwrap().name().unwrap().into_owned();
        let mut bytes = read(&mut z, &name);
        if name == "src/app/build_info.json" {
            bytes = b"{\"build_id\": \"forged\"}".to_vec();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut out, &bytes).unwrap();
    }
    out.finish().unwrap();
    let toml = std::fs::read_to_string(p.path("harness.toml")).unwrap();
    p.write(
        "harness.toml",
        &format!("{toml}\n[targets.webhosting]\nssh = \"nobody@192.0.2.1\"\nremote_dir = \"/home/nobody/app\"\nurl = \"https://app.example\"\n"),
    );
    let o = p
        .harness(&[
            "deploy",
            "webhosting",
            "--package",
            forged.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("src/app/build_info.json differs from its build_info.json"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    p.write("src/app/build_info.json", "{}");
    let o = p.build(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("harness.toml:") && err.contains("already have `src/app/build_info.json`"),
        "{err}"
    );
}

/// `env_file` reaches the seed command; a changed value there makes the package stale (input
/// fingerprint) and seeds again (seed cache key), and the package never holds the files.
#[test]
fn env_files_reach_the_seed_and_a_changed_value_makes_the_package_stale() {
    let p = Project::new();
    with_seed_command(
        &p,
        r#"
import os, sqlite3
db = sqlite3.connect(os.environ["HARNESS_DB_PATH"])
db.execute("CREATE TABLE site(name TEXT, mode TEXT)")
db.execute("INSERT INTO site VALUES (?, ?)", (os.environ["SITE_NAME"], os.environ["SITE_MODE"]))
db.commit()
"#,
        &CONFIG.replace(
            "env = { DEPLOYMENT_TARGET = \"local\" }",
            "env_file = [\".env.defaults\", { path = \".env\", required = false }]\n\
             env = { DEPLOYMENT_TARGET = \"local\", SITE_MODE = \"inline\" }",
        ),
    );
    p.write(
        ".env.defaults",
        "SITE_NAME=\"from defaults\"\nSITE_MODE=defaults\n",
    );
    let site = || -> (String, String) {
        let out = tempfile::tempdir().unwrap();
        zip::ZipArchive::new(std::fs::File::open(p.zip("local")).unwrap())
            .unwrap()
            .extract(out.path())
            .unwrap();
        let db = rusqlite::Connection::open(out.path().join("app.db")).unwrap();
        db.query_row("SELECT name, mode FROM site", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    // The input fingerprint the build recorded beside the zip: what `--skip-build` compares.
    let input = || -> String {
        let sidecar = p.path(".harness/dist/local/deploy.zip.build.json");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
        v["fingerprints"]["input"].as_str().unwrap().to_string()
    };
    ok(&p.build(&["--local"]));
    assert_eq!(site(), ("from defaults".into(), "inline".into()));
    let first = input();
    ok(&p.build(&["--local"]));
    assert_eq!(input(), first, "nothing changed");

    p.write(".env", "SITE_NAME=from-private\n");
    let o = p.build(&["--local"]);
    assert_ne!(
        input(),
        first,
        "a new private value reaches the seed: stale"
    );
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("seeded (no cached seed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(site(), ("from-private".into(), "inline".into()));
    let names = zip_names(&p.zip("local"));
    assert!(!names.iter().any(|n| n.contains(".env")), "{names:?}");

    // A required file that is missing stops the build before anything is written.
    std::fs::remove_file(p.path(".env.defaults")).unwrap();
    let o = p.build(&["--local"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for needle in [
        "harness.toml:",
        "env_file: cannot read",
        ".env.defaults",
        "required = false",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

/// `script` as seed.py, and `config` with it as the seed command instead of the SQL files.
fn with_seed_command(p: &Project, script: &str, config: &str) {
    p.write("seed.py", script);
    p.write(
        "harness.toml",
        &config.replace(
            "sql = [\"db/schema.sql\"]",
            "seed_command = [\"python3\", \"seed.py\"]",
        ),
    );
}

/// HARNESS_EVENTS=json: every progress line on stderr is one JSON object, the phases a build
/// reports are the ones its summary times, and stdout still holds only the result.
#[test]
fn json_events_report_the_phases_the_summary_times() {
    let p = Project::new();
    let out = p
        .harness(&["--json", "build"])
        .env("HARNESS_EVENTS", "json")
        .output()
        .unwrap();
    let summary = json_summary(&out);
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "phase_finished")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "phase_started")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    let mut timed: Vec<&str> = summary["timings_ms"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut reported = finished.clone();
    timed.sort_unstable();
    reported.sort_unstable();
    assert_eq!(reported, timed, "stderr: {}", text(&out.stderr));
    assert_eq!(
        started, finished,
        "every phase starts before it finishes, in order"
    );
    assert!(finished.contains(&"zip"), "{finished:?}");
    for e in events.iter().filter(|e| e["event"] == "phase_finished") {
        assert!(e["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{e}");
    }
}
