//! `parity --remote`: the deployed package against the files on the server.
//!
//! One remote command lists `sha256  path` for every file (no round trip per file); the
//! comparison is a pure function of that text and the package's view. The SSH transport is the
//! caller's.
use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::view::PackageView;
use crate::error::{Exit, Failure};
use crate::model::target::Target;
use crate::remote::listing::{PYCACHE_MARK, SYMLINKS_MARK, database_command, listing_command};
use crate::remote::ssh::{Ssh, SshTarget, failure as ssh_failure};

/// What an SSH failure left on the server: parity only reads.
const READ_ONLY: &str = "nothing was changed on the server";

/// Runtime files every server run creates; never compared. Logs and `tmp/` are also left out of
/// the listing itself, so large logs cost no hashing on the server. Bytecode is runtime state only
/// where Python writes it: `__pycache__/X.*.pyc` beside an `X.py` (see [`compare`]).
pub const RUNTIME_IGNORES: [&str; 2] = ["**/*.log", "tmp/**"];

/// Which server files are runtime state rather than deployed code.
#[derive(Debug, Clone)]
pub struct Ignore {
    globs: GlobSet,
    /// The database: its content changes at runtime, so its bytes are not compared (its schema
    /// is, through [`RemoteReport::check_schema`]); its journal files are ignored.
    database: Option<String>,
}

impl Ignore {
    /// The built-in runtime files plus `extra` globs (`[parity] remote_ignore`).
    pub fn new(database: Option<&str>, extra: &[String]) -> Result<Ignore, String> {
        let mut b = GlobSetBuilder::new();
        let db_journals: Vec<String> = database
            .iter()
            .flat_map(|d| ["-wal", "-shm", "-journal"].map(|s| format!("{d}{s}")))
            .collect();
        for g in RUNTIME_IGNORES
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            b.add(Glob::new(&g).map_err(|e| format!("bad glob `{g}`: {e}"))?);
        }
        for j in &db_journals {
            b.add(Glob::new(&globset::escape(j)).map_err(|e| e.to_string())?);
        }
        Ok(Ignore {
            globs: b.build().map_err(|e| e.to_string())?,
            database: database.map(str::to_string),
        })
    }

    fn ignores(&self, path: &str) -> bool {
        self.globs.is_match(path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modified {
    pub path: String,
    pub deployed: String,
    pub server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SchemaCheck {
    /// No server schema fingerprint was supplied, or the package has no database.
    NotChecked,
    Same,
    Differs {
        deployed: String,
        server: String,
    },
    /// The package has a database but the server has none.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteReport {
    pub modified: Vec<Modified>,
    /// In the package, not on the server.
    pub missing: Vec<String>,
    /// On the server, not in the package (and not runtime state).
    pub extra: Vec<String>,
    /// Bytecode Python did not write for a source beside it: `.pyc`/`.pyo` outside
    /// `__pycache__/`, or `__pycache__/` files whose source is not there.
    pub bytecode: Vec<String>,
    /// Symbolic links (a package never holds one).
    pub symlinks: Vec<String>,
    /// Server files left out as runtime state.
    pub ignored: usize,
    pub schema: SchemaCheck,
}

impl RemoteReport {
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.bytecode.is_empty()
            && self.symlinks.is_empty()
            && matches!(self.schema, SchemaCheck::NotChecked | SchemaCheck::Same)
    }

    /// Compares the deployed schema fingerprint with the server's (`None`: the server has no
    /// database).
    pub fn check_schema(&mut self, deployed: &str, server: Option<&str>) {
        self.schema = match server {
            None => SchemaCheck::Missing,
            Some(s) if s == deployed => SchemaCheck::Same,
            Some(s) => SchemaCheck::Differs {
                deployed: deployed.to_string(),
                server: s.to_string(),
            },
        };
    }
}

/// What `listing_command` found on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Regular files outside `__pycache__/` and `tmp/`: path → sha256.
    pub files: BTreeMap<String, String>,
    /// Files inside `__pycache__/` folders.
    pub pycache: Vec<String>,
    /// Symbolic links anywhere outside `tmp/`.
    pub symlinks: Vec<String>,
}

/// Parses `remote::listing::listing_command`'s output. The file section is `<64 hex>  <path>` lines (or
/// ` *<path>` in binary mode), where a line starting with `\` has `\\` and `\n` escaped in its
/// name; the other two sections are NUL-terminated names. Paths lose their leading `./`.
pub fn parse_listing(listing: &str) -> Result<Listing, String> {
    let (text, rest) = match listing.split_once(PYCACHE_MARK) {
        Some((text, rest)) => (text, rest),
        // Only a listing cut short lacks its sections; an empty folder still prints the marks.
        None => return Err("the listing ended before its #pycache section".into()),
    };
    let (pycache, symlinks) = rest
        .split_once(&format!("{SYMLINKS_MARK}\0"))
        .ok_or("the listing ended before its #symlinks section")?;
    let names = |section: &str| -> Vec<String> {
        section
            .split('\0')
            .filter(|n| !n.is_empty())
            .map(|n| n.strip_prefix("./").unwrap_or(n).to_string())
            .collect()
    };
    Ok(Listing {
        files: parse_sums(text)?,
        pycache: names(pycache),
        symlinks: names(symlinks),
    })
}

fn parse_sums(listing: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in listing.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let bad = || format!("listing line {}: not `sha256  path`: {line:?}", n + 1);
        if line.len() < 66 || !line.is_char_boundary(64) {
            return Err(bad());
        }
        let (hash, rest) = line.split_at(64);
        if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        let name = if escaped {
            unescape(name)
        } else {
            name.to_string()
        };
        let name = name.strip_prefix("./").unwrap_or(&name).to_string();
        out.insert(name, hash.to_ascii_lowercase());
    }
    Ok(out)
}

/// Whether `path`, a file in a `__pycache__/` folder, is the bytecode Python writes for a
/// source the server has: `D/__pycache__/X.<tag>.pyc` beside `D/X.py`.
fn is_cache_of_a_source(path: &str, files: &BTreeMap<String, String>) -> bool {
    let Some((dir, name)) = path.rsplit_once("__pycache__/") else {
        return false;
    };
    if name.contains('/') || !name.ends_with(".pyc") {
        return false;
    }
    let Some((module, _)) = name.split_once('.') else {
        return false;
    };
    files.contains_key(&format!("{dir}{module}.py"))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Compares the deployed package with the server's listing. The database's bytes and runtime
/// files are not compared; call [`RemoteReport::check_schema`] for the database's schema.
/// Bytecode that Python would not have written (a `.pyc` outside `__pycache__/`, which Python
/// imports when no source is beside it, or a cache file without its source) and symbolic links
/// are reported on their own: neither is ever part of a package.
pub fn compare(
    package: &PackageView,
    listing: &str,
    ignore: &Ignore,
) -> Result<RemoteReport, String> {
    let server = parse_listing(listing)?;
    let mut report = RemoteReport {
        modified: Vec::new(),
        missing: Vec::new(),
        extra: Vec::new(),
        bytecode: Vec::new(),
        symlinks: Vec::new(),
        ignored: 0,
        schema: SchemaCheck::NotChecked,
    };
    let is_db = |p: &str| ignore.database.as_deref() == Some(p);
    for (path, fact) in &package.files {
        if is_db(path) {
            continue;
        }
        match server.files.get(path) {
            None => report.missing.push(path.clone()),
            Some(sha) if *sha != fact.sha256 => report.modified.push(Modified {
                path: path.clone(),
                deployed: fact.sha256.clone(),
                server: sha.clone(),
            }),
            Some(_) => {}
        }
    }
    for path in server.files.keys() {
        if package.files.contains_key(path) || is_db(path) {
            continue;
        }
        if ignore.ignores(path) {
            report.ignored += 1;
        } else if path.ends_with(".pyc") || path.ends_with(".pyo") {
            report.bytecode.push(path.clone());
        } else {
            report.extra.push(path.clone());
        }
    }
    for path in &server.pycache {
        if ignore.ignores(path) || is_cache_of_a_source(path, &server.files) {
            report.ignored += 1;
        } else {
            report.bytecode.push(path.clone());
        }
    }
    for path in &server.symlinks {
        // The database is a link to the shared one in every release deploy writes (see
        // deploy::shared); its content is compared through the schema check.
        if ignore.ignores(path) || is_db(path) {
            report.ignored += 1;
        } else {
            report.symlinks.push(path.clone());
        }
    }
    report.bytecode.sort();
    report.symlinks.sort();
    Ok(report)
}

/// What `harness parity --remote` compared and found.
#[derive(Debug, Serialize)]
pub struct RemoteOutcome {
    pub host: String,
    pub remote_dir: String,
    pub package: std::path::PathBuf,
    #[serde(flatten)]
    pub report: RemoteReport,
}

/// `[targets.webhosting]` `ssh` and `remote_dir`, which parity --remote needs.
pub fn server(config: &crate::config::Config) -> Result<(String, String), Failure> {
    let target = config.target(Target::Webhosting);
    match (target.ssh, target.remote_dir) {
        (Some(host), Some(dir)) => Ok((host.into_inner(), dir)),
        _ => Err(Failure::new(
            Exit::BadInput,
            format!(
                "{}: [targets.webhosting] needs `ssh` and `remote_dir` for parity --remote",
                config.file.display()
            ),
        )
        .hint("set ssh = \"user@host\" and remote_dir = \"/path/to/app\" (docs/config.md)")),
    }
}

/// Lists the server's files over deploy's SSH layer (one master connection; the user's ssh
/// config or `HARNESS_SSH_CONFIG`, agent and known_hosts) and compares them with `package`, the
/// deployed webhosting zip.
pub fn run(
    config: &crate::config::Config,
    package: &std::path::Path,
    reporter: &dyn crate::events::Reporter,
) -> Result<RemoteOutcome, Failure> {
    let (host, dir) = server(config)?;
    if !package.is_file() {
        return Err(super::missing_package(Target::Webhosting, package));
    }
    let layout = super::Layout::from_config(config);
    let view = PackageView::read(package, &layout)?;
    let ignore = Ignore::new(layout.database.as_deref(), &config.parity.remote_ignore)
        .map_err(|e| Failure::new(Exit::BadInput, format!("[parity] remote_ignore: {e}")))?;
    let ssh = crate::events::phase(reporter, "connect", || {
        let target = SshTarget::with_user_config(&host, config.webhosting_deploy().connect_timeout);
        let ssh = Ssh::connect(target).map_err(|e| ssh_failure(e, READ_ONLY))?;
        Ok::<_, Failure>((ssh, host.clone()))
    })?;
    let listing = crate::events::phase(reporter, "listing", || {
        let out = ssh
            .run(&listing_command(&dir))
            .map_err(|e| ssh_failure(e, READ_ONLY))?;
        let text = String::from_utf8(out.stdout).map_err(|_| {
            Failure::new(
                Exit::Environment,
                format!("{host}: the listing is not UTF-8"),
            )
            .hint("file names on the server must be UTF-8")
        })?;
        let n = parse_listing(&text).map_or(0, |l| l.files.len());
        Ok::<_, Failure>((text, format!("{n} files on {host}:{dir}")))
    })?;
    let mut report = compare(&view, &listing, &ignore)
        .map_err(|e| Failure::new(Exit::Environment, format!("{host}: {e}")))?;
    if let (Some(db), Some(Ok(schema))) = (&layout.database, &view.schema) {
        let deployed = crate::package::database::schema_fingerprint(schema);
        // A file (an older layout), or the link to the shared database (deploy::shared).
        let parsed = parse_listing(&listing).map_err(|e| Failure::new(Exit::Environment, e))?;
        let on_server = parsed.files.contains_key(db) || parsed.symlinks.iter().any(|l| l == db);
        let server = if on_server {
            let tmp = tempfile::NamedTempFile::new().map_err(|e| {
                Failure::new(Exit::Environment, format!("cannot make a temp file: {e}"))
            })?;
            crate::events::phase(reporter, "database", || {
                ssh.run_to_file(&database_command(&dir, db), tmp.path())
                    .map_err(|e| ssh_failure(e, READ_ONLY))?;
                let n = std::fs::metadata(tmp.path()).map_or(0, |m| m.len());
                Ok::<_, Failure>(((), format!("{n} bytes copied")))
            })?;
            Some(crate::package::database::fingerprint_file(tmp.path())?.1)
        } else {
            None
        };
        report.check_schema(&deployed, server.as_deref());
    }
    ssh.close();
    Ok(RemoteOutcome {
        host,
        remote_dir: dir,
        package: package.to_path_buf(),
        report,
    })
}

/// The readable form of a remote report.
pub fn table(outcome: &RemoteOutcome) -> String {
    use std::fmt::Write;
    let r = &outcome.report;
    let mut out = format!(
        "deployed {}
server   {}:{}
",
        outcome.package.display(),
        outcome.host,
        outcome.remote_dir
    );
    for m in &r.modified {
        let _ = writeln!(
            out,
            "modified  {}  (deployed {}, server {})",
            m.path,
            &m.deployed[..12],
            &m.server[..12]
        );
    }
    for p in &r.missing {
        let _ = writeln!(out, "missing   {p}");
    }
    for p in &r.extra {
        let _ = writeln!(out, "extra     {p}");
    }
    for p in &r.bytecode {
        let _ = writeln!(
            out,
            "bytecode  {p}  (Python writes no such file for the sources on the server)"
        );
    }
    for p in &r.symlinks {
        let _ = writeln!(out, "symlink   {p}");
    }
    match &r.schema {
        SchemaCheck::NotChecked => {}
        SchemaCheck::Same => out.push_str("schema    same as deployed\n"),
        SchemaCheck::Differs { deployed, server } => {
            let _ = writeln!(
                out,
                "schema    differs (deployed {}, server {})",
                &deployed[..12],
                &server[..12]
            );
        }
        SchemaCheck::Missing => out.push_str("schema    the server has no database\n"),
    }
    let _ = writeln!(
        out,
        "{} ({} runtime files ignored)",
        if r.is_clean() {
            "server matches the deployed package"
        } else {
            "server DIFFERS from the deployed package"
        },
        r.ignored
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::view::FileFact;
    use sha2::Digest;

    fn sha(b: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(b))
    }

    #[test]
    fn listing_command_quotes_the_directory() {
        let c = listing_command("/home/o'brien/my app");
        assert!(
            c.starts_with(r"cd -- '/home/o'\''brien/my app' && find . "),
            "{c}"
        );
        assert!(
            c.contains("-print0 | LC_ALL=C xargs -0 -r sha256sum --"),
            "{c}"
        );
    }

    /// Runs the command in a real shell over a tree with awkward names, so the text the pure
    /// part parses is what GNU find and sha256sum really print.
    #[test]
    fn listing_command_output_parses_with_awkward_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app dir");
        let files: &[(&str, &[u8])] = &[
            ("passenger_wsgi.py", b"app = 1\n"),
            ("src/with space.py", b"x\n"),
            ("src/back\\slash.py", b"y\n"),
            ("src/new\nline.py", b"z\n"),
            ("src/quote'd.py", b"q\n"),
            ("tmp/restart.txt", b""),
            ("src/__pycache__/a.cpython-311.pyc", b"\0"),
            ("logs/app.log", b"log"),
            ("stray.pyc", b"\0"),
        ];
        for (p, b) in files {
            let full = root.join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, b).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("src/link me.py")).unwrap();
        let listing = parse_listing(&String::from_utf8(list(&root)).unwrap()).unwrap();
        let want: BTreeMap<String, String> = files[..5]
            .iter()
            .chain(&files[8..])
            .map(|(p, b)| (p.to_string(), sha(b)))
            .collect();
        assert_eq!(listing.files, want, "logs and tmp/ are not even listed");
        assert_eq!(listing.pycache, vec!["src/__pycache__/a.cpython-311.pyc"]);
        assert_eq!(listing.symlinks, vec!["src/link me.py"]);

        let empty = tempfile::tempdir().unwrap();
        let listing = parse_listing(&String::from_utf8(list(empty.path())).unwrap()).unwrap();
        assert_eq!(
            listing,
            Listing::default(),
            "an empty folder still has its sections"
        );
    }

    /// Runs the listing command in a real shell.
    fn list(root: &std::path::Path) -> Vec<u8> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(listing_command(root.to_str().unwrap()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn listing_of_a_missing_directory_fails() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(listing_command("/nonexistent/harness-parity"))
            .output()
            .unwrap();
        assert!(!out.status.success());
    }

    #[test]
    fn bad_listing_lines_are_named() {
        let sections = format!("{PYCACHE_MARK}{SYMLINKS_MARK}\0");
        let with = |t: &str| format!("{t}{sections}");
        assert!(
            parse_listing(&with("nonsense\n"))
                .unwrap_err()
                .contains("line 1")
        );
        let zz = format!("{}  ./a\n", "z".repeat(64));
        assert!(parse_listing(&with(&zz)).is_err());
        let bin = format!("{} *./a\n", "A".repeat(64));
        assert_eq!(
            parse_listing(&with(&bin)).unwrap().files["a"],
            "a".repeat(64)
        );
        let cut = format!("{}  ./a\n", "a".repeat(64));
        assert!(parse_listing(&cut).unwrap_err().contains("ended before"));
    }

    fn package(files: &[(&str, &[u8])]) -> PackageView {
        PackageView {
            files: files
                .iter()
                .map(|(p, b)| {
                    (
                        p.to_string(),
                        FileFact {
                            sha256: sha(b),
                            size: b.len() as u64,
                            mode: 0o644,
                        },
                    )
                })
                .collect(),
            manifest: Ok(BTreeMap::new()),
            build_info: Ok(BTreeMap::new()),
            build_info_copies: Vec::new(),
            vendored: BTreeMap::new(),
            lock: None,
            entry_point: "passenger_wsgi.py".into(),
            database: Some("app.db".into()),
            schema: None,
            readme: None,
        }
    }

    fn listing(files: &[(&str, &[u8])]) -> String {
        listing_with(files, &[], &[])
    }

    fn listing_with(files: &[(&str, &[u8])], pycache: &[&str], symlinks: &[&str]) -> String {
        let mut out: String = files
            .iter()
            .map(|(p, b)| format!("{}  ./{p}\n", sha(b)))
            .collect();
        out.push_str(PYCACHE_MARK);
        for p in pycache {
            out.push_str(&format!("./{p}\0"));
        }
        out.push_str(SYMLINKS_MARK);
        out.push('\0');
        for p in symlinks {
            out.push_str(&format!("./{p}\0"));
        }
        out
    }

    #[test]
    fn reports_modified_missing_and_extra_and_ignores_runtime_files() {
        let pkg = package(&[
            ("passenger_wsgi.py", b"app"),
            ("src/app/views.py", b"views"),
            ("src/app/models.py", b"models"),
            ("app.db", b"seeded"),
        ]);
        let server = listing_with(
            &[
                ("passenger_wsgi.py", b"app"),
                ("src/app/views.py", b"views edited on the server"),
                ("app.db", b"grown at runtime"),
                ("app.db-wal", b"wal"),
                ("src/app/stray.py", b"stray"),
                ("tmp/restart.txt", b""),
                ("logs/error.log", b"boom"),
                ("uploads/a.png", b"png"),
            ],
            &["src/app/__pycache__/views.cpython-311.pyc"],
            &["uploads/latest.png"],
        );
        let ignore = Ignore::new(Some("app.db"), &["uploads/**".to_string()]).unwrap();
        let r = compare(&pkg, &server, &ignore).unwrap();
        assert_eq!(r.modified.len(), 1);
        assert_eq!(r.modified[0].path, "src/app/views.py");
        assert_eq!(r.modified[0].deployed, sha(b"views"));
        assert_eq!(r.missing, vec!["src/app/models.py"]);
        assert_eq!(r.extra, vec!["src/app/stray.py"]);
        assert!(r.bytecode.is_empty() && r.symlinks.is_empty());
        assert_eq!(r.ignored, 6);
        assert!(!r.is_clean());
    }

    #[test]
    fn bytecode_python_did_not_write_and_symlinks_are_reported() {
        let pkg = package(&[
            ("passenger_wsgi.py", b"app"),
            ("src/app/views.py", b"views"),
        ]);
        let server = listing_with(
            &[
                ("passenger_wsgi.py", b"app"),
                ("src/app/views.py", b"views"),
                // Imported in place of a missing source: Python 3 never writes one there.
                ("src/app/auth.pyc", b"\0"),
                ("legacy.pyo", b"\0"),
            ],
            &[
                "src/app/__pycache__/views.cpython-311.pyc",
                "src/app/__pycache__/admin.cpython-311.pyc",
                "src/app/__pycache__/notes.txt",
            ],
            &["src/app/config.py", "static/uploads"],
        );
        let r = compare(&pkg, &server, &Ignore::new(None, &[]).unwrap()).unwrap();
        assert_eq!(
            r.bytecode,
            vec![
                "legacy.pyo",
                "src/app/__pycache__/admin.cpython-311.pyc",
                "src/app/__pycache__/notes.txt",
                "src/app/auth.pyc",
            ]
        );
        assert_eq!(r.symlinks, vec!["src/app/config.py", "static/uploads"]);
        assert_eq!(r.ignored, 1, "the cache of views.py is runtime state");
        assert!(r.extra.is_empty() && r.modified.is_empty() && r.missing.is_empty());
        assert!(!r.is_clean());
        let text = table(&RemoteOutcome {
            host: "h".into(),
            remote_dir: "/d".into(),
            package: "p.zip".into(),
            report: r,
        });
        assert!(text.contains("bytecode  src/app/auth.pyc"), "{text}");
        assert!(text.contains("symlink   static/uploads"), "{text}");
        assert!(text.contains("DIFFERS"), "{text}");
    }

    #[test]
    fn identical_tree_is_clean_and_schema_is_checked_separately() {
        let files: &[(&str, &[u8])] = &[("passenger_wsgi.py", b"app"), ("app.db", b"x")];
        let pkg = package(files);
        let mut r = compare(
            &pkg,
            &listing(&[("passenger_wsgi.py", b"app"), ("app.db", b"y")]),
            &Ignore::new(Some("app.db"), &[]).unwrap(),
        )
        .unwrap();
        assert!(r.is_clean());
        assert_eq!(r.schema, SchemaCheck::NotChecked);
        r.check_schema("aaa", Some("aaa"));
        assert!(r.is_clean());
        r.check_schema("aaa", Some("bbb"));
        assert!(!r.is_clean());
        r.check_schema("aaa", None);
        assert_eq!(r.schema, SchemaCheck::Missing);
        assert!(!r.is_clean());
    }

    #[test]
    fn without_a_database_its_file_is_compared_like_any_other() {
        let pkg = package(&[("app.db", b"x")]);
        let r = compare(
            &pkg,
            &listing(&[("app.db", b"y")]),
            &Ignore::new(None, &[]).unwrap(),
        )
        .unwrap();
        assert_eq!(r.modified.len(), 1);
    }

    #[test]
    fn database_command_copies_a_consistent_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);",
        )
        .unwrap();
        // The connection stays open, so the table lives only in the WAL for now.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(database_command(dir.path().to_str().unwrap(), "app.db"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copy = dir.path().join("copy.db");
        std::fs::write(&copy, &out.stdout).unwrap();
        let (schema, _) = crate::package::database::fingerprint_file(&copy).unwrap();
        assert_eq!(schema.tables[0].name, "t");
        drop(c);
    }
}
