//! Which tests a run runs: the test files found in the project's test folder, narrowed by
//! `PATH...`, split by `--shard I/N`, filtered by `-k`. Pure functions of the file list, so the
//! split is the same on every machine.
use std::path::{Path, PathBuf};

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
    /// Paths relative to the test folder (pytest runs in it), possibly with `::node` suffixes.
    pub targets: Vec<String>,
    pub keyword: Option<String>,
    pub selection: Selection,
    /// Every test file the selection covers (for the summary and the shard check).
    pub files: Vec<String>,
    /// More pytest arguments, e.g. `[test] smoke` (`-m smoke`) for the restore drill.
    pub extra: Vec<String>,
}

/// pytest's default `python_files`: `test_*.py` and `*_test.py`.
fn is_test_file(name: &str) -> bool {
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// Every test file under `dir`, relative to it, sorted; hidden folders, caches and venvs are
/// skipped as pytest's `norecursedirs` does.
pub fn discover(dir: &Path) -> Result<Vec<String>, Failure> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && (name.starts_with('.')
                        || name == "__pycache__"
                        || name == "node_modules"
                        || name == "venv"
                        || name.ends_with(".egg-info")))
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot read the test folder {}: {e}", dir.display()),
            )
        })?;
        if entry.file_type().is_file() && is_test_file(&entry.file_name().to_string_lossy()) {
            let rel = entry.path().strip_prefix(dir).expect("walked under dir");
            files.push(rel.to_string_lossy().replace('\\', "/"));
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

/// Resolves the request against the test folder's files. `cwd` and `project` are where a
/// relative PATH may be meant from (the shell's folder first, then the project root).
pub fn select(
    tests_dir: &Path,
    all_files: &[String],
    req: &SelectionRequest,
    cwd: &Path,
    project: &Path,
) -> Result<Selected, Failure> {
    let mut targets = Vec::new();
    let mut files = Vec::new();
    for p in &req.paths {
        let text = p.to_string_lossy();
        let (path_part, node) = match text.split_once("::") {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (text.to_string(), None),
        };
        let rel = relative_to_tests(Path::new(&path_part), tests_dir, cwd, project)?;
        let covered: Vec<String> = all_files
            .iter()
            .filter(|f| rel.is_empty() || *f == &rel || f.starts_with(&format!("{rel}/")))
            .cloned()
            .collect();
        if covered.is_empty() {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "`{text}` names no test file in {} (test files are test_*.py or *_test.py)",
                    tests_dir.display()
                ),
            )
            .hint(
                "give a test file or folder inside the test folder ([test] path in harness.toml)",
            ));
        }
        files.extend(covered);
        targets.push(match node {
            Some(n) => format!("{rel}::{n}"),
            None if rel.is_empty() => ".".to_string(),
            None => rel,
        });
    }
    if req.paths.is_empty() {
        files = all_files.to_vec();
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "the test folder {} holds no test files (test_*.py or *_test.py)",
                tests_dir.display()
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
        // A node id inside a file (`file.py::test`) narrows that file; keep it when sharding.
        let node_targets: Vec<&String> = targets.iter().filter(|t| t.contains("::")).collect();
        let targets = if node_targets.is_empty() {
            mine.clone()
        } else {
            node_targets
                .into_iter()
                .filter(|t| mine.iter().any(|f| t.starts_with(&format!("{f}::"))))
                .cloned()
                .collect()
        };
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

/// `path` relative to the test folder ("" for the folder itself), or an error when it lies
/// outside: only the test folder is mounted into the job.
fn relative_to_tests(
    path: &Path,
    tests_dir: &Path,
    cwd: &Path,
    project: &Path,
) -> Result<String, Failure> {
    let canon = |p: &Path| p.canonicalize().ok();
    let tests = canon(tests_dir).unwrap_or_else(|| tests_dir.to_path_buf());
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        vec![cwd.join(path), project.join(path), tests_dir.join(path)]
    };
    let found = candidates.iter().find_map(|c| canon(c));
    let Some(found) = found else {
        return Err(Failure::new(
            Exit::BadInput,
            format!("test path `{}` does not exist", path.display()),
        )
        .hint(format!(
            "paths are relative to the current folder or the project; the test folder is {}",
            tests_dir.display()
        )));
    };
    match found.strip_prefix(&tests) {
        Ok(rel) => Ok(rel.to_string_lossy().replace('\\', "/")),
        Err(_) => Err(Failure::new(
            Exit::BadInput,
            format!(
                "test path `{}` lies outside the test folder {}",
                path.display(),
                tests.display()
            ),
        )
        .hint("only the test folder ([test] path in harness.toml) is mounted into the test job")),
    }
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

    #[test]
    fn discovers_pytest_default_names_and_skips_caches() {
        let d = tree(&[
            "test_a.py",
            "sub/b_test.py",
            "conftest.py",
            "helpers.py",
            "__pycache__/test_c.py",
            ".venv/test_d.py",
            "sub/test_e.py",
        ]);
        assert_eq!(
            discover(d.path()).unwrap(),
            vec!["sub/b_test.py", "sub/test_e.py", "test_a.py"]
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
    fn full_run_is_recorded_as_full_and_filters_as_filtered() {
        let d = tree(&["test_a.py", "test_b.py", "sub/test_c.py"]);
        let files = discover(d.path()).unwrap();
        let all = select(
            d.path(),
            &files,
            &SelectionRequest::default(),
            d.path(),
            d.path(),
        )
        .unwrap();
        assert_eq!(all.selection, Selection::Full);
        assert!(all.targets.is_empty());
        assert_eq!(all.files.len(), 3);

        let k = SelectionRequest {
            keyword: Some("login".into()),
            ..Default::default()
        };
        let s = select(d.path(), &files, &k, d.path(), d.path()).unwrap();
        assert_eq!(
            s.selection,
            Selection::Filtered {
                expr: "-k login".into()
            }
        );

        let p = SelectionRequest {
            paths: vec![PathBuf::from("sub")],
            ..Default::default()
        };
        let s = select(d.path(), &files, &p, d.path(), d.path()).unwrap();
        assert_eq!(s.targets, vec!["sub"]);
        assert_eq!(s.files, vec!["sub/test_c.py"]);
    }

    #[test]
    fn shard_gives_its_files_as_targets_and_is_recorded_as_shard() {
        let d = tree(&["test_a.py", "test_b.py", "test_c.py"]);
        let files = discover(d.path()).unwrap();
        let req = |index| SelectionRequest {
            shard: Some(Shard { index, total: 2 }),
            ..Default::default()
        };
        let one = select(d.path(), &files, &req(1), d.path(), d.path()).unwrap();
        let two = select(d.path(), &files, &req(2), d.path(), d.path()).unwrap();
        assert_eq!(one.targets, vec!["test_a.py", "test_c.py"]);
        assert_eq!(two.targets, vec!["test_b.py"]);
        assert_eq!(one.selection, Selection::Shard { index: 1, total: 2 });
        let three = select(
            d.path(),
            &files,
            &SelectionRequest {
                shard: Some(Shard { index: 4, total: 4 }),
                ..Default::default()
            },
            d.path(),
            d.path(),
        )
        .unwrap_err();
        assert_eq!(three.exit, Exit::BadInput);
    }

    #[test]
    fn paths_outside_the_test_folder_or_missing_are_refused() {
        let d = tree(&["ui/test_a.py", "other/test_b.py"]);
        let tests = d.path().join("ui");
        let files = discover(&tests).unwrap();
        let req = |p: &str| SelectionRequest {
            paths: vec![PathBuf::from(p)],
            ..Default::default()
        };
        let e = select(&tests, &files, &req("other/test_b.py"), d.path(), d.path()).unwrap_err();
        assert!(
            e.message.contains("outside the test folder"),
            "{}",
            e.message
        );
        let e = select(&tests, &files, &req("ui/nope.py"), d.path(), d.path()).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let ok = select(
            &tests,
            &files,
            &req("ui/test_a.py::test_x"),
            d.path(),
            d.path(),
        )
        .unwrap();
        assert_eq!(ok.targets, vec!["test_a.py::test_x"]);
    }
}
