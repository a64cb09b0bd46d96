use std::path::PathBuf;

use super::*;
use crate::remote::listing::preflight_script;
use crate::remote::lock::LOCK_HELD;
use crate::remote::release::SWAP_REFUSED;

fn facts() -> Facts {
    Facts {
        layout: Layout::of("/home/u/app").unwrap(),
        build_id: "20260101T000000Z-abc".into(),
        zip: PathBuf::from("/p/.harness/dist/webhosting/deploy.zip"),
        zip_sha256: "ff".repeat(32),
        db: Some("app.db".into()),
        live_exists: true,
        db_state: DbState::Shared,
        schema_differs: false,
        paused: false,
        version: crate::config::VersionProbe::Json {
            path: "/version".into(),
            pointer: "/build_id".into(),
        },
        previous_release: "20260102T000000Z-old".into(),
        failed_release: "20260102T000000Z-failed-new".into(),
        backup_name: "20260102T000000Z-old".into(),
        local_backup: PathBuf::from("/p/.harness/backups/b.tar.gz"),
        local_db_snapshot: PathBuf::from("/tmp/x/production.db"),
        prune_releases: vec![],
        prune_backups: vec![],
        fresh_db: false,
        preserve_secret_key: false,
        break_lock: false,
        migrate_command: None,
        lock_details: vec![
            ("user".into(), "ann".into()),
            ("pid".into(), "7".into()),
            ("token".into(), "tok".into()),
        ],
        audit_line: "2026 deploy deployed build=x".into(),
    }
}

fn ids(steps: &[RemoteStep]) -> Vec<&'static str> {
    steps.iter().map(|s| s.id.as_str()).collect()
}

fn script<'a>(steps: &'a [RemoteStep], id: &str) -> &'a str {
    match &steps.iter().find(|s| s.id == id).unwrap().action {
        Action::Run(s) => s,
        Action::Upload { script, .. } | Action::Download { script, .. } => script,
        Action::Check(_) => panic!("{id} is a check"),
    }
}

#[test]
fn layout_lives_beside_remote_dir_never_inside() {
    let l = Layout::of("/home/u/app/").unwrap();
    assert_eq!(l.live, "/home/u/app");
    assert_eq!(l.home, "/home/u/.app.harness");
    assert_eq!(l.parent(), "/home/u");
    assert_eq!(l.lock(), "/home/u/.app.harness/lock");
    assert!(!l.home.starts_with(&format!("{}/", l.live)));
    assert_eq!(Layout::of("/app").unwrap().home, "/.app.harness");
    assert_eq!(Layout::of("/app").unwrap().parent(), "/");
    for bad in ["app", "~/app", "/", "", "/a/..", "/a/../b"] {
        assert_eq!(Layout::of(bad), None, "{bad}");
    }
}

#[test]
fn a_deploy_over_a_live_release_runs_these_steps_in_order() {
    assert_eq!(
        ids(&plan(&facts())),
        [
            "lock",
            "backup",
            "fetch-backup",
            "fetch-db",
            "schema",
            "upload",
            "checksum",
            "extract",
            "database",
            "swap",
            "verify"
        ]
    );
}

#[test]
fn the_first_deploy_has_nothing_to_back_up_or_keep() {
    let mut f = facts();
    f.live_exists = false;
    f.db_state = DbState::Absent;
    let steps = plan(&f);
    assert_eq!(
        ids(&steps),
        [
            "lock", "upload", "checksum", "extract", "database", "swap", "verify"
        ]
    );
    // The package's database becomes the shared one, and the release links to it.
    let db = script(&steps, "database");
    assert!(
        db.contains("mv -- /home/u/.app.harness/staging/app.db /home/u/.app.harness/shared/app.db")
            && db.ends_with(
                "ln -s /home/u/.app.harness/shared/app.db /home/u/.app.harness/staging/app.db"
            ),
        "{db}"
    );
    // Issue 17, finding 10: the guard is inside the locked script. A live tree that appeared
    // after the preflight is neither replaced nor filled: the swap refuses before moving.
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("srv/app");
    let mut f = facts();
    f.live_exists = false;
    f.db_state = DbState::Absent;
    f.layout = Layout::of(live.to_str().unwrap()).unwrap();
    std::fs::create_dir_all(f.layout.staging()).unwrap();
    std::fs::write(format!("{}/new.txt", f.layout.staging()), "new").unwrap();
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("old.txt"), "old").unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script(&plan(&f), "swap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(SWAP_REFUSED), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("appeared since the preflight"));
    assert!(live.join("old.txt").is_file() && !live.join("new.txt").exists());
    assert!(std::path::Path::new(&format!("{}/new.txt", f.layout.staging())).is_file());
    // With nothing live, it goes in.
    std::fs::remove_dir_all(&live).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script(&plan(&f), "swap"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(live.join("new.txt").is_file() && live.join("tmp/restart.txt").is_file());
}

#[test]
fn lock_is_an_atomic_mkdir_with_a_details_file_and_a_distinct_exit_code() {
    let steps = plan(&facts());
    assert_eq!(
        script(&steps, "lock"),
        "mkdir -p /home/u/.app.harness && if mkdir /home/u/.app.harness/lock 2>/dev/null; then \
         printf '%s\\n' user=ann pid=7 token=tok > /home/u/.app.harness/lock/details; else echo 'lock held:' >&2; \
         cat /home/u/.app.harness/lock/details >&2; exit 75; fi"
    );
}

fn sh_run(script: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap()
}

fn details(who: &str, token: &str) -> Vec<(String, String)> {
    [
        ("action", "deploy"),
        ("user", who),
        ("host", "laptop"),
        ("pid", "42"),
        ("time", "2026-12-04T10:00:00.000Z"),
        ("token", token),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Issue 17, finding 7: a broken lock is audited with whose it was, and unlocking never removes
/// a lock someone else holds now.
#[test]
fn the_lock_protocol_on_a_real_shell_refuses_audits_a_break_and_unlocks_only_its_own() {
    let d = tempfile::tempdir().unwrap();
    let l = Layout::of(d.path().join("srv/app").to_str().unwrap()).unwrap();
    let ann = lock(&l, &details("ann", "t-ann"), false);
    let Action::Run(take_ann) = &ann.action else {
        panic!()
    };
    assert!(sh_run(take_ann).status.success());
    let bob = lock(&l, &details("bob", "t-bob"), false);
    let Action::Run(take_bob) = &bob.action else {
        panic!()
    };
    let held = sh_run(take_bob);
    assert_eq!(held.status.code(), Some(LOCK_HELD));
    assert!(String::from_utf8_lossy(&held.stderr).contains("user=ann"));
    // Bob's unlock does not remove Ann's lock.
    let Action::Run(bob_unlock) = &unlock(&l, "t-bob").action else {
        panic!()
    };
    assert!(sh_run(bob_unlock).status.success());
    assert!(std::path::Path::new(&l.lock()).is_dir());
    // Bob breaks it: audited, and the lock is Bob's now.
    let Action::Run(break_bob) = &lock(&l, &details("bob", "t-bob"), true).action else {
        panic!()
    };
    assert!(sh_run(break_bob).status.success());
    let audit = std::fs::read_to_string(l.audit_log()).unwrap();
    assert!(
        audit.contains("lock broken by=bob@laptop pid=42 for=deploy; it was held by:")
            && audit.contains("user=ann"),
        "{audit}"
    );
    assert!(
        std::fs::read_to_string(format!("{}/details", l.lock()))
            .unwrap()
            .contains("user=bob")
    );
    // Ann's late unlock leaves Bob's lock alone; Bob's own removes it.
    let Action::Run(ann_unlock) = &unlock(&l, "t-ann").action else {
        panic!()
    };
    let out = sh_run(ann_unlock);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ours"));
    assert!(std::path::Path::new(&l.lock()).is_dir());
    assert!(sh_run(bob_unlock).status.success());
    assert!(!std::path::Path::new(&l.lock()).exists());
}

/// A server-like folder: `<tmp>/srv/app` live with a database in WAL mode, and what the backup
/// step leaves in the backups folder after running with real `sh`, `tar` and `python3`.
fn run_backup(
    path_prefix: Option<&std::path::Path>,
) -> (tempfile::TempDir, Layout, std::process::Output) {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("srv/o'brien app");
    std::fs::create_dir_all(live.join("src")).unwrap();
    std::fs::write(live.join("src/app.py"), "x = 1\n").unwrap();
    let c = rusqlite::Connection::open(live.join("app.db")).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (7);")
        .unwrap();
    std::mem::forget(c);
    let layout = Layout::of(live.to_str().unwrap()).unwrap();
    let b = Backup {
        name: "20260102T000000Z-old".into(),
        db: Some("app.db".into()),
        local: d.path().join("local.tar.gz"),
        keep_db_snapshot: true,
    };
    let steps = backup_steps(&layout, &b);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script(&steps, "backup"));
    if let Some(prefix) = path_prefix {
        cmd.env(
            "PATH",
            format!("{}:{}", prefix.display(), std::env::var("PATH").unwrap()),
        );
    }
    let out = cmd.output().unwrap();
    (d, layout, out)
}

fn names_in(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn backup_is_a_consistent_database_copy_plus_the_tree_and_leaves_no_partials() {
    let (_d, layout, out) = run_backup(None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        names_in(&layout.backups()),
        ["20260102T000000Z-old.db", "20260102T000000Z-old.tar.gz"]
    );
    let v: i64 =
        rusqlite::Connection::open(format!("{}/20260102T000000Z-old.db", layout.backups()))
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
    assert_eq!(v, 7, "the copy holds what is still in the WAL");
    let list = std::process::Command::new("tar")
        .args([
            "-tzf",
            &format!("{}/20260102T000000Z-old.tar.gz", layout.backups()),
        ])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.lines().any(|l| l == "app.db"), "{list}");
    assert!(list.contains("./src/app.py"), "{list}");
    assert!(!list.contains("./app.db-wal"), "{list}");
}

/// Issue 17, finding 5: a backup that fails part-way leaves no database copy and no partial
/// archive, and the next one sweeps what a killed one left.
#[test]
fn a_failed_backup_cleans_up_and_the_next_one_sweeps_stale_partials() {
    let fake = tempfile::tempdir().unwrap();
    std::fs::write(fake.path().join("tar"), "#!/bin/sh\nexit 2\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        fake.path().join("tar"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (_d, layout, out) = run_backup(Some(fake.path()));
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tar failed"),
        "{out:?}"
    );
    assert_eq!(names_in(&layout.backups()), Vec::<String>::new());

    // What a SIGKILLed backup left: a half archive and a snapshot folder.
    let (_d, layout, _) = run_backup(None);
    let stale_dir = format!("{}/20250101T000000Z-x.d", layout.backups());
    std::fs::create_dir_all(&stale_dir).unwrap();
    std::fs::write(format!("{stale_dir}/app.db"), "copy").unwrap();
    std::fs::write(
        format!("{}/20250101T000000Z-x.tar.gz.part", layout.backups()),
        "half",
    )
    .unwrap();
    let b = Backup {
        name: "20260103T000000Z-old".into(),
        db: Some("app.db".into()),
        local: PathBuf::from("/unused"),
        keep_db_snapshot: false,
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script(&backup_steps(&layout, &b), "backup"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        names_in(&layout.backups()),
        [
            "20260102T000000Z-old.db",
            "20260102T000000Z-old.tar.gz",
            "20260103T000000Z-old.tar.gz"
        ]
    );
}

#[test]
fn upload_is_checked_by_sha256_on_the_server_then_extracted_to_staging() {
    let s = plan(&facts());
    let sha = "ff".repeat(32);
    assert_eq!(
        script(&s, "upload"),
        format!(
            "mkdir -p /home/u/.app.harness/uploads && cat > /home/u/.app.harness/uploads/{sha}.zip"
        )
    );
    assert_eq!(
        script(&s, "checksum"),
        format!(
            "cd /home/u/.app.harness/uploads && printf '%s  %s\\n' {sha} {sha}.zip | sha256sum -c --quiet -"
        )
    );
    assert_eq!(
        script(&s, "extract"),
        format!(
            "rm -rf /home/u/.app.harness/staging && mkdir /home/u/.app.harness/staging && unzip -q /home/u/.app.harness/uploads/{sha}.zip \
             -d /home/u/.app.harness/staging && mkdir -p /home/u/.app.harness/staging/tmp && rm -f /home/u/.app.harness/uploads/{sha}.zip"
        )
    );
}

#[test]
fn a_code_only_deploy_links_the_release_to_the_shared_database_and_copies_nothing() {
    let s = plan(&facts());
    assert_eq!(
        script(&s, "database"),
        "rm -f -- /home/u/.app.harness/staging/app.db /home/u/.app.harness/staging/app.db-wal \
         /home/u/.app.harness/staging/app.db-shm /home/u/.app.harness/staging/app.db-journal && \
         ln -s /home/u/.app.harness/shared/app.db /home/u/.app.harness/staging/app.db"
    );
    assert!(!ids(&s).contains(&"pause"), "no pause without a migration");
    assert_eq!(ids(&finish(&facts())), ["prune", "unlock", "audit"]);
}

#[test]
fn fresh_db_puts_the_package_database_into_the_shared_file_and_can_carry_the_secret_key() {
    let mut f = facts();
    f.fresh_db = true;
    let s = plan(&f);
    assert!(!ids(&s).contains(&"secret-key"));
    assert!(script(&s, "database").contains(&crate::remote::sqlite::put(
        "/home/u/.app.harness/staging/app.db",
        "/home/u/.app.harness/shared/app.db"
    )));
    f.preserve_secret_key = true;
    let s = plan(&f);
    assert_eq!(
        script(&s, "secret-key"),
        crate::remote::sqlite::copy_secret_key(
            "/home/u/app/app.db",
            "/home/u/.app.harness/staging/app.db"
        )
    );
}

#[test]
fn a_migration_pauses_writes_runs_on_a_copy_and_puts_it_back_fenced_until_verified() {
    let mut f = facts();
    f.migrate_command = Some("python3 -m app.migrate 'x'".into());
    // Without a schema difference the command does not run, and nothing pauses.
    assert!(!ids(&plan(&f)).contains(&"migrate"));
    f.schema_differs = true;
    let s = plan(&f);
    assert_eq!(
        ids(&s)[8..],
        [
            "pause",
            "restore-point",
            "migrate",
            "fetch-migrated",
            "migrated-schema",
            "database",
            "swap",
            "verify"
        ]
    );
    assert!(script(&s, "pause").contains("/home/u/.app.harness/pause"));
    assert!(script(&s, "pause").ends_with(&crate::remote::sqlite::fence(
        "/home/u/.app.harness/shared/app.db"
    )));
    assert!(script(&s, "migrate").ends_with(
        "cd /home/u/.app.harness/staging\nHARNESS_DB_PATH=/home/u/.app.harness/shared/app.db.migrating \
         sh -c 'python3 -m app.migrate '\\''x'\\'''"
    ));
    assert!(script(&s, "database").contains(&crate::remote::sqlite::put(
        "/home/u/.app.harness/shared/app.db.migrating",
        "/home/u/.app.harness/shared/app.db"
    )));
    // After verify the fence goes; a failed verify puts the restore point back instead.
    assert_eq!(ids(&finish(&f)), ["prune", "resume", "unlock", "audit"]);
    assert_eq!(
        ids(&rollback(&f)),
        ["rollback", "undo-database", "verify-rollback"]
    );
    assert!(undo_before_swap(&f).is_some());
    f.fresh_db = true;
    assert!(!ids(&plan(&f)).contains(&"migrate"));
}

#[test]
fn a_database_inside_the_live_release_moves_to_the_shared_layout_fenced() {
    let mut f = facts();
    f.db_state = DbState::InRelease;
    let s = plan(&f);
    assert_eq!(ids(&s)[8..], ["pause", "database", "swap", "verify"]);
    assert!(script(&s, "pause").ends_with(&crate::remote::sqlite::fence("/home/u/app/app.db")));
    assert!(
        script(&s, "database").contains(&crate::remote::sqlite::copy_to_new(
            "/home/u/app/app.db",
            "/home/u/.app.harness/shared/app.db",
            false
        ))
    );
    assert_eq!(ids(&finish(&f)), ["prune", "resume", "unlock", "audit"]);
}

#[test]
fn swap_is_one_script_and_rollback_swaps_back() {
    let s = plan(&facts());
    assert_eq!(
        script(&s, "swap"),
        "set -e\nmkdir -p /home/u/.app.harness/releases\n\
         [ -d /home/u/app ] || { echo 'the live release is gone: '/home/u/app >&2; exit 76; }\n\
         [ ! -e /home/u/.app.harness/releases/20260102T000000Z-old ] || { echo 'already exists: '/home/u/.app.harness/releases/20260102T000000Z-old >&2; exit 76; }\n\
         mv /home/u/app /home/u/.app.harness/releases/20260102T000000Z-old\n\
         mv /home/u/.app.harness/staging /home/u/app\nmkdir -p /home/u/app/tmp\ntouch /home/u/app/tmp/restart.txt"
    );
    let r = rollback(&facts());
    assert_eq!(ids(&r), ["rollback", "verify-rollback"]);
    assert_eq!(
        script(&r, "rollback"),
        "set -e\n[ -d /home/u/.app.harness/releases/20260102T000000Z-old ]\nif [ -d /home/u/app ]; then mv /home/u/app \
         /home/u/.app.harness/releases/20260102T000000Z-failed-new; fi\nmv /home/u/.app.harness/releases/20260102T000000Z-old /home/u/app\n\
         mkdir -p /home/u/app/tmp\ntouch /home/u/app/tmp/restart.txt"
    );
}

#[test]
fn finish_prunes_to_keep_releases_unlocks_and_audits() {
    let mut f = facts();
    f.prune_backups = vec!["20260101T000000Z-a".into(), "20260101T000001Z-b c".into()];
    assert_eq!(
        script(&finish(&f), "prune-backups"),
        "rm -f -- /home/u/.app.harness/backups/20260101T000000Z-a.tar.gz '/home/u/.app.harness/backups/20260101T000001Z-b c.tar.gz'"
    );
    let s = finish(&facts());
    assert_eq!(ids(&s), ["prune", "unlock", "audit"]);
    assert_eq!(script(&s, "prune"), "true");
    let mut f = facts();
    f.prune_releases = vec!["20250101T000000Z-x".into(), "20250102T000000Z-y z".into()];
    assert_eq!(
        script(&finish(&f), "prune"),
        "rm -rf -- /home/u/.app.harness/releases/20250101T000000Z-x '/home/u/.app.harness/releases/20250102T000000Z-y z'"
    );
    assert!(script(&s, "unlock").starts_with("if grep -qxF token="));
    assert_eq!(
        script(&s, "audit"),
        "mkdir -p /home/u/.app.harness && printf '%s\\n' '2026 deploy deployed build=x' >> /home/u/.app.harness/audit.log"
    );
}

#[test]
fn hostile_paths_are_quoted_everywhere() {
    let mut f = facts();
    f.layout = Layout::of("/home/u/my app;$(reboot)").unwrap();
    let mut r = rollback_facts(true);
    r.layout = f.layout.clone();
    for step in plan(&f)
        .iter()
        .chain(finish(&f).iter())
        .chain(rollback(&f).iter())
        .chain(rollback_plan(&r).iter())
        .chain(revert_rollback(&r).iter())
    {
        let cmd = step.command();
        assert!(
            !cmd.contains(" app;$(reboot)") || cmd.contains("'"),
            "{}: {cmd}",
            step.id
        );
        assert!(
            !cmd.contains("/home/u/my app;$(reboot) "),
            "{}: {cmd}",
            step.id
        );
    }
    assert!(
        preflight_script(&f.layout, Some("app.db"))
            .contains("[ -d '/home/u/my app;$(reboot)' ] && echo live=yes || echo live=no")
    );
}

#[test]
fn preflight_reads_only() {
    let p = preflight_script(&facts().layout, Some("app.db"));
    for word in ["mkdir", "rm ", "mv ", "touch", ">"] {
        let writes = p
            .lines()
            .any(|l| l.contains(word) && !l.contains(">/dev/null") && !l.contains("2>/dev/null"));
        assert!(!writes, "preflight writes ({word}): {p}");
    }
}

#[test]
fn a_nested_database_gets_its_folder_in_the_backup() {
    let b = Backup {
        name: "n".into(),
        db: Some("data/app.db".into()),
        local: "/p/b.tar.gz".into(),
        keep_db_snapshot: false,
    };
    let s = backup_steps(&Layout::of("/home/u/app").unwrap(), &b);
    assert_eq!(ids(&s), ["backup", "fetch-backup"]);
    let sh = script(&s, "backup");
    assert!(
        sh.contains("mkdir -p /home/u/.app.harness/backups/n.d/data\n"),
        "{sh}"
    );
    assert!(sh.contains("-C /home/u/.app.harness/backups/n.d data/app.db -C /home/u/app --exclude=./data/app.db "), "{sh}");
    assert!(!sh.contains("/home/u/.app.harness/backups/n.db"), "{sh}");
    assert_eq!(
        script(&s, "fetch-backup"),
        "cat /home/u/.app.harness/backups/n.tar.gz"
    );
}

fn rollback_facts(with_db: bool) -> RollbackFacts {
    let layout = Layout::of("/home/u/app").unwrap();
    RollbackFacts {
        layout,
        release: "20260102T000000Z-A".into(),
        outgoing: "20260105T000000Z-B".into(),
        db: Some("app.db".into()),
        db_state: DbState::InRelease,
        paused: false,
        version: crate::config::VersionProbe::Off,
        restore: with_db.then(|| Restore {
            backup: "20260102T000000Z-A".into(),
            sha256: Some("ab".repeat(32)),
            safety: Backup {
                name: "20260105T000000Z-B".into(),
                db: Some("app.db".into()),
                local: "/p/.harness/backups/webhosting-20260105T000000Z-B.tar.gz".into(),
                keep_db_snapshot: false,
            },
        }),
        lock_details: vec![("action".into(), "rollback".into())],
        break_lock: false,
    }
}

#[test]
fn a_rollback_copies_production_database_into_the_kept_release_then_swaps() {
    let s = rollback_plan(&rollback_facts(false));
    assert_eq!(ids(&s), ["lock", "database", "swap", "verify"]);
    assert_eq!(
        script(&s, "database"),
        format!(
            "rm -f /home/u/.app.harness/releases/20260102T000000Z-A/app.db-wal /home/u/.app.harness/releases/20260102T000000Z-A/app.db-shm \
             /home/u/.app.harness/releases/20260102T000000Z-A/app.db-journal && {}",
            crate::remote::sqlite::copy(
                "/home/u/app/app.db",
                "/home/u/.app.harness/releases/20260102T000000Z-A/app.db"
            )
        )
    );
    assert_eq!(
        script(&s, "swap"),
        "set -e\n[ -d /home/u/.app.harness/releases/20260102T000000Z-A ] || { echo 'no release '/home/u/.app.harness/releases/20260102T000000Z-A >&2; exit 76; }\n\
         [ ! -e /home/u/.app.harness/releases/20260105T000000Z-B ] || { echo 'already exists: '/home/u/.app.harness/releases/20260105T000000Z-B >&2; exit 76; }\n\
         if [ -d /home/u/app ]; then mv /home/u/app /home/u/.app.harness/releases/20260105T000000Z-B; fi\n\
         mv /home/u/.app.harness/releases/20260102T000000Z-A /home/u/app\nmkdir -p /home/u/app/tmp\ntouch /home/u/app/tmp/restart.txt"
    );
    // Reverting puts each back under its own name.
    let r = revert_rollback(&rollback_facts(false));
    assert_eq!(ids(&r), ["revert", "verify-revert"]);
    assert_eq!(
        script(&r, "revert"),
        "set -e\n[ -d /home/u/.app.harness/releases/20260105T000000Z-B ] || { echo 'no release '/home/u/.app.harness/releases/20260105T000000Z-B >&2; exit 76; }\n\
         [ ! -e /home/u/.app.harness/releases/20260102T000000Z-A ] || { echo 'already exists: '/home/u/.app.harness/releases/20260102T000000Z-A >&2; exit 76; }\n\
         if [ -d /home/u/app ]; then mv /home/u/app /home/u/.app.harness/releases/20260102T000000Z-A; fi\n\
         mv /home/u/.app.harness/releases/20260105T000000Z-B /home/u/app\nmkdir -p /home/u/app/tmp\ntouch /home/u/app/tmp/restart.txt"
    );
}

#[test]
fn a_rollback_with_db_backs_up_first_checks_the_backup_then_restores_its_database() {
    let s = rollback_plan(&rollback_facts(true));
    assert_eq!(
        ids(&s),
        [
            "lock",
            "backup",
            "fetch-backup",
            "check-backup",
            "restore-db",
            "swap",
            "verify"
        ]
    );
    assert!(
        script(&s, "backup")
            .contains("gzip -1 > /home/u/.app.harness/backups/20260105T000000Z-B.tar.gz.part")
    );
    assert_eq!(
        script(&s, "check-backup"),
        format!(
            "cd /home/u/.app.harness/backups && printf '%s  %s\\n' {} 20260102T000000Z-A.tar.gz | sha256sum -c --quiet -",
            "ab".repeat(32)
        )
    );
    let d = "/home/u/.app.harness/releases/20260102T000000Z-A";
    assert_eq!(
        script(&s, "restore-db"),
        format!(
            "rm -f {d}/app.db {d}/app.db-wal {d}/app.db-shm {d}/app.db-journal && \
             tar -xzf /home/u/.app.harness/backups/20260102T000000Z-A.tar.gz -C {d} app.db\n[ -f {d}/app.db ]"
        )
    );
}

#[test]
fn the_look_lists_releases_and_backups_read_only() {
    let p = preflight_script(&facts().layout, Some("app.db"));
    assert!(
        p.contains("for d in /home/u/.app.harness/releases/*/; do"),
        "{p}"
    );
    assert!(
        p.contains("for f in /home/u/.app.harness/backups/*.tar.gz; do"),
        "{p}"
    );
    assert_eq!(
        crate::remote::sqlite::to_stdout("/home/u/app/app.db"),
        crate::remote::sqlite::to_stdout("/home/u/app/app.db")
    );
}

/// The backup script itself, run by the local `sh` on a folder laid out like a server (without a
/// database, so no sqlite3 is needed): a complete archive appears, no `.part` or scratch is left,
/// and a tar that fails fails the step.
#[test]
fn the_backup_script_archives_the_live_tree_and_fails_when_tar_fails() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app");
    std::fs::create_dir_all(live.join("src")).unwrap();
    std::fs::write(live.join("src/a.py"), "print(1)\n").unwrap();
    std::fs::write(live.join("build_info.json"), "{}\n").unwrap();
    let layout = Layout::of(live.to_str().unwrap()).unwrap();
    let b = Backup {
        name: "20260101T000000Z-x".into(),
        db: None,
        local: dir.path().join("local.tar.gz"),
        keep_db_snapshot: false,
    };
    let run = |script: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    };
    let o = run(script(&backup_steps(&layout, &b), "backup"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backups = dir.path().join(".app.harness/backups");
    let names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["20260101T000000Z-x.tar.gz"]);
    let list = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(backups.join("20260101T000000Z-x.tar.gz"))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.lines().any(|l| l == "./src/a.py"), "{listed}");
    // The live directory is gone: tar fails, and so does the step, leaving no archive behind.
    std::fs::remove_dir_all(&live).unwrap();
    let b2 = Backup {
        name: "20260101T000001Z-x".into(),
        ..b
    };
    let o = run(script(&backup_steps(&layout, &b2), "backup"));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("tar failed (exit 2)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!backups.join("20260101T000001Z-x.tar.gz").exists());
}

#[test]
fn without_a_production_database_only_with_db_touches_the_database() {
    let mut f = rollback_facts(false);
    f.db_state = DbState::Absent;
    assert_eq!(ids(&rollback_plan(&f)), ["lock", "swap", "verify"]);
    let mut f = rollback_facts(true);
    f.db_state = DbState::Absent;
    assert!(ids(&rollback_plan(&f)).contains(&"restore-db"));
}

/// The shared layout's scripts on a real shell, python3 and SQLite, with an app connection held
/// open the whole time: a migration that fails after its put-back is undone to the restore
/// point (the app's write before the pause is there, the app writes again), and a pause left by
/// a killed deploy is ended by `recover`.
#[test]
fn a_failed_migration_is_undone_to_the_restore_point_and_a_left_pause_is_recovered() {
    let d = tempfile::tempdir().unwrap();
    let mut f = facts();
    f.layout = Layout::of(d.path().join("app").to_str().unwrap()).unwrap();
    f.schema_differs = true;
    f.migrate_command = Some(
        "python3 -c 'import os, sqlite3; sqlite3.connect(os.environ[\"HARNESS_DB_PATH\"]).execute(\"ALTER TABLE t ADD c\")'"
            .into(),
    );
    let db = Db {
        layout: &f.layout,
        rel: "app.db",
    };
    std::fs::create_dir_all(&f.layout.live).unwrap();
    std::fs::create_dir_all(f.layout.shared()).unwrap();
    std::fs::create_dir_all(f.layout.staging()).unwrap();
    std::fs::write(format!("{}/app.db", f.layout.staging()), "").unwrap();
    let app = rusqlite::Connection::open(db.shared()).unwrap();
    app.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);")
        .unwrap();
    let link = sh_run(&shared::link(db, &f.layout.live));
    assert!(link.status.success(), "{link:?}");
    let steps = plan(&f);
    for id in ["pause", "restore-point"] {
        let o = sh_run(script(&steps, id));
        assert!(o.status.success(), "{id}: {o:?}");
    }
    assert!(std::path::Path::new(&f.layout.pause()).exists());
    assert!(
        app.execute("INSERT INTO t VALUES (2)", []).is_err(),
        "fenced"
    );
    // The migration runs where `migrate` says, then the migrated copy goes in (the step also
    // links staging; the package's empty database there is replaced).
    let o = sh_run(script(&steps, "migrate"));
    assert!(o.status.success(), "{o:?}");
    let o = sh_run(script(&steps, "database"));
    assert!(o.status.success(), "{o:?}");
    let cols: i64 = app
        .query_row("SELECT count(*) FROM pragma_table_info('t')", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(cols, 2, "the open connection sees the migrated schema");
    assert!(
        app.execute("INSERT INTO t VALUES (3, 3)", []).is_err(),
        "still fenced"
    );
    // The new release fails: undo puts the restore point back, unfenced, and ends the pause.
    let o = sh_run(script(&rollback(&f), "undo-database"));
    assert!(o.status.success(), "{o:?}");
    let cols: i64 = app
        .query_row("SELECT count(*) FROM pragma_table_info('t')", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(cols, 1);
    app.execute("INSERT INTO t VALUES (4)", []).unwrap();
    let rows: Vec<i64> = app
        .prepare("SELECT v FROM t ORDER BY v")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [1, 4]);
    assert!(!std::path::Path::new(&f.layout.pause()).exists());
    assert!(!std::path::Path::new(&format!("{}.before-migration", db.shared())).exists());
    // A pause a killed deploy left: `recover` (after the lock) ends it.
    let o = sh_run(script(&steps, "pause"));
    assert!(o.status.success(), "{o:?}");
    assert!(app.execute("INSERT INTO t VALUES (5)", []).is_err());
    f.paused = true;
    let steps = plan(&f);
    assert_eq!(ids(&steps)[..2], ["lock", "recover"]);
    let o = sh_run(script(&steps, "recover"));
    assert!(o.status.success(), "{o:?}");
    app.execute("INSERT INTO t VALUES (5)", []).unwrap();
    assert!(!std::path::Path::new(&f.layout.pause()).exists());
}

#[test]
fn without_a_version_probe_the_plan_says_the_switch_is_verified_by_health_alone() {
    let mut f = facts();
    let what = |steps: Vec<RemoteStep>| {
        steps
            .iter()
            .find(|s| s.id == "verify")
            .unwrap()
            .what
            .clone()
    };
    assert!(what(plan(&f)).contains("/version /build_id = 20260101T000000Z-abc"));
    f.version = crate::config::VersionProbe::Off;
    assert_eq!(
        what(plan(&f)),
        format!("{} after Passenger's restart", crate::probe::HEALTH_ALONE)
    );
    assert_eq!(
        what(rollback_plan(&rollback_facts(false))),
        crate::probe::HEALTH_ALONE
    );
}
