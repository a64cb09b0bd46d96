//! What a package holds, read from the zip's bytes: MANIFEST.json is read as a claim to check,
//! never as the source of the file list.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::package::archive::FileEntry;
use crate::package::database::{self, Schema};
use crate::package::vendor::VendorLock;

/// Where the package's special files are; the same for both targets of one config.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub entry_point: String,
    pub database: Option<String>,
    /// `[package] build_info_copies`: compared as build_info.json is, field by field.
    pub build_info_copies: Vec<String>,
}

impl Layout {
    pub fn from_config(config: &Config) -> Layout {
        Layout {
            entry_point: config.package.entry_point.to.trim_matches('/').to_string(),
            database: config.database_path(),
            build_info_copies: config
                .package
                .build_info_copies
                .iter()
                .map(|c| c.get_ref().clone())
                .collect(),
        }
    }
}

/// One file as the zip holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFact {
    pub sha256: String,
    pub size: u64,
    pub mode: u32,
}

/// A package as its bytes say it is.
#[derive(Debug, Clone)]
pub struct PackageView {
    /// Every file entry, hashed from its actual bytes.
    pub files: BTreeMap<String, FileFact>,
    /// MANIFEST.json's entries; `Err` says why it could not be read.
    pub manifest: Result<BTreeMap<String, FileEntry>, String>,
    /// build_info.json, flattened to `a.b` keys; `Err` says why it could not be read.
    pub build_info: Result<BTreeMap<String, Value>, String>,
    /// Normalised distribution name → version, from `vendor/*.dist-info/METADATA`.
    pub vendored: BTreeMap<String, String>,
    /// vendor.lock, when the package has one (`Err` when it does not parse).
    pub lock: Option<Result<VendorLock, String>>,
    pub entry_point: String,
    pub database: Option<String>,
    /// `[package] build_info_copies`: each must be build_info.json's bytes.
    pub build_info_copies: Vec<String>,
    /// The database's schema, when the package holds the declared database (`Err` when it is not
    /// a readable SQLite file).
    pub schema: Option<Result<Schema, String>>,
    /// DEPLOY_README.md's text, kept to tell generated differences from real ones.
    pub readme: Option<String>,
}

const MANIFEST: &str = "MANIFEST.json";
const BUILD_INFO: &str = "build_info.json";
const README: &str = "DEPLOY_README.md";
const LOCK: &str = "vendor.lock";

impl PackageView {
    /// Reads every entry of `zip` once: hashes it and keeps the bytes of the files it parses.
    pub fn read(zip: &Path, layout: &Layout) -> Result<PackageView, Failure> {
        let fail = |what: String| {
            Failure::new(Exit::BadInput, format!("{}: {what}", zip.display())).hint(
                "rebuild it with `harness build`; a package that is not a readable zip cannot be compared",
            )
        };
        // One read of the whole file: the zip reader seeks to every entry, and on a file each of
        // those seeks throws its buffer away and costs syscalls.
        let bytes = std::fs::read(zip).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot read {}: {e}", zip.display()),
            )
        })?;
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| fail(format!("not a zip: {e}")))?;
        let mut files = BTreeMap::new();
        let mut kept: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut buf = Vec::new();
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| fail(format!("entry {i}: {e}")))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry
                .name()
                .map_err(|e| fail(format!("entry {i} has no usable name: {e}")))?
                .into_owned();
            let mode = entry.unix_mode().map(|m| m & 0o7777).unwrap_or(0o644);
            buf.clear();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| fail(format!("cannot read `{name}`: {e}")))?;
            let fact = FileFact {
                sha256: hex::encode(Sha256::digest(&buf)),
                size: buf.len() as u64,
                mode,
            };
            if is_kept(&name, layout) {
                kept.insert(name.clone(), std::mem::take(&mut buf));
            }
            files.insert(name, fact);
        }
        Ok(PackageView::from_parts(files, kept, layout))
    }

    fn from_parts(
        files: BTreeMap<String, FileFact>,
        mut kept: BTreeMap<String, Vec<u8>>,
        layout: &Layout,
    ) -> PackageView {
        let manifest = match kept.remove(MANIFEST) {
            None => Err("the package has no MANIFEST.json".to_string()),
            Some(bytes) => parse_manifest(&bytes),
        };
        let build_info = match kept.remove(BUILD_INFO) {
            None => Err("the package has no build_info.json".to_string()),
            Some(bytes) => serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("build_info.json is not JSON: {e}"))
                .map(|v| {
                    let mut flat = BTreeMap::new();
                    flatten("", &v, &mut flat);
                    flat
                }),
        };
        let lock = kept.remove(LOCK).map(|bytes| {
            serde_json::from_slice::<VendorLock>(&bytes)
                .map_err(|e| format!("vendor.lock does not parse: {e}"))
        });
        let readme = kept
            .remove(README)
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let schema = layout
            .database
            .as_ref()
            .and_then(|db| kept.remove(db))
            .map(|bytes| read_schema(&bytes));
        let mut vendored = BTreeMap::new();
        for (path, bytes) in &kept {
            if is_metadata(path) {
                let (name, version) = metadata_name_version(bytes);
                let dir = path.trim_end_matches("/METADATA");
                let name = name.unwrap_or_else(|| dir.trim_start_matches("vendor/").to_string());
                vendored.insert(
                    normalise_name(&name),
                    version.unwrap_or_else(|| "(no Version in METADATA)".into()),
                );
            }
        }
        PackageView {
            files,
            manifest,
            build_info,
            vendored,
            lock,
            entry_point: layout.entry_point.clone(),
            database: layout.database.clone(),
            build_info_copies: layout.build_info_copies.clone(),
            schema,
            readme,
        }
    }
}

fn is_kept(name: &str, layout: &Layout) -> bool {
    matches!(name, MANIFEST | BUILD_INFO | README | LOCK)
        || layout.database.as_deref() == Some(name)
        || is_metadata(name)
}

/// `vendor/<dist>.dist-info/METADATA`, one level deep (nested ones belong to vendored sources).
fn is_metadata(path: &str) -> bool {
    path.strip_prefix("vendor/")
        .and_then(|p| p.strip_suffix("/METADATA"))
        .is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/'))
}

fn parse_manifest(bytes: &[u8]) -> Result<BTreeMap<String, FileEntry>, String> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        files: Vec<FileEntry>,
    }
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| format!("MANIFEST.json does not parse: {e}"))?;
    Ok(m.files.into_iter().map(|f| (f.path.clone(), f)).collect())
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// `Name:` and `Version:` from the header block of a core-metadata file.
fn metadata_name_version(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(bytes);
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the body (long description) starts here
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_string());
        }
    }
    (name, version)
}

/// PEP 503 normalisation, so `Flask_Login`, `flask-login` and `flask.login` are one package.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The database's schema, from a private copy (SQLite needs a file).
fn read_schema(bytes: &[u8]) -> Result<Schema, String> {
    let tmp =
        tempfile::NamedTempFile::new().map_err(|e| format!("cannot make a temp file: {e}"))?;
    std::fs::write(tmp.path(), bytes).map_err(|e| format!("cannot write a temp file: {e}"))?;
    let conn = rusqlite::Connection::open_with_flags(
        tmp.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| format!("not an SQLite database: {e}"))?;
    database::describe(&conn).map_err(|e| format!("cannot read its schema: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_per_pep_503() {
        assert_eq!(normalise_name("Flask_Login"), "flask-login");
        assert_eq!(normalise_name("zope.interface"), "zope-interface");
        assert_eq!(normalise_name("A--B"), "a-b");
    }

    #[test]
    fn metadata_header_stops_at_body() {
        let m = b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\n\nName: not-this\n";
        assert_eq!(
            metadata_name_version(m),
            (Some("Flask".into()), Some("3.0.3".into()))
        );
    }

    #[test]
    fn only_top_level_dist_info_metadata_counts() {
        assert!(is_metadata("vendor/flask-3.0.3.dist-info/METADATA"));
        assert!(!is_metadata("vendor/pkg/x.dist-info/METADATA"));
        assert!(!is_metadata("src/flask-3.0.3.dist-info/METADATA"));
    }
}
