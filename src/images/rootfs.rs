//! The bookworm base: `debootstrap --variant=minbase` on the host, packed into a tar that is cached
//! outside the project and keyed by the hash of what produced it.
//!
//! Only the host steps live here (they need root and debootstrap); the import is in `engine`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::ImageError;
use crate::fsutil::sha256_file;

pub const SUITE: &str = "bookworm";
const FORMAT: &str = "harness-rootfs-v1";

/// Files written into the rootfs after debootstrap, before the tar. Part of the rootfs key.
const SETUP: &[(&str, u32, &str)] = &[
    (
        "usr/sbin/policy-rc.d",
        0o755,
        // Package postinst scripts must not start services during a bake: they would hang it or
        // leave daemons in the committed container. Our start commands run their daemons themselves.
        "#!/bin/sh\nexit 101\n",
    ),
    (
        "etc/apt/apt.conf.d/90harness",
        0o644,
        "APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\nAcquire::Retries \"3\";\n",
    ),
    (
        // As in Debian's slim images: documentation and translations are dead weight in a container.
        "etc/dpkg/dpkg.cfg.d/90harness-slim",
        0o644,
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n\
         path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n\
         path-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n\
         path-exclude /usr/share/lintian/*\n",
    ),
];

/// Where debootstrap fetches from. Both can be overridden for a local mirror.
#[derive(Debug, Clone)]
pub struct Mirrors {
    pub debian: String,
    pub security: String,
}

impl Mirrors {
    pub fn from_env() -> Mirrors {
        Mirrors {
            debian: std::env::var("HARNESS_DEBIAN_MIRROR")
                .unwrap_or_else(|_| "http://deb.debian.org/debian".into()),
            security: std::env::var("HARNESS_DEBIAN_SECURITY_MIRROR")
                .unwrap_or_else(|_| "http://deb.debian.org/debian-security".into()),
        }
    }

    fn sources_list(&self) -> String {
        format!(
            "deb {d} {s} main\ndeb {d} {s}-updates main\ndeb {sec} {s}-security main\n",
            d = self.debian,
            sec = self.security,
            s = SUITE
        )
    }
}

/// The key of the rootfs: a hash of everything that decides what debootstrap produces.
pub fn key(mirrors: &Mirrors) -> String {
    let mut h = Sha256::new();
    for part in [
        FORMAT,
        SUITE,
        "minbase",
        &mirrors.debian,
        &mirrors.security,
        &mirrors.sources_list(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (path, mode, body) in SETUP {
        h.update(path.as_bytes());
        h.update(mode.to_le_bytes());
        h.update(body.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A built rootfs tar and the sha256 of its bytes (the "base rootfs hash" in recipe hashes).
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub tar: PathBuf,
    pub sha256: String,
}

/// The cached rootfs for `key`, if a complete one is there.
pub fn cached(cache: &Path, key: &str) -> Option<Rootfs> {
    let tar = cache.join("rootfs").join(format!("{key}.tar"));
    let sha = std::fs::read_to_string(tar.with_extension("tar.sha256")).ok()?;
    let sha = sha.split_whitespace().next()?.to_string();
    (tar.is_file() && sha.len() == 64).then_some(Rootfs { tar, sha256: sha })
}

/// Runs debootstrap and packs the result. The caller holds the rootfs lock.
/// Returns the rootfs and how long debootstrap and the packing took.
pub fn build(
    cache: &Path,
    key: &str,
    mirrors: &Mirrors,
) -> Result<(Rootfs, std::time::Duration), ImageError> {
    if !is_root() {
        return Err(ImageError::Host {
            what: "debootstrap needs root".into(),
            hint: "run `harness images --bake` as root (CI does), or load the images another way"
                .into(),
        });
    }
    if which("debootstrap").is_none() {
        return Err(ImageError::Host {
            what: "debootstrap is not installed".into(),
            hint: "apt-get install -y debootstrap".into(),
        });
    }
    let dir = cache.join("rootfs");
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&dir)
        .map_err(|e| ImageError::io(&dir, e))?;
    let root = work.path().join("root");
    let started = Instant::now();

    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg("--components=main")
        .arg(SUITE)
        .arg(&root)
        .arg(&mirrors.debian))?;

    std::fs::write(root.join("etc/apt/sources.list"), mirrors.sources_list())
        .map_err(|e| ImageError::io(&root, e))?;
    for (path, mode, body) in SETUP {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
        }
        std::fs::write(&p, body).map_err(|e| ImageError::io(&p, e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
            .map_err(|e| ImageError::io(&p, e))?;
    }
    // Bring the base up to bookworm-security/-updates once, here, so every image starts patched.
    run(Command::new("chroot")
        .arg(&root)
        .args([
            "sh",
            "-c",
            "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update; \
             apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade; apt-get clean; \
             rm -rf /var/lib/apt/lists/* /usr/share/doc/*/changelog* /usr/share/man/* \
             /usr/share/info/* /var/log/*.log /var/cache/debconf/*-old",
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))?;
    // Docker mounts its own resolv.conf, hostname and hosts; the host's must not travel.
    for f in ["etc/resolv.conf", "etc/hostname"] {
        let _ = std::fs::write(root.join(f), "");
    }
    let debootstrap_time = started.elapsed();

    let tmp_tar = work.path().join("rootfs.tar");
    // GNU tar: numeric owners (the image's uids, not the host's names), xattrs (file capabilities),
    // setuid bits and hard links are kept as they are; /proc, /sys and /dev stay empty directories.
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("--xattrs")
        .arg("--xattrs-include=*")
        .arg("--sort=name")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tmp_tar)
        .args([
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./dev/*",
        ])
        .arg("."))?;
    let sha = sha256_file(&tmp_tar).map_err(|e| ImageError::io(&tmp_tar, e))?;
    let tar = dir.join(format!("{key}.tar"));
    std::fs::rename(&tmp_tar, &tar).map_err(|e| ImageError::io(&tar, e))?;
    let side = tar.with_extension("tar.sha256");
    std::fs::write(&side, format!("{sha}  {key}.tar\n")).map_err(|e| ImageError::io(&side, e))?;
    // The debootstrap tree holds device nodes and root-owned files; remove it as root, now.
    drop(work);
    Ok((Rootfs { tar, sha256: sha }, debootstrap_time))
}

fn run(cmd: &mut Command) -> Result<(), ImageError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| ImageError::Host {
        what: format!("cannot run {shown}: {e}"),
        hint: "apt-get install -y debootstrap".into(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(ImageError::Command {
        command: shown,
        status: out.status.to_string(),
        tail: tail(&text, 20),
    })
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// debootstrap, installed through apt-get when it is missing and this process may (root, apt-get
/// there, `HARNESS_NO_INSTALL` unset): a fresh machine's first bake needs nothing done by hand.
/// `Ok(Some(what))` when it installed it, `Ok(None)` when it was there.
pub fn ensure_debootstrap() -> Result<Option<String>, ImageError> {
    if which("debootstrap").is_some() {
        return Ok(None);
    }
    let refuse = |why: &str| ImageError::Host {
        what: format!("debootstrap is not installed ({why})"),
        hint: "apt-get install -y debootstrap".into(),
    };
    if std::env::var_os("HARNESS_NO_INSTALL").is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(refuse(
            "HARNESS_NO_INSTALL is set, so harness does not install it",
        ));
    }
    if !is_root() {
        return Err(refuse("harness installs it only as root"));
    }
    let Some(apt) = which("apt-get") else {
        return Err(refuse("there is no apt-get to install it with"));
    };
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "debootstrap"][..],
    ] {
        run(Command::new(&apt)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    match which("debootstrap") {
        Some(p) => Ok(Some(format!(
            "installed {} with `apt-get install -y debootstrap` (HARNESS_NO_INSTALL=1 turns this off)",
            p.display()
        ))),
        None => Err(refuse("apt-get installed it, but it is not on PATH")),
    }
}

fn is_root() -> bool {
    // The uid of /proc/self is the process's effective uid; no libc needed.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_the_mirror() {
        let a = Mirrors {
            debian: "http://a/debian".into(),
            security: "http://a/sec".into(),
        };
        let b = Mirrors {
            debian: "http://b/debian".into(),
            ..a.clone()
        };
        assert_ne!(key(&a), key(&b));
        assert_eq!(key(&a), key(&a.clone()));
    }

    #[test]
    fn sources_include_security_and_updates() {
        let s = Mirrors {
            debian: "http://m/debian".into(),
            security: "http://m/sec".into(),
        }
        .sources_list();
        assert!(s.contains("bookworm-security"));
        assert!(s.contains("bookworm-updates"));
    }
}
