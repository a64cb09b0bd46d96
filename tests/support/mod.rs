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
