//! Issue 17: one case per finding of the deploy-path review (findings 1–17), each against the
//! real thing: the harness binary, the webhosting twin (real sshd, real Passenger, tests/twin)
//! where a server is involved, real sh, real pip and SQLite. Each case failed on fe72e9b.
//!
//! Deploys whose finding is not the gate pass `--force --reason`, so the case exercises the
//! server side of a deploy whatever the gate says.
//!
//! Without a Docker daemon the twin cases are ignored, unless CI is set: then they fail.
mod deploy_project;
mod small_project;
mod support;
mod twin;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use deploy_project::*;
use libtest_mimic::Failed;
use twin::{Twin, shell_quote};

fn main() {
    support::run_docker_suite(
        "adversarial",
        vec![
            (
                "f01_a_build_id_of_shell_code_on_the_server_never_runs_and_quotes_in_remote_dir_back_up",
                f01_a_build_id_of_shell_code_on_the_server_never_runs_and_quotes_in_remote_dir_back_up,
            ),
            (
                "f02_crafted_packages_after_a_green_run_are_refused_without_ssh",
                f02_crafted_packages_after_a_green_run_are_refused_without_ssh,
            ),
            (
                "f04_after_a_deploy_and_a_backup_the_secrets_are_owner_only",
                f04_after_a_deploy_and_a_backup_the_secrets_are_owner_only,
            ),
            (
                "f05_a_failed_backup_leaves_no_partial_and_stale_partials_are_swept",
                f05_a_failed_backup_leaves_no_partial_and_stale_partials_are_swept,
            ),
            (
                "f06_pruning_keeps_the_previous_release_and_folders_harness_did_not_write",
                f06_pruning_keeps_the_previous_release_and_folders_harness_did_not_write,
            ),
            (
                "f07_a_dead_local_holder_is_taken_over_and_a_break_is_audited",
                f07_a_dead_local_holder_is_taken_over_and_a_break_is_audited,
            ),
            (
                "f08_the_server_audit_log_carries_force_reason_and_break_lock",
                f08_the_server_audit_log_carries_force_reason_and_break_lock,
            ),
            (
                "f09_sighup_after_the_lock_before_the_swap_exits_130_unlocked_production_unchanged",
                f09_sighup_after_the_lock_before_the_swap_exits_130_unlocked_production_unchanged,
            ),
            (
                "f10_a_live_folder_that_appears_during_a_first_deploy_is_never_replaced",
                f10_a_live_folder_that_appears_during_a_first_deploy_is_never_replaced,
            ),
            (
                "f11_a_package_that_changes_between_reads_is_read_once_and_ships_the_first_bytes",
                f11_a_package_that_changes_between_reads_is_read_once_and_ships_the_first_bytes,
            ),
            (
                "f15_parity_remote_reports_stray_bytecode_and_symlinks",
                f15_parity_remote_reports_stray_bytecode_and_symlinks,
            ),
            (
                "f16_a_deploy_the_ledger_refuses_exits_3_live_but_unrecorded_and_is_added_later",
                f16_a_deploy_the_ledger_refuses_exits_3_live_but_unrecorded_and_is_added_later,
            ),
        ],
        vec![
            (
                "f03_file_names_with_control_characters_are_refused_at_build_and_at_deploy",
                f03_file_names_with_control_characters_are_refused_at_build_and_at_deploy,
            ),
            (
                "f04_a_build_makes_harness_0700_and_its_zips_0600",
                f04_a_build_makes_harness_0700_and_its_zips_0600,
            ),
            (
                "f12_an_ssh_value_that_is_an_option_is_refused_before_ssh_runs",
                f12_an_ssh_value_that_is_an_option_is_refused_before_ssh_runs,
            ),
            (
                "f13_the_wheel_cache_is_private_checked_and_never_in_a_shared_tmp",
                f13_the_wheel_cache_is_private_checked_and_never_in_a_shared_tmp,
            ),
            (
                "f14_a_mock_started_by_hand_listens_on_loopback_only",
                f14_a_mock_started_by_hand_listens_on_loopback_only,
            ),
            (
                "f17_concurrent_builds_keep_every_key_of_the_state_file",
                f17_concurrent_builds_keep_every_key_of_the_state_file,
            ),
        ],
    )
}

const FORCE: [&str; 2] = ["--force", "--reason=adversarial: not about the gate"];

/// `harness deploy webhosting --force …` against the twin.
fn forced_deploy(p: &Project, twin: &Twin, extra: &[&str]) -> Output {
    let mut args = vec!["deploy", "webhosting"];
    args.extend(FORCE);
    args.extend_from_slice(extra);
    p.harness(Some(twin), &args)
}

/// An ssh config for the twin whose every connection first appends to `marker`, then fails: a
/// command that never touches SSH leaves no marker.
fn marker_ssh_config(dir: &Path, marker: &Path) -> PathBuf {
    let config = dir.join("marker_ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host *\n  ProxyCommand sh -c 'echo connected >> {}; exit 1'\n  BatchMode yes\n",
            marker.display()
        ),
    )
    .unwrap();
    config
}

/// Rewrites a package: `edit` may change any entry's bytes; MANIFEST.json is then made to agree
/// with the new bytes, as a careful forger would. `add` appends entries.
fn forge(src: &Path, dst: &Path, mut edit: impl FnMut(&str, &mut Vec<u8>), add: &[(&str, &[u8])]) {
    use sha2::Digest;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let mut e = archive.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        edit(&name, &mut data);
        entries.push((name, data));
    }
    entries.extend(add.iter().map(|(n, d)| (n.to_string(), d.to_vec())));
    let sums: std::collections::BTreeMap<String, (String, usize)> = entries
        .iter()
        .map(|(n, d)| (n.clone(), (hex::encode(sha2::Sha256::digest(d)), d.len())))
        .collect();
    for (name, data) in entries.iter_mut() {
        if name == "MANIFEST.json" {
            let mut m: serde_json::Value = serde_json::from_slice(data).unwrap();
            let mut files: Vec<serde_json::Value> = Vec::new();
            for (path, (sha, size)) in &sums {
                if path != "MANIFEST.json" {
                    files.push(
                        serde_json::json!({"mode": 420, "path": path, "sha256": sha, "size": size}),
                    );
                }
            }
            m["files"] = serde_json::Value::Array(files);
            *data = serde_json::to_vec_pretty(&m).unwrap();
        }
    }
    let mut out = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for (name, data) in &entries {
        out.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(data).unwrap();
    }
    out.finish().unwrap();
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` with its sha256, except the ledger's own files.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .filter(|p| !p.starts_with(".harness/ledger.db"))
        .map(|p| {
            let sha = sha256_of(&dir.join(&p));
            (p, sha)
        })
        .collect()
}

fn count(db: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Finding 1: the server's build_info.json names the live build in shell code; a backup must
/// not run it (it went into a double-quoted `sqlite3 ".backup '…'"` argument), and a remote_dir
/// holding `'` must back up (sqlite3's dot-command parser took a doubled `'` literally).
fn f01_a_build_id_of_shell_code_on_the_server_never_runs_and_quotes_in_remote_dir_back_up()
-> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    let payload =
        "x$(touch /tmp/pwned-1)'$(touch /tmp/pwned-2)\"$(touch /tmp/pwned-3)`touch /tmp/pwned-4`";
    twin.exec(&format!(
        "PAYLOAD={} python3 -c 'import json, os; p = \"{}/build_info.json\"; d = json.load(open(p)); \
         d[\"build_id\"] = os.environ[\"PAYLOAD\"]; json.dump(d, open(p, \"w\"))'",
        shell_quote(payload),
        twin::REMOTE_DIR
    ))?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    let pwned = twin.exec("ls /tmp | grep -c pwned || true")?;
    ensure(pwned.trim() == "0", || {
        format!(
            "the build id ran on the server ({pwned} markers): {}",
            describe(&o)
        )
    })?;
    expect_exit(&o, 0)?;
    let local = p.backups();
    ensure(
        local.len() == 1
            && local[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with("-unknown.tar.gz"),
        || format!("an id harness did not write must be `unknown` in names: {local:?}"),
    )?;

    // A remote_dir with a quote and a space, holding the same release.
    let odd = "/home/deploy/o'brien app";
    twin.exec(&format!(
        "mkdir -p {q} && cp -a {}/. {q}/",
        twin::REMOTE_DIR,
        q = shell_quote(odd)
    ))?;
    p.edit("harness.toml", |s| {
        s.replace(
            &format!("remote_dir = \"{}\"", twin::REMOTE_DIR),
            &format!("remote_dir = \"{odd}\""),
        )
    });
    let o = p.harness(Some(&twin), &["--json", "backup", "webhosting"]);
    expect_exit(&o, 0)?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    let file = v["local"]
        .as_str()
        .or_else(|| v["backup"]["local"].as_str())
        .map(PathBuf::from)
        .ok_or_else(|| format!("no local path in {v}"))?;
    let list = Command::new("tar").arg("-tzf").arg(&file).output().unwrap();
    ensure(text(&list.stdout).lines().any(|l| l == "app.db"), || {
        format!("the backup has no database: {}", text(&list.stdout))
    })
}

/// Finding 2 and the issue's two crafted packages: after a green run whose code and schema
/// match, (a) an untested database under a valid build id is refused with exit 4 naming its
/// sha256, (b) the same with a build id of shell code exits 2. Neither touches SSH (the
/// ProxyCommand leaves a marker), creates a file or writes any row but the gate decision.
fn f02_crafted_packages_after_a_green_run_are_refused_without_ssh() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    p.record_green_run()?;
    let genuine = p.root().join(".harness/dist/webhosting/deploy.zip");
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("ssh-was-used");
    let ssh_config = marker_ssh_config(work.path(), &marker);

    // (a) Same code, same schema, another database: the admin's password hash is replaced.
    let crafted_a = work.path().join("crafted-a.zip");
    forge(
        &genuine,
        &crafted_a,
        |name, data| {
            if name == "app.db" {
                let f = work.path().join("edit.db");
                std::fs::write(&f, &data).unwrap();
                let c = rusqlite::Connection::open(&f).unwrap();
                c.execute("UPDATE users SET password_hash = 'attacker'", [])
                    .unwrap();
                drop(c);
                *data = std::fs::read(&f).unwrap();
            }
        },
        &[],
    );
    // (b) The same, with a build id that is shell code.
    let crafted_b = work.path().join("crafted-b.zip");
    let pwned = work.path().join("pwned");
    forge(
        &crafted_a,
        &crafted_b,
        |name, data| {
            if name == "build_info.json" {
                let mut v: serde_json::Value = serde_json::from_slice(data).unwrap();
                v["build_id"] = format!("x$(touch {})", pwned.display()).into();
                *data = serde_json::to_vec_pretty(&v).unwrap();
            }
        },
        &[],
    );

    let ledger = harness::ledger::path_in(p.root());
    let rows = |t: &str| count(&ledger, t);
    let (runs, builds, deploys, decisions) = (
        rows("runs"),
        rows("builds"),
        rows("deploys"),
        rows("gate_decisions"),
    );
    let files = tree(p.root());
    let server = twin.checksums()?;
    let deploy = |zip: &Path, dry: bool| {
        let mut c = p.command(None, &["deploy", "webhosting", "--package"]);
        c.arg(zip).env("HARNESS_SSH_CONFIG", &ssh_config);
        if dry {
            c.arg("--dry-run");
        }
        c.output().unwrap()
    };
    let sha_a = sha256_of(&crafted_a);
    for dry in [true, false] {
        let o = deploy(&crafted_a, dry);
        expect_exit(&o, 4)?;
        ensure(
            text(&o.stderr).contains(&sha_a) && text(&o.stderr).contains("not built by harness"),
            || format!("(a) must name {sha_a}: {}", describe(&o)),
        )?;
        let o = deploy(&crafted_b, dry);
        expect_exit(&o, 2)?;
        ensure(text(&o.stderr).contains("not one harness makes"), || {
            describe(&o)
        })?;
        ensure(!marker.exists(), || {
            format!("SSH was attempted (dry run: {dry})")
        })?;
    }
    ensure(!pwned.exists(), || "the build id ran here".into())?;
    ensure(tree(p.root()) == files, || {
        "a refused package left a file in the project".into()
    })?;
    unchanged(&server, &twin.checksums()?)?;
    ensure(
        (rows("runs"), rows("builds"), rows("deploys")) == (runs, builds, deploys),
        || "a refused package wrote a run, build or deploy row".into(),
    )?;
    ensure(rows("gate_decisions") == decisions + 2, || {
        format!(
            "expected the two gate decisions of (a) only, found {} new",
            rows("gate_decisions") - decisions
        )
    })?;
    // The marker is what proves "no SSH": the genuine package does reach SSH through it.
    let o = deploy(&genuine, true);
    ensure(marker.exists(), || {
        format!("the marker config never ran: {}", describe(&o))
    })
}

/// The small project with a webhosting target at `ssh`.
fn with_webhosting(p: &small_project::Project, ssh: &str) {
    p.write(
        "harness.toml",
        &format!(
            "{}\n[targets.webhosting]\nssh = \"{ssh}\"\nremote_dir = \"/home/deploy/app\"\nurl = \"https://app.example.org\"\n",
            small_project::CONFIG
        ),
    );
}

/// Finding 3: a name holding a tab or newline could merge two files' fingerprint lines. Such
/// names are refused when building and when reading a package.
fn f03_file_names_with_control_characters_are_refused_at_build_and_at_deploy() -> Outcome {
    let p = small_project::Project::new();
    p.write("src/app/a\tb.py", "x = 1\n");
    let o = p.build(&[]);
    expect_exit(&o, 2)?;
    ensure(text(&o.stderr).contains("control character"), || {
        describe(&o)
    })?;
    std::fs::remove_file(p.path("src/app/a\tb.py")).unwrap();

    with_webhosting(&p, "twin");
    let o = p.build(&["--target", "webhosting"]);
    expect_exit(&o, 0)?;
    let crafted = p.path("crafted.zip");
    forge(
        &p.zip("webhosting"),
        &crafted,
        |_, _| {},
        &[("src/app/a\tb.py", b"x = 1\n")],
    );
    let marker = p.path("ssh-was-used");
    let config = marker_ssh_config(p.dir.path(), &marker);
    let o = p
        .harness(&["deploy", "webhosting", "--dry-run", "--package"])
        .arg(&crafted)
        .env("HARNESS_SSH_CONFIG", &config)
        .output()
        .unwrap();
    expect_exit(&o, 2)?;
    ensure(text(&o.stderr).contains("control character"), || {
        describe(&o)
    })?;
    ensure(!marker.exists(), || "SSH was attempted".into())
}

/// Finding 4, build side: `.harness` is 0700 even when an older harness left it 0755, and the
/// package (the database holds the secret key and the admin hash) and `--output` are 0600.
fn f04_a_build_makes_harness_0700_and_its_zips_0600() -> Outcome {
    let p = small_project::Project::new();
    let old = p.path(".harness/dist/local");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("deploy.zip"), "from an older harness").unwrap();
    for d in [".harness", ".harness/dist", ".harness/dist/local"] {
        std::fs::set_permissions(p.path(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        old.join("deploy.zip"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let elsewhere = out.path().join("for-ci.zip");
    let o = p.build(&["--output", elsewhere.to_str().unwrap()]);
    expect_exit(&o, 0)?;
    let o = p.build(&[]);
    expect_exit(&o, 0)?;
    ensure(mode(&p.path(".harness")) == 0o700, || {
        format!(".harness is {:o}", mode(&p.path(".harness")))
    })?;
    // The new package, the one an older harness left (tightened), and --output.
    for f in [p.zip("webhosting"), p.zip("local"), elsewhere] {
        ensure(mode(&f) == 0o600, || {
            format!("{} is {:o}", f.display(), mode(&f))
        })?;
    }
    Ok(())
}

/// Finding 4, deploy side: after a deploy and a backup, `stat` shows 0700 on `.harness` and
/// 0600 on every zip and backup.
fn f04_after_a_deploy_and_a_backup_the_secrets_are_owner_only() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    expect_exit(&forced_deploy(&p, &twin, &[]), 0)?;
    expect_exit(&p.harness(Some(&twin), &["backup", "webhosting"]), 0)?;
    let out = Command::new("stat")
        .args(["-c", "%a %n"])
        .arg(p.root().join(".harness"))
        .args(
            ["dist/webhosting", "deployed", "backups"]
                .iter()
                .flat_map(|d| {
                    std::fs::read_dir(p.root().join(".harness").join(d))
                        .unwrap()
                        .flatten()
                        .map(|e| e.path())
                        .filter(|f| {
                            let n = f.to_string_lossy();
                            n.ends_with(".zip") || n.ends_with(".tar.gz")
                        })
                }),
        )
        .output()
        .unwrap();
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    ensure(lines.len() >= 5, || format!("too few files: {listing}"))?;
    ensure(lines[0].starts_with("700 "), || listing.clone())?;
    ensure(lines[1..].iter().all(|l| l.starts_with("600 ")), || {
        format!("a zip or backup others can read:\n{listing}")
    })?;
    ensure(
        lines.iter().any(|l| l.contains("/deployed/"))
            && lines.iter().any(|l| l.contains("/backups/")),
        || listing.clone(),
    )
}

/// Finding 5: a backup that fails midway leaves neither its snapshot folder nor its partial
/// archive on the server, nor a local file under a final name; partials an earlier killed run
/// left are swept.
fn f05_a_failed_backup_leaves_no_partial_and_stale_partials_are_swept() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    let backups = "/home/deploy/.app.harness/backups";
    twin.exec(&format!(
        "mkdir -p {backups}/20200101T000000Z-killed.d && head -c 100000 /dev/urandom > {backups}/20200101T000000Z-killed.d/app.db \
         && head -c 100000 /dev/urandom > {backups}/20200101T000000Z-killed.tar.gz.part"
    ))?;
    // The database cannot be read: the copy fails after the snapshot folder was made.
    twin.exec(&format!("chmod 000 {}/app.db", twin::REMOTE_DIR))?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    twin.exec(&format!("chmod 644 {}/app.db", twin::REMOTE_DIR))?;
    ensure(o.status.code() == Some(3), || {
        format!(
            "an unreadable database must fail the backup: {}",
            describe(&o)
        )
    })?;
    let left = twin.exec(&format!("ls -A {backups}"))?;
    ensure(left.trim().is_empty(), || {
        format!("left on the server after a failed backup: {left}")
    })?;
    ensure(p.backups().is_empty(), || {
        format!("a local file after a failed backup: {:?}", p.backups())
    })?;
    unlocked(&twin, "/home/deploy/.app.harness/lock")?;
    expect_exit(&p.harness(Some(&twin), &["backup", "webhosting"]), 0)
}

/// Finding 6: with keep_releases = 1, pruning chose by `ls | sort -r`: a hand-made folder that
/// sorts high, or a release stamped by a clock running ahead, pushed out the release a failed
/// verification rolls back to. Now only harness-shaped names are pruned, by stamp, and never the
/// outgoing release.
fn f06_pruning_keeps_the_previous_release_and_folders_harness_did_not_write() -> Outcome {
    let p = Project::new("\nkeep_releases = 1");
    let (twin, old) = twin_with_old_release(&p)?;
    let releases = "/home/deploy/.app.harness/releases";
    let ahead = "29991231T235959Z-20991231T000000Z-aaaaaaaaaaaa";
    let ancient = "20200101T000000Z-20200101T000000Z-bbbbbbbbbbbb";
    twin.exec(&format!(
        "mkdir -p {releases}/zz-kept-by-hand {releases}/{ahead} {releases}/{ancient} && \
         echo mine > {releases}/zz-kept-by-hand/notes.txt"
    ))?;
    expect_exit(&forced_deploy(&p, &twin, &[]), 0)?;
    let names = twin.exec(&format!("ls {releases}"))?;
    let outgoing = names.lines().find(|n| n.ends_with(&format!("-{old}")));
    ensure(outgoing.is_some(), || {
        format!("the previous release ({old}) was pruned: {names}")
    })?;
    ensure(names.contains("zz-kept-by-hand"), || {
        format!("a folder harness did not write was pruned: {names}")
    })?;
    ensure(!names.contains(ancient), || {
        format!("the oldest harness release should have gone: {names}")
    })
}

fn write_lock(twin: &Twin, details: &str) -> Result<(), Failed> {
    twin.exec(&format!(
        "mkdir -p {TWIN_LOCK} && printf '%s\\n' {} > {TWIN_LOCK}/details",
        details
            .split_whitespace()
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    ))?;
    Ok(())
}

/// Finding 7: a lock left by a harness process on this machine that no longer exists (a killed
/// cron backup) is taken over with a warning instead of refusing every later run; a live one is
/// refused naming pid, host, user and since; `--break-lock` is audited on the server with
/// whose lock it was.
fn f07_a_dead_local_holder_is_taken_over_and_a_break_is_audited() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    write_lock(
        &twin,
        &format!(
            "action=backup user=cron host={host} pid={dead_pid} time=2026-01-01T00:00:00.000Z token=0123"
        ),
    )?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    expect_exit(&o, 0)?;
    ensure(
        text(&o.stderr).contains(&format!("process {dead_pid}")),
        || describe(&o),
    )?;

    write_lock(
        &twin,
        "action=deploy user=alice host=alice-laptop pid=4242 time=2026-01-01T00:00:00.000Z token=4567",
    )?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    expect_exit(&o, 4)?;
    for field in ["alice", "alice-laptop", "4242", "2026-01-01T00:00:00.000Z"] {
        ensure(text(&o.stderr).contains(field), || {
            format!("the refusal must name {field}: {}", describe(&o))
        })?;
    }
    let o = p.harness(Some(&twin), &["backup", "webhosting", "--break-lock"]);
    expect_exit(&o, 0)?;
    let audit = twin.exec("cat /home/deploy/.app.harness/audit.log")?;
    ensure(
        audit
            .lines()
            .any(|l| l.contains("lock broken") && l.contains("alice-laptop") && l.contains("4242")),
        || format!("the break is not audited with the holder:\n{audit}"),
    )
}

/// Finding 8: what was waived is in the server's audit log: `--force` with its reason,
/// `--break-lock`.
fn f08_the_server_audit_log_carries_force_reason_and_break_lock() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    expect_exit(&forced_deploy(&p, &twin, &[]), 0)?;
    expect_exit(
        &p.harness(Some(&twin), &["backup", "webhosting", "--break-lock"]),
        0,
    )?;
    let audit = twin.exec("cat /home/deploy/.app.harness/audit.log")?;
    ensure(
        audit.lines().any(|l| {
            l.contains("deploy") && l.contains("forced=\"adversarial: not about the gate\"")
        }),
        || format!("no forced deploy line with its reason:\n{audit}"),
    )?;
    ensure(
        audit
            .lines()
            .any(|l| l.contains("backup") && l.contains("break_lock")),
        || format!("no backup line with break_lock:\n{audit}"),
    )
}

/// Finding 9: a hang-up (the terminal closed) between the lock and the swap is an interrupt
/// like Ctrl-C; SIGHUP's default action used to end harness with the server locked.
fn f09_sighup_after_the_lock_before_the_swap_exits_130_unlocked_production_unchanged() -> Outcome {
    interrupted_after_the_lock(libc::SIGHUP, &FORCE)
}

/// Finding 10: a first deploy checked `remote_dir` was absent only in the preflight. A folder
/// that appears there while the deploy runs (another tool, a hand upload) must not get the new
/// release moved into or over it: the swap re-checks under the lock and refuses (exit 3).
fn f10_a_live_folder_that_appears_during_a_first_deploy_is_never_replaced() -> Outcome {
    let p = Project::new("");
    let fresh = "/home/deploy/fresh";
    p.edit("harness.toml", |s| {
        s.replace(
            &format!("remote_dir = \"{}\"", twin::REMOTE_DIR),
            &format!("remote_dir = \"{fresh}\""),
        )
    });
    p.commit("first deploy to a fresh folder");
    let twin = Twin::start()?;
    let mut args = vec!["deploy", "webhosting"];
    args.extend(FORCE);
    let mut child = p.spawn(&twin, &args);
    wait_on_twin(
        &twin,
        &mut child,
        "test -d /home/deploy/.fresh.harness/lock",
    )?;
    twin.exec(&format!("mkdir {fresh} && echo mine > {fresh}/keep.txt"))?;
    let o = take_output(&mut child);
    expect_exit(&o, 3)?;
    let listing = twin.exec(&format!("ls -A {fresh}"))?;
    ensure(listing.trim() == "keep.txt", || {
        format!(
            "the folder that appeared was changed: {listing}\n{}",
            describe(&o)
        )
    })?;
    unlocked(&twin, "/home/deploy/.fresh.harness/lock")
}

/// Finding 11: the package is read, hashed, boot-checked and shipped from one private copy.
/// `--package` here is a FIFO that yields the tested package on its first open and another
/// build on every later one, as a file replaced between two reads would: harness must open it
/// once and ship the first bytes.
fn f11_a_package_that_changes_between_reads_is_read_once_and_ships_the_first_bytes() -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    let first = p.root().join(".harness/first.zip");
    let build = p.build_to(&first)?;
    p.edit("src/app/__init__.py", |s| format!("{s}\n# swapped in\n"));
    let other = p.root().join(".harness/other.zip");
    let other_build = p.build_to(&other)?;
    p.git(&["checkout", "--", "src/app/__init__.py"]);
    ensure(other_build != build && other_build != old, || {
        "the builds share an id".into()
    })?;
    let fifo = p.root().join(".harness/package.zip");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    ensure(made.success(), || "mkfifo failed".into())?;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (fifo, done) = (fifo.clone(), done.clone());
        let bytes = [
            std::fs::read(&first).unwrap(),
            std::fs::read(&other).unwrap(),
        ];
        std::thread::spawn(move || {
            use std::os::unix::fs::OpenOptionsExt;
            let mut opens = 0;
            loop {
                // Blocks until a reader opens the FIFO.
                let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return opens;
                }
                let _ = w.write_all(&bytes[opens.min(1)]);
                drop(w);
                opens += 1;
                // The reader sees the end only once it has read everything and no writer is
                // left: wait until it has closed its end (a non-blocking open then finds no
                // reader) before serving the next open.
                while std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo)
                    .is_ok()
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    let mut args = vec!["deploy", "webhosting", "--package", fifo.to_str().unwrap()];
    args.extend(FORCE);
    let o = p.harness(Some(&twin), &args);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    // Release the writer, which waits for one more reader.
    drop(std::fs::File::open(&fifo).unwrap());
    let opens = writer.join().unwrap();
    expect_exit(&o, 0)?;
    ensure(opens == 1, || {
        format!("the package was opened {opens} times")
    })?;
    ensure(twin.build_id().as_deref() == Some(build.as_str()), || {
        format!(
            "the server runs {:?}, not the first bytes' {build}: {}",
            twin.build_id(),
            describe(&o)
        )
    })
}

/// Finding 15: `parity --remote` left out every `.pyc` and `__pycache__` and never looked at
/// symlinks. A `.pyc` outside `__pycache__` is imported when its source is missing; a cache
/// file without its source and a symlink are not what was deployed either.
fn f15_parity_remote_reports_stray_bytecode_and_symlinks() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    expect_exit(&forced_deploy(&p, &twin, &[]), 0)?;
    // The app has run: the bytecode Python wrote beside its sources is runtime state.
    let o = p.harness(Some(&twin), &["parity", "--remote"]);
    expect_exit(&o, 0)?;
    let app = format!("{}/src/app", twin::REMOTE_DIR);
    twin.exec(&format!(
        "printf 'x' > {app}/backdoor.pyc && mkdir -p {app}/__pycache__ && \
         printf 'x' > {app}/__pycache__/gone.cpython-311.pyc && ln -s /etc/passwd {app}/linked.txt"
    ))?;
    let o = p.harness(Some(&twin), &["parity", "--remote"]);
    expect_exit(&o, 1)?;
    let out = text(&o.stdout);
    for line in [
        "bytecode  src/app/backdoor.pyc",
        "bytecode  src/app/__pycache__/gone.cpython-311.pyc",
        "symlink   src/app/linked.txt",
    ] {
        ensure(out.contains(line), || format!("missing `{line}`:\n{out}"))?;
    }
    Ok(())
}

/// Finding 16: a deploy that changed production but could not be recorded (here the ledger
/// refuses the row the way a full disk would) exits 3 "live but unrecorded", prunes nothing
/// local, and its record is added at the next command that opens the ledger.
fn f16_a_deploy_the_ledger_refuses_exits_3_live_but_unrecorded_and_is_added_later() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    // The ledger exists once any command opened it.
    expect_exit(&p.harness(None, &["runs"]), 0)?;
    let ledger = harness::ledger::path_in(p.root());
    let sql = |s: &str| {
        rusqlite::Connection::open(&ledger)
            .unwrap()
            .execute_batch(s)
            .unwrap()
    };
    sql(
        "CREATE TRIGGER full_disk BEFORE INSERT ON deploys BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    );
    let deployed_before: Vec<_> = std::fs::read_dir(p.root().join(".harness/deployed"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let o = forced_deploy(&p, &twin, &["--json"]);
    expect_exit(&o, 3)?;
    ensure(text(&o.stderr).contains("live but unrecorded"), || {
        describe(&o)
    })?;
    ensure(
        text(&o.stderr).contains("harness status webhosting"),
        || describe(&o),
    )?;
    let waiting: Vec<_> = std::fs::read_dir(p.root().join(".harness/unrecorded"))
        .map_err(|e| format!("no .harness/unrecorded: {e}"))?
        .flatten()
        .collect();
    ensure(waiting.len() == 1, || format!("waiting: {waiting:?}"))?;
    let deployed_after: Vec<_> = std::fs::read_dir(p.root().join(".harness/deployed"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure(
        deployed_before.iter().all(|f| deployed_after.contains(f)),
        || "a deployed package was pruned".into(),
    )?;
    let live = twin.build_id().ok_or("no build answers")?;
    sql("DROP TRIGGER full_disk;");
    let o = p.harness(Some(&twin), &["status", "webhosting"]);
    expect_exit(&o, 0)?;
    let c = rusqlite::Connection::open(&ledger).unwrap();
    let release: Option<String> = c
        .query_row(
            "SELECT release_id FROM deploys WHERE outcome = 'deployed' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("no deploy row after status: {e}"))?;
    ensure(release.as_deref() == Some(live.as_str()), || {
        format!("recorded {release:?}, live {live}")
    })?;
    ensure(
        std::fs::read_dir(p.root().join(".harness/unrecorded"))
            .unwrap()
            .next()
            .is_none(),
        || "the record still waits".into(),
    )
}

/// Finding 12: `ssh = "-oProxyCommand=…"` became an ssh option and ran its command. It is
/// refused with the file and line, and ssh never starts.
fn f12_an_ssh_value_that_is_an_option_is_refused_before_ssh_runs() -> Outcome {
    let p = small_project::Project::new();
    let marker = p.path("proxy-ran");
    with_webhosting(&p, &format!("-oProxyCommand=touch {}", marker.display()));
    let line = std::fs::read_to_string(p.path("harness.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("ssh = "))
        .unwrap()
        + 1;
    for args in [
        &["deploy", "webhosting", "--dry-run", "--force", "--reason=x"][..],
        &["backup", "webhosting"][..],
        &["status", "webhosting"][..],
    ] {
        let o = p.harness(args).output().unwrap();
        expect_exit(&o, 2)?;
        ensure(
            text(&o.stderr).contains(&format!("harness.toml:{line}")),
            || format!("{args:?} must name harness.toml:{line}: {}", describe(&o)),
        )?;
        ensure(!marker.exists(), || {
            format!("{args:?} ran the ProxyCommand")
        })?;
    }
    Ok(())
}

/// Finding 13: the wheel cache is copied into packages unread, so it must be the user's own
/// (0700), a warm entry must still be what was filled, and with HOME unset harness must not
/// fall back to a shared temporary folder.
fn f13_the_wheel_cache_is_private_checked_and_never_in_a_shared_tmp() -> Outcome {
    let p = small_project::Project::new();
    let cache = p.cache.path();
    std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    expect_exit(&p.build(&[]), 0)?;
    ensure(mode(cache) == 0o700, || {
        format!("cache is {:o}", mode(cache))
    })?;

    // Another program changes a cached zip: the next build refuses it.
    let zip = walkdir::WalkDir::new(cache.join("wheels"))
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "vendor.zip")
        .ok_or("no vendor.zip in the cache")?
        .into_path();
    let mut bytes = std::fs::read(&zip).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&zip, bytes).unwrap();
    let o = p.build(&[]);
    expect_exit(&o, 3)?;
    ensure(text(&o.stderr).contains("damaged"), || describe(&o))?;

    // A cache folder that belongs to someone else is refused (root gives it away).
    let theirs = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(theirs.path(), Some(65534), Some(65534)).unwrap();
    let o = p
        .harness(&["build"])
        .env("HARNESS_CACHE_DIR", theirs.path())
        .output()
        .unwrap();
    expect_exit(&o, 3)?;
    ensure(text(&o.stderr).contains("uid 65534"), || describe(&o))?;

    // No HOME: an error that says what to set, and nothing in $TMPDIR.
    let tmp = tempfile::tempdir().unwrap();
    let o = p
        .harness(&["build"])
        .env_remove("HARNESS_CACHE_DIR")
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    expect_exit(&o, 3)?;
    ensure(text(&o.stderr).contains("HARNESS_CACHE_DIR"), || {
        describe(&o)
    })?;
    ensure(!tmp.path().join("harness").exists(), || {
        "the cache went to $TMPDIR".into()
    })
}

/// Finding 14: `harness mock …` started by hand answered every network the machine is on.
fn f14_a_mock_started_by_hand_listens_on_loopback_only() -> Outcome {
    let mut child = Command::new(support::harness_bin())
        .args(["mock", "geoip", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = listening_address(stdout);
    let _ = child.kill();
    let _ = child.wait();
    let (addr, listening) = seen?;
    ensure(addr.starts_with("127.0.0.1:"), || format!("printed {addr}"))?;
    ensure(listening == ["0100007F"], || {
        format!("listening on {listening:?} (0100007F is 127.0.0.1)")
    })
}

/// The address a mock printed, and what the kernel says listens on its port (state 0A,
/// addresses in hex).
fn listening_address(stdout: std::process::ChildStdout) -> Result<(String, Vec<String>), Failed> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    let addr = v
        .as_object()
        .and_then(|o| {
            o.values()
                .find_map(|x| x.as_str().filter(|s| s.contains(':')))
        })
        .ok_or_else(|| format!("no address in {line}"))?
        .to_string();
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {addr}"))?;
    let listening = std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ip, p) = f.get(1)?.split_once(':')?;
            (f.get(3) == Some(&"0A") && u16::from_str_radix(p, 16).ok()? == port)
                .then(|| ip.to_string())
        })
        .collect();
    Ok((addr, listening))
}

/// Finding 17: a build reads the state file, runs the seed, and writes it back; a second build
/// (or a deploy) writing meanwhile lost its keys to the first one's stale copy. Two builds at
/// once, each seed adding its own key: both keys must be there.
fn f17_concurrent_builds_keep_every_key_of_the_state_file() -> Outcome {
    let p = small_project::Project::new();
    p.write(
        "harness.toml",
        &small_project::CONFIG.replace(
            "sql = [\"db/schema.sql\"]",
            "seed_command = [\"python3\", \"seed.py\"]",
        ),
    );
    p.write(
        "seed.py",
        r#"import json, os, sqlite3, time
state = os.environ["HARNESS_STATE_FILE"]
data = json.load(open(state)) if os.path.exists(state) else {}
time.sleep(1.5)
data["seed_%d" % os.getpid()] = True
json.dump(data, open(state, "w"))
sqlite3.connect(os.environ["HARNESS_DB_PATH"]).execute("CREATE TABLE IF NOT EXISTS t (x)")
"#,
    );
    // --reseed: both seeds run (without it the second build takes the first one's seed from
    // the seed cache, which is what a second build should do, and there is no race to test).
    let spawn = || {
        p.harness(&["build", "--reseed"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    for c in [&mut a, &mut b] {
        let o = take_output(c);
        expect_exit(&o, 0)?;
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("deployment_state_webhosting.json")).unwrap())
            .unwrap();
    let seeds = state
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("seed_"))
        .count();
    ensure(seeds == 2, || {
        format!("one build's keys were lost: {state:#}")
    })?;
    Ok(())
}
