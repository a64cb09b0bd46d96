//! The server as deploy, rollback, backup and status see it: where it is (from
//! `[targets.webhosting]`), one SSH connection to it, and what one read-only look finds there
//! (live release, lock, disk, tools, kept releases, backups).
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::lock_held;
use crate::config::{Config, WebhostingDeploy};
use crate::error::{Exit, Failure};
use crate::events::Reporter;
use crate::model::build::{BuildId, BuildInfo};
use crate::model::target::Target;
use crate::probe as verify;
use crate::remote::layout::Layout;
use crate::remote::ssh::{Ssh, SshTarget, failure as ssh_failure};

/// `[targets.webhosting]`'s address of the app.
#[derive(Debug, Clone)]
pub struct Remote {
    pub destination: String,
    pub layout: Layout,
    /// `HARNESS_DEPLOY_URL`, else `url`.
    url: Option<String>,
    where_: String,
}

impl Remote {
    /// Needs `ssh` and an absolute `remote_dir`; `url` is checked by [`Remote::url`] only where
    /// it is used (a backup does not need it).
    pub fn of(config: &Config) -> Result<Remote, Failure> {
        let target = config.target(Target::Webhosting);
        let where_ = format!("[targets.webhosting] in {}", config.file.display());
        let destination = target
            .ssh
            .clone()
            .map(toml::Spanned::into_inner)
            .ok_or_else(|| missing(&where_, "ssh"))?;
        let remote_dir = target
            .remote_dir
            .clone()
            .ok_or_else(|| missing(&where_, "remote_dir"))?;
        let layout = Layout::of(&remote_dir).ok_or_else(|| {
            Failure::new(
                Exit::BadInput,
                format!("{where_}: remote_dir = {remote_dir:?} must be an absolute path below /"),
            )
            .hint("write the full path, e.g. remote_dir = \"/home/user/app\"")
        })?;
        let url = std::env::var(super::URL_ENV).ok().or(target.url.clone());
        Ok(Remote {
            destination,
            layout,
            url,
            where_,
        })
    }

    pub fn url(&self) -> Result<&str, Failure> {
        self.url
            .as_deref()
            .ok_or_else(|| missing(&self.where_, "url"))
    }

    /// The health and version probe of the live app (deploy verification's).
    pub fn probe(&self, config: &Config, wh: &WebhostingDeploy) -> Result<verify::Probe, Failure> {
        Ok(verify::Probe {
            base: self.url()?.trim_end_matches('/').to_string(),
            health_path: config.stack.health_path.clone(),
            version: config.stack.version_probe(),
            settle: super::STAT_THROTTLE + Duration::from_millis(500),
            timeout: wh.verify_timeout,
        })
    }

    /// The one master connection.
    pub fn connect(&self, wh: &WebhostingDeploy) -> Result<Ssh, Failure> {
        let mut target = SshTarget::with_user_config(&self.destination, wh.connect_timeout);
        target.step_timeout = wh.step_timeout;
        Ssh::connect(target).map_err(|e| ssh_failure(e, UNCHANGED))
    }

    /// One read-only look at the server.
    pub fn inspect(&self, ssh: &Ssh, db: Option<&str>) -> Result<Preflight, Failure> {
        let out = ssh
            .run(&crate::remote::listing::preflight_script(&self.layout, db))
            .map_err(|e| ssh_failure(e, UNCHANGED))?;
        Ok(Preflight::parse(&out.text()))
    }

    /// The connection and the first look, as two timed phases: how deploy, rollback and backup
    /// start.
    pub fn open(
        &self,
        wh: &WebhostingDeploy,
        db: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<(Ssh, Preflight), Failure> {
        let ssh = crate::events::phase(reporter, "connect", || {
            Ok::<_, Failure>((self.connect(wh)?, self.destination.clone()))
        })?;
        let pre = crate::events::phase(reporter, "preflight", || {
            let pre = self.inspect(&ssh, db)?;
            let summary = pre.summary();
            Ok::<_, Failure>((pre, summary))
        })?;
        Ok((ssh, pre))
    }
}

/// What an SSH failure before the first change left on the server.
const UNCHANGED: &str = "nothing was changed";

fn missing(where_: &str, key: &str) -> Failure {
    Failure::new(Exit::BadInput, format!("{where_} has no `{key}`")).hint(
        "set ssh = \"user@host\", remote_dir = \"/abs/path\" and url = \"https://...\" (docs/config.md)",
    )
}

/// A release kept under releases/.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRelease {
    /// Its directory name: `<stamp it was swapped out>-<build id>` (or `-failed-<build id>`).
    pub name: String,
    /// From its build_info.json.
    pub build_id: Option<String>,
    pub built_at: Option<String>,
    /// The schema fingerprint its build_info.json records: what its code was tested with.
    pub schema: Option<String>,
}

impl KeptRelease {
    /// A release whose verification failed (`<stamp>-failed-<build>`): never a default target.
    pub fn failed(&self) -> bool {
        self.name
            .get(16..)
            .is_some_and(|r| r.starts_with("-failed-"))
    }
}

/// A backup on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteBackup {
    pub name: String,
    pub size: u64,
}

/// Why a lock is stale, if it provably is: its details name this machine and a process that is
/// no longer running. A lock from another machine cannot be judged from here.
pub fn stale_lock(details: &[String], this_host: &str) -> Option<String> {
    let field = |k: &str| {
        details
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let host = field("host")?;
    let pid: i32 = field("pid")?.parse().ok().filter(|p| *p > 0)?;
    if host != this_host || pid == std::process::id() as i32 {
        return None;
    }
    // SAFETY: signal 0 only asks whether the process exists; it sends nothing.
    let gone = unsafe { libc::kill(pid, 0) } == -1
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    gone.then(|| format!("process {pid} on {host} is gone"))
}

/// Whether harness wrote this release name: `<stamp>-<build id, or failed-<build id>>`.
fn harness_release(name: &str) -> bool {
    crate::model::release_name::parse(name).is_some_and(|(_, rest)| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Free space a step needs, in KiB: a backup takes up to the live release again plus a copy of
/// its database (counted as the release once more); a deploy adds the upload and its extracted
/// release (a zip is about a third of what it unpacks to). 1 MiB of slack.
pub fn need_kb(live_kb: u64, zip_kb: Option<u64>) -> u64 {
    live_kb * 2 + zip_kb.map_or(0, |z| z * 4) + 1024
}

/// Read-only facts from the server.
#[derive(Debug, Default)]
pub struct Preflight {
    pub live: bool,
    pub live_db: bool,
    /// The live release's database is the link to the shared one (`shared::link`).
    pub db_shared: bool,
    /// The shared database exists.
    pub shared_db: bool,
    /// A write pause is on: a deploy that changed the database did not finish (`shared`).
    pub paused: bool,
    /// `key=value` lines of the lock's details file, when the lock is held.
    pub lock: Option<Vec<String>>,
    pub free_kb: u64,
    /// The size of the live release (database included).
    pub live_kb: u64,
    pub live_build: Option<String>,
    pub missing_tools: Vec<String>,
    /// Newest first.
    pub releases: Vec<KeptRelease>,
    /// Newest first.
    pub backups: Vec<RemoteBackup>,
}

impl Preflight {
    /// One line for the preflight phase.
    pub fn summary(&self) -> String {
        let live = match (&self.live, &self.live_build) {
            (false, _) => "nothing live yet (first deploy)".to_string(),
            (true, b) => format!("live build {}", b.as_deref().unwrap_or("unknown")),
        };
        format!(
            "{live}, {} kept releases, {} backups, free {} MiB",
            self.releases.len(),
            self.backups.len(),
            self.free_kb / 1024
        )
    }

    pub fn parse(text: &str) -> Preflight {
        let mut p = Preflight::default();
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "live" => p.live = v == "yes",
                "live_db" => p.live_db = v == "yes",
                "db_shared" => p.db_shared = v == "yes",
                "shared_db" => p.shared_db = v == "yes",
                "paused" => p.paused = v == "yes",
                "lock" if v == "yes" => p.lock = Some(Vec::new()),
                "free_kb" => p.free_kb = v.trim().parse().unwrap_or(0),
                "live_kb" => p.live_kb = v.trim().parse().unwrap_or(0),
                // The server's build_info.json is not trusted: an id that harness could not have
                // written (a hand-edited file, shell code, a path) counts as unknown, so it never
                // reaches a backup name, a lock or a local file name.
                "live_build" => p.live_build = some(v).filter(|b| BuildId::parse(b).is_some()),
                "release" => {
                    let mut f = v.split('\t');
                    if let Some(name) = f.next().and_then(some) {
                        p.releases.push(KeptRelease {
                            name,
                            build_id: f
                                .next()
                                .and_then(some)
                                .filter(|b| BuildId::parse(b).is_some()),
                            built_at: f.next().and_then(some),
                            schema: f.next().and_then(some).filter(|s| {
                                s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
                            }),
                        });
                    }
                }
                "backup" => {
                    if let Some((name, size)) = v.split_once('\t') {
                        p.backups.push(RemoteBackup {
                            name: name.to_string(),
                            size: size.trim().parse().unwrap_or(0),
                        });
                    }
                }
                _ if k.starts_with("lock.") => {
                    if let Some(l) = p.lock.as_mut() {
                        l.push(format!("{}={v}", &k[5..]));
                    }
                }
                _ if k.starts_with("tool.") && v == "no" => {
                    p.missing_tools.push(k[5..].to_string())
                }
                _ => {}
            }
        }
        p.releases.sort_by(|a, b| b.name.cmp(&a.name));
        p.backups.sort_by(|a, b| b.name.cmp(&a.name));
        p
    }

    /// Missing tools, too little disk for `zip` (when there is one) and a held lock stop here.
    pub fn check(
        &self,
        layout: &Layout,
        break_lock: bool,
        zip: Option<&Path>,
        host: &str,
        action: &str,
    ) -> Result<(), Failure> {
        if !self.missing_tools.is_empty() {
            return Err(Failure::new(
                Exit::Environment,
                format!(
                    "{host} lacks {}; nothing was changed",
                    self.missing_tools.join(", ")
                ),
            )
            .hint(format!(
                "{action} needs python3 (with its sqlite3 module), unzip, sha256sum and tar on the server"
            )));
        }
        let zip_kb = zip.map(|z| std::fs::metadata(z).map(|m| m.len() / 1024).unwrap_or(0));
        let need_kb = need_kb(self.live_kb, zip_kb);
        if self.free_kb < need_kb {
            return Err(Failure::new(
                Exit::Environment,
                format!(
                    "{host} has {} KiB free beside {}; {action} needs about {need_kb} KiB \
                     (a backup of the {} KiB live release{}); nothing was changed",
                    self.free_kb,
                    layout.live,
                    self.live_kb,
                    if zip.is_some() {
                        ", the upload and the extracted release"
                    } else {
                        ""
                    }
                ),
            )
            .hint(format!(
                "free space, e.g. old backups in {}",
                layout.backups()
            )));
        }
        if let (Some(details), false) = (&self.lock, break_lock) {
            return Err(lock_held(&details.join("\n"), layout));
        }
        Ok(())
    }

    /// Whether to break a held lock: asked for (`--break-lock`), or left by a harness process on
    /// this machine that no longer runs (a killed cron backup must not refuse every later run).
    /// Says which, and whose lock it was; the lock step audits the break on the server.
    pub fn break_lock(&self, asked: bool, reporter: &dyn Reporter) -> bool {
        let Some(details) = &self.lock else {
            return false;
        };
        let holder = details.join(", ");
        if asked {
            reporter.event(&crate::events::Event::Warning {
                message: format!("--break-lock: breaking the lock held by {holder}"),
            });
            return true;
        }
        if let Some(why) = stale_lock(details, &super::whoami().1) {
            reporter.event(&crate::events::Event::Warning {
                message: format!("taking over a stale lock ({why}): it was held by {holder}"),
            });
            return true;
        }
        false
    }

    /// The releases that stay after pruning to `keep`, when `outgoing` (the live release, by its
    /// new name and build) joins them.
    pub fn kept_after(
        &self,
        outgoing: Option<(&str, Option<&str>)>,
        keep: u32,
    ) -> Vec<KeptRelease> {
        let (kept, _) = self.split_releases(outgoing, None, keep);
        kept
    }

    /// The kept releases pruning deletes once `outgoing` joins them: see [`Self::split_releases`].
    pub fn releases_to_prune(&self, outgoing: Option<&str>, keep: u32) -> Vec<String> {
        let (_, prune) = self.split_releases(outgoing.map(|o| (o, None)), None, keep);
        prune
    }

    /// The same for a rollback, where `going_live` leaves releases/ as `outgoing` enters it.
    pub fn releases_to_prune_after_rollback(
        &self,
        going_live: &str,
        outgoing: &str,
        keep: u32,
    ) -> Vec<String> {
        let (_, prune) = self.split_releases(Some((outgoing, None)), Some(going_live), keep);
        prune
    }

    /// Which releases stay and which go when `keep` are kept and `outgoing` (the release that was
    /// live, under its new name) joins them. Only names harness writes (`<stamp>-<build>`) count
    /// or go, so a folder made by hand is never deleted; they are ordered by their stamp, and
    /// `outgoing` always stays, whatever the clocks said: it is the rollback target.
    fn split_releases(
        &self,
        outgoing: Option<(&str, Option<&str>)>,
        going_live: Option<&str>,
        keep: u32,
    ) -> (Vec<KeptRelease>, Vec<String>) {
        let mut ours: Vec<KeptRelease> = self
            .releases
            .iter()
            .filter(|r| {
                harness_release(&r.name)
                    && Some(r.name.as_str()) != outgoing.map(|o| o.0)
                    && Some(r.name.as_str()) != going_live
            })
            .cloned()
            .collect();
        ours.sort_by(|a, b| {
            let stamp =
                |r: &KeptRelease| crate::model::release_name::parse(&r.name).map(|(t, _)| t);
            stamp(b).cmp(&stamp(a)).then_with(|| b.name.cmp(&a.name))
        });
        let mut kept = Vec::new();
        if let Some((name, build)) = outgoing {
            kept.push(KeptRelease {
                name: name.to_string(),
                build_id: build.map(str::to_string),
                built_at: None,
                schema: None,
            });
        }
        let mut prune = Vec::new();
        for r in ours {
            if kept.len() < keep.max(1) as usize {
                kept.push(r);
            } else {
                prune.push(r.name);
            }
        }
        (kept, prune)
    }
}

/// The build_info.json of the release in `dir` on the server, when it has a readable one.
pub fn build_info_of(ssh: &crate::remote::ssh::Ssh, dir: &str) -> Option<BuildInfo> {
    let out = ssh
        .run(&format!(
            "cat {}",
            crate::remote::ssh::quote(&format!("{dir}/build_info.json"))
        ))
        .ok()?;
    BuildInfo::parse(&out.stdout).ok()
}

/// What the version probe needs of the release in `dir` to recognise it: a `contains` probe fills
/// its template from the release's build_info.json; other probes need nothing, and nothing is
/// read.
pub fn probe_info(probe: &verify::Probe, ssh: &Ssh, dir: &str) -> Option<BuildInfo> {
    match probe.version {
        crate::config::VersionProbe::Contains { .. } => build_info_of(ssh, dir),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_parses_releases_and_backups_newest_first() {
        let p = Preflight::parse(
            "live=yes\nlive_db=yes\nlock=yes\nlock.user=ann\nlock.time=2026-01-01T00:00:00.000Z\n\
             free_kb=2048\nlive_build=20251231T000000Z-bbbbbbbbbbbb\ntool.python3=yes\ntool.unzip=no\n\
             release=20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa\tA\t2025-12-31T00:00:00Z\n\
             release=20260102T000000Z-failed-20251231T000000Z-cccccccccccc\tC\t\n\
             release=20260103T000000Z-x\t\t\n\
             backup=20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa\t1234\nbackup=20260102T000000Z-20251231T000000Z-bbbbbbbbbbbb\t99\n",
        );
        assert!(p.live && p.live_db);
        assert_eq!(
            p.lock,
            Some(vec![
                "user=ann".to_string(),
                "time=2026-01-01T00:00:00.000Z".into()
            ])
        );
        assert_eq!(
            p.live_build.as_deref(),
            Some("20251231T000000Z-bbbbbbbbbbbb")
        );
        assert_eq!(p.missing_tools, ["unzip"]);
        let names: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "20260103T000000Z-x",
                "20260102T000000Z-failed-20251231T000000Z-cccccccccccc",
                "20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa"
            ]
        );
        assert_eq!(p.releases[0].build_id, None);
        assert!(p.releases[1].failed() && !p.releases[2].failed());
        assert_eq!(
            p.releases[2].built_at.as_deref(),
            Some("2025-12-31T00:00:00Z")
        );
        assert_eq!(
            p.backups,
            [
                RemoteBackup {
                    name: "20260102T000000Z-20251231T000000Z-bbbbbbbbbbbb".into(),
                    size: 99
                },
                RemoteBackup {
                    name: "20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa".into(),
                    size: 1234
                }
            ]
        );
        assert_eq!(
            p.summary(),
            "live build 20251231T000000Z-bbbbbbbbbbbb, 3 kept releases, 2 backups, free 2 MiB"
        );
        assert_eq!(
            Preflight::parse("live=no\n").summary(),
            "nothing live yet (first deploy), 0 kept releases, 0 backups, free 0 MiB"
        );
        let kept = p.kept_after(
            Some((
                "20260104T000000Z-20251231T000000Z-bbbbbbbbbbbb",
                Some("20251231T000000Z-bbbbbbbbbbbb"),
            )),
            2,
        );
        assert_eq!(
            kept.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            [
                "20260104T000000Z-20251231T000000Z-bbbbbbbbbbbb",
                "20260103T000000Z-x"
            ]
        );
    }

    /// Finding 1: what the server says a build is called is only kept when harness could have
    /// written it.
    #[test]
    fn build_ids_from_the_server_that_harness_did_not_write_count_as_unknown() {
        let p = Preflight::parse(
            "live=yes\nlive_build=x$(touch /tmp/pwned)\n\
             release=20260101T000000Z-a\t../../../../etc/cron.d/x\t\n",
        );
        assert_eq!(p.live_build, None);
        assert_eq!(p.releases[0].build_id, None);
        assert!(
            p.summary().starts_with("live build unknown"),
            "{}",
            p.summary()
        );
    }

    /// The script itself, run by the local `sh` on a folder laid out like a server.
    #[test]
    fn the_look_runs_in_sh_and_reads_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("my app");
        let home = dir.path().join(".my app.harness");
        let info = |build: &str| {
            format!(
                "{{\n  \"build_id\": \"{build}\",\n  \"built_at\": \"2026-01-01T00:00:00Z\"\n}}\n"
            )
        };
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(
            live.join("build_info.json"),
            info("20251231T000000Z-bbbbbbbbbbbb"),
        )
        .unwrap();
        std::fs::write(live.join("app.db"), "").unwrap();
        for (name, build) in [
            (
                "20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa",
                "20251231T000000Z-aaaaaaaaaaaa",
            ),
            (
                "20260102T000000Z-failed-20251231T000000Z-cccccccccccc",
                "20251231T000000Z-cccccccccccc",
            ),
        ] {
            std::fs::create_dir_all(home.join("releases").join(name)).unwrap();
            std::fs::write(
                home.join("releases").join(name).join("build_info.json"),
                info(build),
            )
            .unwrap();
        }
        std::fs::create_dir_all(home.join("backups")).unwrap();
        std::fs::write(
            home.join("backups/20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa.tar.gz"),
            "12345",
        )
        .unwrap();
        std::fs::write(
            home.join("backups/20260101T000001Z-20251231T000000Z-aaaaaaaaaaaa.tar.gz.part"),
            "half",
        )
        .unwrap();
        std::fs::create_dir_all(home.join("lock")).unwrap();
        std::fs::write(home.join("lock/details"), "action=backup\nuser=cron\n").unwrap();
        let layout = Layout::of(live.to_str().unwrap()).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(crate::remote::listing::preflight_script(
                &layout,
                Some("app.db"),
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = Preflight::parse(&String::from_utf8_lossy(&out.stdout));
        assert!(p.live && p.live_db);
        assert_eq!(
            p.live_build.as_deref(),
            Some("20251231T000000Z-bbbbbbbbbbbb")
        );
        assert_eq!(
            p.lock,
            Some(vec!["action=backup".to_string(), "user=cron".into()])
        );
        assert_eq!(
            p.releases,
            [
                KeptRelease {
                    name: "20260102T000000Z-failed-20251231T000000Z-cccccccccccc".into(),
                    build_id: Some("20251231T000000Z-cccccccccccc".into()),
                    built_at: Some("2026-01-01T00:00:00Z".into()),
                    schema: None,
                },
                KeptRelease {
                    name: "20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa".into(),
                    build_id: Some("20251231T000000Z-aaaaaaaaaaaa".into()),
                    built_at: Some("2026-01-01T00:00:00Z".into()),
                    schema: None,
                }
            ]
        );
        assert_eq!(
            p.backups,
            [RemoteBackup {
                name: "20260101T000000Z-20251231T000000Z-aaaaaaaaaaaa".into(),
                size: 5
            }]
        );
        assert!(p.free_kb > 0);
    }

    #[test]
    fn free_space_counts_a_backup_of_the_live_release_even_without_an_upload() {
        assert_eq!(need_kb(10_000, None), 21_024);
        assert_eq!(need_kb(10_000, Some(1_000)), 25_024);
        let p = Preflight::parse("live=yes\nfree_kb=15000\nlive_kb=10000\n");
        assert_eq!(p.live_kb, 10_000);
        let layout = Layout::of("/home/u/app").unwrap();
        let e = p
            .check(&layout, false, None, "host", "a backup")
            .unwrap_err();
        assert!(
            e.message.contains("a backup needs about 21024 KiB"),
            "{}",
            e.message
        );
        let roomy = Preflight::parse("live=yes\nfree_kb=30000\nlive_kb=10000\n");
        assert!(
            roomy
                .check(&layout, false, None, "host", "a backup")
                .is_ok()
        );
    }

    /// Issue 17, finding 6: pruning once deleted whatever `ls | sort -r` put last, so a folder
    /// that sorts high or a release from a clock that ran ahead pushed the rollback target out.
    #[test]
    fn pruning_never_deletes_the_rollback_target_or_a_folder_harness_did_not_write() {
        let p = Preflight::parse(
            "release=20990101T000000Z-20990101T000000Z-aaaaaaaaaaaa\t\t\n\
             release=zzz-hand-made\t\t\n\
             release=20260101T000000Z-20251231T000000Z-bbbbbbbbbbbb\t\t\n\
             release=20260102T000000Z-failed-20260102T000000Z-cccccccccccc\t\t\n",
        );
        let outgoing = "20260103T000000Z-20260102T120000Z-dddddddddddd";
        let prune = p.releases_to_prune(Some(outgoing), 1);
        assert!(!prune.contains(&outgoing.to_string()));
        assert!(!prune.iter().any(|n| n == "zzz-hand-made"), "{prune:?}");
        assert_eq!(prune.len(), 3, "{prune:?}");
        let prune = p.releases_to_prune(Some(outgoing), 2);
        // The newest by stamp stays beside the outgoing one, even when its clock ran ahead.
        assert_eq!(
            prune,
            [
                "20260102T000000Z-failed-20260102T000000Z-cccccccccccc",
                "20260101T000000Z-20251231T000000Z-bbbbbbbbbbbb"
            ]
        );
    }

    /// Issue 17, finding 7: a lock left by a dead harness process on this machine is stale; one
    /// whose process runs, or from another machine, is not.
    #[test]
    fn a_lock_is_stale_only_when_its_process_on_this_machine_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let lines = |host: &str, pid: u32| vec![format!("host={host}"), format!("pid={pid}")];
        assert!(stale_lock(&lines("here", dead), "here").is_some());
        let alive = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(stale_lock(&lines("here", alive.id()), "here"), None);
        assert_eq!(stale_lock(&lines("elsewhere", dead), "here"), None);
        assert_eq!(stale_lock(&["user=x".to_string()], "here"), None);
        let mut alive = alive;
        let _ = alive.kill();
        let _ = alive.wait();
    }
}
