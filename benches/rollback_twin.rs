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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = std::env::var_os("HARNESS_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/harness"));
    let n: usize = std::env::var("HARNESS_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flask-app");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", example.display()))
        .arg(root)
        .status()
        .unwrap();
    assert!(cp.success());
    let _ = std::fs::remove_dir_all(root.join(".harness"));
    let toml = root.join("harness.toml");
    let t = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("ssh = \"deploy@webhosting.example\"", "ssh = \"twin\"");
    std::fs::write(&toml, t).unwrap();
    std::fs::write(
        root.join(".gitignore"),
        ".harness/\ndeployment_state_*.json\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@example.org")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@example.org")
            .status()
            .unwrap();
        assert!(ok.success());
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "bench"]);
    let twin = twin::Twin::start().expect("twin");
    let harness = |args: &[&str]| {
        Command::new(&bin)
            .args(["--project", root.to_str().unwrap()])
            .args(args)
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("HARNESS_SSH_CONFIG", twin.ssh_config())
            .env("HARNESS_DEPLOY_URL", twin.url())
            .output()
            .unwrap()
    };
    let mut builds = Vec::new();
    for label in ["A", "B"] {
        std::fs::write(
            root.join("src/app/bench_marker.py"),
            format!("RELEASE = {label:?}\n"),
        )
        .unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", label]);
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
        for line in err
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_lowercase()))
        {
            println!("    {}", line.trim());
        }
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
