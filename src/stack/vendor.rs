//! The package's `vendor/` folder in a cache volume, compiled to bytecode once, mounted
//! read-only into the app container of every run whose package carries the same vendor files.
//!
//! Why: `vendor/` is nearly all of a package (the example: 600 of its 630 files, 16 of its 16.3
//! MB). Copying it into every run's volume, and Python compiling Flask and its friends again at
//! every start (the package holds no bytecode, and a fresh volume keeps none), were a second of
//! each run's start on two cores. The app's own files are still copied per run, from the zip.
//!
//! Key: the sha256 of the app image, the owner, and every vendor entry's path, mode, size and
//! CRC-32 from the zip's central directory. The zip library checks each entry's CRC-32 while
//! the cache is filled, so the cached bytes are the bytes the key names. Two vendor trees that
//! differ but agree on every CRC-32 and size would share a cache; that takes crafting, not an
//! accident, and the run is the developer's own package. The bytecode is timestamp-checked
//! against the sources' fixed zip time, which is sound because nothing can change the sources:
//! the app sees the volume read-only.
//!
//! A cache is complete once its index volume exists (`harness-cache-vendor-<key>`), whose label
//! names the data volume. The data volume is filled first, so an interrupted fill leaves only a
//! data volume without an index, which a later fill removes.
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions,
};
use sha2::{Digest, Sha256};

use super::upload::{Source, Upload, ZipPart};
use super::{Engine, LABEL_CACHE, LABEL_SERVICE, RunIdentity, StackError, docker_err};

/// The folder of a package that the cache holds.
pub const VENDOR: &str = "vendor/";

/// What to do when the app writes into its `vendor/` ([`writes_into_cache`]).
pub const WRITES_INTO_CACHE_HINT: &str = "the app writes into its own vendor/, which `up` and \
     `test` mount read-only from a compiled cache; set `vendor_cache = false` under [stack] in \
     harness.toml (or HARNESS_VENDOR_CACHE=0 for one command) to give it a writable copy \
     (docs/test.md, \"The app's folder\")";

/// Whether an app's log line is a write into the read-only cache failing: Python's
/// `OSError: [Errno 30] Read-only file system: '/srv/app/vendor/…'`. Production's `vendor/` is
/// writable, so such a failure is the test run's own and must say how to turn the cache off.
pub fn writes_into_cache(line: &str) -> bool {
    line.contains("Read-only file system")
        && line.contains(&format!("{}/{VENDOR}", super::APP_ROOT))
}

/// Data volumes carry their key here; index volumes carry the data volume's name.
const LABEL_VENDOR: &str = "harness.vendor";
const LABEL_VENDOR_DATA: &str = "harness.vendor.data";
/// Complete caches kept when a new one is filled (one per requirements set in use).
const KEEP: usize = 6;
/// A data volume without an index this old is a fill that was interrupted.
const ORPHAN_AGE: Duration = Duration::from_secs(15 * 60);
const FILL_LIMIT: Duration = Duration::from_secs(300);

/// Compiles every module under the mounted cache, as the owner. A file that does not compile
/// (some wheels ship test data that is not valid Python) is skipped as Python itself would at
/// import; anything else (a full disk) fails the fill.
const COMPILE: &str = "import compileall, sys\n\
compileall.compile_dir(sys.argv[1], quiet=2, workers=0)\n\
sys.exit(0)\n";

/// A package's vendor files, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorSet {
    /// 16 hex digits of the sha256 described in the module docs.
    pub key: String,
    pub files: usize,
    pub bytes: u64,
}

impl VendorSet {
    /// The vendor files of the package `zip`, for the app image `image` and files owned by
    /// `owner`; `None` when the package has no `vendor/`.
    pub fn of(
        zip: &Path,
        image: &str,
        owner: (u32, u32),
    ) -> Result<Option<VendorSet>, std::io::Error> {
        let file = std::fs::File::open(zip)?;
        let mut archive =
            zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(std::io::Error::other)?;
        let mut entries = Vec::new();
        for i in 0..archive.len() {
            let e = archive.by_index_raw(i).map_err(std::io::Error::other)?;
            let name = e.name().map_err(std::io::Error::other)?.into_owned();
            if name.starts_with(VENDOR) && e.is_file() {
                entries.push((name, e.unix_mode().unwrap_or(0o644), e.size(), e.crc32()));
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        entries.sort();
        let mut h = Sha256::new();
        h.update(b"harness-vendor-cache-v1\0");
        h.update(image.as_bytes());
        h.update(format!("\0{}:{}\0", owner.0, owner.1).as_bytes());
        for (name, mode, size, crc) in &entries {
            h.update(format!("{name}\0{mode:o}\0{size}\0{crc:08x}\n").as_bytes());
        }
        let key: String = h
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Some(VendorSet {
            key,
            files: entries.len(),
            bytes: entries.iter().map(|e| e.2).sum(),
        }))
    }

    /// The index volume's name without the cache prefix.
    fn index(&self) -> String {
        format!("vendor-{}", self.key)
    }
}

/// What the app container mounts at `vendor/`: a cache volume's name without the
/// `harness-cache-` prefix (see `MountSpec::Volume` of a cache volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorVolume {
    pub name: String,
    /// Filled by this run (the first for these vendor files), or found.
    pub filled: bool,
}

/// One fill at a time in this process: the workers of one run share the first one's cache.
static FILLING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Engine {
    /// The complete cache of `set`, filled from `zip` (as the app image `image`, files owned
    /// by `owner`) when there is none yet.
    pub async fn vendor_volume(
        &self,
        run: &RunIdentity,
        zip: &Path,
        image: &str,
        set: &VendorSet,
        owner: (u32, u32),
    ) -> Result<VendorVolume, StackError> {
        let _one = FILLING.lock().await;
        if let Some(name) = self.complete_vendor_cache(set).await? {
            return Ok(VendorVolume {
                name,
                filled: false,
            });
        }
        let name = format!("{}-{}", set.index(), run.id);
        let full = super::engine::cache_volume(&name);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(full.clone()),
                labels: Some(HashMap::from([
                    (LABEL_CACHE.to_string(), "true".to_string()),
                    (LABEL_VENDOR.to_string(), set.key.clone()),
                ])),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("create volume {full}")))?;
        if let Err(e) = self.fill_vendor(run, zip, image, &full, owner).await {
            let _ = self
                .docker
                .remove_volume(&full, Some(RemoveVolumeOptions { force: true }))
                .await;
            return Err(e);
        }
        let index = super::engine::cache_volume(&set.index());
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(index.clone()),
                labels: Some(HashMap::from([
                    (LABEL_CACHE.to_string(), "true".to_string()),
                    (LABEL_VENDOR_DATA.to_string(), name.clone()),
                ])),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("create volume {index}")))?;
        self.prune_vendor_caches().await;
        // Another process may have completed the same key meanwhile; its index wins.
        let name = self.complete_vendor_cache(set).await?.unwrap_or(name);
        Ok(VendorVolume { name, filled: true })
    }

    /// The data volume the index of `set` names, when both exist.
    async fn complete_vendor_cache(&self, set: &VendorSet) -> Result<Option<String>, StackError> {
        let index = super::engine::cache_volume(&set.index());
        let data = match self.docker.inspect_volume(&index).await {
            Ok(v) => v.labels.get(LABEL_VENDOR_DATA).cloned(),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(docker_err(format!("inspect volume {index}"))(e)),
        };
        let Some(data) = data else { return Ok(None) };
        match self
            .docker
            .inspect_volume(&super::engine::cache_volume(&data))
            .await
        {
            Ok(_) => Ok(Some(data)),
            // The data went (`docker volume rm`): the index is stale and is replaced.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                let _ = self
                    .docker
                    .remove_volume(&index, Some(RemoveVolumeOptions { force: true }))
                    .await;
                Ok(None)
            }
            Err(e) => Err(docker_err("inspect the vendor cache")(e)),
        }
    }

    /// Copies the package's `vendor/` into the volume `volume` through a container of the app
    /// image (labelled with the run, so a crash leaves nothing a sweep misses) and compiles it.
    async fn fill_vendor(
        &self,
        run: &RunIdentity,
        zip: &Path,
        image: &str,
        volume: &str,
        owner: (u32, u32),
    ) -> Result<(), StackError> {
        let name = format!("{}-vendor-cache", run.project);
        let mut labels = run.labels();
        labels.insert(LABEL_SERVICE.into(), "vendor-cache".into());
        let target = format!("{}/vendor", super::APP_ROOT);
        let created = self
            .create_named(
                &name,
                ContainerCreateBody {
                    image: Some(image.to_string()),
                    entrypoint: Some(vec![
                        "python3".into(),
                        "-c".into(),
                        COMPILE.into(),
                        target.clone(),
                    ]),
                    user: Some(format!("{}:{}", owner.0, owner.1)),
                    labels: Some(labels),
                    network_disabled: Some(true),
                    host_config: Some(HostConfig {
                        network_mode: Some("none".into()),
                        mounts: Some(vec![Mount {
                            typ: Some(MountType::VOLUME),
                            source: Some(volume.to_string()),
                            target: Some(target.clone()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await?;
        let result = async {
            self.upload(
                &created.id,
                &name,
                vec![Upload {
                    target,
                    source: Source::Zip {
                        path: zip.to_path_buf(),
                        part: ZipPart::Only(VENDOR.into()),
                    },
                    owner,
                }],
            )
            .await?;
            self.docker
                .start_container(&created.id, None::<StartContainerOptions>)
                .await
                .map_err(docker_err(format!("start container {name}")))?;
            let reason =
                match tokio::time::timeout(FILL_LIMIT, self.exit_code(&created.id, &name)).await {
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(code)) => format!("the compiler exited {code}"),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => format!("compiling vendor/ took over {} s", FILL_LIMIT.as_secs()),
                };
            Err(StackError::Docker {
                action: "compile vendor/ into its cache".into(),
                reason,
            })
        }
        .await;
        let removed = self
            .docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        result?;
        removed.map_err(docker_err(format!("remove container {name}")))
    }

    /// Removes interrupted fills, and complete caches beyond the newest [`KEEP`] that no
    /// container uses (the engine refuses to remove a volume in use). Best effort.
    async fn prune_vendor_caches(&self) {
        let list = |label: &str| {
            let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
            self.docker.list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
        };
        let (Ok(data), Ok(index)) = tokio::join!(list(LABEL_VENDOR), list(LABEL_VENDOR_DATA))
        else {
            return;
        };
        let data = data.volumes.unwrap_or_default();
        let mut index = index.volumes.unwrap_or_default();
        let named = |v: &bollard::models::Volume| {
            v.labels
                .get(LABEL_VENDOR_DATA)
                .map(|d| super::engine::cache_volume(d))
        };
        let referenced: Vec<String> = index.iter().filter_map(named).collect();
        let now = now_secs();
        for v in &data {
            let old = created_secs(v.created_at.as_deref())
                .is_some_and(|t| now.saturating_sub(t) > ORPHAN_AGE.as_secs());
            if old && !referenced.contains(&v.name) {
                let _ = self
                    .docker
                    .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                    .await;
            }
        }
        // Newest first by creation; RFC 3339 times of one engine sort as text.
        index.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        for v in index.iter().skip(KEEP) {
            if let Some(d) = named(v)
                && self
                    .docker
                    .remove_volume(&d, None::<RemoveVolumeOptions>)
                    .await
                    .is_ok()
            {
                let _ = self
                    .docker
                    .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                    .await;
            }
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds of the engine's RFC 3339 `CreatedAt` (`2026-12-07T05:01:12Z`, with a fraction or
/// a zone offset too); `None` when it does not parse.
fn created_secs(at: Option<&str>) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(at?, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_into_the_cache_is_told_from_other_read_only_errors() {
        for line in [
            "OSError: [Errno 30] Read-only file system: '/srv/app/vendor/ply/parsetab.py'",
            "App 81 output: PermissionError: [Errno 30] Read-only file system: '/srv/app/vendor/x'",
        ] {
            assert!(writes_into_cache(line), "{line}");
        }
        for line in [
            "OSError: [Errno 30] Read-only file system: '/srv/app/data/app.db'",
            "GET /srv/app/vendor/ 404",
            "",
        ] {
            assert!(!writes_into_cache(line), "{line}");
        }
    }

    fn package(dir: &Path, files: &[(&str, &[u8])]) -> std::path::PathBuf {
        let path = dir.join("deploy.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, bytes) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn the_key_follows_the_vendor_files_the_image_and_the_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let base: &[(&str, &[u8])] = &[
            ("passenger_wsgi.py", b"app = 1\n"),
            ("vendor/flask/__init__.py", b"x = 1\n"),
            ("vendor/jinja2/__init__.py", b"y = 2\n"),
        ];
        let key = |files: &[(&str, &[u8])], image: &str, owner| {
            let sub = tempfile::tempdir_in(d.path()).unwrap();
            let zip = package(sub.path(), files);
            VendorSet::of(&zip, image, owner).unwrap().unwrap()
        };
        let a = key(base, "harness/app:1", (1000, 1000));
        assert_eq!(a.files, 2);
        assert_eq!(a.bytes, 12);
        assert_eq!(a.key.len(), 16);
        // The app's own code is not part of it.
        let mut app_edit = base.to_vec();
        app_edit[0] = ("passenger_wsgi.py", b"app = 2\n");
        assert_eq!(key(&app_edit, "harness/app:1", (1000, 1000)).key, a.key);
        // One vendor byte, the image or the owner makes another cache.
        let mut vendor_edit = base.to_vec();
        vendor_edit[2] = ("vendor/jinja2/__init__.py", b"y = 3\n");
        assert_ne!(key(&vendor_edit, "harness/app:1", (1000, 1000)).key, a.key);
        assert_ne!(key(base, "harness/app:2", (1000, 1000)).key, a.key);
        assert_ne!(key(base, "harness/app:1", (0, 0)).key, a.key);
        // No vendor/: nothing to cache.
        let sub = tempfile::tempdir_in(d.path()).unwrap();
        let zip = package(sub.path(), &base[..1]);
        assert_eq!(VendorSet::of(&zip, "i", (0, 0)).unwrap(), None);
    }

    #[test]
    fn engine_times_parse_to_unix_seconds() {
        assert_eq!(
            created_secs(Some("1980-01-01T00:00:00Z")),
            Some(315_532_800)
        );
        assert_eq!(
            created_secs(Some("2026-12-07T05:01:12.778888354Z")),
            Some(1_796_619_672)
        );
        assert_eq!(created_secs(Some("garbage")), None);
    }
}
