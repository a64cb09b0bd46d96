//! A gate decision over a ledger of 10,000 runs (target: ≤ 50 ms).
//!
//! `gate_runs_and_decide`: open the ledger, read every run, decide (what `gate` does besides
//! building the package and asking git). `evaluate_with_git_and_record`: the whole
//! `gatekeeper::evaluate`, in a real git repository, including recording the decision.
//! `cli_runs_json`: `harness runs --json` over the same ledger (target: ≤ 200 ms), and
//! `cli_runs_limit_20`: the table of the newest 20.
use harness::model::target::Target;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::config::Config;
use harness::gate::{self, GateFacts, PackageFacts};
use harness::gatekeeper::{self, GateRequest};
use harness::ledger::signing::SecretKey;
use harness::ledger::{self, Ledger, Outcome, RunRecord, Selection, StoredRun};
use harness::model::timestamp::Timestamp;
use harness::model::tree::{TreeFacts, WorkTree};

const RUNS: usize = 10_000;
const CODE: &str = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de";

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=b", "-c", "user.email=b@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A project in git with 10,000 runs: a realistic mix of many commits' worth of runs (other
/// fingerprints, reds, shards, filtered, imported and signed), and near the end a few matching
/// green ones, so the rules have to look at every run.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("harness.toml"),
        "[package]\nsources = [{ from = \"src\", to = \"src\" }]\n\
         entry_point = { from = \"app.py\", to = \"passenger_wsgi.py\" }\n",
    )
    .unwrap();
    std::fs::write(d.join(".gitignore"), ".harness/\n").unwrap();
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "x"]);
    let head = git(d, &["rev-parse", "HEAD"]);
    let key = SecretKey::generate();
    let now = Timestamp::now().unix_ms();
    let mut ledger = Ledger::open(&ledger::path_in(d)).unwrap();
    let fingerprints = harness::package::Fingerprints {
        code: CODE.into(),
        schema: Some("5c".repeat(32)),
        input: "1n".repeat(32),
    };
    let git_facts = harness::git::HeadFacts {
        commit: Some(head.clone()),
        dirty: Some(false),
    };
    ledger
        .record_build(&ledger::BuildRecord {
            sha256: "ab".into(),
            target: "webhosting".into(),
            build_id: "20260101T000000Z-000000000000".into(),
            code_fingerprint: CODE.into(),
            schema_fingerprint: Some("5c".repeat(32)),
            git_commit: Some(head.clone()),
            dirty: Some(false),
        })
        .unwrap();
    for n in 0..RUNS {
        let mut r = RunRecord::start(
            Target::Local,
            &"ab".repeat(32),
            &fingerprints,
            &git_facts,
            Selection::Full,
        );
        r.finished_at = Timestamp::from_unix_ms(now - (RUNS - n) as i64 * 60_000);
        r.outcome = if n % 5 == 0 {
            Outcome::Red
        } else {
            Outcome::Green
        };
        r.passed = 120;
        r.selection = match n % 7 {
            0 => Selection::Filtered {
                expr: "-k smoke".into(),
            },
            1 | 2 => Selection::Shard {
                index: (n % 3) as u32 + 1,
                total: 3,
            },
            _ => Selection::Full,
        };
        r.image_ids = [
            ("app".into(), format!("sha256:{n:064x}")),
            ("proxy".into(), "sha256:1".into()),
        ]
        .into();
        r.browser_version = Some("chromium 131.0.6778.33".into());
        r.report_path = Some(format!(".harness/runs/{n}/report.html"));
        if n < RUNS - 20 {
            // Older runs tested older code.
            r.code_fingerprint = format!("{:064x}", n / 10);
            r.git_commit = Some(format!("{:040x}", n / 10));
        }
        if n % 4 == 0 {
            ledger.import_run(&r, Some(&key.sign(&r))).unwrap().unwrap();
        } else {
            ledger.record_run(&r).unwrap();
        }
    }
    dir
}

fn bench(c: &mut Criterion) {
    let dir = fixture();
    let d = dir.path();
    let schema = "5c".repeat(32);
    let package = PackageFacts {
        sha256: "ab",
        code: CODE,
        schema: Some(&schema),
    };
    let head = git(d, &["rev-parse", "HEAD"]);
    let tree_id = git(d, &["rev-parse", "HEAD^{tree}"]);
    let head_commit = head.clone();
    let tree = TreeFacts {
        head: Some(head.clone()),
        work_tree: WorkTree::Clean,
        trees: [(head, tree_id)].into(),
    };
    let decide = |runs: &[StoredRun], census| {
        gate::decide(&GateFacts {
            package,
            built: Some(gate::BuildFacts {
                git_commit: Some(&head_commit),
                dirty: Some(false),
            }),
            runs,
            census,
            now: Timestamp::now(),
            max_age: Duration::from_secs(24 * 3600),
            tree: &tree,
            trusted_keys: &[],
            allow_dirty: false,
            force: None,
        })
    };
    let mut group = c.benchmark_group("gate_10k_runs");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    group.bench_function("gate_runs_and_decide", |b| {
        b.iter(|| {
            let ledger = Ledger::open(&ledger::path_in(d)).unwrap();
            let (runs, census) = ledger.gate_runs(CODE, Some(&schema)).unwrap();
            assert_eq!(census.runs, RUNS);
            let decision = decide(&runs, census);
            assert!(decision.open);
            black_box(decision)
        })
    });
    // For comparison: reading all 10,000 runs and deciding over all of them.
    group.bench_function("read_all_runs_and_decide", |b| {
        b.iter(|| {
            let runs = Ledger::open(&ledger::path_in(d)).unwrap().runs().unwrap();
            black_box(decide(&runs, gate::Census::of(&runs)))
        })
    });
    let config = Config::load(d, None).unwrap();
    group.bench_function("evaluate_with_git_and_record", |b| {
        b.iter(|| {
            let mut ledger = gatekeeper::open_ledger(d).unwrap();
            let o = gatekeeper::evaluate(
                &config,
                &mut ledger,
                package,
                &GateRequest::default(),
                Timestamp::now(),
            )
            .unwrap();
            assert!(o.decision.open, "{:#?}", o.decision);
            black_box(o)
        })
    });
    // `harness runs --json` (the release binary, process start included): target ≤ 200 ms.
    group.bench_function("cli_runs_json", |b| {
        b.iter(|| {
            let o = Command::new(env!("CARGO_BIN_EXE_harness"))
                .arg("--project")
                .arg(d)
                .args(["runs", "--json"])
                .output()
                .unwrap();
            assert!(o.status.success());
            black_box(o.stdout.len())
        })
    });
    group.bench_function("cli_runs_limit_20", |b| {
        b.iter(|| {
            let o = Command::new(env!("CARGO_BIN_EXE_harness"))
                .arg("--project")
                .arg(d)
                .args(["runs", "--limit", "20"])
                .output()
                .unwrap();
            assert!(o.status.success());
            black_box(o.stdout.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
