//! The keys `[gate] trusted_keys` lists: ed25519 public keys, parsed once from the forms people
//! paste, and shown by a short id. `ledger::signing` signs and verifies with them.
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// DER prefix of an ed25519 SubjectPublicKeyInfo; what `openssl pkey -pubout` wraps the key in.
pub const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An ed25519 public key. Written as `ed25519:<base64 of the 32 bytes>`.
///
/// Kept as bytes: turning them into a curve point costs tens of microseconds, and the ledger
/// reads thousands of signed runs of which the gate verifies only a few.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Accepts `ed25519:<base64>`, bare base64 or hex of the 32 key bytes, or the base64 body of
    /// an `openssl pkey -pubout` PEM (SubjectPublicKeyInfo).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let body = t.strip_prefix("ed25519:").unwrap_or(t);
        let bytes = if body.len() == 64 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(body).map_err(|e| e.to_string())?
        } else {
            B64.decode(body)
                .map_err(|_| format!("`{t}` is neither base64 nor hex"))?
        };
        let raw: [u8; 32] = match bytes.len() {
            32 => bytes.try_into().expect("length checked"),
            44 if bytes[..12] == SPKI_PREFIX => bytes[12..].try_into().expect("length checked"),
            n => {
                return Err(format!(
                    "`{t}` is {n} bytes; an ed25519 public key is 32 (or 44 as SubjectPublicKeyInfo)"
                ));
            }
        };
        VerifyingKey::from_bytes(&raw)
            .map(|_| PublicKey(raw))
            .map_err(|_| format!("`{t}` is not a valid ed25519 public key"))
    }

    /// For keys harness stored itself after `parse` accepted them; an invalid one only fails
    /// verification.
    pub fn from_stored(text: &str) -> Result<Self, String> {
        let body = text.strip_prefix("ed25519:").unwrap_or(text);
        let raw = B64
            .decode(body)
            .map_err(|_| format!("stored key `{text}` is not base64"))?;
        raw.try_into()
            .map(PublicKey)
            .map_err(|_| format!("stored key `{text}` is not 32 bytes"))
    }

    /// The 32 key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key made from bytes harness produced itself (a secret key's public half).
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        PublicKey(raw)
    }

    /// First 16 hex digits of the sha256 of the key bytes: short enough to read, long enough to tell
    /// keys apart.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", B64.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

/// A key listed in `[gate] trusted_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: Option<String>,
    pub key: PublicKey,
}

impl TrustedKey {
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("`{n}` ({})", self.key.id()),
            None => self.key.id(),
        }
    }
}
