use super::*;
use crate::ledger::signing::SecretKey;
use crate::model::target::Target;

pub(crate) fn record(n: u32) -> RunRecord {
    RunRecord {
        uid: format!("{n:032x}"),
        started_at: Timestamp::from_unix_ms(1_800_000_000_000 + i64::from(n)),
        finished_at: Timestamp::from_unix_ms(1_800_000_060_000 + i64::from(n)),
        git_commit: Some("a".repeat(40)),
        dirty: if n.is_multiple_of(3) {
            None
        } else {
            Some(n.is_multiple_of(2))
        },
        target: "local".into(),
        package_sha256: "b".repeat(64),
        code_fingerprint: "c".repeat(64),
        schema_fingerprint: if n.is_multiple_of(2) {
            Some("d".repeat(64))
        } else {
            None
        },
        input_fingerprint: "e".repeat(64),
        selection: match n % 3 {
            0 => Selection::Full,
            1 => Selection::Filtered {
                expr: "-k 'a and b'".into(),
            },
            _ => Selection::Shard { index: 2, total: 4 },
        },
        passed: n,
        failed: 1,
        skipped: 2,
        errors: 3,
        outcome: Outcome::Infra,
        image_ids: [
            ("app".into(), "sha256:f00".into()),
            ("proxy".into(), "sha256:ba7".into()),
        ]
        .into(),
        browser_version: Some("chromium 131.0".into()),
        report_path: Some(".harness/runs/x/report.html".into()),
        pytest_args: Vec::new(),
        test_env: None,
        fingerprint_scheme: None,
        schema: crate::ledger::SCHEMA,
    }
}

pub(crate) fn fresh() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&path_in(dir.path())).unwrap();
    (dir, l)
}

#[test]
fn runs_round_trip_every_field() {
    let (_d, mut l) = fresh();
    let records: Vec<RunRecord> = (0..6).map(record).collect();
    for r in &records {
        l.record_run(r).unwrap();
    }
    let stored = l.runs().unwrap();
    assert_eq!(stored.len(), 6);
    for (s, r) in stored.iter().zip(&records) {
        assert_eq!(&s.record, r);
        assert_eq!(s.origin, Origin::Local);
        assert_eq!(s.record.canonical_bytes(), r.canonical_bytes());
    }
    assert_eq!(l.run(stored[2].id).unwrap().unwrap().record, records[2]);
    assert!(l.run(999).unwrap().is_none());
}

#[test]
fn opening_sets_wal_and_the_latest_schema_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    {
        let mut l = Ledger::open(&p).unwrap();
        assert_eq!(l.schema_version().unwrap(), MIGRATIONS.len() as i64);
        l.record_run(&record(1)).unwrap();
    }
    let l = Ledger::open(&p).unwrap();
    let mode: String = l
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(l.runs().unwrap().len(), 1);
}

#[test]
fn a_newer_schema_is_refused_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    drop(Ledger::open(&p).unwrap());
    let c = Connection::open(&p).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    match Ledger::open(&p) {
        Err(LedgerError::TooNew { found: 99, .. }) => {}
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let junk = b"this is not sqlite, it is a shopping list: eggs, milk\n".repeat(200);
    std::fs::write(&p, &junk).unwrap();
    let e = Ledger::open(&p).err().unwrap();
    assert!(matches!(e, LedgerError::Corrupt { .. }), "{e:?}");
    let f: Failure = e.into();
    assert_eq!(f.exit, Exit::Environment);
    assert!(f.message.contains("ledger.db is damaged"), "{}", f.message);
    assert!(f.hint.unwrap().contains("Move it aside"));
    assert_eq!(std::fs::read(&p).unwrap(), junk);
    let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("ledger.db")],
        "no -wal/-shm created beside it"
    );
}

#[test]
fn damaged_pages_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    {
        let mut l = Ledger::open(&p).unwrap();
        for n in 0..300 {
            l.record_run(&record(n)).unwrap();
        }
        l.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = std::fs::read(&p).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page);
    let end = bytes.len() - page;
    for b in &mut bytes[2 * page..end] {
        *b = 0xA5;
    }
    std::fs::write(&p, &bytes).unwrap();
    let err = Ledger::open(&p).and_then(|l| l.runs());
    match err {
        Err(LedgerError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn import_merges_copies_of_a_run_whatever_their_order() {
    let (_d, mut l) = fresh();
    let r = record(7);
    let ci = SecretKey::generate();
    let other = SecretKey::generate();
    let Ok(Imported::New(id)) = l.import_run(&r, None).unwrap() else {
        panic!()
    };
    assert_eq!(
        l.import_run(&r, None).unwrap(),
        Ok(Imported::AlreadyPresent(id))
    );
    let by_ci = ci.sign(&r);
    assert_eq!(
        l.import_run(&r, Some(&by_ci)).unwrap(),
        Ok(Imported::SignatureAdded(id))
    );
    assert_eq!(
        l.import_run(&r, Some(&by_ci)).unwrap(),
        Ok(Imported::AlreadyPresent(id))
    );
    let by_other = other.sign(&r);
    assert_eq!(
        l.import_run(&r, Some(&by_other)).unwrap(),
        Ok(Imported::SignatureAdded(id))
    );
    assert_eq!(
        l.import_run(&r, None).unwrap(),
        Ok(Imported::AlreadyPresent(id))
    );
    let stored = l.runs().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].origin, Origin::Imported);
    assert_eq!(stored[0].signatures, vec![by_ci, by_other]);
    // A local run gathers signatures too, and stays local.
    let local = record(8);
    let id = l.record_run(&local).unwrap();
    assert_eq!(
        l.import_run(&local, Some(&ci.sign(&local))).unwrap(),
        Ok(Imported::SignatureAdded(id))
    );
    assert_eq!(l.run(id).unwrap().unwrap().origin, Origin::Local);
}

#[test]
fn a_signed_copy_replaces_an_unsigned_one_in_place_and_nothing_else_does() {
    let (_d, mut l) = fresh();
    let genuine = record(7);
    let mut edited = genuine.clone();
    edited.passed += 1;
    let ci = SecretKey::generate();
    // The edited copy came first, unsigned; a gate decision then named it.
    let Ok(Imported::New(id)) = l.import_run(&edited, None).unwrap() else {
        panic!()
    };
    l.conn
        .execute(
            "INSERT INTO gate_decisions (decided_at_ms, target, package_sha256, code_fingerprint, \
             open, rule, run_id, allow_dirty, decision) VALUES (1, 'webhosting', 'p', 'c', 0, 'r', ?1, 0, '{}')",
            [id],
        )
        .unwrap();
    assert_eq!(
        l.import_run(&genuine, Some(&ci.sign(&genuine))).unwrap(),
        Ok(Imported::Upgraded(id))
    );
    let stored = l.run(id).unwrap().unwrap();
    assert_eq!(stored.record, genuine);
    // Once signed, other content is a conflict, signed or not, and stores nothing.
    let conflict = l.import_run(&edited, None).unwrap().unwrap_err();
    assert_eq!(conflict.id, id);
    assert_eq!(conflict.fields, vec!["passed"]);
    let conflict = l
        .import_run(&edited, Some(&ci.sign(&edited)))
        .unwrap()
        .unwrap_err();
    assert!(conflict.stored.contains("signed by"), "{conflict:?}");
    assert_eq!(l.run(id).unwrap().unwrap().record, genuine);
    // A local run is never replaced by an import.
    let local = record(8);
    let lid = l.record_run(&local).unwrap();
    let mut other = local.clone();
    other.failed = 3;
    assert!(
        l.import_run(&other, Some(&ci.sign(&other)))
            .unwrap()
            .is_err()
    );
    assert_eq!(l.run(lid).unwrap().unwrap().record, local);
}

#[test]
fn gate_decisions_and_deploys_are_recorded() {
    let (_d, mut l) = fresh();
    let run_id = l.record_run(&record(1)).unwrap();
    let decision = crate::model::gate::GateDecision {
        open: true,
        deciding_rule: crate::model::gate::Rule::Forced,
        summary: "forced open: hotfix".into(),
        reasons: vec![],
        closest_run: Some(crate::model::gate::ClosestRun {
            id: run_id,
            counts: false,
            why: "x".into(),
            shard_runs: vec![],
        }),
        dirty_waived: None,
        forced: Some("hotfix".into()),
    };
    let gid = l
        .record_gate_decision(&GateDecisionRecord {
            decided_at: Timestamp::from_unix_ms(5),
            target: "webhosting".into(),
            package_sha256: "p".into(),
            code_fingerprint: "c".into(),
            schema_fingerprint: None,
            git_commit: None,
            allow_dirty: true,
            decision,
        })
        .unwrap();
    let g = &l.gate_decisions().unwrap()[0];
    assert_eq!(
        (g.id, g.open, g.rule.as_str(), g.run_id),
        (gid, true, "forced", Some(run_id))
    );
    assert!(g.allow_dirty);
    assert_eq!(g.forced_reason.as_deref(), Some("hotfix"));
    let deploy = DeployRecord {
        started_at: Timestamp::from_unix_ms(10),
        finished_at: Timestamp::from_unix_ms(20),
        target: "webhosting".into(),
        package_sha256: "p".into(),
        gate_decision_id: Some(gid),
        outcome: DeployOutcome::RolledBack,
        release_id: Some("r1".into()),
        detail: "health 502".into(),
    };
    let did = l.record_deploy(&deploy).unwrap();
    assert_eq!(l.deploys().unwrap(), vec![(did, deploy)]);
}

#[test]
fn a_version_1_ledger_is_migrated_and_keeps_its_deploys() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    {
        let c = Connection::open(&p).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO deploys (started_at_ms, finished_at_ms, target, package_sha256, outcome, \
             release_id, detail) VALUES (1, 2, 'webhosting', 'p1', 'deployed', 'b1', 'verified')",
            [],
        )
        .unwrap();
    }
    let l = Ledger::open(&p).unwrap();
    assert_eq!(l.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(l.deploys().unwrap().len(), 1);
    assert_eq!(
        l.live(Target::Webhosting)
            .unwrap()
            .unwrap()
            .build_id
            .as_deref(),
        Some("b1")
    );
    assert!(l.backups(Target::Webhosting).unwrap().is_empty());
}

fn deploy(at: i64, sha: &str, build: &str, outcome: DeployOutcome) -> DeployRecord {
    DeployRecord {
        started_at: Timestamp::from_unix_ms(at - 1),
        finished_at: Timestamp::from_unix_ms(at),
        target: "webhosting".into(),
        package_sha256: sha.into(),
        gate_decision_id: None,
        outcome,
        release_id: (outcome == DeployOutcome::Deployed).then(|| build.into()),
        detail: String::new(),
    }
}

fn rollback(at: i64, to: &str, sha: Option<&str>, outcome: RollbackOutcome) -> RollbackRecord {
    RollbackRecord {
        started_at: Timestamp::from_unix_ms(at - 1),
        finished_at: Timestamp::from_unix_ms(at),
        target: "webhosting".into(),
        release: format!("20260101T000000Z-{to}"),
        from_build: Some("x".into()),
        to_build: Some(to.into()),
        package_sha256: sha.map(Into::into),
        with_db: false,
        db_backup: None,
        outcome,
        detail: String::new(),
    }
}

#[test]
fn live_is_the_newest_successful_deploy_or_rollback() {
    let (_d, mut l) = fresh();
    assert_eq!(l.live(Target::Webhosting).unwrap(), None);
    l.record_deploy(&deploy(10, "pa", "A", DeployOutcome::Deployed))
        .unwrap();
    l.record_deploy(&deploy(20, "pb", "B", DeployOutcome::Deployed))
        .unwrap();
    // A deploy that was rolled back automatically leaves B live.
    l.record_deploy(&deploy(30, "pc", "C", DeployOutcome::RolledBack))
        .unwrap();
    let live = l.live(Target::Webhosting).unwrap().unwrap();
    assert_eq!(
        (
            live.via,
            live.build_id.as_deref(),
            live.package_sha256.as_deref()
        ),
        ("deploy", Some("B"), Some("pb"))
    );
    assert_eq!(
        l.package_of_build(Target::Webhosting, "A")
            .unwrap()
            .as_deref(),
        Some("pa")
    );
    assert_eq!(l.package_of_build(Target::Webhosting, "C").unwrap(), None);
    // A rollback that was reverted changes nothing; a done one does.
    l.record_rollback(&rollback(40, "A", Some("pa"), RollbackOutcome::Reverted))
        .unwrap();
    assert_eq!(
        l.live(Target::Webhosting)
            .unwrap()
            .unwrap()
            .build_id
            .as_deref(),
        Some("B")
    );
    let id = l
        .record_rollback(&rollback(50, "A", Some("pa"), RollbackOutcome::Done))
        .unwrap();
    let live = l.live(Target::Webhosting).unwrap().unwrap();
    assert_eq!(
        (
            live.via,
            live.id,
            live.build_id.as_deref(),
            live.package_sha256.as_deref()
        ),
        ("rollback", id, Some("A"), Some("pa"))
    );
    assert_eq!(l.rollbacks().unwrap().len(), 2);
    assert_eq!(l.live(Target::Local).unwrap(), None);
    // Deploys of the same package count once.
    l.record_deploy(&deploy(60, "pa", "A", DeployOutcome::Deployed))
        .unwrap();
    assert_eq!(
        l.recent_packages(Target::Webhosting, 2).unwrap(),
        ["pa", "pb"]
    );
    assert_eq!(
        l.recent_packages(Target::Webhosting, 5).unwrap(),
        ["pa", "pb"]
    );
}

#[test]
fn backups_are_recorded_replaced_by_name_and_marked_pruned() {
    let (_d, mut l) = fresh();
    let b = |name: &str, at: i64, sha: &str| BackupRecord {
        target: "webhosting".into(),
        name: name.into(),
        kind: BackupKind::Scheduled,
        taken_at: Timestamp::from_unix_ms(at),
        build_id: Some("A".into()),
        sha256: sha.into(),
        size: 1234,
        remote_path: format!("/h/.app.harness/backups/{name}.tar.gz"),
        local_path: format!(".harness/backups/webhosting-{name}.tar.gz"),
        pruned_at: None,
    };
    let first = l.record_backup(&b("n1", 1, "s1")).unwrap();
    l.record_backup(&b("n2", 2, "s2")).unwrap();
    assert_eq!(l.record_backup(&b("n1", 3, "s3")).unwrap(), first);
    let all = l.backups(Target::Webhosting).unwrap();
    assert_eq!(
        all.iter()
            .map(|b| (b.name.as_str(), b.sha256.as_str()))
            .collect::<Vec<_>>(),
        [("n2", "s2"), ("n1", "s3")]
    );
    assert_eq!(
        l.mark_backups_pruned(
            Target::Webhosting,
            &["n2".into(), "gone".into()],
            Timestamp::from_unix_ms(9)
        )
        .unwrap(),
        1
    );
    assert_eq!(
        l.backup(Target::Webhosting, "n2")
            .unwrap()
            .unwrap()
            .pruned_at,
        Some(Timestamp::from_unix_ms(9))
    );
    assert_eq!(
        l.backup(Target::Webhosting, "n1")
            .unwrap()
            .unwrap()
            .pruned_at,
        None
    );
    assert_eq!(l.backup(Target::Webhosting, "gone").unwrap(), None);
}

#[test]
fn threads_with_their_own_connections_lose_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = path_in(dir.path());
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut l = Ledger::open(&p).unwrap();
                for n in 0..50 {
                    l.record_run(&record(t * 1000 + n)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(Ledger::open(&p).unwrap().runs().unwrap().len(), 200);
}

#[test]
fn a_ledger_from_before_several_signatures_keeps_its_signed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let ci = SecretKey::generate();
    let mut r = record(3);
    r.schema = 1;
    let sig = ci.sign(&r);
    {
        // The ledger as harness left it before run_signatures: schema 4, one signature a row.
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute(
            "INSERT INTO runs (uid, started_at_ms, finished_at_ms, target, package_sha256, \
             code_fingerprint, input_fingerprint, selection, passed, failed, skipped, errors, \
             outcome, image_ids, origin, signer_key, signature, verified, recorded_at_ms) \
             VALUES (?1, ?2, ?3, 'local', ?4, ?5, ?6, ?7, 9, 0, 0, 0, 'green', '{}', 'imported', \
             ?8, ?9, 1, 0)",
            params![
                r.uid,
                r.started_at.unix_ms(),
                r.finished_at.unix_ms(),
                r.package_sha256,
                r.code_fingerprint,
                r.input_fingerprint,
                serde_json::to_string(&r.selection).unwrap(),
                sig.public_key.to_string(),
                sig.base64()
            ],
        )
        .unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let runs = l.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].origin, Origin::Imported);
    assert_eq!(runs[0].signatures, vec![sig.clone()]);
    assert_eq!(runs[0].record.schema, 1);
}

/// A ledger that refuses deploys and rollbacks the way a full disk would, without the 15 s busy
/// timeout of a locked one: a trigger aborts the insert.
fn refuse_outcomes(path: &Path, refuse: bool) {
    let c = rusqlite::Connection::open(path).unwrap();
    if refuse {
        c.execute_batch(
            "CREATE TRIGGER refuse_d BEFORE INSERT ON deploys BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
             CREATE TRIGGER refuse_r BEFORE INSERT ON rollbacks BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    } else {
        c.execute_batch("DROP TRIGGER refuse_d; DROP TRIGGER refuse_r;")
            .unwrap();
    }
}

#[test]
fn outcomes_the_ledger_refused_wait_as_files_and_are_added_in_order_later() {
    use crate::ledger::unrecorded::{self, Unrecorded};
    let (dir, mut l) = fresh();
    let root = dir.path();
    refuse_outcomes(&path_in(root), true);
    let first = deploy(1_000, &"a".repeat(64), "b1", DeployOutcome::Deployed);
    let second = rollback(2_000, "b0", None, RollbackOutcome::Done);
    assert!(l.record_deploy(&first).is_err());
    let kept_first = unrecorded::keep(root, &Unrecorded::Deploy(first.clone())).unwrap();
    let kept_second = unrecorded::keep(root, &Unrecorded::Rollback(second.clone())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kept_first).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Still refused: both wait.
    assert!(unrecorded::replay(root, &mut l).is_err());
    assert!(kept_first.exists() && kept_second.exists());

    refuse_outcomes(&path_in(root), false);
    assert_eq!(unrecorded::replay(root, &mut l).unwrap(), 2);
    assert!(!kept_first.exists() && !kept_second.exists());
    assert_eq!(l.deploys().unwrap()[0].1, first);
    assert_eq!(l.rollbacks().unwrap()[0].1, second);
    let live = l.live(Target::Webhosting).unwrap().unwrap();
    assert_eq!(
        live.build_id.as_deref(),
        Some("b0"),
        "the rollback came after the deploy"
    );
    assert_eq!(unrecorded::replay(root, &mut l).unwrap(), 0);
}

#[test]
fn a_file_in_unrecorded_that_is_not_a_record_is_named_and_left() {
    use crate::ledger::unrecorded;
    let (dir, mut l) = fresh();
    let bad = unrecorded::dir(dir.path()).join("deploy-1-1.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "{}").unwrap();
    let e = unrecorded::replay(dir.path(), &mut l).unwrap_err();
    assert!(e.to_string().contains("deploy-1-1.json"), "{e}");
    assert!(bad.exists());
}

fn test_row(test: &str, status: TestStatus, duration_ms: u64) -> TestRow {
    TestRow {
        test: test.into(),
        status,
        duration_ms,
    }
}

fn route_row(path: &str, p95_ms: f64) -> RouteRow {
    RouteRow {
        method: "GET".into(),
        path: path.into(),
        count: 3,
        median_ms: p95_ms / 2.0,
        p95_ms,
        max_ms: p95_ms * 2.0,
    }
}

/// A ledger of the schema before run details (6 migrations) with a run in it: opening it adds
/// the tables, the run stays, and details recorded for it read back as they went in.
#[test]
fn a_ledger_from_before_run_details_is_migrated_and_details_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = MIGRATIONS.len() - 1;
    let run = record(4);
    {
        let mut conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before as i64)
            .unwrap();
        let tx = conn.transaction().unwrap();
        insert_run(&tx, &run, Origin::Local).unwrap();
        tx.commit().unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('run_tests', 'run_routes')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the previous schema has no details");
    }
    let mut l = Ledger::open(&path).unwrap();
    assert_eq!(l.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let stored = l.runs().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record, run);
    let id = stored[0].id;
    assert_eq!(l.run_details(id).unwrap(), RunDetails::default());

    let details = RunDetails {
        tests: vec![
            test_row("test_b::test_<script>\"x\"", TestStatus::Failed, 2_500),
            test_row("test_a::test_ok", TestStatus::Passed, 120),
            test_row("test_a::test_skip", TestStatus::Skipped, 0),
            test_row("test_a::test_setup", TestStatus::Error, 30),
        ],
        routes: vec![route_row("/slow", 900.0), route_row("/fast", 10.5)],
    };
    l.record_run_details(id, &details).unwrap();
    let mut want = details.clone();
    want.tests.sort_by(|a, b| a.test.cmp(&b.test));
    assert_eq!(l.run_details(id).unwrap(), want);
    // Recording again replaces, never duplicates.
    l.record_run_details(id, &details).unwrap();
    assert_eq!(l.run_details(id).unwrap(), want);
    assert_eq!(l.test_rows_since(id).unwrap().len(), 4);
    assert_eq!(l.test_rows_since(id + 1).unwrap().len(), 0);
    assert_eq!(l.route_rows_since(0).unwrap().len(), 2);
    drop(l);
    // And it survives a reopen.
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.run_details(id).unwrap(), want);
}

#[test]
fn details_keep_the_worst_result_of_a_test_reported_twice_and_at_most_100_routes() {
    let (_d, mut l) = fresh();
    let id = l.record_run(&record(1)).unwrap();
    let details = RunDetails {
        tests: vec![
            test_row("t::rerun", TestStatus::Failed, 100),
            test_row("t::rerun", TestStatus::Passed, 50),
            test_row("t::twice", TestStatus::Skipped, 0),
            test_row("t::twice", TestStatus::Error, 7),
        ],
        routes: (0..150)
            .map(|i| route_row(&format!("/r{i}"), 1000.0 - f64::from(i)))
            .collect(),
    };
    l.record_run_details(id, &details).unwrap();
    let got = l.run_details(id).unwrap();
    assert_eq!(
        got.tests,
        vec![
            test_row("t::rerun", TestStatus::Failed, 150),
            test_row("t::twice", TestStatus::Error, 7),
        ]
    );
    assert_eq!(got.routes.len(), MAX_ROUTES_PER_RUN);
    assert_eq!(got.routes[0].path, "/r0");
    assert_eq!(got.routes[99].path, "/r99");
}

#[test]
fn details_of_a_run_that_is_not_there_are_refused() {
    let (_d, mut l) = fresh();
    let e = l
        .record_run_details(
            42,
            &RunDetails {
                tests: vec![test_row("t::x", TestStatus::Passed, 1)],
                routes: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(matches!(e, LedgerError::NoSuchRun { id: 42, .. }), "{e:?}");
    assert!(l.test_rows_since(0).unwrap().is_empty());
}
