//! The deploy gate's rules: facts in, decision out. No I/O, so every rule is a plain unit test.
//!
//! A package may ship only when harness built its exact bytes here (the ledger's `builds`), and
//! one recorded run (or a complete set of shards), all of:
//! 1. is green;
//! 2. has the package's code and schema fingerprints;
//! 3. is complete: unfiltered, or every shard of its N passes all the other rules;
//! 4. finished no longer than `max_age` ago;
//! 5. ran on a clean tree whose commit has the same tree as HEAD and as the commit the package
//!    was built from, and neither HEAD nor the build had uncommitted changes, unless
//!    `--allow-dirty` (recorded);
//! 6. is local, or imported and signed by a key in `[gate] trusted_keys`.
//!
//! `--force --reason` opens it regardless, and the decision records what the rules said.
//! The rules are checked in that order per run; the run that gets furthest is the "closest run",
//! and the rule it fails is the one that decides.
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ledger::signing::Trust;
use crate::ledger::{Origin, Outcome, Selection, StoredRun};
pub use crate::model::duration::{humane as humane_duration, parse as parse_duration};
pub use crate::model::gate::{Census, ClosestRun, GateDecision, Rule};
use crate::model::keys::TrustedKey;
use crate::model::timestamp::Timestamp;
use crate::model::tree::{TreeFacts, WorkTree};

/// The package about to ship.
#[derive(Debug, Clone, Copy)]
pub struct PackageFacts<'a> {
    pub sha256: &'a str,
    pub code: &'a str,
    pub schema: Option<&'a str>,
}

/// How the package was built, as `harness build` recorded it in the ledger.
#[derive(Debug, Clone, Copy)]
pub struct BuildFacts<'a> {
    pub git_commit: Option<&'a str>,
    /// `None`: unknown (no git where it was built).
    pub dirty: Option<bool>,
}

/// `--force --reason TEXT`. A reason is required, so it cannot be built without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Force {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--force needs a reason: the override is recorded, and the record must say why")]
pub struct ForceWithoutReason;

impl Force {
    pub fn new(reason: &str) -> Result<Force, ForceWithoutReason> {
        let reason = reason.trim();
        if reason.is_empty() {
            Err(ForceWithoutReason)
        } else {
            Ok(Force {
                reason: reason.to_string(),
            })
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Census {
    pub fn of(runs: &[StoredRun]) -> Census {
        Census {
            runs: runs.len(),
            green: runs
                .iter()
                .filter(|r| r.record.outcome == Outcome::Green)
                .count(),
        }
    }
}

/// Everything the gate decides on.
#[derive(Debug, Clone, Copy)]
pub struct GateFacts<'a> {
    pub package: PackageFacts<'a>,
    /// The ledger's record of building these exact bytes; `None` closes the gate: bytes harness
    /// did not build (a hand-made or altered zip) were never what a run tested.
    pub built: Option<BuildFacts<'a>>,
    /// All runs, or a subset that decides the same: every green run with the package's
    /// fingerprints, the latest green run and the latest run. Any other run fails earlier in the
    /// rules than one of those, so it can be neither the qualifying run nor the closest one.
    /// `Ledger::gate_runs` reads exactly that subset.
    pub runs: &'a [StoredRun],
    pub census: Census,
    pub now: Timestamp,
    pub max_age: Duration,
    pub tree: &'a TreeFacts,
    pub trusted_keys: &'a [TrustedKey],
    pub allow_dirty: bool,
    pub force: Option<&'a Force>,
}

/// How far one run gets through the rules.
struct Eval {
    /// Rules passed, in order; 6 means it qualifies apart from shard completeness.
    passed: u8,
    failure: Option<(Rule, String)>,
    dirty_waived: Option<String>,
}

const PER_RUN_STEPS: u8 = 6;

pub fn decide(f: &GateFacts<'_>) -> GateDecision {
    let evals: Vec<Eval> = f.runs.iter().map(|r| evaluate(r, f)).collect();
    let mut decision = rule_decision(f, &evals);
    decision.reasons.insert(0, census(f, &evals));
    if let Some(force) = f.force {
        let without = if decision.open {
            "the rules alone would open the gate too".to_string()
        } else {
            format!("without --force the gate is closed: {}", decision.summary)
        };
        decision.reasons.push(without);
        decision.summary = format!("forced open: {}", force.reason());
        decision.open = true;
        decision.deciding_rule = Rule::Forced;
        decision.forced = Some(force.reason().to_string());
    }
    decision
}

fn rule_decision(f: &GateFacts<'_>, evals: &[Eval]) -> GateDecision {
    let closed = |rule, summary: String, closest: Option<ClosestRun>| GateDecision {
        open: false,
        deciding_rule: rule,
        summary,
        reasons: Vec::new(),
        closest_run: closest,
        dirty_waived: None,
        forced: None,
    };
    if f.built.is_none() {
        return closed(
            Rule::KnownPackage,
            format!(
                "package sha256 {} was not built by harness here: the ledger has no build of \
                 these bytes, so no run can have tested them",
                f.package.sha256
            ),
            None,
        );
    }
    if f.runs.is_empty() {
        return closed(
            Rule::GreenRun,
            "no green run: the ledger has no runs".into(),
            None,
        );
    }
    let latest_first = |a: &usize, b: &usize| {
        let (ra, rb) = (&f.runs[*a], &f.runs[*b]);
        (rb.record.finished_at, rb.id).cmp(&(ra.record.finished_at, ra.id))
    };
    let mut qualifying: Vec<usize> = (0..f.runs.len())
        .filter(|&i| evals[i].passed == PER_RUN_STEPS)
        .collect();
    qualifying.sort_by(latest_first);

    // A full run opens the gate by itself.
    if let Some(&i) = qualifying
        .iter()
        .find(|&&i| f.runs[i].record.selection == Selection::Full)
    {
        return open_with(f, &f.runs[i], evals[i].dirty_waived.clone(), Vec::new());
    }
    // Otherwise a shard set whose every shard qualifies.
    let mut shards: BTreeMap<u32, BTreeMap<u32, usize>> = BTreeMap::new();
    for &i in &qualifying {
        if let Selection::Shard { index, total } = f.runs[i].record.selection {
            // `qualifying` is newest first, so the first run seen per shard is its newest.
            shards.entry(total).or_default().entry(index).or_insert(i);
        }
    }
    let complete = shards
        .iter()
        .filter(|(total, have)| have.len() as u32 == **total)
        .max_by_key(|(_, have)| {
            let newest = have.values().min_by(|a, b| latest_first(a, b)).copied();
            newest.map(|i| (f.runs[i].record.finished_at, f.runs[i].id))
        });
    if let Some((_, have)) = complete {
        let mut members: Vec<usize> = have.values().copied().collect();
        members.sort_by(latest_first);
        let ids = members.iter().map(|&i| f.runs[i].id).collect();
        // The oldest shard is the one that ages out first, so it speaks for the set.
        let oldest = *members.last().expect("a complete set has members");
        let waived = members.iter().find_map(|&i| evals[i].dirty_waived.clone());
        return open_with(f, &f.runs[oldest], waived, ids);
    }

    // Closed: the run that gets furthest decides.
    let best = (0..f.runs.len())
        .max_by(|a, b| {
            evals[*a]
                .passed
                .cmp(&evals[*b].passed)
                .then_with(|| latest_first(b, a))
        })
        .expect("runs is not empty");
    let run = &f.runs[best];
    let (rule, why) = match &evals[best].failure {
        Some((rule, why)) => (*rule, why.clone()),
        None => {
            let Selection::Shard { index: _, total } = run.record.selection else {
                unreachable!("a qualifying full run opens the gate")
            };
            let have = shards.get(&total).cloned().unwrap_or_default();
            let missing: Vec<String> = (1..=total)
                .filter(|i| !have.contains_key(i))
                .map(|i| format!("{i}/{total}"))
                .collect();
            let present: Vec<String> = have.keys().map(|i| format!("{i}/{total}")).collect();
            (
                Rule::CompleteRun,
                format!(
                    "shard set incomplete: shard {} counts, but shard {} has no run that counts",
                    present.join(", "),
                    missing.join(", ")
                ),
            )
        }
    };
    let summary = if rule == Rule::GreenRun {
        format!(
            "no green run is recorded; the latest run ({}) is {}",
            run.id, why
        )
    } else {
        why.clone()
    };
    closed(
        rule,
        summary,
        Some(ClosestRun {
            id: run.id,
            counts: false,
            why: format!("{}; does not count: {why}", describe(run, f.now)),
            shard_runs: Vec::new(),
        }),
    )
}

fn open_with(
    f: &GateFacts<'_>,
    run: &StoredRun,
    dirty_waived: Option<String>,
    shard_runs: Vec<i64>,
) -> GateDecision {
    let what = if shard_runs.is_empty() {
        format!("run {}", run.id)
    } else {
        let ids: Vec<String> = shard_runs.iter().map(i64::to_string).collect();
        format!("shard set (runs {})", ids.join(", "))
    };
    let mut reasons = vec![format!(
        "{what}: green, {}, same code and schema fingerprints, {}, finished {} ago (max_age {})",
        if shard_runs.is_empty() {
            "full"
        } else {
            "all shards"
        },
        trust_words(run, f.trusted_keys),
        humane_duration(f.now.since(run.record.finished_at)),
        humane_duration(f.max_age),
    )];
    match &dirty_waived {
        Some(w) => reasons.push(format!("clean tree waived by --allow-dirty: {w}")),
        None => reasons.push("tree clean at the run's commit".into()),
    }
    GateDecision {
        open: true,
        deciding_rule: Rule::AllHold,
        summary: format!("{what} tested these bytes"),
        reasons,
        closest_run: Some(ClosestRun {
            id: run.id,
            counts: true,
            why: format!("{}; counts", describe(run, f.now)),
            shard_runs,
        }),
        dirty_waived,
        forced: None,
    }
}

fn census(f: &GateFacts<'_>, evals: &[Eval]) -> String {
    let same = evals.iter().filter(|e| e.passed >= 2).count();
    format!(
        "{} runs recorded, {} green, {same} green with these fingerprints (code {}, schema {})",
        f.census.runs,
        f.census.green,
        short(f.package.code),
        f.package.schema.map(short).unwrap_or("none")
    )
}

fn describe(run: &StoredRun, now: Timestamp) -> String {
    let r = &run.record;
    format!(
        "run {} ({}, {}, {} ago, commit {}{}, {})",
        run.id,
        r.outcome.as_str(),
        r.selection,
        humane_duration(now.since(r.finished_at)),
        r.git_commit.as_deref().map(short).unwrap_or("unknown"),
        match r.dirty {
            Some(false) => "",
            Some(true) => "+dirty",
            None => "+?",
        },
        run.origin.as_str()
    )
}

fn trust_words(run: &StoredRun, trusted: &[TrustedKey]) -> String {
    match run.origin {
        Origin::Local => "recorded here".into(),
        Origin::Imported => Trust::of_all(&run.signatures, &run.record, trusted).explain(),
    }
}

/// The first 12 characters of a hash or commit: enough to tell them apart on screen.
fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

fn evaluate(run: &StoredRun, f: &GateFacts<'_>) -> Eval {
    let r = &run.record;
    let mut e = Eval {
        passed: 0,
        failure: None,
        dirty_waived: None,
    };
    let step = |e: &mut Eval, check: Result<(), (Rule, String)>| match check {
        Ok(()) => {
            e.passed += 1;
            true
        }
        Err(fail) => {
            e.failure = Some(fail);
            false
        }
    };
    let green = if r.outcome == Outcome::Green {
        Ok(())
    } else {
        Err((
            Rule::GreenRun,
            format!(
                "{} ({} passed, {} failed, {} errors)",
                r.outcome.as_str(),
                r.passed,
                r.failed,
                r.errors
            ),
        ))
    };
    if !step(&mut e, green) {
        return e;
    }
    let scheme = r.fingerprint_scheme.unwrap_or(1);
    let fingerprints = if scheme != crate::package::fingerprint::SCHEME {
        Err((
            Rule::SameFingerprints,
            format!(
                "run {} was recorded under fingerprint scheme {scheme} by an older harness; too \
                 old to count (fingerprints are now scheme {})",
                run.id,
                crate::package::fingerprint::SCHEME
            ),
        ))
    } else if r.code_fingerprint != f.package.code {
        Err((
            Rule::SameFingerprints,
            format!(
                "code fingerprint differs: run {} tested {}, the package has {}",
                run.id,
                short(&r.code_fingerprint),
                short(f.package.code)
            ),
        ))
    } else if r.schema_fingerprint.as_deref() != f.package.schema {
        Err((
            Rule::SameFingerprints,
            format!(
                "schema fingerprint differs: run {} tested {}, the package has {}",
                run.id,
                r.schema_fingerprint
                    .as_deref()
                    .map(short)
                    .unwrap_or("no database"),
                f.package.schema.map(short).unwrap_or("no database")
            ),
        ))
    } else {
        Ok(())
    };
    if !step(&mut e, fingerprints) {
        return e;
    }
    let complete = match &r.selection {
        Selection::Full => Ok(()),
        Selection::Filtered { expr } => Err((
            Rule::CompleteRun,
            format!(
                "run {} was filtered ({expr}); only full runs or complete shard sets count",
                run.id
            ),
        )),
        Selection::Shard { index, total } if *index == 0 || index > total => Err((
            Rule::CompleteRun,
            format!(
                "run {} claims shard {index}/{total}, which does not exist",
                run.id
            ),
        )),
        // Whether the other shards are there is decided over the whole set.
        Selection::Shard { .. } => Ok(()),
    };
    if !step(&mut e, complete) {
        return e;
    }
    let age = f.now.since(r.finished_at);
    let young = if age <= f.max_age {
        Ok(())
    } else {
        Err((
            Rule::MaxAge,
            format!(
                "run {} finished {} ago; max_age is {}",
                run.id,
                humane_duration(age),
                humane_duration(f.max_age)
            ),
        ))
    };
    if !step(&mut e, young) {
        return e;
    }
    let clean = match (
        unclean(run, f.tree).or_else(|| built_elsewhere(run, f)),
        f.allow_dirty,
    ) {
        (None, _) => Ok(()),
        (Some(why), true) => {
            e.dirty_waived = Some(why);
            Ok(())
        }
        (Some(why), false) => Err((Rule::CleanTree, why)),
    };
    if !step(&mut e, clean) {
        return e;
    }
    // Last because it is the one expensive check (an ed25519 verification per imported run).
    let trust = match run.origin {
        Origin::Local => Ok(()),
        Origin::Imported => {
            let t = Trust::of_all(&run.signatures, r, f.trusted_keys);
            if t.counts() {
                Ok(())
            } else {
                Err((
                    Rule::TrustedRecord,
                    format!("run {} was imported and {}", run.id, t.explain()),
                ))
            }
        }
    };
    step(&mut e, trust);
    e
}

/// Why the package is not provably built from the tree the run tested, if it is not.
fn built_elsewhere(run: &StoredRun, f: &GateFacts<'_>) -> Option<String> {
    let b = f.built?;
    match b.dirty {
        Some(false) => {}
        Some(true) => {
            return Some("the package was built from a tree with uncommitted changes".into());
        }
        None => return Some("the package's build does not know its git state".into()),
    }
    let (Some(built), Some(tested)) = (b.git_commit, run.record.git_commit.as_deref()) else {
        return Some("the package's build or the run has no commit".into());
    };
    if built == tested {
        return None;
    }
    match (f.tree.trees.get(built), f.tree.trees.get(tested)) {
        (Some(a), Some(b)) if a == b => None,
        _ => Some(format!(
            "the package was built from commit {}, whose files are not run {}'s commit {}",
            short(built),
            run.id,
            short(tested)
        )),
    }
}

/// Why the tree here is not provably the tree the run tested, if it is not.
fn unclean(run: &StoredRun, tree: &TreeFacts) -> Option<String> {
    let r = &run.record;
    match r.dirty {
        Some(true) => {
            return Some(format!(
                "run {} was recorded on a tree with uncommitted changes, so its commit does not say \
                 what it tested",
                run.id
            ));
        }
        None => {
            return Some(format!(
                "run {} does not know whether its tree was clean (no git where it ran); treated as dirty",
                run.id
            ));
        }
        Some(false) => {}
    }
    match &tree.work_tree {
        WorkTree::Unknown { reason } => {
            return Some(format!(
                "git state here is unknown ({reason}); treated as dirty"
            ));
        }
        WorkTree::Dirty { changed } => {
            let shown: Vec<&str> = changed.iter().take(3).map(String::as_str).collect();
            let more = changed.len().saturating_sub(shown.len());
            return Some(format!(
                "the tree has uncommitted changes: {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                }
            ));
        }
        WorkTree::Clean => {}
    }
    let Some(commit) = r.git_commit.as_deref() else {
        return Some(format!("run {} has no commit", run.id));
    };
    let head = tree.head.as_deref().unwrap_or("");
    let head_tree = tree.trees.get(head);
    match tree.trees.get(commit) {
        None => Some(format!(
            "run {} was made at commit {}, which this repository does not have",
            run.id,
            short(commit)
        )),
        Some(t) if Some(t) != head_tree => Some(format!(
            "HEAD {} has other files than run {}'s commit {}",
            short(head),
            run.id,
            short(commit)
        )),
        Some(_) => None,
    }
}

/// Commits the clean-tree rule may need trees for: those of green runs with the package's
/// fingerprints. Lets the caller ask git about a handful of commits, not every run's.
pub fn candidate_commits<'a>(
    runs: &'a [StoredRun],
    package: &PackageFacts<'_>,
) -> BTreeSet<&'a str> {
    runs.iter()
        .filter(|r| {
            r.record.outcome == Outcome::Green
                && r.record.code_fingerprint == package.code
                && r.record.schema_fingerprint.as_deref() == package.schema
        })
        .filter_map(|r| r.record.git_commit.as_deref())
        .collect()
}
