//! The run history through the real `harness` binary: a ledger filled through the library's
//! public API (`Ledger::record_run` + `record_run_details`), then `harness runs --flaky` and
//! `harness runs --html`.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use harness::ledger::{
    self, Ledger, Outcome, RouteRow, RunDetails, RunRecord, Selection, TestRow, TestStatus,
};
use harness::model::target::Target;
use harness::model::timestamp::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_harness");
const CODE: &str = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de";
const OTHER: &str = "0therc0de0therc0de0therc0de0therc0de0therc0de0therc0de0therc0de0";
/// The flaky test, with a name no page may print raw.
const FLAKY: &str = "tests/test_shop.py::test_pay[<b>&\"x\"]";
const FLAKY_ESCAPED: &str = "tests/test_shop.py::test_pay[&lt;b&gt;&amp;&quot;x&quot;]";

fn harness(project: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--project")
        .arg(project)
        .args(args)
        .output()
        .expect("harness runs")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run(code: &str, n: i64, outcome: Outcome) -> RunRecord {
    let fingerprints = harness::package::Fingerprints {
        code: code.into(),
        schema: None,
        input: "1n".repeat(32),
    };
    let mut r = RunRecord::start(
        Target::Local,
        &"ab".repeat(32),
        &fingerprints,
        &harness::git::HeadFacts {
            commit: Some("f".repeat(40)),
            dirty: Some(false),
        },
        Selection::Full,
    );
    r.started_at = Timestamp::from_unix_ms(1_800_000_000_000 + n * 3_600_000);
    r.finished_at = Timestamp::from_unix_ms(1_800_000_000_000 + n * 3_600_000 + 90_000);
    r.outcome = outcome;
    r
}

fn test(name: &str, status: TestStatus, duration_ms: u64) -> TestRow {
    TestRow {
        test: name.into(),
        status,
        duration_ms,
    }
}

/// Six runs of one code where FLAKY fails on the odd ones; a seventh of other code where the
/// always-green test fails (a change, not a flake); a test skipped on the odd runs and failing on
/// the even ones (never passed: broken, not flaky); an imported run without details. Returns the
/// ids of the six runs.
fn fill(root: &Path) -> Vec<i64> {
    let mut l = Ledger::open(&ledger::path_in(root)).unwrap();
    let mut ids = Vec::new();
    for n in 1..=6 {
        let odd = n % 2 == 1;
        let mut record = run(CODE, n, if odd { Outcome::Red } else { Outcome::Green });
        // Where `harness test` puts a run's report: under the canonical project root.
        record.report_path = Some(
            root.canonicalize()
                .unwrap()
                .join(format!(".harness/runs/r{n}/report.html"))
                .display()
                .to_string(),
        );
        let id = l.record_run(&record).unwrap();
        let details = RunDetails {
            tests: vec![
                test(
                    FLAKY,
                    if odd {
                        TestStatus::Failed
                    } else {
                        TestStatus::Passed
                    },
                    1_200,
                ),
                test("tests/test_shop.py::test_browse", TestStatus::Passed, 300),
                test(
                    "tests/test_shop.py::test_broken",
                    if odd {
                        TestStatus::Skipped
                    } else {
                        TestStatus::Error
                    },
                    5,
                ),
            ],
            routes: vec![RouteRow {
                method: "GET".into(),
                path: "/shop/<cart>".into(),
                count: 4,
                median_ms: 40.0,
                p95_ms: 90.0 + n as f64,
                max_ms: 120.0,
            }],
        };
        l.record_run_details(id, &details).unwrap();
        ids.push(id);
    }
    let id = l.record_run(&run(OTHER, 7, Outcome::Red)).unwrap();
    l.record_run_details(
        id,
        &RunDetails {
            tests: vec![
                test(FLAKY, TestStatus::Passed, 1_100),
                test("tests/test_shop.py::test_browse", TestStatus::Failed, 310),
            ],
            routes: Vec::new(),
        },
    )
    .unwrap();
    l.import_run(&run(CODE, 8, Outcome::Green), None)
        .unwrap()
        .unwrap();
    ids
}

#[test]
fn runs_flaky_lists_exactly_the_flaky_test_with_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ids = fill(dir.path());
    let json: serde_json::Value = serde_json::from_str(&stdout(&harness(
        dir.path(),
        &["runs", "--flaky", "--json"],
    )))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "test": FLAKY,
            "code_fingerprint": CODE,
            "failed_runs": [ids[0], ids[2], ids[4]],
            "passed_runs": [ids[1], ids[3], ids[5]],
        }])
    );
    let text = stdout(&harness(dir.path(), &["runs", "--flaky"]));
    assert!(text.starts_with("1 flaky test(s) in 8 run(s)"), "{text}");
    let line = text.lines().find(|l| l.starts_with(FLAKY)).expect(&text);
    let failed = format!("{},{},{}", ids[0], ids[2], ids[4]);
    let passed = format!("{},{},{}", ids[1], ids[3], ids[5]);
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        vec![FLAKY, &CODE[..12], &failed, &passed],
        "{text}"
    );
    assert!(
        !text.contains("test_browse") && !text.contains("test_broken"),
        "{text}"
    );
}

#[test]
fn runs_html_writes_a_page_naming_the_flaky_test_in_its_flaky_section() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let file = dir.path().join("out/history page.html");
    let said = stdout(&harness(
        dir.path(),
        &["runs", "--html", file.to_str().unwrap()],
    ));
    assert_eq!(said.trim(), file.display().to_string());
    let page = std::fs::read_to_string(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let flaky = page
        .split("<section id=\"flaky\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a flaky section");
    assert!(flaky.contains(FLAKY_ESCAPED), "{flaky}");
    assert!(!flaky.contains("test_browse") && !flaky.contains("test_broken"));
    assert!(!page.contains("<b>"), "a raw test name reached the page");
    assert!(page.contains("/shop/&lt;cart&gt;"));
    assert!(page.contains("8 runs · 4 green · 4 red · 0 aborted · 0 infra · 1 flaky test"));
    assert!(page.contains("7 of 8 runs have per-test results"));
    assert_eq!(page.matches("<rect class=\"o-").count(), 8);
    assert!(!page.contains("<script") && !page.contains("https://"));
    assert!(
        !page.contains("href="),
        "reports are not under out/: no links"
    );

    // Without FILE: .harness/history.html, and --json says where.
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&harness(dir.path(), &["runs", "--html", "--json"]))).unwrap();
    let default = dir.path().join(".harness/history.html");
    assert_eq!(json["html"], default.display().to_string());
    let page = std::fs::read_to_string(&default).unwrap();
    assert!(page.contains(FLAKY_ESCAPED));
    // Beside the runs, the page links each run's report relatively.
    for n in 1..=6 {
        assert!(
            page.contains(&format!("href=\"runs/r{n}/report.html\"")),
            "run {n}"
        );
    }
}

#[test]
fn a_fresh_project_has_no_flaky_tests_and_an_empty_page() {
    let dir = tempfile::tempdir().unwrap();
    let text = stdout(&harness(dir.path(), &["runs", "--flaky"]));
    assert!(text.starts_with("no flaky tests in 0 run(s)"), "{text}");
    let json = stdout(&harness(dir.path(), &["runs", "--flaky", "--json"]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!([])
    );
    let path = stdout(&harness(dir.path(), &["runs", "--html"]));
    let page = std::fs::read_to_string(path.trim()).unwrap();
    assert!(page.contains("No runs recorded yet"), "{page}");
    // --html and --flaky are one or the other.
    let o = harness(dir.path(), &["runs", "--html", "--flaky"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// What `harness test` pays after each run: load 200 runs × 20 tests (and 30 routes each) from
/// the ledger, analyse, render and write the page. Printed for the record; the bound is loose.
#[test]
fn refreshing_the_page_for_200_runs_of_20_tests_takes_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    {
        let mut l = Ledger::open(&ledger::path_in(root)).unwrap();
        for n in 1..=200i64 {
            let red = n % 9 == 0;
            let id = l
                .record_run(&run(
                    if n < 120 { CODE } else { OTHER },
                    n,
                    if red { Outcome::Red } else { Outcome::Green },
                ))
                .unwrap();
            let details = RunDetails {
                tests: (0..20)
                    .map(|k| {
                        let status = if red && k == 4 {
                            TestStatus::Failed
                        } else {
                            TestStatus::Passed
                        };
                        test(
                            &format!("tests/test_{k}.py::test_case_{k}"),
                            status,
                            400 + (n as u64 * k) % 700,
                        )
                    })
                    .collect(),
                routes: (0..30)
                    .map(|k| RouteRow {
                        method: "GET".into(),
                        path: format!("/page/{k}"),
                        count: 5,
                        median_ms: 10.0,
                        p95_ms: 20.0 + k as f64,
                        max_ms: 50.0,
                    })
                    .collect(),
            };
            l.record_run_details(id, &details).unwrap();
        }
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let path = harness::history::refresh(root).unwrap();
        times.push(start.elapsed());
        assert!(path.ends_with(".harness/history.html"));
    }
    times.sort();
    let page = std::fs::read_to_string(harness::history::page_path(root)).unwrap();
    eprintln!(
        "history::refresh, 200 runs × 20 tests + 30 routes: median {:?} (min {:?}, max {:?}), {} bytes",
        times[2],
        times[0],
        times[4],
        page.len()
    );
    assert!(page.contains("tests/test_4.py::test_case_4"));
    assert!(times[2] < std::time::Duration::from_secs(2), "{times:?}");
}
