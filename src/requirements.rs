//! pip requirements files, read as pip reads them: `-r`/`-c` includes (relative to the file that
//! names them), line continuations, comments and `${VAR}` expansion. Both users of requirements
//! go through here: the package's wheels (`[package] requirements`) and the test job's venv
//! (`[test] requirements`).
//!
//! harness never re-implements pip's install logic: pip still reads the files. What this module
//! adds is what pip cannot give: every file a set of requirements reads (so cache keys and the
//! job's copy of the tree cover all of them), and a refusal, with file:line, of lines a cache
//! keyed by content cannot stand for (`-e`, VCS URLs, includes from a URL).
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Exit, Failure};

/// One file pip would read, in the order pip reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFile {
    /// Absolute.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Named by `-c` (or included from a constraints file).
    pub constraint: bool,
}

/// The requirements of one config key, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementSet {
    /// Where relative names in the cache key start (the project), so two clones of one project
    /// share their caches.
    pub base: PathBuf,
    /// The files named in harness.toml (absolute), in order: what pip is given with `-r`.
    pub top: Vec<PathBuf>,
    /// Every file read, top files first, each once.
    pub files: Vec<ReadFile>,
    /// `${VAR}` references and the values they had (pip expands them when it reads the file).
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("cannot read the requirements file {path}{at}: {source}")]
    Read {
        path: PathBuf,
        /// ` (named at other.txt:3)`, for includes.
        at: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {what}")]
    Refused {
        file: PathBuf,
        line: usize,
        what: String,
        hint: &'static str,
    },
}

impl From<RequirementsError> for Failure {
    fn from(e: RequirementsError) -> Failure {
        let message = e.to_string();
        match e {
            RequirementsError::Read { .. } => Failure::new(Exit::BadInput, message)
                .hint("create the file, or fix the path (includes are relative to the file that names them)"),
            RequirementsError::Refused { hint, .. } => {
                Failure::new(Exit::BadInput, message).hint(hint)
            }
        }
    }
}

impl RequirementSet {
    /// The bytes a cache key is made of. For one file with no includes and no variables this is
    /// the file's content, so caches keyed before includes were followed stay valid.
    pub fn key_material(&self) -> Vec<u8> {
        if self.files.len() == 1 && self.env.is_empty() {
            return self.files[0].bytes.clone();
        }
        let mut h = Sha256::new();
        let mut field = |label: &[u8], bytes: &[u8]| {
            h.update(label);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        let name = |p: &Path| {
            p.strip_prefix(&self.base)
                .unwrap_or(p)
                .as_os_str()
                .as_encoded_bytes()
                .to_vec()
        };
        for top in &self.top {
            field(b"top", &name(top));
        }
        for f in &self.files {
            field(
                if f.constraint { b"constraint" } else { b"file" },
                &name(&f.path),
            );
            field(b"bytes", &f.bytes);
        }
        for (k, v) in &self.env {
            field(b"env", k.as_bytes());
            field(b"value", v.as_bytes());
        }
        format!("harness-requirements/1:{}", hex::encode(h.finalize())).into_bytes()
    }

    /// sha256 of [`Self::key_material`], hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.key_material()))
    }

    /// The names of the distributions asked for (for messages), over every file.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for f in self.files.iter().filter(|f| !f.constraint) {
            for (_, line) in logical_lines(&String::from_utf8_lossy(&f.bytes)) {
                let line = line.trim();
                if line.is_empty() || line.starts_with('-') {
                    continue;
                }
                let end = line
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                    })
                    .unwrap_or(line.len());
                if end > 0 {
                    names.push(line[..end].to_string());
                }
            }
        }
        names
    }
}

/// Reads `top` (absolute paths) and every file they include; `base` is the project folder.
pub fn resolve(base: &Path, top: &[PathBuf]) -> Result<RequirementSet, RequirementsError> {
    let mut set = RequirementSet {
        base: base.to_path_buf(),
        top: top.to_vec(),
        files: Vec::new(),
        env: Vec::new(),
    };
    for path in top {
        read(path, false, None, &mut set)?;
    }
    Ok(set)
}

/// The requirements a config key names (`[package] requirements`, `[test] requirements`),
/// resolved; a top file that cannot be read is an error at the key's line in harness.toml.
pub fn of_config(
    config: &crate::config::Config,
    key: &str,
    value: &toml::Spanned<crate::config::OneOrMany>,
) -> Result<RequirementSet, Failure> {
    let top: Vec<PathBuf> = value
        .get_ref()
        .items()
        .into_iter()
        .map(|rel| config.path(rel))
        .collect();
    if top.is_empty() {
        return Err(config
            .error_at(value.span(), format!("{key} is an empty list"))
            .hint("name at least one requirements file, or remove the key"));
    }
    for path in &top {
        if !path.is_file() {
            return Err(config
                .error_at(
                    value.span(),
                    format!(
                        "{key}: the requirements file {} does not exist",
                        path.display()
                    ),
                )
                .hint("create it, or fix the path (relative to harness.toml)"));
        }
    }
    resolve(&config.root, &top).map_err(Failure::from)
}

/// Options that take a value, as pip's requirement-file parser knows them; the value of the
/// include options is a file to read.
const INCLUDE: &[&str] = &["-r", "--requirement"];
const CONSTRAINT: &[&str] = &["-c", "--constraint"];
const EDITABLE: &[&str] = &["-e", "--editable"];
const VCS: &[&str] = &["git+", "hg+", "svn+", "bzr+"];

fn read(
    path: &Path,
    constraint: bool,
    named_at: Option<(&Path, usize)>,
    set: &mut RequirementSet,
) -> Result<(), RequirementsError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let path = crate::fsutil::normalize_lexically(&path);
    if set.files.iter().any(|f| f.path == path) {
        // pip reads a file each time it is named; its content is in the key once.
        return Ok(());
    }
    let bytes = std::fs::read(&path).map_err(|source| RequirementsError::Read {
        path: path.clone(),
        at: named_at
            .map(|(f, l)| format!(" (named at {}:{l})", f.display()))
            .unwrap_or_default(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    set.files.push(ReadFile {
        path: path.clone(),
        bytes,
        constraint,
    });
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    for (line_no, line) in logical_lines(&text) {
        let line = expand_env(&line, &mut set.env);
        let refuse = |what: String, hint: &'static str| RequirementsError::Refused {
            file: path.clone(),
            line: line_no,
            what,
            hint,
        };
        let tokens = split_words(&line);
        let Some(first) = tokens.first() else {
            continue;
        };
        let (flag, inline) = match first.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ if first.starts_with("-") && !first.starts_with("--") && first.len() > 2 => {
                (&first[..2], Some(first[2..].to_string()))
            }
            _ => (first.as_str(), None),
        };
        let value = inline.or_else(|| tokens.get(1).cloned());
        if EDITABLE.contains(&flag) {
            return Err(refuse(
                format!("`{}` is an editable install", line.trim()),
                "harness caches installs by the content of the requirements files, which an \
                 editable or VCS install escapes; pin a released version instead",
            ));
        }
        let include = INCLUDE.contains(&flag);
        if include || CONSTRAINT.contains(&flag) {
            let Some(target) = value else {
                return Err(refuse(
                    format!("`{flag}` names no file"),
                    "write `-r other.txt` (relative to this file)",
                ));
            };
            if target.contains("://") {
                return Err(refuse(
                    format!("`{target}` is a URL"),
                    "harness caches by the content of every file read; put the file into the \
                     repository and include it by path",
                ));
            }
            let nested = dir.join(&target);
            read(&nested, constraint || !include, Some((&path, line_no)), set)?;
            continue;
        }
        if flag.starts_with('-') {
            // Index and install options (--index-url, --find-links, --hash, ...): pip's.
            continue;
        }
        let lower = line.trim().to_ascii_lowercase();
        let direct_url = lower.split_once(" @ ").map(|(_, u)| u.trim_start());
        if VCS.iter().any(|v| lower.starts_with(v))
            || direct_url.is_some_and(|u| VCS.iter().any(|v| u.starts_with(v)))
        {
            return Err(refuse(
                format!("`{}` installs from version control", line.trim()),
                "harness caches installs by the content of the requirements files, which a VCS \
                 URL escapes (the branch moves); pin a released version or a wheel instead",
            ));
        }
    }
    Ok(())
}

/// pip's preprocessing: lines ending in `\` join the next (a comment line ends the join), then
/// `#` comments (at the line start, or after whitespace) go. Yields (first line number, text).
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let is_comment = |l: &str| l.trim_start().starts_with('#');
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        if !raw.ends_with('\\') || is_comment(raw) {
            match pending.take() {
                Some((start, mut acc)) => {
                    if !is_comment(raw) {
                        acc.push_str(raw);
                    }
                    out.push((start, strip_comment(&acc)));
                }
                None => out.push((n, strip_comment(raw))),
            }
        } else {
            let piece = raw.trim_end_matches('\\');
            match &mut pending {
                Some((_, acc)) => acc.push_str(piece),
                None => pending = Some((n, piece.to_string())),
            }
        }
    }
    if let Some((start, acc)) = pending {
        out.push((start, strip_comment(&acc)));
    }
    out
}

/// Drops `#...` when it starts the line or follows whitespace (pip's `(^|\s+)#.*$`).
fn strip_comment(line: &str) -> String {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return line[..i].trim_end().to_string();
        }
    }
    line.trim_end().to_string()
}

/// pip expands `${NAME}` (upper case, digits, `_`) from the environment; unset stays as written.
fn expand_env(line: &str, seen: &mut Vec<(String, String)>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(v) => {
                        if !seen.iter().any(|(k, _)| k == name) {
                            seen.push((name.to_string(), v.clone()));
                        }
                        out.push_str(&v);
                    }
                    Err(_) => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whitespace-separated words (pip uses shlex; quoting is rare in requirement files, and only
/// the first two words matter here).
fn split_words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        d
    }

    #[test]
    fn includes_resolve_relative_to_the_file_that_names_them() {
        let d = tree(&[
            (
                "requirements-dev.txt",
                "-r requirements.webhosting.txt\npytest>=9\n-c constraints/pins.txt\n",
            ),
            (
                "requirements.webhosting.txt",
                "Flask==3.1.3  # the app\n--requirement=extra/more.txt\n",
            ),
            (
                "extra/more.txt",
                "requests\n-r ../requirements.webhosting.txt\n",
            ),
            ("constraints/pins.txt", "urllib3<3\n"),
        ]);
        let set = resolve(d.path(), &[d.path().join("requirements-dev.txt")]).unwrap();
        let names: Vec<String> = set
            .files
            .iter()
            .map(|f| f.path.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "requirements-dev.txt",
                "requirements.webhosting.txt",
                "extra/more.txt",
                "constraints/pins.txt"
            ]
        );
        assert!(set.files[3].constraint);
        assert!(!set.files[2].constraint);
        assert_eq!(set.names(), ["pytest", "Flask", "requests"]);
    }

    #[test]
    fn the_key_covers_every_file_read() {
        let d = tree(&[("a.txt", "-r b.txt\n"), ("b.txt", "flask\n")]);
        let key = resolve(d.path(), &[d.path().join("a.txt")])
            .unwrap()
            .digest();
        std::fs::write(d.path().join("b.txt"), "flask==3\n").unwrap();
        let changed = resolve(d.path(), &[d.path().join("a.txt")])
            .unwrap()
            .digest();
        assert_ne!(
            key, changed,
            "an edit to an included file must change the key"
        );
        // Another clone of the same files shares the key (names are relative to the project).
        let clone = tree(&[("a.txt", "-r b.txt\n"), ("b.txt", "flask==3\n")]);
        let same = resolve(clone.path(), &[clone.path().join("a.txt")]).unwrap();
        assert_eq!(same.digest(), changed);
        // One plain file keys by its content alone, as before includes were followed.
        let one = resolve(d.path(), &[d.path().join("b.txt")]).unwrap();
        assert_eq!(one.key_material(), b"flask==3\n");
    }

    #[test]
    fn editable_vcs_and_url_includes_are_refused_with_file_and_line() {
        for (body, line, word) in [
            ("flask\n-e .\n", 2, "editable"),
            ("flask\n\n--editable=./lib\n", 3, "editable"),
            (
                "git+https://example.org/x.git#egg=x\n",
                1,
                "version control",
            ),
            ("x @ git+https://example.org/x.git\n", 1, "version control"),
            ("# note\n-r https://example.org/r.txt\n", 2, "URL"),
        ] {
            let d = tree(&[("r.txt", body)]);
            let e = resolve(d.path(), &[d.path().join("r.txt")]).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(&format!("r.txt:{line}: ")) && text.contains(word),
                "{body:?}: {text}"
            );
            assert_eq!(Failure::from(e).exit, Exit::BadInput);
        }
    }

    #[test]
    fn a_missing_include_names_where_it_was_named() {
        let d = tree(&[("r.txt", "flask\n-r nope.txt\n")]);
        let e = resolve(d.path(), &[d.path().join("r.txt")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.txt"), "{e}");
        assert!(e.contains("r.txt:2"), "{e}");
    }

    #[test]
    fn continuations_comments_and_variables_read_as_pip_reads_them() {
        let lines = logical_lines("a \\\n  b # c\n# -r not.txt\nd#e\nf \\\n# g\nh\n");
        assert_eq!(
            lines,
            vec![
                (1, "a   b".to_string()),
                (3, String::new()),
                (4, "d#e".to_string()),
                (5, "f".to_string()),
                (7, "h".to_string())
            ]
        );
        let mut seen = Vec::new();
        // SAFETY: no other test reads this variable.
        unsafe { std::env::set_var("HARNESS_REQ_TEST_DIR", "extra") };
        assert_eq!(
            expand_env(
                "-r ${HARNESS_REQ_TEST_DIR}/x.txt ${lower} ${UNSET_VAR_XYZ}",
                &mut seen
            ),
            "-r extra/x.txt ${lower} ${UNSET_VAR_XYZ}"
        );
        assert_eq!(seen, vec![("HARNESS_REQ_TEST_DIR".into(), "extra".into())]);
    }
}
