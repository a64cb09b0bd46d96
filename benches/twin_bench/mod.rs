//! What the twin benchmarks share: a git copy of examples/flask-app pointed at a fresh webhosting
//! twin, and a way to run harness on it (the wheel cache must be warm: no package index is used).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::twin::Twin;

/// `HARNESS_BENCH_ITERATIONS` (default 5); `None` when cargo only lists the benchmarks
/// (`--list`), which runs the binary too.
pub fn iterations() -> Option<usize> {
    if std::env::args().any(|a| a == "--list") {
        return None;
    }
    Some(
        std::env::var("HARNESS_BENCH_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
    )
}

pub struct BenchProject {
    // Dropped after the twin (fields drop in order): the project outlives the container.
    pub twin: Twin,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl BenchProject {
    pub fn start() -> BenchProject {
        let bin = std::env::var_os("HARNESS_E2E_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/harness")
            });
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
        let twin = Twin::start().expect("twin");
        let p = BenchProject { twin, dir, bin };
        p.git(&["init", "-q", "-b", "main"]);
        p.commit("bench");
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@example.org")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@example.org")
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Writes `src/app/bench_marker.py` and commits: a new build id.
    pub fn new_build(&self, marker: &str, message: &str) {
        std::fs::write(self.root().join("src/app/bench_marker.py"), marker).unwrap();
        self.commit(message);
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    pub fn harness(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(["--project", self.root().to_str().unwrap()])
            .args(args)
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("HARNESS_SSH_CONFIG", self.twin.ssh_config())
            .env("HARNESS_DEPLOY_URL", self.twin.url())
            .output()
            .unwrap()
    }
}

/// The phase lines harness printed on stderr, indented under a timing line.
pub fn print_phases(stderr: &str) {
    for line in stderr
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_lowercase()))
    {
        println!("    {}", line.trim());
    }
}
