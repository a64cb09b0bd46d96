//! Benchmark: `harness rollback webhosting` of examples/flask-app on the webhosting twin,
//! including Passenger's restart wait (verification counts only probes after its 10 s throttle).
//!
//! Two builds are deployed first (forced: the gate is not what is timed); then each iteration
//! rolls back to the release before the current one, so the two builds take turns and every
//! rollback really swaps and verifies another build id. One `rollback --to A --with-db --yes` is
//! timed at the end (it also backs up what is live and restores A's database backup).
//! `cargo bench --profile dev --bench rollback_twin` (needs Docker, the harness/app image and a warm
//! wheel cache). HARNESS_BENCH_ITERATIONS (default 5). Prints each rollback's wall time, its
//! phases, and the summary.
#[path = "../tests/twin/mod.rs"]
mod twin;
mod twin_bench;

use std::time::Instant;

fn main() {
    let Some(n) = twin_bench::iterations() else {
        return;
    };
    let p = twin_bench::BenchProject::start();
    let twin = &p.twin;
    let harness = |args: &[&str]| p.harness(args);
    let mut builds = Vec::new();
    for label in ["A", "B"] {
        p.new_build(
            &format!(
                "RELEASE = {label:?}
"
            ),
            label,
        );
        let o = harness(&["deploy", "webhosting", "--force", "--reason", "benchmark"]);
        assert!(
            o.status.success(),
            "deploy {label} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        builds.push(twin.build_id().expect("a build answers"));
    }
    let timed = |what: &str, args: &[&str]| -> f64 {
        let before = twin.build_id();
        let start = Instant::now();
        let o = harness(args);
        let took = start.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{what} failed: {err}");
        let after = twin.build_id();
        assert_ne!(before, after, "{what} did not change the live build");
        println!(
            "{what}: {took:.2} s ({} -> {})",
            before.unwrap_or_default(),
            after.unwrap_or_default()
        );
        twin_bench::print_phases(&err);
        took
    };
    let mut times: Vec<f64> = (0..n)
        .map(|i| timed(&format!("rollback {i}"), &["rollback", "webhosting"]))
        .collect();
    // Only A has a database backup (deploying B took it), so --with-db goes to A; when A is
    // live, one more rollback first.
    if twin.build_id().as_ref() == Some(&builds[0]) {
        times.push(timed(&format!("rollback {n}"), &["rollback", "webhosting"]));
    }
    let with_db = timed(
        "rollback --with-db --yes",
        &[
            "rollback",
            "webhosting",
            "--to",
            &builds[0],
            "--with-db",
            "--yes",
        ],
    );
    // What the server looks like afterwards.
    let o = harness(&["status", "webhosting"]);
    print!("{}", String::from_utf8_lossy(&o.stdout));
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "rollback on the twin, {} runs: min {:.2} s, median {:.2} s, mean {:.2} s, max {:.2} s; \
         with --with-db {with_db:.2} s (goal < 15 s)",
        times.len(),
        times[0],
        times[times.len() / 2],
        mean,
        times[times.len() - 1]
    );
}
