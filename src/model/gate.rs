//! What the deploy gate decides, as the ledger records it: the rule that decided, the closest
//! run, the reasons. `gate` makes these; `ledger` stores them.
use serde::Serialize;

/// How many runs the ledger holds; `runs` may be a subset (see [`GateFacts::runs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    pub runs: usize,
    pub green: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The package's bytes were built here by harness.
    KnownPackage,
    GreenRun,
    SameFingerprints,
    TrustedRecord,
    CompleteRun,
    MaxAge,
    CleanTree,
    /// The gate is open: a run satisfies every rule.
    AllHold,
    Forced,
}

impl Rule {
    pub fn key(self) -> &'static str {
        match self {
            Rule::KnownPackage => "known_package",
            Rule::GreenRun => "green_run",
            Rule::SameFingerprints => "same_fingerprints",
            Rule::TrustedRecord => "trusted_record",
            Rule::CompleteRun => "complete_run",
            Rule::MaxAge => "max_age",
            Rule::CleanTree => "clean_tree",
            Rule::AllHold => "all_hold",
            Rule::Forced => "forced",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::KnownPackage => "harness built these exact bytes",
            Rule::GreenRun => "a green run is recorded",
            Rule::SameFingerprints => "same code and schema fingerprints",
            Rule::TrustedRecord => "the record is local or signed by a trusted key",
            Rule::CompleteRun => "the run is complete (unfiltered, or all shards)",
            Rule::MaxAge => "the run is younger than max_age",
            Rule::CleanTree => "the tree is clean at the run's commit",
            Rule::AllHold => "every rule holds",
            Rule::Forced => "forced with --force --reason",
        }
    }

    /// What the user can do when this rule closes the gate.
    pub fn remedy(self) -> &'static str {
        match self {
            Rule::KnownPackage => {
                "deploy a package `harness build --target webhosting` made in this project (or let deploy build it)"
            }
            Rule::GreenRun => {
                "run the suite (harness test), or import a signed record of a CI run (harness runs import FILE)"
            }
            Rule::SameFingerprints => {
                "these bytes were not tested: run harness test on this tree (runs of an older harness \
                 do not count), or check out the tested commit"
            }
            Rule::TrustedRecord => {
                "import a record signed by a key in [gate] trusted_keys, or add the signer's public key there"
            }
            Rule::CompleteRun => "run the full suite, or the missing shards",
            Rule::MaxAge => "run the suite again, or raise [gate] max_age in harness.toml",
            Rule::CleanTree => {
                "commit or stash the changes (or check out the run's commit); --allow-dirty ships anyway and is recorded"
            }
            Rule::AllHold | Rule::Forced => "",
        }
    }
}

/// The closest run and why it does or does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosestRun {
    pub id: i64,
    pub counts: bool,
    pub why: String,
    /// For a shard set: the runs that make it up (including `id`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shard_runs: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateDecision {
    pub open: bool,
    pub deciding_rule: Rule,
    /// One line: the rule's verdict in words.
    pub summary: String,
    pub reasons: Vec<String>,
    pub closest_run: Option<ClosestRun>,
    /// Set when `--allow-dirty` was needed to open the gate: what it waived.
    pub dirty_waived: Option<String>,
    /// The `--force` reason, when forced.
    pub forced: Option<String>,
}
