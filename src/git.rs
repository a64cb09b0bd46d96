//! Git facts through the `git` command: which commit, and whether the tree differs from it.
//!
//! Nothing here fails: without git or outside a repository the facts are "unknown", and the gate
//! treats unknown as dirty and says why.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::model::tree::{TreeFacts, WorkTree};

/// What a run records about the tree it ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadFacts {
    pub commit: Option<String>,
    /// `None`: unknown (no repository, no git).
    pub dirty: Option<bool>,
}

/// Paths harness itself writes into the project; they must not make the tree dirty.
const OWN_OUTPUTS: [&str; 2] = [
    ":(exclude).harness",
    ":(exclude,glob)deployment_state_*.json",
];

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        Err(if first.contains("not a git repository") {
            format!("{} is not in a git repository", root.display())
        } else {
            format!("git {}: {first}", args.join(" "))
        })
    }
}

/// The top folder of the work tree that `dir` lies in; `None` outside a repository or without
/// git.
pub fn top_level(dir: &Path) -> Option<std::path::PathBuf> {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).ok()?;
    Some(std::path::PathBuf::from(top.trim_end_matches('\n')))
}

/// The work tree that `dir` lies in, and the files git would hand a fresh clone plus those it
/// does not ignore (`ls-files -co --exclude-standard`), relative to the top level. `None`
/// outside a repository or without git.
pub fn work_tree_files(dir: &Path) -> Option<(std::path::PathBuf, Vec<String>)> {
    let top = top_level(dir)?;
    let listed = git(&top, &["ls-files", "-z", "-co", "--exclude-standard"]).ok()?;
    let mut files: Vec<String> = listed
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    Some((top, files))
}

/// HEAD, and the project's folder inside its repository ("" at the top, else "sub/dir/").
fn locate(root: &Path) -> Result<(String, String), String> {
    let out = git(root, &["rev-parse", "--show-prefix", "HEAD"]).map_err(|e| {
        if e.contains("unknown revision") {
            "the repository has no commit yet".to_string()
        } else {
            e
        }
    })?;
    let mut lines = out.lines();
    let prefix = lines.next().unwrap_or("").trim().to_string();
    let head = lines.next().unwrap_or("").trim().to_string();
    if head.is_empty() {
        return Err("git rev-parse printed no HEAD".into());
    }
    Ok((head, prefix))
}

/// Uncommitted changes in the project's folder (tracked or untracked, not ignored), except
/// harness's own outputs. Paths are relative to the repository root.
///
/// Scoped to the project, not the repository: an app kept in a subfolder of a larger repository
/// is not dirty because a sibling changed.
fn work_tree(root: &Path) -> WorkTree {
    let mut args = vec!["status", "--porcelain=v1", "-z", "--", "."];
    args.extend(OWN_OUTPUTS);
    match git(root, &args) {
        Err(reason) => WorkTree::Unknown { reason },
        Ok(out) => {
            let mut changed = Vec::new();
            let mut entries = out.split('\0').filter(|e| !e.is_empty());
            while let Some(e) = entries.next() {
                changed.push(e.get(3..).unwrap_or(e).to_string());
                // A rename or copy is followed by its source path, which has no status.
                if e.starts_with(['R', 'C']) {
                    entries.next();
                }
            }
            if changed.is_empty() {
                WorkTree::Clean
            } else {
                WorkTree::Dirty { changed }
            }
        }
    }
}

pub fn head_facts(root: &Path) -> HeadFacts {
    let commit = locate(root).ok().map(|(head, _)| head);
    let dirty = match work_tree(root) {
        WorkTree::Clean => Some(false),
        WorkTree::Dirty { .. } => Some(true),
        WorkTree::Unknown { .. } => None,
    };
    HeadFacts { commit, dirty }
}

/// The facts the gate's clean-tree rule needs: HEAD, the work tree, and the tree of the project's
/// folder in HEAD and in each commit a candidate run was made on (a different commit with the same
/// project files is the same source).
pub fn tree_facts<'a>(root: &Path, commits: impl IntoIterator<Item = &'a str>) -> TreeFacts {
    let (head, prefix) = match locate(root) {
        Ok(found) => found,
        Err(reason) => {
            return TreeFacts {
                head: None,
                work_tree: WorkTree::Unknown { reason },
                trees: Default::default(),
            };
        }
    };
    let mut wanted: Vec<&str> = commits.into_iter().collect();
    wanted.push(&head);
    wanted.sort_unstable();
    wanted.dedup();
    let trees = tree_ids(root, &wanted, &prefix);
    TreeFacts {
        work_tree: work_tree(root),
        trees,
        head: Some(head),
    }
}

/// commit → id of the project folder's tree in that commit, for the commits this repository has;
/// one `git cat-file` for all of them.
fn tree_ids(
    root: &Path,
    commits: &[&str],
    prefix: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    // Only full hex ids: anything else in a record must not be handed to git as a revision.
    let commits: Vec<&str> = commits
        .iter()
        .copied()
        .filter(|c| c.len() >= 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    if commits.is_empty() {
        return found;
    }
    let child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch-check=%(objectname) %(objecttype)"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return found;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let folder = prefix.trim_end_matches('/');
        let input: String = commits
            .iter()
            .map(|c| {
                if folder.is_empty() {
                    format!("{c}^{{tree}}\n")
                } else {
                    format!("{c}:{folder}\n")
                }
            })
            .collect();
        let _ = stdin.write_all(input.as_bytes());
    }
    let Ok(out) = child.wait_with_output() else {
        return found;
    };
    for (commit, line) in commits
        .iter()
        .zip(String::from_utf8_lossy(&out.stdout).lines())
    {
        if let Some(tree) = line.strip_suffix(" tree") {
            found.insert(commit.to_string(), tree.to_string());
        }
    }
    found
}

/// Commit, branch, commit time and dirty flag, for `build_info.json` and the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitFacts {
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Seconds since the epoch of the HEAD commit.
    pub commit_time: Option<i64>,
    /// Uncommitted changes below the project root (harness's own outputs aside); `None` outside git.
    pub dirty: Option<bool>,
}

impl GitFacts {
    pub fn short_commit(&self) -> Option<&str> {
        self.commit.as_deref().map(|c| &c[..c.len().min(7)])
    }
}

pub fn facts(root: &Path) -> GitFacts {
    let Ok(head) = git(root, &["log", "-1", "--format=%H %ct"]) else {
        return GitFacts::default();
    };
    let mut parts = head.split_whitespace();
    let commit = parts.next().map(str::to_string);
    let commit_time = parts.next().and_then(|t| t.parse().ok());
    let branch = git(root, &["rev-parse", "--abbrev-ref", "HEAD"])
        .ok()
        .map(|b| b.trim().to_string());
    let dirty = match work_tree(root) {
        WorkTree::Unknown { .. } => None,
        WorkTree::Clean => Some(false),
        _ => Some(true),
    };
    GitFacts {
        commit,
        branch,
        commit_time,
        dirty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(ok.status.success(), "{:?}", ok);
    }

    #[test]
    fn outside_a_repository_everything_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let f = head_facts(dir.path());
        assert_eq!(
            f,
            HeadFacts {
                commit: None,
                dirty: None
            }
        );
        let t = tree_facts(dir.path(), []);
        assert!(
            matches!(t.work_tree, WorkTree::Unknown { ref reason } if reason.contains("not in a git repository")),
            "{t:?}"
        );
    }

    #[test]
    fn clean_dirty_and_trees_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sh(d, &["init", "-q"]);
        std::fs::write(d.join("a.py"), "x = 1\n").unwrap();
        sh(d, &["add", "."]);
        sh(d, &["commit", "-q", "-m", "one"]);
        let first = locate(d).unwrap().0;
        // harness's own outputs do not count as changes
        std::fs::create_dir_all(d.join(".harness/dist")).unwrap();
        std::fs::write(d.join(".harness/dist/deploy.zip"), "z").unwrap();
        std::fs::write(d.join("deployment_state_webhosting.json"), "{}").unwrap();
        assert_eq!(
            head_facts(d),
            HeadFacts {
                commit: Some(first.clone()),
                dirty: Some(false)
            }
        );

        std::fs::write(d.join("a.py"), "x = 2\n").unwrap();
        let f = tree_facts(d, [first.as_str()]);
        assert_eq!(
            f.work_tree,
            WorkTree::Dirty {
                changed: vec!["a.py".into()]
            }
        );

        sh(d, &["commit", "-q", "-am", "two"]);
        sh(d, &["commit", "-q", "--allow-empty", "-m", "three"]);
        let f = tree_facts(d, [first.as_str(), "0".repeat(40).as_str(), "HEAD~1"]);
        assert_eq!(f.work_tree, WorkTree::Clean);
        let head_tree = &f.trees[f.head.as_ref().unwrap()];
        assert_ne!(&f.trees[&first], head_tree);
        assert!(
            !f.trees.contains_key(&"0".repeat(40)),
            "unknown commits have no tree"
        );
        assert!(
            !f.trees.contains_key("HEAD~1"),
            "only full ids are looked up"
        );
    }

    #[test]
    fn a_project_in_a_subfolder_only_sees_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let app = d.join("examples/app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("a.py"), "x = 1\n").unwrap();
        std::fs::write(d.join("README"), "top\n").unwrap();
        sh(d, &["init", "-q"]);
        sh(d, &["add", "."]);
        sh(d, &["commit", "-q", "-m", "one"]);
        let first = locate(&app).unwrap().0;
        // A sibling changes and is committed: the project's files are the same.
        std::fs::write(d.join("README"), "changed\n").unwrap();
        assert_eq!(
            head_facts(&app).dirty,
            Some(false),
            "a dirty sibling is not the project"
        );
        sh(d, &["commit", "-q", "-am", "two"]);
        let f = tree_facts(&app, [first.as_str()]);
        assert_eq!(f.work_tree, WorkTree::Clean);
        assert_eq!(f.trees[&first], f.trees[f.head.as_ref().unwrap()]);
        // The project's own file changes: dirty, and after the commit, another tree.
        std::fs::write(app.join("a.py"), "x = 2\n").unwrap();
        assert_eq!(
            tree_facts(&app, []).work_tree,
            WorkTree::Dirty {
                changed: vec!["examples/app/a.py".into()]
            }
        );
        sh(d, &["commit", "-q", "-am", "three"]);
        let f = tree_facts(&app, [first.as_str()]);
        assert_ne!(f.trees[&first], f.trees[f.head.as_ref().unwrap()]);
    }

    #[test]
    fn a_repository_without_commits_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &["init", "-q"]);
        let t = tree_facts(dir.path(), []);
        assert_eq!(
            t.work_tree,
            WorkTree::Unknown {
                reason: "the repository has no commit yet".into()
            }
        );
    }
}
