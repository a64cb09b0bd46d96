//! The Docker Engine API side of images: import the base, run a bake container, commit it, inspect.
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::ImageError;
use super::recipe::{Recipe, missing_package};
use super::rootfs::{Rootfs, tail};

pub const LABEL_IMAGE: &str = "harness.image";
pub const LABEL_HASH: &str = "harness.recipe.hash";
pub const LABEL_ROOTFS_SHA: &str = "harness.rootfs.sha256";
pub const LABEL_ROOTFS_KEY: &str = "harness.rootfs.key";
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Bake containers are found by this name prefix, never by a label: labels of the bake container
/// would be merged into the committed image and from there into every container started from it.
pub const BAKE_PREFIX: &str = "harness-bake-";

/// What the engine knows about an image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub size: i64,
    pub created: Option<String>,
}

/// A connection to the Docker engine, version-negotiated.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects as every part of harness does (`crate::docker::connect`).
    pub async fn connect() -> Result<Engine, ImageError> {
        let docker = crate::docker::connect(crate::docker::CONNECT_LIMIT).await?;
        Ok(Engine { docker })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, ImageError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                labels: i.config.and_then(|c| c.labels).unwrap_or_default(),
                size: i.size.unwrap_or(0),
                created: i.created,
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(ImageError::docker(&format!("inspect image {reference}"), e)),
        }
    }

    /// Image references carrying `label=value`.
    pub async fn images_with_label(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<String>, ImageError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
        let list = self
            .docker
            .list_images(Some(
                ListImagesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| ImageError::docker("list images", e))?;
        Ok(list
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter(|t| t != "<none>:<none>")
            .collect())
    }

    /// Imports the rootfs tar as `reference`, labelled with its hash and key.
    pub async fn import_rootfs(
        &self,
        rootfs: &Rootfs,
        key: &str,
        reference: &str,
    ) -> Result<(), ImageError> {
        self.import_tar(
            &rootfs.tar,
            reference,
            vec![
                format!("LABEL {LABEL_ROOTFS_SHA}={}", rootfs.sha256),
                format!("LABEL {LABEL_ROOTFS_KEY}={key}"),
                format!("ENV PATH={BASE_PATH}"),
                "CMD [\"/bin/bash\"]".into(),
            ],
            (LABEL_ROOTFS_SHA, &rootfs.sha256),
        )
        .await
    }

    /// Imports a whole-filesystem tar as `reference` with Dockerfile-style `changes`; succeeds
    /// only if the image is there afterwards with `expect` among its labels.
    pub async fn import_tar(
        &self,
        tar: &Path,
        reference: &str,
        changes: Vec<String>,
        expect: (&str, &str),
    ) -> Result<(), ImageError> {
        let (repo, tag) = reference.rsplit_once(':').expect("reference has a tag");
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let file = tokio::fs::File::open(tar)
            .await
            .map_err(|e| ImageError::io(tar, e))?;
        let body = futures_util::stream::unfold(file, |mut f| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        });
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_try_stream(body)), None);
        // The engine answers 200 first and reports failures inside the stream, so only the end of
        // the stream tells whether the import worked.
        while let Some(item) = progress.next().await {
            item.map_err(|e| ImageError::docker(&format!("import {reference}"), e))?;
        }
        match self.inspect(reference).await? {
            Some(info) if info.labels.get(expect.0).map(|v| v.as_str()) == Some(expect.1) => Ok(()),
            _ => Err(ImageError::Engine {
                action: format!("import {reference}"),
                message: "the import stream ended but the image is not there".into(),
            }),
        }
    }

    /// Tries to pull `reference`; the progress stream carries registry errors.
    pub async fn pull(&self, reference: &str) -> Result<(), ImageError> {
        let options = CreateImageOptionsBuilder::new()
            .from_image(reference)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| ImageError::docker(&format!("pull {reference}"), e))?;
        }
        Ok(())
    }

    /// Removes bake containers for `tag` that a crashed or interrupted bake left behind. Only
    /// called under the tag's lock, so no live bake owns them.
    pub async fn sweep_bake_containers(&self, name_prefix: &str) -> Result<(), ImageError> {
        let filters = HashMap::from([("name".to_string(), vec![name_prefix.to_string()])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| ImageError::docker("list containers", e))?;
        for c in list {
            if let Some(id) = c.id {
                self.remove_container(&id).await;
            }
        }
        Ok(())
    }

    /// Whether a container started from `base` reaches Debian's mirror (`apt-get update`). Decides
    /// between installing in bake containers and the chroot fallback.
    pub async fn probe_mirror(&self, base: &str) -> Result<Result<(), String>, ImageError> {
        let name = format!("{BAKE_PREFIX}probe-{}", std::process::id());
        self.sweep_bake_containers(&name).await?;
        let id = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                ContainerCreateBody {
                    image: Some(base.to_string()),
                    cmd: Some(vec![
                        "sh".into(),
                        "-c".into(),
                        "apt-get -o Acquire::Retries=0 -o Acquire::http::Timeout=20 --error-on=any update 2>&1"
                            .into(),
                    ]),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ImageError::docker("create the mirror probe container", e))?
            .id;
        let outcome = async {
            self.docker
                .start_container(&id, None)
                .await
                .map_err(|e| ImageError::docker("start the mirror probe container", e))?;
            let mut out = String::new();
            let mut logs = self.docker.logs(
                &id,
                Some(
                    LogsOptionsBuilder::new()
                        .follow(true)
                        .stdout(true)
                        .stderr(true)
                        .tail("all")
                        .build(),
                ),
            );
            let deadline = tokio::time::sleep(Duration::from_secs(120));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    chunk = logs.next() => match chunk {
                        Some(Ok(c)) => out.push_str(&c.to_string()),
                        _ => break,
                    },
                    _ = &mut deadline => return Ok(Err("apt-get update took over 120 s".into())),
                }
            }
            let code = self.exit_code(&id).await?;
            Ok(
                if code == 0 && !out.contains("Failed to fetch") && !out.contains("Err:") {
                    Ok(())
                } else {
                    Err(tail(&out, 5))
                },
            )
        };
        let outcome = tokio::select! {
            r = outcome => r,
            _ = tokio::signal::ctrl_c() => Err(ImageError::Interrupted),
        };
        self.remove_container(&id).await;
        outcome
    }

    async fn remove_container(&self, id: &str) {
        let _ = self
            .docker
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await;
    }

    /// Bakes `recipe` on top of `base` and commits it as `reference`. The temporary container is
    /// removed on every path: success, failure and Ctrl-C. Returns (install time, commit time).
    pub async fn bake(&self, job: &BakeJob<'_>) -> Result<(Duration, Duration), ImageError> {
        let name = format!(
            "{BAKE_PREFIX}{}-{}-{}",
            job.recipe.name,
            &job.hash[..12],
            std::process::id()
        );
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                ContainerCreateBody {
                    image: Some(job.base.to_string()),
                    // Cmd, not Entrypoint: commit merges unset fields from this container, and the
                    // recipe always sets Cmd or Entrypoint (an explicit empty Entrypoint otherwise).
                    entrypoint: None,
                    cmd: Some(vec!["/bin/sh".into(), "/tmp/harness-bake/build.sh".into()]),
                    host_config: Some(HostConfig {
                        network_mode: Some("bridge".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ImageError::docker(&format!("create bake container {name}"), e))?;
        let id = created.id;
        let outcome = tokio::select! {
            r = self.bake_in(&id, job) => r,
            _ = tokio::signal::ctrl_c() => Err(ImageError::Interrupted),
        };
        self.remove_container(&id).await;
        outcome
    }

    async fn bake_in(
        &self,
        id: &str,
        job: &BakeJob<'_>,
    ) -> Result<(Duration, Duration), ImageError> {
        let started = Instant::now();
        let archive = payload(job)?;
        self.docker
            .upload_to_container(
                id,
                Some(UploadToContainerOptionsBuilder::new().path("/").build()),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(|e| {
                ImageError::docker("copy the recipe's files into the bake container", e)
            })?;
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| ImageError::docker("start the bake container", e))?;

        let log_path = job.log;
        if let Some(parent) = log_path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| ImageError::io(parent, e))?;
        }
        let mut log = tokio::fs::File::create(log_path)
            .await
            .map_err(|e| ImageError::io(log_path, e))?;
        let mut text = String::new();
        let mut logs = self.docker.logs(
            id,
            Some(
                LogsOptionsBuilder::new()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .tail("all")
                    .build(),
            ),
        );
        while let Some(chunk) = logs.next().await {
            let Ok(chunk) = chunk else { break };
            let bytes = chunk.into_bytes();
            let _ = log.write_all(&bytes).await;
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        let _ = log.flush().await;
        let code = self.exit_code(id).await?;
        let install = started.elapsed();
        if code != 0 {
            if let Some(package) = missing_package(&text) {
                return Err(ImageError::MissingPackage {
                    image: job.recipe.name.clone(),
                    package,
                });
            }
            return Err(ImageError::BakeFailed {
                image: job.recipe.name.clone(),
                code,
                tail: tail(&text, 25),
                log: log_path.to_path_buf(),
            });
        }

        let commit_started = Instant::now();
        self.commit(id, job).await?;
        Ok((install, commit_started.elapsed()))
    }

    /// Commits container `id` as the job's image with the recipe's config and our labels.
    async fn commit(&self, id: &str, job: &BakeJob<'_>) -> Result<(), ImageError> {
        let (repo, tag) = job.reference.rsplit_once(':').expect("reference has a tag");
        let cfg = &job.recipe.image;
        let mut labels = HashMap::from([
            (LABEL_IMAGE.to_string(), job.recipe.name.clone()),
            (LABEL_HASH.to_string(), job.hash.to_string()),
        ]);
        labels.insert(
            "org.opencontainers.image.description".into(),
            job.recipe.description.clone(),
        );
        let config = ContainerConfig {
            entrypoint: Some(cfg.entrypoint.clone().unwrap_or_default()),
            cmd: cfg.cmd.clone(),
            env: Some(cfg.env.clone()),
            exposed_ports: (!cfg.expose.is_empty()).then(|| cfg.expose.clone()),
            working_dir: cfg.workdir.clone(),
            user: cfg.user.clone(),
            stop_signal: cfg.stop_signal.clone(),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .commit_container(
                CommitContainerOptionsBuilder::new()
                    .container(id)
                    .repo(repo)
                    .tag(tag)
                    .pause(false)
                    .build(),
                config,
            )
            .await
            .map_err(|e| ImageError::docker(&format!("commit {}", job.reference), e))?;
        Ok(())
    }

    /// Turns an imported whole-filesystem image (chroot fallback) into the job's image: a created,
    /// never started container from it is committed with the recipe's config, since an import's
    /// `changes` cannot carry everything (STOPSIGNAL, for one).
    pub async fn commit_imported(
        &self,
        imported: &str,
        job: &BakeJob<'_>,
    ) -> Result<(), ImageError> {
        let name = format!(
            "{BAKE_PREFIX}{}-{}-{}-commit",
            job.recipe.name,
            &job.hash[..12],
            std::process::id()
        );
        let id = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                ContainerCreateBody {
                    image: Some(imported.to_string()),
                    cmd: Some(vec!["/bin/true".into()]),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ImageError::docker(&format!("create a container from {imported}"), e))?
            .id;
        let r = self.commit(&id, job).await;
        self.remove_container(&id).await;
        let _ = self
            .docker
            .remove_image(
                imported,
                Some(
                    bollard::query_parameters::RemoveImageOptionsBuilder::new()
                        .noprune(true)
                        .build(),
                ),
                None,
            )
            .await;
        r
    }

    async fn exit_code(&self, id: &str) -> Result<i64, ImageError> {
        // The log stream ends when the container stops; inspect (not wait) gives the exit code
        // without bollard turning a non-zero status into an error.
        for _ in 0..50 {
            let c = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(|e| ImageError::docker("inspect the bake container", e))?;
            if let Some(state) = c.state
                && state.running != Some(true)
            {
                return Ok(state.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ImageError::Engine {
            action: "wait for the bake container".into(),
            message: "its log stream ended but it is still running".into(),
        })
    }
}

/// Everything one bake needs.
pub struct BakeJob<'a> {
    pub recipe: &'a Recipe,
    pub base: &'a str,
    pub reference: &'a str,
    pub hash: &'a str,
    pub harness_binary: Option<&'a Path>,
    pub log: &'a Path,
}

/// The tar unpacked at `/` of the bake container (or chroot): the build script at
/// /tmp/harness-bake/build.sh, the recipe's files, the harness binary and (for pip) the host's CA
/// bundle.
pub fn payload(job: &BakeJob<'_>) -> Result<Vec<u8>, ImageError> {
    let ca = job
        .recipe
        .pip
        .as_ref()
        .and_then(|_| host_ca_bundle())
        .map(|p| std::fs::read(&p).map_err(|e| ImageError::io(&p, e)))
        .transpose()?;
    let script = job
        .recipe
        .build_script(ca.as_ref().map(|_| "/tmp/harness-bake/ca.pem"));
    files_tar(job, &script, ca.as_deref())
}

fn files_tar(job: &BakeJob<'_>, script: &str, ca: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, bytes: &[u8]| -> Result<(), ImageError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path.trim_start_matches('/'), bytes)
            .map_err(|e| ImageError::io(Path::new(path), e))
    };
    add("/tmp/harness-bake/build.sh", 0o755, script.as_bytes())?;
    if let Some(ca) = ca {
        add("/tmp/harness-bake/ca.pem", 0o644, ca)?;
    }
    for f in &job.recipe.files {
        add(&f.dest, f.mode, &f.bytes)?;
    }
    if let (Some(dest), Some(bin)) = (&job.recipe.harness_binary, job.harness_binary) {
        let bytes = match stripped(bin) {
            Some(b) => b,
            None => std::fs::read(bin).map_err(|e| ImageError::io(bin, e))?,
        };
        add(dest, 0o755, &bytes)?;
    }
    b.into_inner()
        .map_err(|e| ImageError::io(Path::new("bake.tar"), e))
}

/// The binary without debug sections, when the host has `strip`: a debug build of harness is
/// mostly DWARF (167 MB → tens of MB), which the mocks need no more than a size on disk. The
/// recipe hash still covers the original binary.
fn stripped(bin: &Path) -> Option<Vec<u8>> {
    let out = tempfile::NamedTempFile::new().ok()?;
    let ok = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(out.path())
        .arg(bin)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    if ok {
        std::fs::read(out.path()).ok()
    } else {
        None
    }
}

/// The host's CA bundle, so pip in the bake container trusts what the host trusts (an intercepting
/// proxy's CA, for instance). It is deleted before the commit.
fn host_ca_bundle() -> Option<std::path::PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([std::path::PathBuf::from(
            "/etc/ssl/certs/ca-certificates.crt",
        )])
        .find(|p| p.is_file())
}

/// Dockerfile-style changes for the import of a chroot-baked tree: the base's labels and a
/// command, so a container can be created from it for the final commit.
pub fn import_changes(base_labels: &[(String, String)], hash: &str) -> Vec<String> {
    let q = |s: &str| serde_json::to_string(s).expect("string serialises");
    let mut out = vec![
        format!("ENV PATH={BASE_PATH}"),
        "CMD [\"/bin/bash\"]".into(),
        format!("LABEL {LABEL_HASH}={}", q(hash)),
    ];
    for (k, v) in base_labels {
        out.push(format!("LABEL {k}={}", q(v)));
    }
    out
}

impl Engine {
    /// The engine's CPU architecture as its `/info` names it (`x86_64`, `aarch64`), in Rust's
    /// spelling.
    pub async fn architecture(&self) -> Result<String, ImageError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| ImageError::docker("read the engine's /info", e))?;
        Ok(normal_arch(info.architecture.as_deref().unwrap_or("")))
    }
}

/// Docker's and Go's names for an architecture, as Rust's `std::env::consts::ARCH` has them.
pub fn normal_arch(name: &str) -> String {
    match name {
        "amd64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_architecture_names_read_as_rusts() {
        assert_eq!(super::normal_arch("amd64"), "x86_64");
        assert_eq!(super::normal_arch("x86_64"), "x86_64");
        assert_eq!(super::normal_arch("arm64"), "aarch64");
        assert_eq!(super::normal_arch("aarch64"), "aarch64");
    }
}
