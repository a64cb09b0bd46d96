//! A small project `harness build` packages offline: one local wheel (pip with a closed index),
//! SQL seeding with generated secrets, stale bytecode to leave out. Each has its own wheel cache.
#![allow(dead_code)]
use std::path::PathBuf;
use std::process::{Command, Output};

/// A throwaway project with its own wheel cache, so tests never share state.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
}

pub const CONFIG: &str = r#"
[package]
sources = [{ from = "src", to = "src" }]
entry_point = { from = "passenger_wsgi.py", to = "passenger_wsgi.py" }
requirements = "requirements.txt"
data_files = ["app.db"]

[package.database]
path = "app.db"
sql = ["db/schema.sql"]

[package.secrets]
admin_password = "password"
secret_key = "hex"

[[package.clients]]
client_id = "primary"
is_primary = true

[targets.local]
env = { DEPLOYMENT_TARGET = "local" }
"#;

impl Project {
    pub fn new() -> Project {
        let p = Project {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        };
        p.write("harness.toml", CONFIG);
        p.write(
            "passenger_wsgi.py",
            "import os, sys\nhere = os.path.dirname(os.path.abspath(__file__))\nsys.path[:0] = [os.path.join(here, 'vendor'), os.path.join(here, 'src')]\nfrom app import application\n",
        );
        p.write("src/app/__init__.py", "import demo_pkg\n\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n");
        p.write("src/app/__pycache__/stale.cpython-311.pyc", "stale");
        p.write("src/app/helpers.pyc", "stale");
        p.write(
            "db/schema.sql",
            "CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT NOT NULL, password_hash TEXT NOT NULL);\n\
             INSERT INTO users(username, password_hash) VALUES ('admin', {{admin_password|werkzeug}});\n\
             CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n\
             INSERT INTO settings VALUES ('secret_key', {{secret_key|json}}), ('token', {{client_token.primary|sha256}});\n",
        );
        std::fs::create_dir_all(p.path("wheels")).unwrap();
        harness::package::vendor::write_test_wheel(
            &p.path("wheels/demo_pkg-1.2.3-py3-none-any.whl"),
            &[
                ("demo_pkg/__init__.py", b"VALUE = 42\n"),
                (
                    "demo_pkg-1.2.3.dist-info/METADATA",
                    b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2.3\n",
                ),
                (
                    "demo_pkg-1.2.3.dist-info/WHEEL",
                    b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                ),
                ("demo_pkg-1.2.3.dist-info/RECORD", b""),
            ],
        )
        .unwrap();
        p.write(
            "requirements.txt",
            "./wheels/demo_pkg-1.2.3-py3-none-any.whl\n",
        );
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn harness(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::support::harness_bin());
        c.args(["--project", self.dir.path().to_str().unwrap()])
            .args(args);
        c.env("HARNESS_CACHE_DIR", self.cache.path())
            .env("SOURCE_DATE_EPOCH", "1700000000");
        // pip must never reach a real index from these tests; local wheels need none.
        c.env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "2");
        c.env("PIP_NO_INDEX", "1");
        c
    }

    pub fn build(&self, args: &[&str]) -> Output {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        self.harness(&all).output().unwrap()
    }

    pub fn zip(&self, target: &str) -> PathBuf {
        self.path(&format!(".harness/dist/{target}/deploy.zip"))
    }
}
