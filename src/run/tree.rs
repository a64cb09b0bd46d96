//! The job's own copy of the project's tree: what the suite may read and write.
//!
//! Suites written for a checkout expect one: pytest-cov writes `.coverage` beside the config,
//! tests save screenshots and storage-state files beside themselves, and a suite that is a
//! package imports from the repository root. The job therefore gets a writable copy, never the
//! checkout itself: the git top level (or the project folder outside git) with what git would
//! hand a fresh clone plus the files it does not ignore, `[test] include` globs, and every
//! requirements file the job reads. It reaches the container as an archive upload through the
//! Engine API (stack::Upload), so it works the same with a remote engine.
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Exit, Failure};

/// Files of the tree, relative to its root.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The git top level, or the project folder.
    pub root: PathBuf,
    /// The project folder relative to `root` ("" when they are the same), `/`-separated.
    pub project: String,
    pub files: Vec<String>,
    /// Total size of the files, for the progress line.
    pub bytes: u64,
    /// Whether the list came from git.
    pub from_git: bool,
}

/// Never copied: harness's own state (runs, ledger, backups, the CA key) and the state files
/// with generated secrets. The job gets its own copy of the state file elsewhere (/state).
fn excluded(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    rel.split('/').any(|c| c == ".harness" || c == ".git")
        || (name.starts_with("deployment_state_") && name.ends_with(".json"))
}

/// Folders skipped when the project is not in git: what `.gitignore` would usually hold.
fn skipped_dir(name: &str, path: &Path) -> bool {
    matches!(
        name,
        ".git" | ".harness" | "__pycache__" | "node_modules" | ".pytest_cache" | ".mypy_cache"
    ) || path.join("pyvenv.cfg").is_file()
}

/// Lists the tree for `config`'s project. `extra` (absolute paths, e.g. requirements files)
/// must lie inside the tree.
pub fn collect(config: &Config, extra: &[PathBuf]) -> Result<Tree, Failure> {
    let project = config
        .root
        .canonicalize()
        .unwrap_or_else(|_| config.root.clone());
    let (root, mut files, from_git) = match crate::git::work_tree_files(&project) {
        Some((top, files)) => (top.canonicalize().unwrap_or(top), files, true),
        None => (project.clone(), walk(&project, &project), false),
    };
    let project_rel = project
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    let prefix = if project_rel.is_empty() {
        String::new()
    } else {
        format!("{project_rel}/")
    };

    if !config.test.include.is_empty() {
        let mut set = globset::GlobSetBuilder::new();
        for g in &config.test.include {
            set.add(globset::Glob::new(g.get_ref()).map_err(|e| {
                config.error_at(g.span(), format!("[test] include: bad glob: {e}"))
            })?);
        }
        let set = set
            .build()
            .map_err(|e| Failure::new(Exit::BadInput, format!("[test] include: {e}")))?;
        for rel in walk(&project, &project) {
            if set.is_match(&rel) {
                files.push(format!("{prefix}{rel}"));
            }
        }
    }
    for path in extra {
        let canon = path.canonicalize().unwrap_or_else(|_| path.clone());
        let rel = canon.strip_prefix(&root).map_err(|_| {
            Failure::new(
                Exit::BadInput,
                format!(
                    "{} lies outside {}, the tree the test job gets a copy of",
                    path.display(),
                    root.display()
                ),
            )
            .hint("keep the test requirements (and what they include) inside the repository")
        })?;
        files.push(rel.to_string_lossy().replace('\\', "/"));
    }
    files.retain(|f| !excluded(f));
    files.sort();
    files.dedup();
    // git lists tracked files that were deleted in the work tree; a copy cannot hold those.
    let mut bytes = 0;
    files.retain(|f| match std::fs::symlink_metadata(root.join(f)) {
        Ok(m) if m.is_file() || m.file_type().is_symlink() => {
            bytes += m.len();
            true
        }
        _ => false,
    });
    Ok(Tree {
        root,
        project: project_rel,
        files,
        bytes,
        from_git,
    })
}

/// Every file below `dir`, relative to `base`, skipping [`skipped_dir`] folders.
fn walk(dir: &Path, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && skipped_dir(&e.file_name().to_string_lossy(), e.path()))
        });
    for entry in walker.flatten() {
        if entry.file_type().is_dir() {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, extra: &str) -> Config {
        let text = format!(
            "[package]\nsources = [{{ from = \"src\", to = \"src\" }}]\n\
             entry_point = {{ from = \"app.py\", to = \"passenger_wsgi.py\" }}\n{extra}"
        );
        std::fs::write(dir.join("harness.toml"), &text).unwrap();
        Config::load(dir, None).unwrap()
    }

    fn write(dir: &Path, files: &[&str]) {
        for f in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.as_bytes()).unwrap();
        }
    }

    #[test]
    fn outside_git_the_project_folder_is_the_tree_without_caches_venvs_and_secrets() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        write(
            &root,
            &[
                "app.py",
                "ui_tests/test_a.py",
                "ui_tests/__pycache__/x.pyc",
                ".harness/ledger.db",
                "deployment_state_local.json",
                ".venv/pyvenv.cfg",
                ".venv/lib/x.py",
                "data/seed.json",
            ],
        );
        let c = config(&root, "");
        let t = collect(&c, &[]).unwrap();
        assert!(!t.from_git);
        assert_eq!(t.project, "");
        assert_eq!(
            t.files,
            [
                "app.py",
                "data/seed.json",
                "harness.toml",
                "ui_tests/test_a.py"
            ]
        );
    }

    #[test]
    fn in_git_the_top_level_is_copied_with_untracked_files_but_not_ignored_ones() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let project = top.join("apps/shop");
        write(
            &top,
            &[
                "README.md",
                "apps/shop/app.py",
                "apps/shop/ui_tests/test_a.py",
                "apps/shop/ui_tests/fixtures/big.json",
                "apps/shop/ignored.log",
                "apps/shop/requirements-dev.txt",
            ],
        );
        std::fs::write(top.join(".gitignore"), "*.log\nfixtures/\n").unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(&top)
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "README.md", "apps/shop/app.py"]);
        let c = config(
            &project,
            "[test]\ninclude = [\"ui_tests/fixtures/*.json\"]\n",
        );
        let t = collect(&c, &[project.join("requirements-dev.txt")]).unwrap();
        assert!(t.from_git);
        assert_eq!(t.project, "apps/shop");
        assert_eq!(
            t.files,
            [
                ".gitignore",
                "README.md",
                "apps/shop/app.py",
                "apps/shop/harness.toml",
                "apps/shop/requirements-dev.txt",
                "apps/shop/ui_tests/fixtures/big.json",
                "apps/shop/ui_tests/test_a.py",
            ]
        );
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("r.txt"), "x\n").unwrap();
        let e = collect(&c, &[outside.path().join("r.txt")]).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(e.message.contains("outside"), "{}", e.message);
    }
}
