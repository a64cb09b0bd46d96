//! The project's own pytest configuration, found the way pytest finds it, for the few settings
//! that decide which files pytest collects (`python_files`, `norecursedirs`, `testpaths`).
//! harness needs them before anything runs: `--shard` deals the files pytest would collect,
//! and a selection is checked against them. pytest itself reads the whole file in the job.
use std::path::{Path, PathBuf};

/// Where the configuration came from, and what it says about collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PytestConfig {
    /// The file pytest will use, when there is one.
    pub file: Option<PathBuf>,
    pub python_files: Vec<String>,
    pub norecursedirs: Vec<String>,
    pub testpaths: Vec<String>,
}

impl Default for PytestConfig {
    fn default() -> Self {
        Self {
            file: None,
            python_files: vec!["test_*.py".into(), "*_test.py".into()],
            norecursedirs: [
                "*.egg",
                ".*",
                "_darcs",
                "build",
                "CVS",
                "dist",
                "node_modules",
                "venv",
                "{arch}",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            testpaths: Vec::new(),
        }
    }
}

/// The keys this module reads, and how pytest names the section in each file kind.
#[derive(Clone, Copy)]
enum Kind {
    /// pytest.toml / .pytest.toml: `[pytest]` (pytest 9).
    PytestToml,
    /// pytest.ini / .pytest.ini: `[pytest]`, and the file counts even without it.
    PytestIni,
    /// pyproject.toml: `[tool.pytest.ini_options]`, or `[tool.pytest]` (pytest 9).
    Pyproject,
    /// tox.ini: `[pytest]`.
    Tox,
    /// setup.cfg: `[tool:pytest]`.
    SetupCfg,
}

/// pytest's order within one folder.
const CANDIDATES: [(&str, Kind); 7] = [
    ("pytest.toml", Kind::PytestToml),
    (".pytest.toml", Kind::PytestToml),
    ("pytest.ini", Kind::PytestIni),
    (".pytest.ini", Kind::PytestIni),
    ("pyproject.toml", Kind::Pyproject),
    ("tox.ini", Kind::Tox),
    ("setup.cfg", Kind::SetupCfg),
];

/// Looks for the configuration from `start` (the folder of what pytest is asked to collect)
/// up to `stop` (the top of the tree the job gets), as pytest does from the common ancestor
/// of its arguments. Files that cannot be read or parsed are skipped, as they do not exist for
/// the purpose of finding test files; pytest reports them itself.
pub fn find(start: &Path, stop: &Path) -> PytestConfig {
    let mut dir = Some(start);
    while let Some(d) = dir {
        for (name, kind) in CANDIDATES {
            let path = d.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(mut cfg) = parse(&text, kind) {
                cfg.file = Some(path);
                return cfg;
            }
        }
        if d == stop {
            break;
        }
        dir = d.parent();
    }
    PytestConfig::default()
}

/// The settings of one file, or `None` when it holds no pytest section (so pytest would look
/// further up).
fn parse(text: &str, kind: Kind) -> Option<PytestConfig> {
    let values: Vec<(String, Vec<String>)> = match kind {
        Kind::PytestToml | Kind::Pyproject => {
            let doc: toml::Table = text.parse().ok()?;
            let table = match kind {
                Kind::PytestToml => doc.get("pytest")?.as_table()?.clone(),
                _ => {
                    let tool = doc.get("tool")?.get("pytest")?.as_table()?;
                    match tool.get("ini_options").and_then(|t| t.as_table()) {
                        Some(ini) => ini.clone(),
                        None => tool.clone(),
                    }
                }
            };
            table
                .iter()
                .map(|(k, v)| {
                    let list = match v {
                        toml::Value::String(s) => {
                            s.split_whitespace().map(str::to_string).collect()
                        }
                        toml::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                        _ => Vec::new(),
                    };
                    (k.clone(), list)
                })
                .collect()
        }
        Kind::PytestIni | Kind::Tox | Kind::SetupCfg => {
            let section = match kind {
                Kind::SetupCfg => "tool:pytest",
                _ => "pytest",
            };
            match ini_section(text, section) {
                Some(v) => v,
                // pytest.ini is the config even without a [pytest] section.
                None if matches!(kind, Kind::PytestIni) => Vec::new(),
                None => return None,
            }
        }
    };
    let mut cfg = PytestConfig::default();
    for (key, list) in values {
        match key.as_str() {
            "python_files" => cfg.python_files = list,
            "norecursedirs" => cfg.norecursedirs = list,
            "testpaths" => cfg.testpaths = list,
            _ => {}
        }
    }
    Some(cfg)
}

/// The keys of `[section]` of an INI file as pytest's iniconfig reads it: `key = value` or
/// `key: value`, indented lines continue a value, `#` and `;` start comment lines. Values are
/// split on whitespace (pytest's "args" and "linelist" types both split so).
fn ini_section(text: &str, section: &str) -> Option<Vec<(String, Vec<String>)>> {
    let mut in_section = false;
    let mut found = false;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') && !line.starts_with([' ', '\t']) {
            in_section = trimmed[1..trimmed.len() - 1].trim() == section;
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(trimmed);
            }
            continue;
        }
        let split = trimmed.find(['=', ':']);
        if let Some(i) = split {
            out.push((
                trimmed[..i].trim().to_string(),
                trimmed[i + 1..].trim().to_string(),
            ));
        }
    }
    found.then(|| {
        out.into_iter()
            .map(|(k, v)| (k, v.split_whitespace().map(str::to_string).collect()))
            .collect()
    })
}

/// pytest's `fnmatch_ex`: a pattern without `/` matches the file name, one with `/` the path.
pub fn matches(pattern: &str, rel_path: &str) -> bool {
    let target = if pattern.contains('/') {
        rel_path
    } else {
        rel_path.rsplit('/').next().unwrap_or(rel_path)
    };
    fnmatch(pattern.as_bytes(), target.as_bytes())
}

/// Python's `fnmatch`: `*`, `?`, `[seq]`, `[!seq]`; `*` also crosses `/`.
fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| fnmatch(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && fnmatch(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == b']').map(|i| i + 2) else {
                return s.first() == Some(&b'[') && fnmatch(&p[1..], &s[1..]);
            };
            let Some(&c) = s.first() else { return false };
            let (negate, set) = match p[1] {
                b'!' => (true, &p[2..close]),
                _ => (false, &p[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && fnmatch(&p[close + 1..], &s[1..])
        }
        Some(&lit) => s.first() == Some(&lit) && fnmatch(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/config-homes")
            .join(name)
    }

    #[test]
    fn the_config_homes_each_name_their_own_test_files() {
        for (dir, file) in [
            ("pyproject-toml", "pyproject.toml"),
            ("setup-cfg", "setup.cfg"),
            ("tox-ini", "tox.ini"),
        ] {
            let root = fixture(dir);
            let cfg = find(&root.join("checks"), &root);
            assert_eq!(cfg.file, Some(root.join(file)), "{dir}");
            assert_eq!(cfg.python_files, ["check_*.py"], "{dir}");
            assert_eq!(cfg.testpaths, ["checks"], "{dir}");
        }
    }

    #[test]
    fn pytest_ini_wins_in_its_folder_and_counts_even_without_a_section() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pytest.ini"), "# nothing\n").unwrap();
        std::fs::write(
            d.path().join("tox.ini"),
            "[pytest]\npython_files = check_*.py\n",
        )
        .unwrap();
        let cfg = find(d.path(), d.path());
        assert_eq!(cfg.file, Some(d.path().join("pytest.ini")));
        assert_eq!(cfg.python_files, ["test_*.py", "*_test.py"]);
    }

    #[test]
    fn a_file_without_a_pytest_section_is_passed_over_for_the_parent() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("setup.cfg"), "[metadata]\nname = x\n").unwrap();
        std::fs::write(sub.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
        std::fs::write(
            d.path().join("setup.cfg"),
            "[tool:pytest]\npython_files =\n    spec_*.py\n    *_spec.py\nnorecursedirs = legacy\n",
        )
        .unwrap();
        let cfg = find(&sub, d.path());
        assert_eq!(cfg.file, Some(d.path().join("setup.cfg")));
        assert_eq!(cfg.python_files, ["spec_*.py", "*_spec.py"]);
        assert_eq!(cfg.norecursedirs, ["legacy"]);
        // Not above the tree the job gets.
        assert_eq!(find(&sub, &sub), PytestConfig::default());
    }

    #[test]
    fn pytest_9_native_toml_tables() {
        let cfg = parse(
            "[tool.pytest]\npython_files = [\"it_*.py\"]\ntestpaths = [\"it\"]\n",
            Kind::Pyproject,
        )
        .unwrap();
        assert_eq!(cfg.python_files, ["it_*.py"]);
        let cfg = parse(
            "[pytest]\npython_files = \"a_*.py b_*.py\"\n",
            Kind::PytestToml,
        )
        .unwrap();
        assert_eq!(cfg.python_files, ["a_*.py", "b_*.py"]);
    }

    #[test]
    fn fnmatch_as_python_has_it() {
        assert!(matches("test_*.py", "ui/test_a.py"));
        assert!(matches("*_test.py", "a_test.py"));
        assert!(!matches("test_*.py", "ui/a_test.py"));
        assert!(matches("check_[ab].py", "check_b.py"));
        assert!(!matches("check_[!ab].py", "check_b.py"));
        assert!(matches("ui/*/test_?.py", "ui/x/y/test_1.py"));
        assert!(matches(".*", ".venv"));
    }
}
