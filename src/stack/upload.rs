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
/// `target`'s last component is part of the archive, so a volume mounted there is chowned too:
/// everything belongs to `owner` (uid, gid), the user the job runs as.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub target: String,
    pub root: PathBuf,
    pub files: Arc<Vec<String>>,
    pub owner: (u32, u32),
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
    /// The folder the archive is extracted into, and the name of `target` inside it.
    fn split_target(&self) -> (String, String) {
        let t = self.target.trim_end_matches('/');
        match t.rsplit_once('/') {
            Some(("", name)) => ("/".into(), name.into()),
            Some((parent, name)) => (parent.into(), name.into()),
            None => ("/".into(), t.into()),
        }
    }

    /// Starts writing the archive; returns where to extract it, the stream of its bytes, and
    /// the writer's outcome (check it after the upload: an unreadable file ends the stream
    /// early).
    pub fn stream(
        &self,
    ) -> (
        String,
        impl futures_util::Stream<Item = Bytes> + Send + 'static,
        tokio::task::JoinHandle<Result<u64, ArchiveError>>,
    ) {
        let (parent, name) = self.split_target();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let upload = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let n = write_archive(&upload, &name, &mut w)?;
            w.send().map_err(|source| ArchiveError {
                path: upload.root.clone(),
                source,
            })?;
            Ok(n)
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        (parent, stream, writer)
    }
}

/// Writes `upload`'s files below `name/` as a tar archive; returns the bytes of file content.
fn write_archive(
    upload: &Upload,
    name: &str,
    out: &mut impl std::io::Write,
) -> Result<u64, ArchiveError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError { path, source }
    };
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let (uid, gid) = upload.owner;
    let mut dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    dirs.insert(String::new());
    for f in upload.files.iter() {
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
    for f in upload.files.iter() {
        let path = upload.root.join(f);
        let meta = std::fs::symlink_metadata(&path).map_err(fail(&path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        let dest = format!("{name}/{f}");
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
    tar.finish().map_err(fail(&upload.root))?;
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
