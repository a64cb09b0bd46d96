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
    let mut times = Vec::new();
    for i in 0..n {
        // A new commit per iteration: a new build id for the verify step to wait for.
        std::fs::write(
            root.join("src/app/bench_marker.py"),
            format!("ITERATION = {i}\n"),
        )
        .unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", &format!("bench {i}")]);
        let start = Instant::now();
        let o = harness(&["deploy", "webhosting", "--force", "--reason", "benchmark"]);
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "deploy {i} failed: {err}");
        println!("deploy {i}: {:.2} s", took.as_secs_f64());
        for line in err
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_lowercase()))
        {
            println!("    {}", line.trim());
        }
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
