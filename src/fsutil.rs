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

/// The folder harness keeps caches in that are shared between projects (wheels, rootfs):
/// `$HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/harness`, else `~/.cache/harness`. Never a shared
/// temporary folder: what lands in the cache is later copied into packages and images unread, so
/// another user must not be able to write there. The folder is made 0700; one that belongs to
/// someone else is refused.
pub fn cache_root() -> Result<PathBuf, Failure> {
    let root = match std::env::var_os("HARNESS_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .ok_or_else(|| {
                Failure::new(
                    Exit::Environment,
                    "no cache folder: HOME, XDG_CACHE_HOME and HARNESS_CACHE_DIR are all unset",
                )
                .hint(
                    "set HARNESS_CACHE_DIR to a folder only you can write (harness will not share /tmp)",
                )
            })?
            .join("harness"),
    };
    own_private_dir(&root)?;
    Ok(root)
}

/// Creates `dir` 0700, or checks that an existing one belongs to this user and tightens it to
/// 0700. A folder owned by another user (or a symlink to one) is refused rather than trusted.
pub fn own_private_dir(dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    create_private_dir(dir)?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| Failure::new(Exit::Environment, format!("{}: {e}", dir.display())))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Failure::new(
            Exit::Environment,
            format!(
                "{} belongs to uid {}, not to you (uid {me}); harness will not use a cache another user can write",
                dir.display(),
                meta.uid()
            ),
        )
        .hint("point HARNESS_CACHE_DIR at a folder of your own"));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot restrict {} to its owner: {e}", dir.display()),
            )
        })?;
    }
    Ok(())
}

/// An exclusive `flock` on a file, held until dropped (the kernel drops it when the process
/// dies, so a killed harness never leaves it behind).
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

/// Takes an exclusive lock on `path` (created 0600, parents 0700), waiting for another holder.
pub fn lock_exclusive(path: &Path) -> Result<FileLock, Failure> {
    use std::os::fd::AsRawFd;
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let fail = |e: std::io::Error| {
        Failure::new(
            Exit::Environment,
            format!("cannot lock {}: {e}", path.display()),
        )
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    loop {
        // SAFETY: the descriptor is open for as long as `file` lives.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(FileLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(fail(e));
        }
    }
}

/// The hex sha256 of everything `r` yields.
pub fn sha256_reader(r: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(&mut std::fs::File::open(path)?)
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

/// The user and group harness runs as: who owns what a run's containers write.
pub fn host_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_cache_folder_others_could_enter_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        own_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let fresh = tmp.path().join("a/b");
        own_private_dir(&fresh).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_cache_folder_of_another_user_is_refused() {
        // Needs root to give a folder away; CI runs as root, and so does this machine's user.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the suite as root"
            );
            eprintln!("not root: cannot chown a folder to another user here");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("theirs");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let e = own_private_dir(&dir).unwrap_err();
        assert!(e.message.contains("uid 65534"), "{}", e.message);
        assert_eq!(e.exit, Exit::Environment);
    }
}
