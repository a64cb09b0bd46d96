//! Which tests a run runs: the test files pytest would collect from `[test] path` under the
//! project's own `python_files` and `norecursedirs`, narrowed by `PATH...`, split by
//! `--shard I/N`, filtered by `-k`. Paths are relative to the project folder, where pytest runs.
//! Pure functions of the file list, so the split is the same on every machine.
use std::path::{Path, PathBuf};

use super::pytestcfg::{self, PytestConfig};
use crate::error::{Exit, Failure};
use crate::ledger::Selection;

/// `--shard I/N`: this machine runs part `index` (1-based) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write I/N with 1 <= I <= N, e.g. 1/2");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let total: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || total == 0 || index > total {
            return Err(bad());
        }
        Ok(Shard { index, total })
    }
}

/// What the user asked to run.
#[derive(Debug, Clone, Default)]
pub struct SelectionRequest {
    pub paths: Vec<PathBuf>,
    pub keyword: Option<String>,
    pub shard: Option<Shard>,
}

/// What pytest is given, and how the ledger names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Paths relative to the project folder (pytest runs in it), possibly with `::node`
    /// suffixes.
    pub targets: Vec<String>,
    pub keyword: Option<String>,
    pub selection: Selection,
    /// Every test file the selection covers (for the summary and the shard check).
    pub files: Vec<String>,
    /// More pytest arguments, e.g. `[test] smoke` (`-m smoke`) for the restore drill.
    pub extra: Vec<String>,
}

/// The suite as pytest will collect it: `[test] path` (relative to the project) and the test
/// files below it.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The project folder (absolute, canonical): pytest's working directory.
    pub project: PathBuf,
    /// `[test] path`, relative to the project, `/`-separated; "." for the project itself.
    pub path: String,
    /// What pytest is given for the whole suite: `[test] path`, or, when that is the project
    /// itself, the config's `testpaths` (as `pytest` with no arguments would collect).
    pub roots: Vec<String>,
    pub config: PytestConfig,
    /// Every test file, relative to the project, sorted.
    pub files: Vec<String>,
}

impl Suite {
    /// The test folder (or file) on disk.
    pub fn dir(&self) -> PathBuf {
        if self.path == "." {
            self.project.clone()
        } else {
            self.project.join(&self.path)
        }
    }
}

/// Finds the suite: `test_path` under `project`, with the pytest configuration pytest would use
/// (looked up from the test folder to `top`, the top of the tree the job gets).
pub fn discover(project: &Path, test_path: &str, top: &Path) -> Result<Suite, Failure> {
    let project = project
        .canonicalize()
        .unwrap_or_else(|_| project.to_path_buf());
    let target = project.join(test_path);
    let canon = target.canonicalize().map_err(|_| {
        Failure::new(
            Exit::BadInput,
            format!(
                "the test folder {} does not exist ([test] path = \"{test_path}\")",
                target.display()
            ),
        )
        .hint("create it with your pytest + Playwright tests, or set [test] path in harness.toml")
    })?;
    let rel = canon.strip_prefix(&project).map_err(|_| {
        Failure::new(
            Exit::BadInput,
            format!(
                "[test] path = \"{test_path}\" lies outside the project {}",
                project.display()
            ),
        )
        .hint("the suite runs from the project folder; point [test] path at a folder inside it")
    })?;
    let path = match rel.to_string_lossy().replace('\\', "/") {
        r if r.is_empty() => ".".to_string(),
        r => r,
    };
    let start = if canon.is_dir() {
        canon.clone()
    } else {
        canon
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| project.clone())
    };
    let config = pytestcfg::find(&start, top);
    let roots: Vec<String> = if path == "." && !config.testpaths.is_empty() {
        config
            .testpaths
            .iter()
            .filter(|t| project.join(t).exists())
            .cloned()
            .collect()
    } else {
        vec![path.clone()]
    };
    let mut files = Vec::new();
    for root in &roots {
        let dir = project.join(root);
        if dir.is_file() {
            // pytest collects a file it is given even when python_files does not name it.
            files.push(root.clone());
        } else {
            files.extend(walk_tests(&dir, &project, &config)?);
        }
    }
    files.sort();
    files.dedup();
    Ok(Suite {
        project,
        path,
        roots,
        config,
        files,
    })
}

/// Test files below `dir` (relative to `project`, sorted): `python_files` matches, folders that
/// match `norecursedirs` or hold a virtualenv are skipped, as pytest skips them.
fn walk_tests(dir: &Path, project: &Path, config: &PytestConfig) -> Result<Vec<String>, Failure> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 || !e.file_type().is_dir() {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            !(name == "__pycache__"
                || config
                    .norecursedirs
                    .iter()
                    .any(|p| pytestcfg::matches(p, &name))
                || e.path().join("pyvenv.cfg").is_file())
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot read the test folder {}: {e}", dir.display()),
            )
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(project)
            .expect("walked under the project")
            .to_string_lossy()
            .replace('\\', "/");
        if rel.ends_with(".py")
            && config
                .python_files
                .iter()
                .any(|p| pytestcfg::matches(p, &rel))
        {
            files.push(rel);
        }
    }
    files.sort();
    Ok(files)
}

/// The files of shard `shard` out of `files` (sorted): file k (0-based) goes to shard
/// `k mod N + 1`, so the shards are disjoint, their union is every file, and sizes differ by
/// at most one file.
pub fn shard_files(files: &[String], shard: Shard) -> Vec<String> {
    files
        .iter()
        .enumerate()
        .filter(|(k, _)| (*k as u32) % shard.total == shard.index - 1)
        .map(|(_, f)| f.clone())
        .collect()
}

/// What pytest is given for a share of the files: a file named by node ids (`file.py::test`)
/// gets only those; any other file of the share is given whole.
fn share_targets(targets: &[String], share: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for f in share {
        let nodes: Vec<&String> = targets
            .iter()
            .filter(|t| t.starts_with(&format!("{f}::")))
            .collect();
        if nodes.is_empty() {
            out.push(f.clone());
        } else {
            out.extend(nodes.into_iter().cloned());
        }
    }
    out
}

/// The selection dealt over `workers` stacks with the shard function: worker w runs the files
/// of shard w/N (a node id stays with its file). Each share keeps the selection's name, so the
/// run is recorded as one. Fewer shares than `workers` when there are fewer files.
pub fn split(selected: &Selected, workers: u32) -> Vec<Selected> {
    let total = workers.clamp(1, selected.files.len().max(1) as u32);
    if total == 1 {
        return vec![selected.clone()];
    }
    (1..=total)
        .map(|index| {
            let files = shard_files(&selected.files, Shard { index, total });
            let targets = share_targets(&selected.targets, &files);
            Selected {
                targets,
                files,
                ..selected.clone()
            }
        })
        .filter(|s| !s.targets.is_empty())
        .collect()
}

/// Resolves the request against the suite's files. A relative PATH may be meant from the
/// shell's folder (`cwd`), the project or the test folder, in that order.
pub fn select(suite: &Suite, req: &SelectionRequest, cwd: &Path) -> Result<Selected, Failure> {
    let mut targets = Vec::new();
    let mut files = Vec::new();
    for p in &req.paths {
        let text = p.to_string_lossy();
        let (path_part, node) = match text.split_once("::") {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (text.to_string(), None),
        };
        let rel = relative_to_project(Path::new(&path_part), suite, cwd)?;
        let covered: Vec<String> = suite
            .files
            .iter()
            .filter(|f| rel == "." || *f == &rel || f.starts_with(&format!("{rel}/")))
            .cloned()
            .collect();
        if covered.is_empty() {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "`{text}` names no test file in {} (test files are {})",
                    suite.dir().display(),
                    suite.config.python_files.join(" or ")
                ),
            )
            .hint(
                "give a test file or folder inside the test folder ([test] path in harness.toml)",
            ));
        }
        files.extend(covered);
        targets.push(match node {
            Some(n) => format!("{rel}::{n}"),
            None => rel,
        });
    }
    if req.paths.is_empty() {
        files = suite.files.clone();
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "the test folder {} holds no test files ({}{})",
                suite.dir().display(),
                suite.config.python_files.join(" or "),
                suite
                    .config
                    .file
                    .as_ref()
                    .map(|f| format!(", as {} says", f.display()))
                    .unwrap_or_default()
            ),
        )
        .hint("add tests, or point [test] path in harness.toml at the folder that has them"));
    }

    let filtered = !req.paths.is_empty() || req.keyword.is_some();
    if let Some(shard) = req.shard {
        let mine = shard_files(&files, shard);
        if mine.is_empty() {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "shard {}/{} has no test files: the selection has only {} file(s)",
                    shard.index,
                    shard.total,
                    files.len()
                ),
            )
            .hint("use fewer shards than test files"));
        }
        let targets = share_targets(&targets, &mine);
        let selection = if filtered {
            Selection::Filtered {
                expr: describe(req, Some(shard)),
            }
        } else {
            Selection::Shard {
                index: shard.index,
                total: shard.total,
            }
        };
        return Ok(Selected {
            targets,
            keyword: req.keyword.clone(),
            selection,
            files: mine,
            extra: Vec::new(),
        });
    }
    let selection = if filtered {
        Selection::Filtered {
            expr: describe(req, None),
        }
    } else {
        Selection::Full
    };
    if targets.is_empty() {
        targets = suite.roots.clone();
    }
    Ok(Selected {
        targets,
        keyword: req.keyword.clone(),
        selection,
        files,
        extra: Vec::new(),
    })
}

/// How a filtered selection is recorded: the arguments as given.
fn describe(req: &SelectionRequest, shard: Option<Shard>) -> String {
    let mut parts = Vec::new();
    if let Some(k) = &req.keyword {
        parts.push(format!("-k {k}"));
    }
    for p in &req.paths {
        parts.push(p.display().to_string());
    }
    if let Some(s) = shard {
        parts.push(format!("--shard {}/{}", s.index, s.total));
    }
    parts.join(" ")
}

/// `path` relative to the project ("." for the project itself), or an error when it lies
/// outside the test folder: `[test] path` is the suite.
fn relative_to_project(path: &Path, suite: &Suite, cwd: &Path) -> Result<String, Failure> {
    let canon = |p: &Path| p.canonicalize().ok();
    let tests = suite.dir();
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        vec![cwd.join(path), suite.project.join(path), tests.join(path)]
    };
    let Some(found) = candidates.iter().find_map(|c| canon(c)) else {
        return Err(Failure::new(
            Exit::BadInput,
            format!("test path `{}` does not exist", path.display()),
        )
        .hint(format!(
            "paths are relative to the current folder or the project; the test folder is {}",
            tests.display()
        )));
    };
    if !found.starts_with(&tests) {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "test path `{}` lies outside the test folder {}",
                path.display(),
                tests.display()
            ),
        )
        .hint("[test] path in harness.toml is the suite; select tests inside it"));
    }
    let rel = found
        .strip_prefix(&suite.project)
        .expect("the test folder is inside the project")
        .to_string_lossy()
        .replace('\\', "/");
    Ok(if rel.is_empty() { ".".into() } else { rel })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "def test_x():\n    pass\n").unwrap();
        }
        dir
    }

    fn suite(d: &tempfile::TempDir, path: &str) -> Suite {
        discover(d.path(), path, d.path()).unwrap()
    }

    #[test]
    fn discovers_pytest_default_names_and_skips_caches() {
        let d = tree(&[
            "ui/test_a.py",
            "ui/sub/b_test.py",
            "ui/conftest.py",
            "ui/helpers.py",
            "ui/__pycache__/test_c.py",
            "ui/.venv/test_d.py",
            "ui/env/pyvenv.cfg",
            "ui/env/test_f.py",
            "ui/build/test_g.py",
            "ui/sub/test_e.py",
            "test_outside.py",
        ]);
        let s = suite(&d, "ui");
        assert_eq!(s.path, "ui");
        assert_eq!(
            s.files,
            vec!["ui/sub/b_test.py", "ui/sub/test_e.py", "ui/test_a.py"]
        );
        assert_eq!(suite(&d, ".").files.len(), 4);
    }

    #[test]
    fn the_projects_python_files_and_norecursedirs_decide() {
        let d = tree(&[
            "checks/check_a.py",
            "checks/test_b.py",
            "checks/legacy/check_c.py",
        ]);
        std::fs::write(
            d.path().join("pytest.ini"),
            "[pytest]\npython_files = check_*.py\nnorecursedirs = legacy\n",
        )
        .unwrap();
        let s = suite(&d, "checks");
        assert_eq!(s.files, vec!["checks/check_a.py"]);
        assert_eq!(
            s.config.file,
            Some(d.path().canonicalize().unwrap().join("pytest.ini"))
        );
        // A file given as [test] path is collected whatever its name.
        assert_eq!(
            suite(&d, "checks/test_b.py").files,
            vec!["checks/test_b.py"]
        );
    }

    #[test]
    fn shard_parses_and_rejects_nonsense() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, total: 3 }
        );
        for bad in ["0/2", "3/2", "1/0", "1", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn shards_are_disjoint_and_cover_every_file(n in 1usize..40, total in 1u32..8) {
            let files: Vec<String> = (0..n).map(|i| format!("test_{i:03}.py")).collect();
            let mut seen = Vec::new();
            for index in 1..=total {
                seen.extend(shard_files(&files, Shard { index, total }));
            }
            seen.sort();
            proptest::prop_assert_eq!(seen, files);
        }
    }

    #[test]
    fn workers_share_the_files_keep_node_ids_with_their_file_and_the_selection_name() {
        let d = tree(&["ui/test_a.py", "ui/test_b.py", "ui/sub/test_c.py"]);
        let s = suite(&d, "ui");
        let all = select(&s, &SelectionRequest::default(), d.path()).unwrap();
        let shares = split(&all, 2);
        assert_eq!(shares.len(), 2);
        let mut seen: Vec<String> = shares.iter().flat_map(|w| w.targets.clone()).collect();
        seen.sort();
        assert_eq!(seen, all.files);
        assert!(shares.iter().all(|w| w.selection == Selection::Full));
        // More workers than files: one per file.
        assert_eq!(split(&all, 8).len(), 3);
        assert_eq!(split(&all, 1), vec![all.clone()]);
        let nodes = SelectionRequest {
            paths: vec!["ui/test_a.py::test_x".into(), "ui/test_b.py".into()],
            ..Default::default()
        };
        let sel = select(&s, &nodes, d.path()).unwrap();
        let shares = split(&sel, 2);
        let targets: Vec<Vec<String>> = shares.iter().map(|w| w.targets.clone()).collect();
        assert_eq!(targets, [["ui/test_a.py::test_x"], ["ui/test_b.py"]]);
    }

    #[test]
    fn full_run_is_recorded_as_full_and_filters_as_filtered() {
        let d = tree(&["ui/test_a.py", "ui/test_b.py", "ui/sub/test_c.py"]);
        let s = suite(&d, "ui");
        let all = select(&s, &SelectionRequest::default(), d.path()).unwrap();
        assert_eq!(all.selection, Selection::Full);
        assert_eq!(all.targets, vec!["ui"]);
        assert_eq!(all.files.len(), 3);

        let k = SelectionRequest {
            keyword: Some("login".into()),
            ..Default::default()
        };
        let sel = select(&s, &k, d.path()).unwrap();
        assert_eq!(
            sel.selection,
            Selection::Filtered {
                expr: "-k login".into()
            }
        );

        let p = SelectionRequest {
            paths: vec![PathBuf::from("ui/sub")],
            ..Default::default()
        };
        let sel = select(&s, &p, d.path()).unwrap();
        assert_eq!(sel.targets, vec!["ui/sub"]);
        assert_eq!(sel.files, vec!["ui/sub/test_c.py"]);
        // Relative to the test folder works too.
        let p = SelectionRequest {
            paths: vec![PathBuf::from("sub")],
            ..Default::default()
        };
        assert_eq!(
            select(&s, &p, Path::new("/")).unwrap().targets,
            vec!["ui/sub"]
        );
    }

    #[test]
    fn shard_gives_its_files_as_targets_and_is_recorded_as_shard() {
        let d = tree(&["ui/test_a.py", "ui/test_b.py", "ui/test_c.py"]);
        let s = suite(&d, "ui");
        let req = |index| SelectionRequest {
            shard: Some(Shard { index, total: 2 }),
            ..Default::default()
        };
        let one = select(&s, &req(1), d.path()).unwrap();
        let two = select(&s, &req(2), d.path()).unwrap();
        assert_eq!(one.targets, vec!["ui/test_a.py", "ui/test_c.py"]);
        assert_eq!(two.targets, vec!["ui/test_b.py"]);
        assert_eq!(one.selection, Selection::Shard { index: 1, total: 2 });
        let e = select(
            &s,
            &SelectionRequest {
                shard: Some(Shard { index: 4, total: 4 }),
                ..Default::default()
            },
            d.path(),
        )
        .unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
    }

    #[test]
    fn paths_outside_the_test_folder_or_missing_are_refused() {
        let d = tree(&["ui/test_a.py", "other/test_b.py"]);
        let s = suite(&d, "ui");
        let req = |p: &str| SelectionRequest {
            paths: vec![PathBuf::from(p)],
            ..Default::default()
        };
        let e = select(&s, &req("other/test_b.py"), d.path()).unwrap_err();
        assert!(
            e.message.contains("outside the test folder"),
            "{}",
            e.message
        );
        let e = select(&s, &req("ui/nope.py"), d.path()).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let ok = select(&s, &req("ui/test_a.py::test_x"), d.path()).unwrap();
        assert_eq!(ok.targets, vec!["ui/test_a.py::test_x"]);
        let e = discover(d.path(), "missing", d.path()).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
    }
}
