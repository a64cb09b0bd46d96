//! What a run record holds, and the canonical bytes a signature covers.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::signing::Signature;
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;

/// Which tests a run ran. Only `Full` runs, or a complete set of shards, can open the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    Full,
    /// `-k EXPR` or explicit paths.
    Filtered {
        expr: String,
    },
    /// Shard `index` of `total`, 1-based.
    Shard {
        index: u32,
        total: u32,
    },
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::Full => write!(f, "full"),
            Selection::Filtered { expr } => write!(f, "filtered({expr})"),
            Selection::Shard { index, total } => write!(f, "shard {index}/{total}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Green,
    Red,
    Aborted,
    /// The stack or the environment failed; says nothing about the code.
    Infra,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Green => "green",
            Outcome::Red => "red",
            Outcome::Aborted => "aborted",
            Outcome::Infra => "infra",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "green" => Outcome::Green,
            "red" => Outcome::Red,
            "aborted" => Outcome::Aborted,
            "infra" => Outcome::Infra,
            _ => return None,
        })
    }
}

/// One test run: what ran, on which bytes, and how it ended. This is the portable part: it travels
/// in exports and is what a signature covers. The local id and the origin are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Random, 32 hex digits: the same run keeps it across ledgers, so imports de-duplicate.
    pub uid: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub git_commit: Option<String>,
    /// `None` when the git state was unknown (no repository, no git).
    pub dirty: Option<bool>,
    pub target: String,
    pub package_sha256: String,
    pub code_fingerprint: String,
    pub schema_fingerprint: Option<String>,
    pub input_fingerprint: String,
    pub selection: Selection,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub errors: u32,
    pub outcome: Outcome,
    /// Service name → image id.
    pub image_ids: BTreeMap<String, String>,
    pub browser_version: Option<String>,
    pub report_path: Option<String>,
    /// The pytest arguments the user added: `[test] args`, then `harness test -- ...`
    /// (schema 2; absent in schema 1 records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pytest_args: Vec<String>,
    /// `[test] env`: the names and a digest of the values, never the values (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_env: Option<EnvDigest>,
    /// How the code fingerprint was computed (`package::fingerprint::SCHEME`); absent: scheme 1,
    /// which the gate no longer accepts (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_scheme: Option<u8>,
    /// The record schema this record was made under, or imported as: what its signature
    /// covers. Not part of the record's JSON; exports carry it in `format`.
    #[serde(skip, default = "current_schema")]
    pub schema: u8,
}

/// The schema harness writes: 2 adds `pytest_args` and `test_env` to schema 1.
pub const SCHEMA: u8 = 2;

fn current_schema() -> u8 {
    SCHEMA
}

/// The names of `[test] env` and one sha256 over its names and values, so two runs can be told
/// apart by their environment without the values (which may be secrets) being stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvDigest {
    /// The keys of the inline `[test] env`.
    pub names: Vec<String>,
    /// Over the merged environment: the env files and the inline env.
    pub sha256: String,
    /// `[test] env_file` as harness.toml names them, the ones read, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl EnvDigest {
    /// `None` for an empty environment.
    pub fn of(env: &BTreeMap<String, String>) -> Option<Self> {
        Self::new(env, env.keys().cloned().collect(), Vec::new())
    }

    /// The job's env files and inline env: file names, inline names, one digest of the values.
    pub fn of_layers(layers: &crate::envfile::Layers) -> Option<Self> {
        Self::new(
            &layers.merged(),
            layers.inline_names(),
            layers
                .files_read()
                .into_iter()
                .map(str::to_string)
                .collect(),
        )
    }

    fn new(env: &BTreeMap<String, String>, names: Vec<String>, files: Vec<String>) -> Option<Self> {
        use sha2::{Digest, Sha256};
        if env.is_empty() && files.is_empty() {
            return None;
        }
        let mut h = Sha256::new();
        for (k, v) in env {
            // Length-prefixed, so no two environments share the digest's input.
            for part in [k, v] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        Some(Self {
            names,
            sha256: hex::encode(h.finalize()),
            files,
        })
    }
}

impl RunRecord {
    /// A run that starts now on the given package; `harness test` fills in the rest as it ends.
    pub fn start(
        target: Target,
        package_sha256: &str,
        fingerprints: &crate::package::Fingerprints,
        git: &crate::git::HeadFacts,
        selection: Selection,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            uid: new_uid(),
            started_at: now,
            finished_at: now,
            git_commit: git.commit.clone(),
            dirty: git.dirty,
            target: target.to_string(),
            package_sha256: package_sha256.to_string(),
            code_fingerprint: fingerprints.code.clone(),
            schema_fingerprint: fingerprints.schema.clone(),
            input_fingerprint: fingerprints.input.clone(),
            selection,
            passed: 0,
            failed: 0,
            skipped: 0,
            errors: 0,
            outcome: Outcome::Aborted,
            image_ids: BTreeMap::new(),
            browser_version: None,
            report_path: None,
            pytest_args: Vec::new(),
            test_env: None,
            fingerprint_scheme: Some(crate::package::fingerprint::SCHEME),
            schema: SCHEMA,
        }
    }

    /// The bytes a signature covers: the record as JSON with object keys sorted by code point, no
    /// whitespace, absent optionals as `null`, integers in decimal. For these records (no floats)
    /// that is the JSON Canonicalization Scheme, RFC 8785.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // serde_json's Map is a BTreeMap (no `preserve_order`), so going through Value sorts keys.
        let value = serde_json::to_value(self).expect("a run record serialises");
        serde_json::to_vec(&value).expect("a JSON value serialises")
    }
}

/// Where a stored run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Recorded by this ledger's own `harness test`.
    Local,
    /// Brought in by `harness runs import`.
    Imported,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Imported => "imported",
        }
    }
}

/// A run as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    /// Local, per ledger: what `runs` lists and `runs export ID` takes.
    pub id: i64,
    pub record: RunRecord,
    pub origin: Origin,
    /// Every signature imported for this record, each verified against it when it arrived; the
    /// gate checks them again against today's trusted keys.
    pub signatures: Vec<Signature>,
}

impl StoredRun {
    /// `local`, `imported, unsigned`, or `imported, signed by <key id>, <key id>`.
    pub fn describe(&self) -> String {
        match (self.origin, self.signatures.as_slice()) {
            (Origin::Local, []) => "local".into(),
            (o, []) => format!("{}, unsigned", o.as_str()),
            (o, sigs) => format!(
                "{}, signed by {}",
                o.as_str(),
                sigs.iter()
                    .map(|s| s.public_key.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RunRecord {
        RunRecord {
            uid: "0123456789abcdef0123456789abcdef".into(),
            started_at: Timestamp::parse("2026-11-26T05:00:00.000Z").unwrap(),
            finished_at: Timestamp::parse("2026-11-26T05:03:21.456Z").unwrap(),
            git_commit: Some("a".repeat(40)),
            dirty: Some(false),
            target: "local".into(),
            package_sha256: "b".repeat(64),
            code_fingerprint: "c".repeat(64),
            schema_fingerprint: None,
            input_fingerprint: "d".repeat(64),
            selection: Selection::Shard { index: 2, total: 3 },
            passed: 10,
            failed: 0,
            skipped: 1,
            errors: 0,
            outcome: Outcome::Green,
            image_ids: [("app".to_string(), "sha256:1".to_string())].into(),
            browser_version: Some("chromium 120".into()),
            report_path: None,
            pytest_args: Vec::new(),
            test_env: None,
            fingerprint_scheme: None,
            schema: SCHEMA,
        }
    }

    #[test]
    fn timestamp_text_round_trips_at_millisecond_precision() {
        let t = Timestamp::from_unix_ms(1_795_000_000_123);
        assert_eq!(Timestamp::parse(&t.rfc3339()).unwrap(), t);
        assert!(t.rfc3339().ends_with(".123Z"));
        assert_eq!(
            Timestamp::parse("2026-11-26T06:00:00.5+01:00").unwrap(),
            Timestamp::parse("2026-11-26T05:00:00.500Z").unwrap()
        );
        assert!(Timestamp::parse("2026-11-26T05:00:00.0001Z").is_err());
    }

    #[test]
    fn canonical_bytes_sort_keys_and_have_no_whitespace() {
        let bytes = sample().canonical_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"browser_version":"chromium 120","code_fingerprint":"#));
        assert!(text.contains(r#""schema_fingerprint":null"#));
        assert!(text.contains(r#""selection":{"index":2,"kind":"shard","total":3}"#));
        assert!(!text.contains(' ') || text.contains("chromium 120"));
        assert!(!text.contains('\n'));
        // Parsing and re-serialising gives the same bytes: what the importer checks is what was signed.
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.canonical_bytes(), text.as_bytes());
    }

    #[test]
    fn schema_2_fields_are_absent_from_the_bytes_when_empty_and_values_never_stored() {
        let plain = sample().canonical_bytes();
        assert!(!String::from_utf8_lossy(&plain).contains("pytest_args"));
        let mut r = sample();
        r.pytest_args = vec!["-p".into(), "no:cov".into()];
        let env = BTreeMap::from([("API_TOKEN".to_string(), "s3cret-value".to_string())]);
        r.test_env = EnvDigest::of(&env);
        let text = String::from_utf8(r.canonical_bytes()).unwrap();
        assert!(text.contains(r#""pytest_args":["-p","no:cov"]"#), "{text}");
        assert!(text.contains(r#""names":["API_TOKEN"]"#), "{text}");
        assert!(!text.contains("s3cret-value"), "{text}");
        let other = BTreeMap::from([("API_TOKEN".to_string(), "another".to_string())]);
        assert_ne!(EnvDigest::of(&env), EnvDigest::of(&other));
        assert_eq!(EnvDigest::of(&BTreeMap::new()), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<RunRecord>(v).is_err());
    }
}
