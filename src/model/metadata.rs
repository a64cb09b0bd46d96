//! The files harness itself writes at the root of every package.

/// Generated files at the package root; they never count towards the code fingerprint.
pub const METADATA_FILES: [&str; 3] = ["build_info.json", "DEPLOY_README.md", "MANIFEST.json"];
