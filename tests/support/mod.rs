//! Helpers shared by the integration suites (`mod support;` in each test crate that needs them).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a libtest-mimic case returns.
#[allow(dead_code)]
pub type Outcome = Result<(), libtest_mimic::Failed>;

#[allow(dead_code)]
pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(what().into()) }
}

#[allow(dead_code)]
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A finished command's exit code and output, for a failure message.
#[allow(dead_code)]
pub fn describe(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The harness binary under test: `HARNESS_E2E_BIN` (a copied binary, when several checkouts
/// share one target directory), else cargo's build of it.
#[allow(dead_code)]
pub fn harness_bin() -> PathBuf {
    std::env::var_os("HARNESS_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_harness")))
}

#[allow(dead_code)]
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flask-app")
}

/// A fresh copy of examples/flask-app without what builds and runs leave in it (.harness/, state
/// files, bytecode, pytest's cache), so every test starts from the committed example.
#[allow(dead_code)]
pub fn copy_example() -> tempfile::TempDir {
    copy_project(&example_dir())
}

/// A fresh copy of the project at `src` (an example or a fixture), without what builds and runs
/// leave in it.
pub fn copy_project(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("harness-example-")
        .tempdir()
        .expect("tempdir");
    for entry in walkdir::WalkDir::new(src).into_iter().filter_entry(|e| {
        let n = e.file_name().to_string_lossy();
        n != ".harness"
            && n != "__pycache__"
            && !n.starts_with("deployment_state")
            && n != ".pytest_cache"
            && n != ".coverage"
            && n != "coverage.xml"
    }) {
        let entry = entry.expect("walk the example");
        let dest = dir
            .path()
            .join(entry.path().strip_prefix(src).expect("below the example"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("create dir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
    dir
}

/// `git -C dir ARGS` with a throwaway identity; panics with git's stderr when it fails.
#[allow(dead_code)]
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a Docker daemon answers (checked with the CLI, independently of the code under test).
#[allow(dead_code)]
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The docker CLI's trimmed stdout.
#[allow(dead_code)]
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every container, network and volume carrying `label` (e.g. `harness.run=ID`).
/// Every container, network and volume carrying `label` (`key=value`), as `kind name` lines.
#[allow(dead_code)]
pub fn resources_with(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let mut all = Vec::new();
    for kind in [
        vec![
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "container {{.Names}}",
        ],
        vec![
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "network {{.Name}}",
        ],
        vec![
            "volume",
            "ls",
            "--filter",
            &filter,
            "--format",
            "volume {{.Name}}",
        ],
    ] {
        all.extend(
            docker(&kind)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    all
}

/// A test case of the libtest-mimic suites: its name and its function.
#[allow(dead_code)]
pub type Case = (&'static str, fn() -> Result<(), libtest_mimic::Failed>);

/// Runs a Docker end-to-end suite. The `docker` cases are ignored when no daemon answers,
/// unless CI is set: then the whole suite fails, since CI must run every test. The `offline`
/// cases need no daemon and always run.
#[allow(dead_code)]
pub fn run_docker_suite(suite: &str, docker: Vec<Case>, offline: Vec<Case>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    let available = docker_available();
    if !available && std::env::var_os("CI").is_some() {
        eprintln!(
            "CI is set but the Docker daemon is unreachable: the {suite} suite cannot be skipped"
        );
        std::process::exit(1);
    }
    let mut trials: Vec<libtest_mimic::Trial> = docker
        .into_iter()
        .map(|(name, f)| libtest_mimic::Trial::test(name, f).with_ignored_flag(!available))
        .collect();
    trials.extend(
        offline
            .into_iter()
            .map(|(name, f)| libtest_mimic::Trial::test(name, f)),
    );
    libtest_mimic::run(&args, trials).exit()
}

/// `text` with what differs between runs and machines masked: `root` (the project's temporary
/// folder) → `<project>`, other temporary folders (`/tmp/.tmpXXXX`) → `<tmp>`, ISO times →
/// `<time>`, UTC stamps (`20261205T004541Z`) → `<stamp>`, hex runs of 12 or more characters
/// (build ids' hashes, sha256s, commits) → `<hex>`, and the values of `user=`, `host=`, `pid=`.
#[allow(dead_code)]
pub fn masked(text: &str, root: &Path) -> String {
    let text = text.replace(&root.display().to_string(), "<project>");
    let mut out = String::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        out.push_str(&mask_word(&word, &out));
        word.clear();
        out.push(c);
    }
    out.push_str(&mask_word(&word, &out));
    mask_iso_times(&out)
}

/// One word (letters, digits, `_`), knowing what came before it.
fn mask_word(w: &str, before: &str) -> String {
    let b = w.as_bytes();
    for key in ["user=", "host=", "pid="] {
        if before.ends_with(key) && !w.is_empty() {
            return "<value>".into();
        }
    }
    if before.ends_with("/tmp/.") && w.starts_with("tmp") {
        return "<tmp>".into();
    }
    if b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    {
        return "<stamp>".into();
    }
    if b.len() >= 12 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit) {
        return "<hex>".into();
    }
    w.to_string()
}

/// `2026-12-05T00:45:41.123Z` (the fraction optional) → `<time>`.
fn mask_iso_times(s: &str) -> String {
    let shape = |t: &[u8]| -> Option<usize> {
        let d = |i: usize| t.get(i).is_some_and(u8::is_ascii_digit);
        let is = |i: usize, c: u8| t.get(i) == Some(&c);
        let ok = (0..4).all(d)
            && is(4, b'-')
            && d(5)
            && d(6)
            && is(7, b'-')
            && d(8)
            && d(9)
            && is(10, b'T')
            && d(11)
            && d(12)
            && is(13, b':')
            && d(14)
            && d(15)
            && is(16, b':')
            && d(17)
            && d(18);
        if !ok {
            return None;
        }
        let mut end = 19;
        if is(end, b'.') {
            end += 1;
            while d(end) {
                end += 1;
            }
        }
        is(end, b'Z').then_some(end + 1)
    };
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(n) = shape(&b[i..]) {
            out.push_str("<time>");
            i += n;
        } else {
            let c = s[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Compares `got` with tests/snapshots/`name`; `UPDATE_SNAPSHOTS=1` writes it instead (a
/// deliberate change, reviewed as a diff).
#[allow(dead_code)]
pub fn snapshot(name: &str, got: &str) -> Result<(), String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&file, got).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&file).unwrap_or_default();
    if got == want {
        return Ok(());
    }
    let at = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(got.lines().count().min(want.lines().count()));
    Err(format!(
        "{} differs at line {} (UPDATE_SNAPSHOTS=1 rewrites it on purpose)\n got: {:?}\nwant: {:?}\nwhole output:\n{got}",
        file.display(),
        at + 1,
        got.lines().nth(at),
        want.lines().nth(at)
    ))
}
