//! The Docker side: connect, start a resolved stack level by level, list runs, remove a run.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, ListImagesOptions,
    ListNetworksOptions, ListVolumesOptions, LogsOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StartContainerOptions,
};
use futures_util::StreamExt;
use futures_util::future::{join_all, try_join_all};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::compose::{Condition, MountSpec, ServiceSpec, Stack};
use super::wait::{self, Target};
use super::{
    LABEL_CACHE, LABEL_KEEP, LABEL_OWNER, LABEL_PROJECT, LABEL_ROOT, LABEL_RUN, LABEL_SERVICE,
    Owner, RunIdentity, StackError, docker_err, plan,
};
use crate::events::{Event, Reporter};

/// Marks a run that came up completely and was kept on purpose (`up`, `test --keep`).
pub(crate) const LABEL_MARKER: &str = "harness.marker";

/// A connection to the Docker daemon, with the API version negotiated.
#[derive(Clone)]
pub struct Engine {
    pub(super) docker: Docker,
}

/// One started container of a run.
#[derive(Debug, Clone)]
pub struct RunningService {
    pub name: String,
    pub container_id: String,
    pub container_name: String,
    /// Container port → host port on the engine's address (`docker::ports`).
    pub ports: BTreeMap<u16, u16>,
    /// Writable bind mounts that went in as uploads: (container folder, host folder), read
    /// back by [`Engine::read_back`] before the run is removed.
    pub outputs: Vec<(String, PathBuf)>,
}

impl RunningService {
    /// `http://HOST:PORT` for a published container port, HOST being where the engine's ports
    /// are reached.
    pub fn url(&self, container_port: u16) -> Option<String> {
        self.ports
            .get(&container_port)
            .map(|p| format!("http://{}", crate::docker::ports().at(*p)))
    }
}

/// A started run. Dropping it stops log streaming but leaves the containers: teardown is explicit
/// ([`StackHandle::down`]) or by label (sweep, `harness down`), which also works after a crash.
pub struct StackHandle {
    engine: Engine,
    pub run: RunIdentity,
    pub network: String,
    pub services: BTreeMap<String, RunningService>,
    pub logs_dir: PathBuf,
    log_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StackHandle {
    pub fn service(&self, name: &str) -> Option<&RunningService> {
        self.services.get(name)
    }

    /// Removes every container, network and volume of the run.
    pub async fn down(self) -> Result<usize, StackError> {
        let engine = self.engine.clone();
        let id = self.run.id.clone();
        let logs = self.logs_dir.clone();
        drop(self);
        engine.remove_run(&id, Some(&logs)).await
    }
}

impl Drop for StackHandle {
    fn drop(&mut self) {
        for t in &self.log_tasks {
            t.abort();
        }
    }
}

/// How far a service got while starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Pending,
    Started,
    Ready,
}

/// Log-streaming tasks of a run being started; aborted if the start fails, so they never write
/// into a log file after `remove_run` has written the complete one.
#[derive(Default)]
struct LogTasks(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl LogTasks {
    fn push(&self, task: tokio::task::JoinHandle<()>) {
        self.0.lock().expect("log tasks lock").push(task);
    }

    fn take(&self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut *self.0.lock().expect("log tasks lock"))
    }
}

impl Drop for LogTasks {
    fn drop(&mut self) {
        for t in self.take() {
            t.abort();
        }
    }
}

/// A container of some run, as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceState {
    pub service: String,
    pub container: String,
    pub state: String,
    pub health: Option<String>,
    /// Container port → host port.
    pub ports: BTreeMap<u16, u16>,
}

/// A run found in the daemon, by its labels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub id: String,
    pub project: String,
    pub owner: String,
    pub owner_alive: bool,
    pub root: String,
    pub kept: bool,
    pub services: Vec<ServiceState>,
}

fn label_filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let values = pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.to_string()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    HashMap::from([("label".to_string(), values)])
}

impl Engine {
    /// Connects through `DOCKER_HOST` (or the default socket) and negotiates the API version, so
    /// older daemons such as Debian's 20.10 (API 1.41) work.
    pub async fn connect() -> Result<Engine, StackError> {
        Self::connect_within(crate::docker::CONNECT_LIMIT).await
    }

    pub async fn connect_within(limit: Duration) -> Result<Engine, StackError> {
        let docker = crate::docker::connect(limit).await?;
        Ok(Engine { docker })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The newest local image named `repo` (any tag), as `repo:tag`.
    pub async fn newest_image(&self, repo: &str) -> Option<String> {
        let options = ListImagesOptions {
            filters: Some(HashMap::from([(
                "reference".to_string(),
                vec![repo.to_string()],
            )])),
            ..Default::default()
        };
        let images = self.docker.list_images(Some(options)).await.ok()?;
        images
            .into_iter()
            .filter(|i| i.repo_tags.iter().any(|t| t != "<none>:<none>"))
            .max_by_key(|i| i.created)
            .and_then(|i| {
                i.repo_tags
                    .into_iter()
                    .find(|t| t.starts_with(&format!("{repo}:")))
            })
    }

    /// Starts every service of `stack` for `run`, level by level; fails on the first service that
    /// is not ready. On failure the caller removes the run by label (see `run::guarded`).
    pub async fn start(
        &self,
        run: &RunIdentity,
        stack: &Stack,
        logs_dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<StackHandle, StackError> {
        // Levels are computed only to reject cycles up front; start order follows the conditions.
        plan::levels(&stack.services).map_err(StackError::Plan)?;
        self.check_images(stack).await?;
        std::fs::create_dir_all(logs_dir).map_err(|e| StackError::Docker {
            action: format!("create {}", logs_dir.display()),
            reason: e.to_string(),
        })?;

        let labels = run.labels();
        let network = run.project.clone();
        self.docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("create network {network}")))?;

        for (name, cache) in &stack.volumes {
            let (volume, vlabels) = if *cache {
                (
                    cache_volume(name),
                    HashMap::from([(LABEL_CACHE.to_string(), "true".to_string())]),
                )
            } else {
                (run_volume(run, name), labels.clone())
            };
            self.docker
                .create_volume(VolumeCreateRequest {
                    name: Some(volume.clone()),
                    labels: Some(vlabels),
                    ..Default::default()
                })
                .await
                .map_err(docker_err(format!("create volume {volume}")))?;
        }

        // Each service starts as soon as its dependencies meet their conditions (started, ready,
        // or completed), so a level's services start together and a `service_started` edge does
        // not wait for readiness. The first failure drops every other future, cancelling them.
        let stages: HashMap<&str, watch::Sender<Stage>> = stack
            .services
            .keys()
            .map(|n| (n.as_str(), watch::channel(Stage::Pending).0))
            .collect();
        let log_tasks = LogTasks::default();
        let t0 = Instant::now();
        let started = try_join_all(stack.services.values().map(|spec| {
            let stages = &stages;
            let network = &network;
            let labels = &labels;
            let log_tasks = &log_tasks;
            async move {
                for (dep, condition) in &spec.depends_on {
                    let need = match condition {
                        Condition::Started => Stage::Started,
                        Condition::Healthy | Condition::CompletedSuccessfully => Stage::Ready,
                    };
                    let mut rx = stages[dep.as_str()].subscribe();
                    // The sender lives as long as this function, so this cannot fail.
                    let _ = rx.wait_for(|s| *s >= need).await;
                }
                reporter.event(&Event::Note {
                    message: format!("starting   {}", spec.name),
                });
                let svc = self
                    .create_and_start(run, spec, network, labels, &stack.volumes, reporter)
                    .await?;
                log_tasks.push(self.stream_logs(&svc, &logs_dir.join(format!("{}.log", svc.name))));
                stages[spec.name.as_str()].send_replace(Stage::Started);
                let target = Target {
                    docker: &self.docker,
                    service: &svc.name,
                    container: &svc.container_id,
                    ports: &svc.ports,
                };
                wait::until_ready(&target, &spec.wait, spec.timeout).await?;
                reporter.event(&Event::ServiceReady {
                    service: svc.name.clone(),
                    elapsed: t0.elapsed(),
                });
                stages[spec.name.as_str()].send_replace(Stage::Ready);
                Ok::<_, StackError>(svc)
            }
        }))
        .await?;
        let handle = StackHandle {
            engine: self.clone(),
            run: run.clone(),
            network: network.clone(),
            services: started.into_iter().map(|s| (s.name.clone(), s)).collect(),
            logs_dir: logs_dir.to_path_buf(),
            log_tasks: log_tasks.take(),
        };
        if run.keep {
            self.mark_kept(run).await?;
        }
        Ok(handle)
    }

    async fn check_images(&self, stack: &Stack) -> Result<(), StackError> {
        let checks = stack.services.values().map(|s| async move {
            match self.docker.inspect_image(&s.image).await {
                Ok(_) => Ok(()),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Err(StackError::MissingImage {
                    service: s.name.clone(),
                    image: s.image.clone(),
                }),
                Err(e) => Err(docker_err(format!("inspect image {}", s.image))(e)),
            }
        });
        try_join_all(checks).await.map(|_| ())
    }

    async fn create_and_start(
        &self,
        run: &RunIdentity,
        spec: &ServiceSpec,
        network: &str,
        run_labels: &HashMap<String, String>,
        volumes: &BTreeMap<String, bool>,
        reporter: &dyn Reporter,
    ) -> Result<RunningService, StackError> {
        let name = format!("{}-{}", run.project, spec.name);
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.extend(run_labels.clone());
        labels.insert(LABEL_SERVICE.into(), spec.name.clone());
        let port_key = |p: &super::compose::PortSpec| {
            format!("{}/{}", p.port, if p.udp { "udp" } else { "tcp" })
        };
        let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
            .ports
            .iter()
            .map(|p| {
                (
                    port_key(p),
                    // Host port "" asks Docker for an ephemeral port; a local engine binds
                    // 127.0.0.1, which keeps it off the LAN (docker::ports).
                    Some(vec![PortBinding {
                        host_ip: Some(crate::docker::ports().bind.clone()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect();
        // Bind mounts go in through the Engine API (an upload before the start, a download
        // before removal), so a remote engine, which sees none of this machine's paths, runs
        // the same stack.
        let binds = bind_mounts();
        let owner = crate::fsutil::host_ids();
        let mut uploads = Vec::new();
        let mut outputs = Vec::new();
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            mounts.push(match m {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } if !binds => {
                    uploads.push(super::Upload::of_bind(source, target, owner).map_err(|e| {
                        StackError::Docker {
                            action: format!("read {} for {}:{target}", source.display(), spec.name),
                            reason: e.to_string(),
                        }
                    })?);
                    if source.is_file() {
                        // One file goes into the container's own folder (a volume there would
                        // hide the image's other files, such as nginx's mime.types).
                        continue;
                    }
                    if !read_only && !spec.stays.contains(target) {
                        outputs.push((target.clone(), source.clone()));
                    }
                    // A folder gets a run volume: unpacking into a volume is several times
                    // faster than into the container's layer, and it goes with the run.
                    let volume = run_volume(run, &bind_volume_name(&spec.name, target));
                    self.docker
                        .create_volume(VolumeCreateRequest {
                            name: Some(volume.clone()),
                            labels: Some(run_labels.clone()),
                            ..Default::default()
                        })
                        .await
                        .map_err(docker_err(format!("create volume {volume}")))?;
                    Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(volume),
                        target: Some(target.clone()),
                        volume_options: Some(bollard::models::MountVolumeOptions {
                            no_copy: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                }
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.display().to_string()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                MountSpec::Volume {
                    name,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(if volumes.get(name).copied().unwrap_or(false) {
                        cache_volume(name)
                    } else {
                        run_volume(run, name)
                    }),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                MountSpec::Tmpfs { target } => Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some(target.clone()),
                    ..Default::default()
                },
            });
        }
        uploads.extend(spec.uploads.iter().cloned());
        let nanos = |d: Option<Duration>| d.map(|d| d.as_nanos() as i64);
        let healthcheck = spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: nanos(h.interval),
            timeout: nanos(h.timeout),
            retries: h.retries,
            start_period: nanos(h.start_period),
            ..Default::default()
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            entrypoint: spec.entrypoint.clone(),
            env: Some(
                spec.environment
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            labels: Some(labels),
            exposed_ports: Some(spec.ports.iter().map(port_key).collect()),
            healthcheck,
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                mounts: Some(mounts),
                network_mode: Some(network.to_string()),
                shm_size: spec.shm_size,
                tmpfs: Some(
                    spec.tmpfs
                        .iter()
                        .map(|t| match t.split_once(':') {
                            Some((path, opts)) => (path.to_string(), opts.to_string()),
                            None => (t.clone(), String::new()),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_string(),
                    EndpointSettings {
                        aliases: Some(spec.aliases.clone()),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let created = self.create_named(&name, body).await?;
        if !uploads.is_empty() {
            let t = Instant::now();
            let targets: Vec<String> = uploads.iter().map(|u| u.target.clone()).collect();
            let sent = self.upload(&created.id, &name, uploads).await?;
            reporter.event(&Event::Note {
                message: format!(
                    "copied   {} files ({:.1} MB) into {}:{} in {} ms",
                    sent.files,
                    sent.bytes as f64 / 1e6,
                    spec.name,
                    targets.join(","),
                    t.elapsed().as_millis()
                ),
            });
        }
        self.docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(docker_err(format!("start container {name}")))?;
        let inspected = self
            .docker
            .inspect_container(&created.id, None::<InspectContainerOptions>)
            .await
            .map_err(docker_err(format!("inspect container {name}")))?;
        let mut ports = BTreeMap::new();
        let published = inspected
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for (key, bindings) in published {
            let Some(port) = key.split('/').next().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            if let Some(host) = bindings
                .unwrap_or_default()
                .iter()
                .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()))
            {
                ports.insert(port, host);
            }
        }
        Ok(RunningService {
            name: spec.name.clone(),
            container_id: created.id,
            container_name: name,
            ports,
            outputs,
        })
    }

    /// Creates (does not start) the container `name`.
    pub(super) async fn create_named(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<bollard::models::ContainerCreateResponse, StackError> {
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_string()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(docker_err(format!("create container {name}")))
    }

    /// Brings back what a service wrote into folders that were bind mounts (the job's report
    /// and state, the proxy's log; not a service's `stays`): the Engine API's archive download
    /// of each, unpacked over the host folder. Call it before the container is removed.
    pub async fn read_back(&self, svc: &RunningService) -> Result<(), StackError> {
        let downloads = svc.outputs.iter().map(|(target, source)| async move {
            let action = || format!("copy {}:{target} back", svc.name);
            let mut stream = self.docker.download_from_container(
                &svc.container_id,
                Some(bollard::query_parameters::DownloadFromContainerOptions {
                    path: target.clone(),
                }),
            );
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(docker_err(action()))?);
            }
            let dest = source.clone();
            tokio::task::spawn_blocking(move || super::upload::unpack_download(&bytes, &dest))
                .await
                .map_err(|e| StackError::Docker {
                    action: action(),
                    reason: e.to_string(),
                })?
                .map_err(|e| StackError::Docker {
                    action: action(),
                    reason: e.to_string(),
                })?;
            Ok::<(), StackError>(())
        });
        try_join_all(downloads).await.map(|_| ())
    }

    /// A service's whole output so far, each line led by the engine's RFC 3339 receive time
    /// (`docker logs --timestamps`): what a failure report needs to put the app's lines beside
    /// the test that was running. Passenger's copy of the app's output carries no time itself.
    pub async fn timed_log(&self, svc: &RunningService) -> Result<String, StackError> {
        self.timed_log_of(&svc.container_id, &svc.name).await
    }

    /// [`Engine::timed_log`] of a container by id; `name` is for the message.
    pub async fn timed_log_of(&self, container_id: &str, name: &str) -> Result<String, StackError> {
        let mut stream = self.docker.logs(
            container_id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                timestamps: true,
                ..Default::default()
            }),
        );
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(docker_err(format!("read the log of {name}")))?;
            bytes.extend_from_slice(&chunk.into_bytes());
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Extracts a tar archive into a running container at `dest` (a folder that exists).
    pub async fn put_archive(
        &self,
        container_id: &str,
        dest: &str,
        archive: Vec<u8>,
    ) -> Result<(), StackError> {
        self.docker
            .upload_to_container(
                container_id,
                Some(bollard::query_parameters::UploadToContainerOptions {
                    path: dest.into(),
                    ..Default::default()
                }),
                bollard::body_full(bytes::Bytes::from(archive)),
            )
            .await
            .map_err(docker_err(format!("copy files into {dest}")))
    }

    /// Runs `argv` (no shell) in a running container as `user`; its exit code and output.
    pub async fn exec(
        &self,
        container_id: &str,
        user: Option<&str>,
        argv: &[&str],
    ) -> Result<(i64, String), StackError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = || format!("run {} in the container", argv.first().unwrap_or(&""));
        let exec = self
            .docker
            .create_exec(
                container_id,
                CreateExecOptions {
                    cmd: Some(argv.iter().map(|a| a.to_string()).collect()),
                    user: user.map(str::to_string),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err(action()))?;
        let mut text = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(docker_err(action()))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(docker_err(action()))?
            .exit_code
            .unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&text).into_owned()))
    }

    /// Writes one file into a running container (its folder must exist).
    pub async fn put_file(
        &self,
        svc: &RunningService,
        path: &str,
        contents: &[u8],
    ) -> Result<(), StackError> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(contents.len() as u64);
        h.set_mtime(0);
        let action = || format!("write {}:{path}", svc.name);
        tar.append_data(&mut h, path.trim_start_matches('/'), contents)
            .and_then(|()| tar.into_inner())
            .map_err(|e| StackError::Docker {
                action: action(),
                reason: e.to_string(),
            })
            .map(bytes::Bytes::from)
            .map(|archive| async move {
                self.docker
                    .upload_to_container(
                        &svc.container_id,
                        Some(bollard::query_parameters::UploadToContainerOptions {
                            path: "/".into(),
                            ..Default::default()
                        }),
                        bollard::body_full(archive),
                    )
                    .await
                    .map_err(docker_err(action()))
            })?
            .await
    }

    /// Copies the uploads' files into the created (not yet started) container `id`, as one
    /// archive; returns the bytes of file content sent.
    pub(super) async fn upload(
        &self,
        id: &str,
        name: &str,
        uploads: Vec<super::Upload>,
    ) -> Result<super::upload::Sent, StackError> {
        let (stream, writer) = super::upload::stream_all(uploads);
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        let sent = self
            .docker
            .upload_to_container(id, Some(options), bollard::body_stream(stream))
            .await;
        // The writer's error explains a short stream better than the daemon's complaint.
        let written = match writer.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let bytes = written.map_err(|reason| StackError::Docker {
            action: format!("copy files into {name}"),
            reason,
        })?;
        sent.map_err(docker_err(format!("copy files into {name}")))?;
        Ok(bytes)
    }

    /// Follows the container's output into `file` until the container stops or the task is
    /// aborted; `remove_run` writes the complete log once more before removing the container.
    fn stream_logs(&self, svc: &RunningService, file: &Path) -> tokio::task::JoinHandle<()> {
        let docker = self.docker.clone();
        let id = svc.container_id.clone();
        let file = file.to_path_buf();
        tokio::spawn(async move {
            let Ok(mut out) = tokio::fs::File::create(&file).await else {
                return;
            };
            let mut stream = follow_logs(&docker, &id);
            while let Some(Ok(chunk)) = stream.next().await {
                if out.write_all(&chunk.into_bytes()).await.is_err() {
                    break;
                }
                let _ = out.flush().await;
            }
        })
    }

    /// Follows a started one-shot container (the test job) to its end: its output goes to
    /// `on_output` as it arrives (the run's log file gets it from the stack's own log task), and
    /// its exit code is returned. Past `limit` the container is killed and this fails.
    pub async fn follow_job(
        &self,
        svc: &RunningService,
        limit: Duration,
        on_output: &(dyn Fn(&[u8]) + Sync),
    ) -> Result<i64, StackError> {
        let follow = async {
            let mut stream = follow_logs(&self.docker, &svc.container_id);
            while let Some(Ok(chunk)) = stream.next().await {
                on_output(&chunk.into_bytes());
            }
        };
        if tokio::time::timeout(limit, follow).await.is_err() {
            let _ = self
                .docker
                .kill_container(
                    &svc.container_id,
                    None::<bollard::query_parameters::KillContainerOptions>,
                )
                .await;
            return Err(StackError::Docker {
                action: format!("run {}", svc.name),
                reason: format!("still running after {} s; killed", limit.as_secs()),
            });
        }
        // The log stream ends when the container stops; its state holds the exit code.
        self.exit_code(&svc.container_id, &svc.name).await
    }

    /// The exit code of container `id` (called `what` in errors), once it has stopped.
    pub(super) async fn exit_code(&self, id: &str, what: &str) -> Result<i64, StackError> {
        let mut waits = self
            .docker
            .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
        match waits.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(docker_err(format!("wait for {what}"))(e)),
            None => {
                let inspected = self
                    .docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await
                    .map_err(docker_err(format!("inspect {what}")))?;
                Ok(inspected.state.and_then(|s| s.exit_code).unwrap_or(-1))
            }
        }
    }

    /// Service name → image id, for every container of run `id`.
    pub async fn image_ids(&self, id: &str) -> Result<BTreeMap<String, String>, StackError> {
        let containers = self
            .containers_with(&label_filter(&[(LABEL_RUN, id)]))
            .await?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let service = c.labels.as_ref()?.get(LABEL_SERVICE)?.clone();
                Some((service, c.image_id.unwrap_or_default()))
            })
            .collect())
    }

    async fn mark_kept(&self, run: &RunIdentity) -> Result<(), StackError> {
        let mut labels = run.labels();
        labels.insert(LABEL_KEEP.into(), "true".into());
        labels.insert(LABEL_MARKER.into(), "kept".into());
        let name = format!("{}-kept", run.project);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.clone()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("create volume {name}")))?;
        Ok(())
    }

    /// Every run that has a container, network or volume in the daemon, optionally only those of
    /// one project root.
    pub async fn runs(&self, root: Option<&str>) -> Result<Vec<RunSummary>, StackError> {
        let mut pairs = vec![(LABEL_RUN, "")];
        if let Some(r) = root {
            pairs.push((LABEL_ROOT, r));
        }
        let filters = label_filter(&pairs);
        let containers = self.containers_with(&filters).await?;
        let networks = self.networks_with(&filters).await?;
        let volumes = self.volumes_with(filters).await?;

        let mut runs: BTreeMap<String, RunSummary> = BTreeMap::new();
        let mut note = |labels: &HashMap<String, String>| -> Option<String> {
            let id = labels.get(LABEL_RUN)?.clone();
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            runs.entry(id.clone()).or_insert_with(|| {
                let owner = get(LABEL_OWNER);
                RunSummary {
                    id: id.clone(),
                    project: get(LABEL_PROJECT),
                    owner_alive: Owner::parse(&owner).is_none_or(|o| o.is_alive()),
                    owner,
                    root: get(LABEL_ROOT),
                    kept: false,
                    services: Vec::new(),
                }
            });
            Some(id)
        };
        for n in &networks {
            note(n.labels.as_ref().unwrap_or(&HashMap::new()));
        }
        let mut kept = Vec::new();
        for v in &volumes {
            if let Some(id) = note(&v.labels)
                && v.labels.get(LABEL_MARKER).map(String::as_str) == Some("kept")
            {
                kept.push(id);
            }
        }
        let mut services = Vec::new();
        for c in &containers {
            let labels = c.labels.clone().unwrap_or_default();
            if let Some(id) = note(&labels) {
                let ports = c
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| p.public_port.map(|h| (p.private_port, h)))
                    .collect();
                services.push((
                    id,
                    ServiceState {
                        service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                        container: c
                            .names
                            .as_ref()
                            .and_then(|n| n.first())
                            .map(|n| n.trim_start_matches('/').to_string())
                            .unwrap_or_default(),
                        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                        health: c
                            .health
                            .as_ref()
                            .and_then(|h| h.status.map(|s| s.to_string())),
                        ports,
                    },
                ));
            }
        }
        for (id, s) in services {
            if let Some(r) = runs.get_mut(&id) {
                r.services.push(s);
            }
        }
        for id in kept {
            if let Some(r) = runs.get_mut(&id) {
                r.kept = true;
            }
        }
        let mut out: Vec<RunSummary> = runs.into_values().collect();
        for r in &mut out {
            r.services.sort_by(|a, b| a.service.cmp(&b.service));
        }
        Ok(out)
    }

    /// Removes the run's containers (forcefully: a test stack has nothing to flush), then its
    /// network and volumes. Before a container goes, its full log is written to `logs_dir`.
    /// Returns how many resources were removed.
    /// Removes every container, network and volume of run `id`, saving container logs first.
    ///
    /// A harness killed in the middle of an API call leaves the daemon finishing that call after
    /// the sweep has listed the run: a container can appear, or still hold the network, a moment
    /// later. So removal repeats until a pass finds nothing left, for up to about 3 s.
    pub async fn remove_run(&self, id: &str, logs_dir: Option<&Path>) -> Result<usize, StackError> {
        let mut removed = 0;
        let mut passes = 0;
        loop {
            passes += 1;
            match self.remove_run_pass(id, logs_dir).await {
                Ok(n) => {
                    removed += n;
                    if self.run_is_gone(id).await? {
                        return Ok(removed);
                    }
                }
                Err(e) if passes >= 10 => return Err(e),
                Err(_) => {}
            }
            if passes >= 10 {
                return Ok(removed);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Every container (running or not) matching `filters`.
    async fn containers_with(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, StackError> {
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(docker_err("list containers"))
    }

    /// Every network matching `filters`.
    async fn networks_with(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Network>, StackError> {
        self.docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .map_err(docker_err("list networks"))
    }

    /// Every volume matching `filters`.
    async fn volumes_with(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Volume>, StackError> {
        Ok(self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(docker_err("list volumes"))?
            .volumes
            .unwrap_or_default())
    }

    async fn run_is_gone(&self, id: &str) -> Result<bool, StackError> {
        let filters = label_filter(&[(LABEL_RUN, id)]);
        let containers = self.containers_with(&filters).await?;
        let networks = self.networks_with(&filters).await?;
        Ok(containers.is_empty() && networks.is_empty())
    }

    /// Saves a container's whole output into `logs_dir/<service>.log`, then removes it.
    async fn remove_container_keeping_log(
        &self,
        cid: &str,
        service: &str,
        logs_dir: Option<&Path>,
    ) -> Result<(), StackError> {
        if let Some(dir) = logs_dir
            && dir.is_dir()
        {
            save_logs(&self.docker, cid, &dir.join(format!("{service}.log"))).await;
        }
        self.docker
            .remove_container(
                cid,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .or_else(not_found)
            .map_err(docker_err(format!("remove container {service}")))
    }

    /// Removes the containers of `handle`'s services that `which` picks, each log saved first,
    /// in a task of its own: the teardown starts with the services that have nothing to bring
    /// back (the app, the mocks) while `read_back` downloads from the others, and each of those
    /// follows as soon as its folders are back. What fails here is left to `down`, which
    /// removes whatever is left by label.
    pub fn remove_services_soon(
        &self,
        handle: &StackHandle,
        which: impl Fn(&RunningService) -> bool,
    ) -> tokio::task::JoinHandle<Result<usize, StackError>> {
        self.remove_services_soon_after(handle, which, std::future::ready(()))
    }

    /// [`Engine::remove_services_soon`] once `first` is done (it runs in the same task).
    pub fn remove_services_soon_after(
        &self,
        handle: &StackHandle,
        which: impl Fn(&RunningService) -> bool,
        first: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<usize, StackError>> {
        let engine = self.clone();
        let logs = handle.logs_dir.clone();
        let targets: Vec<(String, String)> = handle
            .services
            .values()
            .filter(|svc| which(svc))
            .map(|svc| (svc.container_id.clone(), svc.name.clone()))
            .collect();
        tokio::spawn(async move {
            first.await;
            let removals = targets
                .iter()
                .map(|(cid, name)| engine.remove_container_keeping_log(cid, name, Some(&logs)));
            removed_count(join_all(removals).await)
        })
    }

    async fn remove_run_pass(
        &self,
        id: &str,
        logs_dir: Option<&Path>,
    ) -> Result<usize, StackError> {
        let filters = label_filter(&[(LABEL_RUN, id)]);
        let containers = self.containers_with(&filters).await?;
        let removals = containers.iter().map(|c| async move {
            let cid = c.id.clone().unwrap_or_default();
            let service = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SERVICE).cloned())
                .unwrap_or_else(|| cid.clone());
            self.remove_container_keeping_log(&cid, &service, logs_dir)
                .await
        });
        let mut removed = removed_count(join_all(removals).await)?;
        // Once the containers are gone, the network and the volumes go side by side.
        let networks = async {
            let mut n_removed = 0;
            for n in self.networks_with(&filters).await? {
                let name = n.id.or(n.name).unwrap_or_default();
                self.docker
                    .remove_network(&name)
                    .await
                    .or_else(not_found)
                    .map_err(docker_err(format!("remove network {name}")))?;
                n_removed += 1;
            }
            Ok::<usize, StackError>(n_removed)
        };
        let volumes = async {
            let volumes = self.volumes_with(filters.clone()).await?;
            let removals = volumes.iter().map(|v| async move {
                self.docker
                    .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                    .await
                    .or_else(not_found)
                    .map_err(docker_err(format!("remove volume {}", v.name)))
            });
            removed_count(join_all(removals).await)
        };
        let (n, v) = tokio::join!(networks, volumes);
        removed += n? + v?;
        Ok(removed)
    }
}

fn not_found(e: bollard::errors::Error) -> Result<(), bollard::errors::Error> {
    match e {
        // Already gone (a concurrent down or sweep): the goal is reached.
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Ok(()),
        e => Err(e),
    }
}

/// A container's stdout and stderr from its start, following until it stops.
fn follow_logs(
    docker: &Docker,
    id: &str,
) -> impl futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
+ use<> {
    docker.logs(
        id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    )
}

async fn save_logs(docker: &Docker, container: &str, file: &Path) {
    let mut stream = docker.logs(
        container,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        bytes.extend_from_slice(&chunk.into_bytes());
    }
    let _ = tokio::fs::write(file, bytes).await;
}

/// `HARNESS_BIND_MOUNTS=1`: bind-mount host paths, as harness did before it sent them through
/// the Engine API. Only a local engine can serve that; the remote-engine test sets it to show
/// that bind mounts are what breaks there.
pub(super) fn bind_mounts() -> bool {
    std::env::var("HARNESS_BIND_MOUNTS").is_ok_and(|v| v == "1")
}

/// The run volume that carries a bind mount's folder: the service and the container path, in
/// the characters a volume name may have.
fn bind_volume_name(service: &str, target: &str) -> String {
    let path: String = target
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{service}-{path}")
}

fn run_volume(run: &RunIdentity, name: &str) -> String {
    format!("{}_{name}", run.project)
}

/// How many removals succeeded, or the first error among them (all were tried).
fn removed_count<T>(results: Vec<Result<T, StackError>>) -> Result<usize, StackError> {
    results.into_iter().try_fold(0, |n, r| r.map(|_| n + 1))
}

pub(super) fn cache_volume(name: &str) -> String {
    format!("harness-cache-{name}")
}
