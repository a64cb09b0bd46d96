//! The fallback bake for machines whose containers cannot reach Debian's mirror: unpack the base
//! rootfs on the host, run the same build script in a chroot there (the host does reach the
//! mirror), and pack the result for a whole-image import. Such images do not share the base layer.
//!
//! The chroot gets /proc and a bind of the host's /dev while the script runs. The tree is deleted
//! only after both are verified unmounted: deleting through a live /dev bind would delete the
//! host's device nodes.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ImageError;
use super::rootfs::tail;

/// A packed image tree; the work directory goes away on drop once nothing is mounted in it.
pub struct Packed {
    pub tar: PathBuf,
    work: PathBuf,
}

impl Drop for Packed {
    fn drop(&mut self) {
        remove_if_unmounted(&self.work);
    }
}

/// Runs the bake `payload` (tar with /tmp/harness-bake/build.sh and the recipe's files) in a chroot
/// of `rootfs_tar`, writes the script's output to `log`, and packs the tree.
pub fn bake(
    image: &str,
    cache: &Path,
    rootfs_tar: &Path,
    payload: &[u8],
    log: &Path,
) -> Result<Packed, ImageError> {
    let dir = cache.join("rootfs");
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
    let work = tempfile::Builder::new()
        .prefix("chroot-")
        .tempdir_in(&dir)
        .map_err(|e| ImageError::io(&dir, e))?
        .keep();
    let packed = Packed {
        tar: work.join("image.tar"),
        work: work.clone(),
    };
    let root = work.join("root");
    std::fs::create_dir(&root).map_err(|e| ImageError::io(&root, e))?;
    let unpack = |args: &[&str], input: Option<&[u8]>| -> Result<(), ImageError> {
        let mut cmd = Command::new("tar");
        cmd.args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
            .args(args)
            .arg("-C")
            .arg(&root)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| ImageError::io(Path::new("tar"), e))?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(bytes)
                .map_err(|e| ImageError::io(Path::new("tar"), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| ImageError::io(Path::new("tar"), e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ImageError::Command {
                command: format!("tar -x into {}", root.display()),
                status: out.status.to_string(),
                tail: tail(&String::from_utf8_lossy(&out.stderr), 10),
            })
        }
    };
    unpack(&[rootfs_tar.to_str().unwrap_or_default()], None)?;
    unpack(&["-"], Some(payload))?;
    let _ = std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"));

    let proc_dir = root.join("proc");
    let dev_dir = root.join("dev");
    let mounted = mount(&["-t", "proc", "proc"], &proc_dir)
        .and_then(|()| mount(&["--bind", "/dev"], &dev_dir));
    let result = mounted.and_then(|()| run_script(image, &root, log));
    // Unmount on every path; a failed unmount leaves the tree in place (never deleted).
    let _ = umount(&dev_dir);
    let _ = umount(&proc_dir);
    result?;
    let _ = std::fs::write(root.join("etc/resolv.conf"), "");

    let out = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&packed.tar)
        .args([
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./dev/*",
            ".",
        ])
        .output()
        .map_err(|e| ImageError::io(Path::new("tar"), e))?;
    if !out.status.success() {
        return Err(ImageError::Command {
            command: format!("tar -c {}", root.display()),
            status: out.status.to_string(),
            tail: tail(&String::from_utf8_lossy(&out.stderr), 10),
        });
    }
    Ok(packed)
}

fn run_script(image: &str, root: &Path, log: &Path) -> Result<(), ImageError> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ImageError::io(parent, e))?;
    }
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "/tmp/harness-bake/build.sh"])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .output()
        .map_err(|e| ImageError::io(Path::new("chroot"), e))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    std::fs::write(log, &text).map_err(|e| ImageError::io(log, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(match super::recipe::missing_package(&text) {
            Some(package) => ImageError::MissingPackage {
                image: image.to_string(),
                package,
            },
            None => ImageError::BakeFailed {
                image: image.to_string(),
                code: out.status.code().unwrap_or(-1) as i64,
                tail: tail(&text, 25),
                log: log.to_path_buf(),
            },
        })
    }
}

fn mount(args: &[&str], target: &Path) -> Result<(), ImageError> {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| ImageError::io(Path::new("mount"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ImageError::Command {
            command: format!("mount {} {}", args.join(" "), target.display()),
            status: out.status.to_string(),
            tail: tail(&String::from_utf8_lossy(&out.stderr), 5),
        })
    }
}

fn umount(target: &Path) -> std::io::Result<()> {
    if !is_mounted(target) {
        return Ok(());
    }
    let status = Command::new("umount").arg(target).status()?;
    if !status.success() {
        // Busy (a daemon a postinst started despite policy-rc.d): detach it lazily.
        Command::new("umount").arg("-l").arg(target).status()?;
    }
    Ok(())
}

fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|p| Path::new(p).starts_with(&canon))
            })
        })
        .unwrap_or(true)
}

fn remove_if_unmounted(work: &Path) {
    if is_mounted(work) {
        return;
    }
    let _ = std::fs::remove_dir_all(work);
}
