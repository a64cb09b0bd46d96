//! Deterministic zip writing and the per-file manifest.
//!
//! Same inputs give the same bytes: entries are added in sorted order by the caller, every entry
//! carries the same timestamp (1980-01-01, the zip epoch), modes are normalised to 0644/0755, no
//! directory entries or extra fields are written, and deflate always runs through one pinned
//! backend (zlib-rs via flate2, fixed level).
use std::io::{Read, Seek, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// One file of a package, as MANIFEST.json lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub mode: u32,
}

impl FileEntry {
    pub fn of(path: String, data: &[u8], mode: u32) -> Self {
        FileEntry {
            path,
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
            mode,
        }
    }
}

/// Serialised the same way everywhere we write JSON that ends up hashed or zipped.
pub fn pretty_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("plain data serialises");
    v.push(b'\n');
    v
}

/// Normalised mode for a file on disk: executable or not.
pub fn normalised_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

pub struct DeterministicZip<W: Write + Seek> {
    inner: ZipWriter<W>,
}

/// Deflate level: the zlib default; the same value on every build keeps the bytes stable.
const LEVEL: i64 = 6;

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(LEVEL))
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
        .large_file(false)
}

impl<W: Write + Seek> DeterministicZip<W> {
    pub fn new(out: W) -> Self {
        Self {
            inner: ZipWriter::new(out),
        }
    }

    pub fn add_bytes(&mut self, name: &str, data: &[u8], mode: u32) -> zip::result::ZipResult<()> {
        self.inner.start_file(name, options(mode))?;
        self.inner.write_all(data)?;
        Ok(())
    }

    /// Streams a file from disk and returns its manifest entry.
    pub fn add_file(
        &mut self,
        name: &str,
        path: &Path,
        mode: u32,
    ) -> zip::result::ZipResult<FileEntry> {
        self.inner.start_file(name, options(mode))?;
        let mut f = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            self.inner.write_all(&buf[..n])?;
            size += n as u64;
        }
        Ok(FileEntry {
            path: name.to_string(),
            size,
            sha256: hex::encode(hasher.finalize()),
            mode,
        })
    }

    /// Copies an entry that an earlier `DeterministicZip` wrote, without recompressing it. Its
    /// name, time and mode are already ours, so the copy is byte-for-byte what `add_bytes` gives.
    pub fn raw_copy<R: Read + Seek>(
        &mut self,
        from: &mut ZipArchive<R>,
        index: usize,
    ) -> zip::result::ZipResult<()> {
        let file = from.by_index_raw(index)?;
        self.inner.raw_copy_file(file)
    }

    pub fn finish(self) -> zip::result::ZipResult<W> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn build(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut z = DeterministicZip::new(Cursor::new(Vec::new()));
        for (n, d, m) in files {
            z.add_bytes(n, d, *m).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn same_input_same_bytes() {
        let files: &[(&str, &[u8], u32)] = &[
            ("a.py", b"print(1)\n", 0o644),
            ("bin/x", b"#!/bin/sh\n", 0o755),
        ];
        assert_eq!(build(files), build(files));
    }

    #[test]
    fn raw_copy_equals_fresh_write() {
        let src = build(&[("vendor/a.py", b"x = 1\n" as &[u8], 0o644)]);
        let mut archive = ZipArchive::new(Cursor::new(src.clone())).unwrap();
        let mut z = DeterministicZip::new(Cursor::new(Vec::new()));
        z.raw_copy(&mut archive, 0).unwrap();
        assert_eq!(z.finish().unwrap().into_inner(), src);
    }

    #[test]
    fn entries_carry_fixed_time_and_mode() {
        let bytes = build(&[("run.sh", b"#!/bin/sh\n" as &[u8], 0o755)]);
        let mut a = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let f = a.by_index(0).unwrap();
        assert_eq!(f.unix_mode().unwrap() & 0o7777, 0o755);
        assert_eq!(f.last_modified().unwrap(), DateTime::default());
    }
}
