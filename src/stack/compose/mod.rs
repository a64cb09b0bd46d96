//! The documented compose subset (docs/compose.md): parse, merge override files by service,
//! interpolate, and resolve into [`ServiceSpec`]s.
//!
//! Files are deserialised straight from their text with `deny_unknown_fields`, so an unsupported
//! key is reported by the YAML parser with its line and column. We use `serde_norway`, the
//! maintained fork of the archived `serde_yaml` with the same API and error locations;
//! `serde_yml` was dropped from consideration after its maintainers archived it and RustSec flagged
//! it as unsound.
pub mod interpolate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use interpolate::{InterpolateError, interpolate};

/// One compose file's text and where it came from. `dir` is where relative paths start.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub dir: PathBuf,
    pub text: String,
}

impl Source {
    pub fn from_file(path: &Path) -> Result<Source, ComposeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ComposeError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the compose file: {e}"),
        })?;
        Ok(Source {
            name: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
        })
    }
}

/// A compose error with its position; `line` 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ComposeError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ComposeError {
    fn render(&self) -> String {
        match (self.line, self.column) {
            (0, _) => format!("{}: {}", self.file, self.message),
            (l, 0) => format!("{}:{l}: {}", self.file, self.message),
            (l, c) => format!("{}:{l}:{c}: {}", self.file, self.message),
        }
    }
}

/// The resolved stack: services by name and the named volumes they use.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub services: BTreeMap<String, ServiceSpec>,
    /// Named volumes; `true` marks a cache volume, which outlives runs and carries no run label.
    pub volumes: BTreeMap<String, bool>,
}

/// What to run for one service, after merging and interpolation.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    /// Container ports to publish; the host side is always an ephemeral port on 127.0.0.1.
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<MountSpec>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: BTreeMap<String, Condition>,
    pub aliases: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub shm_size: Option<i64>,
    pub tmpfs: Vec<String>,
    /// How the engine decides the service is ready.
    pub wait: WaitSpec,
    pub timeout: Duration,
    /// Files copied in after the container is created and before it starts (not a compose
    /// key: harness adds them, e.g. the test job's copy of the tree).
    pub uploads: Vec<super::upload::Upload>,
    /// Container folders of writable bind mounts that nothing reads after the run, so they are
    /// not copied back (not a compose key: the app's root, which only the app itself uses).
    pub stays: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub port: u16,
    pub udp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
    },
}

impl MountSpec {
    fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target } => target,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// In Docker's form: `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<i64>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// The readiness rule of one service. Each kind has its module under `stack::wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitSpec {
    /// Running is enough (nothing depends on more).
    Started,
    /// Docker's own healthcheck reports `healthy`.
    Healthy,
    /// `GET path` on the published `port` answers 2xx; over verified TLS when `tls` is set.
    Http {
        port: u16,
        path: String,
        tls: Option<TlsWait>,
    },
    /// A line containing `text` appears in the logs.
    Log { text: String },
    /// A one-shot job: the container exits with code 0.
    Exit,
}

/// How an HTTPS wait verifies the server: our CA, and the name the certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsWait {
    pub ca: PathBuf,
    pub server_name: String,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses, merges (later files override earlier ones by service) and interpolates.
pub fn load(
    sources: &[Source],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Stack, ComposeError> {
    let mut merged: BTreeMap<String, (RawService, usize)> = BTreeMap::new();
    let mut volumes: BTreeMap<String, bool> = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        let file = parse_file(source)?;
        for (name, decl) in file.volumes {
            let cache = decl.and_then(|d| d.harness).is_some_and(|h| h.cache);
            volumes.insert(name, cache);
        }
        for (name, mut service) in file.services {
            service.anchor_paths(&source.dir);
            match merged.get_mut(&name) {
                Some((base, _)) => base.merge(service),
                None => {
                    merged.insert(name, (service, index));
                }
            }
        }
    }
    let mut stack = Stack {
        services: BTreeMap::new(),
        volumes,
    };
    for (name, (raw, index)) in merged {
        let spec = resolve(&name, raw, sources, index, lookup, &stack.volumes)?;
        stack.services.insert(name, spec);
    }
    check_dependencies(&stack, sources)?;
    Ok(stack)
}

fn parse_file(source: &Source) -> Result<RawFile, ComposeError> {
    if source.text.trim().is_empty() {
        return Ok(RawFile::default());
    }
    serde_norway::from_str::<RawFile>(&source.text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let mut message = e.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        // serde's text for a value matching none of the accepted shapes names our Rust types;
        // say which shapes the key takes instead.
        let (mut line, mut column) = (line, column);
        for (ty, key, shapes) in SHAPES {
            let serde_text = format!("data did not match any variant of untagged enum {ty}");
            if !message.contains(&serde_text) {
                continue;
            }
            message = message.replace(&serde_text, shapes);
            // The parser reports such errors at the service, not the key: find the key's line.
            let service = message
                .strip_prefix("services.")
                .and_then(|m| m.split(':').next());
            if let (Some(service), Some(key)) = (service, key)
                && let Some(l) = find_line(&source.text, service, &format!("{key}:"))
            {
                (line, column) = (l, 0);
            }
        }
        ComposeError {
            file: source.name.clone(),
            line,
            column,
            message,
        }
    })
}

/// The accepted shapes of each key that takes more than one, for error messages.
const SHAPES: &[(&str, Option<&str>, &str)] = &[
    (
        "RawDependsOn",
        Some("depends_on"),
        "`depends_on` takes a list of services, or a map of service: { condition: ... }",
    ),
    (
        "RawVolume",
        Some("volumes"),
        "a volume is \"SOURCE:TARGET[:ro]\", or { type, source, target, read_only }",
    ),
    (
        "RawNetworks",
        Some("networks"),
        "`networks` takes a list of networks, or a map of network: { aliases: [...] }",
    ),
    ("StrOrList", None, "expected a string or a list of strings"),
    (
        "MapOrList",
        None,
        "expected a map of KEY: VALUE, or a list of \"KEY=VALUE\"",
    ),
    ("OneOrMany", None, "expected a string or a list of strings"),
    ("Scalar", None, "expected a string, number or boolean"),
];

// ---- raw, as written ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<RawVolumeDecl>>,
    /// Accepted so files stay valid compose; every run has exactly one network (docs/compose.md).
    #[serde(default)]
    #[allow(dead_code)]
    networks: BTreeMap<String, Option<RawEmpty>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmpty {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolumeDecl {
    #[serde(rename = "x-harness")]
    harness: Option<RawVolumeHarness>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolumeHarness {
    #[serde(default)]
    cache: bool,
}

/// A YAML scalar taken as text, so `${PORT}` and `8080` are both fine where a number is meant.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StrOrList {
    Str(String),
    List(Vec<Scalar>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum MapOrList {
    Map(BTreeMap<String, Option<Scalar>>),
    List(Vec<String>),
}

impl MapOrList {
    /// Entries in order; `None` means "take it from the environment" (`- KEY` or `KEY:`).
    fn entries(&self) -> Vec<(String, Option<String>)> {
        match self {
            MapOrList::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(Scalar::text)))
                .collect(),
            MapOrList::List(l) => l
                .iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (item.clone(), None),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawVolume {
    Short(String),
    Long(RawVolumeLong),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolumeLong {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    source: Option<String>,
    target: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    #[serde(default)]
    test: Option<StrOrList>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retries: Option<Scalar>,
    #[serde(default)]
    start_period: Option<String>,
    #[serde(default)]
    disable: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawDependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, RawDependency>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    #[serde(default = "default_condition")]
    condition: String,
}

fn default_condition() -> String {
    "service_started".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawNetworks {
    List(Vec<String>),
    Map(BTreeMap<String, Option<RawServiceNetwork>>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceNetwork {
    #[serde(default)]
    aliases: Vec<String>,
}

/// Harness-only settings, in compose's extension-field style so the files stay valid compose.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHarness {
    #[serde(default)]
    wait: Option<RawWait>,
    #[serde(default)]
    timeout: Option<String>,
}

/// Exactly one key: `http`, `log`, `healthy`, `exit` or `started`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    http: Option<RawHttpWait>,
    log: Option<String>,
    healthy: Option<bool>,
    exit: Option<Scalar>,
    started: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpWait {
    port: Scalar,
    path: String,
    /// Probe over TLS, verifying the server against this CA file for this name.
    #[serde(default)]
    tls: Option<RawTlsWait>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsWait {
    ca: String,
    server_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<String>,
    command: Option<StrOrList>,
    entrypoint: Option<StrOrList>,
    environment: Option<MapOrList>,
    env_file: Option<OneOrMany>,
    ports: Option<Vec<Scalar>>,
    volumes: Option<Vec<RawVolume>>,
    healthcheck: Option<RawHealthcheck>,
    depends_on: Option<RawDependsOn>,
    networks: Option<RawNetworks>,
    labels: Option<MapOrList>,
    user: Option<Scalar>,
    working_dir: Option<String>,
    shm_size: Option<Scalar>,
    tmpfs: Option<OneOrMany>,
    #[serde(rename = "x-harness")]
    harness: Option<RawHarness>,
}

impl RawService {
    /// Makes relative bind sources and env files absolute against the file they are written in,
    /// so an override in the project root and the built-in files can both use `./`.
    fn anchor_paths(&mut self, dir: &Path) {
        let anchor = |p: &str| -> Option<String> {
            (p.starts_with("./") || p.starts_with("../") || p == ".")
                .then(|| dir.join(p).display().to_string())
        };
        for v in self.volumes.iter_mut().flatten() {
            match v {
                RawVolume::Short(s) => {
                    if let Some((src, rest)) = s.split_once(':')
                        && let Some(abs) = anchor(src)
                    {
                        *s = format!("{abs}:{rest}");
                    }
                }
                RawVolume::Long(l) if l.kind == "bind" => {
                    if let Some(abs) = l.source.as_deref().and_then(anchor) {
                        l.source = Some(abs);
                    }
                }
                RawVolume::Long(_) => {}
            }
        }
        if let Some(files) = &self.env_file {
            self.env_file = Some(OneOrMany::Many(
                files
                    .items()
                    .into_iter()
                    .map(|f| {
                        if Path::new(&f).is_absolute() || f.starts_with('$') {
                            f
                        } else {
                            dir.join(&f).display().to_string()
                        }
                    })
                    .collect(),
            ));
        }
    }

    /// Compose's override rules: single values are replaced; maps merge by key; ports, env files
    /// and tmpfs are appended; volumes merge by target path.
    fn merge(&mut self, over: RawService) {
        fn replace<T>(base: &mut Option<T>, over: Option<T>) {
            if over.is_some() {
                *base = over;
            }
        }
        replace(&mut self.image, over.image);
        replace(&mut self.command, over.command);
        replace(&mut self.entrypoint, over.entrypoint);
        replace(&mut self.healthcheck, over.healthcheck);
        replace(&mut self.user, over.user);
        replace(&mut self.working_dir, over.working_dir);
        replace(&mut self.shm_size, over.shm_size);
        replace(&mut self.harness, over.harness);
        self.environment = merge_maps(self.environment.take(), over.environment);
        self.labels = merge_maps(self.labels.take(), over.labels);
        self.env_file = append(self.env_file.take(), over.env_file);
        self.tmpfs = append(self.tmpfs.take(), over.tmpfs);
        if let Some(p) = over.ports {
            self.ports.get_or_insert_with(Vec::new).extend(p);
        }
        if let Some(v) = over.volumes {
            let base = self.volumes.get_or_insert_with(Vec::new);
            for vol in v {
                let target = raw_volume_target(&vol);
                base.retain(|b| raw_volume_target(b) != target);
                base.push(vol);
            }
        }
        if let Some(d) = over.depends_on {
            let mut map = depends_map(self.depends_on.take());
            map.extend(depends_map(Some(d)));
            self.depends_on = Some(RawDependsOn::Map(map));
        }
        if let Some(n) = over.networks {
            let mut map = networks_map(self.networks.take());
            map.extend(networks_map(Some(n)));
            self.networks = Some(RawNetworks::Map(map));
        }
    }
}

fn merge_maps(base: Option<MapOrList>, over: Option<MapOrList>) -> Option<MapOrList> {
    match (base, over) {
        (b, None) => b,
        (None, o) => o,
        (Some(b), Some(o)) => {
            let mut m: BTreeMap<String, Option<Scalar>> = BTreeMap::new();
            for (k, v) in b.entries().into_iter().chain(o.entries()) {
                m.insert(k, v.map(Scalar::Str));
            }
            Some(MapOrList::Map(m))
        }
    }
}

fn append(base: Option<OneOrMany>, over: Option<OneOrMany>) -> Option<OneOrMany> {
    match (base, over) {
        (b, None) => b,
        (None, o) => o,
        (Some(b), Some(o)) => {
            let mut items = b.items();
            for i in o.items() {
                if !items.contains(&i) {
                    items.push(i);
                }
            }
            Some(OneOrMany::Many(items))
        }
    }
}

fn raw_volume_target(v: &RawVolume) -> String {
    match v {
        RawVolume::Short(s) => {
            let parts = split_outside_braces(s, ':');
            match parts.len() {
                1 => parts[0].to_string(),
                _ => parts[1].to_string(),
            }
        }
        RawVolume::Long(l) => l.target.clone(),
    }
}

/// Splits on `sep` except inside `${...}` (merging happens before interpolation, and
/// `${DIR:?message}` holds a colon of its own).
fn split_outside_braces(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        match c {
            '{' if prev == '$' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        prev = c;
    }
    parts.push(&s[start..]);
    parts
}

fn depends_map(d: Option<RawDependsOn>) -> BTreeMap<String, RawDependency> {
    match d {
        None => BTreeMap::new(),
        Some(RawDependsOn::Map(m)) => m,
        Some(RawDependsOn::List(l)) => l
            .into_iter()
            .map(|s| {
                (
                    s,
                    RawDependency {
                        condition: default_condition(),
                    },
                )
            })
            .collect(),
    }
}

fn networks_map(n: Option<RawNetworks>) -> BTreeMap<String, Option<RawServiceNetwork>> {
    match n {
        None => BTreeMap::new(),
        Some(RawNetworks::Map(m)) => m,
        Some(RawNetworks::List(l)) => l.into_iter().map(|s| (s, None)).collect(),
    }
}

// ---- resolution -----------------------------------------------------------------------------

struct Ctx<'a> {
    service: &'a str,
    sources: &'a [Source],
    /// The file that defined the service first; override files are searched too.
    index: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    /// An error placed at the first line (in the defining file, then the overrides) where `needle`
    /// appears inside this service's block; the YAML layer no longer knows positions here.
    fn error(&self, needle: &str, message: impl Into<String>) -> ComposeError {
        let message = format!("service `{}`: {}", self.service, message.into());
        for source in self.sources[self.index..].iter() {
            if let Some(line) = find_line(&source.text, self.service, needle) {
                return ComposeError {
                    file: source.name.clone(),
                    line,
                    column: 0,
                    message,
                };
            }
        }
        ComposeError {
            file: self.sources[self.index].name.clone(),
            line: find_line(&self.sources[self.index].text, self.service, "").unwrap_or(0),
            column: 0,
            message,
        }
    }

    fn interp(&self, raw: &str) -> Result<String, ComposeError> {
        interpolate(raw, self.lookup).map_err(|e| self.error(raw, e.to_string()))
    }

    fn dir(&self) -> &Path {
        &self.sources[self.index].dir
    }
}

/// 1-based line of the first occurrence of `needle` after the line that opens `service:`.
fn find_line(text: &str, service: &str, needle: &str) -> Option<usize> {
    let mut in_service = false;
    let mut service_indent = 0;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with(&format!("{service}:")) && indent > 0 {
            in_service = true;
            service_indent = indent;
            if needle.is_empty() {
                return Some(n + 1);
            }
            continue;
        }
        if in_service {
            if !trimmed.is_empty() && !trimmed.starts_with('#') && indent <= service_indent {
                in_service = false;
                continue;
            }
            if !needle.is_empty() && line.contains(needle) {
                return Some(n + 1);
            }
        }
    }
    None
}

fn resolve(
    name: &str,
    raw: RawService,
    sources: &[Source],
    index: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    volumes: &BTreeMap<String, bool>,
) -> Result<ServiceSpec, ComposeError> {
    let cx = Ctx {
        service: name,
        sources,
        index,
        lookup,
    };
    let image = match &raw.image {
        Some(i) => cx.interp(i)?,
        None => return Err(cx.error("", "has no `image`")),
    };
    if image.is_empty() {
        return Err(cx.error("image", "`image` is empty after interpolation"));
    }
    let command = raw.command.as_ref().map(|c| words(&cx, c)).transpose()?;
    let entrypoint = raw.entrypoint.as_ref().map(|c| words(&cx, c)).transpose()?;

    let mut environment = BTreeMap::new();
    if let Some(files) = &raw.env_file {
        for f in files.items() {
            let path = cx.dir().join(cx.interp(&f)?);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                cx.error(&f, format!("cannot read env_file {}: {e}", path.display()))
            })?;
            environment.extend(parse_env_file(&text));
        }
    }
    if let Some(env) = &raw.environment {
        for (k, v) in env.entries() {
            match v {
                Some(v) => {
                    environment.insert(k, cx.interp(&v)?);
                }
                // `- KEY` passes the caller's value through, and is dropped when it has none.
                None => {
                    if let Some(v) = lookup(&k) {
                        environment.insert(k, v);
                    }
                }
            }
        }
    }

    let mut ports = Vec::new();
    for p in raw.ports.iter().flatten() {
        let text = cx.interp(&p.text())?;
        ports.push(parse_port(&text).map_err(|m| cx.error(&p.text(), m))?);
    }

    let mut mounts = Vec::new();
    for v in raw.volumes.iter().flatten() {
        let m = match v {
            RawVolume::Short(s) => {
                let text = cx.interp(s)?;
                // The source may have been anchored to an absolute path; the rest is as written.
                let needle = s.split_once(':').map_or(s.as_str(), |(_, rest)| rest);
                parse_short_volume(&text, cx.dir(), volumes).map_err(|m| cx.error(needle, m))?
            }
            RawVolume::Long(l) => {
                let target = cx.interp(&l.target)?;
                let source = l.source.as_deref().map(|s| cx.interp(s)).transpose()?;
                match (l.kind.as_str(), source) {
                    ("tmpfs", _) => MountSpec::Tmpfs { target },
                    ("bind", Some(s)) => MountSpec::Bind {
                        source: absolutize(cx.dir(), &s),
                        target,
                        read_only: l.read_only,
                    },
                    ("volume", Some(s)) => {
                        if !volumes.contains_key(&s) {
                            return Err(cx.error(
                                &l.target,
                                format!("volume `{s}` is not declared under top-level `volumes:`"),
                            ));
                        }
                        MountSpec::Volume {
                            name: s,
                            target,
                            read_only: l.read_only,
                        }
                    }
                    (kind @ ("bind" | "volume"), None) => {
                        return Err(cx.error(&l.target, format!("a {kind} mount needs `source`")));
                    }
                    (other, _) => {
                        return Err(cx.error(
                            &l.target,
                            format!(
                                "volume type `{other}` is not supported; use bind, volume or tmpfs"
                            ),
                        ));
                    }
                }
            }
        };
        mounts.push(m);
    }
    mounts.dedup_by(|a, b| a.target() == b.target());

    let healthcheck = match &raw.healthcheck {
        None => None,
        Some(h) if h.disable => None,
        Some(h) => Some(healthcheck(&cx, h)?),
    };

    let mut depends_on = BTreeMap::new();
    for (dep, d) in depends_map(raw.depends_on.clone()) {
        let condition = match d.condition.as_str() {
            "service_started" => Condition::Started,
            "service_healthy" => Condition::Healthy,
            "service_completed_successfully" => Condition::CompletedSuccessfully,
            other => {
                return Err(cx.error(
                    other,
                    format!(
                        "unknown depends_on condition `{other}`; use service_started, \
                         service_healthy or service_completed_successfully"
                    ),
                ));
            }
        };
        depends_on.insert(dep, condition);
    }

    let mut aliases = vec![name.to_string()];
    for (_, n) in networks_map(raw.networks.clone()) {
        for a in n.unwrap_or_default().aliases {
            let a = cx.interp(&a)?;
            if !aliases.contains(&a) {
                aliases.push(a);
            }
        }
    }

    let mut labels = BTreeMap::new();
    if let Some(l) = &raw.labels {
        for (k, v) in l.entries() {
            if k.starts_with("harness.") {
                return Err(cx.error(
                    &k,
                    format!("label `{k}` is reserved: harness sets harness.* labels itself"),
                ));
            }
            labels.insert(k, cx.interp(&v.unwrap_or_default())?);
        }
    }

    let user = raw
        .user
        .as_ref()
        .map(|u| cx.interp(&u.text()))
        .transpose()?;
    let working_dir = raw
        .working_dir
        .as_deref()
        .map(|w| cx.interp(w))
        .transpose()?;
    let shm_size = match &raw.shm_size {
        None => None,
        Some(s) => {
            let text = cx.interp(&s.text())?;
            Some(parse_size(&text).ok_or_else(|| {
                cx.error(
                    "shm_size",
                    format!("shm_size `{text}` is not a size (e.g. 256m, 1g, 1048576)"),
                )
            })?)
        }
    };
    let mut tmpfs = Vec::new();
    for t in raw.tmpfs.as_ref().map(OneOrMany::items).unwrap_or_default() {
        tmpfs.push(cx.interp(&t)?);
    }

    let harness = raw.harness.clone().unwrap_or_default();
    let wait = match harness.wait.unwrap_or_default() {
        RawWait {
            http: Some(RawHttpWait { port, path, tls }),
            log: None,
            healthy: None,
            exit: None,
            started: None,
        } => {
            let port_text = cx.interp(&port.text())?;
            let port: u16 = port_text.parse().map_err(|_| {
                cx.error(
                    "x-harness",
                    format!("wait port `{port_text}` is not a port"),
                )
            })?;
            if !ports.iter().any(|p| p.port == port && !p.udp) {
                return Err(cx.error(
                    "x-harness",
                    format!("the http wait uses port {port}, which is not in `ports`"),
                ));
            }
            let path = cx.interp(&path)?;
            if !path.starts_with('/') {
                return Err(cx.error("path", format!("wait path `{path}` must start with /")));
            }
            let tls = match tls {
                None => None,
                Some(t) => Some(TlsWait {
                    ca: PathBuf::from(cx.interp(&t.ca)?),
                    server_name: cx.interp(&t.server_name)?,
                }),
            };
            WaitSpec::Http { port, path, tls }
        }
        RawWait {
            http: None,
            log: Some(text),
            healthy: None,
            exit: None,
            started: None,
        } => WaitSpec::Log {
            text: cx.interp(&text)?,
        },
        RawWait {
            http: None,
            log: None,
            healthy: Some(true),
            exit: None,
            started: None,
        } => {
            if healthcheck.is_none() {
                return Err(cx.error(
                    "healthy",
                    "waits for `healthy` but has no healthcheck; add `healthcheck:`",
                ));
            }
            WaitSpec::Healthy
        }
        RawWait {
            http: None,
            log: None,
            healthy: None,
            exit: Some(code),
            started: None,
        } => {
            if code.text() != "0" {
                return Err(cx.error("exit", "a job's wait is `exit: 0`"));
            }
            WaitSpec::Exit
        }
        RawWait {
            http: None,
            log: None,
            healthy: None | Some(false),
            exit: None,
            started,
        } => {
            if healthcheck.is_some() && started != Some(true) {
                WaitSpec::Healthy
            } else {
                WaitSpec::Started
            }
        }
        _ => {
            return Err(cx.error(
                "wait",
                "`x-harness.wait` takes exactly one of http, log, healthy, exit, started",
            ));
        }
    };
    let timeout = match &harness.timeout {
        Some(t) => {
            let text = cx.interp(t)?;
            parse_duration(&text).ok_or_else(|| {
                cx.error(
                    "timeout",
                    format!("timeout `{text}` is not a duration (e.g. 30s, 1m30s, 500ms)"),
                )
            })?
        }
        None => DEFAULT_TIMEOUT,
    };

    Ok(ServiceSpec {
        name: name.to_string(),
        image,
        command,
        entrypoint,
        environment,
        ports,
        mounts,
        healthcheck,
        depends_on,
        aliases,
        labels,
        user,
        working_dir,
        shm_size,
        tmpfs,
        wait,
        timeout,
        uploads: Vec::new(),
        stays: Vec::new(),
    })
}

fn check_dependencies(stack: &Stack, sources: &[Source]) -> Result<(), ComposeError> {
    for (name, spec) in &stack.services {
        for (dep, condition) in &spec.depends_on {
            let at = || {
                sources
                    .iter()
                    .find_map(|s| find_line(&s.text, name, dep).map(|l| (s.name.clone(), l)))
                    .unwrap_or_else(|| (sources[0].name.clone(), 0))
            };
            let Some(target) = stack.services.get(dep) else {
                let (file, line) = at();
                return Err(ComposeError {
                    file,
                    line,
                    column: 0,
                    message: format!("service `{name}` depends on `{dep}`, which is not defined"),
                });
            };
            let fits = match condition {
                Condition::Started => true,
                Condition::Healthy => !matches!(target.wait, WaitSpec::Started | WaitSpec::Exit),
                Condition::CompletedSuccessfully => target.wait == WaitSpec::Exit,
            };
            if !fits {
                let (file, line) = at();
                let need = match condition {
                    Condition::Healthy => "a healthcheck or an x-harness wait",
                    _ => "`x-harness: {wait: {exit: 0}}` (a job)",
                };
                return Err(ComposeError {
                    file,
                    line,
                    column: 0,
                    message: format!(
                        "service `{name}` waits for `{dep}` to be {condition:?}, but `{dep}` has no \
                         such readiness; give it {need}"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn words(cx: &Ctx, c: &StrOrList) -> Result<Vec<String>, ComposeError> {
    match c {
        StrOrList::List(l) => l.iter().map(|w| cx.interp(&w.text())).collect(),
        StrOrList::Str(s) => {
            let text = cx.interp(s)?;
            split_words(&text).ok_or_else(|| cx.error(s, "unbalanced quotes in command"))
        }
    }
}

fn healthcheck(cx: &Ctx, h: &RawHealthcheck) -> Result<Healthcheck, ComposeError> {
    let test = match &h.test {
        None => return Err(cx.error("healthcheck", "healthcheck needs `test`")),
        Some(StrOrList::Str(s)) => vec!["CMD-SHELL".to_string(), cx.interp(s)?],
        Some(StrOrList::List(l)) => {
            let items: Vec<String> = l
                .iter()
                .map(|w| cx.interp(&w.text()))
                .collect::<Result<_, _>>()?;
            match items.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL" | "NONE") => items,
                _ => {
                    return Err(cx.error(
                        "test",
                        "healthcheck test lists start with CMD, CMD-SHELL or NONE",
                    ));
                }
            }
        }
    };
    let dur = |v: &Option<String>, key: &str| -> Result<Option<Duration>, ComposeError> {
        v.as_deref()
            .map(|t| {
                let text = cx.interp(t)?;
                parse_duration(&text).ok_or_else(|| {
                    cx.error(key, format!("healthcheck {key} `{text}` is not a duration"))
                })
            })
            .transpose()
    };
    let retries =
        match &h.retries {
            None => None,
            Some(r) => {
                let text = cx.interp(&r.text())?;
                Some(text.parse().map_err(|_| {
                    cx.error("retries", format!("retries `{text}` is not a number"))
                })?)
            }
        };
    Ok(Healthcheck {
        test,
        interval: dur(&h.interval, "interval")?,
        timeout: dur(&h.timeout, "timeout")?,
        retries,
        start_period: dur(&h.start_period, "start_period")?,
    })
}

/// `80`, `8080:80`, `127.0.0.1:8080:80`, `80/udp`: only the container port matters, because the
/// host side is always an ephemeral port on 127.0.0.1 (two runs must never clash).
fn parse_port(text: &str) -> Result<PortSpec, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p),
        None => (text, "tcp"),
    };
    let udp = match proto {
        "tcp" => false,
        "udp" => true,
        other => return Err(format!("port protocol `{other}` is not tcp or udp")),
    };
    let container = spec.rsplit(':').next().unwrap_or(spec);
    let port = container
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            format!("`{text}` has no valid container port (ranges are not supported)")
        })?;
    Ok(PortSpec { port, udp })
}

fn parse_short_volume(
    text: &str,
    dir: &Path,
    volumes: &BTreeMap<String, bool>,
) -> Result<MountSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => {
            return Err(format!(
                "anonymous volume `{t}` is not supported; name it or use tmpfs"
            ));
        }
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("`{text}` is not SOURCE:TARGET[:ro|rw]")),
    };
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => return Err(format!("volume mode `{other}` is not ro or rw")),
    };
    if !target.starts_with('/') {
        return Err(format!("volume target `{target}` must be an absolute path"));
    }
    let is_path = source.starts_with('/') || source.starts_with('.') || source.starts_with('~');
    if is_path {
        Ok(MountSpec::Bind {
            source: absolutize(dir, source),
            target: target.to_string(),
            read_only,
        })
    } else if volumes.contains_key(source) {
        Ok(MountSpec::Volume {
            name: source.to_string(),
            target: target.to_string(),
            read_only,
        })
    } else {
        Err(format!(
            "volume `{source}` is not declared under top-level `volumes:`"
        ))
    }
}

fn absolutize(dir: &Path, source: &str) -> PathBuf {
    if let Some(rest) = source.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = Path::new(source);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    // Normalise `./` and `a/../` so Docker gets a clean absolute path.
    crate::fsutil::normalize_lexically(&joined)
}

/// Compose's env_file format: `KEY=VALUE` lines, `#` comments, optional matching quotes.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = if v.len() >= 2
                && ((v.starts_with('"') && v.ends_with('"'))
                    || (v.starts_with('\'') && v.ends_with('\'')))
            {
                &v[1..v.len() - 1]
            } else {
                v
            };
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Shell-like splitting for string commands: whitespace, single and double quotes, backslash.
pub fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Compose durations: `1m30s`, `500ms`, `2h`, `10s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "us" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(n * scale);
    }
    Some(total)
}

/// `256m`, `1g`, `64k`, `1048576`, `2gb` → bytes.
pub fn parse_size(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1i64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests;
