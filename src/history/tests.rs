use super::*;
use crate::ledger::{RouteRow, TestRow, TestStatus};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn run(id: i64, code: &str, outcome: Outcome) -> RunRow {
    RunRow {
        id,
        started_at: Timestamp::from_unix_ms(1_800_000_000_000 + id * 600_000),
        finished_at: Timestamp::from_unix_ms(1_800_000_000_000 + id * 600_000 + 60_000 + id),
        outcome,
        code_fingerprint: code.into(),
        git_commit: Some("c".repeat(40)),
        selection: "full".into(),
        passed: 1,
        failed: 0,
        skipped: 0,
        errors: 0,
        imported: false,
        report_path: None,
    }
}

fn t(run: i64, test: &str, status: TestStatus, ms: u64) -> (i64, TestRow) {
    (
        run,
        TestRow {
            test: test.into(),
            status,
            duration_ms: ms,
        },
    )
}

fn history(runs: Vec<RunRow>, tests: Vec<(i64, TestRow)>) -> History {
    History {
        total_runs: runs.len(),
        runs,
        tests,
        routes: Vec::new(),
    }
}

use Outcome::{Aborted, Green, Red};
use TestStatus::{Error, Failed, Passed, Skipped};

#[test]
fn a_test_that_failed_and_passed_on_the_same_code_is_flaky_with_its_runs() {
    let h = history(
        (1..=6)
            .map(|i| run(i, A, if i % 2 == 1 { Red } else { Green }))
            .collect(),
        (1..=6)
            .flat_map(|i| {
                [
                    t(i, "t::flaky", if i % 2 == 1 { Failed } else { Passed }, 100),
                    t(i, "t::steady", Passed, 100),
                ]
            })
            .collect(),
    );
    assert_eq!(
        flaky(&h),
        vec![Flaky {
            test: "t::flaky".into(),
            code_fingerprint: A.into(),
            failed_runs: vec![1, 3, 5],
            passed_runs: vec![2, 4, 6],
        }]
    );
}

#[test]
fn a_failure_on_other_code_is_not_flaky() {
    // Failed on code A, fixed on code B: a fix, not a flake.
    let h = history(
        vec![run(1, A, Red), run(2, B, Green), run(3, B, Green)],
        vec![
            t(1, "t::fixed", Failed, 10),
            t(2, "t::fixed", Passed, 10),
            t(3, "t::fixed", Passed, 10),
        ],
    );
    assert!(flaky(&h).is_empty(), "{:?}", flaky(&h));
    // The same rows, all on one code, are flaky: the fingerprint is what decides.
    let h = history(
        vec![run(1, A, Red), run(2, A, Green), run(3, A, Green)],
        h.tests,
    );
    assert_eq!(flaky(&h).len(), 1);
}

#[test]
fn an_error_counts_as_a_failure_and_a_skip_as_nothing() {
    let h = history(
        vec![
            run(1, A, Red),
            run(2, A, Green),
            run(3, A, Green),
            run(4, A, Green),
        ],
        vec![
            t(1, "t::setup", Error, 5),
            t(2, "t::setup", Passed, 5),
            // Skipped and passed: not flaky.
            t(1, "t::skippy", Skipped, 0),
            t(2, "t::skippy", Passed, 5),
            // Skipped and failed: not flaky either.
            t(3, "t::broken", Skipped, 0),
            t(4, "t::broken", Failed, 5),
        ],
    );
    let f = flaky(&h);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].test, "t::setup");
    assert_eq!(
        (f[0].failed_runs.as_slice(), f[0].passed_runs.as_slice()),
        (&[1][..], &[2][..])
    );
}

#[test]
fn interrupted_runs_and_rows_of_runs_outside_the_window_are_no_evidence() {
    let h = history(
        vec![run(2, A, Aborted), run(3, A, Green)],
        vec![
            t(1, "t::x", Failed, 5), // run 1 is not in the history
            t(2, "t::x", Failed, 5), // interrupted
            t(3, "t::x", Passed, 5),
        ],
    );
    assert!(flaky(&h).is_empty());
}

#[test]
fn flaky_tests_are_listed_by_name_and_per_fingerprint() {
    let h = history(
        vec![
            run(1, A, Red),
            run(2, A, Green),
            run(3, B, Red),
            run(4, B, Green),
        ],
        vec![
            t(1, "t::z", Failed, 1),
            t(2, "t::z", Passed, 1),
            t(3, "t::z", Failed, 1),
            t(4, "t::z", Passed, 1),
            t(1, "t::a", Failed, 1),
            t(2, "t::a", Passed, 1),
        ],
    );
    let got: Vec<(String, String)> = flaky(&h)
        .into_iter()
        .map(|f| (f.test, f.code_fingerprint))
        .collect();
    assert_eq!(
        got,
        vec![
            ("t::a".into(), A.into()),
            ("t::z".into(), B.into()), // the newer evidence first
            ("t::z".into(), A.into()),
        ]
    );
}

#[test]
fn the_slower_rule_needs_both_the_ratio_and_the_absolute_increase() {
    // +50% but only +300 ms: noise.
    assert!(!got_slower(600.0, 900.0));
    // +600 ms but only +5%: noise.
    assert!(!got_slower(12_000.0, 12_600.0));
    // +20% exactly is not "over 20%"; +500 ms exactly is not "over 0.5 s".
    assert!(!got_slower(3_000.0, 3_600.0));
    assert!(!got_slower(2_000.0, 2_500.0));
    // Both over.
    assert!(got_slower(2_000.0, 2_501.0));
    assert!(got_slower(3_000.0, 3_601.0));
}

fn slow_history(older: &[u64], newer: &[u64]) -> History {
    let all: Vec<u64> = older.iter().chain(newer).copied().collect();
    history(
        (1..=all.len() as i64).map(|i| run(i, A, Green)).collect(),
        all.iter()
            .enumerate()
            .map(|(i, ms)| t(i as i64 + 1, "t::slow", Passed, *ms))
            .collect(),
    )
}

#[test]
fn a_test_is_slower_when_its_newest_five_passing_runs_have_a_clearly_higher_median() {
    let h = slow_history(
        &[1_000, 1_100, 900, 1_000, 5_000],
        &[2_000, 1_900, 2_100, 100, 2_000],
    );
    let s = slower(&series(&h));
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].test, "t::slow");
    assert_eq!(s[0].older_median_ms, 1_000.0);
    assert_eq!(s[0].newer_median_ms, 2_000.0);
    assert_eq!(s[0].older_runs, vec![1, 2, 3, 4, 5]);
    assert_eq!(s[0].newer_runs, vec![6, 7, 8, 9, 10]);
    // Only the newest ten count: an even older, faster past changes nothing.
    let h = slow_history(
        &[10, 10, 10, 1_000, 1_100, 900, 1_000, 5_000],
        &[2_000, 1_900, 2_100, 100, 2_000],
    );
    assert_eq!(slower(&series(&h))[0].older_runs, vec![4, 5, 6, 7, 8]);
}

#[test]
fn small_or_short_or_unjudgeable_slowdowns_are_not_listed() {
    // +40% but +400 ms.
    assert!(slower(&series(&slow_history(&[1_000; 5], &[1_400; 5]))).is_empty());
    // +700 ms but +7%.
    assert!(slower(&series(&slow_history(&[10_000; 5], &[10_700; 5]))).is_empty());
    // Nine passing runs: not judged.
    assert!(slower(&series(&slow_history(&[1_000; 4], &[9_000; 5]))).is_empty());
    // Faster is not slower.
    assert!(slower(&series(&slow_history(&[9_000; 5], &[1_000; 5]))).is_empty());
}

#[test]
fn failures_and_skips_do_not_count_for_the_slower_rule() {
    // Five fast passes, then failures that timed out, then five fast passes: not slower.
    let mut h = slow_history(&[1_000; 5], &[1_000; 5]);
    let n = h.runs.len() as i64;
    for i in 1..=3 {
        h.runs.push(run(n + i, A, Red));
        h.tests.push(t(n + i, "t::slow", Failed, 30_000));
        h.runs.push(run(n + 3 + i, A, Green));
        h.tests.push(t(n + 3 + i, "t::slow", Skipped, 0));
    }
    h.runs.sort_by_key(|r| (r.finished_at, r.id));
    assert!(slower(&series(&h)).is_empty());
    let s = &series(&h)[0];
    assert_eq!((s.points.len(), s.failures(), s.skipped), (13, 3, 3));
    assert_eq!(s.median_passed_ms(), Some(1_000.0));
}

#[test]
fn series_follow_the_runs_time_order_not_their_ids() {
    // An imported run got a later id but finished first.
    let mut early = run(9, A, Green);
    early.finished_at = Timestamp::from_unix_ms(1);
    early.started_at = Timestamp::from_unix_ms(0);
    let mut h = history(
        vec![run(1, A, Green), early],
        vec![t(1, "t::x", Passed, 20), t(9, "t::x", Passed, 10)],
    );
    h.runs.sort_by_key(|r| (r.finished_at, r.id));
    let ids: Vec<i64> = series(&h)[0].points.iter().map(|p| p.run_id).collect();
    assert_eq!(ids, vec![9, 1]);
}

fn route(method: &str, path: &str, count: u64, median: f64, p95: f64, max: f64) -> RouteRow {
    RouteRow {
        method: method.into(),
        path: path.into(),
        count,
        median_ms: median,
        p95_ms: p95,
        max_ms: max,
    }
}

#[test]
fn routes_aggregate_per_method_and_path_over_runs() {
    let mut h = history((1..=3).map(|i| run(i, A, Green)).collect(), Vec::new());
    h.routes = vec![
        (1, route("GET", "/geo", 4, 100.0, 200.0, 250.0)),
        (2, route("GET", "/geo", 6, 120.0, 220.0, 300.0)),
        (3, route("GET", "/geo", 5, 110.0, 210.0, 260.0)),
        // One cold start: worst p95 2 s, but typically fast.
        (1, route("GET", "/", 2, 5.0, 2_000.0, 2_000.0)),
        (2, route("GET", "/", 2, 5.0, 10.0, 12.0)),
        (3, route("GET", "/", 2, 5.0, 12.0, 14.0)),
        // Another method is another route.
        (2, route("POST", "/geo", 1, 50.0, 50.0, 50.0)),
        // A run outside the history counts for nothing.
        (7, route("GET", "/gone", 1, 9_000.0, 9_000.0, 9_000.0)),
    ];
    let r = routes(&h);
    let keys: Vec<(&str, &str)> = r
        .iter()
        .map(|a| (a.method.as_str(), a.path.as_str()))
        .collect();
    assert_eq!(keys, vec![("GET", "/geo"), ("POST", "/geo"), ("GET", "/")]);
    let geo = &r[0];
    assert_eq!(geo.runs, 3);
    assert_eq!(geo.requests, 15);
    assert_eq!(geo.typical_p95_ms, 210.0);
    assert_eq!(geo.typical_median_ms, 110.0);
    assert_eq!((geo.worst_p95_ms, geo.worst_run), (220.0, 2));
    assert_eq!(geo.max_ms, 300.0);
    let root = &r[2];
    assert_eq!(
        (root.typical_p95_ms, root.worst_p95_ms, root.worst_run),
        (12.0, 2_000.0, 1)
    );
}

#[test]
fn median_of_odd_even_and_none() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(Vec::new()), None);
}

#[test]
fn the_summary_counts_outcomes_and_runs_with_details() {
    let mut runs = vec![
        run(1, A, Green),
        run(2, A, Red),
        run(3, A, Aborted),
        run(4, A, Outcome::Infra),
    ];
    runs[3].imported = true;
    let h = history(
        runs,
        vec![
            t(2, "t::x", Passed, 1),
            t(1, "t::x", Passed, 1),
            t(2, "t::y", Passed, 1),
        ],
    );
    let s = summary(&h, 7, 1);
    assert_eq!(
        (
            s.runs,
            s.green,
            s.red,
            s.aborted,
            s.infra,
            s.with_details,
            s.flaky,
            s.slower
        ),
        (4, 1, 1, 1, 1, 2, 7, 1)
    );
}

#[test]
fn a_hostile_test_name_is_escaped_everywhere_on_the_page() {
    let evil = "t::test_x[<script>alert('x')</script>\"&]";
    let mut runs: Vec<RunRow> = (1..=2)
        .map(|i| run(i, A, if i == 1 { Red } else { Green }))
        .collect();
    runs[0].selection = "filtered(-k '<b>')".into();
    let mut h = history(runs, vec![t(1, evil, Failed, 10), t(2, evil, Passed, 10)]);
    h.routes = vec![(
        1,
        route("GET", "/<img src=x onerror=alert(1)>", 1, 1.0, 1.0, 1.0),
    )];
    let a = analyse(&h);
    assert_eq!(a.flaky.len(), 1);
    let page = html::render(&h, &a, Timestamp::from_unix_ms(1_800_000_000_000), None);
    assert!(!page.contains("<script"), "a script tag got through");
    assert!(!page.contains("<img"), "an img tag got through");
    assert!(!page.contains("<b>"));
    let escaped = "t::test_x[&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;]";
    // In the flaky table and the tests table at least.
    assert!(page.matches(escaped).count() >= 2, "{page}");
    assert!(page.contains("/&lt;img src=x onerror=alert(1)&gt;"));
    // Nothing is loaded from elsewhere.
    assert!(!page.contains("http://") && !page.contains("https://"));
}

#[test]
fn the_page_has_its_sections_and_marks_failed_points() {
    let h = history(
        (1..=4)
            .map(|i| run(i, A, if i == 3 { Red } else { Green }))
            .collect(),
        (1..=4)
            .map(|i| {
                t(
                    i,
                    "t::x",
                    if i == 3 { Failed } else { Passed },
                    100 * i as u64,
                )
            })
            .collect(),
    );
    let a = analyse(&h);
    let page = html::render(&h, &a, Timestamp::from_unix_ms(1_800_000_000_000), None);
    for needle in [
        "<h2>Runs over time</h2>",
        "<h2>Flaky tests</h2>",
        "<h2>Tests that got slower</h2>",
        "<h2>Slowest routes</h2>",
        "<h2>Tests</h2>",
        "4 runs · 3 green · 1 red · 0 aborted · 0 infra · 1 flaky test · 0 tests got slower",
        "<circle class=\"fail\"",
        "run #3: failed, 300 ms",
        "class=\"o-red\"",
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    assert_eq!(page.matches("<rect class=\"o-").count(), 4);
    assert_eq!(page.matches("<svg class=\"spark\"").count(), 1);
}

#[test]
fn a_run_report_under_the_page_folder_is_linked_relatively() {
    let mut r = run(1, A, Green);
    r.report_path = Some("./.harness/runs/2026 x/report.html".into());
    let h = history(vec![r], Vec::new());
    let a = analyse(&h);
    let page = html::render(&h, &a, Timestamp::now(), Some(Path::new("./.harness")));
    assert!(
        page.contains("href=\"runs/2026%20x/report.html\""),
        "{page}"
    );
    let elsewhere = html::render(&h, &a, Timestamp::now(), Some(Path::new("/tmp")));
    assert!(!elsewhere.contains("href="));
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(html::fmt_ms(850.0), "850 ms");
    assert_eq!(html::fmt_ms(12_340.0), "12.3 s");
    assert_eq!(html::fmt_ms(125_000.0), "2m 05s");
}

/// 200 runs of 20 tests and 30 routes: analysing and rendering stays in milliseconds (it runs
/// after every `harness test`). The bound is loose for slow CI machines; the figure is printed.
#[test]
fn two_hundred_runs_of_twenty_tests_render_fast() {
    let runs: Vec<RunRow> = (1..=200)
        .map(|i| {
            run(
                i,
                if i < 100 { A } else { B },
                if i % 7 == 0 { Red } else { Green },
            )
        })
        .collect();
    let tests: Vec<(i64, TestRow)> = (1..=200)
        .flat_map(|i| {
            (0..20).map(move |k| {
                let status = if k == 3 && i % 7 == 0 { Failed } else { Passed };
                t(
                    i,
                    &format!("tests/test_m{k}.py::test_case_{k}"),
                    status,
                    500 + (i * k) as u64,
                )
            })
        })
        .collect();
    let mut h = history(runs, tests);
    h.routes = (1..=200)
        .flat_map(|i| {
            (0..30).map(move |k| {
                (
                    i,
                    route("GET", &format!("/r{k}"), 3, 5.0, 10.0 + k as f64, 20.0),
                )
            })
        })
        .collect();
    let start = std::time::Instant::now();
    let a = analyse(&h);
    let page = html::render(&h, &a, Timestamp::now(), None);
    let took = start.elapsed();
    eprintln!(
        "analyse + render of 200 runs × 20 tests: {took:?}, {} bytes",
        page.len()
    );
    assert_eq!(a.series.len(), 20);
    assert!(a.flaky.iter().any(|f| f.test.contains("test_m3")));
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
}

#[test]
fn a_report_outside_the_page_folder_or_climbing_out_of_it_is_not_linked() {
    let mut r = run(1, A, Green);
    r.report_path = Some("/srv/p/.harness/runs/../../secret/report.html".into());
    let h = history(vec![r], Vec::new());
    let a = analyse(&h);
    let page = html::render(&h, &a, Timestamp::now(), Some(Path::new("/srv/p/.harness")));
    assert!(!page.contains("href="), "{page}");
    let page = html::render(&h, &a, Timestamp::now(), Some(Path::new("")));
    assert!(!page.contains("href="));
}
