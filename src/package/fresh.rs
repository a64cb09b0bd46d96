//! Whether a built package can be used as it is: its sidecar (`deploy.zip.build.json`) must
//! record the input fingerprint the sources have now, and the zip must still hash to what the
//! sidecar says. Cheap: no staging, no pip, no zip read beyond one hash.
use std::path::Path;

use super::{Fingerprints, PackageManifest, sidecar_path};
use crate::config::Config;
use crate::error::Failure;
use crate::model::target::Target;

/// Why the package at `zip` cannot be used as it is, or `None` when its sidecar records the
/// input fingerprint `want`.
pub fn staleness(zip: &Path, want: &str) -> Option<String> {
    if !zip.is_file() {
        return Some(format!("{} is missing", zip.display()));
    }
    match read_sidecar(zip) {
        None => Some(format!("{} has no readable build record", zip.display())),
        Some(s) if s.fingerprints.input != want => {
            Some("its inputs (sources, config or git commit) changed since it was built".into())
        }
        Some(_) => None,
    }
}

#[derive(serde::Deserialize)]
struct Sidecar {
    build_id: String,
    target: String,
    sha256: String,
    fingerprints: SidecarFingerprints,
}

#[derive(serde::Deserialize)]
struct SidecarFingerprints {
    code: String,
    schema: Option<String>,
    input: String,
}

fn read_sidecar(zip: &Path) -> Option<Sidecar> {
    let bytes = std::fs::read(sidecar_path(zip)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The package of `target` at its default place, when it is fresh for the current sources and
/// its bytes are the ones its build recorded; `Ok(None)` means "build it".
pub fn reusable(config: &Config, target: Target) -> Result<Option<PackageManifest>, Failure> {
    let zip = super::default_output(config, target);
    if !zip.is_file() {
        return Ok(None);
    }
    let sources = super::stage::walk(config)?;
    let git = crate::git::facts(&config.root);
    let want = super::fingerprint::input(config, target, false, &sources, &git);
    // Read once: the input fingerprint decides freshness, the rest describes the package.
    let Some(sidecar) = read_sidecar(&zip).filter(|s| s.fingerprints.input == want) else {
        return Ok(None);
    };
    // A zip edited or replaced after its build is not the package the fingerprints describe.
    let sha256 = super::sha256_file(&zip)?;
    if sha256 != sidecar.sha256 || sidecar.target != target.as_str() {
        return Ok(None);
    }
    let zip_size = std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0);
    Ok(Some(PackageManifest {
        target: sidecar.target,
        build_id: sidecar.build_id,
        sha256,
        zip_size,
        file_count: 0,
        unpacked_size: 0,
        fingerprints: Fingerprints {
            code: sidecar.fingerprints.code,
            schema: sidecar.fingerprints.schema,
            input: sidecar.fingerprints.input,
        },
        state_file: super::secrets::state_file_path(&config.root, target),
        // Part of the input fingerprint that matched: the package was built from this state.
        git_commit: git.commit,
        dirty: git.dirty,
        vendor_cold: false,
        timings: Vec::new(),
        zip,
    }))
}
