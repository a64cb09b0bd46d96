//! End-to-end: `harness rollback`, `harness backup`, `harness status webhosting` and
//! `parity --remote` against the webhosting twin (tests/twin: real sshd, real Apache + Passenger
//! with its 10 s restart throttle), on copies of examples/flask-app (tests/deploy_project).
//!
//! Needs the example's wheels in the cache (run `harness --project examples/flask-app build` once)
//! and the harness/app image. Without a Docker daemon the twin cases are ignored, unless CI is
//! set: then they fail.
mod deploy_project;
mod support;
mod twin;

use harness::model::target::Target;
use std::process::{Command, Output};

use deploy_project::*;
use libtest_mimic::Failed;
use twin::Twin;

const HOME: &str = "/home/deploy/.app.harness";
const ROW_B: &str = "INSERT INTO settings (key, value) VALUES ('written_under_b', '\"b\"')";
const ROW_B_Q: &str = "SELECT value FROM settings WHERE key = 'written_under_b'";

fn main() {
    support::run_docker_suite(
        "rollback",
        vec![
            (
                "rollback_goes_back_to_a_with_b_rows_then_to_b_then_with_db_to_a_database",
                rollback_goes_back_to_a_with_b_rows_then_to_b_then_with_db_to_a_database,
            ),
            (
                "status_shows_releases_backups_lock_and_a_hand_edited_version_as_differs",
                status_shows_releases_backups_lock_and_a_hand_edited_version_as_differs,
            ),
            (
                "backup_after_nine_simulated_days_keeps_exactly_what_the_policy_says",
                backup_after_nine_simulated_days_keeps_exactly_what_the_policy_says,
            ),
            (
                "a_kept_release_that_does_not_answer_is_put_back_exit_5",
                a_kept_release_that_does_not_answer_is_put_back_exit_5,
            ),
            (
                "parity_remote_compares_the_server_with_the_last_deployed_package",
                parity_remote_compares_the_server_with_the_last_deployed_package,
            ),
            (
                "backup_verify_passes_a_good_backup_and_names_a_damaged_database",
                backup_verify_passes_a_good_backup_and_names_a_damaged_database,
            ),
        ],
        // These refuse before Docker or SSH are touched.
        vec![(
            "without_ssh_or_a_recorded_deploy_the_commands_exit_2",
            without_ssh_or_a_recorded_deploy_the_commands_exit_2,
        )],
    )
}

/// A new commit whose build differs (a module naming `label`), a green run of it, and its deploy.
fn deploy_release(p: &Project, twin: &Twin, label: &str) -> Result<String, Failed> {
    std::fs::write(
        p.root().join("src/app/release_label.py"),
        format!("LABEL = {label:?}\n"),
    )
    .unwrap();
    p.commit(label);
    let build = p.record_green_run()?;
    let o = p.harness(Some(twin), &["deploy", "webhosting"]);
    expect_exit(&o, 0)?;
    ensure(twin.build_id().as_deref() == Some(build.as_str()), || {
        format!("{label}: /version is not {build}: {:?}", twin.build_id())
    })?;
    Ok(build)
}

fn ledger(p: &Project) -> Result<harness::ledger::Ledger, Failed> {
    Ok(
        harness::ledger::Ledger::open(&harness::ledger::path_in(p.root()))
            .map_err(|e| e.to_string())?,
    )
}

/// The words of the loss report's line for `table` (table, now, backup[, lost]).
fn loss_line(o: &Output, table: &str) -> Vec<String> {
    text(&o.stderr)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn served(twin: &Twin, build: &str) -> Outcome {
    ensure(
        twin.build_id().as_deref() == Some(build) && twin.health() == Some(200),
        || {
            format!(
                "expected build {build} with health 200, the twin serves {:?} (health {:?})",
                twin.build_id(),
                twin.health()
            )
        },
    )
}

fn rollback_goes_back_to_a_with_b_rows_then_to_b_then_with_db_to_a_database() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    let a = deploy_release(&p, &twin, "A")?;
    let b = deploy_release(&p, &twin, "B")?;
    twin.sql(ROW_B)?;

    // The default: the release before the current one; B's database (with its new row) stays.
    let o = p.harness(Some(&twin), &["rollback", "webhosting"]);
    expect_exit(&o, 0)?;
    served(&twin, &a)?;
    ensure(twin.sql(ROW_B_Q)? == "\"b\"", || {
        "the row written under B is gone after a code-only rollback".into()
    })?;
    ensure(twin.sql(MARKER_Q)? == "\"before-deploy\"", || {
        "the marker row is gone".into()
    })?;
    let releases = twin.exec(&format!("ls {HOME}/releases"))?;
    ensure(
        releases.lines().any(|l| l.ends_with(&format!("-{b}"))),
        || format!("B is not kept for a way back: {releases}"),
    )?;

    // Back to B by its build id.
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--to", &b]);
    expect_exit(&o, 0)?;
    served(&twin, &b)?;
    ensure(twin.sql(ROW_B_Q)? == "\"b\"", || "B's row is gone".into())?;

    // --with-db shows what would be lost, and without a terminal or --yes refuses.
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--with-db"]);
    expect_exit(&o, 4)?;
    ensure(text(&o.stderr).contains("no terminal to confirm"), || {
        describe(&o)
    })?;
    let settings = loss_line(&o, "settings");
    ensure(
        settings.len() == 4
            && settings[1].parse::<i64>().ok() == settings[2].parse::<i64>().ok().map(|n| n + 1)
            && settings[3] == "1",
        || {
            format!(
                "the loss report's settings line is {settings:?}: {}",
                describe(&o)
            )
        },
    )?;
    served(&twin, &b)?;
    ensure(twin.exec(&format!("test ! -e {HOME}/lock")).is_ok(), || {
        "a refused rollback left the lock".into()
    })?;

    // Confirmed: A's code and A's database, the backup taken when B replaced A.
    let o = p.harness(
        Some(&twin),
        &["rollback", "webhosting", "--with-db", "--yes"],
    );
    expect_exit(&o, 0)?;
    served(&twin, &a)?;
    ensure(twin.sql(ROW_B_Q)?.is_empty(), || {
        "B's row survived rollback --with-db".into()
    })?;
    ensure(twin.sql(MARKER_Q)? == "\"before-deploy\"", || {
        "A's database lost the marker row".into()
    })?;
    ensure(
        loss_line(&o, "settings").last().map(String::as_str) == Some("1"),
        || describe(&o),
    )?;

    // What was live (B, with its row) was backed up first, recorded, and can be extracted.
    let l = ledger(&p)?;
    let backups = l.backups(Target::Webhosting).map_err(|e| e.to_string())?;
    let safety = backups
        .iter()
        .find(|x| x.kind == harness::ledger::BackupKind::Rollback)
        .ok_or_else(|| format!("no rollback backup in the ledger: {backups:?}"))?;
    ensure(safety.build_id.as_deref() == Some(b.as_str()), || {
        format!("{safety:?}")
    })?;
    let config = harness::config::Config::load(p.root(), None).map_err(|e| e.to_string())?;
    let out = tempfile::tempdir().unwrap();
    let x = harness::package::backup::extract(
        &config,
        std::path::Path::new(&safety.local_path),
        out.path(),
    )
    .map_err(|e| e.to_string())?;
    ensure(x.build_id.as_deref() == Some(b.as_str()), || {
        format!("{x:?}")
    })?;
    let db = rusqlite::Connection::open(x.database.as_ref().ok_or("no database")?).unwrap();
    let row: String = db
        .query_row(ROW_B_Q, [], |r| r.get(0))
        .map_err(|e| format!("the safety backup lacks B's row: {e}"))?;
    ensure(row == "\"b\"", || row.clone())?;

    // Three rollbacks recorded, the ledger's live record is the last one, audit lines on both ends.
    let done: Vec<_> = l
        .rollbacks()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, r)| r.outcome == harness::ledger::RollbackOutcome::Done)
        .collect();
    ensure(done.len() == 3, || format!("{done:?}"))?;
    let live = l
        .live(Target::Webhosting)
        .map_err(|e| e.to_string())?
        .unwrap();
    ensure(
        live.via == "rollback"
            && live.build_id.as_deref() == Some(a.as_str())
            && live.package_sha256.is_some(),
        || format!("{live:?}"),
    )?;
    let remote_audit = twin.exec(&format!("cat {HOME}/audit.log"))?;
    ensure(
        remote_audit.matches("rollback done").count() == 3 && remote_audit.contains("with_db="),
        || remote_audit.clone(),
    )?;
    let local_audit =
        std::fs::read_to_string(p.root().join(".harness/audit.log")).unwrap_or_default();
    ensure(local_audit.matches("rollback done").count() == 3, || {
        local_audit.clone()
    })?;
    let o = p.harness(Some(&twin), &["status", "webhosting"]);
    expect_exit(&o, 0)?;
    ensure(text(&o.stdout).contains("matches the last deploy"), || {
        describe(&o)
    })
}

fn status_shows_releases_backups_lock_and_a_hand_edited_version_as_differs() -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    let a = deploy_release(&p, &twin, "A")?;

    let o = p.harness(Some(&twin), &["status", "webhosting"]);
    expect_exit(&o, 0)?;
    let out = text(&o.stdout);
    for want in [
        format!("live      build {a} (health 200)"),
        "matches the last deploy".to_string(),
        "lock      free".to_string(),
        format!("build {old}"),
        "local copy".to_string(),
    ] {
        ensure(out.contains(&want), || {
            format!("status lacks {want:?}:\n{out}")
        })?;
    }
    let o = p.harness(Some(&twin), &["--json", "status", "webhosting"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    let recorded = ledger(&p)?
        .backups(Target::Webhosting)
        .map_err(|e| e.to_string())?;
    ensure(
        v["verdict"] == "matches"
            && v["releases"][0]["build_id"] == old.as_str()
            && v["backups"].as_array().map(Vec::len) == Some(1)
            && v["backups"][0]["sha256"] == recorded[0].sha256.as_str(),
        || format!("{v:#}"),
    )?;

    // A dry run names every step and changes nothing; bad input: an unknown release is exit 2
    // naming the kept ones, and the live build is not one.
    let before = twin.exec(&format!("ls -R {HOME}/releases /home/deploy/app"))?;
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--dry-run"]);
    expect_exit(&o, 0)?;
    for id in ["lock", "database", "swap", "verify"] {
        ensure(text(&o.stdout).contains(&format!(" {id} ")), || {
            format!("the plan lacks {id}: {}", describe(&o))
        })?;
    }
    ensure(text(&o.stdout).contains("nothing was changed"), || {
        describe(&o)
    })?;
    support::snapshot(
        "rollback-dry-run.txt",
        &support::masked(&text(&o.stdout), p.root()),
    )?;
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--to", "nope"]);
    expect_exit(&o, 2)?;
    ensure(
        text(&o.stderr).contains("no kept release \"nope\"")
            && text(&o.stderr).contains(&format!("(build {old})")),
        || describe(&o),
    )?;
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--to", &a]);
    expect_exit(&o, 2)?;
    ensure(text(&o.stderr).contains("is the live one"), || describe(&o))?;
    ensure(
        twin.exec(&format!("ls -R {HOME}/releases /home/deploy/app"))? == before,
        || "a refused rollback changed files".into(),
    )?;

    // A held lock: status says by whom since when; a rollback is refused naming the holder.
    twin.exec(&format!(
        "mkdir -p {HOME}/lock && printf 'action=deploy\\nuser=alice\\nhost=alice-laptop\\npid=4242\\ntime=2026-01-02T03:04:05.000Z\\n' > {HOME}/lock/details"
    ))?;
    let o = p.harness(Some(&twin), &["status", "webhosting"]);
    ensure(
        text(&o.stdout).contains(
            "lock      held by alice@alice-laptop for a deploy, pid 4242, since 2026-01-02T03:04:05.000Z"
        ),
        || describe(&o),
    )?;
    let o = p.harness(Some(&twin), &["rollback", "webhosting"]);
    expect_exit(&o, 4)?;
    ensure(text(&o.stderr).contains("user=alice"), || describe(&o))?;
    twin.exec(&format!("rm -rf {HOME}/lock"))?;

    // A hand-edited live version (the app reads build_info.json per request).
    twin.exec(&format!(
        "sed -i 's/\"build_id\": \"{a}\"/\"build_id\": \"hand-edited\"/' /home/deploy/app/build_info.json"
    ))?;
    ensure(twin.build_id().as_deref() == Some("hand-edited"), || {
        format!("the edit did not take: {:?}", twin.build_id())
    })?;
    let o = p.harness(Some(&twin), &["status", "webhosting"]);
    expect_exit(&o, 0)?;
    ensure(
        text(&o.stdout).contains("differs from the last deploy")
            && text(&o.stdout).contains(&format!("last deploy: build {a}")),
        || describe(&o),
    )?;
    let o = p.harness(Some(&twin), &["--json", "status", "webhosting"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    ensure(
        v["verdict"] == "differs" && v["live"]["build"] == "hand-edited",
        || format!("{v:#}"),
    )
}

/// The default policy (newest 5, 7 daily, 4 weekly), computed here independently of harness:
/// backups `days_ago` (one a day, 0 = today), calendar days and ISO weeks from the `time` crate.
fn expected_kept(days_ago: &[i64], today: time::Date) -> Vec<i64> {
    let (last, daily, weekly) = (5, 7, 4);
    let date = |d: i64| today - time::Duration::days(d);
    let week = |d: i64| {
        let (y, w, _) = date(d).to_iso_week_date();
        (y, w)
    };
    let monday =
        |x: time::Date| x - time::Duration::days(i64::from(x.weekday().number_days_from_monday()));
    let weeks_back = |d: i64| (monday(today) - monday(date(d))).whole_days() / 7;
    let mut sorted = days_ago.to_vec();
    sorted.sort();
    sorted
        .iter()
        .copied()
        .enumerate()
        .filter(|&(rank, d)| {
            let newest_in_week = !sorted.iter().any(|&o| o < d && week(o) == week(d));
            rank < last || d < daily || (newest_in_week && weeks_back(d) < weekly)
        })
        .map(|(_, d)| d)
        .collect()
}

fn backup_after_nine_simulated_days_keeps_exactly_what_the_policy_says() -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    // Eight nightly backups, 1..=8 days ago at 03:00 UTC, on the server and here; a file that is
    // not a harness backup stays whatever the policy says.
    let today = time::OffsetDateTime::now_utc().date();
    let name = |d: i64| {
        let day = today - time::Duration::days(d);
        format!(
            "{:04}{:02}{:02}T030000Z-simulated",
            day.year(),
            day.month() as u8,
            day.day()
        )
    };
    let local = p.root().join(".harness/backups");
    std::fs::create_dir_all(&local).unwrap();
    for d in 1..=8 {
        twin.exec(&format!(
            "mkdir -p {HOME}/backups && echo day{d} > {HOME}/backups/{}.tar.gz",
            name(d)
        ))?;
        std::fs::write(local.join(format!("webhosting-{}.tar.gz", name(d))), "x").unwrap();
    }
    twin.exec(&format!("echo notes > {HOME}/backups/notes.tar.gz"))?;

    let o = p.harness(Some(&twin), &["--json", "backup", "webhosting"]);
    expect_exit(&o, 0)?;
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    let new = r["name"].as_str().unwrap().to_string();
    ensure(new.ends_with(&format!("-{old}")), || format!("{r:#}"))?;
    // Day 0 is the new one, taken now.
    let taken_today = new.starts_with(&name(0)[..8]);
    ensure(taken_today, || {
        format!("{new} is not from today ({})", name(0))
    })?;
    let kept = expected_kept(&(0..=8).collect::<Vec<_>>(), today);
    let mut want: Vec<String> = kept
        .iter()
        .map(|&d| if d == 0 { new.clone() } else { name(d) })
        .collect();
    want.sort();
    let mut on_server: Vec<String> = twin
        .exec(&format!("ls {HOME}/backups"))?
        .lines()
        .filter_map(|l| l.strip_suffix(".tar.gz").map(str::to_string))
        .filter(|l| l != "notes")
        .collect();
    on_server.sort();
    ensure(on_server == want, || {
        format!("server keeps {on_server:?}, the policy says {want:?}")
    })?;
    ensure(
        twin.exec(&format!("test -f {HOME}/backups/notes.tar.gz"))
            .is_ok(),
        || "a file harness did not write was deleted".into(),
    )?;
    ensure(want.len() < 9 && want.len() >= 7, || format!("{want:?}"))?;
    let mut here: Vec<String> = std::fs::read_dir(&local)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            Some(
                n.strip_prefix("webhosting-")?
                    .strip_suffix(".tar.gz")?
                    .to_string(),
            )
        })
        .collect();
    here.sort();
    ensure(here == want, || {
        format!("here {here:?}, the policy says {want:?}")
    })?;

    // The sha256 in the ledger is the file's, here and on the server.
    let rec = ledger(&p)?
        .backup(Target::Webhosting, &new)
        .map_err(|e| e.to_string())?
        .ok_or("the backup is not in the ledger")?;
    let file = local.join(format!("webhosting-{new}.tar.gz"));
    let here_sha = harness::package::sha256_file(&file).map_err(|e| e.to_string())?;
    let server_sha = twin.exec(&format!("sha256sum {HOME}/backups/{new}.tar.gz"))?;
    ensure(
        rec.sha256 == here_sha
            && server_sha.starts_with(&here_sha)
            && r["sha256"] == here_sha.as_str(),
        || {
            format!(
                "ledger {}, here {here_sha}, server {server_sha}",
                rec.sha256
            )
        },
    )?;
    // It extracts into what looks like the package, with a consistent database.
    let config = harness::config::Config::load(p.root(), None).map_err(|e| e.to_string())?;
    let out = tempfile::tempdir().unwrap();
    let x =
        harness::package::backup::extract(&config, &file, out.path()).map_err(|e| e.to_string())?;
    ensure(
        x.build_id.as_deref() == Some(old.as_str())
            && out.path().join("passenger_wsgi.py").is_file(),
        || format!("{x:?}"),
    )?;
    let db = rusqlite::Connection::open(x.database.as_ref().ok_or("no database")?).unwrap();
    let marker: String = db
        .query_row(MARKER_Q, [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    ensure(marker == "\"before-deploy\"", || marker.clone())?;
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    ensure(integrity == "ok", || integrity.clone())?;
    ensure(
        twin.exec(&format!(
            "test ! -e {HOME}/lock && test ! -e {HOME}/backups/{new}.d"
        ))
        .is_ok(),
        || "lock or scratch left behind".into(),
    )?;
    let audit = twin.exec(&format!("cat {HOME}/audit.log"))?;
    ensure(audit.contains(&format!("backup taken name={new}")), || {
        audit.clone()
    })
}

fn a_kept_release_that_does_not_answer_is_put_back_exit_5() -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    let a = deploy_release(&p, &twin, "A")?;
    // The kept release (the old one) breaks on import.
    let releases = twin.exec(&format!("ls {HOME}/releases"))?;
    let kept = releases
        .lines()
        .find(|l| l.ends_with(&format!("-{old}")))
        .ok_or_else(|| format!("no kept release of {old}: {releases}"))?
        .to_string();
    twin.exec(&format!(
        "cd {HOME}/releases/{kept}/src/app && printf 'raise ImportError(\"broken kept release\")\\n' | cat - __init__.py > x && mv x __init__.py"
    ))?;
    let o = p.harness(Some(&twin), &["rollback", "webhosting"]);
    expect_exit(&o, 5)?;
    ensure(text(&o.stderr).contains("failed verification"), || {
        describe(&o)
    })?;
    // Given up on after the streak of 500s, not at verify_timeout.
    ensure(text(&o.stderr).contains("answered 500 for"), || {
        describe(&o)
    })?;
    served(&twin, &a)?;
    // Both are where they were: A live, the old release kept under its own name, lock released.
    let after = twin.exec(&format!("ls {HOME}/releases"))?;
    ensure(after.lines().any(|l| l == kept), || after.clone())?;
    unlocked(&twin, &format!("{HOME}/lock"))?;
    let l = ledger(&p)?;
    let r = l.rollbacks().map_err(|e| e.to_string())?;
    ensure(
        r.len() == 1 && r[0].1.outcome == harness::ledger::RollbackOutcome::Reverted,
        || format!("{r:?}"),
    )?;
    let live = l
        .live(Target::Webhosting)
        .map_err(|e| e.to_string())?
        .unwrap();
    ensure(
        live.via == "deploy" && live.build_id.as_deref() == Some(a.as_str()),
        || format!("{live:?}"),
    )
}

fn parity_remote_compares_the_server_with_the_last_deployed_package() -> Outcome {
    let p = Project::new("");
    let (twin, old) = twin_with_old_release(&p)?;
    let parity = || {
        Command::new(bin())
            .args([
                "--project",
                p.root().to_str().unwrap(),
                "--json",
                "parity",
                "--remote",
            ])
            .env("HARNESS_SSH_CONFIG", twin.ssh_config())
            .output()
            .unwrap()
    };
    let o = parity();
    expect_exit(&o, 2)?;
    ensure(
        text(&o.stderr).contains("records no successful deploy"),
        || describe(&o),
    )?;
    let a = deploy_release(&p, &twin, "A")?;
    // A newer build in .harness/dist/ does not matter: the deployed package is compared.
    std::fs::write(p.root().join("src/app/release_label.py"), "LABEL = 'C'\n").unwrap();
    let o = p.harness(None, &["build", "--target", "webhosting"]);
    expect_exit(&o, 0)?;
    let o = parity();
    expect_exit(&o, 0)?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    ensure(
        v["package"]
            .as_str()
            .is_some_and(|s| s.contains(".harness/deployed/")),
        || format!("{v:#}"),
    )?;
    // Runtime files the app makes (a log, tmp/, the database's grown content) are not differences.
    twin.exec(
        "cd /home/deploy/app && mkdir -p tmp logs && touch tmp/restart.txt && echo boom > logs/error.log",
    )?;
    twin.sql("PRAGMA user_version = 7; INSERT INTO settings (key, value) VALUES ('grown', '1')")?;
    let o = parity();
    expect_exit(&o, 0)?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    ensure(
        v["schema"]["state"] == "same"
            && v["extra"] == serde_json::json!([])
            && v["modified"] == serde_json::json!([]),
        || format!("runtime files counted as differences: {v:#}"),
    )?;
    // A file edited on the server and a stray one (a space in its name survives the listing).
    twin.exec(
        "cd /home/deploy/app && echo '# hotfix' >> src/app/__init__.py && echo x > 'src/app/stray file.py'",
    )?;
    let o = parity();
    expect_exit(&o, 1)?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    let modified: Vec<&str> = v["modified"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["path"].as_str()).collect())
        .unwrap_or_default();
    ensure(
        modified == ["src/app/__init__.py"]
            && v["extra"] == serde_json::json!(["src/app/stray file.py"])
            && v["missing"] == serde_json::json!([]),
        || format!("{v:#}"),
    )?;
    // A schema change on the server's database is a difference; its content is not.
    twin.sql("CREATE TABLE hand_made (x)")?;
    let o = parity();
    expect_exit(&o, 1)?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
    ensure(v["schema"]["state"] == "differs", || format!("{v:#}"))?;
    // (A code-only rollback refuses a database whose schema moved on: put it back.)
    twin.sql("DROP TABLE hand_made")?;
    // After a rollback to a release harness did not deploy, there is no package to compare with.
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--to", &old]);
    expect_exit(&o, 0)?;
    served(&twin, &old)?;
    let o = parity();
    expect_exit(&o, 2)?;
    ensure(
        text(&o.stderr).contains(&format!("production runs build {old}"))
            && text(&o.stderr).contains("no deploy recorded its package"),
        || describe(&o),
    )?;
    // And back to A: its package is the one deployed, so the server (A's files, edited) differs.
    let o = p.harness(Some(&twin), &["rollback", "webhosting", "--to", &a]);
    expect_exit(&o, 0)?;
    let o = parity();
    expect_exit(&o, 1)
}

/// Garbles one b-tree page of the live database on the twin but keeps its 8-byte header, so
/// SQLite's backup API still copies it and only `PRAGMA integrity_check` notices.
const DAMAGE_DB: &str = r#"python3 - <<'PY'
p = "/home/deploy/app/app.db"
b = bytearray(open(p, "rb").read())
page = 4096 * 3
b[page + 8:page + 4096] = b"\x5a" * (4096 - 8)
open(p, "wb").write(b)
PY"#;

fn backup_verify_passes_a_good_backup_and_names_a_damaged_database() -> Outcome {
    let p = Project::new("");
    let (twin, _old) = twin_with_old_release(&p)?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    expect_exit(&o, 0)?;
    let good = p.harness(Some(&twin), &["--json", "backup", "webhosting", "--verify"]);
    expect_exit(&good, 0)?;
    let v: serde_json::Value = serde_json::from_slice(&good.stdout)?;
    ensure(v["integrity"] == "ok" && v["outcome"] == "green", || {
        describe(&good)
    })?;
    ensure(v["passed"].as_u64().unwrap_or(0) >= 1, || describe(&good))?;
    let report = std::path::PathBuf::from(v["report"].as_str().unwrap_or_default());
    ensure(report.is_file(), || {
        format!("no report: {}", describe(&good))
    })?;
    let good_name = v["backup_id"].as_str().unwrap_or_default().to_string();

    twin.exec(DAMAGE_DB)?;
    let o = p.harness(Some(&twin), &["backup", "webhosting"]);
    expect_exit(&o, 0)?;
    let bad = p.harness(Some(&twin), &["backup", "webhosting", "--verify"]);
    expect_exit(&bad, 1)?;
    ensure(text(&bad.stdout).contains("integrity_check"), || {
        describe(&bad)
    })?;
    ensure(
        text(&bad.stdout).contains("Offset") || text(&bad.stdout).contains("tree page"),
        || describe(&bad),
    )?;
    // The good one still verifies by its id; both drills are in the ledger.
    let again = p.harness(
        Some(&twin),
        &["backup", "webhosting", "--verify", &good_name],
    );
    expect_exit(&again, 0)?;
    let drills = ledger(&p)?
        .drills(Target::Webhosting)
        .map_err(|e| e.to_string())?;
    let outcomes: Vec<&str> = drills.iter().map(|d| d.outcome.as_str()).collect();
    ensure(outcomes == ["green", "red", "green"], || {
        format!("drills: {drills:?}")
    })
}

fn without_ssh_or_a_recorded_deploy_the_commands_exit_2() -> Outcome {
    let p = Project::new("");
    let o = p.harness(None, &["rollback", "webhosting", "--yes"]);
    expect_exit(&o, 2)?;
    ensure(text(&o.stderr).contains("--with-db"), || describe(&o))?;
    let o = p.harness(None, &["status", "webhosting", "--run", "x"]);
    expect_exit(&o, 2)?;
    p.edit("harness.toml", |s| s.replace("ssh = \"twin\"\n", ""));
    for args in [
        &["backup", "webhosting"][..],
        &["rollback", "webhosting"],
        &["status", "webhosting"],
    ] {
        let o = p.harness(None, args);
        expect_exit(&o, 2)?;
        ensure(text(&o.stderr).contains("has no `ssh`"), || {
            format!("{args:?}: {}", describe(&o))
        })?;
    }
    p.edit("harness.toml", |s| {
        s.replace(
            "[targets.webhosting]\n",
            "[targets.webhosting]\nkeep_daily = -1\n",
        )
    });
    let o = p.harness(None, &["backup", "webhosting"]);
    expect_exit(&o, 2)?;
    ensure(text(&o.stderr).contains("harness.toml:"), || describe(&o))
}
