//! End-to-end cases for `harness test` against the real Docker daemon and the baked images: the
//! example app under Apache + Passenger behind the TLS proxy, the mocks, and pytest + Playwright
//! driving Debian's Chromium in the playwright job.
//!
//! Each case works in its own copy of examples/flask-app and checks the outcome from outside:
//! the exit code, the files in .harness/runs/<id>/, `harness runs --json` (the ledger) and the
//! docker CLI (nothing with the run's label may be left).
//!
//! Without a Docker daemon the Docker cases are ignored, unless CI is set: then they fail.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

mod support;

use support::{Outcome, ensure, resources_with, text};

fn main() {
    support::run_docker_suite(
        "test-run",
        vec![
            (
                "example_suite_with_mocks_is_green_reported_recorded_and_leaves_nothing",
                example_suite_with_mocks_is_green_reported_recorded_and_leaves_nothing,
            ),
            (
                "failing_tests_make_the_run_red_and_each_is_explained_by_its_own_app_log_console_and_screenshot",
                failing_tests_make_the_run_red_and_each_is_explained_by_its_own_app_log_console_and_screenshot,
            ),
            (
                "sigint_during_the_suite_exits_130_removes_the_stack_and_records_aborted",
                sigint_during_the_suite_exits_130_removes_the_stack_and_records_aborted,
            ),
            (
                "sigint_with_workers_exits_130_and_removes_every_workers_stack",
                sigint_with_workers_exits_130_and_removes_every_workers_stack,
            ),
            (
                "workers_run_one_merged_suite_green_then_red_and_leave_nothing",
                workers_run_one_merged_suite_green_then_red_and_leave_nothing,
            ),
            (
                "shards_run_disjoint_parts_whose_union_is_the_whole_suite",
                shards_run_disjoint_parts_whose_union_is_the_whole_suite,
            ),
            (
                "keep_leaves_the_stack_up_and_says_how_to_reach_and_stop_it",
                keep_leaves_the_stack_up_and_says_how_to_reach_and_stop_it,
            ),
            (
                "bind_mounts_give_the_same_green_run_with_the_jobs_own_exit_code",
                bind_mounts_give_the_same_green_run_with_the_jobs_own_exit_code,
            ),
            (
                "a_test_file_that_cannot_be_imported_makes_the_run_red_not_interrupted",
                a_test_file_that_cannot_be_imported_makes_the_run_red_not_interrupted,
            ),
            (
                "the_generated_workflow_runs_here_and_a_clean_clone_opens_the_gate_only_with_all_shards",
                the_generated_workflow_runs_here_and_a_clean_clone_opens_the_gate_only_with_all_shards,
            ),
        ],
        // Refused before Docker is asked for anything, so these always run.
        vec![(
            "bad_selection_is_refused_with_exit_2_before_anything_starts",
            bad_selection_is_refused_with_exit_2_before_anything_starts,
        )],
    )
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (last 60 lines):\n{}",
        o.status.code(),
        text(&o.stdout),
        tail(&text(&o.stderr), 60)
    )
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A copy of the example; `down --all` on drop so a failed case leaves nothing running.
struct Example {
    dir: tempfile::TempDir,
}

impl Example {
    fn new() -> Example {
        Example {
            dir: support::copy_example(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn harness(&self) -> Command {
        let mut c = Command::new(support::harness_bin());
        c.arg("--project").arg(self.dir.path());
        // Never a registry: the images are baked (scripts/test.sh does it before the suites).
        c.env("HARNESS_OFFLINE", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.harness().args(args).output().expect("run harness")
    }

    /// Replaces the suite with these files (name, content).
    fn write_tests(&self, files: &[(&str, &str)]) {
        let dir = self.dir.path().join("ui_tests");
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
    }

    /// Keeps only the given files of the example's suite (plus conftest, requirements).
    fn keep_only_tests(&self, keep: &[&str]) {
        let dir = self.dir.path().join("ui_tests");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("test_") && !keep.contains(&name.as_str()) {
                std::fs::remove_file(p).unwrap();
            }
        }
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["runs", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// The ledger holds a red run with `failed` failed tests, and nothing of the project is left in
    /// Docker.
    fn red_run_recorded_and_nothing_left(&self, failed: u64) -> Outcome {
        let runs = self.runs();
        ensure(
            runs.iter()
                .any(|r| r["outcome"] == "red" && r["failed"] == failed),
            || format!("no red run in the ledger: {runs:?}"),
        )?;
        let left = self.left_behind();
        ensure(left.is_empty(), || format!("left behind: {left:?}"))
    }

    fn left_behind(&self) -> Vec<String> {
        resources_with(&format!("harness.root={}", self.root().display()))
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--all"]);
    }
}

/// `harness --json test` outcome.
fn outcome(o: &Output) -> Result<serde_json::Value, Failed> {
    serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("no JSON outcome ({e}): {}", describe(o)).into())
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

fn example_suite_with_mocks_is_green_reported_recorded_and_leaves_nothing() -> Outcome {
    let ex = Example::new();
    let o = ex.run(&["--json", "test", "--with-mocks"]);
    ensure(o.status.code() == Some(0), || describe(&o))?;
    let v = outcome(&o)?;
    ensure(v["outcome"] == "green", || describe(&o))?;
    let passed = v["passed"].as_u64().unwrap_or(0);
    ensure(passed >= 10, || {
        format!("only {passed} passed: {}", describe(&o))
    })?;
    ensure(v["failed"] == 0 && v["errors"] == 0, || describe(&o))?;
    // pytest's output was streamed (its summary line is on stderr, not only in a file).
    ensure(
        text(&o.stderr).contains(&format!("{passed} passed")),
        || describe(&o),
    )?;

    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    let junit = run_dir.join("report/junit.xml");
    let report = run_dir.join("report.html");
    ensure(junit.is_file() && report.is_file(), || {
        format!("junit {} / report {}", junit.display(), report.display())
    })?;
    ensure(mode(&report) == 0o600 && mode(&junit) == 0o600, || {
        format!(
            "modes: report {:o}, junit {:o}",
            mode(&report),
            mode(&junit)
        )
    })?;
    let junit_text = std::fs::read_to_string(&junit)?;
    ensure(junit_text.matches("<testcase").count() >= 10, || {
        junit_text.clone()
    })?;
    let html = std::fs::read_to_string(&report)?;
    for needle in [
        "GREEN",
        "Slowest routes",
        "/admin/login",
        "Parity",
        "code fingerprint",
        "mode 0600",
    ] {
        ensure(html.contains(needle), || format!("report lacks `{needle}`"))?;
    }
    // Every service's log and the proxy's timing log were collected.
    for service in ["app", "proxy", "mailpit", "geoip", "netcup", "playwright"] {
        let log = run_dir.join(format!("logs/{service}.log"));
        ensure(log.is_file(), || format!("no {}", log.display()))?;
    }
    let access = std::fs::read_to_string(run_dir.join("proxy-log/access.jsonl"))?;
    ensure(access.contains("\"request_time\""), || {
        "empty proxy log".into()
    })?;
    // The proxy's own readiness probe is in the log, marked by its User-Agent, so the report's
    // slowest routes can leave it out (src/run/proxylog.rs).
    ensure(access.contains("\"agent\":\"harness-wait\""), || {
        format!("no readiness probe marked in the proxy log:\n{access}")
    })?;
    // The tests saved a screenshot on each page.
    let shots = std::fs::read_dir(run_dir.join("report/screenshots"))?.count();
    ensure(shots >= 10, || format!("{shots} screenshots"))?;

    // The ledger has the green run with both fingerprints, the images and the browser.
    let runs = ex.runs();
    let run = runs
        .iter()
        .find(|r| r["id"].as_i64() == v["ledger_run"].as_i64())
        .ok_or_else(|| format!("run {} not in the ledger: {runs:?}", v["ledger_run"]))?;
    ensure(run["outcome"] == "green", || format!("{run}"))?;
    ensure(run["selection"]["kind"] == "full", || format!("{run}"))?;
    ensure(
        run["code_fingerprint"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        || format!("{run}"),
    )?;
    ensure(
        run["schema_fingerprint"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        || format!("{run}"),
    )?;
    ensure(
        run["image_ids"]["playwright"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")),
        || format!("{run}"),
    )?;
    ensure(
        run["browser_version"]
            .as_str()
            .is_some_and(|s| s.contains("Chromium")),
        || format!("{run}"),
    )?;
    ensure(v["parity"] == "clean", || {
        format!("parity: {}", v["parity"])
    })?;
    // Every request carries the proxy's X-Request-Id in the log, for the failure sections.
    ensure(
        access.contains("\"request_id\":\"") && access.contains("\"msec\":"),
        || format!("no request ids or times in the proxy log:\n{access}"),
    )?;

    // The run refreshed the history page with its tests; nothing is flaky after one run.
    let history = ex.root().join(".harness/history.html");
    let page =
        std::fs::read_to_string(&history).map_err(|e| format!("{}: {e}", history.display()))?;
    ensure(mode(&history) == 0o600, || {
        format!("history mode {:o}", mode(&history))
    })?;
    ensure(
        page.contains("test_admin_login") && page.contains("<svg"),
        || "history.html lacks the run's tests or its charts".into(),
    )?;
    let flaky = ex.run(&["--json", "runs", "--flaky"]);
    ensure(
        flaky.status.success() && text(&flaky.stdout).trim() == "[]",
        || describe(&flaky),
    )?;

    let left = ex.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

const FAILING: &str = r#"import os

def test_the_login_page_says_something_it_does_not(page):
    page.goto(os.environ["UI_BASE_URL"] + "/admin/login")
    assert page.title() == "a title this app never had"
"#;

/// Two routes the app's copy gets, each failing with its own message.
const BOOM_ROUTES: &str = r#"

# Added by the e2e test: two routes that fail on purpose, each with its own message.
@application.route("/boom/<name>")
def _boom(name):
    raise RuntimeError(f"boom {name} on purpose")
"#;

const BOOM_TESTS: &str = r#"import os

def _hit(page, name):
    page.goto(os.environ["UI_BASE_URL"] + "/admin/login")
    status = page.evaluate("n => fetch('/boom/' + n).then(r => r.status)", name)
    assert status == 200, f"/boom/{name} answered {status}"

def test_alpha_route(page):
    _hit(page, "alpha")

def test_beta_route(page):
    _hit(page, "beta")
"#;

/// The report's cell of one test: from its name to its result badge (the cell holds the
/// failure's message, traceback, attachments and evidence).
fn report_row<'a>(html: &'a str, test: &str) -> Result<&'a str, Failed> {
    let start = html
        .find(&format!("<code>{test}"))
        .ok_or_else(|| format!("the report has no row for {test}"))?;
    let rest = &html[start..];
    let end = rest
        .find("</td><td><span class=\"badge")
        .ok_or_else(|| format!("the row of {test} has no result"))?;
    Ok(&rest[..end])
}

fn failing_tests_make_the_run_red_and_each_is_explained_by_its_own_app_log_console_and_screenshot()
-> Outcome {
    let ex = Example::new();
    ex.write_tests(&[
        ("test_zz_failing.py", FAILING),
        ("test_zz_boom.py", BOOM_TESTS),
    ]);
    ex.keep_only_tests(&["test_tls_proxy.py", "test_zz_failing.py", "test_zz_boom.py"]);
    let entry = ex.root().join("passenger_wsgi.py");
    let mut wsgi = std::fs::read_to_string(&entry)?;
    wsgi.push_str(BOOM_ROUTES);
    std::fs::write(&entry, wsgi)?;
    let o = ex.run(&["--json", "test", "--with-mocks"]);
    ensure(o.status.code() == Some(1), || describe(&o))?;
    let v = outcome(&o)?;
    ensure(v["outcome"] == "red" && v["failed"] == 3, || describe(&o))?;
    ensure(v["passed"].as_u64().unwrap_or(0) >= 1, || describe(&o))?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap());
    let html = std::fs::read_to_string(run_dir.join("report.html"))?;
    ensure(html.contains("RED"), || "report is not red".into())?;
    ensure(
        html.contains("test_the_login_page_says_something_it_does_not"),
        || "report does not name the failing test".into(),
    )?;
    ensure(html.contains("a title this app never had"), || {
        "report lacks the failure text".into()
    })?;
    ensure(html.contains("data:image/png;base64,"), || {
        "report has no embedded screenshot".into()
    })?;
    ensure(
        html.contains("title=\"open full size\"><img class=\"shot\""),
        || "the screenshot is not a thumbnail linking to the full size".into(),
    )?;
    ensure(html.contains("trace.zip"), || {
        "report links no trace".into()
    })?;
    // Each 500 is explained in its own test's section: the app's traceback of that request
    // (from the app's log, by time), the proxy's request with its X-Request-Id, and the
    // console error of the page; never the other test's.
    for (mine, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let row = report_row(&html, &format!("test_zz_boom::test_{mine}_route"))?;
        ensure(
            row.contains(&format!("RuntimeError: boom {mine} on purpose")),
            || format!("the {mine} section lacks its traceback:\n{row}"),
        )?;
        ensure(!row.contains(&format!("boom {other} on purpose")), || {
            format!("the {mine} section holds the {other} traceback:\n{row}")
        })?;
        ensure(
            row.contains("<code>console.error</code>") && row.contains(&format!("/boom/{mine}")),
            || format!("the {mine} section lacks the page's console error:\n{row}"),
        )?;
        ensure(
            row.contains(&format!("GET /boom/{mine}</code></td><td>500</td>")),
            || format!("the {mine} section lacks the proxy's 500:\n{row}"),
        )?;
    }
    // Traces can hold typed passwords: 0600 like the report.
    let trace = walkdir::WalkDir::new(run_dir.join("report/artifacts"))
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "trace.zip")
        .ok_or("no trace.zip of the failed test")?;
    ensure(mode(trace.path()) == 0o600, || {
        format!("trace mode {:o}", mode(trace.path()))
    })?;

    ex.red_run_recorded_and_nothing_left(3)
}

const SLEEPING: &str = r#"import time

def test_sleeps_until_interrupted():
    # Outlasts the harness-side test's patience.
    time.sleep(300)
"#;

fn sigint_during_the_suite_exits_130_removes_the_stack_and_records_aborted() -> Outcome {
    sigint_during_the_suite(1)
}

fn sigint_with_workers_exits_130_and_removes_every_workers_stack() -> Outcome {
    sigint_during_the_suite(2)
}

/// SIGINT once every worker's suite is running (each test file marks that it started).
fn sigint_during_the_suite(workers: usize) -> Outcome {
    let ex = Example::new();
    ex.keep_only_tests(&[]);
    let files: Vec<String> = (1..=workers)
        .map(|i| format!("test_sleep_{i}.py"))
        .collect();
    for f in &files {
        ex.write_tests(&[(f.as_str(), SLEEPING)]);
    }
    let mut child = ex
        .harness()
        .args(["test", "--workers", &workers.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Keep the pipe drained, and keep what it said for the failure message.
    let stderr = child.stderr.take().unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = said.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    // The suite's start, as harness says it: one `pytest …` line per worker, just before it
    // lets pytest go. (The job's /report is the container's own, so the test's marker file is
    // not on this machine.)
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let started = said
            .lock()
            .unwrap()
            .matches("pytest -p harness_pytest")
            .count();
        if started == workers {
            break;
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            return Err(format!("the suites never started:\n{}", said.lock().unwrap()).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let run_ids: Vec<String> = std::fs::read_dir(ex.root().join(".harness/runs"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    ensure(run_ids.len() == workers, || format!("runs: {run_ids:?}"))?;
    for id in &run_ids {
        ensure(
            !resources_with(&format!("harness.run={id}")).is_empty(),
            || format!("run {id} has no containers while its suite runs"),
        )?;
    }

    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("harness did not exit within 60 s of SIGINT".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = sent.elapsed();
    ensure(status.code() == Some(130), || {
        format!("exit {:?}\n{}", status.code(), said.lock().unwrap())
    })?;
    // Generous: this is behaviour, not a speed goal.
    ensure(took < Duration::from_secs(30), || format!("took {took:?}"))?;
    for id in &run_ids {
        let left = resources_with(&format!("harness.run={id}"));
        ensure(left.is_empty(), || format!("left behind: {left:?}"))?;
    }
    let left = ex.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))?;
    let runs = ex.runs();
    ensure(
        runs.iter().filter(|r| r["outcome"] == "aborted").count() == 1,
        || format!("not one aborted run in the ledger: {runs:?}"),
    )
}

/// Two stacks, one run: green with every file's tests in one junit.xml and one full ledger
/// record; then red when a file in the second worker's share fails, with that worker's
/// screenshot and trace in the one report. Nothing is left after either.
fn workers_run_one_merged_suite_green_then_red_and_leave_nothing() -> Outcome {
    let ex = Example::new();
    ex.keep_only_tests(&["test_tls_proxy.py"]);
    let names = ["alpha", "bravo", "charlie"];
    for n in names {
        ex.write_tests(&[(format!("test_{n}.py").as_str(), tiny_test(n).as_str())]);
    }
    let o = ex.run(&["--json", "test", "--workers", "2"]);
    ensure(o.status.code() == Some(0), || describe(&o))?;
    let v = outcome(&o)?;
    let ids: Vec<String> = v["workers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    ensure(ids.len() == 2 && ids[0] == v["run_id"], || describe(&o))?;
    for w in ["[w1] ", "[w2] "] {
        ensure(text(&o.stderr).contains(w), || describe(&o))?;
    }
    let junit = std::fs::read_to_string(
        PathBuf::from(v["run_dir"].as_str().unwrap()).join("report/junit.xml"),
    )?;
    for class in ["test_alpha", "test_bravo", "test_charlie", "test_tls_proxy"] {
        ensure(junit.contains(&format!("classname=\"{class}\"")), || {
            format!("merged junit lacks {class}: {junit}")
        })?;
    }
    let runs = ex.runs();
    ensure(
        runs.len() == 1 && runs[0]["outcome"] == "green" && runs[0]["selection"]["kind"] == "full",
        || format!("ledger: {runs:?}"),
    )?;
    let left = ex.left_behind();
    ensure(left.is_empty(), || {
        format!("left behind after green: {left:?}")
    })?;

    // Files sorted: alpha, bravo, tls_proxy, zz_failing; the fourth goes to the second worker.
    std::fs::remove_file(ex.dir.path().join("ui_tests/test_charlie.py"))?;
    ex.write_tests(&[("test_zz_failing.py", FAILING)]);
    let o = ex.run(&["--json", "test", "--with-mocks", "--workers", "2"]);
    ensure(o.status.code() == Some(1), || {
        format!("red run's exit: {}", describe(&o))
    })?;
    let v = outcome(&o)?;
    ensure(
        v["outcome"] == "red" && v["failed"] == 1 && v["passed"].as_u64() >= Some(3),
        || format!("red run's counts: {}", describe(&o)),
    )?;
    let second = v["workers"][1].as_str().unwrap_or_default().to_string();
    let html =
        std::fs::read_to_string(PathBuf::from(v["run_dir"].as_str().unwrap()).join("report.html"))?;
    ensure(html.contains("data:image/png;base64,"), || {
        "report has no embedded screenshot of the second worker's failure".into()
    })?;
    ensure(
        html.contains(&format!("../{second}/report/artifacts/")),
        || "report does not link the second worker's trace".into(),
    )?;
    ex.red_run_recorded_and_nothing_left(1)
}

fn tiny_test(name: &str) -> String {
    format!("def test_{name}():\n    assert True\n")
}

fn shards_run_disjoint_parts_whose_union_is_the_whole_suite() -> Outcome {
    let ex = Example::new();
    ex.keep_only_tests(&[]);
    let names = ["alpha", "bravo", "charlie", "delta", "echo"];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("test_{n}.py"), tiny_test(n)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    ex.write_tests(&refs);
    let mut seen: Vec<String> = Vec::new();
    for shard in ["1/2", "2/2"] {
        let o = ex.run(&["--json", "test", "--shard", shard]);
        ensure(o.status.code() == Some(0), || describe(&o))?;
        let v = outcome(&o)?;
        let junit = std::fs::read_to_string(
            PathBuf::from(v["run_dir"].as_str().unwrap()).join("report/junit.xml"),
        )?;
        // Each testcase's classname is its file (test_alpha, ...).
        for part in junit.split("<testcase ").skip(1) {
            let class = part
                .split("classname=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default();
            seen.push(class.to_string());
        }
    }
    seen.sort();
    let mut want: Vec<String> = names.iter().map(|n| format!("test_{n}")).collect();
    want.sort();
    ensure(seen == want, || {
        format!("shards ran {seen:?}, the suite is {want:?}")
    })?;
    let runs = ex.runs();
    let shards: Vec<String> = runs
        .iter()
        .filter(|r| r["selection"]["kind"] == "shard")
        .map(|r| format!("{}/{}", r["selection"]["index"], r["selection"]["total"]))
        .collect();
    ensure(shards == ["1/2", "2/2"], || {
        format!("ledger shards: {shards:?}")
    })?;
    let left = ex.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn keep_leaves_the_stack_up_and_says_how_to_reach_and_stop_it() -> Outcome {
    let ex = Example::new();
    ex.keep_only_tests(&[]);
    ex.write_tests(&[("test_one.py", &tiny_test("one"))]);
    let o = ex.run(&["test", "--keep"]);
    ensure(o.status.code() == Some(0), || describe(&o))?;
    let out = text(&o.stdout);
    let run_id = out
        .split("down --run ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .ok_or_else(|| format!("no `down --run ID` line: {}", describe(&o)))?
        .to_string();
    ensure(out.contains("https://127.0.0.1:"), || describe(&o))?;
    // Still up, and a later command's sweep leaves it alone.
    let status = ex.run(&["status"]);
    ensure(text(&status.stdout).contains(&run_id), || describe(&status))?;
    let url = out
        .lines()
        .find(|l| l.contains("http://127.0.0.1:") && l.contains("directly"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .ok_or_else(|| format!("no app URL: {out}"))?;
    let health = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{url}health"))
        .output()?;
    ensure(text(&health.stdout) == "200", || {
        format!("health: {}", describe(&health))
    })?;
    let down = ex.run(&["down", "--run", &run_id]);
    ensure(down.status.success(), || describe(&down))?;
    let left = resources_with(&format!("harness.run={run_id}"));
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

/// `HARNESS_BIND_MOUNTS=1` mounts host folders instead of uploading and downloading, so the
/// job has no output to bring back; the teardown that starts once pytest has exited must still
/// wait for the job's own exit (it once removed the job too, and a green suite became "exit 137").
fn bind_mounts_give_the_same_green_run_with_the_jobs_own_exit_code() -> Outcome {
    let ex = Example::new();
    ex.keep_only_tests(&[]);
    ex.write_tests(&[("test_one.py", &tiny_test("one"))]);
    let o = ex
        .harness()
        .env("HARNESS_BIND_MOUNTS", "1")
        .args(["--json", "test"])
        .output()?;
    ensure(o.status.code() == Some(0), || describe(&o))?;
    let v = outcome(&o)?;
    ensure(v["outcome"] == "green" && v["passed"] == 1, || describe(&o))?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap_or_default());
    let junit = std::fs::read_to_string(run_dir.join("report/junit.xml"))?;
    ensure(junit.contains("test_one"), || format!("junit: {junit}"))?;
    let left = ex.left_behind();
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn a_test_file_that_cannot_be_imported_makes_the_run_red_not_interrupted() -> Outcome {
    // pytest exits 2 ("interrupted") on collection errors; for harness that is a red run.
    let ex = Example::new();
    ex.keep_only_tests(&[]);
    ex.write_tests(&[
        ("test_ok.py", &tiny_test("ok")),
        (
            "test_broken_import.py",
            "import no_such_module\n\ndef test_x():\n    pass\n",
        ),
    ]);
    let o = ex.run(&["--json", "test"]);
    ensure(o.status.code() == Some(1), || describe(&o))?;
    let v = outcome(&o)?;
    ensure(v["outcome"] == "red" && v["errors"] == 1, || describe(&o))?;
    ensure(
        v["verdict"]
            .as_str()
            .unwrap_or_default()
            .contains("collecting"),
        || describe(&o),
    )?;
    let runs = ex.runs();
    ensure(runs.iter().any(|r| r["outcome"] == "red"), || {
        format!("{runs:?}")
    })
}

fn bad_selection_is_refused_with_exit_2_before_anything_starts() -> Outcome {
    let ex = Example::new();
    for (args, needle) in [
        (vec!["test", "--shard", "3/2"], "not a shard"),
        (vec!["test", "--shard", "9/9"], "has no test files"),
        (vec!["test", "harness.toml"], "outside the test folder"),
        (vec!["test", "ui_tests/nope.py"], "does not exist"),
        (vec!["test", "--workers", "0"], "not a worker count"),
        (vec!["test", "--workers", "many"], "not a worker count"),
        (
            vec!["test", "--workers", "2", "--keep"],
            "cannot be used with",
        ),
    ] {
        let o = ex.run(&args);
        ensure(o.status.code() == Some(2), || {
            format!("{args:?}: {}", describe(&o))
        })?;
        ensure(text(&o.stderr).contains(needle), || {
            format!("{args:?}: {}", describe(&o))
        })?;
    }
    std::fs::write(
        ex.dir.path().join("harness.toml"),
        std::fs::read_to_string(ex.dir.path().join("harness.toml"))?
            .replace("path = \"ui_tests\"", "path = \"no_such_folder\""),
    )?;
    let o = ex.run(&["test"]);
    ensure(o.status.code() == Some(2), || describe(&o))?;
    ensure(text(&o.stderr).contains("no_such_folder"), || describe(&o))?;
    ensure(!ex.root().join(".harness/runs").exists(), || {
        "a run directory was created".into()
    })
}

/// The generated workflow's own shell lines, run here: each shard job's test and record steps
/// (unsigned as on a pull request, then signed as on a push), then the gate job's import and
/// gate steps in a second, clean clone that ran nothing itself. The gate stays shut on unsigned
/// records and on N-1 signed ones, and opens with all N.
fn the_generated_workflow_runs_here_and_a_clean_clone_opens_the_gate_only_with_all_shards()
-> Outcome {
    const N: usize = 2;
    let ci = Example::new();
    ci.keep_only_tests(&["test_tls_proxy.py", "test_geoip.py"]);
    let keys = tempfile::tempdir()?;
    let key = keys.path().join("ci.pem");
    let o = Command::new(support::harness_bin())
        .args(["runs", "keygen"])
        .arg(&key)
        .output()?;
    ensure(o.status.success(), || describe(&o))?;
    let public = text(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("public key: ").map(str::to_string))
        .ok_or("keygen printed no public key")?;
    let toml = ci.dir.path().join("harness.toml");
    let mut config = std::fs::read_to_string(&toml)?;
    config.push_str(&format!(
        "\n[gate]\ntrusted_keys = [{{ name = \"ci\", key = \"{public}\" }}]\n\
         [ci]\nharness = {{ git = \"https://github.com/example/harness\", rev = \"{}\" }}\nshards = {N}\n",
        "0123456789abcdef0123456789abcdef01234567"
    ));
    std::fs::write(&toml, config)?;
    let root = ci.root();
    support::git(&root, &["init", "-q"]);
    let o = ci.run(&["ci", "github"]);
    ensure(o.status.success(), || describe(&o))?;
    let o = ci.run(&["ci", "github", "--check"]);
    ensure(o.status.success(), || describe(&o))?;
    support::git(&root, &["add", "."]);
    support::git(&root, &["commit", "-q", "-m", "app"]);

    let yaml = std::fs::read_to_string(root.join(".github/workflows/harness.yml"))?;
    let workflow: serde_norway::Value = serde_norway::from_str(&yaml)?;
    let script = |job: &str, id: &str| -> Result<String, Failed> {
        workflow["jobs"][job]["steps"]
            .as_sequence()
            .and_then(|s| s.iter().find(|s| s["id"].as_str() == Some(id)))
            .and_then(|s| s["run"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no step {job}.{id} in\n{yaml}").into())
    };
    let bin_dir = support::harness_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A step as the runner runs it: bash -e in the project, RUNNER_TEMP its own.
    let step = |dir: &Path, runner_temp: &Path, run: &str, env: &[(&str, &str)]| {
        let mut c = Command::new("bash");
        c.args(["-e", "-c", run])
            .current_dir(dir)
            .env("PATH", &path)
            .env("RUNNER_TEMP", runner_temp)
            .env("HARNESS_OFFLINE", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run bash")
    };
    let pem = std::fs::read_to_string(&key)?;
    let unsigned = tempfile::tempdir()?;
    let signed = tempfile::tempdir()?;
    for shard in 1..=N {
        let i = shard.to_string();
        let o = step(
            &root,
            unsigned.path(),
            &script("test", "shard")?,
            &[("SHARD", &i)],
        );
        ensure(o.status.code() == Some(0), || describe(&o))?;
        let o = step(
            &root,
            unsigned.path(),
            &script("test", "record")?,
            &[("SHARD", &i)],
        );
        ensure(o.status.success(), || describe(&o))?;
        let o = step(
            &root,
            signed.path(),
            &script("test", "signed-record")?,
            &[("SHARD", &i), ("HARNESS_SIGNING_KEY", &pem)],
        );
        ensure(o.status.success(), || describe(&o))?;
    }
    ensure(!signed.path().join("signing.pem").exists(), || {
        "the signing key was left on disk".into()
    })?;
    let o = step(
        &root,
        signed.path(),
        &script("test", "signed-record")?,
        &[("SHARD", "1")],
    );
    ensure(
        !o.status.success() && text(&o.stdout).contains("HARNESS_SIGNING_KEY secret is not set"),
        || describe(&o),
    )?;

    let laptop = tempfile::tempdir()?;
    support::git(laptop.path(), &["clone", "-q", root.to_str().unwrap(), "."]);
    let gate_temp = tempfile::tempdir()?;
    let records = gate_temp.path().join("records");
    std::fs::create_dir(&records)?;
    let gate = |expect: i32, say: &str| -> Outcome {
        let o = step(
            laptop.path(),
            gate_temp.path(),
            &script("gate", "import")?,
            &[],
        );
        ensure(o.status.success(), || describe(&o))?;
        let o = step(
            laptop.path(),
            gate_temp.path(),
            &script("gate", "gate")?,
            &[],
        );
        ensure(o.status.code() == Some(expect), || describe(&o))?;
        ensure(text(&o.stdout).contains(say), || describe(&o))?;
        for said in [text(&o.stdout), text(&o.stderr)] {
            let lower = said.to_lowercase();
            ensure(
                !lower.contains("constraint")
                    && !said.contains("SQLITE")
                    && !lower.contains("rusqlite"),
                || said.clone(),
            )?;
        }
        Ok(())
    };
    let shard_file = |i: usize| format!("records/shard-{i}.json");
    for i in 1..=N {
        std::fs::copy(
            unsigned.path().join(shard_file(i)),
            records.join(format!("shard-{i}.json")),
        )?;
    }
    gate(4, "unsigned")?;
    for i in 1..N {
        std::fs::copy(
            signed.path().join(shard_file(i)),
            records.join(format!("shard-{i}.json")),
        )?;
    }
    gate(4, "CLOSED")?;
    std::fs::copy(
        signed.path().join(shard_file(N)),
        records.join(format!("shard-{N}.json")),
    )?;
    gate(0, "OPEN")
}
