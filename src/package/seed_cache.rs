//! The seeded database, reused while nothing that can change it has changed.
//!
//! An app's own seed (Python imports, `create_all`, bcrypt rounds) can take seconds, and it writes
//! random tokens and timestamps, so two seeds never give the same bytes. A build whose seed inputs
//! are those of a cached entry takes that entry's database instead: the build is as fast as the
//! rest of it, and byte-identical to the one that seeded.
//!
//! What the key covers ([`SeedInputs`]): the harness version, the target, `--seed-demo`, every
//! packaged file (sources and wheels, by sha256), the seed argv and every project file an argv
//! item names (a seed wrapper outside `sources`), `seed_inputs` globs, the SQL files, the target's
//! env and harness.toml. Besides the key, an entry is reused only while the state file is as the
//! last seed left it ([`state_digest`]): a test that wrote a changed admin password back, or a
//! deleted state file, makes the next build seed again, so the database always matches the
//! secrets beside it. The seed's additions to the state file are in the state file itself, so a
//! hit keeps them. Entries live in `.harness/seed-cache/<target>/` (0600, the newest 3 per target),
//! never shared between targets.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Exit, Failure};
use crate::model::target::Target;

/// How many entries each target keeps.
pub const KEEP: usize = 3;

/// Everything a seed reads, gathered by the build.
pub struct SeedInputs<'a> {
    pub target: Target,
    pub seed_demo: bool,
    /// `(package path, sha256)` of every packaged file but the database, in path order.
    pub packaged: &'a [(String, String)],
    pub argv: &'a [String],
    /// Project files the seed reads beyond the packaged ones: argv items that name a file,
    /// `seed_inputs` matches, the SQL files. `(path relative to the project, bytes)`.
    pub files: Vec<(String, Vec<u8>)>,
    pub env: Vec<(String, String)>,
    pub config: &'a [u8],
}

impl SeedInputs<'_> {
    pub fn key(&self) -> String {
        let mut h = super::fingerprint::Fields::default();
        let mut field = |label: &str, bytes: &[u8]| h.field(label, bytes);
        field("harness", env!("CARGO_PKG_VERSION").as_bytes());
        field("target", self.target.as_str().as_bytes());
        field("seed_demo", &[self.seed_demo as u8]);
        for (p, sha) in self.packaged {
            field("packaged", p.as_bytes());
            field("sha256", sha.as_bytes());
        }
        for a in self.argv {
            field("argv", a.as_bytes());
        }
        for (p, bytes) in &self.files {
            field("file", p.as_bytes());
            field("bytes", bytes);
        }
        for (k, v) in &self.env {
            field("env", k.as_bytes());
            field("value", v.as_bytes());
        }
        field("config", self.config);
        h.hex()
    }
}

/// The state file as the seed sees it, without the bookkeeping every run rewrites.
pub fn state_digest(state: Option<&Map<String, Value>>) -> String {
    let kept: Map<String, Value> = state
        .map(|s| {
            s.iter()
                .filter(|(k, _)| !super::secrets::BOOKKEEPING_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    // serde_json's Map is ordered by key here, so equal content gives equal bytes.
    let bytes = match state {
        Some(_) => serde_json::to_vec(&kept).unwrap_or_default(),
        None => b"no state file".to_vec(),
    };
    hex::encode(Sha256::digest(bytes))
}

/// Why a build seeds instead of reusing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    Forced(&'static str),
    NoEntry,
    StateChanged,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Forced(flag) => write!(f, "{flag} given"),
            Miss::NoEntry => write!(f, "no cached seed for these inputs"),
            Miss::StateChanged => write!(f, "the state file changed since the last seed"),
        }
    }
}

/// One target's entries: `<key>.db` and `<key>.state` (the state digest the seed left).
pub struct SeedCache {
    dir: PathBuf,
}

impl SeedCache {
    pub fn of(project_root: &Path, target: Target) -> SeedCache {
        SeedCache {
            dir: project_root
                .join(".harness/seed-cache")
                .join(target.as_str()),
        }
    }

    fn db(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.db"))
    }

    fn state(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.state"))
    }

    /// The cached database for `key`, when the state file is as that seed left it.
    pub fn lookup(&self, key: &str, state: &str) -> Result<PathBuf, Miss> {
        let db = self.db(key);
        let recorded = std::fs::read_to_string(self.state(key)).map_err(|_| Miss::NoEntry)?;
        if !db.is_file() {
            return Err(Miss::NoEntry);
        }
        if recorded.trim() != state {
            return Err(Miss::StateChanged);
        }
        Ok(db)
    }

    /// Keeps `seeded` under `key` with the state digest it left, then drops all but the newest
    /// [`KEEP`] entries. The database is written before its state file: a half-written entry is
    /// never found.
    pub fn store(&self, key: &str, seeded: &Path, state: &str) -> Result<(), Failure> {
        crate::fsutil::create_private_dir(&self.dir)?;
        let bytes = std::fs::read(seeded).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot read {}: {e}", seeded.display()),
            )
        })?;
        crate::fsutil::write_private(&self.db(key), &bytes)?;
        crate::fsutil::write_private(&self.state(key), format!("{state}\n").as_bytes())?;
        self.prune(key);
        Ok(())
    }

    fn prune(&self, keep_key: &str) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, String)> = read
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = name.strip_suffix(".state")?.to_string();
                let t = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((t, key))
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        // The entry just stored, and the newest others up to KEEP in all.
        let mut others = 0;
        for (_, key) in entries {
            if key == keep_key {
                continue;
            }
            if others < KEEP - 1 {
                others += 1;
                continue;
            }
            let _ = std::fs::remove_file(self.state(&key));
            let _ = std::fs::remove_file(self.db(&key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(packaged: &'a [(String, String)], argv: &'a [String]) -> SeedInputs<'a> {
        SeedInputs {
            target: Target::Local,
            seed_demo: false,
            packaged,
            argv,
            files: vec![("tools/seed.py".into(), b"print(1)".to_vec())],
            env: vec![("A".into(), "1".into())],
            config: b"[package]",
        }
    }

    #[test]
    fn the_key_moves_with_every_input() {
        let packaged = vec![("src/a.py".to_string(), "aa".to_string())];
        let argv = vec!["python3".to_string(), "tools/seed.py".to_string()];
        let base = inputs(&packaged, &argv).key();
        assert_eq!(base, inputs(&packaged, &argv).key());
        let mut i = inputs(&packaged, &argv);
        i.target = Target::Webhosting;
        assert_ne!(i.key(), base);
        let mut i = inputs(&packaged, &argv);
        i.seed_demo = true;
        assert_ne!(i.key(), base);
        let other = vec![("src/a.py".to_string(), "ab".to_string())];
        assert_ne!(inputs(&other, &argv).key(), base);
        let mut i = inputs(&packaged, &argv);
        i.files[0].1 = b"print(2)".to_vec();
        assert_ne!(i.key(), base);
        let mut i = inputs(&packaged, &argv);
        i.env[0].1 = "2".into();
        assert_ne!(i.key(), base);
        let mut i = inputs(&packaged, &argv);
        i.config = b"[package] x";
        assert_ne!(i.key(), base);
        let argv2 = vec!["python3".to_string(), "tools/other.py".to_string()];
        assert_ne!(inputs(&packaged, &argv2).key(), base);
    }

    #[test]
    fn bookkeeping_does_not_change_the_state_digest_a_password_does() {
        let state = |password: &str, built: &str| -> Map<String, Value> {
            serde_json::from_value(serde_json::json!({
                "admin": {"password": password},
                "build": {"built_at": built},
                "last_updated_at": built,
                "deployment": {"build_id": built},
            }))
            .unwrap()
        };
        let a = state_digest(Some(&state("p1", "t1")));
        assert_eq!(a, state_digest(Some(&state("p1", "t2"))));
        assert_ne!(a, state_digest(Some(&state("p2", "t1"))));
        assert_ne!(state_digest(None), state_digest(Some(&Map::new())));
    }

    #[test]
    fn an_entry_is_found_only_with_its_state_and_the_newest_three_stay() {
        let d = tempfile::tempdir().unwrap();
        let cache = SeedCache::of(d.path(), Target::Local);
        let seeded = d.path().join("seeded.db");
        std::fs::write(&seeded, b"db-1").unwrap();
        assert_eq!(cache.lookup("k1", "s1"), Err(Miss::NoEntry));
        cache.store("k1", &seeded, "s1").unwrap();
        assert_eq!(
            std::fs::read(cache.lookup("k1", "s1").unwrap()).unwrap(),
            b"db-1"
        );
        assert_eq!(cache.lookup("k1", "s2"), Err(Miss::StateChanged));
        // Other targets never see it.
        assert_eq!(
            SeedCache::of(d.path(), Target::Webhosting).lookup("k1", "s1"),
            Err(Miss::NoEntry)
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.db("k1"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        for k in ["k2", "k3", "k4"] {
            std::thread::sleep(std::time::Duration::from_millis(20));
            cache.store(k, &seeded, "s").unwrap();
        }
        assert_eq!(
            cache.lookup("k1", "s1"),
            Err(Miss::NoEntry),
            "the oldest went"
        );
        for k in ["k2", "k3", "k4"] {
            assert!(cache.lookup(k, "s").is_ok(), "{k}");
        }
    }
}
