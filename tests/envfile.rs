//! src/envfile/parse.rs against python-dotenv itself, on a corpus written for this project
//! (tests/fixtures/dotenv/corpus.env): every key reads the same, apart from the differences
//! docs/config.md lists. python-dotenv comes from the test venv scripts/test.sh makes
//! (`.venv-test`, tests/python-requirements.txt); without it the test fails under CI and is
//! skipped with a message elsewhere.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

fn python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    let has_dotenv = p.is_file()
        && Command::new(&p)
            .args(["-c", "import dotenv"])
            .status()
            .is_ok_and(|s| s.success());
    if has_dotenv {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} with python-dotenv is missing: scripts/test.sh makes it",
        p.display()
    );
    eprintln!("skipped: no .venv-test with python-dotenv (scripts/test.sh makes it)");
    None
}

const FROM_ENV: (&str, &str) = ("HARNESS_DOTENV_FROM_ENV", "from-env");

/// python-dotenv's `dotenv_values(file)` with only PATH and FROM_ENV in its environment: keys
/// with a value (a bare `KEY` gives None, which sets nothing), and what it printed.
fn reference(python: &Path, file: &Path) -> (BTreeMap<String, String>, String) {
    let o = Command::new(python)
        .args([
            "-c",
            "import dotenv, json, sys; v = dotenv.dotenv_values(sys.argv[1]); \
             print(json.dumps({k: x for k, x in v.items() if x is not None}))",
        ])
        .arg(file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(FROM_ENV.0, FROM_ENV.1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    (
        serde_json::from_slice(&o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ours(text: &str) -> BTreeMap<String, String> {
    let env = |n: &str| (n == FROM_ENV.0).then(|| FROM_ENV.1.to_string());
    harness::envfile::resolve(text, &[], &env)
        .unwrap()
        .into_iter()
        .map(|(e, v)| (e.key, v))
        .collect()
}

#[test]
fn the_corpus_reads_as_python_dotenv_reads_it() {
    let Some(python) = python() else { return };
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dotenv/corpus.env");
    let text = std::fs::read_to_string(&file).unwrap();
    let (want, warnings) = reference(&python, &file);
    assert!(warnings.is_empty(), "python-dotenv warned: {warnings}");
    let mut got = ours(&text);
    // The one difference on purpose (docs/config.md): single quotes are literal, as in Compose.
    assert_eq!(
        got.remove("SQ_LITERAL_REF").as_deref(),
        Some("${PLAIN} stays")
    );
    let mut want = want;
    assert_eq!(
        want.remove("SQ_LITERAL_REF").as_deref(),
        Some("value stays")
    );
    assert!(want.len() > 40, "{want:?}");
    let diff: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| {
            format!(
                "{k}: python-dotenv {:?}, harness {:?}",
                want.get(k),
                got.get(k)
            )
        })
        .collect();
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}

/// The other difference on purpose: python-dotenv warns about a line it cannot read and drops
/// it; harness refuses the file and names the line.
#[test]
fn a_line_python_dotenv_skips_is_an_error_with_its_line_here() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".env");
    std::fs::write(&file, "A=1\nB=2\nthis is not a setting\nC=3\n").unwrap();
    let (want, warnings) = reference(&python, &file);
    assert!(warnings.contains("line 3"), "{warnings}");
    assert_eq!(want.len(), 3);
    let e = harness::envfile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap_err();
    assert_eq!(e.line, 3, "{e:?}");
}

/// `harness env` on tests/fixtures/dotenv-app: each variable's origin, what it hides, masked
/// secrets, and the refusals, all without Docker.
#[test]
fn harness_env_names_each_origin_masks_secrets_and_refuses_with_exit_2() {
    let copy = support::copy_project(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dotenv-app"),
    );
    let root = copy.path();
    let env = |args: &[&str]| {
        let o = Command::new(support::harness_bin())
            .arg("--project")
            .arg(root)
            .arg("env")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            support::text(&o.stdout),
            support::text(&o.stderr),
        )
    };
    let secret = "s3cr3t-only-in-dot-env";
    std::fs::write(
        root.join(".env"),
        format!("SECRET_TOKEN={secret}\nDATABASE_URL=postgres://app:{secret}@db/app\n"),
    )
    .unwrap();
    let (code, out, err) = env(&[]);
    assert_eq!(code, Some(0), "{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.contains(&format!("  {key}=")))
            .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
            .to_string()
    };
    // (key, origin column, value as shown)
    for (key, origin, shown) in [
        ("GREETING", ".env.defaults:2 ", "hello from .env.defaults"),
        ("APP_MODE", "inline env (over .env.defaults:3) ", "stack"),
        (
            "SECRET_TOKEN",
            ".env:1 (over .env.defaults:5) ",
            "******** (22 characters)",
        ),
        ("DATABASE_URL", ".env:2 ", "postgres://app:********@db/app"),
        (
            "SSL_CERT_FILE",
            "built-in ",
            "/run/harness/tls/ca-bundle.pem",
        ),
    ] {
        let l = line(key);
        assert!(
            l.starts_with(origin) && l.ends_with(&format!("  {key}={shown}")),
            "{l}\n{out}"
        );
    }
    assert!(!out.contains(secret), "{out}");
    assert!(out.contains("# env files: .env.defaults, .env\n"), "{out}");

    // The job: its own file, under harness's wiring.
    let (code, out, _) = env(&["--test", "--with-mocks"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("ui_tests/suite.env:2"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("built-in (over ui_tests/suite.env:5)")
                && l.ends_with("UI_BASE_URL=https://app.localtest.me")),
        "{out}"
    );
    assert!(out.contains("HARNESS_WITH_MOCKS=1"), "{out}");
    let (_, json, _) = {
        let o = Command::new(support::harness_bin())
            .arg("--project")
            .arg(root)
            .args(["--json", "env", "--test"])
            .output()
            .unwrap();
        (o.status.code(), support::text(&o.stdout), ())
    };
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["files"][0]["path"], "ui_tests/suite.env");
    assert!(
        v["vars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["key"] == "SUITE_FLAG" && x["origin"] == "ui_tests/suite.env:2")
    );

    // Refusals: flags that do not apply, an unreadable line, a missing required file.
    let (code, _, err) = env(&["--target", "webhosting", "--with-mocks"]);
    assert_eq!(code, Some(2), "{err}");
    std::fs::write(root.join(".env"), "OK=1\nnot a setting\n").unwrap();
    let (code, _, err) = env(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains(".env:2: expected KEY=value"), "{err}");
    std::fs::write(root.join(".env"), "M=\"two\nlines\"\n").unwrap();
    let (code, _, err) = env(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("M (.env:1) holds a line break"), "{err}");
    std::fs::remove_file(root.join(".env.defaults")).unwrap();
    let (code, _, err) = env(&[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("harness.toml:10:12: [targets.local] env_file: cannot read"),
        "{err}"
    );
}
