//! Images for the stack's services, without needing a registry.
//!
//! One job: give each service an image reference. Resolution tries, in a configurable order, an
//! image already present locally, a pull of the pinned public image, and a bake from the offline
//! recipe in `compose/images/<name>/`. A bake starts from a bookworm rootfs made by debootstrap
//! (cached outside the project), installs the recipe's packages in a container, and commits it,
//! labelled with the recipe hash: an image whose label matches is never rebuilt.
mod chroot;
mod engine;
mod recipe;
mod rootfs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Exit, Failure};
use crate::events::{Event, Phase, Reporter};

pub use engine::{BAKE_PREFIX, Engine, LABEL_HASH, LABEL_IMAGE};
pub use recipe::{NAMES, RecipeSource};

/// One way of getting an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The pinned public image is already in the daemon.
    Local,
    /// The pinned public image was pulled from its registry.
    Pulled,
    /// Built here from the offline recipe.
    Baked,
}

impl Source {
    pub fn parse_order(text: &str) -> Result<Vec<Source>, String> {
        text.split(',')
            .map(|s| match s.trim() {
                "local" => Ok(Source::Local),
                "pull" | "pulled" => Ok(Source::Pulled),
                "bake" | "baked" => Ok(Source::Baked),
                other => Err(format!(
                    "unknown image source `{other}` (use local, pull, bake)"
                )),
            })
            .collect()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Local => "local",
            Source::Pulled => "pulled",
            Source::Baked => "baked",
        })
    }
}

/// Where a bake installs packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BakePath {
    /// In a container from the base, committed on top of it (images share the base layer).
    Container,
    /// In a chroot on the host before a whole-image import (containers cannot reach the mirror).
    Chroot,
}

/// How to resolve images.
#[derive(Debug, Clone)]
pub struct Options {
    pub order: Vec<Source>,
    pub offline: bool,
    pub recipes: RecipeSource,
    /// Cache for the rootfs tars, locks and bake logs (outside any project).
    pub cache: PathBuf,
    /// None: decide by probing whether containers reach Debian's mirror.
    pub bake_path: Option<BakePath>,
}

impl Options {
    /// Defaults: order local,pull,bake (HARNESS_IMAGE_ORDER overrides), offline when
    /// HARNESS_OFFLINE=1, embedded recipes, cache in `fsutil::cache_root`.
    pub fn from_env() -> Result<Options, Failure> {
        let order = match std::env::var("HARNESS_IMAGE_ORDER") {
            Ok(text) => Source::parse_order(&text)
                .map_err(|m| Failure::new(Exit::BadInput, format!("HARNESS_IMAGE_ORDER: {m}")))?,
            Err(_) => vec![Source::Local, Source::Pulled, Source::Baked],
        };
        Ok(Options {
            order,
            offline: std::env::var("HARNESS_OFFLINE").is_ok_and(|v| v == "1"),
            recipes: RecipeSource::Embedded,
            cache: crate::fsutil::cache_root()?,
            bake_path: match std::env::var("HARNESS_BAKE_PATH").as_deref() {
                Ok("container") => Some(BakePath::Container),
                Ok("chroot") => Some(BakePath::Chroot),
                Ok("auto") | Ok("") | Err(_) => None,
                Ok(other) => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("HARNESS_BAKE_PATH={other}: use container, chroot or auto"),
                    ));
                }
            },
        })
    }
}

/// The outcome for one image.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub name: String,
    /// What to put in a container's `image` field.
    pub reference: String,
    pub source: Source,
    /// The recipe hash (baked images only).
    pub recipe_hash: Option<String>,
    /// True when this call built (or pulled) it; false when it was already there.
    pub changed: bool,
    pub image_id: String,
    pub size: i64,
}

/// One row of `harness images --list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub name: String,
    /// None: the image is not present in any form.
    pub source: Option<Source>,
    pub reference: String,
    pub recipe_hash: Option<String>,
    pub size: Option<i64>,
    pub created: Option<String>,
    pub note: String,
}

/// Errors of this module; each knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no image recipe named `{name}`")]
    UnknownImage { name: String },
    #[error("{file}: {message}")]
    Recipe { file: String, message: String },
    #[error("image `{image}`: the package `{package}` does not exist in Debian bookworm")]
    MissingPackage { image: String, package: String },
    #[error("image `{image}`: the bake failed (exit {code}); last lines:\n{tail}\nfull log: {}", log.display())]
    BakeFailed {
        image: String,
        code: i64,
        tail: String,
        log: PathBuf,
    },
    #[error("Docker: cannot {action}: {message}")]
    Engine { action: String, message: String },
    #[error("{0}")]
    Unreachable(#[from] crate::docker::Unreachable),
    #[error("{what}")]
    Host { what: String, hint: String },
    #[error("`{command}` failed ({status}); last lines:\n{tail}")]
    Command {
        command: String,
        status: String,
        tail: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("interrupted; the bake container was removed")]
    Interrupted,
    #[error("no source could provide image `{name}` (tried {tried})")]
    Unresolved { name: String, tried: String },
}

impl ImageError {
    fn docker(action: &str, e: bollard::errors::Error) -> ImageError {
        ImageError::Engine {
            action: action.to_string(),
            message: e.to_string(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            ImageError::UnknownImage { .. } | ImageError::Recipe { .. } => Exit::BadInput,
            ImageError::Interrupted => Exit::Interrupted,
            _ => Exit::Environment,
        }
    }
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Failure {
        if let ImageError::Unreachable(u) = e {
            return u.into();
        }
        let hint = match &e {
            ImageError::UnknownImage { .. } => Some(format!("known images: {}", NAMES.join(", "))),
            ImageError::MissingPackage { package, .. } => Some(format!(
                "fix the recipe's packages list; `apt-cache policy {package}` on a bookworm host shows \
                 whether it exists"
            )),
            ImageError::Host { hint, .. } => Some(hint.clone()),
            ImageError::Engine { .. } => Some(
                "is the Docker daemon running and DOCKER_HOST (if set) right? `docker info` tells"
                    .into(),
            ),
            ImageError::Unresolved { .. } => Some(
                "put `bake` in HARNESS_IMAGE_ORDER, or load the image with `docker load`".into(),
            ),
            _ => None,
        };
        let f = Failure::new(e.exit(), e.to_string());
        match hint {
            Some(h) => f.hint(h),
            None => f,
        }
    }
}

/// Resolves and bakes images; holds the engine connection and the options.
pub struct Images<'a> {
    engine: Engine,
    options: Options,
    reporter: &'a dyn Reporter,
    /// The base image reference and its rootfs hash, once known.
    base: tokio::sync::OnceCell<(String, String)>,
    bake_path: tokio::sync::OnceCell<BakePath>,
    harness_sha: std::sync::OnceLock<(PathBuf, String)>,
}

impl<'a> Images<'a> {
    pub async fn connect(options: Options, reporter: &'a dyn Reporter) -> Result<Self, ImageError> {
        Ok(Images {
            engine: Engine::connect().await?,
            options,
            reporter,
            base: tokio::sync::OnceCell::new(),
            bake_path: tokio::sync::OnceCell::new(),
            harness_sha: std::sync::OnceLock::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn names(&self) -> Vec<String> {
        recipe::available(&self.options.recipes)
    }

    /// The image for `name`, by the configured order.
    pub async fn resolve(&self, name: &str) -> Result<Resolved, ImageError> {
        let recipe = recipe::Recipe::load(&self.options.recipes, name)?;
        let mut tried = Vec::new();
        for source in &self.options.order {
            match source {
                Source::Local => {
                    let Some(online) = &recipe.online else {
                        continue;
                    };
                    tried.push(format!("local {online}"));
                    if let Some(info) = self.engine.inspect(online).await? {
                        return Ok(Resolved {
                            name: name.into(),
                            reference: online.clone(),
                            source: self.local_source(online),
                            recipe_hash: None,
                            changed: false,
                            image_id: info.id,
                            size: info.size,
                        });
                    }
                }
                Source::Pulled => {
                    let Some(online) = &recipe.online else {
                        continue;
                    };
                    if self.options.offline {
                        continue;
                    }
                    tried.push(format!("pull {online}"));
                    let started = Phase::start(self.reporter, "pull");
                    match self.engine.pull(online).await {
                        Ok(()) => {
                            self.record_pulled(online);
                            let info = self.engine.inspect(online).await?.ok_or_else(|| {
                                ImageError::Engine {
                                    action: format!("pull {online}"),
                                    message: "pull finished but the image is not there".into(),
                                }
                            })?;
                            started.finish(format!("{name} {online}"));
                            return Ok(Resolved {
                                name: name.into(),
                                reference: online.clone(),
                                source: Source::Pulled,
                                recipe_hash: None,
                                changed: true,
                                image_id: info.id,
                                size: info.size,
                            });
                        }
                        Err(e) => self.reporter.event(&Event::Warning {
                            message: format!("{name}: {e}; trying the next source"),
                        }),
                    }
                }
                Source::Baked => return self.bake(&recipe).await,
            }
        }
        Err(ImageError::Unresolved {
            name: name.into(),
            tried: if tried.is_empty() {
                "nothing: the order has no source for this image".into()
            } else {
                tried.join(", ")
            },
        })
    }

    /// What `--list` shows for every image, without building or pulling anything.
    pub async fn list(&self) -> Result<Vec<Listed>, ImageError> {
        let base = self.known_base().await?;
        let mut rows = Vec::new();
        for name in self.names() {
            let recipe = recipe::Recipe::load(&self.options.recipes, &name)?;
            if let Some((_, base_sha)) = &base {
                let hash = recipe.hash(base_sha, self.harness_sha(&recipe)?.as_deref());
                let reference = tag_for(&name, &hash);
                if let Some(info) = self.engine.inspect(&reference).await?
                    && info.labels.get(LABEL_HASH) == Some(&hash)
                {
                    rows.push(Listed {
                        name,
                        source: Some(Source::Baked),
                        reference,
                        recipe_hash: Some(hash),
                        size: Some(info.size),
                        created: info.created,
                        note: String::new(),
                    });
                    continue;
                }
            }
            if let Some(online) = &recipe.online
                && let Some(info) = self.engine.inspect(online).await?
            {
                rows.push(Listed {
                    name,
                    source: Some(self.local_source(online)),
                    reference: online.clone(),
                    recipe_hash: None,
                    size: Some(info.size),
                    created: info.created,
                    note: String::new(),
                });
                continue;
            }
            let stale = self.engine.images_with_label(LABEL_IMAGE, &name).await?;
            rows.push(Listed {
                name,
                source: None,
                reference: "-".into(),
                recipe_hash: None,
                size: None,
                created: None,
                note: if base.is_none() {
                    "not baked (no base rootfs yet)".into()
                } else if stale.is_empty() {
                    "not baked".into()
                } else {
                    format!("not baked for this recipe (older: {})", stale.join(", "))
                },
            });
        }
        Ok(rows)
    }

    fn pulled_file(&self) -> PathBuf {
        self.options.cache.join("pulled.txt")
    }

    fn record_pulled(&self, reference: &str) {
        let path = self.pulled_file();
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.lines().any(|l| l == reference) {
            text.push_str(reference);
            text.push('\n');
            let _ = std::fs::create_dir_all(&self.options.cache);
            let _ = std::fs::write(&path, text);
        }
    }

    /// Docker does not remember where an image came from; we remember what we pulled.
    fn local_source(&self, reference: &str) -> Source {
        let pulled = std::fs::read_to_string(self.pulled_file()).unwrap_or_default();
        if pulled.lines().any(|l| l == reference) {
            Source::Pulled
        } else {
            Source::Local
        }
    }

    /// The sha256 of the running harness binary, for recipes that carry it.
    fn harness_sha(&self, recipe: &recipe::Recipe) -> Result<Option<String>, ImageError> {
        if recipe.harness_binary.is_none() {
            return Ok(None);
        }
        if let Some((_, sha)) = self.harness_sha.get() {
            return Ok(Some(sha.clone()));
        }
        let exe = std::env::current_exe().map_err(|e| ImageError::io(Path::new("harness"), e))?;
        let sha = self.binary_sha(&exe)?;
        let _ = self.harness_sha.set((exe, sha.clone()));
        Ok(Some(sha))
    }

    /// sha256 of a (large, often debug) binary, remembered by path, inode, size and mtime so that
    /// an unchanged binary is not hashed again on every call.
    fn binary_sha(&self, exe: &Path) -> Result<String, ImageError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(exe).map_err(|e| ImageError::io(exe, e))?;
        let stamp = format!(
            "{}\t{}\t{}\t{}.{}",
            exe.display(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let memo = self.options.cache.join("harness-binary.sha256");
        if let Ok(text) = std::fs::read_to_string(&memo)
            && let Some((seen, sha)) = text.trim_end().rsplit_once('\t')
            && seen == stamp
            && sha.len() == 64
        {
            return Ok(sha.to_string());
        }
        let sha = crate::fsutil::sha256_file(exe).map_err(|e| ImageError::io(exe, e))?;
        if std::fs::create_dir_all(&self.options.cache).is_ok() {
            let tmp = memo.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, format!("{stamp}\t{sha}\n")).is_ok() {
                let _ = std::fs::rename(&tmp, &memo);
            }
        }
        Ok(sha)
    }

    /// The base image and rootfs hash if they exist already (no build).
    async fn known_base(&self) -> Result<Option<(String, String)>, ImageError> {
        if let Some(b) = self.base.get() {
            return Ok(Some(b.clone()));
        }
        let key = rootfs::key(&rootfs::Mirrors::from_env());
        for reference in self
            .engine
            .images_with_label(engine::LABEL_ROOTFS_KEY, &key)
            .await?
        {
            if let Some(info) = self.engine.inspect(&reference).await?
                && let Some(sha) = info.labels.get(engine::LABEL_ROOTFS_SHA)
            {
                return Ok(Some((format!("harness/base:{}", &sha[..12]), sha.clone())));
            }
        }
        Ok(None)
    }

    /// Ensures the base image exists (debootstrap and import as needed) and returns
    /// (reference, rootfs sha256).
    async fn base(&self) -> Result<(String, String), ImageError> {
        self.base
            .get_or_try_init(|| async {
                if let Some(b) = self.known_base().await?
                    && self.engine.inspect(&b.0).await?.is_some()
                {
                    return Ok(b);
                }
                let mirrors = rootfs::Mirrors::from_env();
                let key = rootfs::key(&mirrors);
                let _lock = lock(&self.options.cache, &format!("rootfs-{}", &key[..16])).await?;
                let rootfs = match rootfs::cached(&self.options.cache, &key) {
                    Some(r) => r,
                    None => {
                        let started = Phase::start(self.reporter, "install-debootstrap");
                        let installed = tokio::task::spawn_blocking(rootfs::ensure_debootstrap)
                            .await
                            .expect("debootstrap install thread")?;
                        started.finish(installed.unwrap_or_else(|| "already installed".into()));
                        self.reporter.event(&Event::PhaseStarted {
                            phase: "debootstrap",
                        });
                        let started = Instant::now();
                        let cache = self.options.cache.clone();
                        let k = key.clone();
                        let (r, boot) = tokio::task::spawn_blocking(move || {
                            rootfs::build(&cache, &k, &mirrors)
                        })
                        .await
                        .expect("rootfs build thread")?;
                        Phase::measured(
                            self.reporter,
                            "debootstrap",
                            boot,
                            format!("{} minbase + security updates", rootfs::SUITE),
                        );
                        Phase::measured(
                            self.reporter,
                            "pack",
                            started.elapsed().saturating_sub(boot),
                            format!("{} ({} MB)", r.tar.display(), file_mb(&r.tar)),
                        );
                        r
                    }
                };
                let reference = format!("harness/base:{}", &rootfs.sha256[..12]);
                if self.engine.inspect(&reference).await?.is_none() {
                    let started = Phase::start(self.reporter, "import");
                    self.engine.import_rootfs(&rootfs, &key, &reference).await?;
                    started.finish(reference.clone());
                }
                Ok((reference, rootfs.sha256))
            })
            .await
            .cloned()
    }

    async fn bake(&self, recipe: &recipe::Recipe) -> Result<Resolved, ImageError> {
        let (base, base_sha) = self.base().await?;
        let harness_sha = self.harness_sha(recipe)?;
        let hash = recipe.hash(&base_sha, harness_sha.as_deref());
        let reference = tag_for(&recipe.name, &hash);
        let present = |info: Option<engine::ImageInfo>| {
            info.filter(|i| i.labels.get(LABEL_HASH) == Some(&hash))
        };
        if let Some(info) = present(self.engine.inspect(&reference).await?) {
            return Ok(self.baked(recipe, &reference, &hash, info, false));
        }
        // The base is debootstrapped here, for this machine's architecture: an engine on
        // another one (DOCKER_HOST elsewhere) could not run what the bake makes.
        let arch = self.engine.architecture().await?;
        if !arch.is_empty() && arch != std::env::consts::ARCH {
            return Err(ImageError::Host {
                what: format!(
                    "image `{}`: the engine runs on {arch}, this machine on {}; the offline bake \
                     makes images for this machine's architecture only",
                    recipe.name,
                    std::env::consts::ARCH
                ),
                hint: format!(
                    "bake on an {arch} machine and move the images with `docker save | docker load`, \
                     or point DOCKER_HOST at an {} engine",
                    std::env::consts::ARCH
                ),
            });
        }
        // One bake per tag at a time, across processes: the second waits, then finds the image.
        let _lock = lock(
            &self.options.cache,
            &format!("{}-{}", recipe.name, &hash[..12]),
        )
        .await?;
        if let Some(info) = present(self.engine.inspect(&reference).await?) {
            self.reporter.event(&Event::Note {
                message: format!("{}: baked meanwhile by another process", recipe.name),
            });
            return Ok(self.baked(recipe, &reference, &hash, info, false));
        }
        let prefix = format!("{BAKE_PREFIX}{}-{}-", recipe.name, &hash[..12]);
        self.engine.sweep_bake_containers(&prefix).await?;
        let path = self.bake_path(&base).await?;
        self.reporter.event(&Event::PhaseStarted { phase: "bake" });
        let log = self.options.cache.join("logs").join(format!(
            "bake-{}-{}.log",
            recipe.name,
            &hash[..12]
        ));
        let job = engine::BakeJob {
            recipe,
            base: &base,
            reference: &reference,
            hash: &hash,
            harness_binary: self.harness_sha.get().map(|(p, _)| p.as_path()),
            log: &log,
        };
        let (install, commit) = match path {
            BakePath::Container => self.engine.bake(&job).await?,
            BakePath::Chroot => self.bake_chroot(&job, &base_sha).await?,
        };
        let info = self
            .engine
            .inspect(&reference)
            .await?
            .ok_or_else(|| ImageError::Engine {
                action: format!("commit {reference}"),
                message: "the commit returned but the image is not there".into(),
            })?;
        Phase::measured(
            self.reporter,
            "bake",
            install,
            format!("{} packages, {} MB", recipe.name, info.size / 1_000_000),
        );
        Phase::measured(self.reporter, "commit", commit, reference.clone());
        Ok(self.baked(recipe, &reference, &hash, info, true))
    }

    /// Container or chroot: forced by HARNESS_BAKE_PATH, else probed once (a container from the
    /// base runs `apt-get update`).
    async fn bake_path(&self, base: &str) -> Result<BakePath, ImageError> {
        self.bake_path
            .get_or_try_init(|| async {
                if let Some(p) = self.options.bake_path {
                    return Ok(p);
                }
                // A successful probe is remembered for a day per base: it costs an apt-get update.
                let memo = self.options.cache.join(format!(
                    "probe-{}.ok",
                    base.rsplit(':').next().unwrap_or("base")
                ));
                let fresh = std::fs::metadata(&memo)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < Duration::from_secs(86_400));
                if fresh {
                    Phase::measured(
                        self.reporter,
                        "probe",
                        Duration::ZERO,
                        format!(
                            "containers reach Debian's mirror (probed within a day: {})",
                            memo.display()
                        ),
                    );
                    return Ok(BakePath::Container);
                }
                let started = Phase::start(self.reporter, "probe");
                let path = match self.engine.probe_mirror(base).await? {
                    Ok(()) => {
                        started.finish(
                            "containers reach Debian's mirror: packages install in bake containers",
                        );
                        let _ = std::fs::write(&memo, "");
                        BakePath::Container
                    }
                    Err(why) => {
                        started.finish("containers cannot reach Debian's mirror: chroot fallback");
                        self.reporter.event(&Event::Warning {
                            message: format!(
                                "apt-get update in a container failed ({why}); baking in a chroot \
                                 on the host, so images will not share the base layer"
                            ),
                        });
                        BakePath::Chroot
                    }
                };
                Ok(path)
            })
            .await
            .copied()
    }

    async fn bake_chroot(
        &self,
        job: &engine::BakeJob<'_>,
        base_sha: &str,
    ) -> Result<(Duration, Duration), ImageError> {
        let key = rootfs::key(&rootfs::Mirrors::from_env());
        let rootfs = rootfs::cached(&self.options.cache, &key)
            .filter(|r| r.sha256 == base_sha)
            .ok_or_else(|| ImageError::Host {
                what: "the chroot bake needs the base rootfs tar, and the cached one is missing or \
                       differs from the base image"
                    .into(),
                hint: format!(
                    "remove the harness/base images (docker rmi) so the base is rebuilt, or clear {}",
                    self.options.cache.join("rootfs").display()
                ),
            })?;
        let payload = engine::payload(job)?;
        let started = Instant::now();
        let (cache, name, log) = (
            self.options.cache.clone(),
            job.recipe.name.clone(),
            job.log.to_path_buf(),
        );
        let task = tokio::task::spawn_blocking(move || {
            chroot::bake(&name, &cache, &rootfs.tar, &payload, &log)
        });
        tokio::pin!(task);
        let packed = tokio::select! {
            r = &mut task => r.expect("chroot bake thread")?,
            _ = tokio::signal::ctrl_c() => {
                // The terminal's SIGINT reached the chroot's processes too; let the thread unmount
                // /proc and /dev before we report the interruption.
                let _ = task.await;
                return Err(ImageError::Interrupted);
            }
        };
        let install = started.elapsed();
        let started = Instant::now();
        let base_labels = self
            .engine
            .inspect(job.base)
            .await?
            .map(|i| i.labels.into_iter().collect::<Vec<_>>())
            .unwrap_or_default();
        let imported = format!("{}-chroot", job.reference);
        self.engine
            .import_tar(
                &packed.tar,
                &imported,
                engine::import_changes(&base_labels, job.hash),
                (LABEL_HASH, job.hash),
            )
            .await?;
        drop(packed);
        self.engine.commit_imported(&imported, job).await?;
        Ok((install, started.elapsed()))
    }

    fn baked(
        &self,
        recipe: &recipe::Recipe,
        reference: &str,
        hash: &str,
        info: engine::ImageInfo,
        changed: bool,
    ) -> Resolved {
        Resolved {
            name: recipe.name.clone(),
            reference: reference.to_string(),
            source: Source::Baked,
            recipe_hash: Some(hash.to_string()),
            changed,
            image_id: info.id,
            size: info.size,
        }
    }
}

fn tag_for(name: &str, hash: &str) -> String {
    format!("harness/{name}:{}", &hash[..12])
}

fn file_mb(path: &Path) -> u64 {
    std::fs::metadata(path)
        .map(|m| m.len() / 1_000_000)
        .unwrap_or(0)
}

/// An exclusive flock on `<cache>/locks/<name>.lock`, held until dropped.
async fn lock(cache: &Path, name: &str) -> Result<std::fs::File, ImageError> {
    let dir = cache.join("locks");
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let path = dir.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ImageError::io(&path, e))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .expect("lock thread")
        .map_err(|e| ImageError::io(&path, e))
}

/// What `harness images` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub list: bool,
    pub bake: bool,
    pub offline: bool,
    pub order: Option<String>,
    pub recipes: Option<PathBuf>,
    pub names: Vec<String>,
}

/// What `harness images` found or made: the images baked (`--bake`), the rows listed (`--list`,
/// or no flag). `cli` renders it ([`text`], or JSON); this module prints nothing.
#[derive(Debug, Default)]
pub struct Report {
    pub baked: Option<Vec<Resolved>>,
    pub listed: Option<Vec<Listed>>,
}

/// Entry point of `harness images`.
pub fn run(request: &Request, reporter: &dyn Reporter) -> Result<Report, Failure> {
    let mut options = Options::from_env()?;
    if let Some(order) = &request.order {
        options.order = Source::parse_order(order)
            .map_err(|m| Failure::new(Exit::BadInput, format!("--order: {m}")))?;
    }
    options.offline |= request.offline;
    if let Some(dir) = &request.recipes {
        options.recipes = RecipeSource::Dir(dir.clone());
    }
    crate::docker::runtime()?.block_on(async {
        let images = Images::connect(options, reporter).await?;
        let names = if request.names.is_empty() {
            images.names()
        } else {
            request.names.clone()
        };
        for n in &names {
            if !images.names().contains(n) {
                return Err(ImageError::UnknownImage { name: n.clone() }.into());
            }
        }
        let mut report = Report::default();
        if request.bake {
            let mut out = Vec::new();
            for n in &names {
                out.push(images.resolve(n).await?);
            }
            report.baked = Some(out);
        }
        if request.list || !request.bake {
            let rows = images.list().await?;
            report.listed = Some(
                rows.into_iter()
                    .filter(|r| names.contains(&r.name))
                    .collect(),
            );
        }
        Ok(report)
    })
}

/// The report as the terminal shows it.
pub fn text(report: &Report) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if let Some(out) = &report.baked {
        for r in out {
            let _ = writeln!(
                o,
                "{:<11} {:<7} {:<32} {:>5} MB  {}",
                r.name,
                r.source,
                r.reference,
                r.size / 1_000_000,
                if r.changed { "built" } else { "unchanged" }
            );
        }
        if out.iter().all(|r| !r.changed) {
            let _ = writeln!(o, "nothing changed: every image is up to date");
        }
    }
    if let Some(rows) = &report.listed {
        let _ = writeln!(
            o,
            "{:<11} {:<7} {:<32} {:<12} {:>8}  AGE",
            "IMAGE", "SOURCE", "REFERENCE", "RECIPE", "SIZE"
        );
        for r in rows {
            let _ = writeln!(
                o,
                "{:<11} {:<7} {:<32} {:<12} {:>8}  {}",
                r.name,
                r.source
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.reference,
                r.recipe_hash.as_deref().map(|h| &h[..12]).unwrap_or("-"),
                r.size
                    .map(|s| format!("{} MB", s / 1_000_000))
                    .unwrap_or_else(|| "-".into()),
                r.created
                    .as_deref()
                    .map(age)
                    .unwrap_or_else(|| r.note.clone()),
            );
        }
    }
    o
}

/// "3m", "2h", "5d" since an RFC 3339 timestamp.
fn age(created: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return created.to_string();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_parses_and_rejects_unknown_sources() {
        assert_eq!(
            Source::parse_order("bake, local").unwrap(),
            vec![Source::Baked, Source::Local]
        );
        assert!(Source::parse_order("local,registry").is_err());
    }

    #[test]
    fn age_is_short() {
        let now = time::OffsetDateTime::now_utc() - time::Duration::hours(3);
        let text = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(age(&text), "3h");
    }
}
