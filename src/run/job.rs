//! The playwright job: what the run directory gets for it (runner, plugin, pip's arguments,
//! report folder), the container's command, environment, copy of the tree, cache volume and
//! pytest cache, and what is collected afterwards.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::evidence::{self, BrowserEvent};
use super::junit::{self, SuiteResult};
use super::proxylog::{self, RouteStats};
use super::report::Attachments;
use super::select::Selected;
use crate::error::{Exit, Failure};
use crate::stack::Launch;
use crate::stack::compose::MountSpec;

const RUNNER: &str = include_str!("../../compose/runner/runner.sh");
const PLUGIN: &str = include_str!("../../compose/runner/harness_pytest.py");
const PLAYWRIGHT_PATCHES: &str = include_str!("../../compose/runner/harness_playwright.py");
const HARVEST: &str = include_str!("../../compose/runner/harvest.py");

/// Where the job's copy of the tree lives in the container.
pub const TREE_MOUNT: &str = "/repo";
/// The pytest cache (`-o cache_dir`), kept per project in `.harness/pytest-cache/`.
const CACHE_MOUNT: &str = "/pytest-cache";

/// The job's service name in compose/test.yml.
pub const SERVICE: &str = "playwright";
/// Created in the report folder once every service is ready; the runner waits for it.
pub const GO_FILE: &str = ".harness-go";
/// What the runner prints once pytest has exited, before it copies what the run wrote
/// (compose/runner/runner.sh): the other services are not needed after it.
pub const EXIT_LINE: &str = "harness-runner: pytest exited ";

/// Finds [`EXIT_LINE`] in the job's output as it streams in (a chunk may end mid-line) and
/// gives pytest's exit code.
#[derive(Default)]
pub struct ExitLine {
    line: Vec<u8>,
}

impl ExitLine {
    pub fn feed(&mut self, bytes: &[u8]) -> Option<i64> {
        let mut found = None;
        for &b in bytes {
            if b == b'\n' {
                if let Some(code) = self
                    .line
                    .strip_prefix(EXIT_LINE.as_bytes())
                    .and_then(|rest| std::str::from_utf8(rest).ok())
                    .and_then(|rest| rest.trim().parse().ok())
                {
                    found = Some(code);
                }
                self.line.clear();
            } else if self.line.len() < 128 {
                self.line.push(b);
            }
        }
        found
    }
}

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
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Session {
    /// Tests pytest would run after every deselection.
    #[serde(default)]
    pub collected: u32,
    /// Tests that went through setup, call and teardown (fewer when `-x` stopped the run).
    #[serde(default)]
    pub ran: u32,
    /// Tests left out one by one: `-k`, `-m`, `--deselect`, `--lf`, the mocks marker.
    #[serde(default)]
    pub deselected: u32,
    #[serde(default)]
    pub deselected_by_mocks: u32,
    /// Options that leave files out: `--ignore=...`, `--ignore-glob=...`, `--deselect=...`.
    #[serde(default)]
    pub narrowing: Vec<String>,
}

/// What the job brings besides the selection.
pub struct JobInput<'a> {
    pub selected: &'a Selected,
    pub tree: &'a super::tree::Tree,
    pub requirements: Option<&'a crate::requirements::RequirementSet>,
    /// `[test] args`, then `harness test -- ARGS`.
    pub user_args: &'a [String],
    /// `[test] env`.
    pub env: &'a crate::envfile::Layers,
    /// `.harness/pytest-cache` of the project.
    pub pytest_cache: PathBuf,
    /// The variable that gets the stack's Playwright server URL, when there is one.
    pub playwright_server_env: Option<String>,
}

fn io_fail(what: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(Exit::Environment, format!("{}: {e}", what.display()))
}

/// pytest's arguments: harness's own first, then the user's, then the selection. pytest reads
/// the project's `addopts` before all of them, so for options given twice harness's win over
/// the project's config, and the user's command line over both.
pub fn pytest_args(selected: &Selected, user_args: &[String], color: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "harness_pytest",
        "--junitxml=/report/junit.xml",
        // xunit1 keeps record_property() output and each case's file and line.
        "-o",
        "junit_family=xunit1",
        "-o",
        "cache_dir=/pytest-cache",
        // pytest-playwright's artifacts (its own traces and screenshots, when the suite asks
        // for them) land where the report looks.
        "--output=/report/artifacts",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--color={}", if color { "yes" } else { "no" }));
    args.extend(user_args.iter().cloned());
    args.extend(selected.extra.iter().cloned());
    if let Some(k) = &selected.keyword {
        args.push("-k".into());
        args.push(k.clone());
    }
    args.extend(selected.targets.iter().cloned());
    args
}

/// The venv volume's name: one per set of requirements (every file pip reads) and image, so a
/// warm run installs nothing.
fn venv_volume(requirements: Option<&crate::requirements::RequirementSet>, image: &str) -> String {
    let mut key = Sha256::new();
    key.update(b"harness-testvenv/2\0");
    key.update(requirements.map(|r| r.key_material()).unwrap_or_default());
    key.update([0]);
    key.update(image.as_bytes());
    format!("testvenv-{}", &hex::encode(key.finalize())[..16])
}

/// Writes the runner, the plugin and pip's arguments into `<run>/runner/`, creates the report
/// folder, and gives the playwright service its command, environment, copy of the tree, cached
/// venv and pytest cache.
pub fn prepare(launch: &mut Launch, input: &JobInput) -> Result<Job, Failure> {
    let runner_dir = launch.run_dir.join("runner");
    std::fs::create_dir_all(&runner_dir).map_err(io_fail(&runner_dir))?;
    let tree = input.tree;
    let in_tree = |p: &Path| -> String {
        let rel = p.strip_prefix(&tree.root).unwrap_or(p);
        format!("{TREE_MOUNT}/{}", rel.to_string_lossy())
    };
    // One argument per line for xargs: `-r` and a file in the job's copy of the tree.
    let pip_args: String = input
        .requirements
        .map(|r| {
            r.top
                .iter()
                .map(|t| {
                    let canon = t.canonicalize().unwrap_or_else(|_| t.clone());
                    format!("-r\n{}\n", in_tree(&canon))
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, text, mode) in [
        ("runner.sh", RUNNER.as_bytes(), 0o755),
        ("harness_pytest.py", PLUGIN.as_bytes(), 0o644),
        (
            "harness_playwright.py",
            PLAYWRIGHT_PATCHES.as_bytes(),
            0o644,
        ),
        ("harvest.py", HARVEST.as_bytes(), 0o644),
        ("pip-args", pip_args.as_bytes(), 0o644),
    ] {
        crate::fsutil::write_atomic(&runner_dir.join(name), text, mode)?;
    }
    crate::fsutil::create_private_dir(&launch.run_dir.join("report"))?;
    crate::fsutil::create_private_dir(&input.pytest_cache)?;

    let spec = launch.stack.services.get_mut(SERVICE).ok_or_else(|| {
        Failure::new(
            Exit::BadInput,
            "the stack has no `playwright` service to run the suite in",
        )
        .hint("a compose override must not remove it; see docs/compose.md")
    })?;
    let venv = venv_volume(input.requirements, &spec.image);
    spec.mounts.push(MountSpec::Volume {
        name: venv.clone(),
        target: "/venv".into(),
        read_only: false,
    });
    spec.mounts.push(MountSpec::Volume {
        name: TREE_VOLUME.into(),
        target: TREE_MOUNT.into(),
        read_only: false,
    });
    spec.mounts.push(MountSpec::Bind {
        source: input.pytest_cache.clone(),
        target: CACHE_MOUNT.into(),
        read_only: false,
    });
    let workdir = if tree.project.is_empty() {
        TREE_MOUNT.to_string()
    } else {
        format!("{TREE_MOUNT}/{}", tree.project)
    };
    spec.working_dir = Some(workdir.clone());
    spec.environment
        .extend(builtin_env(workdir, input.playwright_server_env.as_deref()));
    spec.environment = input.env.over(&spec.environment);
    let (uid, gid) = crate::fsutil::host_ids();
    spec.uploads.push(crate::stack::Upload {
        target: TREE_MOUNT.into(),
        source: crate::stack::upload::Source::Files {
            root: tree.root.clone(),
            files: std::sync::Arc::new(tree.files.clone()),
            rename: None,
        },
        owner: (uid, gid),
    });
    let args = pytest_args(
        input.selected,
        input.user_args,
        std::io::stderr().is_terminal(),
    );
    spec.command = Some(args.clone());
    launch.stack.volumes.insert(venv, true);
    launch.stack.volumes.insert(TREE_VOLUME.into(), false);
    Ok(Job { args })
}

/// What the job sets beside its compose service's environment: the folder pytest runs in and,
/// with `[test] playwright_server`, the server's address under the configured name.
pub(crate) fn builtin_env(
    workdir: String,
    playwright_server_env: Option<&str>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("HARNESS_WORKDIR".to_string(), workdir)]);
    if let Some(name) = playwright_server_env {
        env.insert(name.to_string(), crate::stack::playwright_server_url());
    }
    env
}

/// The run volume that holds the job's copy of the tree; removed with the run.
const TREE_VOLUME: &str = "tree";

/// What the run wrote into its copy of the tree, as the runner listed it.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Written {
    #[serde(default)]
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct WrittenFile {
    /// Relative to the tree's top; the copy is at `report/tree/<path>`.
    pub path: String,
    pub size: u64,
    /// Why it was not copied (too large).
    #[serde(default)]
    pub skipped: Option<String>,
    /// Where the run folder holding the copy is, relative to the report's ("" for its own;
    /// `../<id>/` for another worker's).
    #[serde(skip)]
    pub dir: String,
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
    pub written: Written,
    /// A red run's app log shows a write into the read-only vendor cache failing
    /// (`stack::writes_into_cache`).
    pub wrote_into_vendor_cache: bool,
}

#[derive(serde::Deserialize)]
struct SidecarLine {
    classname: String,
    name: String,
    #[serde(default)]
    artifacts: Vec<String>,
    #[serde(default)]
    started_at: Option<f64>,
    #[serde(default)]
    finished_at: Option<f64>,
    #[serde(default)]
    browser: Vec<BrowserEvent>,
}

/// The app's output with times, fetched from the engine after a red run (`finish`).
pub const APP_TIMED_LOG: &str = "app.timed.log";
/// The `*.log` files of the app's own folder, fetched with it (`a__b.log` for `a/b.log`).
pub const APP_LOG_FILES: &str = "app-files";

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

    let log = std::fs::read_to_string(run_dir.join("proxy-log/access.jsonl")).unwrap_or_default();
    let failed: std::collections::BTreeSet<String> = suite
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| {
            matches!(
                c.status,
                junit::CaseStatus::Failed | junit::CaseStatus::Error
            )
        })
        .map(|c| c.key())
        .collect();
    // Read only when something failed: a green run pays nothing for the failure evidence.
    let (app_lines, requests) = if failed.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let logs = run_dir.join("logs");
        let app = std::fs::read_to_string(logs.join(APP_TIMED_LOG)).unwrap_or_default();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(logs.join(APP_LOG_FILES))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                let name = entry.file_name().to_string_lossy().replace("__", "/");
                files.extend(evidence::parse_app_log(&name, &text));
            }
        }
        (
            evidence::merge_lines(evidence::parse_timed_log(&app), files),
            evidence::parse_proxy_log(&log),
        )
    };
    let wrote_into_vendor_cache = app_lines
        .iter()
        .any(|l| crate::stack::writes_into_cache(&l.text));

    let mut attachments: BTreeMap<String, Attachments> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(report_dir.join("harness-tests.jsonl")) {
        for line in text.lines() {
            let Ok(l) = serde_json::from_str::<SidecarLine>(line) else {
                continue;
            };
            let key = format!("{}::{}", l.classname, l.name);
            let entry = attachments.entry(key.clone()).or_default();
            entry.browser.extend(l.browser);
            if let (true, Some(start), Some(end)) =
                (failed.contains(&key), l.started_at, l.finished_at)
            {
                entry.server = Some(evidence::during(
                    evidence::Window { start, end },
                    &app_lines,
                    &requests,
                ));
            }
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

    let (routes, _unreadable) = proxylog::slowest_routes(&log, crate::ledger::MAX_ROUTES_PER_RUN);
    let browser = std::fs::read_to_string(report_dir.join("chromium-version.txt"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let session = std::fs::read(report_dir.join("harness-session.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let written = std::fs::read(report_dir.join("harness-tree.json"))
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
        written,
        wrote_into_vendor_cache,
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
    fn pytest_args_carry_the_plugin_junit_cache_then_the_users_then_the_selection() {
        let selected = Selected {
            targets: vec!["ui/test_a.py".into(), "ui/sub/test_b.py::test_x".into()],
            keyword: Some("login and not slow".into()),
            selection: Selection::Filtered { expr: "x".into() },
            files: vec![],
            extra: vec!["-m".into(), "smoke".into()],
        };
        let user = vec!["-p".to_string(), "no:cov".to_string(), "-x".to_string()];
        let args = pytest_args(&selected, &user, false);
        let joined = args.join(" ");
        assert!(
            joined.starts_with("-p harness_pytest --junitxml=/report/junit.xml"),
            "{joined}"
        );
        assert!(!joined.contains("no:cacheprovider"), "{joined}");
        assert!(joined.contains("-o cache_dir=/pytest-cache"), "{joined}");
        assert!(
            joined.contains("--color=no -p no:cov -x -m smoke -k"),
            "{joined}"
        );
        assert!(args.contains(&"login and not slow".to_string()));
        assert_eq!(args.last().unwrap(), "ui/sub/test_b.py::test_x");
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

    #[test]
    fn the_exit_line_is_found_across_chunks_and_nowhere_else() {
        let mut e = ExitLine::default();
        assert_eq!(
            e.feed(b"24 passed in 3.1s\nharness-runner: pytest ex"),
            None
        );
        assert_eq!(e.feed(b"ited 1\nmore"), Some(1));
        let mut e = ExitLine::default();
        assert_eq!(e.feed(b"print('harness-runner: pytest exited 0')\n"), None);
        assert_eq!(e.feed(b"harness-runner: pytest exited x\n"), None);
        assert_eq!(e.feed(b"harness-runner: pytest exited 0\n"), Some(0));
    }
}
