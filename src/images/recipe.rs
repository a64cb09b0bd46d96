//! Image recipes as data (`compose/images/<name>/recipe.toml` plus its files) and their hash.
//!
//! The recipes ship inside the binary so `harness` works from any directory; `--recipes DIR` reads
//! them from disk instead (for recipe development and tests).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ImageError;

/// The four images of the stack, in bake order (cheapest first).
pub const NAMES: [&str; 4] = ["proxy", "mocks", "app", "playwright"];

/// Recipe sources compiled into the binary: (image, file name, bytes).
const EMBEDDED: &[(&str, &str, &[u8])] = &[
    (
        "app",
        "recipe.toml",
        include_bytes!("../../compose/images/app/recipe.toml"),
    ),
    (
        "app",
        "entrypoint.py",
        include_bytes!("../../compose/images/app/entrypoint.py"),
    ),
    (
        "proxy",
        "recipe.toml",
        include_bytes!("../../compose/images/proxy/recipe.toml"),
    ),
    (
        "mocks",
        "recipe.toml",
        include_bytes!("../../compose/images/mocks/recipe.toml"),
    ),
    (
        "playwright",
        "recipe.toml",
        include_bytes!("../../compose/images/playwright/recipe.toml"),
    ),
];

/// Where recipes come from.
#[derive(Debug, Clone)]
pub enum RecipeSource {
    Embedded,
    Dir(PathBuf),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default)]
    description: String,
    #[serde(default)]
    packages: Vec<String>,
    /// A public image pinned by tag, tried by the `pull` step (experimental: untested here).
    #[serde(default)]
    online: Option<String>,
    #[serde(default)]
    run: Vec<String>,
    #[serde(default)]
    files: Vec<RawFile>,
    /// Copy the running harness executable to this path in the image.
    #[serde(default)]
    harness_binary: Option<String>,
    #[serde(default)]
    pip: Option<Pip>,
    #[serde(default)]
    image: ImageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: String,
    dest: String,
    #[serde(default = "default_mode")]
    mode: u32,
}

fn default_mode() -> u32 {
    0o644
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pip {
    pub venv: String,
    pub packages: Vec<String>,
}

/// What `docker commit` writes into the image's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// A file that goes into the image.
#[derive(Debug, Clone)]
pub struct RecipeFile {
    pub dest: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// A loaded recipe: everything that goes into the image, ready to hash and bake.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub description: String,
    pub packages: Vec<String>,
    pub online: Option<String>,
    pub run: Vec<String>,
    pub files: Vec<RecipeFile>,
    pub pip: Option<Pip>,
    pub image: ImageConfig,
    /// Where the harness binary goes, when the image carries it.
    pub harness_binary: Option<String>,
    /// The recipe.toml bytes, hashed as they are (comments included: cheap and unambiguous).
    toml: Vec<u8>,
}

impl Recipe {
    /// Loads the recipe `name` from `source`. Unknown image names and malformed recipes are bad
    /// input (exit 2) with the file and line.
    pub fn load(source: &RecipeSource, name: &str) -> Result<Recipe, ImageError> {
        let (origin, toml_bytes) = read_source(source, name, "recipe.toml")?;
        let text = String::from_utf8(toml_bytes.clone()).map_err(|_| ImageError::Recipe {
            file: origin.clone(),
            message: "is not UTF-8".into(),
        })?;
        let raw: RawRecipe = toml::from_str(&text).map_err(|e| ImageError::Recipe {
            file: origin.clone(),
            message: locate(&text, &e),
        })?;
        for p in &raw.packages {
            if !valid_package_name(p) {
                return Err(ImageError::Recipe {
                    file: origin.clone(),
                    message: format!("`{p}` is not a Debian package name"),
                });
            }
        }
        if raw.image.cmd.is_none() && raw.image.entrypoint.is_none() {
            return Err(ImageError::Recipe {
                file: origin.clone(),
                message: "[image] needs a start command: `cmd` or `entrypoint`".into(),
            });
        }
        let mut files = Vec::new();
        for f in &raw.files {
            if !f.dest.starts_with('/') {
                return Err(ImageError::Recipe {
                    file: origin.clone(),
                    message: format!("files: dest `{}` must be an absolute path", f.dest),
                });
            }
            let (_, bytes) = read_source(source, name, &f.src)?;
            files.push(RecipeFile {
                dest: f.dest.clone(),
                mode: f.mode,
                bytes,
            });
        }
        Ok(Recipe {
            name: name.to_string(),
            description: raw.description,
            packages: raw.packages,
            online: raw.online.filter(|s| !s.is_empty()),
            run: raw.run,
            files,
            pip: raw.pip,
            image: raw.image,
            harness_binary: raw.harness_binary,
            toml: toml_bytes,
        })
    }

    /// The recipe hash: a sha256 over everything that goes into the image. `base` is the base
    /// rootfs hash; `harness_sha256` the running binary's hash when the recipe carries it.
    pub fn hash(&self, base: &str, harness_sha256: Option<&str>) -> String {
        let mut h = Sha256::new();
        let mut field = |k: &str, v: &[u8]| {
            h.update((k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_le_bytes());
            h.update(v);
        };
        field("format", b"harness-image-recipe-v2");
        field("name", self.name.as_bytes());
        field("base", base.as_bytes());
        field("recipe.toml", &self.toml);
        // The generated script too, so a change in how harness bakes gives new images.
        field(
            "script",
            self.build_script(Some("/tmp/harness-bake/ca.pem"))
                .as_bytes(),
        );
        let mut files: Vec<&RecipeFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.dest.cmp(&b.dest));
        for f in files {
            field("file", f.dest.as_bytes());
            field("mode", &f.mode.to_le_bytes());
            field("bytes", &f.bytes);
        }
        if self.harness_binary.is_some() {
            field("harness", harness_sha256.unwrap_or("").as_bytes());
            // The binary goes in without debug sections (when the host has `strip`).
            field("harness-install", b"strip-debug");
        }
        hex::encode(h.finalize())
    }

    /// The shell script that runs in the build container. `ca_bundle` is where the host's CA bundle
    /// was put (so pip reaches PyPI through an intercepting proxy); it is removed before commit.
    pub fn build_script(&self, ca_bundle: Option<&str>) -> String {
        let mut s = String::from(
            "set -eu\nexport DEBIAN_FRONTEND=noninteractive\n\
             echo '== apt-get update'\napt-get --error-on=any update\n",
        );
        if !self.packages.is_empty() {
            s.push_str(&format!(
                "echo '== apt-get install'\napt-get install -y --no-install-recommends {}\n",
                self.packages.join(" ")
            ));
        }
        if let Some(pip) = &self.pip {
            let cert = ca_bundle
                .map(|c| format!("PIP_CERT={c} "))
                .unwrap_or_default();
            s.push_str(&format!(
                "echo '== pip'\npython3 -m venv {venv}\n{cert}{venv}/bin/pip install --no-cache-dir \
                 --disable-pip-version-check {pkgs}\n",
                venv = pip.venv,
                pkgs = pip.packages.join(" "),
            ));
        }
        for line in &self.run {
            s.push_str(&format!("echo '== {}'\n{line}\n", line.replace('\'', "")));
        }
        s.push_str("apt-get clean\nrm -rf /var/lib/apt/lists/* /tmp/harness-bake\n");
        s
    }
}

/// Turns a toml error into "line N: message" so the user can find it.
fn locate(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

fn valid_package_name(p: &str) -> bool {
    // Debian policy: lower case letters, digits, + - . ; at least two characters, starting alnum.
    p.len() >= 2
        && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && p.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-' || c == '.'
        })
}

fn read_source(
    source: &RecipeSource,
    name: &str,
    file: &str,
) -> Result<(String, Vec<u8>), ImageError> {
    match source {
        RecipeSource::Embedded => EMBEDDED
            .iter()
            .find(|(n, f, _)| *n == name && *f == file)
            .map(|(_, _, b)| (format!("compose/images/{name}/{file}"), b.to_vec()))
            .ok_or_else(|| ImageError::UnknownImage {
                name: name.to_string(),
            }),
        RecipeSource::Dir(dir) => {
            let path = dir.join(name).join(file);
            if file == "recipe.toml" && !path.exists() {
                return Err(ImageError::UnknownImage {
                    name: name.to_string(),
                });
            }
            let bytes = std::fs::read(&path).map_err(|e| ImageError::Recipe {
                file: path.display().to_string(),
                message: format!("cannot read: {e}"),
            })?;
            Ok((path.display().to_string(), bytes))
        }
    }
}

/// The image names a recipe source offers: the four stack images, or every folder with a
/// recipe.toml under `--recipes DIR`.
pub fn available(source: &RecipeSource) -> Vec<String> {
    match source {
        RecipeSource::Embedded => NAMES.iter().map(|s| s.to_string()).collect(),
        RecipeSource::Dir(dir) => {
            let mut names: BTreeMap<String, ()> = BTreeMap::new();
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.path().join("recipe.toml").is_file() {
                        names.insert(e.file_name().to_string_lossy().into_owned(), ());
                    }
                }
            }
            // Stack images first in their bake order, then the rest by name.
            let mut out: Vec<String> = NAMES
                .iter()
                .filter(|n| names.contains_key(**n))
                .map(|s| s.to_string())
                .collect();
            out.extend(names.into_keys().filter(|n| !NAMES.contains(&n.as_str())));
            out
        }
    }
}

/// The package apt could not find, from its output ("E: Unable to locate package X",
/// "E: Package 'X' has no installation candidate").
pub fn missing_package(apt_output: &str) -> Option<String> {
    for line in apt_output.lines() {
        if let Some(rest) = line.split("Unable to locate package ").nth(1) {
            return Some(rest.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("E: Package '")
            && let Some((name, _)) = rest.split_once('\'')
            && line.contains("has no installation candidate")
        {
            return Some(name.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_recipe_loads() {
        for name in NAMES {
            let r = Recipe::load(&RecipeSource::Embedded, name).expect(name);
            assert!(!r.packages.is_empty(), "{name} installs nothing");
        }
    }

    #[test]
    fn hash_changes_with_every_input() {
        let r = Recipe::load(&RecipeSource::Embedded, "app").unwrap();
        let h = r.hash("base1", None);
        assert_eq!(h, r.hash("base1", None));
        assert_ne!(h, r.hash("base2", None));
        let mut changed = r.clone();
        changed.files[0].bytes.push(b'\n');
        assert_ne!(h, changed.hash("base1", None));
        let mut changed = r.clone();
        changed.files[0].mode = 0o700;
        assert_ne!(h, changed.hash("base1", None));
        let mut changed = r.clone();
        changed.toml.extend_from_slice(b"\n# x");
        assert_ne!(h, changed.hash("base1", None));
    }

    #[test]
    fn mocks_hash_covers_the_harness_binary() {
        let r = Recipe::load(&RecipeSource::Embedded, "mocks").unwrap();
        assert_ne!(r.hash("b", Some("aa")), r.hash("b", Some("bb")));
    }

    #[test]
    fn apt_missing_package_is_named() {
        let out = "Reading state information...\nE: Unable to locate package no-such-pkg-xyz\n";
        assert_eq!(missing_package(out).as_deref(), Some("no-such-pkg-xyz"));
        let out = "E: Package 'python' has no installation candidate\n";
        assert_eq!(missing_package(out).as_deref(), Some("python"));
        assert_eq!(missing_package("E: Sub-process returned an error"), None);
    }

    #[test]
    fn bad_recipe_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        std::fs::write(
            dir.path().join("x/recipe.toml"),
            "packages = [\"a1\"]\n\nbogus = 1\n",
        )
        .unwrap();
        let err = Recipe::load(&RecipeSource::Dir(dir.path().into()), "x").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("recipe.toml") && text.contains("line 3"),
            "{text}"
        );
    }

    #[test]
    fn package_names_are_checked_before_apt_sees_them() {
        assert!(valid_package_name("libapache2-mod-passenger"));
        assert!(valid_package_name("g++"));
        assert!(!valid_package_name("foo; rm -rf /"));
        assert!(!valid_package_name("Foo"));
    }
}
