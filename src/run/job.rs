//! The playwright job: what the run directory gets for it (runner, plugin, requirements, report
//! folder), the container's command and cache volume, and what is collected afterwards.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::junit::{self, SuiteResult};
use super::proxylog::{self, RouteStats};
use super::report::Attachments;
use super::select::Selected;
use crate::error::{Exit, Failure};
use crate::stack::Launch;
use crate::stack::compose::MountSpec;

const RUNNER: &str = include_str!("../../compose/runner/runner.sh");
const PLUGIN: &str = include_str!("../../compose/runner/harness_pytest.py");

/// The job's service name in compose/test.yml.
pub const SERVICE: &str = "playwright";
/// Created in the report folder once every service is ready; the runner waits for it.
pub const GO_FILE: &str = ".harness-go";

/// The job as it will run.
pub struct Job {
    pub args: Vec<String>,
}

impl Job {
    pub fn args_display(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the plugin wrote about the session (harness-session.json).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Session {
    #[serde(default)]
    pub deselected_by_mocks: u32,
}

fn io_fail(what: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(Exit::Environment, format!("{}: {e}", what.display()))
}

/// pytest's arguments for a selection.
pub fn pytest_args(selected: &Selected, color: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "no:cacheprovider",
        "-p",
        "harness_pytest",
        "--junitxml=/report/junit.xml",
        // xunit1 keeps record_property() output and each case's file and line.
        "-o",
        "junit_family=xunit1",
        // pytest-playwright: keep what explains a failure, nothing for passing tests.
        "--tracing=retain-on-failure",
        "--screenshot=only-on-failure",
        "--output=/report/artifacts",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--color={}", if color { "yes" } else { "no" }));
    args.extend(selected.extra.iter().cloned());
    if let Some(k) = &selected.keyword {
        args.push("-k".into());
        args.push(k.clone());
    }
    args.extend(selected.targets.iter().cloned());
    args
}

/// Writes the runner, the plugin and the requirements into `<run>/runner/`, creates the report
/// folder, and gives the playwright service its command and cached venv.
pub fn prepare(
    launch: &mut Launch,
    selected: &Selected,
    requirements: Option<&[u8]>,
) -> Result<Job, Failure> {
    let runner_dir = launch.run_dir.join("runner");
    std::fs::create_dir_all(&runner_dir).map_err(io_fail(&runner_dir))?;
    for (name, text, mode) in [
        ("runner.sh", RUNNER.as_bytes(), 0o755),
        ("harness_pytest.py", PLUGIN.as_bytes(), 0o644),
        ("requirements.txt", requirements.unwrap_or_default(), 0o644),
    ] {
        crate::fsutil::write_atomic(&runner_dir.join(name), text, mode)?;
    }
    crate::fsutil::create_private_dir(&launch.run_dir.join("report"))?;

    let spec = launch.stack.services.get_mut(SERVICE).ok_or_else(|| {
        Failure::new(
            Exit::BadInput,
            "the stack has no `playwright` service to run the suite in",
        )
        .hint("a compose override must not remove it; see docs/compose.md")
    })?;
    // One venv per requirements file and image: a warm run installs nothing.
    let mut key = Sha256::new();
    key.update(requirements.unwrap_or_default());
    key.update([0]);
    key.update(spec.image.as_bytes());
    let venv = format!("testvenv-{}", &hex::encode(key.finalize())[..16]);
    spec.mounts.push(MountSpec::Volume {
        name: venv.clone(),
        target: "/venv".into(),
        read_only: false,
    });
    let args = pytest_args(selected, std::io::stderr().is_terminal());
    spec.command = Some(args.clone());
    launch.stack.volumes.insert(venv, true);
    Ok(Job { args })
}

/// What the job left, read from the run directory.
pub struct Collected {
    pub suite: Option<SuiteResult>,
    pub junit: Option<PathBuf>,
    pub attachments: BTreeMap<String, Attachments>,
    pub page_screenshots: Vec<String>,
    pub routes: Vec<RouteStats>,
    pub browser: Option<String>,
    pub session: Session,
}

#[derive(serde::Deserialize)]
struct SidecarLine {
    classname: String,
    name: String,
    #[serde(default)]
    artifacts: Vec<String>,
}

/// Makes every file the job wrote readable only by the user (traces and screenshots can hold
/// typed passwords), then reads junit.xml, the plugin's files and the proxy log.
pub fn collect(run_dir: &Path) -> Result<Collected, Failure> {
    let report_dir = run_dir.join("report");
    restrict(&report_dir);
    restrict(&run_dir.join("proxy-log"));

    let junit_path = report_dir.join("junit.xml");
    let suite = match std::fs::read_to_string(&junit_path) {
        Ok(text) => Some(junit::parse(&text).map_err(|e| {
            Failure::new(Exit::Environment, format!("{}: {e}", junit_path.display()))
        })?),
        Err(_) => None,
    };

    let mut attachments: BTreeMap<String, Attachments> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(report_dir.join("harness-tests.jsonl")) {
        for line in text.lines() {
            let Ok(l) = serde_json::from_str::<SidecarLine>(line) else {
                continue;
            };
            let entry = attachments
                .entry(format!("{}::{}", l.classname, l.name))
                .or_default();
            for a in l.artifacts {
                let rel = format!("report/{a}");
                if a.ends_with(".png") {
                    entry.screenshots.push(rel);
                } else if a.ends_with(".zip") {
                    entry.traces.push(rel);
                } else {
                    entry.other.push(rel);
                }
            }
        }
    }

    let mut page_screenshots: Vec<String> = walkdir::WalkDir::new(report_dir.join("screenshots"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            e.path()
                .strip_prefix(run_dir)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    page_screenshots.sort();

    let log = std::fs::read_to_string(run_dir.join("proxy-log/access.jsonl")).unwrap_or_default();
    let (routes, _unreadable) = proxylog::slowest_routes(&log, 15);
    let browser = std::fs::read_to_string(report_dir.join("chromium-version.txt"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let session = std::fs::read(report_dir.join("harness-session.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Ok(Collected {
        junit: suite.as_ref().map(|_| junit_path),
        suite,
        attachments,
        page_screenshots,
        routes,
        browser,
        session,
    })
}

/// Files 0600, folders 0700, below `dir`. Best effort: a file the job made unreadable to us
/// stays as it is.
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        let mode = if entry.file_type().is_dir() {
            0o700
        } else {
            0o600
        };
        let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Selection;

    #[test]
    fn pytest_args_carry_the_plugin_junit_traces_and_the_selection() {
        let selected = Selected {
            targets: vec!["test_a.py".into(), "sub/test_b.py::test_x".into()],
            keyword: Some("login and not slow".into()),
            selection: Selection::Filtered { expr: "x".into() },
            files: vec![],
            extra: vec!["-m".into(), "smoke".into()],
        };
        let args = pytest_args(&selected, false);
        let joined = args.join(" ");
        assert!(
            joined
                .starts_with("-p no:cacheprovider -p harness_pytest --junitxml=/report/junit.xml")
        );
        assert!(joined.contains("--tracing=retain-on-failure"));
        assert!(args.contains(&"login and not slow".to_string()));
        assert!(joined.contains("-m smoke -k"));
        assert_eq!(args.last().unwrap(), "sub/test_b.py::test_x");
        assert!(args.contains(&"--color=no".to_string()));
    }

    #[test]
    fn collect_reads_junit_sidecar_and_restricts_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        std::fs::create_dir_all(run.join("report/artifacts/t-a")).unwrap();
        std::fs::create_dir_all(run.join("report/screenshots")).unwrap();
        std::fs::create_dir_all(run.join("proxy-log")).unwrap();
        std::fs::write(
            run.join("report/junit.xml"),
            r#"<testsuite time="2"><testcase classname="test_a" name="test_x" time="1"><failure message="m">t</failure></testcase></testsuite>"#,
        )
        .unwrap();
        std::fs::write(run.join("report/artifacts/t-a/trace.zip"), b"PK").unwrap();
        std::fs::write(run.join("report/artifacts/t-a/test-failed-1.png"), b"png").unwrap();
        std::fs::write(run.join("report/screenshots/login.png"), b"png").unwrap();
        std::fs::write(
            run.join("report/harness-tests.jsonl"),
            r#"{"nodeid":"test_a.py::test_x","classname":"test_a","name":"test_x","outcome":"failed","duration":1.0,"artifacts":["artifacts/t-a/test-failed-1.png","artifacts/t-a/trace.zip"]}"#,
        )
        .unwrap();
        std::fs::write(
            run.join("report/harness-session.json"),
            r#"{"deselected_by_mocks":2}"#,
        )
        .unwrap();
        std::fs::write(
            run.join("report/chromium-version.txt"),
            "Chromium 131.0 built on Debian\n",
        )
        .unwrap();
        let c = collect(run).unwrap();
        assert_eq!(c.suite.as_ref().unwrap().counts().failed, 1);
        let a = &c.attachments["test_a::test_x"];
        assert_eq!(
            a.screenshots,
            vec!["report/artifacts/t-a/test-failed-1.png"]
        );
        assert_eq!(a.traces, vec!["report/artifacts/t-a/trace.zip"]);
        assert_eq!(c.page_screenshots, vec!["report/screenshots/login.png"]);
        assert_eq!(c.session.deselected_by_mocks, 2);
        assert_eq!(c.browser.as_deref(), Some("Chromium 131.0 built on Debian"));
        let mode = std::fs::metadata(run.join("report/artifacts/t-a/trace.zip"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
