//! `harness ci github`'s workflow against the three checkers it must satisfy with zero
//! findings: actionlint, check-jsonschema's GitHub workflow schema, and zizmor (offline, with
//! the policy file harness writes beside the workflow). They come from the test venv
//! scripts/test.sh makes (`.venv-test`, tests/python-requirements.txt); without them the test
//! fails under CI and is skipped with a message elsewhere.
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::{describe, text};

fn checker(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv-test/bin")
        .join(name);
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/test.sh installs it from tests/python-requirements.txt",
        p.display()
    );
    eprintln!("skipped: no {} (scripts/test.sh makes it)", p.display());
    None
}

/// A copy of the example in a fresh repository, with `[ci]` (and the deploy job when asked).
fn project(deploy: bool) -> tempfile::TempDir {
    let dir = support::copy_example();
    let toml = dir.path().join("harness.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str(&format!(
        "\n[ci]\nharness = {{ git = \"https://github.com/example/harness\", rev = \
         \"0123456789abcdef0123456789abcdef01234567\" }}\ndeploy = {deploy}\n"
    ));
    std::fs::write(&toml, config).unwrap();
    support::git(dir.path(), &["init", "-q"]);
    dir
}

fn harness(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(support::harness_bin())
        .arg("--project")
        .arg(dir)
        .args(args)
        .output()
        .expect("run harness")
}

#[test]
fn the_workflow_passes_actionlint_the_schema_and_zizmor_with_zero_findings() {
    let (Some(actionlint), Some(schema), Some(zizmor)) = (
        checker("actionlint"),
        checker("check-jsonschema"),
        checker("zizmor"),
    ) else {
        return;
    };
    for (shards, deploy) in [("1", false), ("4", false), ("4", true)] {
        let dir = project(deploy);
        let o = harness(dir.path(), &["ci", "github", "--shards", shards]);
        assert!(o.status.success(), "{}", describe(&o));
        let workflow = dir.path().join(".github/workflows/harness.yml");
        let policy = dir.path().join(".github/zizmor.yml");
        let runs: [(&Path, Vec<&std::ffi::OsStr>); 3] = [
            (&actionlint, vec![workflow.as_os_str()]),
            (
                &schema,
                vec![
                    "--builtin-schema".as_ref(),
                    "vendor.github-workflows".as_ref(),
                    workflow.as_os_str(),
                ],
            ),
            (
                &zizmor,
                vec![
                    "--offline".as_ref(),
                    "--no-progress".as_ref(),
                    "--config".as_ref(),
                    policy.as_os_str(),
                    workflow.as_os_str(),
                ],
            ),
        ];
        for (tool, args) in runs {
            let o = Command::new(tool)
                .args(&args)
                .current_dir(dir.path())
                .output()
                .expect("run the checker");
            assert!(
                o.status.success(),
                "{} on --shards {shards} (deploy {deploy}): {}",
                tool.display(),
                describe(&o)
            );
            if tool == zizmor.as_path() {
                assert!(text(&o.stdout).contains("No findings"), "{}", describe(&o));
            }
        }
        // The checkers can tell: without the policy zizmor wants hash pins.
        let o = Command::new(&zizmor)
            .args(["--offline", "--no-progress", "--no-config"])
            .arg(&workflow)
            .output()
            .unwrap();
        assert!(
            !o.status.success() && text(&o.stdout).contains("unpinned-uses"),
            "{}",
            describe(&o)
        );
    }
}

#[test]
fn check_exits_1_with_a_diff_when_the_committed_workflow_is_stale_and_0_when_current() {
    let dir = project(false);
    let o = harness(dir.path(), &["ci", "github", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        text(&o.stdout).contains("+name: harness"),
        "{}",
        describe(&o)
    );
    let o = harness(dir.path(), &["ci", "github"]);
    assert!(o.status.success(), "{}", describe(&o));
    let o = harness(dir.path(), &["ci", "github", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let o = harness(dir.path(), &["ci", "github", "--check", "--shards", "3"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        text(&o.stdout).contains("+        shard: [1, 2, 3]"),
        "{}",
        describe(&o)
    );
    let o = harness(dir.path(), &["--json", "ci", "github", "--check"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["current"], true, "{}", describe(&o));
}

#[test]
fn without_ci_harness_it_exits_2_and_says_what_to_add() {
    let dir = support::copy_example();
    support::git(dir.path(), &["init", "-q"]);
    let o = harness(dir.path(), &["ci", "github"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(text(&o.stderr).contains("[ci] harness"), "{}", describe(&o));
    assert!(!dir.path().join(".github").exists());
}
