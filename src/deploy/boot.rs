//! The boot check: the exact webhosting zip, extracted and started once in the app image, must
//! answer health 2xx and report its build id before anything goes to the server. It catches what
//! differs between the targets (wheels for another platform, a missing file, a bad env).
//!
//! It is a one-service stack: the stack engine creates it (run labels, its own network, its log
//! streamed to a file) and removes it by label; a crash leaves it to the next command's sweep, like
//! any other run. Its HTTP wait is the version probe, the same one the server's verification
//! uses, so both give up on a streak of 500s rather than at the timeout.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::Reporter;
use crate::model::build::BuildInfo;
use crate::model::target::Target;
use crate::stack::compose::{MountSpec, PortSpec, Stack, WaitSpec};
use crate::stack::{Engine, RunIdentity, ServiceSpec, StackHandle};

/// Environment variable naming the app image to use instead of the newest local harness/app tag.
pub const IMAGE_ENV: &str = "HARNESS_IMAGE_APP";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The service's name: its container is `<project>-boot-check`.
const SERVICE: &str = "boot-check";
// Where the app image's Apache serves the app from, as in the stack.
use crate::stack::APP_ROOT;

/// The app image: `HARNESS_IMAGE_APP`, else what the images module resolves (present locally,
/// pulled, or baked from the offline recipe), exactly as the stack's app service gets it.
async fn app_image(reporter: &dyn Reporter) -> Result<String, Failure> {
    if let Ok(image) = std::env::var(IMAGE_ENV)
        && !image.is_empty()
    {
        return Ok(image);
    }
    let options = crate::images::Options::from_env()?;
    let images = crate::images::Images::connect(options, reporter).await?;
    Ok(images.resolve("app").await?.reference)
}

/// What the boot check sets itself; the target's env files lie under it, its inline env over it.
pub fn builtin_env() -> BTreeMap<String, String> {
    [("PASSENGER_APP_ROOT", APP_ROOT)]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
}

/// A boot check that passed: what it saw, and its container, being removed in the background so
/// the deploy goes on at once. Dropping it waits for the removal (and then deletes the extracted
/// package the container ran), so nothing outlives the command.
pub struct Booted {
    pub detail: String,
    teardown: Option<tokio::task::JoinHandle<()>>,
    _extracted: tempfile::TempDir,
}

impl Drop for Booted {
    fn drop(&mut self) {
        if let (Some(task), Ok(rt)) = (self.teardown.take(), crate::docker::runtime()) {
            let _ = rt.block_on(task);
        }
    }
}

/// Boots `zip` and checks that it answers as `build_id`.
pub fn check(
    config: &Config,
    zip: &Path,
    build_id: &str,
    reporter: &dyn Reporter,
) -> Result<Booted, Failure> {
    let dir = tempfile::Builder::new()
        .prefix("harness-boot-")
        .tempdir()
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot make a temporary directory: {e}"),
            )
        })?;
    let app = dir.path().join("app");
    let f = std::fs::File::open(zip)
        .map_err(|e| Failure::new(Exit::Environment, format!("{}: {e}", zip.display())))?;
    zip::ZipArchive::new(f)
        .and_then(|mut z| z.extract(&app))
        .map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!("cannot extract {}: {e}", zip.display()),
            )
        })?;
    let logs = dir.path().join("logs");
    let (detail, teardown) =
        crate::docker::runtime()?.block_on(boot(config, &app, &logs, build_id, reporter))?;
    Ok(Booted {
        detail,
        teardown: Some(teardown),
        _extracted: dir,
    })
}

/// The one service: the app image serving the extracted zip on port 80, with the webhosting env.
fn service(config: &Config, image: &str, app: &Path) -> Result<ServiceSpec, Failure> {
    Ok(ServiceSpec {
        name: SERVICE.into(),
        image: image.into(),
        command: None,
        entrypoint: None,
        environment: config.app_env(Target::Webhosting)?.over(&builtin_env()),
        ports: vec![PortSpec {
            port: 80,
            udp: false,
        }],
        mounts: vec![MountSpec::Bind {
            source: app.to_path_buf(),
            target: APP_ROOT.into(),
            read_only: false,
        }],
        healthcheck: None,
        depends_on: BTreeMap::new(),
        aliases: Vec::new(),
        labels: BTreeMap::new(),
        user: None,
        working_dir: None,
        shm_size: None,
        tmpfs: Vec::new(),
        // Started is all the engine waits for; the HTTP wait is the probe below, which also
        // checks the build id.
        wait: WaitSpec::Started,
        timeout: BOOT_TIMEOUT,
        uploads: Vec::new(),
        stays: Vec::new(),
    })
}

async fn boot(
    config: &Config,
    app: &Path,
    logs: &Path,
    build_id: &str,
    reporter: &dyn Reporter,
) -> Result<(String, tokio::task::JoinHandle<()>), Failure> {
    let engine = Engine::connect()
        .await
        .map_err(|e| Failure::new(Exit::Environment, format!("boot check: Docker: {e}")))?;
    let image = app_image(reporter).await?;
    let run = RunIdentity::new(&config.root, false);
    let stack = Stack {
        services: BTreeMap::from([(SERVICE.to_string(), service(config, &image, app)?)]),
        volumes: BTreeMap::new(),
    };
    let build_info = std::fs::read(app.join("build_info.json"))
        .ok()
        .and_then(|b| BuildInfo::parse(&b).ok());
    let probe = crate::probe::Probe {
        base: String::new(),
        health_path: config.stack.health_path.clone(),
        version: config.stack.version_probe(),
        settle: Duration::ZERO,
        timeout: BOOT_TIMEOUT,
    };
    // Not `stack::guarded`: during a deploy, SIGINT, SIGTERM and SIGHUP belong to
    // deploy::interrupt, which lets this check finish (and remove its container) and stops the
    // deploy before its next step. A start that fails removes what it made here.
    let answered = match engine.start(&run, &stack, logs, reporter).await {
        Ok(handle) => {
            let verdict =
                until_answers(&handle, engine.docker(), probe, build_id, build_info).await;
            Ok((handle, verdict))
        }
        Err(e) => {
            if let Err(cleanup) = engine.remove_run(&run.id, Some(logs)).await {
                reporter.event(&crate::events::Event::Warning {
                    message: format!(
                        "cleanup of the boot check's run {} failed: {cleanup}",
                        run.id
                    ),
                });
            }
            Err(Failure::from(e))
        }
    };
    let refused = |why: String, logs: Vec<String>| {
        let tail = if logs.is_empty() {
            String::new()
        } else {
            format!("\n  last log lines:\n    {}", logs.join("\n    "))
        };
        Failure::new(
            Exit::Refused,
            format!(
                "boot check: the webhosting package does not answer in {image}: {why}; nothing was changed{tail}"
            ),
        )
        .hint("run the package locally (`harness up`) and look at the app's log")
    };
    match answered {
        Ok((handle, Ok(detail))) => {
            let teardown = tokio::spawn(async move {
                let _ = handle.down().await;
            });
            Ok((format!("{image}: {detail}"), teardown))
        }
        Ok((handle, Err((why, logs)))) => {
            let _ = handle.down().await;
            Err(refused(why, logs))
        }
        Err(f) => Err(refused(f.message, Vec::new())),
    }
}

/// The HTTP wait: health 2xx and the build id, probed on the blocking pool (curl and its sleeps
/// block), asking the daemon between probes whether the container still runs, so a dead one
/// fails at once. A failure carries the app's stderr (Apache's error log, where Passenger puts
/// the traceback).
async fn until_answers(
    handle: &StackHandle,
    docker: &bollard::Docker,
    mut probe: crate::probe::Probe,
    build_id: &str,
    build_info: Option<BuildInfo>,
) -> Result<String, (String, Vec<String>)> {
    let svc = &handle.services[SERVICE];
    let id = svc.container_id.clone();
    let result = match svc.ports.get(&80) {
        None => Err("the app container published no port".to_string()),
        Some(port) => {
            probe.base = format!("http://{}", crate::docker::ports().at(*port));
            let rt = tokio::runtime::Handle::current();
            let (docker, id, build_id) = (docker.clone(), id.clone(), build_id.to_string());
            tokio::task::spawn_blocking(move || {
                let expected = crate::probe::Expected {
                    build_id: &build_id,
                    info: build_info.as_ref(),
                };
                probe.until_alive(expected, Instant::now(), || {
                    let info =
                        rt.block_on(docker.inspect_container(&id, None::<InspectContainerOptions>));
                    match info.ok().and_then(|i| i.state) {
                        Some(s) if s.running == Some(false) => Err(format!(
                            "the app container stopped (exit code {})",
                            s.exit_code.unwrap_or(-1)
                        )),
                        _ => Ok(()),
                    }
                })
            })
            .await
            .map_err(|e| format!("the probe stopped: {e}"))
            .and_then(|r| r.map_err(|f| f.message))
        }
    };
    match result {
        Ok(d) => Ok(d),
        Err(why) => Err((
            why,
            crate::stack::wait::last_stderr_lines(docker, &id, 20).await,
        )),
    }
}
