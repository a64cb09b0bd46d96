//! The project's local certificate authority and the short-lived leaf certificates it issues.
//!
//! One CA per project under `.harness/ca/` (key mode 0600), reused across runs so a browser or
//! curl that trusts it once keeps trusting it. Leaves are issued per run, for the stack's FQDN and
//! every service reached over TLS, and live for days, not years.
pub mod proxy;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Exit, Failure};
use crate::fsutil::{write_atomic, write_private};

const CA_VALIDITY_DAYS: i64 = 825;
pub const LEAF_VALIDITY_DAYS: i64 = 7;

/// The project CA as files on disk.
#[derive(Debug, Clone)]
pub struct Ca {
    pub dir: PathBuf,
    pub cert_pem: String,
    key_pem: String,
    /// sha256 of the certificate's DER, as colon-separated upper-case hex (what browsers show).
    pub fingerprint: String,
}

/// A leaf certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn ca_dir(project_root: &Path) -> PathBuf {
    project_root.join(".harness").join("ca")
}

fn err(what: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Environment, format!("certificate authority: {what}"))
}

impl Ca {
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// Loads the CA in `dir`, creating it first when there is none. Returns whether it was created.
    pub fn load_or_create(dir: &Path) -> Result<(Ca, bool), Failure> {
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        match (cert.is_file(), key.is_file()) {
            (true, true) => {
                let cert_pem = std::fs::read_to_string(&cert)
                    .map_err(|e| err(format!("{}: {e}", cert.display())))?;
                let key_pem = std::fs::read_to_string(&key)
                    .map_err(|e| err(format!("{}: {e}", key.display())))?;
                // Refuse a damaged pair before anything signs with it.
                let kp = KeyPair::from_pem(&key_pem).map_err(|e| {
                    Failure::new(
                        Exit::Environment,
                        format!("{} is not a usable key: {e}", key.display()),
                    )
                    .hint("run `harness certs --rotate` to make a new CA")
                })?;
                Issuer::from_ca_cert_pem(&cert_pem, kp).map_err(|e| {
                    Failure::new(
                        Exit::Environment,
                        format!("{} is not a usable CA certificate: {e}", cert.display()),
                    )
                    .hint("run `harness certs --rotate` to make a new CA")
                })?;
                let fingerprint = fingerprint_pem(&cert_pem)?;
                Ok((
                    Ca {
                        dir: dir.to_path_buf(),
                        cert_pem,
                        key_pem,
                        fingerprint,
                    },
                    false,
                ))
            }
            _ => Ok((Self::create(dir)?, true)),
        }
    }

    /// Replaces the CA with a new one. Certificates issued by the old one stop being trusted.
    pub fn create(dir: &Path) -> Result<Ca, Failure> {
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "harness local CA");
        dn.push(DnType::OrganizationName, "harness (test stacks only)");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let cert = params.self_signed(&key).map_err(err)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        write_private(&dir.join("ca.key"), key_pem.as_bytes())?;
        write_atomic(&dir.join("ca.pem"), cert_pem.as_bytes(), 0o644)?;
        let fingerprint = fingerprint_pem(&cert_pem)?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_pem,
            key_pem,
            fingerprint,
        })
    }

    /// Issues a short-lived server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[String]) -> Result<Leaf, Failure> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(err)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(Leaf {
            names: names.to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Leaf {
    /// Writes `<stem>.crt` (leaf followed by the CA, the chain servers send) and `<stem>.key`
    /// (0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str, ca: &Ca) -> Result<(PathBuf, PathBuf), Failure> {
        let crt = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write_atomic(
            &crt,
            format!("{}{}", self.cert_pem, ca.cert_pem).as_bytes(),
            0o644,
        )?;
        write_private(&key, self.key_pem.as_bytes())?;
        Ok((crt, key))
    }
}

/// A CA bundle: the system's trusted roots followed by our CA, for clients that read one file
/// (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).
pub fn bundle(system_roots: &str, ca: &Ca) -> String {
    let mut out = system_roots.trim_end().to_string();
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("# harness local CA\n");
    out.push_str(&ca.cert_pem);
    out
}

fn fingerprint_pem(pem: &str) -> Result<String, Failure> {
    let der = pem_to_der(pem).ok_or_else(|| err("the CA certificate is not PEM"))?;
    let digest = Sha256::digest(&der);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ca_is_created_once_then_reused_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = Ca::load_or_create(dir.path()).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(first.key_path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let (again, created) = Ca::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let rotated = Ca::create(dir.path()).unwrap();
        assert_ne!(rotated.fingerprint, first.fingerprint);
    }

    #[test]
    fn damaged_ca_key_is_an_error_with_a_way_out() {
        let dir = tempfile::tempdir().unwrap();
        Ca::load_or_create(dir.path()).unwrap();
        std::fs::write(dir.path().join("ca.key"), "garbage").unwrap();
        let e = Ca::load_or_create(dir.path()).unwrap_err();
        assert!(e.hint.unwrap().contains("--rotate"));
    }

    #[test]
    fn leaf_names_and_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Ca::load_or_create(dir.path()).unwrap();
        let leaf = ca
            .issue(&["app.localtest.me".into(), "geoip".into()])
            .unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let (crt, key) = leaf.write(dir.path(), "proxy", &ca).unwrap();
        assert_eq!(
            std::fs::read_to_string(crt)
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = bundle(
            "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n",
            &ca,
        );
        assert_eq!(b.matches("BEGIN CERTIFICATE").count(), 2);
    }
}
