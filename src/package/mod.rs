//! Package: harness.toml → deploy.zip + deploy.zip.sha256, with manifest and fingerprints.
//!
//! Phases: stage (fresh build directory, excludes, secret guard) → vendor (wheel cache) → secrets
//! and database → metadata (build_info.json, DEPLOY_README.md, MANIFEST.json) → zip. Nothing
//! touches the previous deploy.zip until the new one is complete: it is written beside it and
//! renamed over it, so a failed build loses nothing.
pub mod archive;
pub mod backup;
pub mod database;
pub mod fingerprint;
pub mod fresh;
pub mod secrets;
pub mod seed_cache;
pub mod stage;
pub mod vendor;

use std::collections::BTreeMap;
use std::io::Seek;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::model::build::{BuildInfo, PackagedFingerprints};
use crate::model::target::Target;
use archive::{DeterministicZip, FileEntry};

pub const ZIP_NAME: &str = "deploy.zip";
use crate::model::metadata::METADATA_FILES;

pub struct BuildRequest {
    pub target: Target,
    pub seed_demo: bool,
    pub rotate_secrets: bool,
    /// Seed again even when the seed cache has this build's database (`--reseed`).
    pub reseed: bool,
    pub output: Option<PathBuf>,
}

impl BuildRequest {
    /// The build every later stage wants: the target's package at its default place, with the
    /// secrets of its state file, no demo data.
    pub fn standard(target: Target) -> Self {
        Self {
            target,
            seed_demo: false,
            rotate_secrets: false,
            reseed: false,
            output: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fingerprints {
    pub code: String,
    pub schema: Option<String>,
    pub input: String,
}

/// What a build hands to later stages.
#[derive(Debug, Clone)]
pub struct PackageManifest {
    pub target: String,
    pub build_id: String,
    pub zip: PathBuf,
    pub sha256: String,
    pub zip_size: u64,
    pub file_count: usize,
    pub unpacked_size: u64,
    pub fingerprints: Fingerprints,
    pub state_file: PathBuf,
    /// The commit the package was built from, and whether the tree had changes: what the ledger's
    /// record of the build binds it to (`gatekeeper::build`).
    pub git_commit: Option<String>,
    pub dirty: Option<bool>,
    /// True when the wheel cache was cold and pip ran.
    pub vendor_cold: bool,
    pub timings: Vec<(&'static str, Duration)>,
}

impl PackageManifest {
    pub fn summary(&self) -> serde_json::Value {
        let timings: BTreeMap<&str, f64> = self
            .timings
            .iter()
            .map(|(p, d)| (*p, (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0))
            .collect();
        json!({
            "target": self.target,
            "build_id": self.build_id,
            "zip": self.zip,
            "sha256_file": sha256_path(&self.zip),
            "sha256": self.sha256,
            "zip_size": self.zip_size,
            "unpacked_size": self.unpacked_size,
            "files": self.file_count,
            "fingerprints": self.fingerprints,
            "state_file": self.state_file,
            "vendor_cache": if self.vendor_cold { "cold" } else { "warm" },
            "timings_ms": timings,
        })
    }
}

/// `.harness/dist/<target>/deploy.zip`
pub fn default_output(config: &Config, target: Target) -> PathBuf {
    config
        .root
        .join(".harness")
        .join("dist")
        .join(target.as_str())
        .join(ZIP_NAME)
}

/// `deploy.zip.build.json`: facts about the zip that must not be inside it (the input fingerprint).
pub fn sidecar_path(zip: &Path) -> PathBuf {
    let mut s = zip.as_os_str().to_owned();
    s.push(".build.json");
    PathBuf::from(s)
}

pub fn sha256_path(zip: &Path) -> PathBuf {
    let mut s = zip.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// SQL files a build of `target` applies, in order.
pub fn database_inputs(config: &Config, target: Target, seed_demo: bool) -> Vec<PathBuf> {
    let Some(db) = &config.package.database else {
        return Vec::new();
    };
    let db = db.get_ref();
    let mut files: Vec<PathBuf> = db.sql.iter().map(|s| config.path(s.get_ref())).collect();
    files.extend(
        config
            .target(target)
            .extra_sql
            .iter()
            .map(|s| config.path(s.get_ref())),
    );
    if seed_demo {
        files.extend(db.demo_sql.iter().map(|s| config.path(s.get_ref())));
    }
    files
}

/// One file going into the zip, by where its bytes come from.
enum Source {
    Disk(PathBuf),
    Bytes(Vec<u8>),
    /// Index into the vendor cache's ready zip.
    Vendor(usize),
}

pub fn build(
    config: &Config,
    req: &BuildRequest,
    reporter: &dyn Reporter,
) -> Result<PackageManifest, Failure> {
    let t = crate::events::Timings::default();
    let target = req.target;
    let target_cfg = config.target(target);
    let out_zip = match &req.output {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.clone()),
        None => default_output(config, target),
    };
    let harness_dir = config.root.join(".harness");
    let build_root = harness_dir.join("build");
    std::fs::create_dir_all(&build_root).map_err(|e| io_fail(&build_root, e))?;
    // Everything under .harness/ is ours and never belongs in git.
    let _ = std::fs::write(harness_dir.join(".gitignore"), "*\n");
    let build_dir = tempfile::Builder::new()
        .prefix(&format!("{target}-"))
        .tempdir_in(&build_root)
        .map_err(|e| io_fail(&build_root, e))?;
    let build_path = build_dir.path().to_path_buf();

    // Stage.
    let sources = t.phase::<_, Failure>(reporter, "stage", || {
        let files = stage::walk(config)?;
        let staged = stage::stage(config, &files, &build_path)?;
        let n = files.len();
        Ok(((files, staged), format!("{n} files")))
    })?;
    let (sources, staged) = sources;
    let git = crate::git::facts(&config.root);
    let requirements = package_requirements(config)?;
    let input_fp = fingerprint::input(config, target, req.seed_demo, &sources, &git);

    // Vendor.
    let vendor = match &requirements {
        None => None,
        Some(set) => Some(t.phase::<_, Failure>(reporter, "vendor", || {
            let v = vendor::ensure(&vendor::VendorRequest {
                project_root: &config.root,
                requirements: set,
                pythons: config.package.pythons.get_ref(),
                platforms: &config.package.platforms,
            })?;
            let detail = format!(
                "{} wheels, {} files ({})",
                v.lock.wheels.len(),
                v.files.len(),
                if v.cold {
                    "cache was cold: pip ran"
                } else {
                    "warm cache, no pip"
                }
            );
            Ok((v, detail))
        })?),
    };

    let built_at_epoch = built_at(&git);
    let built_at = rfc3339(built_at_epoch);
    let state_path = secrets::state_file_path(&config.root, target);

    // Secrets and database.
    let schema = match &config.package.database {
        None => None,
        Some(db_cfg) => {
            let db_cfg = db_cfg.get_ref();
            Some(t.phase::<_, Failure>(reporter, "database", || {
                // Held from the read to the write, the seed included (see lock_state).
                let _state_lock = secrets::lock_state(&config.root, target)?;
                let state = secrets::load_state(&state_path)?;
                let secrets = secrets::resolve(config, state.as_ref(), req.rotate_secrets);
                // The seed command's environment: part of the seed cache's key either way.
                let seed_env = config
                    .env_layers(crate::config::EnvScope::Target(target))?
                    .merged();
                let db_path = build_path.join(&db_cfg.path);
                if let Some(parent) = db_path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_fail(parent, e))?;
                }
                let facts = secrets::BuildFacts {
                    target,
                    deploy_dir: target_cfg.remote_dir.clone().unwrap_or_else(|| {
                        out_zip
                            .parent()
                            .unwrap_or(Path::new("."))
                            .display()
                            .to_string()
                    }),
                    built_at: built_at.clone(),
                    git_commit: git.short_commit().unwrap_or("unknown").to_string(),
                    git_branch: git.branch.clone().unwrap_or_else(|| "unknown".into()),
                    now: rfc3339(now_epoch()),
                };
                let inputs = seed_cache::SeedInputs {
                    target,
                    seed_demo: req.seed_demo,
                    packaged: &packaged_files(&staged, vendor.as_ref()),
                    argv: &db_cfg.seed_command,
                    files: seed_files(config, db_cfg, target, req.seed_demo)?,
                    env: seed_env.clone().into_iter().collect(),
                    config: &std::fs::read(&config.file).unwrap_or_default(),
                };
                let key = inputs.key();
                let cache = seed_cache::SeedCache::of(&config.root, target);
                let found = match (req.rotate_secrets, req.reseed) {
                    (true, _) => Err(seed_cache::Miss::Forced("--rotate-secrets")),
                    (false, true) => Err(seed_cache::Miss::Forced("--reseed")),
                    (false, false) => cache.lookup(&key, &seed_cache::state_digest(state.as_ref())),
                };
                let miss = match found {
                    Ok(cached) => {
                        std::fs::copy(&cached, &db_path).map_err(|e| io_fail(&cached, e))?;
                        secrets::write_state(&state_path, state, &secrets, &facts)?;
                        let (_, fp) = database::fingerprint_file(&db_path)?;
                        let detail =
                            format!("seed: reused (key {}), schema {}", &key[..12], &fp[..12]);
                        return Ok((fp, detail));
                    }
                    Err(miss) => miss,
                };
                if db_cfg.seed_command.is_empty() {
                    database::apply_sql(
                        &db_path,
                        &database_inputs(config, target, req.seed_demo),
                        &secrets,
                        target,
                    )?;
                    secrets::write_state(&state_path, state, &secrets, &facts)?;
                } else {
                    // The app records what it generates in a copy; it replaces the real file only
                    // after the seed succeeded.
                    let scratch = build_path.join(".harness-state.json");
                    if let Some(s) = &state {
                        crate::fsutil::write_private(&scratch, &archive::pretty_json(s))?;
                    }
                    let mut env: Vec<(String, String)> = seed_env.into_iter().collect();
                    let mut pythonpath = Vec::new();
                    if let Some(v) = &vendor {
                        pythonpath.push(v.tree().display().to_string());
                    }
                    pythonpath.push(build_path.join("src").display().to_string());
                    env.push(("PYTHONPATH".into(), pythonpath.join(":")));
                    env.push(("HARNESS_DB_PATH".into(), db_path.display().to_string()));
                    env.push(("HARNESS_TARGET".into(), target.as_str().into()));
                    env.push(("HARNESS_BUILD_DIR".into(), build_path.display().to_string()));
                    env.push(("HARNESS_STATE_FILE".into(), scratch.display().to_string()));
                    env.push((
                        "HARNESS_SEED_DEMO".into(),
                        if req.seed_demo { "1" } else { "0" }.into(),
                    ));
                    database::run_seed(
                        &db_path,
                        &database::SeedCommand {
                            argv: &db_cfg.seed_command,
                            cwd: &config.root,
                            env,
                        },
                    )?;
                    let recorded = secrets::load_state(&scratch)?;
                    secrets::write_state(&state_path, recorded.or(state), &secrets, &facts)?;
                }
                let left = secrets::load_state(&state_path)?;
                cache.store(&key, &db_path, &seed_cache::state_digest(left.as_ref()))?;
                let (_, fp) = database::fingerprint_file(&db_path)?;
                Ok((
                    fp.clone(),
                    format!("seeded ({miss}; key {}), schema {}", &key[..12], &fp[..12]),
                ))
            })?)
        }
    };

    // Metadata and zip.
    let (manifest_entries, code_fp, build_id, sha256, zip_size) = t.phase::<_, Failure>(reporter, "zip", || {
        let mut entries: BTreeMap<String, (Source, u32)> = BTreeMap::new();
        let mut known: BTreeMap<String, FileEntry> = BTreeMap::new();
        for s in staged {
            let src = match s.bytes {
                Some(b) => Source::Bytes(b),
                None => Source::Disk(build_path.join(&s.entry.path)),
            };
            entries.insert(s.entry.path.clone(), (src, s.entry.mode));
            known.insert(s.entry.path.clone(), s.entry);
        }
        if let Some(v) = &vendor {
            for (i, f) in v.files.iter().enumerate() {
                if entries.contains_key(&f.path) {
                    return Err(Failure::new(
                        Exit::BadInput,
                        format!("`{}` comes both from the sources and from a vendored wheel", f.path),
                    )
                    .hint("vendor/ belongs to the wheels: move or exclude that source file"));
                }
                entries.insert(f.path.clone(), (Source::Vendor(i), f.mode));
                known.insert(f.path.clone(), f.clone());
            }
            entries.insert("vendor.lock".into(), (Source::Bytes(archive::pretty_json(&v.lock)), 0o644));
        }
        for data in &config.package.data_files {
            let p = build_path.join(data);
            if !p.is_file() {
                return Err(Failure::new(Exit::BadInput, format!("declared data file `{data}` was not produced by the build"))
                    .hint("remove it from [package] data_files, or make the sources or the seed create it"));
            }
            let mode = std::fs::metadata(&p).map(|m| archive::normalised_mode(&m)).unwrap_or(0o644);
            entries.insert(data.clone(), (Source::Disk(p), mode));
        }
        for reserved in METADATA_FILES {
            if entries.contains_key(reserved) {
                return Err(Failure::new(Exit::BadInput, format!("the sources contain `{reserved}`, which harness generates"))
                    .hint("rename or exclude that file"));
            }
        }

        // Hash what is not hashed yet (vendor entries come hashed from the cache).
        let data_set: std::collections::BTreeSet<&str> = config.package.data_files.iter().map(String::as_str).collect();
        let mut listed: Vec<FileEntry> = Vec::with_capacity(entries.len() + 3);
        for (path, (src, mode)) in &entries {
            let entry = match src {
                _ if known.contains_key(path) => known[path].clone(),
                Source::Vendor(_) => unreachable!("every vendor entry is in `known`"),
                Source::Bytes(b) => FileEntry::of(path.clone(), b, *mode),
                Source::Disk(p) => {
                    let bytes = std::fs::read(p).map_err(|e| io_fail(p, e))?;
                    FileEntry::of(path.clone(), &bytes, *mode)
                }
            };
            listed.push(entry);
        }
        let code_fp = fingerprint::code(
            listed.iter().filter(|e| !data_set.contains(e.path.as_str())).map(|e| (e.path.as_str(), e.sha256.as_str())),
        );
        let fps = Fingerprints { code: code_fp.clone(), schema: schema.clone(), input: input_fp.clone() };
        let build_id = build_id(target, &fps, built_at_epoch);
        // The input fingerprint hashes mtimes, so it differs between two clones of one commit;
        // inside the zip it would break reproducibility. It lives in the sidecar instead.
        let build_info = BuildInfo {
            build_id: build_id.clone(),
            built_at: built_at.clone(),
            git_commit: git.commit.clone(),
            git_commit_short: git.short_commit().map(str::to_string),
            git_branch: git.branch.clone(),
            git_dirty: git.dirty,
            target: target.as_str().to_string(),
            pythons: config.package.pythons.get_ref().clone(),
            platforms: config.package.platforms.clone(),
            fingerprints: PackagedFingerprints {
                code: Some(fps.code.clone()),
                schema: fps.schema.clone(),
                scheme: fingerprint::SCHEME.into(),
            },
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
        }
        .to_bytes();
        let readme = deploy_readme(config, target, &build_id, &built_at, &git, &fps)?;
        // The copies an app reads from its own folder: the same bytes, outside the code
        // fingerprint (computed above) like the original, listed in MANIFEST.json.
        for copy in &config.package.build_info_copies {
            if entries.contains_key(copy.get_ref()) {
                return Err(config
                    .error_at(copy.span(), format!("[package] build_info_copies: the sources already have `{}`", copy.get_ref()))
                    .hint("harness writes that file: remove or exclude the source file, or name another path"));
            }
            listed.push(FileEntry::of(copy.get_ref().clone(), &build_info, 0o644));
            entries.insert(copy.get_ref().clone(), (Source::Bytes(build_info.clone()), 0o644));
        }
        for (name, bytes) in [("build_info.json", build_info), ("DEPLOY_README.md", readme)] {
            listed.push(FileEntry::of(name.into(), &bytes, 0o644));
            entries.insert(name.into(), (Source::Bytes(bytes), 0o644));
        }
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = archive::pretty_json(&json!({ "files": listed }));
        entries.insert("MANIFEST.json".into(), (Source::Bytes(manifest), 0o644));

        let (sha, size) = write_zip(&out_zip, &entries, vendor.as_ref())?;
        let sidecar = json!({
            "build_id": build_id, "target": target, "sha256": sha, "fingerprints": fps,
            "harness_version": env!("CARGO_PKG_VERSION"),
        });
        let sidecar_path = sidecar_path(&out_zip);
        std::fs::write(&sidecar_path, archive::pretty_json(&sidecar)).map_err(|e| io_fail(&sidecar_path, e))?;
        let detail = format!("{} entries, {} bytes", entries.len(), size);
        Ok(((listed, code_fp, build_id, sha, size), detail))
    })?;

    if std::env::var_os("HARNESS_KEEP_BUILD_DIR").is_some() {
        let kept = build_dir.keep();
        reporter.event(&Event::Note {
            message: format!("build directory kept at {}", kept.display()),
        });
    }
    let unpacked_size = manifest_entries.iter().map(|e| e.size).sum::<u64>();
    Ok(PackageManifest {
        target: target.to_string(),
        build_id,
        zip: out_zip,
        sha256,
        zip_size,
        file_count: manifest_entries.len() + 1,
        unpacked_size,
        fingerprints: Fingerprints {
            code: code_fp,
            schema,
            input: input_fp,
        },
        state_file: state_path,
        git_commit: git.commit.clone(),
        dirty: git.dirty,
        vendor_cold: vendor.as_ref().is_some_and(|v| v.cold),
        timings: t.list(),
    })
}

/// Writes the zip next to its destination, then renames it (and its .sha256) into place.
fn write_zip(
    out: &Path,
    entries: &BTreeMap<String, (Source, u32)>,
    vendor: Option<&vendor::Vendor>,
) -> Result<(String, u64), Failure> {
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_fail(dir, e))?;
    let zip_err = |e: zip::result::ZipError| {
        Failure::new(
            Exit::Environment,
            format!("cannot write {}: {e}", out.display()),
        )
    };
    let mut vendor_zip = match vendor {
        Some(v) => {
            let f = std::fs::File::open(v.zip()).map_err(|e| io_fail(&v.zip(), e))?;
            Some(
                zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| {
                    Failure::new(
                        Exit::Environment,
                        format!(
                            "the wheel cache's vendor.zip is damaged ({}): {e}",
                            v.zip().display()
                        ),
                    )
                    .hint(format!("remove {} and build again", v.dir.display()))
                })?,
            )
        }
        None => None,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".deploy-")
        .suffix(".zip.tmp")
        .tempfile_in(dir)
        .map_err(|e| io_fail(dir, e))?;
    let file = tmp.reopen().map_err(|e| io_fail(tmp.path(), e))?;
    let mut zip = DeterministicZip::new(std::io::BufWriter::with_capacity(1 << 20, file));
    for (path, (src, mode)) in entries {
        match src {
            Source::Disk(p) => {
                zip.add_file(path, p, *mode).map_err(zip_err)?;
            }
            Source::Bytes(b) => zip.add_bytes(path, b, *mode).map_err(zip_err)?,
            Source::Vendor(i) => {
                let vz = vendor_zip
                    .as_mut()
                    .expect("vendor entries come with a vendor zip");
                zip.raw_copy(vz, *i).map_err(zip_err)?;
            }
        }
    }
    let mut w = zip.finish().map_err(zip_err)?;
    let size = w.stream_position().map_err(|e| io_fail(tmp.path(), e))?;
    let f = w
        .into_inner()
        .map_err(|e| io_fail(tmp.path(), e.into_error()))?;
    f.sync_all().map_err(|e| io_fail(tmp.path(), e))?;
    drop(f);
    let sha = sha256_file(tmp.path())?;
    let file_name = out.file_name().unwrap_or_default().to_string_lossy();
    let sha_line = format!("{sha}  {file_name}\n");
    let sha_tmp = dir.join(format!(".{file_name}.sha256.tmp-{}", std::process::id()));
    std::fs::write(&sha_tmp, sha_line).map_err(|e| io_fail(&sha_tmp, e))?;
    // Secret: the database inside holds the app's secret key and the admin's password hash.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600));
    tmp.persist(out).map_err(|e| io_fail(out, e.error))?;
    std::fs::rename(&sha_tmp, sha256_path(out)).map_err(|e| io_fail(&sha256_path(out), e))?;
    Ok((sha, size))
}

/// `(package path, sha256)` of every packaged file the build has so far (sources and wheels), in
/// path order: what the seed cache keys on for "the code".
fn packaged_files(
    staged: &[stage::Staged],
    vendor: Option<&vendor::Vendor>,
) -> Vec<(String, String)> {
    let mut all: BTreeMap<String, String> = staged
        .iter()
        .map(|s| (s.entry.path.clone(), s.entry.sha256.clone()))
        .collect();
    if let Some(v) = vendor {
        all.extend(v.files.iter().map(|f| (f.path.clone(), f.sha256.clone())));
    }
    all.into_iter().collect()
}

/// The project files a seed reads beyond the package: every argv item that names one (a seed
/// wrapper outside `sources`), the `seed_inputs` globs, the SQL files.
fn seed_files(
    config: &Config,
    db: &crate::config::DatabaseConfig,
    target: Target,
    seed_demo: bool,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let root = &config.root;
    let mut paths: Vec<PathBuf> = db
        .seed_command
        .iter()
        .map(|a| crate::fsutil::normalize_lexically(&root.join(a)))
        .filter(|p| p.starts_with(root) && p.is_file())
        .collect();
    if !db.seed_inputs.is_empty() {
        let mut b = globset::GlobSetBuilder::new();
        for g in &db.seed_inputs {
            b.add(globset::Glob::new(g.get_ref()).map_err(|e| {
                Failure::new(
                    Exit::BadInput,
                    format!(
                        "{}: [package.database] seed_inputs `{}`: {e}",
                        config.file.display(),
                        g.get_ref()
                    ),
                )
            })?);
        }
        let set = b
            .build()
            .map_err(|e| Failure::new(Exit::BadInput, e.to_string()))?;
        let walk = walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(n == ".git" || n == ".harness" || n == "target" || n.starts_with(".venv"))
        });
        for e in walk
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            if let Ok(rel) = e.path().strip_prefix(root)
                && set.is_match(rel)
            {
                paths.push(e.path().to_path_buf());
            }
        }
    }
    paths.extend(database_inputs(config, target, seed_demo));
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).map_err(|e| io_fail(&p, e))?;
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            Ok((rel, bytes))
        })
        .collect()
}

pub fn sha256_file(path: &Path) -> Result<String, Failure> {
    crate::fsutil::sha256_file(path).map_err(|e| io_fail(path, e))
}

fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(Exit::Environment, format!("{}: {e}", path.display()))
        .hint("check free disk space and permissions")
}

/// `SOURCE_DATE_EPOCH`, else the commit time, else now (then the zip cannot be reproduced).
fn built_at(git: &crate::git::GitFacts) -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .or(git.commit_time)
        .unwrap_or_else(now_epoch)
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The build id a package with these fingerprints, target and build time must carry.
pub fn expected_build_id(
    target: Target,
    code: &str,
    schema: Option<&str>,
    built_at: i64,
) -> String {
    build_id(
        target,
        &Fingerprints {
            code: code.into(),
            schema: schema.map(Into::into),
            input: String::new(),
        },
        built_at,
    )
}

/// Deterministic: the same code, schema, target and time give the same id, and any change to the
/// code or schema gives a new one (deploy verification relies on that).
fn build_id(target: Target, fps: &Fingerprints, built_at: i64) -> String {
    use sha2::{Digest, Sha256};
    let stamp = time::OffsetDateTime::from_unix_timestamp(built_at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_default();
    let digest = Sha256::digest(
        format!(
            "{target}\0{}\0{}",
            fps.code,
            fps.schema.as_deref().unwrap_or("")
        )
        .as_bytes(),
    );
    format!("{stamp}-{}", &hex::encode(digest)[..12])
}

fn deploy_readme(
    config: &Config,
    target: Target,
    build_id: &str,
    built_at: &str,
    git: &crate::git::GitFacts,
    fps: &Fingerprints,
) -> Result<Vec<u8>, Failure> {
    let template = match &config.package.deploy_readme {
        Some(p) => std::fs::read_to_string(config.path(p.get_ref())).map_err(|e| {
            config.error_at(p.span(), format!("cannot read `{}`: {e}", p.get_ref()))
        })?,
        None => include_str!("DEPLOY_README.template.md").to_string(),
    };
    let dirty_note = match git.dirty {
        Some(true) => " (with uncommitted changes)",
        Some(false) => "",
        None => " (not a git checkout)",
    };
    let vars = [
        ("build_id", build_id),
        ("target", target.as_str()),
        ("built_at", built_at),
        ("git_commit", git.commit.as_deref().unwrap_or("unknown")),
        ("dirty_note", dirty_note),
        ("code_fingerprint", fps.code.as_str()),
        (
            "schema_fingerprint",
            fps.schema.as_deref().unwrap_or("none"),
        ),
        ("harness_version", env!("CARGO_PKG_VERSION")),
    ];
    let mut text = template;
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    Ok(text.into_bytes())
}

/// `[package] requirements`, resolved with every file it includes.
fn package_requirements(
    config: &Config,
) -> Result<Option<crate::requirements::RequirementSet>, Failure> {
    config
        .package
        .requirements
        .as_ref()
        .map(|r| crate::requirements::of_config(config, "[package] requirements", r))
        .transpose()
}
