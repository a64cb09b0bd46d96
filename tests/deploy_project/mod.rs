//! A copy of examples/flask-app pointed at the webhosting twin, and the checks the deploy,
//! rollback and backup suites share. Green runs are recorded through the library, as `harness
//! test` would.
#![allow(dead_code)]
use harness::model::target::Target;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::Failed;

use crate::support;
use crate::twin::{self, Twin};

pub use crate::support::{Outcome, describe, ensure, harness_bin as bin, text};

/// A copy of the example, pointed at the twin, in its own git repository (a clean tree).
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new(extra_toml: &str) -> Project {
        Project::of(support::copy_example(), extra_toml)
    }

    /// A copy of `examples/<name>` (its `[targets.webhosting]` pointed at the twin).
    pub fn of_example(name: &str, extra_toml: &str) -> Project {
        let src = support::example_dir().parent().unwrap().join(name);
        Project::of(support::copy_project(&src), extra_toml)
    }

    fn of(dir: tempfile::TempDir, extra_toml: &str) -> Project {
        let toml = dir.path().join("harness.toml");
        // `ssh` and `remote_dir` lines of [targets.webhosting] point at the twin.
        let t: Vec<String> = std::fs::read_to_string(&toml)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("ssh = ") {
                    format!("ssh = \"{}\"", twin::HOST_ALIAS)
                } else if l.starts_with("remote_dir = ") {
                    format!(
                        "remote_dir = \"{}\"\nverify_timeout = 20\nconnect_timeout = 5{extra_toml}",
                        twin::REMOTE_DIR
                    )
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&toml, t.join("\n") + "\n").unwrap();
        std::fs::write(
            dir.path().join(".gitignore"),
            ".harness/\ndeployment_state_*.json\n",
        )
        .unwrap();
        let p = Project { dir };
        p.git(&["init", "-q", "-b", "main"]);
        p.commit("example");
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) {
        support::git(self.root(), args);
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.root().join(rel);
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(s)).unwrap();
    }

    pub fn harness(&self, twin: Option<&Twin>, args: &[&str]) -> Output {
        self.command(twin, args).output().unwrap()
    }

    /// The harness command `harness` runs, to start in the background.
    pub fn command(&self, twin: Option<&Twin>, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(["--project", self.root().to_str().unwrap()])
            .args(args);
        c.env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "2");
        if let Some(t) = twin {
            c.env("HARNESS_SSH_CONFIG", t.ssh_config())
                .env("HARNESS_DEPLOY_URL", t.url());
        }
        c
    }

    /// Starts `harness ARGS` against the twin with its output captured.
    pub fn spawn(&self, twin: &Twin, args: &[&str]) -> std::process::Child {
        self.command(Some(twin), args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Builds the webhosting package to `out` and returns its build id.
    pub fn build_to(&self, out: &Path) -> Result<String, Failed> {
        let o = self.harness(
            None,
            &[
                "--json",
                "build",
                "--target",
                "webhosting",
                "--output",
                out.to_str().unwrap(),
            ],
        );
        ensure(o.status.success(), || {
            format!("build failed: {}", text(&o.stderr))
        })?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
        Ok(v["build_id"].as_str().unwrap().to_string())
    }

    /// Builds the package deploy would build and records a green, full run of it.
    pub fn record_green_run(&self) -> Result<String, Failed> {
        let o = self.harness(None, &["--json", "build", "--target", "webhosting"]);
        ensure(o.status.success(), || {
            format!("build failed: {}", text(&o.stderr))
        })?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
        let fps = harness::package::Fingerprints {
            code: v["fingerprints"]["code"].as_str().unwrap().into(),
            schema: v["fingerprints"]["schema"].as_str().map(Into::into),
            input: v["fingerprints"]["input"].as_str().unwrap().into(),
        };
        let mut run = harness::ledger::RunRecord::start(
            Target::Webhosting,
            v["sha256"].as_str().unwrap(),
            &fps,
            &harness::git::head_facts(self.root()),
            harness::ledger::Selection::Full,
        );
        run.passed = 12;
        run.outcome = harness::ledger::Outcome::Green;
        run.finished_at = harness::model::timestamp::Timestamp::now();
        let mut ledger = harness::ledger::Ledger::open(&harness::ledger::path_in(self.root()))
            .map_err(|e| e.to_string())?;
        ledger.record_run(&run).map_err(|e| e.to_string())?;
        Ok(v["build_id"].as_str().unwrap().to_string())
    }

    pub fn backups(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root().join(".harness/backups"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// Compares two `sha256sum` listings and names what differs.
pub fn unchanged(before: &str, after: &str) -> Outcome {
    let a: std::collections::BTreeSet<&str> = before.lines().collect();
    let b: std::collections::BTreeSet<&str> = after.lines().collect();
    let gone: Vec<&&str> = a.difference(&b).collect();
    let new: Vec<&&str> = b.difference(&a).collect();
    ensure(gone.is_empty() && new.is_empty(), || {
        format!("files on the twin changed:\n  before only: {gone:?}\n  after only: {new:?}")
    })
}

pub fn expect_exit(o: &Output, code: i32) -> Outcome {
    ensure(o.status.code() == Some(code), || {
        format!("expected exit {code}, got {}", describe(o))
    })
}

pub const MARKER: &str =
    "INSERT INTO settings (key, value) VALUES ('e2e_marker', '\"before-deploy\"')";
pub const MARKER_Q: &str = "SELECT value FROM settings WHERE key = 'e2e_marker'";

/// A twin serving an older build of `p` (a changed comment gives a new build id) with a marker row.
pub fn twin_with_old_release(p: &Project) -> Result<(Twin, String), Failed> {
    let twin = Twin::start()?;
    let old_zip = p.root().join(".harness/old.zip");
    std::fs::create_dir_all(p.root().join(".harness")).unwrap();
    p.edit("src/app/__init__.py", |s| {
        format!("{s}\n# the previous release\n")
    });
    let old = p.build_to(&old_zip)?;
    p.git(&["checkout", "--", "src/app/__init__.py"]);
    twin.install(&old_zip, &old)?;
    twin.sql(MARKER)?;
    Ok((twin, old))
}

/// Waits (up to 60 s) until `test` succeeds in the twin, e.g. until a running deploy holds the
/// lock. A command that ends first fails the wait with its output.
pub fn wait_on_twin(
    twin: &Twin,
    child: &mut std::process::Child,
    test: &str,
) -> Result<(), Failed> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while twin.exec(test).is_err() {
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let o = take_output(child);
            return Err(format!("`{test}` never held on the twin: {}", describe(&o)).into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// The output of a spawned command, once it ends.
pub fn take_output(child: &mut std::process::Child) -> Output {
    use std::io::Read;
    let status = child.wait().unwrap();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_end(&mut stderr).unwrap();
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Fails when `lock` (a lock folder on the twin) is still there.
pub fn unlocked(twin: &Twin, lock: &str) -> Outcome {
    ensure(twin.exec(&format!("test ! -e {lock}")).is_ok(), || {
        format!("lock {lock} left behind")
    })
}

/// The lock of the twin's default layout.
pub const TWIN_LOCK: &str = "/home/deploy/.app.harness/lock";

/// A deploy (with `extra` arguments; none: after a green run) interrupted by `signal` once it
/// holds the server's lock, before the swap: exit 130, the lock released, production's files and
/// build unchanged.
pub fn interrupted_after_the_lock(signal: i32, extra: &[&str]) -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    if extra.is_empty() {
        p.record_green_run()?;
    }
    let live = "cd /home/deploy/app && find . -type f -print0 | sort -z | xargs -0 sha256sum";
    let before = twin.exec(live)?;
    let mut args = vec!["deploy", "webhosting"];
    args.extend_from_slice(extra);
    let mut child = p.spawn(&twin, &args);
    // The lock is held from the lock step until the end; the boot check keeps the upload waiting.
    wait_on_twin(&twin, &mut child, &format!("test -d {TWIN_LOCK}"))?;
    unsafe { libc::kill(child.id() as i32, signal) };
    let o = take_output(&mut child);
    expect_exit(&o, 130)?;
    ensure(text(&o.stderr).contains("production is unchanged"), || {
        describe(&o)
    })?;
    unlocked(&twin, TWIN_LOCK)?;
    unchanged(&before, &twin.exec(live)?)?;
    ensure(twin.build_id().as_deref() == Some(old.as_str()), || {
        "old build gone".into()
    })
}
