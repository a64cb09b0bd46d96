//! A backup of production (the tar.gz `harness backup` writes) read back like a package: the
//! restore drill serves it in a local stack, and deploy reads its build id.
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Exit, Failure};

/// A backup extracted into a folder.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub dir: PathBuf,
    /// From its build_info.json.
    pub build_id: Option<String>,
    /// The database, when `[package.database] path` names one that the backup holds.
    pub database: Option<PathBuf>,
}

/// Extracts backup `archive` into `dest` (created when missing; should be empty). The result
/// looks like an extracted package plus what the app made at runtime (logs, tmp/): the app files,
/// build_info.json, and the database at `[package.database] path`, a consistent copy. Entries
/// that would land outside `dest` (absolute or `..` paths) are refused.
pub fn extract(config: &Config, archive: &Path, dest: &Path) -> Result<Extracted, Failure> {
    let bad = |why: String| {
        Failure::new(
            Exit::BadInput,
            format!("backup {}: {why}", archive.display()),
        )
        .hint("pass a backup written by harness (.harness/backups/webhosting-*.tar.gz)")
    };
    std::fs::create_dir_all(dest)
        .map_err(|e| Failure::new(Exit::Environment, format!("{dest:?}: {e}")))?;
    let file = std::fs::File::open(archive).map_err(|e| bad(e.to_string()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.set_preserve_permissions(false);
    tar.set_overwrite(true);
    for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let escapes = path.components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir
                    | std::path::Component::RootDir
                    | std::path::Component::Prefix(_)
            )
        });
        if escapes {
            return Err(bad(format!(
                "entry {} points outside the folder",
                path.display()
            )));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        entry
            .unpack_in(dest)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    let build_id = std::fs::read(dest.join("build_info.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["build_id"].as_str().map(str::to_string));
    let database = config
        .database_path()
        .map(|db| dest.join(db))
        .filter(|p| p.is_file());
    Ok(Extracted {
        dir: dest.to_path_buf(),
        build_id,
        database,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_gives_back_the_tree_and_the_database_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config::parse(
            dir.path().into(),
            dir.path().join("harness.toml"),
            "[package]\nsources = [{ from = \"src\", to = \"src\" }]\n\
             entry_point = { from = \"p.py\", to = \"passenger_wsgi.py\" }\ndata_files = [\"app.db\"]\n\
             [package.database]\npath = \"app.db\"\nsql = [\"s.sql\"]\n"
                .into(),
        )
        .unwrap();
        // The layout the backup step writes: the database first, then the live tree under ./
        let archive = dir.path().join("b.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&archive).unwrap(),
                flate2::Compression::fast(),
            );
            let mut t = tar::Builder::new(gz);
            let mut add = |name: &str, body: &[u8]| {
                let mut h = tar::Header::new_gnu();
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                t.append_data(&mut h, name, body).unwrap();
            };
            add("app.db", b"SQLite format 3\0");
            add("./build_info.json", b"{\"build_id\": \"B1\"}\n");
            add("./src/app/__init__.py", b"x = 1\n");
            t.into_inner().unwrap().finish().unwrap();
        }
        let out = dir.path().join("out");
        let x = extract(&cfg, &archive, &out).unwrap();
        assert_eq!(x.build_id.as_deref(), Some("B1"));
        assert_eq!(x.database, Some(out.join("app.db")));
        assert_eq!(
            std::fs::read(out.join("src/app/__init__.py")).unwrap(),
            b"x = 1\n"
        );

        let evil = dir.path().join("evil.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&evil).unwrap(),
                flate2::Compression::fast(),
            );
            let mut t = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            let body = b"pwned";
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            // Written raw: tar::Builder refuses `..` itself.
            h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../x.txt\0");
            h.set_cksum();
            t.append(&h, &body[..]).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        let e = extract(&cfg, &evil, &dir.path().join("out2")).unwrap_err();
        assert!(e.message.contains("outside"), "{}", e.message);
        assert!(!dir.path().join("x.txt").exists());
    }
}
