//! Facts about the project's git checkout, from the `git` CLI. A project outside git is allowed:
//! the facts are then unknown, and callers decide what unknown means (the gate treats it as dirty).
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitFacts {
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Seconds since the epoch of the HEAD commit.
    pub commit_time: Option<i64>,
    /// Uncommitted changes below the project root; `None` outside git.
    pub dirty: Option<bool>,
}

impl GitFacts {
    pub fn short_commit(&self) -> Option<&str> {
        self.commit.as_deref().map(|c| &c[..c.len().min(7)])
    }
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn facts(root: &Path) -> GitFacts {
    let Some(head) = git(root, &["log", "-1", "--format=%H %ct"]) else {
        return GitFacts::default();
    };
    let mut parts = head.split_whitespace();
    let commit = parts.next().map(str::to_string);
    let commit_time = parts.next().and_then(|t| t.parse().ok());
    let branch = git(root, &["rev-parse", "--abbrev-ref", "HEAD"]);
    // Limited to the project folder: an app that lives in a monorepo is not dirty because a
    // sibling changed.
    let dirty = git(
        root,
        &[
            "status",
            "--porcelain",
            "--untracked-files=normal",
            "--",
            ".",
        ],
    )
    .map(|s| !s.is_empty());
    GitFacts {
        commit,
        branch,
        commit_time,
        dirty,
    }
}
