//! The stack commands: `up`, `down`, `status`, `logs`. Each is a function of the config and a
//! request; `cli` only turns their outcome into text.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;

use super::compose::{self, MountSpec, Source};
use super::engine::RunSummary;
use super::{Engine, RunIdentity, StackError, StackHandle, Upload, VENDOR, VendorSet, upload};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Phase, Reporter};
use crate::model::target::Target;

/// The built-in stack. Written into each run's directory so the files a run used can be read
/// afterwards, and so relative bind mounts (the proxy config) resolve inside the run.
const BUILTIN: &[(&str, &str)] = &[
    ("base.yml", include_str!("../../compose/base.yml")),
    ("mocks.yml", include_str!("../../compose/mocks.yml")),
    ("test.yml", include_str!("../../compose/test.yml")),
    ("tls.yml", include_str!("../../compose/tls.yml")),
    ("tls-mocks.yml", include_str!("../../compose/tls-mocks.yml")),
    ("tls-test.yml", include_str!("../../compose/tls-test.yml")),
    (
        "mocks-test.yml",
        include_str!("../../compose/mocks-test.yml"),
    ),
    (
        "playwright-server.yml",
        include_str!("../../compose/playwright-server.yml"),
    ),
    (
        "tls-playwright-server.yml",
        include_str!("../../compose/tls-playwright-server.yml"),
    ),
    // Not a compose file: the server's start script, bind-mounted from the run's compose/.
    (
        "playwright-server.sh",
        include_str!("../../compose/playwright-server.sh"),
    ),
];

/// The Playwright server's service name, port and path (compose/playwright-server.yml).
const PLAYWRIGHT_SERVER: &str = "playwright-server";
const PLAYWRIGHT_SERVER_PORT: u16 = 3000;
const PLAYWRIGHT_SERVER_PATH: &str = "/playwright";

/// The server's URL inside the run's network, for the test job.
pub(crate) fn playwright_server_url() -> String {
    format!("ws://{PLAYWRIGHT_SERVER}:{PLAYWRIGHT_SERVER_PORT}{PLAYWRIGHT_SERVER_PATH}")
}

/// Image repositories the compose files refer to through `HARNESS_IMAGE_<NAME>`.
const IMAGES: &[(&str, &str)] = &[
    ("HARNESS_IMAGE_APP", "harness/app"),
    ("HARNESS_IMAGE_PROXY", "harness/proxy"),
    ("HARNESS_IMAGE_MOCKS", "harness/mocks"),
    ("HARNESS_IMAGE_PLAYWRIGHT", "harness/playwright"),
];

pub struct UpRequest {
    pub with_mocks: bool,
    /// Plain HTTP on the proxy, for debugging; TLS with the project CA otherwise.
    pub no_tls: bool,
    pub skip_build: bool,
    /// Seed the database again even when the seed cache has it (`--reseed`).
    pub reseed: bool,
    /// `up` keeps the stack; `test` (later) tears it down unless `--keep`.
    pub keep: bool,
    /// `up --watch`: Passenger checks tmp/restart.txt on every request (stat throttle 0)
    /// instead of production's every 10 s, so a pushed edit restarts the app at once.
    pub watch: bool,
}

/// What `up` started: everything the user needs to reach and stop it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub state_file: Option<PathBuf>,
    pub urls: Vec<ServiceUrl>,
    pub elapsed_ms: u128,
    /// The app's container and its published HTTP port: where `up --watch` pushes edits.
    #[serde(skip)]
    pub app: Option<AppContainer>,
}

/// The running app of a run, as `up --watch` reaches it.
#[derive(Debug, Clone)]
pub struct AppContainer {
    pub container_id: String,
    /// The host port of the app's port 80 (Apache, without the proxy).
    pub port: u16,
}

/// One address a run publishes (on 127.0.0.1 for a local engine; `docker::ports`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceUrl {
    pub service: String,
    pub what: String,
    pub url: String,
}

pub struct DownRequest {
    pub run: Option<String>,
    pub all: bool,
}

pub struct StatusRequest {
    pub run: Option<String>,
}

pub struct LogsRequest {
    pub service: String,
    pub run: Option<String>,
    pub follow: bool,
}

pub(crate) use crate::docker::runtime;

/// The project root as labels record it: canonical, so runs are found from any spelling.
fn root_label(config: &Config) -> String {
    project_root(config).display().to_string()
}

/// Absolute, because bind-mount sources must be and labels must compare equal.
pub(crate) fn project_root(config: &Config) -> PathBuf {
    config
        .root
        .canonicalize()
        .unwrap_or_else(|_| config.root.clone())
}

fn runs_dir(config: &Config) -> PathBuf {
    project_root(config).join(".harness").join("runs")
}

/// Builds (or reuses) the local package, starts the stack and waits until every service is
/// ready. On any failure or interrupt the run is removed before this returns.
///
/// The cheap checks come first, so a missing daemon (exit 3) or a bad compose file (exit 2) is
/// reported before a package build is spent.
pub fn up(config: &Config, req: &UpRequest, reporter: &dyn Reporter) -> Result<UpOutcome, Failure> {
    let start = Instant::now();
    let rt = runtime()?;
    rt.block_on(async {
        let engine = connect(reporter).await?;
        let plan = plan_launch(
            &engine,
            config,
            &LaunchRequest {
                with_mocks: req.with_mocks,
                no_tls: req.no_tls,
                keep: req.keep,
                test_job: false,
                playwright_server: config.test.playwright_server_env().is_some(),
                vars: if req.watch {
                    BTreeMap::from([(WATCH_THROTTLE_VAR.to_string(), "0".to_string())])
                } else {
                    BTreeMap::new()
                },
            },
            reporter,
        )
        .await?;
        if req.watch {
            reporter.event(&Event::Note {
                message: "watch: Passenger's stat throttle is 0 for this run (production and \
                          `harness test` keep 10 s), so an edit restarts the app on the next request"
                    .into(),
            });
        }
        let default_zip = project_root(config).join(".harness/dist/local/deploy.zip");
        // Watch pushes what changes after it starts, so it must start from the sources as
        // they are: it reuses the package only when its inputs are unchanged, as `test` does.
        let fresh = if req.watch && req.skip_build {
            crate::package::fresh::reusable(config, Target::Local)?
                .map(|m| (m.zip, m.state_file))
        } else if req.skip_build && default_zip.is_file() {
            Some((default_zip, project_root(config).join(STATE_FILE)))
        } else {
            None
        };
        let (zip, state_file) = if let Some(reused) = fresh {
            reused
        } else {
            let request = crate::package::BuildRequest {
                reseed: req.reseed,
                ..crate::package::BuildRequest::standard(Target::Local)
            };
            let built = crate::gatekeeper::build(config, &request, reporter)?;
            (built.zip, built.state_file)
        };
        let launch = materialize(
            config,
            plan,
            AppSource::Package(&zip),
            &state_file,
            reporter,
        )?;
        let handle = guarded(&engine, &launch.run, &launch.logs_dir, reporter, async {
            let handle = start_stack(&engine, &launch, reporter).await?;
            identify(&handle, &launch, reporter).await?;
            Ok(handle)
        })
        .await?;
        Ok(UpOutcome {
            run_id: launch.run.id.clone(),
            run_dir: launch.run_dir.clone(),
            state_file: launch.state_copy.clone(),
            urls: urls_of(&handle, !launch.no_tls),
            elapsed_ms: start.elapsed().as_millis(),
            app: handle.service("app").and_then(|svc| {
                Some(AppContainer {
                    container_id: svc.container_id.clone(),
                    port: *svc.ports.get(&80)?,
                })
            }),
        })
    })
}

/// Where compose/base.yml mounts the run's package in the app container.
pub const APP_ROOT: &str = "/srv/app";

/// The compose variable base.yml gives the app as PASSENGER_STAT_THROTTLE_RATE.
const WATCH_THROTTLE_VAR: &str = "HARNESS_STAT_THROTTLE";

/// Connects to the daemon as a timed phase, so a missing one fails first and fast (exit 3).
pub(crate) async fn connect(reporter: &dyn Reporter) -> Result<Engine, Failure> {
    let t = Phase::start(reporter, "docker");
    let engine = Engine::connect().await?;
    t.finish("connected");
    Ok(engine)
}

/// What a run is to start, before anything is built or created.
pub(crate) struct LaunchRequest {
    pub with_mocks: bool,
    pub no_tls: bool,
    pub keep: bool,
    /// Adds compose/test.yml and the playwright image (`harness test`).
    pub test_job: bool,
    /// Adds the Playwright server (`[test] playwright_server`).
    pub playwright_server: bool,
    /// Extra interpolation variables for the compose files.
    pub vars: BTreeMap<String, String>,
}

/// A run planned but not started: its identity, directory and resolved compose stack. Nothing
/// exists in the daemon yet, so dropping it needs no cleanup.
pub(crate) struct LaunchPlan {
    pub run: RunIdentity,
    pub run_dir: PathBuf,
    pub stack: compose::Stack,
    pub no_tls: bool,
}

/// What the run's app serves.
#[derive(Clone, Copy)]
pub(crate) enum AppSource<'a> {
    /// A deploy.zip, as production gets it.
    Package(&'a Path),
    /// A backup of production's directory (tar.gz): the restore drill.
    Backup(&'a Path),
}

impl AppSource<'_> {
    fn what(&self) -> &'static str {
        match self {
            AppSource::Package(_) => "package",
            AppSource::Backup(_) => "backup",
        }
    }
}

/// A run ready to start: the package is extracted, the state copy, certificates and proxy
/// config are written.
pub(crate) struct Launch {
    pub run: RunIdentity,
    pub run_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub stack: compose::Stack,
    /// `<run>/state/deployment_state_local.json` (mode 0600), when the project has a state file.
    pub state_copy: Option<PathBuf>,
    pub no_tls: bool,
    /// `[stack] version`: once the stack is ready, the app must show the package's build.
    pub version: crate::config::VersionProbe,
    /// harness.toml names the probe; without that, an app with no /version route is only noted.
    pub version_given: bool,
    pub health_path: String,
    /// The package the app's folder is copied from, straight from the zip at the start (see
    /// `app_from_package`); `None` when the run directory holds the extracted copy instead
    /// (a backup, bind mounts, or an override that mounts the app's folder elsewhere too).
    pub app_package: Option<PathBuf>,
    /// `[stack] vendor_cache`, unless `HARNESS_VENDOR_CACHE=0` turns it off for one command.
    pub vendor_cache: bool,
}

/// Resolves the images and reads the compose files (built-in, then the project's overrides).
pub(crate) async fn plan_launch(
    engine: &Engine,
    config: &Config,
    req: &LaunchRequest,
    reporter: &dyn Reporter,
) -> Result<LaunchPlan, Failure> {
    if req.no_tls {
        reporter.event(&Event::Note {
            message: "--no-tls: the proxy serves plain HTTP, for debugging only".into(),
        });
    }
    let root = project_root(config);
    let run = RunIdentity::new(&root, req.keep);
    let run_dir = runs_dir(config).join(&run.id);
    let mut needed = vec!["app", "proxy"];
    if req.with_mocks {
        needed.push("mocks");
    }
    if req.test_job || req.playwright_server {
        needed.push("playwright");
    }
    let mut vars = image_vars(engine, &needed, reporter).await?;
    vars.extend(run_vars(config, &run.id, &run_dir));
    vars.extend(req.vars.clone());
    let lookup = |k: &str| vars.get(k).cloned().or_else(|| std::env::var(k).ok());
    let (builtin, overrides) = compose_sources(config, req, &run_dir)?;
    let sources: Vec<Source> = builtin.into_iter().chain(overrides).collect();
    let mut stack = compose::load(&sources, &lookup).map_err(StackError::from)?;
    apply_aliases(config, &mut stack)?;
    if let Some(app) = stack.services.get_mut("app") {
        app.environment = config.app_env(Target::Local)?.over(&app.environment);
        // The app's folder (its database included) is the app's own during the run; nothing
        // reads it afterwards, so it is not copied back.
        app.stays.push(APP_ROOT.into());
    }
    Ok(LaunchPlan {
        run,
        run_dir,
        stack,
        no_tls: req.no_tls,
    })
}

/// The variables harness gives the compose files for the run `id`.
fn run_vars(config: &Config, id: &str, run_dir: &Path) -> BTreeMap<String, String> {
    let root = project_root(config);
    let path = |p: PathBuf| p.display().to_string();
    BTreeMap::from([
        ("HARNESS_RUN_ID".to_string(), id.to_string()),
        ("HARNESS_RUN_DIR".to_string(), path(run_dir.to_path_buf())),
        ("HARNESS_APP_DIR".to_string(), path(run_dir.join("app"))),
        (
            "HARNESS_STATE_FILE".to_string(),
            path(run_dir.join(STATE_DIR).join(STATE_FILE)),
        ),
        (
            "HARNESS_STATE_DIR".to_string(),
            path(run_dir.join(STATE_DIR)),
        ),
        ("HARNESS_PROJECT_DIR".to_string(), path(root)),
        (
            "HARNESS_HEALTH_PATH".to_string(),
            config.stack.health_path.clone(),
        ),
        ("HARNESS_FQDN".to_string(), config.stack.fqdn.clone()),
        ("HARNESS_TLS_DIR".to_string(), path(run_dir.join("tls"))),
    ])
}

/// The compose files of a run: the built-in ones `req` calls for, then the project's overrides.
fn compose_sources(
    config: &Config,
    req: &LaunchRequest,
    run_dir: &Path,
) -> Result<(Vec<Source>, Vec<Source>), Failure> {
    let compose_dir = run_dir.join("compose");
    let mut names = vec!["base.yml"];
    if req.with_mocks {
        names.push("mocks.yml");
    }
    if !req.no_tls {
        names.push("tls.yml");
        if req.with_mocks {
            names.push("tls-mocks.yml");
        }
    }
    if req.test_job {
        names.push("test.yml");
        if !req.no_tls {
            names.push("tls-test.yml");
        }
        if req.with_mocks {
            names.push("mocks-test.yml");
        }
    }
    if req.playwright_server {
        names.push("playwright-server.yml");
        if !req.no_tls {
            names.push("tls-playwright-server.yml");
        }
    }
    let builtin = names
        .into_iter()
        .map(|n| builtin_source(n, &compose_dir))
        .collect();
    let root = project_root(config);
    let overrides = config
        .stack
        .compose_overrides
        .iter()
        .map(|o| Source::from_file(&root.join(o)).map_err(|e| Failure::from(StackError::from(e))))
        .collect::<Result<_, _>>()?;
    Ok((builtin, overrides))
}

/// What `service` of a run planned by `req` would have in its environment, each with where it
/// came from, without a daemon or a run: `harness env`. Values that exist only per run (ports,
/// the run's folder) show as `<run>`.
pub fn service_env(
    config: &Config,
    req: &LaunchRequest,
    service: &str,
) -> Result<Vec<(String, String, crate::envfile::Origin)>, Failure> {
    use crate::envfile::Origin;
    let run_dir = runs_dir(config).join(crate::envfile::PER_RUN);
    let mut vars = run_vars(config, crate::envfile::PER_RUN, &run_dir);
    vars.extend(req.vars.clone());
    let lookup = |k: &str| {
        vars.get(k)
            .cloned()
            .or_else(|| std::env::var(k).ok())
            .or_else(|| {
                // Resolved per run (docs/images.md); the name is enough here.
                k.strip_prefix("HARNESS_IMAGE_")
                    .map(|name| format!("harness/{}", name.to_ascii_lowercase()))
            })
    };
    let (builtin, overrides) = compose_sources(config, req, &run_dir)?;
    let env_of = |sources: &[Source]| -> Result<BTreeMap<String, String>, Failure> {
        let stack = compose::load(sources, &lookup).map_err(StackError::from)?;
        Ok(stack
            .services
            .get(service)
            .map(|s| s.environment.clone())
            .unwrap_or_default())
    };
    let mut sources = builtin;
    let mut out: BTreeMap<String, (String, Origin)> = env_of(&sources)?
        .into_iter()
        .map(|(k, v)| (k, (v, Origin::Builtin)))
        .collect();
    // Each override in turn: a key it adds or changes is its own.
    for o in overrides {
        let name = o.name.clone();
        sources.push(o);
        for (k, v) in env_of(&sources)? {
            if out.get(&k).is_none_or(|(old, _)| *old != v) {
                out.insert(k, (v, Origin::Override(name.clone())));
            }
        }
    }
    Ok(out.into_iter().map(|(k, (v, o))| (k, v, o)).collect())
}

/// `[stack] aliases`: more network names for services, the host names an app and its suite
/// already use. A name another service or alias of the stack has, or an alias for a service
/// the stack never has, is an error at its line in harness.toml. Aliases of services this run
/// does not start (the mocks without --with-mocks) are left out.
fn apply_aliases(config: &Config, stack: &mut compose::Stack) -> Result<(), Failure> {
    for (service, names) in &config.stack.aliases {
        if !stack.services.contains_key(service) {
            if crate::config::BUILTIN_SERVICES.contains(&service.as_str()) {
                continue;
            }
            let known: Vec<&str> = stack.services.keys().map(String::as_str).collect();
            return Err(config
                .error_at(
                    names.span(),
                    format!("[stack] aliases: there is no service `{service}` in the stack"),
                )
                .hint(format!(
                    "the services are {} (and mailpit, geoip, netcup with --with-mocks)",
                    known.join(", ")
                )));
        }
        for name in names.get_ref() {
            let lower = name.to_ascii_lowercase();
            let taken = stack.services.iter().find(|(other, spec)| {
                *other != service
                    && (other.eq_ignore_ascii_case(&lower)
                        || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(&lower)))
            });
            if let Some((other, _)) = taken {
                return Err(config
                    .error_at(
                        names.span(),
                        format!(
                            "[stack] aliases.{service}: `{name}` already names the `{other}` service"
                        ),
                    )
                    .hint("each name may stand for one service only"));
            }
            let spec = stack.services.get_mut(service).expect("checked above");
            if !spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(&lower)) {
                spec.aliases.push(name.clone());
            }
        }
    }
    Ok(())
}

/// Extracts the package into the run directory and writes the state copy, certificates and
/// proxy config. Creates nothing in the daemon.
pub(crate) fn materialize(
    config: &Config,
    plan: LaunchPlan,
    source: AppSource,
    state_file: &Path,
    reporter: &dyn Reporter,
) -> Result<Launch, Failure> {
    let root = project_root(config);
    let run_dir = plan.run_dir;
    let app_package = match source {
        AppSource::Package(zip) if streams_app(&plan.stack, &run_dir.join("app")) => {
            Some(zip.to_path_buf())
        }
        _ => None,
    };
    let state_copy = crate::events::phase(reporter, "prepare", || {
        prepare_run_dir(config, &run_dir, source, app_package.is_none(), state_file).map(|s| {
            let how = if app_package.is_some() {
                "copied from the zip at the start"
            } else {
                "extracted"
            };
            (
                s,
                format!("{} ({} {how})", run_dir.display(), source.what()),
            )
        })
    })?;
    crate::events::phase(reporter, "tls", || {
        prepare_proxy(config, &root, &run_dir, !plan.no_tls)
    })?;
    Ok(Launch {
        run: plan.run,
        logs_dir: run_dir.join("logs"),
        run_dir,
        stack: plan.stack,
        state_copy,
        no_tls: plan.no_tls,
        version: config.stack.version_probe(),
        version_given: config.stack.version_given(),
        health_path: config.stack.health_path.clone(),
        app_package,
        vendor_cache: config.stack.vendor_cache
            && std::env::var("HARNESS_VENDOR_CACHE").as_deref() != Ok("0"),
    })
}

/// Whether the app's folder can go from the zip straight into the app container: only the
/// app mounts the run's package folder (an override may mount it into another service too,
/// which needs the host copy), and the engine is not told to bind-mount host folders.
fn streams_app(stack: &compose::Stack, app_dir: &Path) -> bool {
    let mounts_app_dir = |spec: &compose::ServiceSpec| {
        spec.mounts
            .iter()
            .any(|m| matches!(m, MountSpec::Bind { source, .. } if source == app_dir))
    };
    !super::engine::bind_mounts()
        && stack.services.get("app").is_some_and(|app| {
            app.mounts.iter().any(|m| {
                matches!(m, MountSpec::Bind { source, target, .. }
                    if source == app_dir && target == APP_ROOT)
            })
        })
        && stack
            .services
            .values()
            .filter(|s| s.name != "app")
            .all(|s| !mounts_app_dir(s))
}

/// The launch's stack with the app's folder coming from the package zip: a run volume filled
/// from the zip's entries, and `vendor/` from its cache volume (read-only, compiled once; see
/// `vendor`). Without a usable cache, `vendor/` is copied with the rest.
async fn app_from_package(
    engine: &Engine,
    launch: &Launch,
    zip: &Path,
    reporter: &dyn Reporter,
) -> compose::Stack {
    let mut stack = launch.stack.clone();
    let Some(app) = stack.services.get_mut("app") else {
        return stack;
    };
    let owner = crate::fsutil::host_ids();
    for m in app.mounts.iter_mut() {
        if matches!(m, MountSpec::Bind { target, .. } if target == APP_ROOT) {
            *m = MountSpec::Volume {
                name: APP_VOLUME.into(),
                target: APP_ROOT.into(),
                read_only: false,
            };
        }
    }
    stack.volumes.insert(APP_VOLUME.into(), false);
    let mut part = upload::ZipPart::All;
    if launch.vendor_cache
        && let Some(volume) =
            cached_vendor(engine, &launch.run, zip, &app.image, owner, reporter).await
    {
        app.mounts.push(MountSpec::Volume {
            name: volume.clone(),
            target: format!("{APP_ROOT}/{}", VENDOR.trim_end_matches('/')),
            read_only: true,
        });
        stack.volumes.insert(volume, true);
        part = upload::ZipPart::Without(VENDOR.into());
    }
    app.uploads.push(Upload {
        target: APP_ROOT.into(),
        source: upload::Source::Zip {
            path: zip.to_path_buf(),
            part,
        },
        owner,
    });
    stack
}

/// The cache volume that holds the package's `vendor/` for the app image `image`, filled now
/// when this is the first run with these vendor files; `None`, said why, when the package has
/// no `vendor/` or there is no usable cache (then `vendor/` is copied with the app).
async fn cached_vendor(
    engine: &Engine,
    run: &RunIdentity,
    zip: &Path,
    image: &str,
    owner: (u32, u32),
    reporter: &dyn Reporter,
) -> Option<String> {
    let note = |message: String| reporter.event(&Event::Note { message });
    let set = match VendorSet::of(zip, image, owner) {
        Ok(set) => set?,
        Err(e) => {
            note(format!(
                "vendor   cannot read {}: {e}; vendor/ is copied with the app",
                zip.display()
            ));
            return None;
        }
    };
    let t = Instant::now();
    match engine.vendor_volume(run, zip, image, &set, owner).await {
        Ok(v) => {
            if v.filled {
                note(format!(
                    "vendor   {} files ({:.1} MB) copied and compiled into a cache volume in \
                     {:.1} s; runs with the same vendor files reuse it",
                    set.files,
                    set.bytes as f64 / 1e6,
                    t.elapsed().as_secs_f64()
                ));
            }
            Some(v.name)
        }
        Err(e) => {
            note(format!(
                "vendor   no cache volume ({e}); vendor/ is copied with the app"
            ));
            None
        }
    }
}

/// One file of the run's package: from the zip, or from the run directory's extracted copy.
fn package_file(launch: &Launch, name: &str) -> Option<Vec<u8>> {
    match &launch.app_package {
        Some(zip) => {
            let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).ok()?).ok()?;
            let mut entry = archive.by_name(name).ok()?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).ok()?;
            Some(bytes)
        }
        None => std::fs::read(launch.run_dir.join("app").join(name)).ok(),
    }
}

/// The run volume that holds the app's folder when it comes from the zip.
const APP_VOLUME: &str = "app-package";

/// Once the stack is ready: the app must show the build of the package it runs, as `[stack]
/// version` tells (the probe the boot check, deploy, rollback and status use too), asked
/// directly at the app's published port. A stale tree or a wrong probe stops here with the page's
/// answer instead of passing unnoticed.
pub(crate) async fn identify(
    handle: &StackHandle,
    launch: &Launch,
    reporter: &dyn Reporter,
) -> Result<(), StackError> {
    let info = package_file(launch, "build_info.json")
        .and_then(|b| crate::model::build::BuildInfo::parse(&b).ok());
    let (Some(info), Some(port)) = (
        info,
        handle
            .service("app")
            .and_then(|a| a.ports.get(&80).copied()),
    ) else {
        return Ok(());
    };
    let build = info.build_id.clone();
    if build.is_empty() {
        return Ok(());
    }
    // Health was the stack's own wait; this asks only the version path (an empty health path
    // is the app's root, which answers whatever the app answers there).
    let probe = crate::probe::Probe {
        base: format!("http://{}", crate::docker::ports().at(port)),
        health_path: launch.health_path.clone(),
        version: launch.version.clone(),
        settle: std::time::Duration::ZERO,
        timeout: std::time::Duration::from_secs(20),
    };
    let t = Phase::start(reporter, "version");
    // The default probe on an app that reports no build at /version (no such route, or a page
    // that is not the JSON harness reads): the run goes on, and says how to make it identify its
    // build. A build id that is not the package's fails; a probe harness.toml names is held to.
    let given = launch.version_given;
    let path = probe.version.path().unwrap_or("").to_string();
    let seen = tokio::task::spawn_blocking(move || {
        // A template naming a field this build lacks (git_commit_short outside a git checkout,
        // say) cannot tell the build: noted, not failed; the page shows what the app shows then.
        if let crate::config::VersionProbe::Contains { template, .. } = &probe.version
            && crate::probe::render(template, &info).is_none()
        {
            return Ok(format!(
                "build_info.json lacks a field of {template:?} (a tree outside git?), so the app's build was not identified"
            ));
        }
        if !given && probe.look().build.is_none() {
            return Ok(format!(
                "{path} reports no build id, so the app's build was not identified; \
                 set [stack] version in harness.toml (docs/config.md)"
            ));
        }
        probe.until(
            crate::probe::Expected {
                build_id: &build,
                info: Some(&info),
            },
            Instant::now(),
        )
    })
    .await
    .map_err(|e| StackError::Version(e.to_string()))?
    .map_err(|f| StackError::Version(f.message))?;
    t.finish(seen);
    Ok(())
}

/// Starts every service of the launch as one timed phase.
pub(crate) async fn start_stack(
    engine: &Engine,
    launch: &Launch,
    reporter: &dyn Reporter,
) -> Result<StackHandle, StackError> {
    let t = Phase::start(reporter, "stack");
    let streamed;
    let stack = match &launch.app_package {
        Some(zip) => {
            streamed = app_from_package(engine, launch, zip, reporter).await;
            &streamed
        }
        None => &launch.stack,
    };
    let h = engine
        .start(&launch.run, stack, &launch.logs_dir, reporter)
        .await?;
    t.finish(format!("{} services ready", h.services.len()));
    Ok(h)
}

const STATE_FILE: &str = "deployment_state_local.json";
/// The state copy lives in a directory of its own, so a container that mounts it can replace
/// the file atomically (rename within the directory), as tests do after a password change.
const STATE_DIR: &str = "state";

/// Names the run's leaf certificate covers: the FQDN the browser uses, and every service that
/// is reached over TLS inside the run's network.
const TLS_SERVICE_NAMES: [&str; 4] = ["proxy", "geoip", "mailpit", "netcup"];

/// Renders the proxy config, and with TLS issues the run's leaf from the project CA and writes
/// the certificates and the CA bundle into `<run>/tls/`.
fn prepare_proxy(
    config: &Config,
    root: &Path,
    run_dir: &Path,
    tls: bool,
) -> Result<((), String), Failure> {
    use crate::tls::proxy::{ProxyParams, TlsFiles, render};
    let tls_dir = run_dir.join("tls");
    let mut detail = "plain HTTP (--no-tls)".to_string();
    let files = if tls {
        let (ca, created) = crate::tls::Ca::load_or_create(&crate::tls::ca_dir(root))?;
        let mut names = vec![config.stack.fqdn.clone()];
        names.extend(TLS_SERVICE_NAMES.iter().map(|n| n.to_string()));
        // The names the app and its suite use for these services are checked against the
        // certificate too.
        for aliases in config.stack.aliases.values() {
            names.extend(aliases.get_ref().iter().cloned());
        }
        let leaf = ca.issue(&names)?;
        leaf.write(&tls_dir, "proxy", &ca)?;
        crate::fsutil::write_atomic(&tls_dir.join("ca.pem"), ca.cert_pem.as_bytes(), 0o644)?;
        // The host's roots (Debian's bundle, as in the images) plus our CA.
        let system =
            std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        let bundle = crate::tls::bundle(&system, &ca);
        crate::fsutil::write_atomic(&tls_dir.join("ca-bundle.pem"), bundle.as_bytes(), 0o644)?;
        detail = format!(
            "{} CA {}…, leaf for {}",
            if created { "new" } else { "project" },
            &ca.fingerprint[..23],
            names.join(", ")
        );
        Some(TlsFiles {
            cert: "/run/harness/tls/proxy.crt".into(),
            key: "/run/harness/tls/proxy.key".into(),
        })
    } else {
        None
    };
    let conf = render(&ProxyParams {
        fqdn: config.stack.fqdn.clone(),
        app_upstream: "app:80".into(),
        mailpit_upstream: Some("mailpit:8025".into()),
        tls: files,
        hsts_include_subdomains: false,
        access_log: "/var/log/harness/access.jsonl".into(),
    });
    let path = run_dir.join("compose/proxy/nginx.conf");
    crate::fsutil::write_atomic(&path, conf.as_bytes(), 0o644)?;
    std::fs::create_dir_all(run_dir.join("proxy-log"))
        .map_err(io_fail(format!("create {}/proxy-log", run_dir.display())))?;
    Ok(((), detail))
}

fn builtin_source(name: &str, compose_dir: &Path) -> Source {
    let text = BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("built-in compose file");
    Source {
        name: format!("compose/{name} (built in)"),
        dir: compose_dir.to_path_buf(),
        text: text.to_string(),
    }
}

/// `HARNESS_IMAGE_<NAME>` for the compose files: from the environment when set; else, for the
/// images this run starts, from `images::Images::resolve` (local → pulled → baked, baking what is
/// missing); else the newest local `harness/<name>` tag, else `harness/<name>:latest` (which
/// `Engine::start` then reports as missing, before creating anything).
async fn image_vars(
    engine: &Engine,
    needed: &[&str],
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut vars = BTreeMap::new();
    let mut images = None;
    for (var, repo) in IMAGES {
        let name = repo.trim_start_matches("harness/");
        let image = match std::env::var(var) {
            Ok(v) if !v.is_empty() => v,
            _ if needed.contains(&name) => {
                if images.is_none() {
                    images = Some(
                        crate::images::Images::connect(
                            crate::images::Options::from_env()?,
                            reporter,
                        )
                        .await
                        .map_err(Failure::from)?,
                    );
                }
                let images = images.as_ref().expect("connected above");
                images.resolve(name).await.map_err(Failure::from)?.reference
            }
            _ => engine
                .newest_image(repo)
                .await
                .unwrap_or_else(|| format!("{repo}:latest")),
        };
        vars.insert(var.to_string(), image);
    }
    Ok(vars)
}

/// Runs `work` (which creates the run's resources) so that an error, SIGINT or SIGTERM removes
/// everything the run created before returning. A panic is covered by [`PanicGuard`], and a
/// SIGKILL by the next command's sweep.
pub(crate) async fn guarded<F, T>(
    engine: &Engine,
    run: &RunIdentity,
    logs_dir: &Path,
    reporter: &dyn Reporter,
    work: F,
) -> Result<T, Failure>
where
    F: std::future::Future<Output = Result<T, StackError>>,
{
    let panic_guard = PanicGuard {
        run: run.id.clone(),
        armed: true,
    };
    let outcome = tokio::select! {
        r = work => r,
        _ = interrupted() => Err(StackError::Interrupted),
    };
    let mut panic_guard = panic_guard;
    panic_guard.armed = false;
    match outcome {
        Ok(h) => Ok(h),
        Err(e) => {
            if let Err(cleanup) = engine.remove_run(&run.id, Some(logs_dir)).await {
                reporter.event(&Event::Warning {
                    message: format!("cleanup of run {} failed: {cleanup}", run.id),
                });
            }
            Err(e.into())
        }
    }
}

pub(crate) async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Removes the run if the code that owns it unwinds through a panic.
struct PanicGuard {
    run: String,
    armed: bool,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let run = self.run.clone();
        // block_on cannot run on a thread of the runtime that is unwinding; a plain thread can.
        let _ = std::thread::spawn(move || {
            crate::docker::runtime().ok()?.block_on(async {
                let engine = Engine::connect().await.ok()?;
                engine.remove_run(&run, None).await.ok()
            })
        })
        .join();
    }
}

fn io_fail(what: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure::new(Exit::Environment, format!("{what}: {e}"))
}

/// `.harness/runs/<id>/`: the run's own package copy (`app/`), state file copy, compose files.
/// Returns the state file copy, when the project has a state file.
fn prepare_run_dir(
    config: &Config,
    run_dir: &Path,
    source: AppSource,
    extract: bool,
    state: &Path,
) -> Result<Option<PathBuf>, Failure> {
    let app_dir = run_dir.join("app");
    std::fs::create_dir_all(run_dir.join("logs"))
        .map_err(io_fail(format!("create {}/logs", run_dir.display())))?;
    if extract {
        std::fs::create_dir_all(&app_dir)
            .map_err(io_fail(format!("create {}", app_dir.display())))?;
    }
    match source {
        AppSource::Package(zip) if extract => extract_zip(zip, &app_dir)?,
        // Opened now, so a missing or broken package fails before anything starts.
        AppSource::Package(zip) => drop(check_zip(zip)?),
        AppSource::Backup(tarball) => {
            crate::package::backup::extract(config, tarball, &app_dir)?;
        }
    }
    let compose_dir = run_dir.join("compose");
    for (name, text) in BUILTIN {
        let path = compose_dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_fail(format!("create {}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(io_fail(format!("write {}", path.display())))?;
    }
    // Always there: the test job mounts it, even before the project has a state file.
    let state_dir = run_dir.join(STATE_DIR);
    crate::fsutil::create_private_dir(&state_dir)?;
    if !state.is_file() {
        return Ok(None);
    }
    // Written 0600 from the start, so the secrets are never readable by others, not even briefly.
    let bytes = std::fs::read(state).map_err(io_fail(format!("read {}", state.display())))?;
    let state_copy = state_dir.join(STATE_FILE);
    crate::fsutil::write_private(&state_copy, &bytes)?;
    Ok(Some(state_copy))
}

fn extract_zip(zip: &Path, app_dir: &Path) -> Result<(), Failure> {
    let mut archive = check_zip(zip)?;
    archive.extract(app_dir).map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!(
                "cannot extract {} into {}: {e}",
                zip.display(),
                app_dir.display()
            ),
        )
    })?;
    Ok(())
}

/// Opens the package: a missing or unreadable one is bad input.
fn check_zip(zip: &Path) -> Result<zip::ZipArchive<std::fs::File>, Failure> {
    let file = std::fs::File::open(zip).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("cannot open the package {}: {e}", zip.display()),
        )
        .hint("run `harness build --local`, or drop --skip-build")
    })?;
    let archive = zip::ZipArchive::new(file).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("{} is not a readable zip: {e}", zip.display()),
        )
        .hint("rebuild it with `harness build --local`")
    })?;
    Ok(archive)
}

pub(crate) fn urls_of(handle: &StackHandle, tls: bool) -> Vec<ServiceUrl> {
    let mut urls = Vec::new();
    for (name, svc) in &handle.services {
        for (cport, hport) in &svc.ports {
            let at = crate::docker::ports().at(*hport);
            let (what, url) = match (name.as_str(), cport) {
                (_, 1025) => ("SMTP".to_string(), format!("smtp://{at}")),
                ("proxy", 443) => (
                    "the app through the TLS proxy (trust .harness/ca/ca.pem)".to_string(),
                    format!("https://{at}/"),
                ),
                ("proxy", _) => (
                    "the app through the proxy (plain HTTP)".to_string(),
                    format!("http://{at}/"),
                ),
                ("app", _) => (
                    "the app directly (Apache + Passenger)".to_string(),
                    format!("http://{at}/"),
                ),
                ("mailpit", 8025) => (
                    "Mailpit UI and API".to_string(),
                    format!("http://{at}/mailpit/"),
                ),
                ("geoip", _) if tls => (
                    "GeoIP2 web service mock over TLS (certificate names `geoip`)".to_string(),
                    format!("https://{at}/"),
                ),
                ("geoip", _) => (
                    "GeoIP2 web service mock".to_string(),
                    format!("http://{at}/"),
                ),
                ("netcup", _) => ("Netcup DNS API mock".to_string(), format!("http://{at}/")),
                (PLAYWRIGHT_SERVER, _) => (
                    "Playwright server: chromium.connect() from a suite on this machine"
                        .to_string(),
                    format!("ws://{at}{PLAYWRIGHT_SERVER_PATH}"),
                ),
                _ => (format!("port {cport}"), format!("http://{at}/")),
            };
            urls.push(ServiceUrl {
                service: name.clone(),
                what,
                url,
            });
        }
    }
    urls
}

/// Picks the one run a command acts on: the named one, or the only one; with several, the user
/// must choose.
fn pick<'a>(
    runs: &'a [RunSummary],
    wanted: Option<&str>,
) -> Result<Option<&'a RunSummary>, Failure> {
    match wanted {
        Some(id) => runs.iter().find(|r| r.id == id).map(Some).ok_or_else(|| {
            Failure::new(
                Exit::BadInput,
                format!("no run `{id}` is up in this project"),
            )
            .hint(list_hint(runs))
        }),
        None => match runs {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(Failure::new(
                Exit::BadInput,
                format!(
                    "{} runs are up in this project; say which with --run ID",
                    many.len()
                ),
            )
            .hint(list_hint(runs))),
        },
    }
}

fn list_hint(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        "no run is up; start one with `harness up`".into()
    } else {
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        format!("runs: {} (see `harness status`)", ids.join(", "))
    }
}

/// Removes the chosen run(s) of this project; returns the removed run ids.
pub fn down(
    config: &Config,
    req: &DownRequest,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, Failure> {
    runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let runs = engine.runs(Some(&root_label(config))).await?;
        let chosen: Vec<&RunSummary> = if req.all {
            runs.iter().collect()
        } else {
            pick(&runs, req.run.as_deref())?.into_iter().collect()
        };
        let t = Phase::start(reporter, "down");
        let removals = chosen.iter().map(|r| {
            let logs = runs_dir(config).join(&r.id).join("logs");
            let engine = engine.clone();
            async move { engine.remove_run(&r.id, Some(&logs)).await }
        });
        let mut resources = 0;
        for r in futures_util::future::join_all(removals).await {
            resources += r?;
        }
        let ids: Vec<String> = chosen.iter().map(|r| r.id.clone()).collect();
        t.finish(format!(
            "{} run(s), {resources} resources removed",
            ids.len()
        ));
        Ok(ids)
    })
}

/// The runs of this project (or the one named), as found in the daemon.
pub fn status(config: &Config, req: &StatusRequest) -> Result<Vec<RunSummary>, Failure> {
    runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let runs = engine.runs(Some(&root_label(config))).await?;
        match &req.run {
            Some(id) => Ok(pick(&runs, Some(id))?.into_iter().cloned().collect()),
            None => Ok(runs),
        }
    })
}

/// Writes a service's logs to `out`, following them with `--follow` until the container stops
/// or the user interrupts.
pub fn logs(config: &Config, req: &LogsRequest, out: &mut dyn Write) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let runs = engine.runs(Some(&root_label(config))).await?;
        let run = pick(&runs, req.run.as_deref())?.ok_or_else(|| {
            Failure::new(Exit::BadInput, "no run is up in this project")
                .hint("start one with `harness up`; logs of finished runs are in .harness/runs/<id>/logs/")
        })?;
        let svc = run.services.iter().find(|s| s.service == req.service).ok_or_else(|| {
            let names: Vec<&str> = run.services.iter().map(|s| s.service.as_str()).collect();
            Failure::new(
                Exit::BadInput,
                format!("run {} has no service `{}`", run.id, req.service),
            )
            .hint(format!("its services: {}", names.join(", ")))
        })?;
        let options = bollard::query_parameters::LogsOptions {
            follow: req.follow,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = engine.docker().logs(&svc.container, Some(options));
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = interrupted() => break,
            };
            match next {
                Some(Ok(chunk)) => {
                    out.write_all(&chunk.into_bytes())
                        .and_then(|_| out.flush())
                        .map_err(io_fail("write logs".into()))?;
                }
                Some(Err(e)) => {
                    return Err(StackError::Docker {
                        action: format!("read logs of {}", svc.container),
                        reason: e.to_string(),
                    }
                    .into());
                }
                None => break,
            }
        }
        Ok(())
    })
}
