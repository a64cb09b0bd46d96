//! The code and input fingerprints (the schema fingerprint lives with the database).
use sha2::{Digest, Sha256};

use super::stage::SourceFile;
use crate::config::Config;
use crate::git::GitFacts;
use crate::model::target::Target;

/// Which encoding [`code`] uses; build_info.json says it (`fingerprints.scheme`) and run records
/// carry it, so a fingerprint of one scheme is never compared with one of another.
pub const SCHEME: u8 = 2;

/// sha256 over the sorted `(path, sha256)` list of code files. Generated metadata and data files
/// are left out by the caller, so local and webhosting packages of one source agree.
///
/// Every field is length-prefixed, so no list of names can encode like another: scheme 1 joined
/// `path\tsha\n`, and one file named `A\t<sha of A>\nB` had the fingerprint of two files A and B.
pub fn code<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut list: Vec<(&str, &str)> = files.into_iter().collect();
    list.sort();
    let mut h = Sha256::new();
    h.update(format!("harness-code-fingerprint/{SCHEME}\0").as_bytes());
    for (path, sha) in list {
        for field in [path, sha] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// A sha256 over labelled, length-prefixed fields: no two field lists hash alike by shifting a
/// boundary. The input fingerprint and the seed cache's key are made of it.
#[derive(Default)]
pub struct Fields(Sha256);

impl Fields {
    pub fn field(&mut self, label: &str, bytes: &[u8]) {
        self.0.update(label.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    pub fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// A cheap hash of everything a build reads, from metadata only: it says whether a package is
/// stale without rebuilding it. The git facts count because build_info.json and DEPLOY_README.md
/// carry them: after a commit the same sources make other bytes.
pub fn input(
    config: &Config,
    target: Target,
    seed_demo: bool,
    sources: &[SourceFile],
    git: &GitFacts,
) -> String {
    let mut h = Fields::default();
    let mut field = |label: &str, bytes: &[u8]| h.field(label, bytes);
    field("harness", env!("CARGO_PKG_VERSION").as_bytes());
    field("write_pause", super::stage::WRITE_PAUSE.as_bytes());
    field("target", target.as_str().as_bytes());
    field("seed_demo", &[seed_demo as u8]);
    field("config", &std::fs::read(&config.file).unwrap_or_default());
    if let Some(req) = &config.package.requirements {
        // Every file pip reads for them; an unreadable one makes the build fail, so any stable
        // stand-in will do here.
        match crate::requirements::of_config(config, "[package] requirements", req) {
            Ok(set) => field("requirements", &set.key_material()),
            Err(e) => field("requirements-error", e.message.as_bytes()),
        }
    }
    if config
        .package
        .database
        .as_ref()
        .is_some_and(|d| !d.get_ref().seed_command.is_empty())
    {
        // The seed command gets the target's env, files included: a changed value there makes
        // other database bytes. An unreadable file makes the build fail, so any stand-in will do.
        match config.env_layers(crate::config::EnvScope::Target(target)) {
            Ok(layers) => {
                for (k, v) in layers.merged() {
                    field("seed-env", k.as_bytes());
                    field("value", v.as_bytes());
                }
            }
            Err(e) => field("seed-env-error", e.message.as_bytes()),
        }
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        field("source_date_epoch", epoch.as_bytes());
    }
    field("git_commit", git.commit.as_deref().unwrap_or("").as_bytes());
    field("git_branch", git.branch.as_deref().unwrap_or("").as_bytes());
    field(
        "git_commit_time",
        &git.commit_time.unwrap_or(0).to_le_bytes(),
    );
    field("git_dirty", format!("{:?}", git.dirty).as_bytes());
    for f in sources {
        field("file", f.zip_path.as_bytes());
        field("size", &f.size.to_le_bytes());
        field("mtime", &f.mtime_ns.to_le_bytes());
        field("mode", &f.mode.to_le_bytes());
    }
    for path in super::database_inputs(config, target, seed_demo) {
        let meta = std::fs::metadata(&path);
        field("db-input", path.to_string_lossy().as_bytes());
        if let Ok(m) = meta {
            use std::os::unix::fs::MetadataExt;
            field("size", &m.len().to_le_bytes());
            field(
                "mtime",
                &(m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128).to_le_bytes(),
            );
        }
    }
    h.hex()
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_fingerprint_is_order_independent_and_content_sensitive() {
        let a = super::code([("a.py", "11"), ("b.py", "22")]);
        assert_eq!(a, super::code([("b.py", "22"), ("a.py", "11")]));
        assert_ne!(a, super::code([("a.py", "11"), ("b.py", "23")]));
        assert_ne!(a, super::code([("a.py", "11"), ("c.py", "22")]));
    }

    #[test]
    fn names_cannot_merge_into_another_list_of_files() {
        // Under scheme 1 these two lists hashed the same bytes.
        let sha_a = "aa".repeat(32);
        let sha_b = "bb".repeat(32);
        let merged = format!("A\t{sha_a}\nB");
        assert_ne!(
            super::code([("A", sha_a.as_str()), ("B", sha_b.as_str())]),
            super::code([(merged.as_str(), sha_b.as_str())])
        );
    }
}
