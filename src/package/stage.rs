//! Staging: copy the declared sources, entry point and extra files into a fresh build directory,
//! applying excludes and the secret guard.
//!
//! A fresh directory every time, because a reused one with fixed mtimes lets Python pick up a stale
//! `__pycache__`.
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::archive::FileEntry;
use crate::config::{Config, Mapping};
use crate::error::{Exit, Failure};

/// Always excluded, whatever the config says.
pub const BUILTIN_EXCLUDES: [&str; 5] = [
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.git/**",
    "**/.harness/**",
    "**/.DS_Store",
];

/// One source file found by the walk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path inside the package, `/`-separated.
    pub zip_path: String,
    pub disk: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub mode: u32,
}

/// Walks every mapping in a stable order, applying the excludes. Mappings whose `from` is missing
/// are errors pointing at the config line.
pub fn walk(config: &Config) -> Result<Vec<SourceFile>, Failure> {
    let excludes = globs(
        BUILTIN_EXCLUDES
            .iter()
            .copied()
            .chain(config.package.exclude.iter().map(|s| s.get_ref().as_str())),
    );
    let mut out = Vec::new();
    let pkg = &config.package;
    let mappings = pkg
        .sources
        .iter()
        .chain(std::iter::once(&pkg.entry_point))
        .chain(pkg.extra_files.iter());
    for m in mappings {
        walk_mapping(config, m, &excludes, &mut out)?;
    }
    out.sort_by(|a, b| a.zip_path.cmp(&b.zip_path));
    // A tab or a newline in a name could make two files read as one in a list of names; no
    // package path may hold a control character.
    if let Some(f) = out
        .iter()
        .find(|f| f.zip_path.chars().any(char::is_control))
    {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{}: the file name holds a control character ({:?}); refusing to package it",
                f.disk.display(),
                f.zip_path
            ),
        )
        .hint("rename the file, or exclude it with [package] exclude"));
    }
    for pair in out.windows(2) {
        if pair[0].zip_path == pair[1].zip_path {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "{}: two mappings put a file at `{}` ({} and {})",
                    config.file.display(),
                    pair[0].zip_path,
                    pair[0].disk.display(),
                    pair[1].disk.display()
                ),
            )
            .hint("change one mapping's `to`, or exclude one of the files"));
        }
    }
    Ok(out)
}

fn globs<'a>(patterns: impl Iterator<Item = &'a str>) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // Config globs were validated on load; the built-ins are known good.
        if let Ok(g) = Glob::new(p) {
            b.add(g);
        }
    }
    b.build().expect("validated globs build")
}

fn walk_mapping(
    config: &Config,
    m: &Mapping,
    excludes: &GlobSet,
    out: &mut Vec<SourceFile>,
) -> Result<(), Failure> {
    let from = config.path(m.from.get_ref());
    let to = m.to.trim_matches('/');
    let meta = std::fs::metadata(&from).map_err(|e| {
        config
            .error_at(
                m.from.span(),
                format!("`{}` cannot be read: {e}", m.from.get_ref()),
            )
            .hint("fix the path; it is relative to harness.toml")
    })?;
    let file = |disk: PathBuf, zip_path: String, meta: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        SourceFile {
            zip_path,
            disk,
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            mode: super::archive::normalised_mode(meta),
        }
    };
    if meta.is_file() {
        if !excludes.is_match(to) {
            out.push(file(from, to.to_string(), &meta));
        }
        return Ok(());
    }
    let walker = walkdir::WalkDir::new(&from)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name();
            name != "__pycache__" && name != ".git" && name != ".harness"
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot walk {}: {e}", from.display()),
            )
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&from)
            .expect("walk stays below its root");
        let rel = rel.to_string_lossy().replace('\\', "/");
        let zip_path = if to.is_empty() {
            rel
        } else {
            format!("{to}/{rel}")
        };
        if excludes.is_match(&zip_path) {
            continue;
        }
        let meta = entry.metadata().map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot stat {}: {e}", entry.path().display()),
            )
        })?;
        out.push(file(entry.path().to_path_buf(), zip_path, &meta));
    }
    Ok(())
}

/// A staged file: its manifest entry and, for small files, its bytes, so the zip is written
/// from exactly what was hashed and checked.
pub struct Staged {
    pub entry: FileEntry,
    pub bytes: Option<Vec<u8>>,
}

/// Files above this size are re-read from the staged copy instead of being held in memory.
const KEEP_IN_MEMORY: u64 = 1 << 20;

/// Reads every walked file once: refuses secrets (unless `allow_secrets` lets them through),
/// writes the staged copy into `build_dir` and hashes it.
/// Appended to the entry point of a package with a database: the write pause a deploy turns on
/// while it changes the database (docs/deploy.md). It wraps the app's `application` and does
/// nothing else; tested here, in the stack and in the boot check like every other packaged byte.
pub const WRITE_PAUSE: &str = include_str!("write_pause.py");

/// The globs of `[package] allow_secrets`, for [`packaged_bytes`].
pub fn allowed_secrets(config: &Config) -> GlobSet {
    globs(
        config
            .package
            .allow_secrets
            .iter()
            .map(|s| s.get_ref().as_str()),
    )
}

/// A source file's bytes as the package holds them: the entry point of a package with a
/// database gets the write pause, and a file that looks like a secret is refused. `up --watch`
/// pushes edits through this too, so a running app never gets what a build would refuse.
pub fn packaged_bytes(
    config: &Config,
    allowed: &GlobSet,
    f: &SourceFile,
) -> Result<Vec<u8>, Failure> {
    let mut bytes = std::fs::read(&f.disk).map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!("cannot read {}: {e}", f.disk.display()),
        )
    })?;
    if config.package.database.is_some() && f.zip_path == config.package.entry_point.to {
        bytes.extend_from_slice(WRITE_PAUSE.as_bytes());
    }
    if !allowed.is_match(&f.zip_path)
        && let Some(why) = looks_secret(&f.zip_path, &bytes)
    {
        return Err(Failure::new(
            Exit::BadInput,
            format!("refusing to package `{}` ({}): {why}", f.zip_path, f.disk.display()),
        )
        .hint(format!(
            "remove it from the sources, exclude it ([package] exclude), or if it is meant to ship add \"{}\" to [package] allow_secrets",
            f.zip_path
        )));
    }
    Ok(bytes)
}

pub fn stage(
    config: &Config,
    files: &[SourceFile],
    build_dir: &Path,
) -> Result<Vec<Staged>, Failure> {
    let allowed = allowed_secrets(config);
    let mut made = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let bytes = packaged_bytes(config, &allowed, f)?;
        let dest = build_dir.join(&f.zip_path);
        let parent = dest.parent().expect("file has a parent").to_path_buf();
        if made.insert(parent.clone()) {
            std::fs::create_dir_all(&parent).map_err(|e| {
                Failure::new(
                    Exit::Environment,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        std::fs::write(&dest, &bytes).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot write {}: {e}", dest.display()),
            )
        })?;
        let entry = FileEntry::of(f.zip_path.clone(), &bytes, f.mode);
        let keep = (bytes.len() as u64) <= KEEP_IN_MEMORY;
        out.push(Staged {
            entry,
            bytes: keep.then_some(bytes),
        });
    }
    Ok(out)
}

fn looks_secret(zip_path: &str, bytes: &[u8]) -> Option<&'static str> {
    let name = zip_path.rsplit('/').next().unwrap_or(zip_path);
    if name == ".env" || name.starts_with(".env.") {
        return Some("a dotenv file holds secrets");
    }
    if name.starts_with("deployment_state") && name.ends_with(".json") {
        return Some("a harness state file holds generated passwords and tokens");
    }
    let key_names = [
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
    ];
    if key_names.contains(&name) {
        return Some("an SSH private key");
    }
    // Content check: it catches keys under any name.
    let needle = b"PRIVATE KEY-----";
    let found = bytes.windows(needle.len()).any(|w| w == needle)
        && bytes.windows(11).any(|w| w == b"-----BEGIN ");
    found.then_some("it contains a PEM private key")
}

#[cfg(test)]
mod tests {
    /// The appended wrapper, run by python3 on an app file in `<parent>/app`: without the pause
    /// file every request reaches the app; with it, a POST gets 503 with the file's Retry-After
    /// and a GET still reaches the app.
    #[test]
    fn the_write_pause_answers_writes_503_while_the_pause_file_exists() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path().join("app");
        std::fs::create_dir(&app).unwrap();
        let entry = app.join("passenger_wsgi.py");
        std::fs::write(
            &entry,
            format!(
                "def application(environ, start_response):\n    start_response('201 Created', [])\n    return [b'app']\n{WRITE_PAUSE}"
            ),
        )
        .unwrap();
        let probe = r#"
import runpy, sys
ns = runpy.run_path(sys.argv[1])
for method in ("POST", "GET", "DELETE"):
    seen = []
    body = b"".join(ns["application"]({"REQUEST_METHOD": method}, lambda s, h: seen.append((s, dict(h)))))
    status, headers = seen[0]
    print(method, status.split()[0], headers.get("Retry-After", "-"), body[:3].decode())
"#;
        let run = || {
            let o = std::process::Command::new("python3")
                .args(["-c", probe])
                .arg(&entry)
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
            String::from_utf8(o.stdout).unwrap()
        };
        assert_eq!(run(), "POST 201 - app\nGET 201 - app\nDELETE 201 - app\n");
        let home = d.path().join(".app.harness");
        std::fs::create_dir(&home).unwrap();
        std::fs::write(home.join("pause"), "12\n").unwrap();
        assert_eq!(run(), "POST 503 12 Wri\nGET 201 - app\nDELETE 503 12 Wri\n");
        std::fs::remove_file(home.join("pause")).unwrap();
        assert_eq!(run(), "POST 201 - app\nGET 201 - app\nDELETE 201 - app\n");
    }

    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        let plain: &[u8] = b"x = 1\n";
        for name in [
            "src/.env",
            "src/.env.production",
            "deployment_state_local.json",
            "keys/id_ed25519",
        ] {
            assert!(looks_secret(name, plain).is_some(), "{name}");
        }
        for name in [
            "src/app/id_utils.py",
            "src/environment.py",
            "keys/id_ed25519.pub",
        ] {
            assert!(looks_secret(name, plain).is_none(), "{name}");
        }
        assert!(
            looks_secret(
                "src/cert.txt",
                b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"
            )
            .is_some()
        );
        assert!(looks_secret("src/ca.pem", b"-----BEGIN CERTIFICATE-----\nabc\n").is_none());
    }
}
