//! End-to-end cases for suites written before harness: `harness test` must run them as they
//! are, on the real Docker engine with the baked images (Apache + Passenger, nginx, the mocks,
//! pytest + Playwright driving Debian's Chromium).
//!
//! - examples/adopted-app, in place: green, its checkout left as it was, coverage.xml linked;
//! - tests/fixtures/old-suite: each trait that used to stop such a suite ("the stops");
//! - tests/fixtures/tls-clients: every TLS client of the job against the run's CA and a foreign one;
//! - a failing test of a suite that drives its own browser leaves a screenshot and a trace;
//! - the stack's Playwright server, and a client of another Playwright version;
//! - examples/config-homes: pyproject.toml, setup.cfg and tox.ini decide what is collected;
//! - tests/fixtures/dotenv-app: settings kept in env files reach the app and the job, and their
//!   secrets reach nothing harness writes.
//!
//! Without a Docker daemon the Docker cases are ignored, unless CI is set: then they fail.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::Failed;

mod support;

use support::{Outcome, describe, ensure, resources_with, text};

fn main() {
    support::run_docker_suite(
        "adopt",
        vec![
            (
                "adopted_app_runs_green_unchanged_and_leaves_its_checkout_as_it_was",
                adopted_app_runs_green_unchanged_and_leaves_its_checkout_as_it_was,
            ),
            (
                "each_stop_of_an_old_suite_passes",
                each_stop_of_an_old_suite_passes,
            ),
            (
                "every_tls_client_in_the_job_trusts_the_run_and_rejects_a_foreign_ca",
                every_tls_client_in_the_job_trusts_the_run_and_rejects_a_foreign_ca,
            ),
            (
                "a_failing_test_of_a_suite_with_its_own_browser_shows_a_screenshot_and_a_trace",
                a_failing_test_of_a_suite_with_its_own_browser_shows_a_screenshot_and_a_trace,
            ),
            (
                "the_stacks_playwright_server_serves_connect_and_names_both_versions_on_a_mismatch",
                the_stacks_playwright_server_serves_connect_and_names_both_versions_on_a_mismatch,
            ),
            (
                "pyproject_setup_cfg_and_tox_ini_decide_what_is_collected_and_sharded",
                pyproject_setup_cfg_and_tox_ini_decide_what_is_collected_and_sharded,
            ),
            (
                "init_on_the_adopted_app_with_only_its_todo_lines_filled_runs_green",
                init_on_the_adopted_app_with_only_its_todo_lines_filled_runs_green,
            ),
            (
                "up_stops_when_the_app_does_not_show_the_packages_build",
                up_stops_when_the_app_does_not_show_the_packages_build,
            ),
            (
                "a_value_only_in_a_committed_env_defaults_is_served_by_the_stacks_app",
                a_value_only_in_a_committed_env_defaults_is_served_by_the_stacks_app,
            ),
            (
                "a_private_env_file_overrides_env_defaults_in_the_stack",
                a_private_env_file_overrides_env_defaults_in_the_stack,
            ),
            (
                "the_job_sees_its_env_file_and_no_env_file_secret_reaches_run_ledger_or_export",
                the_job_sees_its_env_file_and_no_env_file_secret_reaches_run_ledger_or_export,
            ),
        ],
        vec![
            (
                "the_adopted_suite_holds_nothing_written_for_harness",
                the_adopted_suite_holds_nothing_written_for_harness,
            ),
            (
                "arguments_harness_needs_are_refused_with_exit_2_before_anything_starts",
                arguments_harness_needs_are_refused_with_exit_2_before_anything_starts,
            ),
        ],
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A project `harness` runs on: a copy of a fixture, or an example in place. `down --all` on
/// drop, so a failed case leaves nothing running.
struct Project {
    root: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

impl Project {
    fn copy_of(src: &Path) -> Project {
        let dir = support::copy_project(src);
        Project {
            root: dir.path().canonicalize().unwrap(),
            _copy: Some(dir),
        }
    }

    fn in_place(dir: &Path) -> Project {
        Project {
            root: dir.canonicalize().unwrap(),
            _copy: None,
        }
    }

    fn harness(&self) -> Command {
        let mut c = Command::new(support::harness_bin());
        c.arg("--project").arg(&self.root);
        // Never a registry: the images are baked (scripts/test.sh does it before the suites).
        c.env("HARNESS_OFFLINE", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.harness().args(args).output().expect("run harness")
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn append(&self, rel: &str, body: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.root.join(rel))
            .unwrap();
        f.write_all(body.as_bytes()).unwrap();
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["runs", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    fn left_behind(&self) -> Vec<String> {
        resources_with(&format!("harness.root={}", self.root.display()))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--all"]);
    }
}

/// `harness --json test` outcome.
fn outcome(o: &Output) -> Result<serde_json::Value, Failed> {
    serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("no JSON outcome ({e}): {}", describe(o)).into())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn short(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (last 80 lines):\n{}",
        o.status.code(),
        text(&o.stdout),
        tail(&text(&o.stderr), 80)
    )
}

/// junit.xml's test cases: name → "passed" / "failed" / "error" / "skipped".
fn junit_cases(run_dir: &Path) -> Result<BTreeMap<String, String>, Failed> {
    let xml = std::fs::read_to_string(run_dir.join("report/junit.xml"))?;
    let mut cases = BTreeMap::new();
    for part in xml.split("<testcase ").skip(1) {
        let name = part
            .split(" name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        let body = part.split("</testcase>").next().unwrap_or_default();
        let status = if body.contains("<failure") {
            "failed"
        } else if body.contains("<error") {
            "error"
        } else if body.contains("<skipped") {
            "skipped"
        } else {
            "passed"
        };
        cases.insert(name, status.to_string());
    }
    Ok(cases)
}

/// Every file below `dir` but harness's own `.harness/`: path, size and mtime.
fn listing(dir: &Path) -> Vec<(String, u64, i128)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".harness")
        .flatten()
    {
        if e.file_type().is_dir() {
            continue;
        }
        let m = e.metadata().unwrap();
        use std::os::unix::fs::MetadataExt;
        out.push((
            e.path().strip_prefix(dir).unwrap().display().to_string(),
            m.len(),
            m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        ));
    }
    out.sort();
    out
}

fn git_status(dir: &Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--ignored", "--", "."])
        .output()
        .expect("git status");
    text(&out.stdout)
}

fn adopted_app_runs_green_unchanged_and_leaves_its_checkout_as_it_was() -> Outcome {
    let app = repo().join("examples/adopted-app");
    let p = Project::in_place(&app);
    // Both packages first, so the run reuses them (--skip-build) and the state files the builds
    // write (harness's own outputs, as .harness/ is) stay as they are during the run.
    for args in [&["build", "--local"][..], &["build"]] {
        let o = p.run(args);
        ensure(o.status.success(), || short(&o))?;
    }
    let status_before = git_status(&app);
    let files_before = listing(&app);

    let o = p.run(&["--json", "test", "--with-mocks", "--skip-build"]);
    ensure(o.status.code() == Some(0), || short(&o))?;
    let v = outcome(&o)?;
    ensure(v["outcome"] == "green" && v["selection"] == "full", || {
        short(&o)
    })?;
    ensure(v["passed"].as_u64().unwrap_or(0) >= 12, || short(&o))?;
    let err = text(&o.stderr);
    // The suite's own pins won inside the job's venv, and its pytest.ini applied.
    ensure(err.contains("pytest-9."), || short(&o))?;
    ensure(err.contains("configfile: pytest.ini"), || short(&o))?;
    ensure(
        err.contains("Coverage XML written to file coverage.xml"),
        || short(&o),
    )?;

    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    let cases = junit_cases(&run_dir)?;
    for needed in [
        "test_contact_form_mails_the_admin",
        "test_a_record_saved_in_the_form_reaches_netcup",
        "test_geoip_lookup_names_the_country",
        "test_whoami_knows_the_client",
        "test_admin_logs_in_and_keeps_the_session",
    ] {
        ensure(
            cases.get(needed).map(String::as_str) == Some("passed"),
            || format!("{needed}: {cases:?}"),
        )?;
    }
    let html = std::fs::read_to_string(run_dir.join("report.html"))?;
    for linked in [
        "report/tree/examples/adopted-app/coverage.xml",
        "report/tree/examples/adopted-app/ui_tests/screenshots/home.png",
        "report/tree/examples/adopted-app/ui_tests/.auth/admin.json",
    ] {
        ensure(html.contains(&format!("href=\"{linked}\"")), || {
            format!("the report does not link {linked}")
        })?;
        ensure(run_dir.join(linked).is_file(), || format!("no {linked}"))?;
    }
    let coverage =
        std::fs::read_to_string(run_dir.join("report/tree/examples/adopted-app/coverage.xml"))?;
    ensure(coverage.contains("tokens.py"), || coverage.clone())?;

    ensure(git_status(&app) == status_before, || {
        format!(
            "git status changed:\nbefore:\n{status_before}\nafter:\n{}",
            git_status(&app)
        )
    })?;
    let files_after = listing(&app);
    ensure(files_after == files_before, || {
        let changed: Vec<_> = files_after
            .iter()
            .filter(|f| !files_before.contains(f))
            .chain(files_before.iter().filter(|f| !files_after.contains(f)))
            .collect();
        format!("the app folder changed: {changed:?}")
    })?;
    let left = p.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn the_adopted_suite_holds_nothing_written_for_harness() -> Outcome {
    let app = repo().join("examples/adopted-app");
    let mut files = vec![app.join("pytest.ini")];
    files.extend(
        walkdir::WalkDir::new(app.join("ui_tests"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path()),
    );
    ensure(files.len() > 5, || format!("{files:?}"))?;
    for f in files {
        let body = std::fs::read_to_string(&f)?;
        for word in ["HARNESS_", "PLAYWRIGHT_CHROMIUM", "executable_path"] {
            ensure(!body.contains(word), || {
                format!("{} mentions `{word}`", f.display())
            })?;
        }
    }
    Ok(())
}

fn each_stop_of_an_old_suite_passes() -> Outcome {
    let p = Project::copy_of(&fixture("old-suite"));
    let o = p.run(&["--json", "test", "--", "--maxfail=7"]);
    ensure(o.status.code() == Some(0), || short(&o))?;
    let v = outcome(&o)?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    let cases = junit_cases(&run_dir)?;
    // One test per stop; each failed (or never ran) before harness ran suites as they are.
    for (stop, case) in [
        (
            "1: -r/-c includes",
            "test_the_top_file_and_its_includes_were_installed",
        ),
        (
            "2: writes into the tree",
            "test_the_suite_writes_beside_itself",
        ),
        ("3: [test] env", "test_the_job_sees_test_env"),
        ("3: -- ARGS", "test_the_command_line_reached_pytest"),
        (
            "4: a package imported from the root",
            "test_the_suite_imports_itself_as_a_package",
        ),
        (
            "5: launch() with no executable path",
            "test_chromium_launch_with_no_executable_path",
        ),
        (
            "5: launch_persistent_context() too",
            "test_a_persistent_context_with_no_executable_path",
        ),
        (
            "5: one clear line for what the image lacks",
            "test_a_channel_or_another_browser_fails_with_one_clear_line",
        ),
        (
            "6: Node's TLS",
            "test_page_request_and_api_request_context_trust_the_run",
        ),
    ] {
        ensure(
            cases.get(case).map(String::as_str) == Some("passed"),
            || {
                format!(
                    "stop {stop}: {case} is {:?}\n{}",
                    cases.get(case),
                    short(&o)
                )
            },
        )?;
    }
    // Stop 2: pytest-cov from addopts wrote .coverage and coverage.xml into the job's copy.
    let tree = run_dir.join("report/tree");
    for written in ["coverage.xml", ".coverage", "ui_tests/output/state.json"] {
        ensure(tree.join(written).is_file(), || {
            format!("the run's {written} was not collected")
        })?;
    }
    ensure(!p.root.join("coverage.xml").exists(), || {
        "coverage.xml landed in the checkout".into()
    })?;
    // pytest's cache is the project's own, under .harness/, so --lf works across runs.
    ensure(
        p.root
            .join(".harness/pytest-cache/v/cache/nodeids")
            .is_file(),
        || "no pytest cache under .harness/pytest-cache".into(),
    )?;
    // Stop 3: the ledger has the arguments and the env's names, never its values; nothing was
    // left out, so the run is complete.
    let runs = p.runs();
    let run = runs.last().ok_or("no run recorded")?;
    ensure(run["selection"]["kind"] == "full", || format!("{run}"))?;
    ensure(
        run["pytest_args"] == serde_json::json!(["--maxfail=7"]),
        || format!("{run}"),
    )?;
    ensure(
        run["test_env"]["names"] == serde_json::json!(["OLD_SUITE_FLAG"]),
        || format!("{run}"),
    )?;
    let ledger = std::fs::read(p.root.join(".harness/ledger.db"))?;
    ensure(
        !String::from_utf8_lossy(&ledger).contains("from-harness-toml"),
        || "the ledger holds a [test] env value".into(),
    )?;

    // `-m smoke` deselects: still green, but not a complete run.
    let o = p.run(&["--json", "test", "--", "-m", "smoke"]);
    ensure(o.status.code() == Some(0), || short(&o))?;
    let v = outcome(&o)?;
    ensure(
        v["selection"]
            .as_str()
            .is_some_and(|s| s.contains("deselected")),
        || short(&o),
    )?;
    let left = p.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn every_tls_client_in_the_job_trusts_the_run_and_rejects_a_foreign_ca() -> Outcome {
    let p = Project::copy_of(&fixture("tls-clients"));
    // A CA of its own, which the run does not know, signs `foreign`'s certificate.
    let ca_dir = tempfile::tempdir()?;
    let (ca, _) = harness::tls::Ca::load_or_create(ca_dir.path()).map_err(|e| e.message)?;
    let leaf = ca.issue(&["foreign".to_string()]).map_err(|e| e.message)?;
    leaf.write(&p.root.join("foreign"), "foreign", &ca)
        .map_err(|e| e.message)?;
    let o = p.run(&["--json", "test"]);
    let v = outcome(&o)?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap_or_default());
    let cases = junit_cases(&run_dir)?;
    for client in ["requests", "httpx", "urllib", "aiohttp", "node", "chromium"] {
        for test in ["test_trusts_the_run_ca", "test_rejects_a_foreign_ca"] {
            let name = format!("{test}[{client}]");
            ensure(
                cases.get(&name).map(String::as_str) == Some("passed"),
                || format!("{name}: {:?}\n{}", cases.get(&name), short(&o)),
            )?;
        }
    }
    ensure(o.status.code() == Some(0), || short(&o))
}

const BROKEN: &str = r#"async def test_the_dashboard_has_a_heading_it_does_not_have(admin_page):
    assert await admin_page.text_content("h1") == "A heading this app never had"
"#;

fn a_failing_test_of_a_suite_with_its_own_browser_shows_a_screenshot_and_a_trace() -> Outcome {
    let p = Project::copy_of(&repo().join("examples/adopted-app"));
    p.write("ui_tests/test_zz_broken.py", BROKEN);
    let o = p.run(&[
        "--json",
        "test",
        "--with-mocks",
        "ui_tests/test_zz_broken.py",
        "ui_tests/test_geo.py",
    ]);
    ensure(o.status.code() == Some(1), || short(&o))?;
    let v = outcome(&o)?;
    ensure(v["failed"] == 1 && v["passed"] == 2, || short(&o))?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    let html = std::fs::read_to_string(run_dir.join("report.html"))?;
    let at = html
        .find("test_the_dashboard_has_a_heading_it_does_not_have")
        .ok_or("the report does not name the failing test")?;
    let section = &html[at..html.len().min(at + 400_000)];
    ensure(section.contains("data:image/png;base64,"), || {
        "no screenshot of the suite's own page in the failure".into()
    })?;
    let trace_at = section
        .find("trace.zip\"")
        .ok_or("no trace linked from the failure")?;
    let href_start = section[..trace_at].rfind("href=\"").ok_or("no href")? + 6;
    let trace = run_dir.join(&section[href_start..trace_at + 9]);
    // A Playwright trace: a zip whose entries include the trace events.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&trace)?)?;
    let names: Vec<String> = (0..zip.len())
        .map(|i| {
            zip.by_index(i)
                .unwrap()
                .name()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ensure(names.iter().any(|n| n.ends_with(".trace")), || {
        format!("{}: {names:?}", trace.display())
    })?;
    let mut events = String::new();
    let name = names
        .iter()
        .find(|n| n.ends_with(".trace"))
        .unwrap()
        .clone();
    zip.by_name(&name)?.read_to_string(&mut events)?;
    ensure(events.contains("/admin"), || {
        "the trace does not show the failing test's page".into()
    })?;
    // Passing tests keep no trace.
    let kept = walkdir::WalkDir::new(run_dir.join("report/artifacts"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".zip"))
        .count();
    ensure(kept == 1, || format!("{kept} traces kept for one failure"))
}

const REMOTE: &str = r#"import os


async def test_the_browser_is_the_servers(client):
    assert os.environ["PLAYWRIGHT_SERVER_WS"] == "ws://playwright-server:3000/playwright"
    assert client.browser._impl_obj._connection.is_remote
"#;

fn the_stacks_playwright_server_serves_connect_and_names_both_versions_on_a_mismatch() -> Outcome {
    let p = Project::copy_of(&repo().join("examples/adopted-app"));
    p.append("harness.toml", "playwright_server = true\n");
    p.write("ui_tests/test_zz_remote.py", REMOTE);
    let o = p.run(&[
        "--json",
        "test",
        "--with-mocks",
        "-k",
        "remote or whoami or login_page or geoip",
    ]);
    ensure(o.status.code() == Some(0), || short(&o))?;
    let v = outcome(&o)?;
    ensure(v["passed"].as_u64().unwrap_or(0) >= 4, || short(&o))?;

    // `up` starts it too and says where it is.
    let o = p.run(&["--json", "up"]);
    ensure(o.status.success(), || short(&o))?;
    let up: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let url = up["urls"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["service"] == "playwright-server"))
        .and_then(|u| u["url"].as_str())
        .ok_or_else(|| format!("no playwright-server URL: {up}"))?
        .to_string();
    let rest = url
        .strip_prefix("ws://127.0.0.1:")
        .ok_or_else(|| url.clone())?;
    let (port, path) = rest.split_once('/').ok_or_else(|| url.clone())?;
    let port: u16 = port.parse()?;
    // The handshake a Playwright client of another version makes: its User-Agent names it.
    let answer = ws_handshake(
        port,
        &format!("/{path}"),
        "Playwright/1.50.0 (x64; debian 12) python/3.11",
    )?;
    ensure(answer.starts_with("HTTP/1.1 428"), || answer.clone())?;
    ensure(
        answer.contains("server version: v1.64") && answer.contains("client version: v1.50"),
        || answer.clone(),
    )?;
    let same = ws_handshake(
        port,
        &format!("/{path}"),
        "Playwright/1.64.1 (x64; debian 12) python/3.11",
    )?;
    ensure(same.starts_with("HTTP/1.1 101"), || same.clone())
}

/// A WebSocket upgrade request to 127.0.0.1:port; returns the head of the answer.
fn ws_handshake(port: u16, path: &str, agent: &str) -> Result<String, Failed> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nUser-Agent: {agent}\r\nx-playwright-browser: chromium\r\n\r\n"
    )?;
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") || got.len() < 64 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&got).contains("client version") {
            break;
        }
    }
    Ok(text(&got))
}

fn pyproject_setup_cfg_and_tox_ini_decide_what_is_collected_and_sharded() -> Outcome {
    for home in ["pyproject-toml", "setup-cfg", "tox-ini"] {
        let p = Project::copy_of(&repo().join("examples/config-homes").join(home));
        let o = p.run(&["--json", "test"]);
        ensure(o.status.code() == Some(0), || {
            format!("{home}: {}", short(&o))
        })?;
        let v = outcome(&o)?;
        ensure(v["passed"] == 2 && v["files"] == 2, || {
            format!("{home}: {}", short(&o))
        })?;
        let cases = junit_cases(&PathBuf::from(v["run_dir"].as_str().unwrap()))?;
        ensure(
            !cases.contains_key("test_collected_only_when_the_project_config_is_ignored"),
            || format!("{home}: the default python_files were used: {cases:?}"),
        )?;
        if home == "pyproject-toml" {
            // The shards deal the files the project's python_files select: one each.
            let mut seen = Vec::new();
            for shard in ["1/2", "2/2"] {
                let o = p.run(&["--json", "test", "--shard", shard]);
                ensure(o.status.code() == Some(0), || short(&o))?;
                let v = outcome(&o)?;
                ensure(v["files"] == 1 && v["passed"] == 1, || short(&o))?;
                seen.extend(
                    junit_cases(&PathBuf::from(v["run_dir"].as_str().unwrap()))?.into_keys(),
                );
            }
            seen.sort();
            ensure(
                seen == [
                    "test_the_app_answers_health",
                    "test_the_project_config_applied",
                ],
                || format!("{seen:?}"),
            )?;
        }
    }
    Ok(())
}

fn arguments_harness_needs_are_refused_with_exit_2_before_anything_starts() -> Outcome {
    let p = Project::copy_of(&fixture("old-suite"));
    for (args, says) in [
        (&["test", "--", "--junitxml=mine.xml"][..], "--junitxml"),
        (
            &["test", "--", "-p", "no:harness_pytest"],
            "no:harness_pytest",
        ),
        (&["test", "--", "--co"], "only collects"),
        (&["test", "--", "--output", "elsewhere"], "--output"),
    ] {
        let o = p.run(args);
        ensure(o.status.code() == Some(2), || short(&o))?;
        ensure(text(&o.stderr).contains(says), || short(&o))?;
    }
    // An editable install in an included file: the file and the line.
    p.write("requirements/base.txt", "requests\n-e ./lib\n");
    let o = p.run(&["test"]);
    ensure(o.status.code() == Some(2), || short(&o))?;
    let err = text(&o.stderr);
    ensure(
        err.contains("requirements/base.txt:2:") && err.contains("editable"),
        || short(&o),
    )?;
    p.write("requirements/base.txt", "requests\n");
    // A bad alias names harness.toml's line.
    p.append(
        "harness.toml",
        "\n[stack]\naliases = { mailpit = [\"app\"] }\n",
    );
    let o = p.run(&["test"]);
    ensure(o.status.code() == Some(2), || short(&o))?;
    ensure(
        text(&o.stderr).contains("harness.toml:11:") && text(&o.stderr).contains("`app` service"),
        || short(&o),
    )?;
    ensure(!p.root.join(".harness/runs").exists(), || {
        "a refused run created a run folder".into()
    })
}

/// `harness init` on examples/adopted-app without its harness.toml: replacing only the TODO
/// lines (with what the hand-written config says for those keys) gives a green
/// `harness test --with-mocks`.
fn init_on_the_adopted_app_with_only_its_todo_lines_filled_runs_green() -> Outcome {
    let app = repo().join("examples/adopted-app");
    let hand: toml::Value = toml::from_str(&std::fs::read_to_string(app.join("harness.toml"))?)?;
    let p = Project::copy_of(&app);
    std::fs::remove_file(p.root.join("harness.toml"))?;
    let o = p.run(&["init"]);
    ensure(o.status.success(), || short(&o))?;
    let written = std::fs::read_to_string(p.root.join("harness.toml"))?;
    let mut section = String::new();
    let mut filled = Vec::new();
    let mut todos = 0;
    for line in written.lines() {
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        }
        let Some(todo) = line.strip_prefix(harness::init::TODO) else {
            filled.push(line.to_string());
            continue;
        };
        todos += 1;
        let key = todo.split(" = ").next().unwrap_or_default();
        let mut at = &hand;
        for part in section.split('.') {
            at = at
                .get(part)
                .ok_or_else(|| format!("the hand-written config has no [{section}]"))?;
        }
        // A key the hand-written config leaves out stays out.
        if let Some(v) = at.get(key) {
            filled.push(format!("{key} = {v}"));
        }
    }
    ensure(todos >= 5, || {
        format!("only {todos} TODO lines:\n{written}")
    })?;
    std::fs::write(p.root.join("harness.toml"), filled.join("\n") + "\n")?;
    let o = p.run(&["--json", "test", "--with-mocks"]);
    ensure(o.status.code() == Some(0), || {
        format!("{}\nthe config:\n{}", short(&o), filled.join("\n"))
    })?;
    let v = outcome(&o)?;
    ensure(
        v["outcome"] == "green" && v["passed"].as_u64().unwrap_or(0) >= 12,
        || short(&o),
    )
}

/// The stack's app must show the package's build through `[stack] version` before anything
/// runs against it: a probe that does not match stops `up` with the page's answer (exit 3) and
/// leaves nothing running.
fn up_stops_when_the_app_does_not_show_the_packages_build() -> Outcome {
    let p = Project::copy_of(&repo().join("examples/adopted-app"));
    let toml = std::fs::read_to_string(p.root.join("harness.toml"))?;
    p.write(
        "harness.toml",
        &toml.replace(
            "contains = \"build {{git_commit_short}}\"",
            "contains = \"release {{build_id}}\"",
        ),
    );
    let o = p.run(&["up"]);
    ensure(o.status.code() == Some(3), || short(&o))?;
    let err = text(&o.stderr);
    ensure(
        err.contains("does not show the package's build")
            && err.contains("does not contain \"release "),
        || short(&o),
    )?;
    ensure(p.left_behind().is_empty(), || {
        format!("left running: {:?}", p.left_behind())
    })
}

/// GET / of the app of `harness up --no-tls` on `p`, then `down`.
fn served_page(p: &Project) -> Result<String, Failed> {
    let o = p.run(&["--json", "up", "--no-tls"]);
    ensure(o.status.success(), || short(&o))?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let url = v["urls"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["service"] == "app")
        .and_then(|u| u["url"].as_str())
        .ok_or_else(|| format!("no app URL: {v}"))?
        .to_string();
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()?;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let down = p.run(&["down", "--all"]);
    ensure(down.status.success(), || short(&down))?;
    Ok(answer)
}

/// A fresh value no file of the repository holds, to look for afterwards.
fn unique(what: &str) -> String {
    format!("{what}-{}", hex_id())
}

fn hex_id() -> String {
    let mut b = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn a_value_only_in_a_committed_env_defaults_is_served_by_the_stacks_app() -> Outcome {
    let p = Project::copy_of(&fixture("dotenv-app"));
    let page = served_page(&p)?;
    // GREETING exists nowhere but .env.defaults; GREETING_PAGE expands it; APP_MODE is in the
    // file too, under harness.toml's inline env, which wins.
    shows(
        &page,
        &[
            "greeting=hello from .env.defaults\n",
            "page=hello from .env.defaults (page)\n",
            "mode=stack\n",
            "token_set=no\n",
        ],
    )
}

fn shows(page: &str, lines: &[&str]) -> Outcome {
    for want in lines {
        ensure(page.contains(want), || format!("no {want:?} in:\n{page}"))?;
    }
    Ok(())
}

fn a_private_env_file_overrides_env_defaults_in_the_stack() -> Outcome {
    let p = Project::copy_of(&fixture("dotenv-app"));
    let token = unique("private-token");
    p.write(
        ".env",
        &format!("GREETING='hello from the private .env'\nexport SECRET_TOKEN=\"{token}\"\n"),
    );
    // `harness env` says where each value comes from, and keeps the token to itself.
    let o = p.run(&["env"]);
    let listing = text(&o.stdout);
    ensure(
        o.status.success()
            && listing.lines().any(|l| {
                l.starts_with(".env:1 (over .env.defaults:2) ")
                    && l.ends_with(" GREETING=hello from the private .env")
            })
            && listing.contains("SECRET_TOKEN=******** (")
            && !listing.contains(&token),
        || short(&o),
    )?;
    let page = served_page(&p)?;
    shows(
        &page,
        &[
            "greeting=hello from the private .env\n",
            // Expanded in .env.defaults, before .env was read: the catalogue's own value.
            "page=hello from .env.defaults (page)\n",
            "token_set=yes\n",
        ],
    )
}

fn the_job_sees_its_env_file_and_no_env_file_secret_reaches_run_ledger_or_export() -> Outcome {
    let p = Project::copy_of(&fixture("dotenv-app"));
    let app_secret = unique("app-secret");
    let suite_secret = unique("suite-secret");
    p.write(".env", &format!("SECRET_TOKEN={app_secret}\n"));
    let suite_env = std::fs::read_to_string(p.root.join("ui_tests/suite.env"))?;
    p.write(
        "ui_tests/suite.env",
        &suite_env.replace("suite-token-placeholder", &suite_secret),
    );
    let o = p.run(&["--json", "test"]);
    let v = outcome(&o)?;
    ensure(v["outcome"] == "green", || short(&o))?;
    ensure(v["passed"] == 2, || short(&o))?;
    let id = v["ledger_run"]
        .as_i64()
        .ok_or_else(|| format!("no ledger run: {v}"))?;
    let export = p.run(&["runs", "export", &id.to_string()]);
    ensure(export.status.success(), || short(&export))?;
    let record: serde_json::Value = serde_json::from_slice(&export.stdout)?;
    // The ledger names the files it read and digests the values.
    let env = record.pointer("/run/test_env").cloned().unwrap_or_default();
    ensure(
        env["files"] == serde_json::json!(["ui_tests/suite.env"])
            && env["sha256"].as_str().is_some_and(|s| s.len() == 64),
        || format!("test_env in the export: {env}\n{record:#}"),
    )?;
    // Everything harness wrote for this run: its folder, the ledger, the export, what it printed.
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), o.stdout.clone()),
        ("stderr".into(), o.stderr.clone()),
        ("export".into(), export.stdout.clone()),
    ];
    for e in walkdir::WalkDir::new(p.root.join(".harness")) {
        let e = e?;
        if e.file_type().is_file() {
            places.push((e.path().display().to_string(), std::fs::read(e.path())?));
        }
    }
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap_or_default());
    ensure(
        places
            .iter()
            .any(|(n, _)| n.starts_with(&run_dir.display().to_string()))
            && places.iter().any(|(n, _)| n.ends_with("ledger.db")),
        || {
            format!(
                "the run folder or the ledger is missing from {}",
                p.root.display()
            )
        },
    )?;
    for secret in [&app_secret, &suite_secret] {
        let found: Vec<&str> = places
            .iter()
            .filter(|(_, bytes)| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
            .map(|(n, _)| n.as_str())
            .collect();
        ensure(found.is_empty(), || format!("{secret} found in {found:?}"))?;
    }
    Ok(())
}
