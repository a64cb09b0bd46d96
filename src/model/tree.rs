//! What git says about the working tree: the gate's input, read by `git`.
use std::collections::BTreeMap;

/// The working tree's state relative to HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkTree {
    Clean,
    /// Changed paths, relative to the repository root.
    Dirty {
        changed: Vec<String>,
    },
    /// No git, or not a repository: treated as dirty.
    Unknown {
        reason: String,
    },
}

/// What git says about the tree here.
#[derive(Debug, Clone)]
pub struct TreeFacts {
    pub head: Option<String>,
    pub work_tree: WorkTree,
    /// commit → tree id, for HEAD and the candidate runs' commits this repository has.
    pub trees: BTreeMap<String, String>,
}
