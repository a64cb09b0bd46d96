//! `harness.toml`: loading and validation.
//!
//! Every error names the file, line and column. Values whose later validation can fail (paths that
//! must exist, versions that must parse) stay `Spanned` so those errors can point at the line too.
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Exit, Failure};
pub use crate::model::target::Target;

pub const FILE_NAME: &str = "harness.toml";

/// The loaded configuration plus where it came from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The project root: paths in the file are relative to it.
    pub root: PathBuf,
    pub file: PathBuf,
    source: String,
    pub package: PackageConfig,
    pub targets: BTreeMap<String, TargetConfig>,
    pub stack: StackConfig,
    pub test: TestConfig,
    pub gate: GateConfig,
    pub parity: ParityConfig,
    pub ci: CiConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    package: PackageConfig,
    #[serde(default)]
    targets: BTreeMap<String, TargetConfig>,
    #[serde(default)]
    stack: StackConfig,
    #[serde(default)]
    test: TestConfig,
    #[serde(default)]
    gate: RawGateConfig,
    #[serde(default)]
    parity: RawParityConfig,
    #[serde(default)]
    ci: RawCiConfig,
}

/// A file or folder copied into the package: `from` is relative to the project, `to` to the zip root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub from: Spanned<String>,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageConfig {
    pub sources: Vec<Mapping>,
    pub entry_point: Mapping,
    #[serde(default)]
    pub extra_files: Vec<Mapping>,
    /// Requirements for `vendor/` (one file or a list); without it the package has no
    /// vendored wheels.
    #[serde(default)]
    pub requirements: Option<Spanned<OneOrMany>>,
    #[serde(default = "default_pythons")]
    pub pythons: Spanned<Vec<String>>,
    #[serde(default = "default_platforms")]
    pub platforms: Vec<String>,
    /// Added to the built-in excludes (`**/__pycache__/**`, `**/*.pyc`), which always apply.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Files at the package root that hold data, not code: kept out of the code fingerprint.
    #[serde(default)]
    pub data_files: Vec<String>,
    /// Globs (package paths) the secret guard lets through.
    #[serde(default)]
    pub allow_secrets: Vec<Spanned<String>>,
    /// A project template for DEPLOY_README.md; the built-in one is used otherwise.
    #[serde(default)]
    pub deploy_readme: Option<Spanned<String>>,
    /// More package paths that get the same build_info.json (an app that reads it from its own
    /// package folder). Outside the code fingerprint like the original, listed in MANIFEST.json.
    #[serde(default)]
    pub build_info_copies: Vec<Spanned<String>>,
    #[serde(default)]
    pub database: Option<Spanned<DatabaseConfig>>,
    /// Secrets the build generates, by name. They are reused from the state file when it exists.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretKind>,
    /// API clients whose tokens (`naf_<alias>_<secret>`) the build generates.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

/// `"a.txt"` or `["a.txt", "b.txt"]`: one or several paths, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The database file, relative to the package root.
    pub path: String,
    /// SQL files applied in order with rusqlite, with `{{...}}` placeholders for generated secrets.
    #[serde(default)]
    pub sql: Vec<Spanned<String>>,
    /// SQL files applied after `sql` when `--seed-demo` is given.
    #[serde(default)]
    pub demo_sql: Vec<Spanned<String>>,
    /// The app's own seed command, run from the project root.
    #[serde(default)]
    pub seed_command: Vec<String>,
    /// Globs (relative to the project) of more files the seed reads: part of the seed cache's key.
    #[serde(default)]
    pub seed_inputs: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// 20 characters from an unambiguous alphabet, for humans to type.
    Password,
    /// 64 hex characters, for keys such as Flask's SECRET_KEY.
    Hex,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub is_primary: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Dotenv files under the inline `env` (docs/config.md, "Env files").
    #[serde(default)]
    pub env_file: Option<Spanned<EnvFiles>>,
    /// SQL files applied after `[package.database] sql` for this target only.
    #[serde(default)]
    pub extra_sql: Vec<Spanned<String>>,
    /// `[user@]host`, `[user@][IPv6]` or an ssh_config alias (checked on load).
    #[serde(default)]
    pub ssh: Option<Spanned<String>>,
    #[serde(default)]
    pub remote_dir: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Deploy only: run on the server in the staged release when production's schema differs.
    #[serde(default)]
    pub migrate_command: Option<String>,
    /// Deploy only: previous releases kept beside remote_dir for a rollback (default 3).
    #[serde(default)]
    pub keep_releases: Option<Spanned<u32>>,
    /// Backups: the newest this many are always kept, on the server and in .harness/backups/
    /// (default 5).
    #[serde(default)]
    pub keep_backups: Option<Spanned<u32>>,
    /// Backups: the newest of each of the last this many days is kept (default 7).
    #[serde(default)]
    pub keep_daily: Option<Spanned<u32>>,
    /// Backups: the newest of each of the last this many ISO weeks is kept (default 4).
    #[serde(default)]
    pub keep_weekly: Option<Spanned<u32>>,
    /// Deploy only: seconds to wait for the new build to answer (default 45; at least 15).
    #[serde(default)]
    pub verify_timeout: Option<u64>,
    /// Deploy only: SSH ConnectTimeout in seconds (default 10).
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    /// Deploy, rollback, backup: seconds one remote step may run before it is stopped (default
    /// 1800; at least 10).
    #[serde(default)]
    pub step_timeout: Option<u64>,
}

/// The deploy settings of `[targets.webhosting]`, defaults applied.
#[derive(Debug, Clone)]
pub struct WebhostingDeploy {
    pub migrate_command: Option<String>,
    pub keep_releases: u32,
    /// keep_backups (as `last`), keep_daily and keep_weekly (docs/deploy.md, "Retention").
    pub retention: crate::model::retention::RetentionPolicy,
    pub verify_timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    pub step_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    #[serde(default = "default_fqdn")]
    pub fqdn: String,
    #[serde(default = "default_health")]
    pub health_path: String,
    /// The old spelling of `version = { path = … }` (a JSON `build_id` there); still read.
    #[serde(default)]
    pub version_path: Option<Spanned<String>>,
    /// How a running release tells which build it is (`version_probe`).
    #[serde(default)]
    pub version: Option<Spanned<RawVersion>>,
    /// The project's own compose files, applied after the built-in ones (docs/compose.md).
    #[serde(default)]
    pub compose_overrides: Vec<String>,
    /// More network names per service (`{ mailpit = ["shop-dev-mailpit"] }`): the host names the
    /// app and its suite already use. They also join the run's TLS leaf.
    #[serde(default)]
    pub aliases: BTreeMap<String, Spanned<Vec<String>>>,
    /// Whether `up` and `test` mount the package's `vendor/` from a read-only cache volume,
    /// compiled once per vendor set (docs/test.md, "The app's folder"). `false` for an app
    /// that writes into its own `vendor/`: it is then copied with the rest, writable.
    #[serde(default = "default_true")]
    pub vendor_cache: bool,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            fqdn: default_fqdn(),
            health_path: default_health(),
            version_path: None,
            version: None,
            compose_overrides: Vec::new(),
            aliases: BTreeMap::new(),
            vendor_cache: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    /// What pytest collects (a folder or file, relative to the project). pytest runs in the
    /// project folder, so this is not the import root.
    #[serde(default = "default_test_path")]
    pub path: String,
    /// The job's requirements (one file or a list), read as pip reads them.
    #[serde(default)]
    pub requirements: Option<Spanned<OneOrMany>>,
    #[serde(default = "default_smoke")]
    pub smoke: Vec<String>,
    /// More pytest arguments, after harness's own and before `harness test -- ARGS`.
    #[serde(default)]
    pub args: Option<Spanned<Vec<String>>>,
    /// More environment for the job. The ledger keeps the names and a digest, never the values.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// Dotenv files for the job, under the inline `env`.
    #[serde(default)]
    pub env_file: Option<Spanned<EnvFiles>>,
    /// Globs (relative to the project) of files the job's copy of the tree gets besides what
    /// git lists: generated or git-ignored test data.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// A Playwright server (`playwright launch-server` on Debian's Chromium) in the stack.
    #[serde(default)]
    pub playwright_server: Option<Spanned<PlaywrightServerConfig>>,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            path: default_test_path(),
            requirements: None,
            smoke: default_smoke(),
            args: None,
            env: BTreeMap::new(),
            env_file: None,
            include: Vec::new(),
            playwright_server: None,
        }
    }
}

impl TestConfig {
    pub fn args(&self) -> &[String] {
        self.args.as_ref().map_or(&[], |a| a.get_ref().as_slice())
    }

    pub fn env(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect()
    }

    /// The variable that carries the Playwright server's `ws://` URL to the job, when the stack
    /// runs one.
    pub fn playwright_server_env(&self) -> Option<String> {
        match self.playwright_server.as_ref().map(Spanned::get_ref) {
            None | Some(PlaywrightServerConfig::Enabled(false)) => None,
            Some(PlaywrightServerConfig::Enabled(true)) => {
                Some(DEFAULT_PLAYWRIGHT_SERVER_ENV.into())
            }
            Some(PlaywrightServerConfig::Env { env }) => Some(env.clone()),
        }
    }
}

pub const DEFAULT_PLAYWRIGHT_SERVER_ENV: &str = "PLAYWRIGHT_SERVER_WS";

/// `playwright_server = true`, or `{ env = "NAME" }` to hand the URL over under another name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PlaywrightServerConfig {
    Enabled(bool),
    Env { env: String },
}

/// `env_file`: a path, `{ path = ".env", required = false }`, or a list of them, read in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a path, a table { path = \".env\", required = false }, or a list of them"
)]
pub enum EnvFiles {
    One(EnvFile),
    Many(Vec<EnvFile>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a path, or a table { path = \".env\", required = false }"
)]
pub enum EnvFile {
    Path(String),
    Table(EnvFileTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFileTable {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl EnvFiles {
    /// (path as written, required), in order.
    pub fn items(&self) -> Vec<(&str, bool)> {
        fn one(f: &EnvFile) -> (&str, bool) {
            match f {
                EnvFile::Path(p) => (p.as_str(), true),
                EnvFile::Table(t) => (t.path.as_str(), t.required),
            }
        }
        match self {
            EnvFiles::One(f) => vec![one(f)],
            EnvFiles::Many(v) => v.iter().map(one).collect(),
        }
    }
}

/// Whose environment: the app of a target (and its seed and boot check), or the test job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvScope {
    Target(Target),
    Test,
}

impl EnvScope {
    /// The harness.toml table that configures it.
    pub fn table(&self) -> String {
        match self {
            EnvScope::Target(t) => format!("[targets.{t}]"),
            EnvScope::Test => "[test]".into(),
        }
    }
}

/// `[gate]`: when a recorded run is enough to ship.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The oldest a run may be and still open the gate.
    pub max_age: std::time::Duration,
    /// Keys whose signed run records count when imported.
    pub trusted_keys: Vec<crate::model::keys::TrustedKey>,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            max_age: std::time::Duration::from_secs(DEFAULT_MAX_AGE_HOURS * 3600),
            trusted_keys: Vec::new(),
        }
    }
}

const DEFAULT_MAX_AGE_HOURS: u64 = 24;
const DEFAULT_KEEP_RELEASES: u32 = 3;
const DEFAULT_KEEP_BACKUPS: u32 = 5;
const DEFAULT_KEEP_DAILY: u32 = 7;
const DEFAULT_KEEP_WEEKLY: u32 = 4;
/// The default of `[targets.webhosting] step_timeout`.
pub const DEFAULT_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// `[parity]`: which differences between the local and webhosting packages are expected, and
/// which files on the server are runtime state (docs/config.md).
#[derive(Debug, Clone, Default)]
pub struct ParityConfig {
    pub allow: crate::model::allow::AllowList,
    /// Added to the built-in runtime globs that `parity --remote` ignores.
    pub remote_ignore: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParityConfig {
    #[serde(default)]
    allow: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    target_files: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    remote_ignore: Option<Spanned<Vec<String>>>,
}

/// `[ci]`: what `harness ci github` generates (docs/scale.md).
#[derive(Debug, Clone)]
pub struct CiConfig {
    /// Where the runners install harness from; required to generate.
    pub harness: Option<HarnessSource>,
    /// The matrix size when `--shards` is not given.
    pub shards: u32,
    /// The branch whose pushes sign records, ask the gate and (opt-in) deploy.
    pub branch: String,
    pub runs_on: String,
    /// Adds the deploy job (behind the `webhosting` GitHub environment).
    pub deploy: bool,
}

impl Default for CiConfig {
    fn default() -> Self {
        Self {
            harness: None,
            shards: 1,
            branch: "main".into(),
            runs_on: "ubuntu-24.04".into(),
            deploy: false,
        }
    }
}

/// `[ci] harness = { git = "https://…", rev = "<40 hex>" }`: `cargo install --locked --git --rev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessSource {
    pub git: String,
    pub rev: String,
}

/// The most jobs one GitHub Actions matrix may have.
pub const MAX_SHARDS: u32 = 256;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCiConfig {
    #[serde(default)]
    harness: Option<Spanned<RawHarnessSource>>,
    #[serde(default)]
    shards: Option<Spanned<u32>>,
    #[serde(default)]
    branch: Option<Spanned<String>>,
    #[serde(default)]
    runs_on: Option<Spanned<String>>,
    #[serde(default)]
    deploy: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHarnessSource {
    git: String,
    rev: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateConfig {
    #[serde(default)]
    max_age: Option<Spanned<String>>,
    #[serde(default)]
    trusted_keys: Vec<Spanned<RawTrustedKey>>,
}

/// A trusted key: the key alone, or `{ name = "ci", key = "ed25519:..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawTrustedKey {
    Bare(String),
    Named { name: String, key: String },
}

fn default_pythons() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["3.11".into()])
}
fn default_platforms() -> Vec<String> {
    vec!["manylinux2014_x86_64".into(), "any".into()]
}
fn default_fqdn() -> String {
    "app.localtest.me".into()
}
fn default_true() -> bool {
    true
}

fn default_health() -> String {
    "/health".into()
}
/// `[stack] version`: `false`, `true`, or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawVersion {
    On(bool),
    Table(VersionTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionTable {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
}

/// The build_info.json fields a `contains` template may name.
pub const VERSION_PLACEHOLDERS: [&str; 7] = [
    "build_id",
    "built_at",
    "git_commit",
    "git_commit_short",
    "git_branch",
    "target",
    "harness_version",
];

/// How a running release says which build it is: checked by the boot check, deploy, rollback and
/// `status webhosting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionProbe {
    /// GET `path`; the JSON value at `pointer` must be the build id.
    Json { path: String, pointer: String },
    /// GET `path`; the page must contain `template` with `{{field}}` filled from build_info.json.
    Contains { path: String, template: String },
    /// No probe: a switch is verified by health alone.
    Off,
}

impl VersionProbe {
    pub fn path(&self) -> Option<&str> {
        match self {
            VersionProbe::Json { path, .. } | VersionProbe::Contains { path, .. } => Some(path),
            VersionProbe::Off => None,
        }
    }
}

impl StackConfig {
    /// Whether harness.toml says how the app shows its build (`version` or `version_path`).
    pub fn version_given(&self) -> bool {
        self.version.is_some() || self.version_path.is_some()
    }

    /// The probe `[stack] version` (or the old `version_path`) describes; `validate` has
    /// refused what cannot be one.
    pub fn version_probe(&self) -> VersionProbe {
        let json = |path: String| VersionProbe::Json {
            path,
            pointer: "/build_id".into(),
        };
        match (&self.version, &self.version_path) {
            (Some(v), _) => match v.get_ref() {
                RawVersion::On(false) => VersionProbe::Off,
                RawVersion::On(true) => json("/version".into()),
                RawVersion::Table(t) => {
                    let path = t.path.clone().unwrap_or_else(|| "/version".into());
                    match (&t.json, &t.contains) {
                        (_, Some(c)) => VersionProbe::Contains {
                            path,
                            template: c.clone(),
                        },
                        (Some(p), None) => VersionProbe::Json {
                            path,
                            pointer: p.clone(),
                        },
                        (None, None) => json(path),
                    }
                }
            },
            (None, Some(p)) => json(p.get_ref().clone()),
            (None, None) => json("/version".into()),
        }
    }
}
fn default_test_path() -> String {
    "ui_tests".into()
}
fn default_smoke() -> Vec<String> {
    vec!["-m".into(), "smoke".into()]
}

impl Config {
    /// Loads `harness.toml` from `file`, or from `project/harness.toml` when `file` is `None`.
    pub fn load(project: &Path, file: Option<&Path>) -> Result<Config, Failure> {
        let file = match file {
            Some(f) if f.is_absolute() => f.to_path_buf(),
            Some(f) => std::env::current_dir()
                .map(|d| d.join(f))
                .unwrap_or_else(|_| f.to_path_buf()),
            None => project.join(FILE_NAME),
        };
        // Absolute, so every path derived from the root stays valid in child processes with
        // another working directory (pip, the seed command).
        let file = std::path::absolute(&file).unwrap_or(file);
        let source = std::fs::read_to_string(&file).map_err(|e| {
            let f = Failure::new(Exit::BadInput, format!("cannot read {}: {e}", file.display()));
            if e.kind() == std::io::ErrorKind::NotFound {
                f.hint(format!(
                    "run harness in the app's repository (or pass --project DIR); it needs a {FILE_NAME} \
                     there. docs/config.md shows a complete example"
                ))
            } else {
                f
            }
        })?;
        let root = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| project.to_path_buf());
        Self::parse(root, file, source)
    }

    /// Parses and validates; `root` is where relative paths start.
    pub fn parse(root: PathBuf, file: PathBuf, source: String) -> Result<Config, Failure> {
        let raw: RawConfig = toml::from_str(&source).map_err(|e| {
            let at = e
                .span()
                .map(|s| location(&source, s.start))
                .unwrap_or((1, 1));
            let msg = e.message().trim().to_string();
            let hint = if msg.contains("unknown field") {
                "remove or rename the key; docs/config.md lists every key and its default"
            } else if msg.contains("invalid type") {
                "fix the value's type; docs/config.md shows the type of every key"
            } else if msg.contains("missing field") {
                "add the missing key; docs/config.md shows a complete example"
            } else {
                "fix the TOML syntax at that position"
            };
            Failure::new(
                Exit::BadInput,
                format!("{}:{}:{}: {msg}", file.display(), at.0, at.1),
            )
            .hint(hint)
        })?;
        let config = Config {
            root,
            file,
            source,
            package: raw.package,
            targets: raw.targets,
            stack: raw.stack,
            test: raw.test,
            gate: GateConfig::default(),
            parity: ParityConfig::default(),
            ci: CiConfig::default(),
        };
        config.validate()?;
        let gate = config.gate_config(raw.gate)?;
        let parity = config.parity_config(raw.parity)?;
        let ci = config.ci_config(raw.ci)?;
        Ok(Config {
            gate,
            parity,
            ci,
            ..config
        })
    }

    /// An error pointing at a span of the config file.
    pub fn error_at(&self, span: Range<usize>, message: impl std::fmt::Display) -> Failure {
        let (line, col) = location(&self.source, span.start);
        Failure::new(
            Exit::BadInput,
            format!("{}:{line}:{col}: {message}", self.file.display()),
        )
    }

    fn validate_version(&self) -> Result<(), Failure> {
        let Some(v) = &self.stack.version else {
            return Ok(());
        };
        if self.stack.version_path.is_some() {
            return Err(self
                .error_at(v.span(), "[stack] has both `version` and `version_path`")
                .hint("keep `version = { path = \"/version\" }` and remove `version_path` (its old spelling)"));
        }
        let RawVersion::Table(t) = v.get_ref() else {
            return Ok(());
        };
        if let Some(path) = &t.path
            && !path.starts_with('/')
        {
            return Err(self
                .error_at(
                    v.span(),
                    format!("[stack] version path {path:?} does not start with /"),
                )
                .hint("write the URL path, e.g. path = \"/version\""));
        }
        match (&t.json, &t.contains) {
            (Some(_), Some(_)) => Err(self
                .error_at(v.span(), "[stack] version has both `json` and `contains`")
                .hint("`json` names where a JSON answer holds the build id; `contains` a text the page holds: pick one")),
            (Some(p), None) if !p.is_empty() && !p.starts_with('/') => Err(self
                .error_at(v.span(), format!("[stack] version json = {p:?} is not a JSON pointer"))
                .hint("write it as a JSON pointer, e.g. json = \"/build/id\"")),
            (None, Some(c)) => {
                let unknown: Vec<&str> = placeholders(c)
                    .filter(|n| !VERSION_PLACEHOLDERS.contains(n))
                    .collect();
                let none = placeholders(c).next().is_none();
                if !unknown.is_empty() || none {
                    return Err(self
                        .error_at(
                            v.span(),
                            if none {
                                format!("[stack] version contains = {c:?} names no build_info field, so it cannot tell builds apart")
                            } else {
                                format!("[stack] version contains = {c:?}: unknown placeholder {}", unknown.join(", "))
                            },
                        )
                        .hint(format!(
                            "use {{{{field}}}} with a build_info.json field: {}",
                            VERSION_PLACEHOLDERS.join(", ")
                        )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A project-relative path from the config, resolved against the root.
    /// The database file inside a package (`[package.database] path`), when there is one.
    pub fn database_path(&self) -> Option<String> {
        self.package
            .database
            .as_ref()
            .map(|d| d.get_ref().path.clone())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn target(&self, target: Target) -> TargetConfig {
        self.targets
            .get(target.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// The env files and inline `env` of `scope`, read now (docs/config.md, "Env files"). A
    /// missing required file, or a line that is not `KEY=value`, is exit 2 saying where.
    pub fn env_layers(&self, scope: EnvScope) -> Result<crate::envfile::Layers, Failure> {
        let (files, inline) = match scope {
            EnvScope::Target(t) => {
                let c = self.target(t);
                (c.env_file, c.env)
            }
            EnvScope::Test => (self.test.env_file.clone(), self.test.env()),
        };
        let mut layers = crate::envfile::Layers::new(inline);
        let Some(files) = files else {
            return Ok(layers);
        };
        for (path, required) in files.get_ref().items() {
            let full = self.root.join(path);
            let bytes = match std::fs::read(&full) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                    layers.absent(path);
                    continue;
                }
                Err(e) => {
                    let missing = e.kind() == std::io::ErrorKind::NotFound;
                    let f = self.error_at(
                        files.span(),
                        format!(
                            "{} env_file: cannot read {}: {e}",
                            scope.table(),
                            full.display()
                        ),
                    );
                    return Err(if missing {
                        f.hint(format!(
                            "create it, or write {{ path = \"{path}\", required = false }} for a \
                             file only some machines have"
                        ))
                    } else {
                        f
                    });
                }
            };
            let text = String::from_utf8(bytes).map_err(|_| {
                Failure::new(
                    Exit::BadInput,
                    format!("{}: an env file must be UTF-8 text", full.display()),
                )
            })?;
            layers
                .add_file(path, &text, &|k| std::env::var(k).ok())
                .map_err(|e| {
                    Failure::new(
                        Exit::BadInput,
                        format!("{}:{}: {}", full.display(), e.line, e.message),
                    )
                    .hint(
                        "env files are read as python-dotenv reads them: KEY=value, `export `, \
                         # comments, 'literal' and \"escaped\" quotes, ${VAR} (docs/config.md, \
                         \"Env files\")",
                    )
                })?;
        }
        Ok(layers)
    }

    /// `[targets.<target>]`'s env files and inline env, for its app (the stack's app, the boot
    /// check). Apache hands the app its environment through `SetEnv`, one line per variable, so
    /// a value with a line break is refused here, where it can be named.
    pub fn app_env(&self, target: Target) -> Result<crate::envfile::Layers, Failure> {
        let layers = self.env_layers(EnvScope::Target(target))?;
        if let Some((key, origin)) = layers.multi_line() {
            return Err(Failure::new(
                Exit::BadInput,
                format!("{key} ({origin}) holds a line break, which the app cannot be given"),
            )
            .hint(
                "Apache passes each variable to the app with SetEnv, on one line; put the value \
                 on one line",
            ));
        }
        Ok(layers)
    }

    /// `[targets.webhosting]`'s deploy settings with their defaults.
    pub fn webhosting_deploy(&self) -> WebhostingDeploy {
        let t = self.target(Target::Webhosting);
        let n =
            |v: &Option<Spanned<u32>>, default: u32| v.as_ref().map_or(default, |v| *v.get_ref());
        let keep_backups = n(&t.keep_backups, DEFAULT_KEEP_BACKUPS).max(1);
        WebhostingDeploy {
            migrate_command: t.migrate_command.filter(|c| !c.trim().is_empty()),
            keep_releases: n(&t.keep_releases, DEFAULT_KEEP_RELEASES).max(1),
            retention: crate::model::retention::RetentionPolicy {
                last: keep_backups,
                daily: n(&t.keep_daily, DEFAULT_KEEP_DAILY),
                weekly: n(&t.keep_weekly, DEFAULT_KEEP_WEEKLY),
            },
            // Passenger's 10 s stat throttle has to pass before a probe counts.
            verify_timeout: std::time::Duration::from_secs(t.verify_timeout.unwrap_or(45).max(15)),
            connect_timeout: std::time::Duration::from_secs(t.connect_timeout.unwrap_or(10).max(1)),
            step_timeout: t.step_timeout.map_or(DEFAULT_STEP_TIMEOUT, |s| {
                std::time::Duration::from_secs(s.max(10))
            }),
        }
    }

    fn gate_config(&self, raw: RawGateConfig) -> Result<GateConfig, Failure> {
        let mut gate = GateConfig::default();
        if let Some(age) = raw.max_age {
            gate.max_age = crate::model::duration::parse(age.get_ref()).map_err(|e| {
                self.error_at(age.span(), format!("[gate] max_age: {e}"))
                    .hint("write a duration such as \"24h\", \"90m\", \"7d\" or \"1d 12h\"")
            })?;
        }
        for entry in raw.trusted_keys {
            let (name, key) = match entry.get_ref() {
                RawTrustedKey::Bare(k) => (None, k.as_str()),
                RawTrustedKey::Named { name, key } => (Some(name.clone()), key.as_str()),
            };
            let key = crate::model::keys::PublicKey::parse(key).map_err(|e| {
                self.error_at(entry.span(), format!("[gate] trusted_keys: {e}"))
                    .hint(
                        "give the public key as printed by `harness runs keygen`, e.g. \
                         { name = \"ci\", key = \"ed25519:<base64>\" }; docs/gate.md shows how to get it \
                         from an openssl key",
                    )
            })?;
            gate.trusted_keys
                .push(crate::model::keys::TrustedKey { name, key });
        }
        Ok(gate)
    }

    /// `[ci]`. Every value ends up in a workflow file (some inside shell lines), so each is held
    /// to a shape that needs no quoting there.
    fn ci_config(&self, raw: RawCiConfig) -> Result<CiConfig, Failure> {
        let mut ci = CiConfig {
            deploy: raw.deploy,
            ..CiConfig::default()
        };
        if let Some(h) = raw.harness {
            let RawHarnessSource { git, rev } = h.get_ref().clone();
            let url_ok = git.len() > "https://".len()
                && git.starts_with("https://")
                && plain(&git, "-._~:/@%+");
            if !url_ok {
                return Err(self
                    .error_at(h.span(), format!("[ci] harness: git `{git}` is not an https:// URL"))
                    .hint("give the repository harness is installed from, e.g. git = \"https://github.com/you/harness\" (the runners have no key for ssh://)"));
            }
            if rev.len() != 40 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self
                    .error_at(h.span(), format!("[ci] harness: rev `{rev}` is not a 40-digit commit"))
                    .hint("pin the commit the runners build, as `git rev-parse HEAD` prints it in harness's checkout; a branch or tag can move"));
            }
            ci.harness = Some(HarnessSource {
                git,
                rev: rev.to_ascii_lowercase(),
            });
        }
        if let Some(n) = raw.shards {
            let v = *n.get_ref();
            if !(1..=MAX_SHARDS).contains(&v) {
                return Err(self
                    .error_at(n.span(), format!("[ci] shards = {v} is out of range"))
                    .hint(format!(
                        "use 1 to {MAX_SHARDS} (GitHub's most jobs per matrix)"
                    )));
            }
            ci.shards = v;
        }
        if let Some(b) = raw.branch {
            let ok = plain(b.get_ref(), "-._/")
                && !b.get_ref().starts_with(['-', '/'])
                && !b.get_ref().contains("..");
            if !ok {
                return Err(self
                    .error_at(
                        b.span(),
                        format!("[ci] branch `{}` is not a plain branch name", b.get_ref()),
                    )
                    .hint("use letters, digits, `-`, `_`, `.` and `/`, e.g. branch = \"main\""));
            }
            ci.branch = b.into_inner();
        }
        if let Some(r) = raw.runs_on {
            let ok = plain(r.get_ref(), "-._");
            if !ok {
                return Err(self
                    .error_at(
                        r.span(),
                        format!("[ci] runs_on `{}` is not a runner label", r.get_ref()),
                    )
                    .hint("use one label such as \"ubuntu-24.04\" (a Linux runner with Docker)"));
            }
            ci.runs_on = r.into_inner();
        }
        Ok(ci)
    }

    fn parity_config(&self, raw: RawParityConfig) -> Result<ParityConfig, Failure> {
        let defaults: Vec<String> = crate::model::allow::DEFAULT_ALLOW
            .iter()
            .map(|s| s.to_string())
            .collect();
        let allow = raw.allow.as_ref().map_or(&defaults, |a| a.get_ref());
        let target_files = raw.target_files.as_ref().map(|t| t.get_ref().as_slice());
        let parsed = crate::model::allow::AllowList::parse(
            allow.iter().map(String::as_str),
            target_files.unwrap_or_default().iter().map(String::as_str),
        )
        .map_err(|e| {
            // Point at whichever list holds the bad entry.
            let span = match (&raw.target_files, &raw.allow) {
                (Some(t), _) if t.get_ref().iter().any(|g| e.contains(g.as_str())) => t.span(),
                (_, Some(a)) => a.span(),
                (Some(t), None) => t.span(),
                (None, None) => 0..0,
            };
            self.error_at(span, format!("[parity]: {e}"))
                .hint("docs/config.md lists the allow rules and their defaults")
        })?;
        let remote_ignore = match raw.remote_ignore {
            None => Vec::new(),
            Some(list) => {
                for g in list.get_ref() {
                    if let Err(e) = globset::Glob::new(g) {
                        return Err(self.error_at(
                            list.span(),
                            format!("[parity] remote_ignore: bad glob `{g}`: {e}"),
                        ));
                    }
                }
                list.into_inner()
            }
        };
        Ok(ParityConfig {
            allow: parsed,
            remote_ignore,
        })
    }

    fn validate(&self) -> Result<(), Failure> {
        for name in self.targets.keys() {
            if Target::parse(name).is_none() {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!("{}: unknown target [targets.{name}]", self.file.display()),
                )
                .hint("targets are `local` and `webhosting`"));
            }
        }
        for (name, t) in &self.targets {
            // (key, value, min, max, why)
            type Bound<'a> = (&'a str, &'a Option<Spanned<u32>>, u32, u32, &'a str);
            let keys: [Bound; 4] = [
                (
                    "keep_releases",
                    &t.keep_releases,
                    1,
                    100,
                    "a rollback needs at least one kept release",
                ),
                (
                    "keep_backups",
                    &t.keep_backups,
                    1,
                    1000,
                    "the newest backup is always kept",
                ),
                (
                    "keep_daily",
                    &t.keep_daily,
                    0,
                    3660,
                    "0 turns daily backups off; 3660 is ten years",
                ),
                (
                    "keep_weekly",
                    &t.keep_weekly,
                    0,
                    520,
                    "0 turns weekly backups off; 520 is ten years",
                ),
            ];
            for (key, value, min, max, why) in keys {
                if let Some(v) = value
                    && !(min..=max).contains(v.get_ref())
                {
                    return Err(self
                        .error_at(
                            v.span(),
                            format!(
                                "[targets.{name}] {key} = {} is out of range {min}..={max}",
                                v.get_ref()
                            ),
                        )
                        .hint(format!("{why} (docs/config.md)")));
                }
            }
        }
        let pythons = &self.package.pythons;
        if pythons.get_ref().is_empty() {
            return Err(self
                .error_at(pythons.span(), "`pythons` is empty")
                .hint("list at least one, e.g. [\"3.11\"]"));
        }
        for p in pythons.get_ref() {
            let ok = p.split('.').count() == 2
                && p.split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(self
                    .error_at(pythons.span(), format!("`{p}` is not a Python version"))
                    .hint("write MAJOR.MINOR, e.g. \"3.11\""));
            }
        }
        for pat in self
            .package
            .exclude
            .iter()
            .chain(&self.package.allow_secrets)
        {
            if let Err(e) = globset::Glob::new(pat.get_ref()) {
                return Err(self.error_at(pat.span(), format!("bad glob `{}`: {e}", pat.get_ref())));
            }
        }
        let scopes = self
            .targets
            .iter()
            .map(|(n, t)| (format!("[targets.{n}]"), &t.env_file))
            .chain([("[test]".to_string(), &self.test.env_file)]);
        for (table, files) in scopes {
            let Some(files) = files else { continue };
            for (path, _) in files.get_ref().items() {
                if path.trim().is_empty() || path.contains('\0') {
                    return Err(self
                        .error_at(
                            files.span(),
                            format!("{table} env_file: `{path}` is not a path"),
                        )
                        .hint("a path relative to the project, such as \".env.defaults\""));
                }
            }
        }
        self.validate_test()?;
        self.validate_aliases()?;
        self.validate_version()?;
        for copy in &self.package.build_info_copies {
            let p = copy.get_ref();
            let bad = p.is_empty()
                || p.starts_with('/')
                || p.ends_with('/')
                || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
                || p.chars().any(char::is_control)
                || crate::model::metadata::METADATA_FILES.contains(&p.as_str());
            if bad {
                return Err(self
                    .error_at(
                        copy.span(),
                        format!(
                            "[package] build_info_copies: {p:?} is not a package path for a copy"
                        ),
                    )
                    .hint("write a path inside the package, e.g. \"src/app/build_info.json\""));
            }
        }
        for (name, t) in &self.targets {
            if let Some(dest) = &t.ssh
                && let Err(why) = check_ssh_destination(dest.get_ref())
            {
                return Err(self
                    .error_at(
                        dest.span(),
                        format!("[targets.{name}] ssh = {:?} {why}", dest.get_ref()),
                    )
                    .hint(
                        "write user@host, user@[2001:db8::1] or a Host alias from ~/.ssh/config; \
                         a port or other options belong in ~/.ssh/config",
                    ));
            }
        }
        if let Some(db) = &self.package.database {
            let d = db.get_ref();
            match (d.sql.is_empty(), d.seed_command.is_empty()) {
                (true, true) => {
                    return Err(self
                        .error_at(
                            db.span(),
                            "[package.database] needs `sql` or `seed_command`",
                        )
                        .hint("give SQL files to apply, or the app's own seed command"));
                }
                (false, false) => {
                    return Err(self
                        .error_at(
                            db.span(),
                            "[package.database] has both `sql` and `seed_command`",
                        )
                        .hint(
                            "keep one: SQL files are applied by harness, a seed command by the app",
                        ));
                }
                _ => {}
            }
            if !self.package.data_files.contains(&d.path) {
                return Err(self
                    .error_at(db.span(), format!("the database `{}` is not listed in `data_files`", d.path))
                    .hint(format!("add \"{}\" to [package] data_files so it stays out of the code fingerprint", d.path)));
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_test(&self) -> Result<(), Failure> {
        let t = &self.test;
        if let Some(args) = &t.args
            && let Err(why) = crate::model::pytest_args::check(args.get_ref())
        {
            return Err(self
                .error_at(args.span(), format!("[test] args: {why}"))
                .hint("harness sets these itself; docs/test.md lists what the job is given"));
        }
        for (name, value) in &t.env {
            if !is_env_name(name) {
                return Err(self
                    .error_at(
                        value.span(),
                        format!("[test] env: `{name}` is not a variable name"),
                    )
                    .hint("use letters, digits and `_`, not starting with a digit"));
            }
            if name.starts_with("HARNESS_") {
                return Err(self
                    .error_at(value.span(), format!("[test] env: `{name}` is reserved"))
                    .hint("HARNESS_* variables are harness's own; pick another name"));
            }
        }
        for glob in &t.include {
            if let Err(e) = globset::Glob::new(glob.get_ref()) {
                return Err(self.error_at(
                    glob.span(),
                    format!("[test] include: bad glob `{}`: {e}", glob.get_ref()),
                ));
            }
        }
        if let Some(server) = &t.playwright_server
            && let PlaywrightServerConfig::Env { env } = server.get_ref()
            && !is_env_name(env)
        {
            return Err(self
                .error_at(
                    server.span(),
                    format!("[test] playwright_server: `{env}` is not a variable name"),
                )
                .hint("write playwright_server = true, or { env = \"PLAYWRIGHT_SERVER_WS\" }"));
        }
        Ok(())
    }

    /// Alias names are DNS names no other service or alias has; which services exist is
    /// checked when the stack is planned (compose overrides can add some).
    fn validate_aliases(&self) -> Result<(), Failure> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (service, names) in &self.stack.aliases {
            for name in names.get_ref() {
                let refuse = |why: String, hint: &str| {
                    self.error_at(
                        names.span(),
                        format!("[stack] aliases.{service}: `{name}` {why}"),
                    )
                    .hint(hint.to_string())
                };
                if let Err(why) = check_host_name(name) {
                    return Err(refuse(
                        why,
                        "an alias is a host name: letters, digits, `-` and `.`, e.g. \"shop-dev-mailpit\"",
                    ));
                }
                let lower = name.to_ascii_lowercase();
                let clash = if BUILTIN_SERVICES.contains(&lower.as_str()) {
                    Some(format!("is the name of the `{lower}` service"))
                } else if lower == self.stack.fqdn.to_ascii_lowercase() {
                    Some("is [stack] fqdn, which names the proxy already".to_string())
                } else {
                    seen.get(&lower)
                        .map(|other| format!("is already an alias of `{other}`"))
                };
                if let Some(why) = clash {
                    return Err(refuse(why, "each name may stand for one service only"));
                }
                seen.insert(lower, service);
            }
        }
        Ok(())
    }
}

/// The services of the built-in compose files.
pub const BUILTIN_SERVICES: [&str; 7] = [
    "app",
    "proxy",
    "mailpit",
    "geoip",
    "netcup",
    "playwright",
    "playwright-server",
];

/// Non-empty, and only ASCII letters, digits and the `extra` characters: a value that can go
/// into a workflow file or a shell line without quoting.
fn plain(text: &str, extra: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What OpenSSH takes as a destination, and nothing that it would read as an option or more:
/// `[user@]host`, `[user@][IPv6]`, or an ssh_config alias. The value ends up on ssh's command
/// line (after `--`), so `-oProxyCommand=…` must never get through.
pub fn check_ssh_destination(dest: &str) -> Result<(), String> {
    if dest.is_empty() {
        return Err("is empty".into());
    }
    if dest.starts_with('-') {
        return Err("starts with `-`, which ssh would read as an option".into());
    }
    let (user, host) = match dest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, dest),
    };
    if let Some(u) = user
        && (u.is_empty()
            || u.starts_with('-')
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err("has a user name with characters a login name does not have".into());
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("has `[{v6}]`, which is not an IPv6 address"));
        }
        return Ok(());
    }
    // A host name, an IPv4 address, or an ssh_config alias (which may hold `_`).
    if host.is_empty()
        || host.starts_with('-')
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(
            "is not [user@]host: a host name, an IPv4 address, [IPv6] or an ssh_config alias"
                .into(),
        );
    }
    Ok(())
}

/// RFC 1123 host names: dot-separated labels of 1-63 letters, digits and `-`, not starting or
/// ending with `-`; 253 characters at most.
pub fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("is not 1 to 253 characters long".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty or over-long label".into());
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may hold only letters, digits, `-` and `.`".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with `-`".into());
        }
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn location(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The `{{name}}` placeholders of a `contains` template, in order.
pub fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").map(|(n, _)| n.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, Failure> {
        Config::parse(
            PathBuf::from("/p"),
            PathBuf::from("/p/harness.toml"),
            s.to_string(),
        )
    }

    const MINIMAL: &str = r#"
[package]
sources = [{ from = "src", to = "src" }]
entry_point = { from = "passenger_wsgi.py", to = "passenger_wsgi.py" }
"#;

    #[test]
    fn the_version_probe_takes_a_table_false_or_the_old_version_path_never_two() {
        let probe = |stack: &str| {
            parse(&format!("{MINIMAL}[stack]\n{stack}\n")).map(|c| c.stack.version_probe())
        };
        assert_eq!(
            probe("").unwrap(),
            VersionProbe::Json {
                path: "/version".into(),
                pointer: "/build_id".into()
            }
        );
        assert_eq!(
            probe("version_path = \"/v\"").unwrap(),
            VersionProbe::Json {
                path: "/v".into(),
                pointer: "/build_id".into()
            }
        );
        assert_eq!(
            probe("version = { path = \"/api/info\", json = \"/build/id\" }").unwrap(),
            VersionProbe::Json {
                path: "/api/info".into(),
                pointer: "/build/id".into()
            }
        );
        assert_eq!(
            probe("version = { path = \"/\", contains = \"build {{git_commit_short}}\" }").unwrap(),
            VersionProbe::Contains {
                path: "/".into(),
                template: "build {{git_commit_short}}".into()
            }
        );
        assert_eq!(probe("version = false").unwrap(), VersionProbe::Off);
        for (bad, says) in [
            (
                "version_path = \"/v\"\nversion = { path = \"/v\" }",
                "both `version` and `version_path`",
            ),
            (
                "version = { json = \"/a\", contains = \"{{build_id}}\" }",
                "both `json` and `contains`",
            ),
            (
                "version = { contains = \"{{nope}}\" }",
                "unknown placeholder nope",
            ),
            (
                "version = { contains = \"v1\" }",
                "names no build_info field",
            ),
            ("version = { json = \"build_id\" }", "not a JSON pointer"),
            ("version = { path = \"version\" }", "does not start with /"),
        ] {
            let e = probe(bad).unwrap_err();
            assert_eq!(e.exit, Exit::BadInput, "{bad}");
            assert!(
                e.message.contains(says) && e.message.contains("harness.toml:"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.package.pythons.get_ref(), &vec!["3.11".to_string()]);
        assert_eq!(c.package.platforms, vec!["manylinux2014_x86_64", "any"]);
        assert_eq!(c.stack.fqdn, "app.localtest.me");
        assert!(c.package.requirements.is_none());
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let src = format!("{MINIMAL}sorces = []\n");
        let e = parse(&src).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message.starts_with("/p/harness.toml:5:1: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("sorces"), "{}", e.message);
        assert!(e.hint.unwrap().contains("docs/config.md"));
    }

    #[test]
    fn wrong_type_names_line() {
        let src = MINIMAL.replace(
            "sources = [{ from = \"src\", to = \"src\" }]",
            "sources = \"src\"",
        );
        let e = parse(&src).unwrap_err();
        assert!(e.message.starts_with("/p/harness.toml:3:"), "{}", e.message);
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }

    #[test]
    fn bad_python_version_points_at_list() {
        let src = format!("{MINIMAL}pythons = [\"3.x\"]\n");
        let e = parse(&src).unwrap_err();
        assert!(
            e.message.starts_with("/p/harness.toml:5:11: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("3.x"));
    }

    #[test]
    fn database_needs_exactly_one_seed_way_and_data_file() {
        let both = format!(
            "{MINIMAL}data_files=[\"app.db\"]\n[package.database]\npath = \"app.db\"\nsql = [\"a.sql\"]\nseed_command = [\"x\"]\n"
        );
        assert!(parse(&both).unwrap_err().message.contains("both"));
        let neither =
            format!("{MINIMAL}data_files=[\"app.db\"]\n[package.database]\npath = \"app.db\"\n");
        assert!(parse(&neither).unwrap_err().message.contains("needs"));
        let undeclared =
            format!("{MINIMAL}[package.database]\npath = \"app.db\"\nsql = [\"a.sql\"]\n");
        let e = parse(&undeclared).unwrap_err();
        assert!(e.message.contains("data_files"), "{}", e.message);
        assert!(e.message.contains(":5:1:"), "{}", e.message);
    }

    #[test]
    fn gate_defaults_to_24h_and_no_trusted_keys() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.gate.max_age, std::time::Duration::from_secs(86_400));
        assert!(c.gate.trusted_keys.is_empty());
    }

    #[test]
    fn gate_section_parses_durations_and_keys() {
        let key = crate::model::keys::PublicKey::from_bytes(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32])
                .verifying_key()
                .to_bytes(),
        );
        let src = format!(
            "{MINIMAL}[gate]\nmax_age = \"90m\"\ntrusted_keys = [\"{key}\", {{ name = \"ci\", key = \"{key}\" }}]\n"
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.gate.max_age, std::time::Duration::from_secs(5400));
        assert_eq!(c.gate.trusted_keys.len(), 2);
        assert_eq!(c.gate.trusted_keys[0].name, None);
        assert_eq!(c.gate.trusted_keys[1].name.as_deref(), Some("ci"));
        assert_eq!(c.gate.trusted_keys[1].key, key);
    }

    #[test]
    fn bad_gate_values_name_file_and_line() {
        let e = parse(&format!("{MINIMAL}[gate]\nmax_age = \"soon\"\n")).unwrap_err();
        assert!(
            e.message
                .starts_with("/p/harness.toml:6:11: [gate] max_age"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("24h"));
        let e = parse(&format!(
            "{MINIMAL}[gate]\ntrusted_keys = [\"ed25519:AAAA\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("/p/harness.toml:6:17: [gate] trusted_keys"),
            "{}",
            e.message
        );
        let e = parse(&format!("{MINIMAL}[gate]\nmax_ag = \"1h\"\n")).unwrap_err();
        assert!(e.message.contains("max_ag"), "{}", e.message);
    }

    #[test]
    fn parity_defaults_and_explicit_lists() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.parity.remote_ignore.is_empty());
        let src = format!(
            "{MINIMAL}[parity]\nallow = [\"target_files\"]\ntarget_files = [\"src/local_*.py\"]\nremote_ignore = [\"uploads/**\"]\n"
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.parity.remote_ignore, vec!["uploads/**"]);
    }

    #[test]
    fn bad_parity_entries_name_file_and_line() {
        let e = parse(&format!("{MINIMAL}[parity]\nallow = [\"db_content\"]\n")).unwrap_err();
        assert!(
            e.message.starts_with("/p/harness.toml:6:9: [parity]"),
            "{}",
            e.message
        );
        assert!(e.message.contains("db_content"), "{}", e.message);
        let e = parse(&format!(
            "{MINIMAL}[parity]\nallow = []\ntarget_files = [\"a[\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.message.starts_with("/p/harness.toml:7:16: "),
            "{}",
            e.message
        );
        let e = parse(&format!("{MINIMAL}[parity]\nalow = []\n")).unwrap_err();
        assert!(e.message.contains("alow"), "{}", e.message);
        let e = parse(&format!("{MINIMAL}[parity]\nremote_ignore = [\"[\"]\n")).unwrap_err();
        assert!(
            e.message.contains(":6:17: [parity] remote_ignore"),
            "{}",
            e.message
        );
    }

    #[test]
    fn retention_defaults_and_out_of_range_values_name_the_line() {
        let c = parse(MINIMAL).unwrap();
        let wh = c.webhosting_deploy();
        assert_eq!(wh.keep_releases, 3);
        assert_eq!(
            wh.retention,
            crate::model::retention::RetentionPolicy {
                last: 5,
                daily: 7,
                weekly: 4
            }
        );
        let c = parse(&format!(
            "{MINIMAL}[targets.webhosting]\nkeep_daily = 0\nkeep_weekly = 12\nkeep_backups = 2\n"
        ))
        .unwrap();
        assert_eq!(
            c.webhosting_deploy().retention,
            crate::model::retention::RetentionPolicy {
                last: 2,
                daily: 0,
                weekly: 12
            }
        );
        let e = parse(&format!(
            "{MINIMAL}[targets.webhosting]\nkeep_releases = 0\n"
        ))
        .unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message.starts_with("/p/harness.toml:6:17: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("keep_releases = 0"), "{}", e.message);
        let e = parse(&format!(
            "{MINIMAL}[targets.webhosting]\nkeep_weekly = -1\n"
        ))
        .unwrap_err();
        assert!(e.message.starts_with("/p/harness.toml:6:"), "{}", e.message);
        let e = parse(&format!(
            "{MINIMAL}[targets.webhosting]\nkeep_daily = 9999\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("out of range 0..=3660"), "{}", e.message);
    }

    #[test]
    fn requirements_take_one_file_or_a_list() {
        let c = parse(&format!("{MINIMAL}requirements = \"a.txt\"\n")).unwrap();
        assert_eq!(c.package.requirements.unwrap().get_ref().items(), ["a.txt"]);
        let c = parse(&format!(
            "{MINIMAL}[test]\nrequirements = [\"a.txt\", \"b.txt\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.test.requirements.unwrap().get_ref().items(),
            ["a.txt", "b.txt"]
        );
    }

    #[test]
    fn env_files_layer_in_order_under_the_inline_env_and_say_where_they_fail() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let load = |extra: &str| {
            let src = format!("{MINIMAL}{extra}");
            Config::parse(root.clone(), root.join(FILE_NAME), src)
        };
        std::fs::write(
            root.join(".env.defaults"),
            "A=defaults\nB=defaults\nC=${A}-x\n",
        )
        .unwrap();
        let c = load(
            "[targets.local]\nenv_file = [\".env.defaults\", { path = \".env\", required = false }]\n\
             env = { B = \"inline\" }\n[test]\nenv_file = \".env.defaults\"\n",
        )
        .unwrap();
        let local = c.env_layers(EnvScope::Target(Target::Local)).unwrap();
        assert_eq!(local.files_read(), [".env.defaults"]);
        let env = local.merged();
        assert_eq!(
            (env["A"].as_str(), env["B"].as_str()),
            ("defaults", "inline")
        );
        assert_eq!(env["C"], "defaults-x");
        std::fs::write(root.join(".env"), "A=private\n").unwrap();
        let env = c
            .env_layers(EnvScope::Target(Target::Local))
            .unwrap()
            .merged();
        assert_eq!(env["A"], "private");
        assert_eq!(
            c.env_layers(EnvScope::Test).unwrap().merged()["A"],
            "defaults"
        );
        // No env_file: the inline env alone; webhosting has neither.
        assert!(
            c.env_layers(EnvScope::Target(Target::Webhosting))
                .unwrap()
                .merged()
                .is_empty()
        );

        // A required file that is missing: exit 2 at the env_file line of harness.toml.
        let c = load("[test]\nenv_file = [\".env.defaults\", \"suite.env\"]\n").unwrap();
        let e = c.env_layers(EnvScope::Test).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message
                .contains("harness.toml:6:12: [test] env_file: cannot read"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("required = false"));
        // A line that is not KEY=value: exit 2 at the env file's line.
        std::fs::write(root.join("suite.env"), "OK=1\n\nnot a setting\n").unwrap();
        let e = c.env_layers(EnvScope::Test).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message
                .ends_with("suite.env:3: expected KEY=value (no `=` on this line)"),
            "{}",
            e.message
        );
        // A value with a line break cannot reach an app under Apache.
        std::fs::write(root.join(".env"), "M=\"two\nlines\"\n").unwrap();
        let c = load("[targets.local]\nenv_file = \".env\"\n").unwrap();
        let e = c.app_env(Target::Local).unwrap_err();
        assert!(
            e.message.starts_with("M (.env:1) holds a line break"),
            "{}",
            e.message
        );
        assert!(c.env_layers(EnvScope::Target(Target::Local)).is_ok());

        // Shapes harness.toml refuses at load.
        for bad in [
            "env_file = 3",
            "env_file = { file = \".env\" }",
            "env_file = \"\"",
        ] {
            let e = load(&format!("[targets.local]\n{bad}\n")).unwrap_err();
            assert!(
                e.message.contains("harness.toml:6:"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn test_args_env_and_playwright_server_parse_and_refuse_with_lines() {
        let c = parse(&format!(
            "{MINIMAL}[test]\nargs = [\"-p\", \"no:cov\"]\nenv = {{ HEADLESS = \"1\" }}\n\
             playwright_server = {{ env = \"PW_WS\" }}\ninclude = [\"data/*.json\"]\n"
        ))
        .unwrap();
        assert_eq!(c.test.args(), ["-p", "no:cov"]);
        assert_eq!(c.test.env()["HEADLESS"], "1");
        assert_eq!(c.test.playwright_server_env().as_deref(), Some("PW_WS"));
        let c = parse(&format!("{MINIMAL}[test]\nplaywright_server = true\n")).unwrap();
        assert_eq!(
            c.test.playwright_server_env().as_deref(),
            Some("PLAYWRIGHT_SERVER_WS")
        );
        assert_eq!(parse(MINIMAL).unwrap().test.playwright_server_env(), None);

        let e = parse(&format!("{MINIMAL}[test]\nargs = [\"--junitxml=x.xml\"]\n")).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message.starts_with("/p/harness.toml:6:8: [test] args"),
            "{}",
            e.message
        );
        let e = parse(&format!("{MINIMAL}[test]\nenv = {{ HARNESS_X = \"1\" }}\n")).unwrap_err();
        assert!(
            e.message.contains(":6:") && e.message.contains("reserved"),
            "{}",
            e.message
        );
        let e = parse(&format!("{MINIMAL}[test]\nenv = {{ \"1X\" = \"1\" }}\n")).unwrap_err();
        assert!(e.message.contains("not a variable name"), "{}", e.message);
    }

    #[test]
    fn the_vendor_cache_is_on_unless_turned_off() {
        assert!(parse(MINIMAL).unwrap().stack.vendor_cache);
        let off = parse(&format!("{MINIMAL}[stack]\nvendor_cache = false\n")).unwrap();
        assert!(!off.stack.vendor_cache);
        let e = parse(&format!("{MINIMAL}[stack]\nvendor_cache = \"no\"\n")).unwrap_err();
        assert!(e.message.contains("expected a boolean"), "{}", e.message);
    }

    #[test]
    fn aliases_must_be_host_names_no_other_service_has() {
        let ok = parse(&format!(
            "{MINIMAL}[stack]\naliases = {{ mailpit = [\"shop-dev-mailpit\"], netcup = [\"shop-dev-mock-netcup-api\"] }}\n"
        ))
        .unwrap();
        assert_eq!(ok.stack.aliases["mailpit"].get_ref(), &["shop-dev-mailpit"]);
        for (aliases, why) in [
            ("{ mailpit = [\"shop_dev\"] }", "only letters"),
            ("{ mailpit = [\"-x\"] }", "starts or ends"),
            ("{ mailpit = [\"app\"] }", "`app` service"),
            ("{ mailpit = [\"app.localtest.me\"] }", "fqdn"),
            (
                "{ mailpit = [\"same\"], netcup = [\"same\"] }",
                "already an alias",
            ),
        ] {
            let e = parse(&format!("{MINIMAL}[stack]\naliases = {aliases}\n")).unwrap_err();
            assert_eq!(e.exit, Exit::BadInput);
            assert!(
                e.message.starts_with("/p/harness.toml:6:"),
                "{aliases}: {}",
                e.message
            );
            assert!(e.message.contains(why), "{aliases}: {}", e.message);
        }
    }

    #[test]
    fn ssh_destinations_are_what_openssh_takes_and_never_an_option() {
        for ok in [
            "deploy@webhosting.example",
            "host",
            "my_alias",
            "u@[2001:db8::1]",
            "u@192.0.2.1",
        ] {
            assert!(check_ssh_destination(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-oProxyCommand=touch /tmp/x",
            "u@-oProxyCommand=x",
            "-l root host",
            "u@host:2222",
            "u@[not-v6]",
            "u@ho st",
            "u$(id)@host",
            "",
        ] {
            assert!(check_ssh_destination(bad).is_err(), "{bad}");
        }
        let e = parse(&format!(
            "{MINIMAL}[targets.webhosting]\nssh = \"-oProxyCommand=touch /tmp/x\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(
            e.message.starts_with("/p/harness.toml:6:7: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("read as an option"), "{}", e.message);
    }

    #[test]
    fn unknown_target_is_rejected() {
        let src = format!("{MINIMAL}[targets.staging]\nenv = {{}}\n");
        assert!(parse(&src).unwrap_err().message.contains("staging"));
    }
}
