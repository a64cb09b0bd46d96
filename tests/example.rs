//! `harness build` on examples/flask-app: reproducibility across clones, and the package runs.
//!
//! These tests need the example's wheels in the cache. `scripts/test.sh` warms it by running the
//! README's main command first; the tests themselves never reach an index (pip is pointed at a
//! closed 127.0.0.1 port), so a cold cache fails loudly instead of downloading.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_harness");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\n(a cold wheel cache? run the README's main command once)",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A copy of the example in its own git repository, committed at a fixed time, so two copies
/// are two clones of one commit.
fn clone_example(umask_mtime_seed: u64) -> tempfile::TempDir {
    let dir = support::copy_example();
    // Every file gets an mtime of its own per copy: mtimes must not reach the package.
    for entry in walkdir::WalkDir::new(dir.path())
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            let f = std::fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap();
            let when = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(1_000_000 + umask_mtime_seed * 7919);
            f.set_modified(when).unwrap();
        }
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        ok(&out);
    };
    std::fs::write(
        dir.path().join(".gitignore"),
        ".harness/\ndeployment_state_*.json\n",
    )
    .unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "example"]);
    dir
}

fn build(project: &Path, umask: &str, args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\""), BIN]);
    c.args(["--project", project.to_str().unwrap(), "build"])
        .args(args);
    c.env("SOURCE_DATE_EPOCH", "1767225600");
    c.env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2");
    c.output().unwrap()
}

fn entries(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    (0..a.len())
        .map(|i| {
            let mut f = a.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            (f.name().unwrap().into_owned(), data)
        })
        .collect()
}

#[test]
fn example_builds_byte_identical_in_two_clones() {
    let a = clone_example(1);
    let b = clone_example(2);
    ok(&build(a.path(), "022", &[]));
    ok(&build(b.path(), "077", &[]));
    let za = a.path().join(".harness/dist/webhosting/deploy.zip");
    let zb = b.path().join(".harness/dist/webhosting/deploy.zip");

    // Fresh secrets on each side: only the database (and the manifest line that hashes it) differ.
    let (ea, eb) = (entries(&za), entries(&zb));
    assert_eq!(
        ea.iter().map(|e| &e.0).collect::<Vec<_>>(),
        eb.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for ((name, da), (_, db)) in ea.iter().zip(&eb) {
        if name == "app.db" {
            assert_ne!(da, db, "fresh secrets give a different database");
        } else if name == "MANIFEST.json" {
            let strip = |d: &[u8]| {
                let v: serde_json::Value = serde_json::from_slice(d).unwrap();
                v["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| f["path"] != "app.db")
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(da), strip(db));
        } else {
            assert!(da == db, "{name} differs between clones");
        }
    }

    // With the state file reused, the zips are byte-identical.
    let state = "deployment_state_webhosting.json";
    std::fs::copy(a.path().join(state), b.path().join(state)).unwrap();
    ok(&build(b.path(), "077", &[]));
    assert!(
        std::fs::read(&za).unwrap() == std::fs::read(&zb).unwrap(),
        "zips differ with one state file"
    );
    assert_eq!(
        std::fs::metadata(b.path().join(state))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    for dir in [a.path(), b.path()] {
        let check = Command::new("sha256sum")
            .args(["-c", "deploy.zip.sha256"])
            .current_dir(dir.join(".harness/dist/webhosting"))
            .output()
            .unwrap();
        ok(&check);
    }
}

#[test]
fn example_package_imports_in_isolation_with_its_locked_versions() {
    let project = clone_example(3);
    let out = build(project.path(), "022", &["--local", "--json"]);
    ok(&out);
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = build(project.path(), "022", &["--json"]);
    ok(&out);
    let web: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        local["fingerprints"]["code"], web["fingerprints"]["code"],
        "code fingerprint is target-independent"
    );

    let zip = project.path().join(".harness/dist/webhosting/deploy.zip");
    for (name, _) in entries(&zip) {
        assert!(
            !name.contains("__pycache__") && !name.ends_with(".pyc"),
            "{name}"
        );
        assert!(
            !name.rsplit('/').next().unwrap().starts_with(".env"),
            "{name}"
        );
        assert!(!name.contains("deployment_state"), "{name}");
    }
    let unpacked = tempfile::tempdir().unwrap();
    zip::ZipArchive::new(std::fs::File::open(&zip).unwrap())
        .unwrap()
        .extract(unpacked.path())
        .unwrap();
    let state = project.path().join("deployment_state_webhosting.json");
    let script = r#"
import sys, json, sqlite3, importlib.metadata as md
# Python >= 3.11: -I implies -P, so the package root must be named explicitly.
sys.path[:0] = ['vendor', 'src', '']
import passenger_wsgi
assert passenger_wsgi.STARTUP_ERROR is None, passenger_wsgi.STARTUP_ERROR
lock = json.load(open('vendor.lock'))
for w in lock['wheels']:
    assert md.version(w['name']) == w['version'], (w['name'], md.version(w['name']), w['version'])
from werkzeug.security import check_password_hash
state = json.load(open(sys.argv[1]))
db = sqlite3.connect('app.db')
(h,) = db.execute("SELECT password_hash FROM users WHERE username = 'admin'").fetchone()
assert check_password_hash(h, state['admin']['password']), 'admin hash does not verify'
assert not check_password_hash(h, state['admin']['password'] + 'x')
print('ok', len(lock['wheels']), 'wheels')
"#;
    let run = Command::new("python3")
        .args(["-I", "-c", script, state.to_str().unwrap()])
        .current_dir(unpacked.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    ok(&run);
    assert!(
        text(&run.stdout).starts_with("ok "),
        "{}",
        text(&run.stdout)
    );
}

/// A clone in a folder with nothing beside it (no `../shared`, no absolute paths to lean on)
/// collects both Python suites: everything they read is in the repository. Needs the test venv
/// `scripts/test.sh` makes (`.venv-test/`); without it the test fails under CI and says so
/// elsewhere.
#[test]
fn a_clone_with_nothing_beside_it_collects_the_python_suites() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = repo.join(".venv-test/bin/python");
    if !python.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: scripts/test.sh makes it",
            python.display()
        );
        eprintln!(
            "skipped: {} is missing (scripts/test.sh makes it)",
            python.display()
        );
        return;
    }
    let outer = tempfile::tempdir().unwrap();
    let clone = outer.path().join("harness");
    let o = Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(repo)
        .arg(&clone)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(std::fs::read_dir(outer.path()).unwrap().count(), 1);
    for suite in ["mocks/tests/python", "examples/flask-app/tests"] {
        let o = Command::new(&python)
            .args([
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                suite,
            ])
            .current_dir(&clone)
            .env_remove("MAILPIT_SWAGGER")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{suite} in a bare clone:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
}

/// `harness init` on examples/flask-app without its harness.toml writes a config whose package
/// has the same code fingerprint as the hand-written one's (same sources, entry point, wheels),
/// and refuses to overwrite it afterwards.
#[test]
fn init_on_the_example_packages_the_same_code_as_the_hand_written_config() {
    let dir = support::copy_example();
    let code = |o: Output| -> String {
        ok(&o);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["fingerprints"]["code"].as_str().unwrap().to_string()
    };
    let json_build = |dir: &Path| {
        let mut c = Command::new(BIN);
        c.args(["--json", "--project", dir.to_str().unwrap(), "build"])
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "2");
        c.output().unwrap()
    };
    let hand = code(json_build(dir.path()));
    std::fs::remove_file(dir.path().join("harness.toml")).unwrap();
    let init = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--project", dir.path().to_str().unwrap(), "init"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = init(&[]);
    ok(&o);
    assert!(
        text(&o.stdout).contains("TODO lines to fill in"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(code(json_build(dir.path())), hand);
    let again = init(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    let printed = init(&["--print"]);
    ok(&printed);
    assert_eq!(
        text(&printed.stdout),
        std::fs::read_to_string(dir.path().join("harness.toml")).unwrap()
    );
}
