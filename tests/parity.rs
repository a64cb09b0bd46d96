//! `harness parity` on copies of examples/flask-app, through the real binary.
//!
//! Needs the example's wheels in the cache (run `harness --project examples/flask-app build`
//! once); pip is pointed at a closed 127.0.0.1 port, so a cold cache fails instead of downloading.
//! `parity --remote` against the webhosting twin, after a real deploy, is in tests/e2e_rollback.rs.
use std::io::{Read, Write};
mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{copy_example, git};

const BIN: &str = env!("CARGO_BIN_EXE_harness");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn harness(project: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--project")
        .arg(project)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\n(a cold wheel cache? build examples/flask-app once)",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn zip_path(project: &Path, target: &str) -> PathBuf {
    project
        .join(".harness/dist")
        .join(target)
        .join("deploy.zip")
}

/// Rewrites `zip` with `edit` applied to its entries (name → bytes), keeping order and modes.
fn rewrite_zip(zip: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let name = f.name().unwrap().into_owned();
        let mode = f.unix_mode().unwrap_or(0o644);
        entries.push((name, mode, data));
    }
    let mut w = zip::ZipWriter::new(std::fs::File::create(zip).unwrap());
    for (name, mode, data) in entries {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        w.start_file(name.as_str(), opts).unwrap();
        let data = edit(&name, data);
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn fresh_builds_of_the_example_have_clean_parity() {
    let p = copy_example();
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("parity holds"), "{stdout}");
    assert!(stdout.contains("allowed (database_content)"), "{stdout}");
    // Both packages were built because neither existed; a second run reuses them.
    assert!(
        text(&out.stderr).contains("is missing; building it"),
        "{}",
        show(&out)
    );
    let again = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&again), 0, "{}", show(&again));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["clean"], true);
    assert_eq!(v["rebuilt"], serde_json::json!([]));
    assert!(v["local_files"].as_u64().unwrap() > 100);
}

#[test]
fn a_vendored_file_changed_inside_one_zip_fails_parity_naming_it() {
    let p = copy_example();
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let victim = "vendor/flask/__init__.py";
    rewrite_zip(&zip_path(p.path(), "webhosting"), |name, data| {
        if name == victim {
            let mut d = data;
            d.extend_from_slice(b"\n# edited after the build\n");
            d
        } else {
            data
        }
    });
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(victim)).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("manifest") && l.contains("DIFFERS")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("file") && l.contains("DIFFERS")),
        "{stdout}"
    );
    assert!(
        stdout.contains("parity FAILS: 2 differences not allowed"),
        "{stdout}"
    );
    // The tampered zip was not rebuilt away: its inputs did not change.
    assert!(!text(&out.stderr).contains("building it"), "{}", show(&out));
}

#[test]
fn a_column_seeded_for_one_target_is_named_with_its_table() {
    let p = copy_example();
    let local_sql = p.path().join("db/local.sql");
    let mut sql = std::fs::read_to_string(&local_sql).unwrap();
    sql.push_str("\nALTER TABLE email_config ADD COLUMN local_debug INTEGER DEFAULT 0;\n");
    std::fs::write(&local_sql, sql).unwrap();
    let out = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad: Vec<&serde_json::Value> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["allowed"] == false)
        .collect();
    assert!(
        bad.iter().any(|d| d["kind"] == "column"
            && d["table"] == "email_config"
            && d["column"] == "local_debug"
            && d["webhosting"].is_null()),
        "{}",
        serde_json::to_string_pretty(&v).unwrap()
    );
    // The table view names it too.
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        text(&out.stdout).contains("email_config.local_debug"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_package_built_for_another_python_and_platform_is_reported() {
    // A real build for another Python needs that Python's wheels (the network), so the
    // webhosting package's build_info.json is rewritten as such a build would have it, with its
    // manifest entry updated, so only the targets differ.
    let p = copy_example();
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let zip = zip_path(p.path(), "webhosting");
    let mut info: serde_json::Value = {
        let mut a = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        serde_json::from_reader(a.by_name("build_info.json").unwrap()).unwrap()
    };
    info["pythons"] = serde_json::json!(["3.12"]);
    info["platforms"] = serde_json::json!(["musllinux_1_2_x86_64", "any"]);
    let bytes = serde_json::to_vec_pretty(&info).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    rewrite_zip(&zip, |name, data| match name {
        "build_info.json" => bytes.clone(),
        "MANIFEST.json" => {
            let mut m: serde_json::Value = serde_json::from_slice(&data).unwrap();
            for f in m["files"].as_array_mut().unwrap() {
                if f["path"] == "build_info.json" {
                    f["sha256"] = sha.clone().into();
                    f["size"] = bytes.len().into();
                }
            }
            serde_json::to_vec_pretty(&m).unwrap()
        }
        _ => data,
    });
    let out = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bad: Vec<(String, String)> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["allowed"] == false)
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["webhosting"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        bad,
        vec![
            ("python".to_string(), "3.12".to_string()),
            (
                "platform".to_string(),
                "musllinux_1_2_x86_64, any".to_string()
            ),
        ],
        "{}",
        serde_json::to_string_pretty(&v).unwrap()
    );
}

#[test]
fn a_changed_source_makes_parity_rebuild_only_what_is_stale() {
    let p = copy_example();
    let out = harness(p.path(), &["build", "--local"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    // The local package is fresh, the webhosting one missing: only webhosting is built.
    let out = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rebuilt"], serde_json::json!(["webhosting"]));
    // Editing a source makes both stale.
    let f = p.path().join("src/app/__init__.py");
    let mut s = std::fs::read_to_string(&f).unwrap();
    s.push_str("\n# touched\n");
    std::fs::write(&f, s).unwrap();
    let out = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rebuilt"], serde_json::json!(["local", "webhosting"]));
}

/// build_info.json carries the commit, so a package built before a commit is stale after it,
/// even when no source changed: otherwise a fresh local build (as `harness test` makes) and the
/// older webhosting one would differ in their commit and parity would fail.
#[test]
fn a_new_commit_makes_packages_stale_so_a_rebuilt_one_still_has_clean_parity() {
    let p = copy_example();
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "one"]);
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    git(
        p.path(),
        &["commit", "-q", "--allow-empty", "-m", "docs only"],
    );
    let out = harness(p.path(), &["build", "--target", "local"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let out = harness(p.path(), &["parity", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rebuilt"], serde_json::json!(["webhosting"]), "{v:#}");
}

#[test]
fn a_bad_allow_rule_is_a_config_error_with_its_line() {
    let p = copy_example();
    let cfg = p.path().join("harness.toml");
    let mut s = std::fs::read_to_string(&cfg).unwrap();
    s.push_str("\n[parity]\nallow = [\"database_contents\"]\n");
    std::fs::write(&cfg, s).unwrap();
    let out = harness(p.path(), &["parity"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("harness.toml:") && err.contains("database_contents"),
        "{err}"
    );
}

#[test]
fn remote_needs_ssh_and_remote_dir() {
    let p = copy_example();
    let cfg = p.path().join("harness.toml");
    let s = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("ssh = \"deploy@webhosting.example\"\n", "");
    std::fs::write(&cfg, s).unwrap();
    let out = harness(p.path(), &["parity", "--remote"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        text(&out.stderr).contains("needs `ssh` and `remote_dir`"),
        "{}",
        show(&out)
    );
}
