//! The boot check: the exact webhosting zip, extracted and started once in the app image, must
//! answer health 2xx and report its build id before anything goes to the server. It catches what
//! differs between the targets (wheels for another platform, a missing file, a bad env).
use crate::model::target::Target;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptions, StartContainerOptions,
};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::stack::{Engine, RunIdentity};

/// Environment variable naming the app image to use instead of the newest local harness/app tag.
pub const IMAGE_ENV: &str = "HARNESS_IMAGE_APP";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The app image: `HARNESS_IMAGE_APP`, else what the images module resolves (present locally,
/// pulled, or baked from the offline recipe), exactly as the stack's app service gets it.
pub async fn app_image() -> Result<String, Failure> {
    if let Ok(image) = std::env::var(IMAGE_ENV)
        && !image.is_empty()
    {
        return Ok(image);
    }
    let reporter = crate::events::TerminalReporter;
    let options = crate::images::Options::from_env()?;
    let images = crate::images::Images::connect(options, &reporter).await?;
    Ok(images.resolve("app").await?.reference)
}

/// What the boot check sets itself; the target's env files lie under it, its inline env over it.
pub fn builtin_env() -> std::collections::BTreeMap<String, String> {
    [("PASSENGER_APP_ROOT", "/srv/app")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
}

pub fn check(config: &Config, zip: &Path, build_id: &str) -> Result<String, Failure> {
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
    crate::docker::runtime()?.block_on(boot(config, &app, build_id))
}

async fn boot(config: &Config, app: &Path, build_id: &str) -> Result<String, Failure> {
    let docker_fail = |e: &dyn std::fmt::Display| {
        Failure::new(Exit::Environment, format!("boot check: Docker: {e}"))
    };
    let engine = Engine::connect().await.map_err(|e| docker_fail(&e))?;
    let image = app_image().await?;
    let run = RunIdentity::new(&config.root, false);
    let mut labels = run.labels();
    labels.insert(crate::stack::LABEL_SERVICE.into(), "boot-check".into());
    let env: Vec<String> = config
        .app_env(Target::Webhosting)?
        .over(&builtin_env())
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(vec!["80/tcp".to_string()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                "80/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            mounts: Some(vec![Mount {
                target: Some("/srv/app".into()),
                source: Some(app.display().to_string()),
                typ: Some(MountType::BIND),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let docker = engine.docker();
    let name = format!("{}-boot-check", run.project);
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| docker_fail(&e))?;
    let result = async {
        docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(|e| docker_fail(&e))?;
        let info = docker
            .inspect_container(&created.id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_fail(&e))?;
        let port = info
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|p| p.get("80/tcp").cloned().flatten())
            .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| docker_fail(&"the app container published no port"))?;
        let probe = crate::probe::Probe {
            base: format!("http://127.0.0.1:{port}"),
            health_path: config.stack.health_path.clone(),
            version: config.stack.version_probe(),
            settle: Duration::ZERO,
            timeout: BOOT_TIMEOUT,
        };
        // curl and sleeps block, so the probe runs on the blocking pool; between probes it asks
        // the daemon whether the container still runs, so a dead one fails at once, not after
        // the timeout.
        let handle = tokio::runtime::Handle::current();
        let (docker, id, build_id) = (docker.clone(), created.id.clone(), build_id.to_string());
        let build_info = std::fs::read(app.join("build_info.json"))
            .ok()
            .and_then(|b| crate::model::build::BuildInfo::parse(&b).ok());
        tokio::task::spawn_blocking(move || {
            let expected = crate::probe::Expected {
                build_id: &build_id,
                info: build_info.as_ref(),
            };
            probe.until_alive(expected, Instant::now(), || {
                let info =
                    handle.block_on(docker.inspect_container(&id, None::<InspectContainerOptions>));
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
        .map_err(|e| docker_fail(&e))?
    }
    .await;
    let logs = match &result {
        Err(_) => crate::stack::wait::last_stderr_lines(docker, &created.id, 20).await,
        Ok(_) => Vec::new(),
    };
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await;
    result
        .map(|d| format!("{image}: {d}"))
        .map_err(|f| {
            Failure::new(
                Exit::Refused,
                format!(
                    "boot check: the webhosting package does not answer in {image}: {}; nothing was changed{}",
                    f.message,
                    if logs.is_empty() { String::new() } else { format!("\n  last log lines:\n    {}", logs.join("\n    ")) }
                ),
            )
            .hint("run the package locally (`harness up`) and look at the app's log")
        })
}
