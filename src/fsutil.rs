//! Small file-writing helpers shared by stages: atomic replacement, and files only the owner reads.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Exit, Failure};

/// Writes `bytes` to `path` through a temporary file and a rename, with the given mode, so a
/// reader never sees half a file and a crash never leaves one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let io = |e: std::io::Error| {
        Failure::new(
            Exit::Environment,
            format!("cannot write {}: {e}", path.display()),
        )
        .hint("check free disk space and permissions")
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    // The umask may have narrowed or (for 0600) cannot widen the mode: set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// An atomic write of a file only its owner may read (state files, keys, reports with secrets).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    write_atomic(path, bytes, 0o600)
}

/// Creates `path` (and its parents) as a folder only its owner may enter (state copies, reports).
pub fn create_private_dir(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot create {}: {e}", path.display()),
            )
            .hint("check free disk space and permissions")
        })
}

/// `.harness/` of a project, made (or tightened to) 0700, with the packages, deployed copies and
/// backups it already holds tightened to 0600: they hold the app's secrets and production's
/// data. Called before every command that works on a project; returns the folder.
pub fn secure_state_dir(root: &Path) -> Result<PathBuf, Failure> {
    let dir = root.join(".harness");
    create_private_dir(&dir)?;
    let fail = |e: std::io::Error| {
        Failure::new(
            Exit::Environment,
            format!("cannot restrict {} to its owner: {e}", dir.display()),
        )
        .hint("harness keeps secrets there; make sure you own the folder")
    };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    for sub in ["dist", "deployed", "backups"] {
        for entry in walkdir::WalkDir::new(dir.join(sub)).into_iter().flatten() {
            let mode = if entry.file_type().is_dir() {
                0o700
            } else {
                0o600
            };
            if entry.file_type().is_symlink() {
                continue;
            }
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
        }
    }
    Ok(dir)
}

/// `a/./b/../c` → `a/c`, without touching the file system (symlinks stay as named).
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
