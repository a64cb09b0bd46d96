//! `harness init`: looks at an existing project and writes the harness.toml it implies, key by
//! key with what was found and why, and a `# TODO` line for each thing it could not decide.
//!
//! Nothing here runs the app or its tools; it reads file names and a few file contents. What it
//! finds ([`Findings`]) and what it writes ([`render`]) are separate, so each is tested alone.
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Exit, Failure};

/// Folders never looked into: tools' state, environments, caches.
const SKIPPED: [&str; 10] = [
    ".git",
    ".harness",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    "target",
    ".tox",
    ".mypy_cache",
    "dist",
    "build",
];

/// A TODO line: `# TODO <key> = <suggestion>  # <why>`. Filling one in means replacing the line
/// with `<key> = <value>`.
pub const TODO: &str = "# TODO ";

/// What `init` found in a project.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// `(from, to)` of the entry point, and why.
    pub entry_point: Option<(String, String, String)>,
    /// Folders to package (`from` = `to`).
    pub sources: Vec<String>,
    pub package_requirements: Option<String>,
    pub test_requirements: Option<String>,
    /// The database file the app opens, from a `*.db` literal in its code or a file in the tree.
    pub database: Option<String>,
    /// SQL files: schema and seed (applied in order), demo ones apart.
    pub sql: Vec<String>,
    pub demo_sql: Vec<String>,
    /// SQL files for the local stack only (`local`, `dev` in the name).
    pub local_sql: Vec<String>,
    /// A seed script (`*seed*.py` outside the test folders).
    pub seed_script: Option<String>,
    /// `{{name}}` placeholders the SQL files use: secrets and clients to generate.
    pub secrets: Vec<(String, &'static str)>,
    pub clients: Vec<String>,
    /// The browser suite's folder (test files that import playwright).
    pub test_path: Option<String>,
    /// pytest's configuration file, when the project has one.
    pub pytest_config: Option<String>,
    /// `.env*` files, and whether each holds a secret-looking value.
    pub env_files: Vec<(String, bool)>,
    /// The keys the top-level env files set (the ones `env_file` proposes).
    pub env_file_keys: BTreeSet<String>,
    /// Environment variables the app's code reads.
    pub app_env: BTreeSet<String>,
    pub health_path: Option<String>,
    pub version_route: bool,
    /// Package folders whose code reads a `build_info.json` beside itself.
    pub build_info_copies: Vec<String>,
}

/// Every file under `root` (relative, `/`-separated), skipping tools' folders and virtualenvs.
fn files(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(SKIPPED.contains(&n.as_ref())
                    || n.starts_with(".venv")
                    || n == "venv"
                    || e.path().join("pyvenv.cfg").is_file())
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            e.path()
                .strip_prefix(root)
                .ok()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    out.sort();
    out
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

fn depth(p: &str) -> usize {
    p.matches('/').count()
}

fn is_test_path(p: &str) -> bool {
    p.split('/')
        .any(|c| c == "tests" || c == "test" || c.ends_with("_tests") || c.starts_with("test_"))
        || p.rsplit('/').next().is_some_and(|n| n == "conftest.py")
}

/// Looks at `root`.
pub fn inspect(root: &Path) -> Findings {
    let all = files(root);
    let mut f = Findings::default();
    let py: Vec<&String> = all.iter().filter(|p| p.ends_with(".py")).collect();

    // The entry point: passenger_wsgi.py (the shallowest), else an app.py or wsgi.py with Flask.
    if let Some(p) = all
        .iter()
        .filter(|p| p.rsplit('/').next() == Some("passenger_wsgi.py"))
        .min_by_key(|p| depth(p))
    {
        f.entry_point = Some((
            p.clone(),
            "passenger_wsgi.py".into(),
            format!("{p} is Passenger's entry point"),
        ));
    } else if let Some(p) = py
        .iter()
        .filter(|p| matches!(p.rsplit('/').next(), Some("app.py" | "wsgi.py")) && !is_test_path(p))
        .filter(|p| read(root, p).contains("Flask("))
        .min_by_key(|p| depth(p))
    {
        f.entry_point = Some((
            p.to_string(),
            "passenger_wsgi.py".into(),
            format!(
                "{p} creates a Flask app; Passenger loads it as passenger_wsgi.py, which must expose `application`"
            ),
        ));
    }

    // Sources: src/, else the top-level packages that are not tests.
    if all
        .iter()
        .any(|p| p.starts_with("src/") && p.ends_with(".py"))
    {
        f.sources.push("src".into());
    } else {
        let pkgs: BTreeSet<String> = py
            .iter()
            .filter(|p| depth(p) == 1 && p.ends_with("/__init__.py") && !is_test_path(p))
            .filter_map(|p| p.split('/').next().map(str::to_string))
            .collect();
        f.sources.extend(pkgs);
    }

    // Requirements: the production list for the package, the development one for the suite.
    let root_file = |names: &[&str]| {
        names
            .iter()
            .find(|n| all.iter().any(|p| p == *n))
            .map(|n| n.to_string())
    };
    f.package_requirements = root_file(&[
        "requirements.webhosting.txt",
        "requirements-prod.txt",
        "requirements.prod.txt",
        "requirements.txt",
    ]);
    f.test_requirements = root_file(&[
        "requirements-dev.txt",
        "requirements-test.txt",
        "requirements.dev.txt",
        "requirements.test.txt",
    ])
    .filter(|r| Some(r) != f.package_requirements.as_ref());

    // The browser suite: the folder whose test files import playwright, shallowest first.
    let suite = py
        .iter()
        .filter(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with("test_")))
        .filter(|p| {
            read(root, p).contains("playwright") || {
                // A suite that imports its own browser helper: the folder's other files say it.
                let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
                py.iter().any(|q| {
                    q.starts_with(&format!("{dir}/")) && read(root, q).contains("playwright")
                })
            }
        })
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        .min_by_key(|d| (depth(d), d.clone()));
    if let Some(d) = &suite {
        // The suite's own requirements come before the project's development list.
        if all.iter().any(|p| *p == format!("{d}/requirements.txt")) {
            f.test_requirements = Some(format!("{d}/requirements.txt"));
        }
        f.test_path = Some(d.clone());
    }
    f.pytest_config = ["pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini"]
        .iter()
        .map(|n| n.to_string())
        .chain(suite.iter().map(|d| format!("{d}/pytest.ini")))
        .find(|n| {
            all.contains(n) && (n.ends_with("pytest.ini") || read(root, n).contains("pytest"))
        });

    // The database: SQL files, a seed script, and the file name the code opens.
    let mut sql: Vec<&String> = all
        .iter()
        .filter(|p| p.ends_with(".sql") && !is_test_path(p))
        .collect();
    sql.sort_by_key(|p| {
        let n = p.rsplit('/').next().unwrap_or(p);
        (!n.contains("schema"), n.contains("seed"), p.to_string())
    });
    for p in sql {
        let n = p.rsplit('/').next().unwrap_or(p);
        if n.contains("demo") {
            f.demo_sql.push(p.clone());
        } else if n.contains("local") || n.contains("dev") {
            f.local_sql.push(p.clone());
        } else if !n.contains("test") {
            f.sql.push(p.clone());
        }
    }
    f.seed_script = py
        .iter()
        .filter(|p| p.rsplit('/').next().is_some_and(|n| n.contains("seed")) && !is_test_path(p))
        .filter(|p| !p.starts_with("src/") || f.sources.is_empty())
        .min_by_key(|p| (depth(p), p.to_string()))
        .map(|p| p.to_string());
    let mut db_names: Vec<(usize, String)> = Vec::new();
    for p in py.iter().filter(|p| !is_test_path(p)) {
        for name in db_literals(&read(root, p)) {
            match db_names.iter_mut().find(|(_, n)| *n == name) {
                Some((c, _)) => *c += 1,
                None => db_names.push((1, name)),
            }
        }
    }
    db_names.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    f.database = db_names.first().map(|(_, n)| n.clone()).or_else(|| {
        all.iter()
            .find(|p| depth(p) == 0 && (p.ends_with(".db") || p.ends_with(".sqlite3")))
            .cloned()
    });
    let mut secrets = Vec::new();
    let mut clients = BTreeSet::new();
    for p in f.sql.iter().chain(&f.demo_sql) {
        for name in crate::config::placeholders(&read(root, p)) {
            let name = name.split('|').next().unwrap_or(name).trim();
            if let Some(id) = name
                .strip_prefix("client_token.")
                .or_else(|| name.strip_prefix("client_alias."))
            {
                clients.insert(id.to_string());
            } else if name != "target" && !secrets.iter().any(|(n, _)| n == name) {
                let kind = if name.contains("password") {
                    "password"
                } else {
                    "hex"
                };
                secrets.push((name.to_string(), kind));
            }
        }
    }
    f.secrets = secrets;
    f.clients = clients.into_iter().collect();

    // .env files: a default file may ship; one with a secret-looking value may not.
    for p in all.iter().filter(|p| {
        let n = p.rsplit('/').next().unwrap_or(p);
        n == ".env" || n.starts_with(".env.")
    }) {
        let text = read(root, p);
        if RUN_WITH_ENV_FILES.contains(&p.as_str())
            && let Ok(entries) = crate::envfile::parse(&text)
        {
            f.env_file_keys
                .extend(entries.into_iter().map(|(e, _)| e.key));
        }
        f.env_files.push((p.clone(), holds_a_secret(&text)));
    }

    // What the app reads from its environment, and its health and version routes.
    for p in py.iter().filter(|p| !is_test_path(p)) {
        let text = read(root, p);
        // harness's own variables (a seed wrapper reads them) are not the app's to set.
        f.app_env.extend(
            env_reads(&text)
                .into_iter()
                .filter(|n| !n.starts_with("HARNESS_")),
        );
        if text.contains("\"/health\"") || text.contains("'/health'") {
            f.health_path = Some("/health".into());
        }
        if text.contains("\"/version\"") || text.contains("'/version'") {
            f.version_route = true;
        }
        if let Some((dir, _)) = p.rsplit_once('/')
            && f.sources.iter().any(|s| p.starts_with(&format!("{s}/")))
            && (text.contains("with_name(\"build_info.json\")")
                || text.contains("dirname(__file__), \"build_info.json\""))
        {
            f.build_info_copies.push(format!("{dir}/build_info.json"));
        }
    }
    f
}

/// `name.db` / `name.sqlite3` string literals in Python code.
fn db_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        for piece in text.split(quote).skip(1).step_by(2) {
            let ok = (piece.ends_with(".db") || piece.ends_with(".sqlite3"))
                && !piece.contains('/')
                && piece.len() < 64
                && piece
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if ok {
                out.push(piece.to_string());
            }
        }
    }
    out
}

/// Names in `os.environ.get("X")`, `os.environ["X"]`, `os.getenv("X")`.
fn env_reads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for opener in ["environ.get(", "environ[", "getenv("] {
        for rest in text.split(opener).skip(1) {
            let rest = rest.trim_start();
            let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            if let Some(name) = rest[1..].split(q).next()
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// A line `KEY=value` whose key looks like a secret (`envfile::secret_looking`) and whose value
/// is not empty.
pub fn holds_a_secret(text: &str) -> bool {
    crate::envfile::parse(text).map_or_else(
        // Not a dotenv file harness can read: judged line by line, as a human would.
        |_| {
            text.lines().any(|l| {
                let l = l.trim().trim_start_matches("export ").trim();
                l.split_once('=').is_some_and(|(k, v)| {
                    !l.starts_with('#')
                        && crate::envfile::secret_looking(k.trim())
                        && !v.trim().trim_matches(|c| c == '"' || c == '\'').is_empty()
                })
            })
        },
        |entries| {
            entries.iter().any(|(e, _)| {
                crate::envfile::secret_looking(&e.key)
                    && e.value.as_ref().is_some_and(|v| !v.is_empty())
            })
        },
    )
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// The commented harness.toml for `f`.
pub fn render(f: &Findings) -> String {
    let mut o = String::new();
    let todo = |o: &mut String, line: &str, why: &str| {
        let _ = writeln!(o, "{TODO}{line}  # {why}");
    };
    let _ = writeln!(
        o,
        "# Written by `harness init` from what this project has. Each key says what was found and why;\n\
         # each `{}` line is a decision harness could not make: replace it with the key and its value.\n\
         # Every key: docs/config.md.\n",
        TODO.trim_end()
    );
    o.push_str("[package]\n");
    if f.sources.is_empty() {
        todo(
            &mut o,
            "sources = [{ from = \"app\", to = \"app\" }]",
            "no src/ folder and no top-level package: name the folders to package",
        );
    } else {
        let _ = writeln!(o, "# The app's code: {}.", f.sources.join(", "));
        let maps: Vec<String> = f
            .sources
            .iter()
            .map(|s| format!("{{ from = {}, to = {} }}", q(s), q(s)))
            .collect();
        let _ = writeln!(o, "sources = [{}]", maps.join(", "));
    }
    match &f.entry_point {
        Some((from, to, why)) => {
            let _ = writeln!(o, "# {why}.");
            let _ = writeln!(o, "entry_point = {{ from = {}, to = {} }}", q(from), q(to));
        }
        None => todo(
            &mut o,
            "entry_point = { from = \"passenger_wsgi.py\", to = \"passenger_wsgi.py\" }",
            "no passenger_wsgi.py and no app.py with a Flask app: name the file that exposes `application`",
        ),
    }
    match &f.package_requirements {
        Some(r) => {
            let _ = writeln!(
                o,
                "# The wheels to vendor for the server (read as pip reads it, -r includes too).\nrequirements = {}",
                q(r)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "# No requirements file: the package gets no vendor/ folder."
            );
        }
    }
    let secret_env: Vec<&String> = f
        .env_files
        .iter()
        .filter(|(p, secret)| !secret && f.sources.iter().any(|s| p.starts_with(&format!("{s}/"))))
        .map(|(p, _)| p)
        .collect();
    if !secret_env.is_empty() {
        let _ = writeln!(
            o,
            "# Default settings files inside the sources with no secret-looking value (a key with\n\
             # SECRET, TOKEN, PASSWORD, KEY, ... and a value): the secret guard may let them ship.\n\
             allow_secrets = [{}]",
            secret_env
                .iter()
                .map(|p| q(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (p, secret) in &f.env_files {
        if *secret {
            let _ = writeln!(
                o,
                "# {p} holds a secret-looking value: it is never proposed for the package."
            );
        }
    }
    if let Some(db) = &f.database {
        let _ = writeln!(
            o,
            "# The app opens {db} (a literal in its code); it is data, not code.\ndata_files = [{}]",
            q(db)
        );
    }
    if !f.build_info_copies.is_empty() {
        let _ = writeln!(
            o,
            "# The code reads build_info.json from its own folder: the same file is written there.\n\
             build_info_copies = [{}]",
            f.build_info_copies
                .iter()
                .map(|p| q(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    o.push('\n');

    if let Some(db) = &f.database {
        o.push_str("[package.database]\n");
        let _ = writeln!(o, "path = {}", q(db));
        if !f.sql.is_empty() {
            let _ = writeln!(
                o,
                "# SQL files, schema first.\nsql = [{}]",
                f.sql.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
            );
            if !f.demo_sql.is_empty() {
                let _ = writeln!(
                    o,
                    "demo_sql = [{}]",
                    f.demo_sql
                        .iter()
                        .map(|p| q(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        } else if let Some(s) = &f.seed_script {
            let _ = writeln!(
                o,
                "# The project's seed script. harness runs it with HARNESS_DB_PATH (the database to\n\
                 # create) and HARNESS_STATE_FILE (where it may record generated credentials).\n\
                 seed_command = [\"python3\", {}]",
                q(s)
            );
        } else {
            todo(
                &mut o,
                "seed_command = [\"python3\", \"tools/seed.py\"]",
                "no SQL files and no seed script: give the command that creates the database at $HARNESS_DB_PATH",
            );
        }
        o.push('\n');
        if !f.secrets.is_empty() {
            o.push_str("# The secrets the SQL files' placeholders name.\n[package.secrets]\n");
            for (n, kind) in &f.secrets {
                let _ = writeln!(o, "{n} = {}", q(kind));
            }
            o.push('\n');
        }
        for c in &f.clients {
            let _ = writeln!(
                o,
                "# The SQL files name client {c}'s token.\n[[package.clients]]\nclient_id = {}\nis_primary = {}\n",
                q(c),
                Some(c) == f.clients.first()
            );
        }
    }

    let env_file = env_file_value(f);
    // What the app reads that no proposed env file sets.
    let env_list = f
        .app_env
        .iter()
        .filter(|k| env_file.is_none() || !f.env_file_keys.contains(*k))
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    o.push_str("[targets.local]\n");
    if !f.local_sql.is_empty() && f.database.is_some() {
        let _ = writeln!(
            o,
            "# SQL files named for local use: applied to the local stack's database only.\nextra_sql = [{}]",
            f.local_sql
                .iter()
                .map(|p| q(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(v) = &env_file {
        let _ = writeln!(
            o,
            "# The settings files the project keeps, read as python-dotenv reads them (the private .env\n\
             # only where it exists); the inline env below wins. `harness env` shows the result.\n\
             env_file = {v}"
        );
    }
    todo(
        &mut o,
        "env = { }",
        &if env_list.is_empty() {
            "the app's environment in the local stack (it reads no variable harness could see)"
                .to_string()
        } else {
            format!(
                "the app reads {env_list}: give the values it needs in the local stack (the mocks' host names, say)"
            )
        },
    );
    o.push_str("\n[targets.webhosting]\n");
    todo(
        &mut o,
        "ssh = \"user@host\"",
        "the SSH destination of the webhosting account",
    );
    todo(
        &mut o,
        "remote_dir = \"/home/user/app\"",
        "the app folder Passenger serves there",
    );
    todo(
        &mut o,
        "url = \"https://app.example.org\"",
        "where the app answers in production",
    );
    o.push('\n');

    o.push_str("[stack]\n");
    match &f.health_path {
        Some(h) => {
            let _ = writeln!(o, "# The app has a {h} route.\nhealth_path = {}", q(h));
        }
        None => todo(
            &mut o,
            "health_path = \"/\"",
            "no /health route found: a path that answers 2xx when the app is up",
        ),
    }
    if f.version_route {
        let _ = writeln!(
            o,
            "# The app has a /version route (it must report build_info.json's build_id).\nversion = {{ path = \"/version\" }}"
        );
    } else {
        todo(
            &mut o,
            "version = false",
            "no /version route: a page that shows the build, e.g. { path = \"/\", contains = \"build {{git_commit_short}}\" }, or false (verified by health alone)",
        );
    }
    todo(
        &mut o,
        "aliases = { }",
        "host names the app and its suite already use for the mocks, e.g. { mailpit = [\"dev-mailpit\"] }",
    );
    o.push('\n');

    o.push_str("[test]\n");
    match &f.test_path {
        Some(t) => {
            let _ = writeln!(
                o,
                "# Test files here import playwright: the browser suite.\npath = {}",
                q(t)
            );
        }
        None => todo(
            &mut o,
            "path = \"tests\"",
            "no test file imports playwright: name the browser suite's folder",
        ),
    }
    if let Some(r) = &f.test_requirements {
        let _ = writeln!(
            o,
            "# What the suite needs installed.\nrequirements = {}",
            q(r)
        );
    }
    if let Some(c) = &f.pytest_config {
        let _ = writeln!(
            o,
            "# pytest runs in this project, so {c} applies as on a laptop."
        );
    }
    if let Some(v) = &env_file {
        let _ = writeln!(
            o,
            "# The suite gets the same settings files the app does.\nenv_file = {v}"
        );
    }
    todo(
        &mut o,
        "env = { }",
        "variables the suite needs (PLAYWRIGHT_HEADLESS = \"1\" if it shows a window by default)",
    );
    o
}

/// The env files at the project's top that hold values to run with: the catalogues of defaults,
/// then the private file.
const RUN_WITH_ENV_FILES: [&str; 3] = [".env.defaults", ".env.default", ".env"];

/// `env_file` for the env files at the project's top: a committed catalogue of defaults
/// (`.env.defaults`, `.env.default`), then the private `.env` where one exists. Templates
/// (`.env.example`, `.env.sample`) hold placeholders, never values to run with.
fn env_file_value(f: &Findings) -> Option<String> {
    let top: Vec<&str> = f.env_files.iter().map(|(p, _)| p.as_str()).collect();
    let mut items: Vec<String> = RUN_WITH_ENV_FILES[..2]
        .iter()
        .filter(|d| top.contains(d))
        .map(|d| q(d))
        .collect();
    if items.is_empty() && !top.contains(&".env") {
        return None;
    }
    items.push("{ path = \".env\", required = false }".into());
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        format!("[{}]", items.join(", "))
    })
}

pub struct InitRequest {
    pub force: bool,
    pub print: bool,
}

/// What `init` did: the file, or the text when printing.
pub struct InitOutcome {
    pub file: PathBuf,
    pub text: String,
    pub written: bool,
    pub todos: usize,
}

/// `harness init` in `root`.
pub fn init(root: &Path, req: &InitRequest) -> Result<InitOutcome, Failure> {
    if !root.is_dir() {
        return Err(Failure::new(
            Exit::BadInput,
            format!("{} is not a folder", root.display()),
        ));
    }
    let file = root.join(crate::config::FILE_NAME);
    let text = render(&inspect(root));
    let todos = text.lines().filter(|l| l.starts_with(TODO)).count();
    if req.print {
        return Ok(InitOutcome {
            file,
            text,
            written: false,
            todos,
        });
    }
    if file.exists() && !req.force {
        return Err(Failure::new(
            Exit::BadInput,
            format!("{} exists; nothing was written", file.display()),
        )
        .hint("`harness init --print` shows what init would write; --force replaces the file"));
    }
    crate::fsutil::write_atomic(&file, text.as_bytes(), 0o644)?;
    Ok(InitOutcome {
        file,
        text,
        written: true,
        todos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_means_a_secret_key_with_a_value() {
        assert!(holds_a_secret("SECRET_KEY=abc\n"));
        assert!(holds_a_secret("export API_TOKEN='x'\n"));
        assert!(holds_a_secret("db_password = \"p\""));
        assert!(!holds_a_secret("SECRET_KEY=\nDEBUG=1\n"));
        assert!(!holds_a_secret("# SECRET_KEY=abc\nMAIL_HOST=localhost\n"));
    }

    #[test]
    fn env_reads_and_database_literals_are_found_in_code() {
        let code = "import os\nx = os.environ.get(\"SHOP_ENV\", \"local\")\ny = os.environ['SHOP_DB']\n\
                    z = os.getenv( \"A_1\")\nw = os.environ.get(name)\npath = root / \"shop.db\"\nurl = 'sqlite:///x/y.db'\n";
        assert_eq!(env_reads(code), ["SHOP_ENV", "SHOP_DB", "A_1"]);
        assert_eq!(db_literals(code), ["shop.db"]);
    }

    #[test]
    fn top_level_env_files_become_env_file_and_what_they_set_is_not_asked_for_again() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| std::fs::write(d.path().join(p), t).unwrap();
        w(
            "app.py",
            "import os\nA = os.environ['SHOP_HOST']\nB = os.environ.get('SHOP_OTHER')\n",
        );
        w(".env.defaults", "SHOP_HOST=dev-host\n");
        w(".env.example", "SHOP_OTHER=fill-me\n");
        let text = render(&inspect(d.path()));
        let want = "env_file = [\".env.defaults\", { path = \".env\", required = false }]";
        assert_eq!(text.matches(want).count(), 2, "{text}");
        let asked = text
            .lines()
            .find(|l| l.starts_with(&format!("{TODO}env = {{ }}  # the app reads")))
            .unwrap();
        assert!(
            asked.contains("SHOP_OTHER") && !asked.contains("SHOP_HOST"),
            "{asked}"
        );
        // Only a template: nothing to run with, nothing proposed.
        std::fs::remove_file(d.path().join(".env.defaults")).unwrap();
        assert!(!render(&inspect(d.path())).contains("env_file"));
        // A private .env alone: optional, since a fresh clone has none.
        w(".env", "SHOP_HOST=mine\n");
        assert!(
            render(&inspect(d.path())).contains("env_file = { path = \".env\", required = false }")
        );
    }

    #[test]
    fn a_project_without_anything_obvious_gets_todo_lines_that_parse_once_filled() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("README.md"), "hi").unwrap();
        let text = render(&inspect(d.path()));
        for key in ["sources", "entry_point", "ssh", "remote_dir", "health_path"] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{TODO}{key} = "))),
                "{key}:\n{text}"
            );
        }
        // Filling in every TODO with its suggestion gives TOML.
        let filled: String = text
            .lines()
            .map(|l| match l.strip_prefix(TODO) {
                Some(rest) => rest.split("  # ").next().unwrap().to_string(),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        toml::from_str::<toml::Value>(&filled).unwrap();
    }
}
