//! Files copied into a created container before it starts: a tar stream through the Engine
//! API's archive upload (`PUT /containers/{id}/archive`). Unlike a bind mount it works with a
//! remote engine, and the container gets its own copy to write into.
//!
//! The archive is written on a blocking thread while it is sent, in chunks, so a large tree
//! never sits in memory whole.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// Files of `root` (relative paths, `/`-separated) that land in the container folder `target`.
/// `target` itself is part of the archive, so a volume mounted there is chowned too:
/// everything belongs to `owner` (uid, gid), the user the job runs as.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub target: String,
    pub root: PathBuf,
    /// Files, and folders as `sub/dir/` (so empty ones arrive too).
    pub files: Arc<Vec<String>>,
    pub owner: (u32, u32),
    /// The one file's name in the container, when it differs (a file bind mount).
    pub rename: Option<String>,
}

impl Upload {
    /// A bind mount's content, sent through the Engine API instead: the folder's files and
    /// folders (a missing folder arrives empty), or the one file under its container name.
    /// Works with a remote engine, which sees none of this machine's paths.
    pub fn of_bind(source: &Path, target: &str, owner: (u32, u32)) -> std::io::Result<Upload> {
        if source.is_file() {
            let (parent, name) = match target.trim_end_matches('/').rsplit_once('/') {
                Some(("", name)) => ("/".to_string(), name.to_string()),
                Some((parent, name)) => (parent.to_string(), name.to_string()),
                None => ("/".to_string(), target.to_string()),
            };
            let file = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok(Upload {
                target: parent,
                root: source.parent().unwrap_or(Path::new("/")).to_path_buf(),
                rename: (file != name).then_some(name),
                files: Arc::new(vec![file]),
                owner,
            });
        }
        let mut files = Vec::new();
        if source.is_dir() {
            for entry in walkdir::WalkDir::new(source)
                .min_depth(1)
                .sort_by_file_name()
            {
                let entry = entry.map_err(std::io::Error::other)?;
                let rel = entry
                    .path()
                    .strip_prefix(source)
                    .map_err(std::io::Error::other)?
                    .to_string_lossy()
                    .into_owned();
                if entry.file_type().is_dir() {
                    files.push(format!("{rel}/"));
                } else {
                    files.push(rel);
                }
            }
        }
        Ok(Upload {
            target: target.to_string(),
            root: source.to_path_buf(),
            files: Arc::new(files),
            owner,
            rename: None,
        })
    }
}

/// Unpacks what the Engine API's archive download of a container folder gave (`name/…`) into
/// `dest`, without the top folder. The container wrote it, so it is untrusted: only plain
/// files and folders, each path made of normal parts, and nothing is written through a link.
pub fn unpack_download(tar_bytes: &[u8], dest: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(tar_bytes);
    let mut total = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let mut parts = path.components();
        parts.next();
        let rel: PathBuf = parts.collect();
        if rel.as_os_str().is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let out = dest.join(&rel);
        // Every folder on the way is a real folder of ours, not a link.
        let mut at = dest.to_path_buf();
        let mut ok = true;
        for c in rel.parent().into_iter().flat_map(Path::components) {
            at.push(c);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&out)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if std::fs::symlink_metadata(&out).is_ok_and(|m| !m.is_file()) {
                    continue;
                }
                let _ = std::fs::remove_file(&out);
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)?;
                total += std::io::copy(&mut entry, &mut file)?;
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            _ => {}
        }
    }
    Ok(total)
}

/// What went wrong while the archive was written (the upload itself reports its own errors).
#[derive(Debug, thiserror::Error)]
#[error("cannot archive {path} for the container: {source}")]
pub struct ArchiveError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

const CHUNK: usize = 256 * 1024;

/// A `Write` that hands full chunks to the upload; a closed receiver (the upload failed) ends
/// the writing with an error.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the upload stopped reading"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Upload {
    /// The folder the archive is extracted into, and `target`'s path inside it. Always the
    /// root: the engine creates missing parent folders (root-owned, 0755) but refuses to
    /// extract into a folder that does not exist, and only `target` itself gets an entry, so
    /// no existing parent changes owner or mode.
    fn split_target(&self) -> (String, String) {
        ("/".into(), self.target.trim_matches('/').to_string())
    }
}

/// Starts writing one archive of several uploads, each at its full path, to be extracted at the
/// container's root: one extraction by the engine instead of one per folder (each costs the
/// engine a process of its own). Returns the stream of its bytes and the writer's outcome.
pub fn stream_all(
    uploads: Vec<Upload>,
) -> (
    impl futures_util::Stream<Item = Bytes> + Send + 'static,
    tokio::task::JoinHandle<Result<u64, ArchiveError>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || {
        let mut tar = tar::Builder::new(ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        tar.mode(tar::HeaderMode::Complete);
        let mut n = 0;
        for up in &uploads {
            let (_, name) = up.split_target();
            n += append_upload(&mut tar, up, &name)?;
        }
        let fail = |source| ArchiveError {
            path: uploads.first().map(|u| u.root.clone()).unwrap_or_default(),
            source,
        };
        let mut w = tar.into_inner().map_err(fail)?;
        w.send().map_err(fail)?;
        Ok(n)
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (stream, writer)
}

/// Writes `upload`'s files below `name/` as a tar archive; returns the bytes of file content.
#[cfg(test)]
fn write_archive(
    upload: &Upload,
    name: &str,
    out: &mut impl std::io::Write,
) -> Result<u64, ArchiveError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let n = append_upload(&mut tar, upload, name)?;
    tar.finish().map_err(|source| ArchiveError {
        path: upload.root.clone(),
        source,
    })?;
    Ok(n)
}

/// Appends `upload`'s files below `name/`; returns the bytes of file content.
fn append_upload<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    upload: &Upload,
    name: &str,
) -> Result<u64, ArchiveError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError { path, source }
    };
    let (uid, gid) = upload.owner;
    let mut dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    dirs.insert(String::new());
    for d in upload.files.iter().filter_map(|f| f.strip_suffix('/')) {
        dirs.insert(d.to_string());
    }
    for f in upload.files.iter().filter(|f| !f.ends_with('/')) {
        let mut acc = String::new();
        for part in f
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.insert(acc.clone());
        }
    }
    // Folders first, each owned by the user: the archive creates them, so the user can write
    // into every one (pytest-cov writes .coverage beside its config).
    for d in &dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_size(0);
        h.set_mtime(0);
        let path = if d.is_empty() {
            format!("{name}/")
        } else {
            format!("{name}/{d}/")
        };
        tar.append_data(&mut h, &path, std::io::empty())
            .map_err(fail(&upload.root.join(d)))?;
    }
    let mut total = 0;
    for f in upload.files.iter().filter(|f| !f.ends_with('/')) {
        let path = upload.root.join(f);
        let meta = std::fs::symlink_metadata(&path).map_err(fail(&path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        let dest = format!("{name}/{}", upload.rename.as_deref().unwrap_or(f));
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).map_err(fail(&path))?;
            h.set_size(0);
            tar.append_link(&mut h, &dest, &link).map_err(fail(&path))?;
        } else {
            let file = std::fs::File::open(&path).map_err(fail(&path))?;
            tar.append_data(&mut h, &dest, file).map_err(fail(&path))?;
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_owned_folders_then_files_with_modes_and_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/x.py"), b"x = 1\n").unwrap();
        std::fs::write(d.path().join("run.sh"), b"#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            d.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("a/b/x.py", d.path().join("link.py")).unwrap();
        let up = Upload {
            target: "/repo".into(),
            root: d.path().to_path_buf(),
            files: Arc::new(vec!["a/b/x.py".into(), "link.py".into(), "run.sh".into()]),
            owner: (1234, 2345),
            rename: None,
        };
        assert_eq!(up.split_target(), ("/".to_string(), "repo".to_string()));
        let mut buf = Vec::new();
        assert_eq!(write_archive(&up, "repo", &mut buf).unwrap(), 16);
        let mut ar = tar::Archive::new(&buf[..]);
        let entries: Vec<(String, u64, u32, tar::EntryType)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap() & 0o777,
                    h.entry_type(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "repo/",
                "repo/a/",
                "repo/a/b/",
                "repo/a/b/x.py",
                "repo/link.py",
                "repo/run.sh"
            ]
        );
        assert!(entries.iter().all(|e| e.1 == 1234));
        assert_eq!(entries[5].2, 0o755);
        assert_eq!(entries[4].3, tar::EntryType::Symlink);
    }
}
