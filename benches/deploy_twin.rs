//! Benchmark: `harness deploy webhosting` of examples/flask-app to the webhosting twin, including
//! Passenger's restart wait. Each iteration deploys a different build (alternating between two
//! commits), so every deploy really swaps and verifies a new build id.
//!
//! Deploys are forced (`--force --reason benchmark`): the gate itself is one ledger query, and
//! the boot check still runs, so the timing is that of a gated deploy.
//! `cargo bench --profile dev --bench deploy_twin` (needs Docker, the harness/app image and a warm wheel cache).
//! HARNESS_BENCH_ITERATIONS (default 5). Prints each deploy's wall time, its phases, and the summary.
#[path = "../tests/twin/mod.rs"]
mod twin;
mod twin_bench;

use std::time::Instant;

fn main() {
    let Some(n) = twin_bench::iterations() else {
        return;
    };
    let p = twin_bench::BenchProject::start();
    let harness = |args: &[&str]| p.harness(args);
    let mut times = Vec::new();
    for i in 0..n {
        // A new commit per iteration: a new build id for the verify step to wait for.
        p.new_build(
            &format!(
                "ITERATION = {i}
"
            ),
            &format!("bench {i}"),
        );
        let start = Instant::now();
        let o = harness(&["deploy", "webhosting", "--force", "--reason", "benchmark"]);
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "deploy {i} failed: {err}");
        println!("deploy {i}: {:.2} s", took.as_secs_f64());
        twin_bench::print_phases(&err);
        times.push(took.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "deploy to the twin, {} runs: min {:.2} s, median {:.2} s, mean {:.2} s, max {:.2} s (goal <= 20 s)",
        times.len(),
        times[0],
        times[times.len() / 2],
        mean,
        times[times.len() - 1]
    );
}
