//! ed25519 keys and signatures over run records, and the portable export format.
//!
//! The signed message is `harness-run-record/<schema>\n` followed by
//! [`RunRecord::canonical_bytes`]. The prefix keeps a run signature from being valid for anything
//! else signed with the same key, and a schema 1 signature from standing for a schema 2 record.
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::record::RunRecord;

/// The export format harness writes; it reads every schema up to this one.
pub const FORMAT: &str = "harness-run-record/2";
const FORMAT_PREFIX: &str = "harness-run-record/";

fn format_of(schema: u8) -> String {
    format!("{FORMAT_PREFIX}{schema}")
}
use crate::model::keys::{PublicKey, TrustedKey};

/// A signature over a run record, with the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub public_key: PublicKey,
    pub bytes: [u8; 64],
}

impl Signature {
    pub fn base64(&self) -> String {
        B64.encode(self.bytes)
    }

    /// From an export file: the key is checked as strictly as a configured one.
    pub fn from_parts(public_key: &str, signature_b64: &str) -> Result<Self, String> {
        Self::with_key(PublicKey::parse(public_key)?, signature_b64)
    }

    /// From the ledger, which only holds signatures that `from_parts` accepted on import.
    pub fn from_stored(public_key: &str, signature_b64: &str) -> Result<Self, String> {
        Self::with_key(PublicKey::from_stored(public_key)?, signature_b64)
    }

    fn with_key(public_key: PublicKey, signature_b64: &str) -> Result<Self, String> {
        let raw = B64
            .decode(signature_b64.trim())
            .map_err(|_| "the signature is not base64".to_string())?;
        let bytes: [u8; 64] = raw
            .try_into()
            .map_err(|_| "an ed25519 signature is 64 bytes".to_string())?;
        Ok(Self { public_key, bytes })
    }

    /// Whether this signature was made over exactly this record by its key.
    pub fn matches(&self, record: &RunRecord) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&self.bytes);
        VerifyingKey::from_bytes(self.public_key.bytes())
            .is_ok_and(|k| k.verify(&message(record), &sig).is_ok())
    }
}

/// What importing a record's signature amounts to, given the trusted keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    Unsigned,
    /// Signed with a key that is not in `[gate] trusted_keys`.
    Foreign {
        key_id: String,
    },
    /// Signed with a trusted key, but the record is not what was signed.
    BadSignature {
        key: String,
    },
    Trusted {
        key: String,
    },
}

impl Trust {
    pub fn of(signature: Option<&Signature>, record: &RunRecord, trusted: &[TrustedKey]) -> Trust {
        let Some(sig) = signature else {
            return Trust::Unsigned;
        };
        let Some(t) = trusted.iter().find(|t| t.key == sig.public_key) else {
            return Trust::Foreign {
                key_id: sig.public_key.id(),
            };
        };
        if sig.matches(record) {
            Trust::Trusted { key: t.label() }
        } else {
            Trust::BadSignature { key: t.label() }
        }
    }

    /// The best of several signatures of one record: a trusted one that matches, else a trusted
    /// one that does not, else the first foreign one.
    pub fn of_all(signatures: &[Signature], record: &RunRecord, trusted: &[TrustedKey]) -> Trust {
        let all: Vec<Trust> = signatures
            .iter()
            .map(|s| Trust::of(Some(s), record, trusted))
            .collect();
        let rank = |t: &Trust| match t {
            Trust::Trusted { .. } => 0,
            Trust::BadSignature { .. } => 1,
            Trust::Foreign { .. } => 2,
            Trust::Unsigned => 3,
        };
        all.into_iter().min_by_key(rank).unwrap_or(Trust::Unsigned)
    }

    pub fn counts(&self) -> bool {
        matches!(self, Trust::Trusted { .. })
    }

    /// Why a record with this trust does not count, or by whom it is vouched for.
    pub fn explain(&self) -> String {
        match self {
            Trust::Unsigned => {
                "the record is unsigned; imported records count only when signed by a key in \
                 [gate] trusted_keys"
                    .into()
            }
            Trust::Foreign { key_id } => format!(
                "the record is signed by key {key_id}, which is not in [gate] trusted_keys (foreign)"
            ),
            Trust::BadSignature { key } => format!(
                "the record does not match its signature by trusted key {key}: it was changed after \
                 signing"
            ),
            Trust::Trusted { key } => format!("signed by trusted key {key}"),
        }
    }
}

fn message(record: &RunRecord) -> Vec<u8> {
    let mut m = format!("{}\n", format_of(record.schema)).into_bytes();
    m.extend_from_slice(&record.canonical_bytes());
    m
}

/// A private key for signing exports, read from a PKCS#8 PEM file (`openssl genpkey -algorithm
/// ed25519` or `harness runs keygen`).
pub struct SecretKey(SigningKey);

/// Shows only the public half: a private key must never reach a log line.
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key().id())
    }
}

impl SecretKey {
    pub fn generate() -> Self {
        Self(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    pub fn read_pem(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
        // A key pasted into a CI secret often gains blank lines or spaces around it, which the
        // strict PEM reader refuses.
        SigningKey::from_pkcs8_pem(&format!("{}\n", text.trim()))
            .map(SecretKey)
            .map_err(|e| {
                format!(
                    "{} is not an ed25519 private key in PKCS#8 PEM ({e})",
                    path.display()
                )
            })
    }

    pub fn to_pem(&self) -> String {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an ed25519 key encodes as PKCS#8")
            .to_string()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, record: &RunRecord) -> Signature {
        Signature {
            public_key: self.public_key(),
            bytes: self.0.sign(&message(record)).to_bytes(),
        }
    }
}

/// The file `runs export` writes and `runs import` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub run: RunRecord,
    pub signature: Option<ExportSignature>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSignature {
    pub algorithm: String,
    pub public_key: String,
    pub key_id: String,
    /// base64 of the 64 signature bytes over `harness-run-record/<schema>\n` + the canonical
    /// record.
    pub value: String,
    /// How the signed bytes are made, for anyone verifying without harness.
    pub covers: String,
}

impl Export {
    pub fn new(record: &RunRecord, key: Option<&SecretKey>) -> Self {
        let format = format_of(record.schema);
        Self {
            format: format.clone(),
            run: record.clone(),
            signature: key.map(|k| {
                let sig = k.sign(record);
                ExportSignature {
                    algorithm: "ed25519".into(),
                    public_key: sig.public_key.to_string(),
                    key_id: sig.public_key.id(),
                    value: sig.base64(),
                    covers: format!("\"{format}\\n\" + RFC 8785 canonical JSON of `run`"),
                }
            }),
        }
    }

    pub fn parse(text: &str) -> Result<(RunRecord, Option<Signature>), String> {
        let export: Export = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let schema = export
            .format
            .strip_prefix(FORMAT_PREFIX)
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| (1..=super::record::SCHEMA).contains(n))
            .ok_or_else(|| {
                format!(
                    "format `{}` is not one this harness reads (harness-run-record/1 to {FORMAT}); \
                     was it written by a newer harness?",
                    export.format
                )
            })?;
        let mut run = export.run;
        if schema < 2 && (!run.pytest_args.is_empty() || run.test_env.is_some()) {
            return Err(format!(
                "a `{}` record cannot carry pytest_args or test_env (schema 2 fields)",
                export.format
            ));
        }
        run.schema = schema;
        let signature = match &export.signature {
            None => None,
            Some(s) if s.algorithm != "ed25519" => {
                return Err(format!(
                    "signature algorithm `{}` is not supported",
                    s.algorithm
                ));
            }
            Some(s) => Some(Signature::from_parts(&s.public_key, &s.value)?),
        };
        Ok((run, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{Outcome, Selection};
    use crate::model::timestamp::Timestamp;

    fn record() -> RunRecord {
        RunRecord {
            uid: "00".repeat(16),
            started_at: Timestamp::from_unix_ms(1_000),
            finished_at: Timestamp::from_unix_ms(2_000),
            git_commit: Some("a".repeat(40)),
            dirty: Some(false),
            target: "local".into(),
            package_sha256: "b".repeat(64),
            code_fingerprint: "c".repeat(64),
            schema_fingerprint: Some("e".repeat(64)),
            input_fingerprint: "d".repeat(64),
            selection: Selection::Full,
            passed: 3,
            failed: 0,
            skipped: 0,
            errors: 0,
            outcome: Outcome::Green,
            image_ids: Default::default(),
            browser_version: None,
            report_path: None,
            pytest_args: Vec::new(),
            test_env: None,
            fingerprint_scheme: None,
            schema: crate::ledger::SCHEMA,
        }
    }

    #[test]
    fn public_key_forms_parse_to_the_same_key() {
        let k = SecretKey::generate().public_key();
        let raw = *k.bytes();
        let b64 = B64.encode(raw);
        let mut spki = crate::model::keys::SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&raw);
        for form in [
            k.to_string(),
            b64.clone(),
            hex::encode(raw),
            format!("ed25519:{}", hex::encode(raw)),
            B64.encode(&spki),
        ] {
            assert_eq!(PublicKey::parse(&form).unwrap(), k, "{form}");
        }
        assert!(PublicKey::parse("abc").is_err());
        assert!(
            PublicKey::parse(&B64.encode([1u8; 31]))
                .unwrap_err()
                .contains("31 bytes")
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let k = SecretKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::write(&p, k.to_pem()).unwrap();
        assert!(k.to_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            SecretKey::read_pem(&p).unwrap().public_key(),
            k.public_key()
        );
        // As a CI secret often gives it back: blank lines and spaces around it.
        std::fs::write(&p, format!("\n  {}\n\n", k.to_pem())).unwrap();
        assert_eq!(
            SecretKey::read_pem(&p).unwrap().public_key(),
            k.public_key()
        );
        std::fs::write(&p, "not a key").unwrap();
        assert!(SecretKey::read_pem(&p).unwrap_err().contains("PKCS#8"));
    }

    #[test]
    fn trust_distinguishes_unsigned_foreign_tampered_and_trusted() {
        let ci = SecretKey::generate();
        let other = SecretKey::generate();
        let trusted = [TrustedKey {
            name: Some("ci".into()),
            key: ci.public_key(),
        }];
        let r = record();
        assert_eq!(Trust::of(None, &r, &trusted), Trust::Unsigned);
        let foreign = other.sign(&r);
        assert!(matches!(
            Trust::of(Some(&foreign), &r, &trusted),
            Trust::Foreign { .. }
        ));
        let good = ci.sign(&r);
        assert!(Trust::of(Some(&good), &r, &trusted).counts());
        let mut edited = r.clone();
        edited.failed = 1;
        assert!(matches!(
            Trust::of(Some(&good), &edited, &trusted),
            Trust::BadSignature { .. }
        ));
    }

    #[test]
    fn schema_1_exports_still_import_and_verify_but_only_as_schema_1() {
        let ci = SecretKey::generate();
        let mut r = record();
        r.schema = 1;
        let text = serde_json::to_string(&Export::new(&r, Some(&ci))).unwrap();
        assert!(
            text.contains(r#""format":"harness-run-record/1""#),
            "{text}"
        );
        let (run, sig) = Export::parse(&text).unwrap();
        assert_eq!(run.schema, 1);
        assert!(sig.unwrap().matches(&run));
        let mut as_2 = run.clone();
        as_2.schema = 2;
        assert!(!ci.sign(&r).matches(&as_2));
        // A schema 1 file cannot smuggle schema 2 fields.
        let bad = text.replace(r#""passed":3"#, r#""passed":3,"pytest_args":["-x"]"#);
        assert!(Export::parse(&bad).unwrap_err().contains("schema 2"));
    }

    #[test]
    fn export_parses_back_to_the_signed_record() {
        let ci = SecretKey::generate();
        let text = serde_json::to_string_pretty(&Export::new(&record(), Some(&ci))).unwrap();
        let (run, sig) = Export::parse(&text).unwrap();
        assert_eq!(run, record());
        assert!(sig.unwrap().matches(&run));
        let (_, none) =
            Export::parse(&serde_json::to_string(&Export::new(&record(), None)).unwrap()).unwrap();
        assert!(none.is_none());
        assert!(Export::parse(&text.replace(FORMAT, "other/9")).is_err());
    }
}
