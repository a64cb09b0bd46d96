//! Files copied into a created container before it starts: a tar stream through the Engine
//! API's archive upload (`PUT /containers/{id}/archive`). Unlike a bind mount it works with a
//! remote engine, and the container gets its own copy to write into.
//!
//! The archive is written on a blocking thread while it is sent, in chunks, so a large tree
//! never sits in memory whole.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// What lands in the container folder `target`, from a host folder or straight from a zip.
/// `target` itself is part of the archive, so a volume mounted there is chowned too:
/// everything belongs to `owner` (uid, gid), the user the job runs as.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub target: String,
    pub source: Source,
    pub owner: (u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Files of `root` (relative paths, `/`-separated; folders as `sub/dir/`, so empty ones
    /// arrive too). `rename`: the one file's name in the container, when it differs (a file
    /// bind mount).
    Files {
        root: PathBuf,
        files: Arc<Vec<String>>,
        rename: Option<String>,
    },
    /// The entries of a package zip, as they are (modes and times), without the host
    /// extracting them first.
    Zip { path: PathBuf, part: ZipPart },
}

/// Which entries of a zip an upload carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipPart {
    All,
    /// All but the ones under this folder (`vendor/`).
    Without(String),
    /// Only the ones under this folder, which is the upload's target.
    Only(String),
}

impl ZipPart {
    /// Where entry `name` goes below the target, if it goes at all.
    fn place<'a>(&self, name: &'a str) -> Option<&'a str> {
        match self {
            ZipPart::All => Some(name),
            ZipPart::Without(folder) => (!name.starts_with(folder.as_str())).then_some(name),
            ZipPart::Only(folder) => name
                .strip_prefix(folder.as_str())
                .filter(|rest| !rest.is_empty()),
        }
    }
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
                source: Source::Files {
                    root: source.parent().unwrap_or(Path::new("/")).to_path_buf(),
                    rename: (file != name).then_some(name),
                    files: Arc::new(vec![file]),
                },
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
            source: Source::Files {
                root: source.to_path_buf(),
                files: Arc::new(files),
                rename: None,
            },
            owner,
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

/// What an archive carried: its files (folders not counted) and their bytes of content.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub files: usize,
    pub bytes: u64,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, other: Sent) {
        self.files += other.files;
        self.bytes += other.bytes;
    }
}

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

    /// The host path the files come from, for messages.
    fn origin(&self) -> PathBuf {
        match &self.source {
            Source::Files { root, .. } => root.clone(),
            Source::Zip { path, .. } => path.clone(),
        }
    }
}

/// Starts writing one archive of several uploads, each at its full path, to be extracted at the
/// container's root: one extraction by the engine instead of one per folder (each costs the
/// engine a process of its own). Returns the stream of its bytes and the writer's outcome.
pub fn stream_all(
    uploads: Vec<Upload>,
) -> (
    impl futures_util::Stream<Item = Bytes> + Send + 'static,
    tokio::task::JoinHandle<Result<Sent, ArchiveError>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || {
        let mut tar = tar::Builder::new(ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        tar.mode(tar::HeaderMode::Complete);
        let mut n = Sent::default();
        for up in &uploads {
            let (_, name) = up.split_target();
            n += append_upload(&mut tar, up, &name)?;
        }
        let fail = |source| ArchiveError {
            path: uploads.first().map(Upload::origin).unwrap_or_default(),
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
) -> Result<Sent, ArchiveError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let n = append_upload(&mut tar, upload, name)?;
    tar.finish().map_err(|source| ArchiveError {
        path: upload.origin(),
        source,
    })?;
    Ok(n)
}

/// Appends `upload`'s files below `name/`.
fn append_upload<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    upload: &Upload,
    name: &str,
) -> Result<Sent, ArchiveError> {
    match &upload.source {
        Source::Files {
            root,
            files,
            rename,
        } => append_files(tar, root, files, rename.as_deref(), upload.owner, name),
        Source::Zip { path, part } => append_zip(tar, path, part, upload.owner, name),
    }
}

fn fail(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError { path, source }
}

/// Every folder the entries need, the top one (`""`) included: a folder entry (`sub/dir/`)
/// counts itself and its parents, a file only its parents.
fn folders_of<'a>(entries: impl Iterator<Item = &'a str>) -> std::collections::BTreeSet<String> {
    let mut dirs = std::collections::BTreeSet::from([String::new()]);
    for e in entries {
        let folder = match e.strip_suffix('/') {
            Some(d) => d,
            None => e.rsplit_once('/').map_or("", |(parent, _)| parent),
        };
        let mut acc = String::new();
        for part in folder.split('/').filter(|p| !p.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.insert(acc.clone());
        }
    }
    dirs
}

/// Folders first, each owned by the user: the archive creates them, so the user can write
/// into every one (pytest-cov writes .coverage beside its config).
fn append_folders<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dirs: &std::collections::BTreeSet<String>,
    (uid, gid): (u32, u32),
    name: &str,
    origin: &Path,
) -> Result<(), ArchiveError> {
    for d in dirs {
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
            .map_err(fail(&origin.join(d)))?;
    }
    Ok(())
}

fn append_files<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    files: &[String],
    rename: Option<&str>,
    (uid, gid): (u32, u32),
    name: &str,
) -> Result<Sent, ArchiveError> {
    let dirs = folders_of(files.iter().map(String::as_str));
    append_folders(tar, &dirs, (uid, gid), name, root)?;
    let mut total = Sent::default();
    for f in files.iter().filter(|f| !f.ends_with('/')) {
        let path = root.join(f);
        let meta = std::fs::symlink_metadata(&path).map_err(fail(&path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        let dest = format!("{name}/{}", rename.unwrap_or(f));
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).map_err(fail(&path))?;
            h.set_size(0);
            tar.append_link(&mut h, &dest, &link).map_err(fail(&path))?;
        } else {
            let file = std::fs::File::open(&path).map_err(fail(&path))?;
            tar.append_data(&mut h, &dest, file).map_err(fail(&path))?;
            total.bytes += meta.len();
        }
        total.files += 1;
    }
    Ok(total)
}

/// A package's entries straight from its zip: folders owned by the user, files with the mode
/// and time the zip gives (the time `unzip` would give them on the server), no host copy.
fn append_zip<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    zip_path: &Path,
    part: &ZipPart,
    (uid, gid): (u32, u32),
    name: &str,
) -> Result<Sent, ArchiveError> {
    let zip_err = |e: zip::result::ZipError| fail(zip_path)(std::io::Error::other(e));
    let file = std::fs::File::open(zip_path).map_err(fail(zip_path))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut names = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(zip_err)?;
        let n = entry.name().map_err(zip_err)?.into_owned();
        // The zip is a package harness built, but a name that leaves the folder is refused
        // rather than trusted to the engine's extraction.
        if entry.enclosed_name().is_none() || n.starts_with('/') {
            return Err(fail(zip_path)(std::io::Error::other(format!(
                "entry {n:?} leaves the package folder"
            ))));
        }
        if let Some(placed) = part.place(&n)
            && (entry.is_dir() || entry.is_file())
        {
            names.push(placed.to_string());
        }
    }
    append_folders(
        tar,
        &folders_of(names.iter().map(String::as_str)),
        (uid, gid),
        name,
        zip_path,
    )?;
    let mut total = Sent::default();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        let n = entry.name().map_err(zip_err)?.into_owned();
        let Some(placed) = part.place(&n).filter(|_| entry.is_file()) else {
            continue;
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(entry.unix_mode().unwrap_or(0o644) & 0o7777);
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_size(entry.size());
        h.set_mtime(entry.last_modified().map_or(ZIP_EPOCH, unix_time));
        let size = entry.size();
        tar.append_data(&mut h, format!("{name}/{placed}"), &mut entry)
            .map_err(fail(&zip_path.join(&n)))?;
        total += Sent {
            files: 1,
            bytes: size,
        };
    }
    Ok(total)
}

/// 1980-01-01T00:00:00Z, the time every entry of a package carries.
const ZIP_EPOCH: u64 = 315_532_800;

/// A zip entry's time (no zone: taken as UTC, as the build wrote it) in Unix seconds; the
/// package's own epoch when the zip holds no valid date.
fn unix_time(t: zip::DateTime) -> u64 {
    let date = time::Month::try_from(t.month())
        .and_then(|m| time::Date::from_calendar_date(t.year().into(), m, t.day()));
    let clock = time::Time::from_hms(t.hour(), t.minute(), t.second());
    match (date, clock) {
        (Ok(d), Ok(c)) => u64::try_from(d.with_time(c).assume_utc().unix_timestamp()).unwrap_or(0),
        _ => ZIP_EPOCH,
    }
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
            source: Source::Files {
                root: d.path().to_path_buf(),
                files: Arc::new(vec!["a/b/x.py".into(), "link.py".into(), "run.sh".into()]),
                rename: None,
            },
            owner: (1234, 2345),
        };
        assert_eq!(up.split_target(), ("/".to_string(), "repo".to_string()));
        let mut buf = Vec::new();
        assert_eq!(
            write_archive(&up, "repo", &mut buf).unwrap(),
            Sent {
                files: 3,
                bytes: 16
            }
        );
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

    fn zip_of(dir: &Path, entries: &[(&str, &[u8], u32)]) -> PathBuf {
        let path = dir.join("deploy.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, bytes, mode) in entries {
            let opts = zip::write::SimpleFileOptions::default()
                .unix_permissions(*mode)
                .last_modified_time(zip::DateTime::default());
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                std::io::Write::write_all(&mut w, bytes).unwrap();
            }
        }
        w.finish().unwrap();
        path
    }

    /// An archive entry: path, uid, mode, mtime, content.
    type Entry = (String, u64, u32, u64, Vec<u8>);

    fn listing(upload: &Upload, name: &str) -> (Sent, Vec<Entry>) {
        let mut buf = Vec::new();
        let sent = write_archive(upload, name, &mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let entries = ar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap() & 0o7777,
                    h.mtime().unwrap(),
                    bytes,
                )
            })
            .collect();
        (sent, entries)
    }

    #[test]
    fn a_zip_goes_in_as_it_is_with_owned_folders_and_its_vendor_part_alone_or_left_out() {
        let d = tempfile::tempdir().unwrap();
        let zip = zip_of(
            d.path(),
            &[
                ("passenger_wsgi.py", b"app = 1\n", 0o644),
                ("bin/run.sh", b"#!/bin/sh\n", 0o755),
                ("tmp/", b"", 0o755),
                ("vendor/flask/__init__.py", b"x = 1\n", 0o644),
            ],
        );
        let upload = |part| Upload {
            target: "/srv/app".into(),
            source: Source::Zip {
                path: zip.clone(),
                part,
            },
            owner: (1000, 1001),
        };
        let (sent, all) = listing(&upload(ZipPart::All), "srv/app");
        assert_eq!(
            sent,
            Sent {
                files: 3,
                bytes: 24
            }
        );
        let names: Vec<&str> = all.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "srv/app/",
                "srv/app/bin/",
                "srv/app/tmp/",
                "srv/app/vendor/",
                "srv/app/vendor/flask/",
                "srv/app/passenger_wsgi.py",
                "srv/app/bin/run.sh",
                "srv/app/vendor/flask/__init__.py",
            ]
        );
        assert!(all.iter().all(|e| e.1 == 1000));
        // Files keep the zip's mode and time (1980-01-01, what unzip gives on the server).
        let run = all.iter().find(|e| e.0.ends_with("run.sh")).unwrap();
        assert_eq!(
            (run.2, run.3, run.4.as_slice()),
            (0o755, 315_532_800, &b"#!/bin/sh\n"[..])
        );
        let app = all.iter().find(|e| e.0.ends_with("wsgi.py")).unwrap();
        assert_eq!(app.2, 0o644);

        let (sent, without) = listing(&upload(ZipPart::Without("vendor/".into())), "srv/app");
        assert_eq!(sent.files, 2);
        assert!(
            without.iter().all(|e| !e.0.contains("vendor")),
            "{without:?}"
        );

        let (sent, only) = listing(&upload(ZipPart::Only("vendor/".into())), "srv/app/vendor");
        assert_eq!(sent, Sent { files: 1, bytes: 6 });
        let names: Vec<&str> = only.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "srv/app/vendor/",
                "srv/app/vendor/flask/",
                "srv/app/vendor/flask/__init__.py"
            ]
        );
    }

    #[test]
    fn a_zip_entry_that_leaves_the_folder_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let zip = zip_of(d.path(), &[("../evil.py", b"x", 0o644)]);
        let up = Upload {
            target: "/srv/app".into(),
            source: Source::Zip {
                path: zip,
                part: ZipPart::All,
            },
            owner: (0, 0),
        };
        let err = write_archive(&up, "srv/app", &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("leaves the package folder"),
            "{err}"
        );
    }

    #[test]
    fn zip_times_convert_to_unix_seconds() {
        assert_eq!(unix_time(zip::DateTime::default()), 315_532_800);
        let t = zip::DateTime::from_date_and_time(2026, 12, 7, 5, 1, 12).unwrap();
        assert_eq!(unix_time(t), 1_796_619_672);
    }
}
