//! Vendored wheels: `pip download` into a cache outside the project, unpacked in Rust.
//!
//! The cache entry for one (requirements, Pythons, platforms) key holds the downloaded wheels, the
//! unpacked `vendor/` tree (for seed commands), a ready `vendor.zip` whose entries are already named,
//! stamped and compressed the way deploy.zip wants them, and a manifest with every file's sha256.
//! A warm build therefore runs no pip and decompresses nothing: it raw-copies entries.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::{self, FileEntry};
use crate::error::{Exit, Failure};

/// Bump when the cache layout or the way entries are written changes.
const CACHE_FORMAT: &str = "harness-vendor-v1";

/// A warm, complete cache entry.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub dir: PathBuf,
    pub files: Vec<FileEntry>,
    pub lock: VendorLock,
    /// True when this build filled the cache (pip ran).
    pub cold: bool,
}

impl Vendor {
    pub fn tree(&self) -> PathBuf {
        self.dir.join("vendor")
    }
    pub fn zip(&self) -> PathBuf {
        self.dir.join("vendor.zip")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VendorLock {
    pub wheels: Vec<LockedWheel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockedWheel {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error("pip download failed for Python {python} (exit {code:?}):\n{tail}")]
    Pip {
        python: String,
        code: Option<i32>,
        tail: String,
    },
    #[error(
        "could not get these wheels: {names}; the wheel cache is cold and pip could not download them:\n{tail}"
    )]
    Offline { names: String, tail: String },
    #[error("cannot run pip ({program}): {source}")]
    PipSpawn {
        program: String,
        source: std::io::Error,
    },
    #[error("wheel {wheel} has an unsafe entry `{entry}`: {why}")]
    UnsafeEntry {
        wheel: String,
        entry: String,
        why: &'static str,
    },
    #[error("wheel {wheel} is not a valid zip: {source}")]
    BadWheel {
        wheel: String,
        source: zip::result::ZipError,
    },
    #[error("the wheel cache entry {dir} is damaged: {why}")]
    Damaged { dir: PathBuf, why: String },
    #[error("the wheel cache at {path} is unusable: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<VendorError> for Failure {
    fn from(e: VendorError) -> Self {
        let (exit, hint) = match &e {
            VendorError::Pip { .. } => (
                Exit::Environment,
                "fix the requirements or pip's network access; pip's own output is above",
            ),
            VendorError::Offline { .. } => (
                Exit::Environment,
                "build once with network access to warm the wheel cache, or check PIP_INDEX_URL",
            ),
            VendorError::PipSpawn { .. } => (
                Exit::Environment,
                "install python3 with pip, or set HARNESS_PYTHON",
            ),
            VendorError::UnsafeEntry { .. } => (
                Exit::BadInput,
                "this wheel would write outside vendor/; remove it from the requirements or pin another version",
            ),
            VendorError::BadWheel { .. } => (
                Exit::BadInput,
                "remove the wheel from the cache and the requirements",
            ),
            VendorError::Damaged { .. } => (
                Exit::Environment,
                "something changed the cache after harness filled it; remove that entry and build again (pip refills it)",
            ),
            VendorError::Cache { .. } => (
                Exit::Environment,
                "remove the cache entry (see HARNESS_CACHE_DIR) and build again",
            ),
        };
        Failure::new(exit, e.to_string()).hint(hint)
    }
}

pub struct VendorRequest<'a> {
    /// pip runs here, so relative paths in the requirements mean what they mean to the project.
    pub project_root: &'a Path,
    pub requirements: &'a crate::requirements::RequirementSet,
    pub pythons: &'a [String],
    pub platforms: &'a [String],
}

/// The cache key: the requirements' content, the Pythons and the platforms.
pub fn cache_key(requirements: &[u8], pythons: &[String], platforms: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(CACHE_FORMAT.as_bytes());
    h.update([0]);
    h.update(requirements);
    for p in pythons {
        h.update([1]);
        h.update(p.as_bytes());
    }
    for p in platforms {
        h.update([2]);
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Returns a complete cache entry, filling it with pip first when it is cold.
pub fn ensure(req: &VendorRequest) -> Result<Vendor, Failure> {
    let wheels_root = crate::fsutil::cache_root()?.join("wheels");
    crate::fsutil::own_private_dir(&wheels_root)?;
    Ok(ensure_in(&wheels_root, req)?)
}

fn ensure_in(wheels_root: &Path, req: &VendorRequest) -> Result<Vendor, VendorError> {
    let key = cache_key(&req.requirements.key_material(), req.pythons, req.platforms);
    let dir = wheels_root.join(&key);
    if let Some(v) = load(&dir)? {
        return Ok(v);
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}-", &key[..16]))
        .tempdir_in(wheels_root)
        .map_err(|source| VendorError::Cache {
            path: wheels_root.to_path_buf(),
            source,
        })?;
    fill(tmp.path(), req)?;
    // Publish atomically: a concurrent build that got there first wins, and ours is dropped.
    let staged = tmp.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    let mut v = load(&dir)?.ok_or_else(|| VendorError::Cache {
        path: dir.clone(),
        source: std::io::Error::other("cache entry vanished after filling it"),
    })?;
    v.cold = true;
    Ok(v)
}

fn load(dir: &Path) -> Result<Option<Vendor>, VendorError> {
    let manifest = dir.join("vendor.manifest.json");
    if !manifest.is_file() {
        return Ok(None);
    }
    let read = |p: PathBuf| -> Result<Vec<u8>, VendorError> {
        std::fs::read(&p).map_err(|source| VendorError::Cache { path: p, source })
    };
    let bad = |p: &Path, e: serde_json::Error| VendorError::Cache {
        path: p.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let files: Vec<FileEntry> =
        serde_json::from_slice(&read(manifest.clone())?).map_err(|e| bad(&manifest, e))?;
    let lock_path = dir.join("vendor.lock");
    let lock: VendorLock =
        serde_json::from_slice(&read(lock_path.clone())?).map_err(|e| bad(&lock_path, e))?;
    verify_zip(dir, &files)?;
    Ok(Some(Vendor {
        dir: dir.to_path_buf(),
        files,
        lock,
        cold: false,
    }))
}

/// The name of the file that holds vendor.zip's sha256, written when the entry is filled.
const ZIP_SUM: &str = "vendor.zip.sha256";

/// Checks a warm entry's vendor.zip before its bytes are raw-copied into a package (where
/// nothing decompresses them again): its sha256 must be the one recorded when it was filled.
/// An entry from before the sum was recorded is checked entry by entry against its manifest
/// once, and then gets its sum.
fn verify_zip(dir: &Path, files: &[FileEntry]) -> Result<(), VendorError> {
    let zip = dir.join("vendor.zip");
    let sum_path = dir.join(ZIP_SUM);
    let damaged = |why: String| VendorError::Damaged {
        dir: dir.to_path_buf(),
        why,
    };
    let actual = sha256_of(&zip)?;
    match std::fs::read_to_string(&sum_path) {
        Ok(recorded) if recorded.trim() == actual => Ok(()),
        Ok(recorded) => Err(damaged(format!(
            "vendor.zip has sha256 {actual}, but {ZIP_SUM} recorded {}",
            recorded.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let listed = zip_entries(&zip)?;
            let expected: BTreeMap<&str, &str> = files
                .iter()
                .map(|f| (f.path.as_str(), f.sha256.as_str()))
                .collect();
            let got: BTreeMap<&str, &str> = listed
                .iter()
                .map(|(p, s)| (p.as_str(), s.as_str()))
                .collect();
            if let Some((path, _)) = expected
                .iter()
                .find(|(p, s)| got.get(*p) != Some(*s))
                .or_else(|| got.iter().find(|(p, _)| !expected.contains_key(*p)))
            {
                return Err(damaged(format!(
                    "vendor.zip's `{path}` does not match vendor.manifest.json"
                )));
            }
            // Atomic: another build may be checking this entry at the same moment.
            crate::fsutil::write_atomic(&sum_path, format!("{actual}\n").as_bytes(), 0o600).map_err(
                |f| VendorError::Cache {
                    path: sum_path,
                    source: std::io::Error::other(f.message),
                },
            )
        }
        Err(source) => Err(VendorError::Cache {
            path: sum_path,
            source,
        }),
    }
}

fn sha256_of(path: &Path) -> Result<String, VendorError> {
    let cache = |source| VendorError::Cache {
        path: path.to_path_buf(),
        source,
    };
    crate::fsutil::sha256_file(path).map_err(cache)
}

/// (name, sha256 of the decompressed bytes) of every entry of a zip.
fn zip_entries(path: &Path) -> Result<Vec<(String, String)>, VendorError> {
    let bad = |e: zip::result::ZipError| VendorError::Cache {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let f = std::fs::File::open(path).map_err(|source| VendorError::Cache {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(bad)?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        let name = entry.name().map_err(bad)?.into_owned();
        let sha =
            crate::fsutil::sha256_reader(&mut entry).map_err(|source| VendorError::Cache {
                path: path.to_path_buf(),
                source,
            })?;
        out.push((name, sha));
    }
    Ok(out)
}

fn python_program() -> String {
    std::env::var("HARNESS_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn fill(dir: &Path, req: &VendorRequest) -> Result<(), VendorError> {
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VendorError::Cache { path, source }
    };
    // Each Python gets its own download folder; the first listed Python wins where two wheels
    // would write the same path with different bytes (documented in docs/config.md).
    let mut wheels: Vec<(PathBuf, String)> = Vec::new();
    for python in req.pythons {
        let dl = dir.join("wheels").join(format!("py{python}"));
        std::fs::create_dir_all(&dl).map_err(cache_err(&dl))?;
        pip_download(&dl, req, python)?;
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dl)
            .map_err(cache_err(&dl))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "whl"))
            .collect();
        found.sort();
        wheels.extend(found.into_iter().map(|p| (p, python.clone())));
    }

    let tree = dir.join("vendor");
    std::fs::create_dir_all(&tree).map_err(cache_err(&tree))?;
    let mut entries: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let mut locked: BTreeMap<String, LockedWheel> = BTreeMap::new();
    for (wheel, _python) in &wheels {
        let filename = wheel
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(wheel).map_err(cache_err(wheel))?;
        let (name, version) = parse_wheel_name(&filename);
        locked.entry(filename.clone()).or_insert(LockedWheel {
            name,
            version,
            filename: filename.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
        for (path, data, mode) in unpack_wheel(&filename, &bytes)? {
            entries.entry(path).or_insert((data, mode));
        }
    }

    // The tree is what seed commands import; the zip is what builds copy from.
    let zip_path = dir.join("vendor.zip");
    let out = std::fs::File::create(&zip_path).map_err(cache_err(&zip_path))?;
    let mut writer = archive::DeterministicZip::new(std::io::BufWriter::new(out));
    let mut manifest = Vec::with_capacity(entries.len());
    for (rel, (data, mode)) in &entries {
        let disk = tree.join(rel);
        if let Some(parent) = disk.parent() {
            std::fs::create_dir_all(parent).map_err(cache_err(parent))?;
        }
        std::fs::write(&disk, data).map_err(cache_err(&disk))?;
        let zip_name = format!("vendor/{rel}");
        writer
            .add_bytes(&zip_name, data, *mode)
            .map_err(|e| VendorError::Cache {
                path: zip_path.clone(),
                source: std::io::Error::other(e),
            })?;
        manifest.push(FileEntry::of(zip_name, data, *mode));
    }
    writer.finish().map_err(|e| VendorError::Cache {
        path: zip_path.clone(),
        source: std::io::Error::other(e),
    })?;

    let sum_path = dir.join(ZIP_SUM);
    std::fs::write(&sum_path, format!("{}\n", sha256_of(&zip_path)?))
        .map_err(cache_err(&sum_path))?;
    let lock = VendorLock {
        wheels: locked.into_values().collect(),
    };
    let lock_path = dir.join("vendor.lock");
    std::fs::write(&lock_path, archive::pretty_json(&lock)).map_err(cache_err(&lock_path))?;
    // The manifest goes last: its presence marks the entry complete.
    let manifest_path = dir.join("vendor.manifest.json");
    std::fs::write(&manifest_path, archive::pretty_json(&manifest))
        .map_err(cache_err(&manifest_path))?;
    Ok(())
}

fn pip_download(dl: &Path, req: &VendorRequest, python: &str) -> Result<(), VendorError> {
    let program = python_program();
    let mut cmd = Command::new(&program);
    cmd.args(["-m", "pip", "download", "--disable-pip-version-check", "-d"])
        .arg(dl);
    for top in &req.requirements.top {
        cmd.arg("-r").arg(top);
    }
    cmd.args(["--only-binary", ":all:", "--python-version", python]);
    for p in req.platforms {
        cmd.args(["--platform", p]);
    }
    cmd.current_dir(req.project_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = cmd.output().map_err(|source| VendorError::PipSpawn {
        program: program.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let tail = tail_lines(&text, 20);
    let unreachable = [
        "Could not find a version",
        "No matching distribution",
        "NewConnectionError",
        "Connection refused",
        "Failed to establish",
        "Max retries exceeded",
        "Temporary failure in name resolution",
    ];
    if unreachable.iter().any(|m| text.contains(m)) {
        let names = req.requirements.names();
        return Err(VendorError::Offline {
            names: names.join(", "),
            tail,
        });
    }
    Err(VendorError::Pip {
        python: python.to_string(),
        code: output.status.code(),
        tail,
    })
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name-version(-build)?-py-abi-platform.whl` → (name, version).
fn parse_wheel_name(filename: &str) -> (String, String) {
    let stem = filename.trim_end_matches(".whl");
    let mut parts = stem.split('-');
    let name = parts.next().unwrap_or_default().to_string();
    let version = parts.next().unwrap_or_default().to_string();
    (name, version)
}

/// Reads every file of a wheel, rejecting anything that could land outside `vendor/`.
/// Returns (path relative to vendor/, bytes, normalised mode).
pub fn unpack_wheel(wheel: &str, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>, u32)>, VendorError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|source| {
        VendorError::BadWheel {
            wheel: wheel.to_string(),
            source,
        }
    })?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|source| VendorError::BadWheel {
                wheel: wheel.to_string(),
                source,
            })?;
        let raw = String::from_utf8_lossy(file.name_raw()).into_owned();
        let unsafe_entry = |why| VendorError::UnsafeEntry {
            wheel: wheel.to_string(),
            entry: raw.clone(),
            why,
        };
        if file.is_dir() {
            check_relative(&raw).map_err(unsafe_entry)?;
            continue;
        }
        if file.is_symlink() {
            return Err(unsafe_entry("symbolic links are not allowed"));
        }
        let rel = check_relative(&raw).map_err(unsafe_entry)?;
        // `<dist>.data/purelib|platlib/...` installs at the root; scripts, headers and data do
        // not belong in an importable vendor tree.
        let rel = match relocate_data(&rel) {
            Some(Some(r)) => r,
            Some(None) => continue,
            None => rel,
        };
        let mut data = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut data)
            .map_err(|e| VendorError::BadWheel {
                wheel: wheel.to_string(),
                source: e.into(),
            })?;
        let exec = file.unix_mode().is_some_and(|m| m & 0o111 != 0);
        out.push((rel, data, if exec { 0o755 } else { 0o644 }));
    }
    Ok(out)
}

/// A wheel path must be relative, `/`-separated and free of `..`.
fn check_relative(raw: &str) -> Result<String, &'static str> {
    if raw.contains('\0') {
        return Err("contains a NUL byte");
    }
    if raw.contains('\\') {
        return Err("contains a backslash");
    }
    if raw.starts_with('/') || (raw.len() > 1 && raw.as_bytes()[1] == b':') {
        return Err("is an absolute path");
    }
    let p = Path::new(raw);
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => {}
            Component::ParentDir => return Err("climbs out with `..`"),
            _ => return Err("is an absolute path"),
        }
    }
    let clean: Vec<&str> = raw
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if clean.is_empty() {
        return Err("is empty");
    }
    Ok(clean.join("/"))
}

/// `Some(Some(path))`: relocated; `Some(None)`: dropped; `None`: not a `.data` path.
fn relocate_data(rel: &str) -> Option<Option<String>> {
    let (first, rest) = rel.split_once('/')?;
    if !first.ends_with(".data") {
        return None;
    }
    let (scheme, inner) = rest.split_once('/').unwrap_or((rest, ""));
    match scheme {
        "purelib" | "platlib" if !inner.is_empty() => Some(Some(inner.to_string())),
        _ => Some(None),
    }
}

/// Writes a wheel for tests: `entries` are (name, bytes).
#[doc(hidden)]
pub fn write_test_wheel(path: &Path, entries: &[(&str, &[u8])]) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = zip::ZipWriter::new(f);
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .map_err(std::io::Error::other)?;
        w.write_all(data)?;
    }
    w.finish().map_err(std::io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(check_relative("a/b.py").unwrap(), "a/b.py");
        assert_eq!(check_relative("./a//b.py").unwrap(), "a/b.py");
        assert!(check_relative("../evil.py").is_err());
        assert!(check_relative("a/../../evil.py").is_err());
        assert!(check_relative("/etc/passwd").is_err());
        assert!(check_relative("C:/x").is_err());
        assert!(check_relative("a\\..\\b").is_err());
    }

    #[test]
    fn data_dirs_are_relocated_or_dropped() {
        assert_eq!(
            relocate_data("x-1.0.data/purelib/x/a.py"),
            Some(Some("x/a.py".into()))
        );
        assert_eq!(relocate_data("x-1.0.data/scripts/run"), Some(None));
        assert_eq!(relocate_data("x/a.py"), None);
    }

    #[test]
    fn traversal_entry_is_rejected_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("evil-1.0-py3-none-any.whl");
        write_test_wheel(&p, &[("evil/__init__.py", b""), ("../../escape.py", b"x")]).unwrap();
        let e = unpack_wheel("evil-1.0-py3-none-any.whl", &std::fs::read(&p).unwrap()).unwrap_err();
        assert!(e.to_string().contains("../../escape.py"), "{e}");
        assert_eq!(Failure::from(e).exit, Exit::BadInput);
    }

    /// A warm entry as `fill` leaves it, without running pip: (dir, its vendor.zip bytes).
    fn warm_entry(with_sum: bool) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("vendor/flask/__init__.py", b"flask = 1\n".as_slice()),
            ("vendor/x.py", b"x"),
        ];
        let mut zip =
            archive::DeterministicZip::new(std::fs::File::create(dir.join("vendor.zip")).unwrap());
        let mut manifest = Vec::new();
        for (name, data) in files {
            zip.add_bytes(name, data, 0o644).unwrap();
            manifest.push(FileEntry::of(name.to_string(), data, 0o644));
        }
        zip.finish().unwrap();
        std::fs::write(
            dir.join("vendor.lock"),
            archive::pretty_json(&VendorLock { wheels: vec![] }),
        )
        .unwrap();
        std::fs::write(
            dir.join("vendor.manifest.json"),
            archive::pretty_json(&manifest),
        )
        .unwrap();
        if with_sum {
            let sum = sha256_of(&dir.join("vendor.zip")).unwrap();
            std::fs::write(dir.join(ZIP_SUM), format!("{sum}\n")).unwrap();
        }
        (tmp, dir)
    }

    /// Changes one byte, as a disk error or another program would.
    fn tamper(zip: &Path) {
        let mut bytes = std::fs::read(zip).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(zip, bytes).unwrap();
    }

    #[test]
    fn a_warm_entry_whose_zip_changed_after_filling_is_refused() {
        let (_tmp, dir) = warm_entry(true);
        assert!(load(&dir).unwrap().is_some());
        tamper(&dir.join("vendor.zip"));
        let e = load(&dir).unwrap_err();
        assert!(matches!(e, VendorError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("recorded"), "{e}");
        assert_eq!(Failure::from(e).exit, Exit::Environment);
    }

    #[test]
    fn an_entry_without_a_sum_is_checked_against_its_manifest_once() {
        let (_tmp, dir) = warm_entry(false);
        assert!(load(&dir).unwrap().is_some());
        assert!(
            dir.join(ZIP_SUM).is_file(),
            "the checked entry gets its sum"
        );

        let (_tmp2, dir) = warm_entry(false);
        let mut manifest: Vec<FileEntry> =
            serde_json::from_slice(&std::fs::read(dir.join("vendor.manifest.json")).unwrap())
                .unwrap();
        manifest[1].sha256 = "0".repeat(64);
        std::fs::write(
            dir.join("vendor.manifest.json"),
            archive::pretty_json(&manifest),
        )
        .unwrap();
        let e = load(&dir).unwrap_err();
        assert!(e.to_string().contains("vendor/x.py"), "{e}");
        assert!(
            !dir.join(ZIP_SUM).exists(),
            "a mismatching entry gets no sum"
        );
    }

    #[test]
    fn wheel_names_parse() {
        assert_eq!(
            parse_wheel_name("Flask-3.0.0-py3-none-any.whl"),
            ("Flask".into(), "3.0.0".into())
        );
    }

    #[test]
    fn cache_key_depends_on_every_input() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let base = cache_key(b"flask", &p(&["3.11"]), &p(&["any"]));
        assert_ne!(base, cache_key(b"flask2", &p(&["3.11"]), &p(&["any"])));
        assert_ne!(base, cache_key(b"flask", &p(&["3.9"]), &p(&["any"])));
        assert_ne!(
            base,
            cache_key(
                b"flask",
                &p(&["3.11"]),
                &p(&["any", "manylinux2014_x86_64"])
            )
        );
    }
}
