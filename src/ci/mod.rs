//! `harness ci github`: the CI pipeline that runs the suite in shards, signs each shard's run
//! record, and asks the gate with all of them (docs/scale.md).
//!
//! What goes into the workflow is decided here, from the config and the repository (`Spec`);
//! `github` only renders it. The same config gives the same bytes, which is what `--check`
//! compares.
pub mod github;

use std::path::{Path, PathBuf};

use crate::config::{Config, HarnessSource, MAX_SHARDS};
use crate::error::{Exit, Failure};

/// Everything the workflow depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub shards: u32,
    pub deploy: bool,
    pub branch: String,
    pub runs_on: String,
    pub harness: HarnessSource,
    /// The project's folder relative to the repository's top ("" at the top): the jobs' working
    /// directory.
    pub workdir: String,
    /// What keys the wheel cache, relative to the repository's top: harness.toml (Pythons,
    /// platforms) and every requirements file pip reads, includes too.
    pub requirement_files: Vec<String>,
}

/// Where the two files go.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub workflow: PathBuf,
    pub policy: PathBuf,
}

/// What `generate` wrote or found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generated {
    pub workflow: PathBuf,
    pub policy: PathBuf,
    pub shards: u32,
    pub deploy: bool,
    /// False when the files already held these bytes.
    pub changed: bool,
    /// Things the user still has to do for the pipeline to work (a trusted key, secrets).
    pub todo: Vec<String>,
}

/// `--check`'s finding: the committed files against what would be generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stale {
    pub file: PathBuf,
    /// A unified diff, committed → generated.
    pub diff: String,
}

impl Spec {
    /// The spec for this project; `shards` overrides `[ci] shards`.
    pub fn of(config: &Config, shards: Option<u32>) -> Result<Spec, Failure> {
        let harness = config.ci.harness.clone().ok_or_else(|| {
            Failure::new(
                Exit::BadInput,
                format!(
                    "{}: [ci] harness is not set: the runners need to know where to install harness from",
                    config.file.display()
                ),
            )
            .hint(
                "add [ci] harness = { git = \"https://github.com/<owner>/harness\", rev = \"<commit>\" } \
                 to harness.toml, with the commit you run (`git rev-parse HEAD` in harness's checkout)",
            )
        })?;
        let shards = shards.unwrap_or(config.ci.shards);
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(
                Failure::new(Exit::BadInput, format!("--shards {shards} is out of range")).hint(
                    format!("use 1 to {MAX_SHARDS} (GitHub's most jobs per matrix)"),
                ),
            );
        }
        if !config.targets.contains_key("webhosting") {
            return Err(Failure::new(
                Exit::BadInput,
                format!(
                    "{}: no [targets.webhosting]: the workflow's gate job asks `harness gate webhosting`",
                    config.file.display()
                ),
            )
            .hint("add [targets.webhosting] (docs/config.md), then generate again"));
        }
        let top = crate::git::top_level(&config.root).ok_or_else(|| {
            Failure::new(
                Exit::BadInput,
                format!("{} is not in a git repository", config.root.display()),
            )
            .hint("the workflow runs on a checkout of the repository: `git init` and commit the project first")
        })?;
        let top = top.canonicalize().unwrap_or(top);
        let relative = |p: &Path| -> Result<String, Failure> {
            let abs = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            let rel = abs.strip_prefix(&top).map_err(|_| {
                Failure::new(
                    Exit::BadInput,
                    format!(
                        "{} is outside the repository {}",
                        p.display(),
                        top.display()
                    ),
                )
                .hint("keep the project's files inside its repository")
            })?;
            let text = rel.to_string_lossy().into_owned();
            workflow_safe(&text, p)?;
            Ok(text)
        };
        let workdir = relative(&config.root)?;
        let mut requirement_files = vec![relative(&config.file)?];
        for (key, value) in [
            ("[package] requirements", &config.package.requirements),
            ("[test] requirements", &config.test.requirements),
        ] {
            if let Some(v) = value {
                let set = crate::requirements::of_config(config, key, v)?;
                for f in &set.files {
                    let rel = relative(&f.path)?;
                    if !requirement_files.contains(&rel) {
                        requirement_files.push(rel);
                    }
                }
            }
        }
        Ok(Spec {
            shards,
            deploy: config.ci.deploy,
            branch: config.ci.branch.clone(),
            runs_on: config.ci.runs_on.clone(),
            harness,
            workdir,
            requirement_files,
        })
    }
}

/// A path goes into the workflow bare (YAML scalars, `hashFiles('…')`), so it may hold only
/// characters that mean nothing to YAML, expressions or the shell.
fn workflow_safe(text: &str, path: &Path) -> Result<(), Failure> {
    let ok = !text.starts_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::BadInput,
            format!(
                "{}: the path has characters a workflow file cannot carry unquoted",
                path.display()
            ),
        )
        .hint("rename it to letters, digits, `-`, `_`, `.` and `/`"))
    }
}

impl Outputs {
    /// `.github/workflows/harness.yml` at the repository's top, or `file`; the zizmor policy goes
    /// to `.github/zizmor.yml` when the workflow is in `.github/workflows/`, else beside it as
    /// `zizmor.yml`.
    pub fn new(config: &Config, file: Option<&Path>) -> Outputs {
        let workflow = match file {
            Some(f) => std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf()),
            None => crate::git::top_level(&config.root)
                .unwrap_or_else(|| config.root.clone())
                .join(".github/workflows/harness.yml"),
        };
        let parent = workflow.parent().unwrap_or(Path::new(".")).to_path_buf();
        let policy = if parent.file_name().is_some_and(|n| n == "workflows")
            && parent
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == ".github")
        {
            parent.parent().unwrap().join("zizmor.yml")
        } else {
            parent.join("zizmor.yml")
        };
        Outputs { workflow, policy }
    }

    fn pairs(&self, spec: &Spec) -> [(PathBuf, String); 2] {
        [
            (self.workflow.clone(), github::workflow(spec)),
            (self.policy.clone(), github::zizmor_policy()),
        ]
    }
}

/// What the user still has to set up for the generated pipeline to open the gate.
fn todo(config: &Config, spec: &Spec) -> Vec<String> {
    let mut todo = Vec::new();
    if config.gate.trusted_keys.is_empty() {
        todo.push(format!(
            "the gate job stays shut until a key signs the records: `harness runs keygen ci.pem`, add the \
             public key it prints to [gate] trusted_keys, and store ci.pem as the repository secret {}",
            github::SIGNING_SECRET
        ));
    }
    if spec.deploy {
        todo.push(format!(
            "the deploy job needs a GitHub environment `webhosting` with required reviewers and the secrets {} \
             (docs/scale.md)",
            github::DEPLOY_SECRETS.join(", ")
        ));
    }
    todo
}

/// Writes both files (only when their bytes change).
pub fn generate(config: &Config, spec: &Spec, outputs: &Outputs) -> Result<Generated, Failure> {
    let mut changed = false;
    for (path, text) in outputs.pairs(spec) {
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Failure::new(
                    Exit::Environment,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644)?;
        changed = true;
    }
    Ok(Generated {
        workflow: outputs.workflow.clone(),
        policy: outputs.policy.clone(),
        shards: spec.shards,
        deploy: spec.deploy,
        changed,
        todo: todo(config, spec),
    })
}

/// The files whose bytes differ from what `generate` would write (a missing file is all added).
pub fn check(spec: &Spec, outputs: &Outputs) -> Vec<Stale> {
    outputs
        .pairs(spec)
        .into_iter()
        .filter_map(|(path, want)| {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            (have != want).then(|| Stale {
                diff: unified(&path, &have, &want),
                file: path,
            })
        })
        .collect()
}

fn unified(path: &Path, have: &str, want: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(have, want)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{name} (committed)"),
            &format!("{name} (generated)"),
        )
        .to_string()
}

#[cfg(test)]
mod tests;
