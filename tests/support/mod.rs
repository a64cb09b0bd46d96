//! Helpers shared by the integration suites (`mod support;` in each test crate that needs them).
use std::path::{Path, PathBuf};

pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flask-app")
}

/// A fresh copy of examples/flask-app without what builds and runs leave in it (.harness/, state
/// files, bytecode, pytest's cache), so every test starts from the committed example.
pub fn copy_example() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("harness-example-")
        .tempdir()
        .expect("tempdir");
    let src = example_dir();
    for entry in walkdir::WalkDir::new(&src).into_iter().filter_entry(|e| {
        let n = e.file_name().to_string_lossy();
        n != ".harness"
            && n != "__pycache__"
            && !n.starts_with("deployment_state")
            && n != ".pytest_cache"
    }) {
        let entry = entry.expect("walk the example");
        let dest = dir
            .path()
            .join(entry.path().strip_prefix(&src).expect("below the example"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("create dir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
    dir
}
