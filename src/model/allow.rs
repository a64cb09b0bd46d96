//! The allow-list: which differences between the local and webhosting packages are expected.
//! `[parity] allow` and `[parity] target_files` in harness.toml (docs/config.md).
use globset::{Glob, GlobMatcher};

/// The rules that apply when `[parity] allow` is not given.
pub const DEFAULT_ALLOW: [&str; 5] = [
    "database_content",
    "build_info.built_at",
    "build_info.target",
    "build_info.build_id",
    "target_files",
];

#[derive(Debug, Clone)]
enum Rule {
    /// The database file's bytes (its schema is still compared).
    DatabaseContent,
    /// One build_info.json field (flattened: `fingerprints.schema`).
    BuildInfo(String),
    /// Files matching `[parity] target_files`.
    TargetFiles,
    /// Any file difference under a glob.
    File(GlobMatcher),
    /// A schema object: `table`, `table.column`, an index, trigger or view name.
    Schema(GlobMatcher),
}

#[derive(Debug, Clone)]
pub struct AllowList {
    rules: Vec<(String, Rule)>,
    target_files: Vec<GlobMatcher>,
}

impl Default for AllowList {
    fn default() -> Self {
        AllowList::parse(DEFAULT_ALLOW, std::iter::empty::<&str>()).expect("defaults parse")
    }
}

impl AllowList {
    /// Parses allow rules and target-file globs; the error names the entry and says what is
    /// accepted.
    pub fn parse<'a>(
        allow: impl IntoIterator<Item = &'a str>,
        target_files: impl IntoIterator<Item = &'a str>,
    ) -> Result<AllowList, String> {
        let mut rules = Vec::new();
        for raw in allow {
            let rule = if raw == "database_content" {
                Rule::DatabaseContent
            } else if raw == "target_files" {
                Rule::TargetFiles
            } else if let Some(field) = raw.strip_prefix("build_info.") {
                if field.is_empty() {
                    return Err(format!("`{raw}` names no build_info.json field"));
                }
                Rule::BuildInfo(field.to_string())
            } else if let Some(g) = raw.strip_prefix("file:") {
                Rule::File(glob(raw, g)?)
            } else if let Some(g) = raw.strip_prefix("schema:") {
                Rule::Schema(glob(raw, g)?)
            } else {
                return Err(format!(
                    "unknown allow rule `{raw}`: use database_content, target_files, \
                     build_info.<field>, file:<glob> or schema:<glob>"
                ));
            };
            rules.push((raw.to_string(), rule));
        }
        let target_files = target_files
            .into_iter()
            .map(|g| glob(g, g))
            .collect::<Result<_, _>>()?;
        Ok(AllowList {
            rules,
            target_files,
        })
    }

    /// The rule that allows the database's content to differ.
    pub fn database_content(&self) -> Option<&str> {
        self.find(|r| matches!(r, Rule::DatabaseContent))
    }

    pub fn build_info(&self, field: &str) -> Option<&str> {
        self.find(|r| matches!(r, Rule::BuildInfo(f) if f == field))
    }

    /// The rule that allows a file difference at `path`.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.find(|r| match r {
            Rule::TargetFiles => self.target_files.iter().any(|g| g.is_match(path)),
            Rule::File(g) => g.is_match(path),
            _ => false,
        })
    }

    pub fn schema(&self, name: &str) -> Option<&str> {
        self.find(|r| matches!(r, Rule::Schema(g) if g.is_match(name)))
    }

    fn find(&self, pred: impl Fn(&Rule) -> bool) -> Option<&str> {
        self.rules
            .iter()
            .find(|(_, r)| pred(r))
            .map(|(raw, _)| raw.as_str())
    }
}

fn glob(entry: &str, pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() {
        return Err(format!("`{entry}` has an empty glob"));
    }
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad glob in `{entry}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_content_time_target_and_declared_files_only() {
        let a = AllowList::default();
        assert_eq!(a.database_content(), Some("database_content"));
        assert_eq!(a.build_info("built_at"), Some("build_info.built_at"));
        assert_eq!(a.build_info("build_id"), Some("build_info.build_id"));
        assert_eq!(a.build_info("target"), Some("build_info.target"));
        assert_eq!(a.build_info("git_commit"), None);
        assert_eq!(a.build_info("pythons"), None);
        // No target files are declared by default, so no file is allowed to differ.
        assert_eq!(a.file("src/app/config.py"), None);
        assert_eq!(a.schema("users.email"), None);
    }

    #[test]
    fn declared_target_files_and_globs_allow_files() {
        let a = AllowList::parse(
            ["target_files", "file:static/build-*.css", "schema:debug_*"],
            ["src/app/target_*.py"],
        )
        .unwrap();
        assert_eq!(a.file("src/app/target_local.py"), Some("target_files"));
        assert_eq!(
            a.file("static/build-1.css"),
            Some("file:static/build-*.css")
        );
        assert_eq!(a.file("src/app/other.py"), None);
        assert_eq!(a.schema("debug_log"), Some("schema:debug_*"));
        assert_eq!(a.schema("debug_log.msg"), Some("schema:debug_*"));
        assert_eq!(
            a.database_content(),
            None,
            "an explicit list replaces the defaults"
        );
    }

    #[test]
    fn target_files_without_the_rule_allow_nothing() {
        let a = AllowList::parse(["database_content"], ["src/x.py"]).unwrap();
        assert_eq!(a.file("src/x.py"), None);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = AllowList::parse(["databse_content"], []).unwrap_err();
        assert!(
            e.contains("databse_content") && e.contains("file:<glob>"),
            "{e}"
        );
        assert!(
            AllowList::parse(["build_info."], [])
                .unwrap_err()
                .contains("no build_info")
        );
        assert!(
            AllowList::parse(["file:"], [])
                .unwrap_err()
                .contains("empty glob")
        );
        assert!(
            AllowList::parse(["file:a[b"], [])
                .unwrap_err()
                .contains("bad glob")
        );
        assert!(
            AllowList::parse([], ["x["])
                .unwrap_err()
                .contains("bad glob")
        );
    }
}
