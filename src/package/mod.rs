//! Package: harness.toml → deploy.zip + deploy.zip.sha256, with manifest and fingerprints.
use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::Reporter;

pub struct BuildRequest {
    pub target: &'static str,
    pub seed_demo: bool,
    pub rotate_secrets: bool,
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fingerprints {
    pub code: String,
    pub schema: Option<String>,
    pub input: String,
}

/// What a build hands to later stages.
#[derive(Debug, Clone)]
pub struct PackageManifest {
    pub zip: PathBuf,
    pub sha256: String,
    pub zip_size: u64,
    pub file_count: usize,
    pub fingerprints: Fingerprints,
    pub state_file: PathBuf,
}

impl PackageManifest {
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "zip": self.zip, "sha256": self.sha256, "size": self.zip_size, "files": self.file_count,
            "fingerprints": self.fingerprints, "state_file": self.state_file,
        })
    }
}

pub fn build(
    _config: &Config,
    _req: &BuildRequest,
    _reporter: &dyn Reporter,
) -> Result<PackageManifest, Failure> {
    Err(Failure::new(Exit::Environment, "not built yet"))
}
