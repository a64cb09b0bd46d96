//! A build's identity: its id, a checked shape, and build_info.json, the file every package
//! carries. [`BuildInfo`] is the one writer (the package build) and the one reader (deploy,
//! the boot check, status, rollback and the version probe) of that file. Parity alone reads it
//! as plain JSON: it must also see fields a tampered file adds.
use std::fmt;

use serde::{Deserialize, Serialize};

/// `<YYYYMMDD>T<HHMMSS>Z-<12 hex>`: the only shape harness gives a build. Anything read from a
/// package or a server is checked against it before it names a file, a lock or a backup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildId(String);

impl BuildId {
    pub fn parse(id: &str) -> Option<BuildId> {
        let b = id.as_bytes();
        let ok = b.len() == 29
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'Z'
            && b[16] == b'-'
            && b[17..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        ok.then(|| BuildId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// build_info.json. Reading is lenient about what is missing (an older or a tampered package
/// is refused by the checks that read it, each with its own message), strict about types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    #[serde(default)]
    pub build_id: String,
    /// RFC 3339, the HEAD commit's time (the build is reproducible).
    #[serde(default)]
    pub built_at: String,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub git_commit_short: Option<String>,
    #[serde(default)]
    pub git_branch: Option<String>,
    #[serde(default)]
    pub git_dirty: Option<bool>,
    /// A target's name; kept as text so a package for another target is named in the refusal.
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub pythons: Vec<String>,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub fingerprints: PackagedFingerprints,
    #[serde(default)]
    pub harness_version: String,
}

/// The fingerprints a package carries (the input fingerprint stays beside the zip: it hashes
/// mtimes, and inside the zip it would break reproducibility).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagedFingerprints {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    /// How the code fingerprint is computed; packages from before it was recorded are scheme 1.
    #[serde(default = "first_scheme")]
    pub scheme: u64,
}

fn first_scheme() -> u64 {
    1
}

impl Default for PackagedFingerprints {
    fn default() -> Self {
        PackagedFingerprints {
            code: None,
            schema: None,
            scheme: first_scheme(),
        }
    }
}

impl BuildInfo {
    pub fn parse(bytes: &[u8]) -> Result<BuildInfo, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The file's bytes: pretty JSON with sorted keys and a final newline, so a rebuild of the
    /// same commit writes the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Through a Value: its map sorts the keys, as every build_info.json so far has them.
        let value = serde_json::to_value(self).expect("plain data serialises");
        let mut out = serde_json::to_vec_pretty(&value).expect("plain data serialises");
        out.push(b'\n');
        out
    }

    /// A text field by its build_info.json name, as a `contains` version probe's `{{field}}`
    /// names it; `None` for a missing field or one that is not text.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "build_id" => Some(&self.build_id),
            "built_at" => Some(&self.built_at),
            "git_commit" => self.git_commit.as_deref(),
            "git_commit_short" => self.git_commit_short.as_deref(),
            "git_branch" => self.git_branch.as_deref(),
            "target" => Some(&self.target),
            "harness_version" => Some(&self.harness_version),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_ids_have_harness_shape_only() {
        assert!(BuildId::parse("20260301T030000Z-abcdef123456").is_some());
        for bad in [
            "",
            "20260301T030000Z-ABCDEF123456",
            "20260301T030000Z-abcdef12345",
            "x$(touch /tmp/p)",
            "20260301T030000Z-abcdef123456/..",
        ] {
            assert_eq!(BuildId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn build_info_round_trips_with_sorted_keys_and_reads_old_files() {
        let info = BuildInfo {
            build_id: "20260301T030000Z-abcdef123456".into(),
            target: "webhosting".into(),
            git_commit_short: Some("abc1234".into()),
            fingerprints: PackagedFingerprints {
                code: Some("c".into()),
                schema: None,
                scheme: 2,
            },
            ..Default::default()
        };
        let bytes = info.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(text.ends_with("}\n"));
        assert_eq!(BuildInfo::parse(&bytes).unwrap(), info);
        // A file from before the scheme was recorded.
        let old = BuildInfo::parse(br#"{"build_id": "b", "fingerprints": {"code": "c"}}"#).unwrap();
        assert_eq!(old.fingerprints.scheme, 1);
        assert_eq!(old.field("build_id"), Some("b"));
        assert_eq!(old.field("git_branch"), None);
        assert!(BuildInfo::parse(br#"{"build_id": 5}"#).is_err());
    }
}
