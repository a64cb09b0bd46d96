//! One test that opens and one that closes the gate for each rule, plus the explanations.
use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::ledger::signing::SecretKey;
use crate::ledger::{Origin, Outcome, RunRecord, Selection, StoredRun};
use crate::model::keys::TrustedKey;
use crate::model::timestamp::Timestamp;

const CODE: &str = "c0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0dec0de";
const SCHEMA: &str = "5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e5c4e";
const COMMIT: &str = "1111111111111111111111111111111111111111";
const TREE: &str = "7777777777777777777777777777777777777777";
const NOW: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn run(id: i64, edit: impl FnOnce(&mut RunRecord)) -> StoredRun {
    let mut record = RunRecord {
        uid: format!("{id:032x}"),
        started_at: Timestamp::from_unix_ms(NOW - 2 * HOUR),
        finished_at: Timestamp::from_unix_ms(NOW - HOUR),
        git_commit: Some(COMMIT.into()),
        dirty: Some(false),
        target: "local".into(),
        package_sha256: "ab".repeat(32),
        code_fingerprint: CODE.into(),
        schema_fingerprint: Some(SCHEMA.into()),
        input_fingerprint: "1n".repeat(32),
        selection: Selection::Full,
        passed: 12,
        failed: 0,
        skipped: 0,
        errors: 0,
        outcome: Outcome::Green,
        image_ids: BTreeMap::new(),
        browser_version: Some("chromium 131".into()),
        report_path: None,
        pytest_args: Vec::new(),
        test_env: None,
        fingerprint_scheme: Some(crate::package::fingerprint::SCHEME),
        schema: crate::ledger::SCHEMA,
    };
    edit(&mut record);
    StoredRun {
        id,
        record,
        origin: Origin::Local,
        signatures: Vec::new(),
    }
}

fn shard(id: i64, index: u32, total: u32) -> StoredRun {
    run(id, |r| r.selection = Selection::Shard { index, total })
}

fn clean_tree() -> TreeFacts {
    TreeFacts {
        head: Some(COMMIT.into()),
        work_tree: WorkTree::Clean,
        trees: [(COMMIT.to_string(), TREE.to_string())].into(),
    }
}

/// The gate over `runs` on a clean tree at the runs' commit, default config, then `adjust`.
fn decide_with(runs: &[StoredRun], adjust: impl FnOnce(&mut GateFacts<'_>)) -> GateDecision {
    let tree = clean_tree();
    let mut f = GateFacts {
        package: PackageFacts {
            sha256: "ab",
            code: CODE,
            schema: Some(SCHEMA),
        },
        built: Some(BuildFacts {
            git_commit: Some(COMMIT),
            dirty: Some(false),
        }),
        runs,
        census: Census::of(runs),
        now: Timestamp::from_unix_ms(NOW),
        max_age: Duration::from_secs(24 * 3600),
        tree: &tree,
        trusted_keys: &[],
        allow_dirty: false,
        force: None,
    };
    adjust(&mut f);
    decide(&f)
}

fn closed(d: &GateDecision, rule: Rule, needle: &str) {
    assert!(!d.open, "expected closed by {rule:?}: {d:#?}");
    assert_eq!(d.deciding_rule, rule, "{d:#?}");
    assert!(
        d.summary.contains(needle),
        "summary lacks {needle:?}: {d:#?}"
    );
}

fn open(d: &GateDecision) {
    assert!(d.open, "expected open: {d:#?}");
    assert_eq!(d.deciding_rule, Rule::AllHold);
    assert!(d.closest_run.as_ref().unwrap().counts);
}

// --- a green run -----------------------------------------------------------------------------

#[test]
fn no_runs_at_all_closes_naming_no_green_run() {
    let d = decide_with(&[], |_| {});
    closed(&d, Rule::GreenRun, "no green run");
    assert!(d.closest_run.is_none());
}

#[test]
fn only_red_runs_close_naming_no_green_run_and_the_latest() {
    let runs = [
        run(1, |r| r.outcome = Outcome::Aborted),
        run(2, |r| {
            r.outcome = Outcome::Red;
            r.failed = 2;
        }),
    ];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::GreenRun, "no green run");
    assert!(
        d.summary.contains("red (12 passed, 2 failed"),
        "{}",
        d.summary
    );
    assert_eq!(d.closest_run.as_ref().unwrap().id, 2);
}

#[test]
fn a_green_run_opens() {
    let d = decide_with(&[run(1, |_| {})], |_| {});
    open(&d);
    assert_eq!(d.closest_run.unwrap().id, 1);
}

// --- same fingerprints -----------------------------------------------------------------------

#[test]
fn equal_fingerprints_open() {
    open(&decide_with(&[run(1, |_| {})], |_| {}));
}

#[test]
fn different_code_fingerprint_closes_and_names_code() {
    let runs = [run(1, |r| r.code_fingerprint = "ff".repeat(32))];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::SameFingerprints, "code fingerprint differs");
    assert!(d.summary.contains("ffffffffffff") && d.summary.contains(&CODE[..12]));
}

#[test]
fn different_schema_fingerprint_closes_and_names_schema() {
    let runs = [run(1, |r| r.schema_fingerprint = Some("ee".repeat(32)))];
    closed(
        &decide_with(&runs, |_| {}),
        Rule::SameFingerprints,
        "schema fingerprint differs",
    );
    let runs = [run(1, |r| r.schema_fingerprint = None)];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::SameFingerprints, "schema fingerprint differs");
    assert!(d.summary.contains("no database"));
}

#[test]
fn no_schema_on_both_sides_is_equal() {
    let runs = [run(1, |r| r.schema_fingerprint = None)];
    open(&decide_with(&runs, |f| f.package.schema = None));
}

// --- complete: full, or all shards -----------------------------------------------------------

#[test]
fn full_run_opens() {
    open(&decide_with(
        &[run(1, |r| r.selection = Selection::Full)],
        |_| {},
    ));
}

#[test]
fn filtered_run_closes() {
    let runs = [run(1, |r| {
        r.selection = Selection::Filtered {
            expr: "-k login".into(),
        }
    })];
    closed(
        &decide_with(&runs, |_| {}),
        Rule::CompleteRun,
        "filtered (-k login)",
    );
}

#[test]
fn all_shards_green_open_and_name_the_set() {
    let runs = [shard(1, 1, 3), shard(2, 3, 3), shard(3, 2, 3)];
    let d = decide_with(&runs, |_| {});
    open(&d);
    let c = d.closest_run.unwrap();
    assert_eq!(c.shard_runs.len(), 3);
    assert!(d.summary.contains("shard set"), "{}", d.summary);
}

#[test]
fn missing_shard_closes_and_names_it() {
    let runs = [shard(1, 1, 3), shard(2, 3, 3)];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::CompleteRun, "shard 2/3 has no run that counts");
}

#[test]
fn a_red_shard_does_not_complete_the_set() {
    let runs = [
        shard(1, 1, 2),
        run(2, |r| {
            r.selection = Selection::Shard { index: 2, total: 2 };
            r.outcome = Outcome::Red;
        }),
    ];
    closed(&decide_with(&runs, |_| {}), Rule::CompleteRun, "shard 2/2");
}

#[test]
fn shards_of_other_fingerprints_do_not_complete_the_set() {
    let runs = [
        shard(1, 1, 2),
        run(2, |r| {
            r.selection = Selection::Shard { index: 2, total: 2 };
            r.code_fingerprint = "ff".repeat(32);
        }),
    ];
    closed(&decide_with(&runs, |_| {}), Rule::CompleteRun, "shard 2/2");
}

#[test]
fn shards_of_different_counts_do_not_mix() {
    let runs = [shard(1, 1, 2), shard(2, 2, 3), shard(3, 3, 3)];
    assert!(!decide_with(&runs, |_| {}).open);
}

#[test]
fn an_impossible_shard_closes() {
    let runs = [shard(1, 4, 3)];
    closed(
        &decide_with(&runs, |_| {}),
        Rule::CompleteRun,
        "does not exist",
    );
}

proptest! {
    /// The gate opens from shards exactly when every index 1..=N has a green shard run.
    #[test]
    fn shard_sets_open_exactly_when_complete(total in 1u32..8, present in proptest::collection::vec(any::<bool>(), 8), dup in any::<bool>()) {
        let indices: Vec<u32> = (1..=total).filter(|i| present[*i as usize - 1]).collect();
        let mut runs: Vec<StoredRun> = indices.iter().enumerate().map(|(n, &i)| shard(n as i64 + 1, i, total)).collect();
        if dup && !indices.is_empty() {
            // A second run of the same shard must not stand in for a missing one.
            runs.push(shard(100, indices[0], total));
        }
        let d = decide_with(&runs, |_| {});
        prop_assert_eq!(d.open, indices.len() as u32 == total);
        if !d.open && !runs.is_empty() {
            prop_assert_eq!(d.deciding_rule, Rule::CompleteRun);
        }
    }
}

// --- younger than max_age --------------------------------------------------------------------

#[test]
fn a_run_within_max_age_opens() {
    let runs = [run(1, |r| {
        r.finished_at = Timestamp::from_unix_ms(NOW - 24 * HOUR)
    })];
    open(&decide_with(&runs, |_| {}));
}

#[test]
fn a_run_older_than_max_age_closes() {
    let runs = [run(1, |r| {
        r.finished_at = Timestamp::from_unix_ms(NOW - 24 * HOUR - 1000)
    })];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::MaxAge, "max_age is 1d");
    assert!(d.summary.contains("finished 1d 1s ago"), "{}", d.summary);
}

#[test]
fn max_age_comes_from_the_facts() {
    let runs = [run(1, |r| {
        r.finished_at = Timestamp::from_unix_ms(NOW - 2 * HOUR)
    })];
    closed(
        &decide_with(&runs, |f| f.max_age = Duration::from_secs(90 * 60)),
        Rule::MaxAge,
        "max_age is 1h 30m",
    );
}

// --- clean tree ------------------------------------------------------------------------------

fn decide_on_tree(runs: &[StoredRun], tree: TreeFacts, allow_dirty: bool) -> GateDecision {
    decide_with(runs, |f| {
        f.tree = Box::leak(Box::new(tree));
        f.allow_dirty = allow_dirty;
    })
}

#[test]
fn clean_tree_at_the_runs_commit_opens() {
    let d = decide_on_tree(&[run(1, |_| {})], clean_tree(), false);
    open(&d);
    assert!(d.dirty_waived.is_none());
}

#[test]
fn uncommitted_changes_close_and_list_files() {
    let mut tree = clean_tree();
    tree.work_tree = WorkTree::Dirty {
        changed: vec!["src/a.py".into(), "src/b.py".into(), "c".into(), "d".into()],
    };
    let d = decide_on_tree(&[run(1, |_| {})], tree, false);
    closed(
        &d,
        Rule::CleanTree,
        "uncommitted changes: src/a.py, src/b.py, c (+1 more)",
    );
}

#[test]
fn allow_dirty_opens_and_records_what_it_waived() {
    let mut tree = clean_tree();
    tree.work_tree = WorkTree::Dirty {
        changed: vec!["README.md".into()],
    };
    let d = decide_on_tree(&[run(1, |_| {})], tree, true);
    open(&d);
    assert!(d.dirty_waived.as_deref().unwrap().contains("README.md"));
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("waived by --allow-dirty"))
    );
}

#[test]
fn allow_dirty_on_any_shard_of_a_set_is_recorded() {
    let runs = [
        shard(1, 1, 2),
        run(2, |r| {
            r.selection = Selection::Shard { index: 2, total: 2 };
            r.dirty = Some(true);
            r.finished_at = Timestamp::from_unix_ms(NOW - HOUR / 2);
        }),
    ];
    closed(
        &decide_on_tree(&runs, clean_tree(), false),
        Rule::CompleteRun,
        "shard 2/2 has no run",
    );
    let d = decide_on_tree(&runs, clean_tree(), true);
    open(&d);
    assert!(
        d.dirty_waived
            .unwrap()
            .contains("run 2 was recorded on a tree with uncommitted changes")
    );
}

#[test]
fn a_run_recorded_on_a_dirty_tree_closes() {
    let d = decide_on_tree(&[run(1, |r| r.dirty = Some(true))], clean_tree(), false);
    closed(
        &d,
        Rule::CleanTree,
        "recorded on a tree with uncommitted changes",
    );
}

#[test]
fn unknown_git_state_is_treated_as_dirty() {
    let tree = TreeFacts {
        head: None,
        work_tree: WorkTree::Unknown {
            reason: "/p is not in a git repository".into(),
        },
        trees: BTreeMap::new(),
    };
    let d = decide_on_tree(&[run(1, |_| {})], tree, false);
    closed(
        &d,
        Rule::CleanTree,
        "unknown (/p is not in a git repository); treated as dirty",
    );
    let d = decide_on_tree(&[run(1, |r| r.dirty = None)], clean_tree(), false);
    closed(&d, Rule::CleanTree, "treated as dirty");
}

#[test]
fn head_with_other_files_than_the_runs_commit_closes() {
    let head = "2222222222222222222222222222222222222222";
    let mut tree = clean_tree();
    tree.head = Some(head.into());
    tree.trees.insert(head.into(), "8".repeat(40));
    let d = decide_on_tree(&[run(1, |_| {})], tree, false);
    closed(&d, Rule::CleanTree, "has other files than run 1's commit");
}

#[test]
fn another_commit_with_the_same_tree_opens() {
    let head = "2222222222222222222222222222222222222222";
    let mut tree = clean_tree();
    tree.head = Some(head.into());
    tree.trees.insert(head.into(), TREE.into());
    open(&decide_on_tree(&[run(1, |_| {})], tree, false));
}

#[test]
fn a_commit_this_repository_lacks_closes() {
    let mut tree = clean_tree();
    tree.trees.remove(COMMIT);
    tree.head = Some("3".repeat(40));
    tree.trees.insert("3".repeat(40), TREE.into());
    let d = decide_on_tree(&[run(1, |_| {})], tree, false);
    closed(&d, Rule::CleanTree, "which this repository does not have");
}

// --- force -----------------------------------------------------------------------------------

#[test]
fn force_with_reason_opens_and_records_what_the_rules_said() {
    let force = Force::new("hotfix #12, checked by hand").unwrap();
    let d = decide_with(&[], |f| f.force = Some(Box::leak(Box::new(force))));
    assert!(d.open);
    assert_eq!(d.deciding_rule, Rule::Forced);
    assert_eq!(d.forced.as_deref(), Some("hotfix #12, checked by hand"));
    assert!(d.summary.contains("hotfix #12"));
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("without --force the gate is closed: no green run")),
        "{d:#?}"
    );
}

#[test]
fn force_without_reason_is_refused() {
    assert_eq!(Force::new(""), Err(ForceWithoutReason));
    assert_eq!(Force::new("  \t"), Err(ForceWithoutReason));
    assert!(
        ForceWithoutReason
            .to_string()
            .contains("--force needs a reason")
    );
}

#[test]
fn no_force_leaves_a_closed_gate_closed() {
    let d = decide_with(&[run(1, |r| r.outcome = Outcome::Red)], |f| f.force = None);
    assert!(!d.open);
    assert!(d.forced.is_none());
}

// --- imported records ------------------------------------------------------------------------

fn imported(record_edit: impl FnOnce(&mut RunRecord), signer: Option<&SecretKey>) -> StoredRun {
    let mut r = run(1, |_| {});
    let signature = signer.map(|k| k.sign(&r.record));
    record_edit(&mut r.record);
    r.origin = Origin::Imported;
    r.signatures = signature.into_iter().collect();
    r
}

fn decide_trusting(runs: &[StoredRun], key: &SecretKey) -> GateDecision {
    let trusted = vec![TrustedKey {
        name: Some("ci".into()),
        key: key.public_key(),
    }];
    decide_with(runs, |f| {
        f.trusted_keys = Box::leak(trusted.into_boxed_slice())
    })
}

#[test]
fn a_record_signed_by_a_trusted_key_opens() {
    let ci = SecretKey::generate();
    let d = decide_trusting(&[imported(|_| {}, Some(&ci))], &ci);
    open(&d);
    assert!(
        d.reasons[1].contains("signed by trusted key `ci`"),
        "{d:#?}"
    );
}

#[test]
fn a_record_signed_by_an_untrusted_key_closes_as_foreign() {
    let ci = SecretKey::generate();
    let other = SecretKey::generate();
    let d = decide_trusting(&[imported(|_| {}, Some(&other))], &ci);
    closed(
        &d,
        Rule::TrustedRecord,
        "not in [gate] trusted_keys (foreign)",
    );
    assert!(d.summary.contains(&other.public_key().id()));
}

#[test]
fn a_record_edited_after_signing_closes() {
    let ci = SecretKey::generate();
    let d = decide_trusting(&[imported(|r| r.skipped = 5, Some(&ci))], &ci);
    closed(&d, Rule::TrustedRecord, "changed after signing");
}

#[test]
fn an_unsigned_import_closes() {
    let ci = SecretKey::generate();
    let d = decide_trusting(&[imported(|_| {}, None)], &ci);
    closed(&d, Rule::TrustedRecord, "unsigned");
}

#[test]
fn trust_is_checked_against_todays_keys_not_the_import() {
    // A key removed from trusted_keys stops counting.
    let ci = SecretKey::generate();
    let r = imported(|_| {}, Some(&ci));
    let d = decide_with(&[r], |_| {});
    closed(&d, Rule::TrustedRecord, "foreign");
}

#[test]
fn one_trusted_signature_among_several_is_enough() {
    let ci = SecretKey::generate();
    let other = SecretKey::generate();
    let mut r = imported(|_| {}, Some(&other));
    r.signatures.push(ci.sign(&r.record));
    let d = decide_trusting(&[r], &ci);
    open(&d);
    assert!(
        d.reasons[1].contains("signed by trusted key `ci`"),
        "{d:#?}"
    );
}

// --- the closest run -------------------------------------------------------------------------

#[test]
fn the_run_that_gets_furthest_is_closest_and_decides() {
    let runs = [
        run(1, |r| r.outcome = Outcome::Red),
        run(2, |r| {
            r.finished_at = Timestamp::from_unix_ms(NOW - 48 * HOUR)
        }),
        run(3, |r| r.code_fingerprint = "ff".repeat(32)),
    ];
    let d = decide_with(&runs, |_| {});
    closed(&d, Rule::MaxAge, "run 2 finished 2d ago");
    let c = d.closest_run.unwrap();
    assert_eq!(c.id, 2);
    assert!(!c.counts);
    assert!(
        c.why.contains("does not count: run 2 finished 2d ago"),
        "{}",
        c.why
    );
    assert!(d.reasons[0].starts_with("3 runs recorded, 2 green, 1 green with these fingerprints"));
}

#[test]
fn among_equally_close_runs_the_latest_is_named() {
    let runs = [
        run(1, |r| {
            r.finished_at = Timestamp::from_unix_ms(NOW - 50 * HOUR)
        }),
        run(2, |r| {
            r.finished_at = Timestamp::from_unix_ms(NOW - 30 * HOUR)
        }),
    ];
    assert_eq!(decide_with(&runs, |_| {}).closest_run.unwrap().id, 2);
}

#[test]
fn candidate_commits_are_those_of_matching_green_runs() {
    let runs = [
        run(1, |_| {}),
        run(2, |r| {
            r.git_commit = Some("2".repeat(40));
            r.outcome = Outcome::Red;
        }),
        run(3, |r| {
            r.git_commit = Some("3".repeat(40));
            r.code_fingerprint = "ff".repeat(32);
        }),
    ];
    let p = PackageFacts {
        sha256: "ab",
        code: CODE,
        schema: Some(SCHEMA),
    };
    assert_eq!(
        candidate_commits(&runs, &p).into_iter().collect::<Vec<_>>(),
        vec![COMMIT]
    );
}

// --- the package's own build -----------------------------------------------------------------

#[test]
fn bytes_harness_did_not_build_close_the_gate_naming_their_sha256() {
    let d = decide_with(&[run(1, |_| {})], |f| f.built = None);
    closed(
        &d,
        Rule::KnownPackage,
        "package sha256 ab was not built by harness here",
    );
    // --force --reason still opens it, and says what it overrode.
    let force = Force::new("hotfix").unwrap();
    let d = decide_with(&[run(1, |_| {})], |f| {
        f.built = None;
        f.force = Some(Box::leak(Box::new(force)));
    });
    assert!(d.open && d.deciding_rule == Rule::Forced, "{d:#?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("not built by harness")),
        "{d:#?}"
    );
}

#[test]
fn a_package_built_from_another_tree_or_a_dirty_one_does_not_ride_on_the_run() {
    let other = "f".repeat(40);
    let d = decide_with(&[run(1, |_| {})], |f| {
        f.built = Some(BuildFacts {
            git_commit: Some(Box::leak(other.clone().into_boxed_str())),
            dirty: Some(false),
        })
    });
    closed(
        &d,
        Rule::CleanTree,
        "the package was built from commit ffffffffffff",
    );
    let d = decide_with(&[run(1, |_| {})], |f| {
        f.built = Some(BuildFacts {
            git_commit: Some(COMMIT),
            dirty: Some(true),
        })
    });
    closed(
        &d,
        Rule::CleanTree,
        "built from a tree with uncommitted changes",
    );
    let d = decide_with(&[run(1, |_| {})], |f| {
        f.built = Some(BuildFacts {
            git_commit: Some(COMMIT),
            dirty: Some(true),
        });
        f.allow_dirty = true;
    });
    open(&d);
    assert!(d.dirty_waived.unwrap().contains("uncommitted"));
}

#[test]
fn runs_under_the_old_fingerprint_scheme_are_named_too_old() {
    let d = decide_with(&[run(1, |r| r.fingerprint_scheme = None)], |_| {});
    closed(
        &d,
        Rule::SameFingerprints,
        "fingerprint scheme 1 by an older harness; too old",
    );
}

/// The ledger's `gate_runs` subset decides as every run does (a property of the two together).
mod gate_subset {
    use super::*;
    use crate::ledger::tests::{fresh, record};

    const NOW: i64 = 1_800_000_000_000;

    fn arb_run() -> impl Strategy<Value = RunRecord> {
        (
            0..4usize,
            any::<bool>(),
            0..3usize,
            0..5u32,
            0..48 * 60i64,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(outcome, same_code, schema, sel, minutes_ago, dirty, same_commit)| {
                    let mut r = record(0);
                    r.uid = format!("{:032x}", rand::random::<u128>());
                    r.outcome = [
                        Outcome::Green,
                        Outcome::Red,
                        Outcome::Aborted,
                        Outcome::Infra,
                    ][outcome];
                    r.code_fingerprint = if same_code {
                        "c".repeat(64)
                    } else {
                        "f".repeat(64)
                    };
                    r.schema_fingerprint =
                        [Some("d".repeat(64)), None, Some("9".repeat(64))][schema].clone();
                    r.selection = match sel {
                        0 | 1 => Selection::Full,
                        2 => Selection::Filtered { expr: "x".into() },
                        n => Selection::Shard {
                            index: n - 2,
                            total: 2,
                        },
                    };
                    r.finished_at = Timestamp::from_unix_ms(NOW - minutes_ago * 60_000);
                    r.dirty = Some(dirty && !same_commit);
                    r.git_commit = Some(if same_commit { "a" } else { "b" }.repeat(40));
                    r
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Deciding over `gate_runs` gives exactly the decision over every run.
        #[test]
        fn gate_runs_decide_like_all_runs(runs in proptest::collection::vec(arb_run(), 0..40), allow_dirty in any::<bool>()) {
            let (_d, mut l) = fresh();
            for r in &runs {
                l.record_run(r).unwrap();
            }
            let tree = TreeFacts {
                head: Some("a".repeat(40)),
                work_tree: WorkTree::Clean,
                trees: [("a".repeat(40), "t".repeat(40)), ("b".repeat(40), "u".repeat(40))].into(),
            };
            let schema = "d".repeat(64);
            let code = "c".repeat(64);
            let decide = |runs: &[StoredRun], census| decide(&GateFacts {
                package: PackageFacts { sha256: "p", code: &code, schema: Some(&schema) },
                built: Some(BuildFacts { git_commit: None, dirty: Some(false) }),
                runs,
                census,
                now: Timestamp::from_unix_ms(NOW),
                max_age: Duration::from_secs(24 * 3600),
                tree: &tree,
                trusted_keys: &[],
                allow_dirty,
                force: None,
            });
            let all = l.runs().unwrap();
            let (subset, census) = l.gate_runs(&code, Some(&schema)).unwrap();
            prop_assert_eq!(census, Census::of(&all));
            prop_assert!(subset.len() <= all.len());
            let full = decide(&all, Census::of(&all));
            let fast = decide(&subset, census);
            prop_assert_eq!(full, fast);
        }
    }
}
