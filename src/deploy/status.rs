//! `harness status webhosting`: what production runs (the build its version path reports)
//! against what the ledger says was last deployed, the kept releases, the backups and the lock.
//! Read-only: one SSH look, two HTTP requests, the ledger.
use crate::model::target::Target;
use serde::Serialize;

use super::backup;
use super::remote::{KeptRelease, Remote};
use super::retention::{self, Reason};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::ledger::LiveRecord;
use crate::model::retention::RetentionPolicy;
use crate::model::timestamp::Timestamp;
use crate::probe::Look;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub destination: String,
    pub remote_dir: String,
    /// Where the live build was asked (`url` + `version_path`), when a url is configured.
    pub version_url: Option<String>,
    pub live: Option<Look>,
    /// The build in remote_dir/build_info.json on disk.
    pub on_disk: Option<String>,
    /// The newest successful deploy or rollback in the ledger.
    pub recorded: Option<LiveRecord>,
    /// `matches`, `differs`, `no deploy recorded` or `unknown` (no answer from the app).
    pub verdict: &'static str,
    pub releases: Vec<KeptRelease>,
    pub backups: Vec<BackupLine>,
    pub policy: RetentionPolicy,
    pub lock: Lock,
    /// Where production's database is: `shared`, `in the release` (moved by the next deploy),
    /// `none`; and whether a write pause is on.
    pub database: Option<String>,
    pub writes_paused: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupLine {
    pub name: String,
    pub size: u64,
    pub taken_at: Option<Timestamp>,
    /// The build that was live when it was taken.
    pub build_id: Option<String>,
    /// From the ledger, when this project took it.
    pub sha256: Option<String>,
    pub kind: Option<&'static str>,
    pub local: bool,
    /// Why retention keeps it (today's decision).
    pub kept_for: Vec<Reason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lock {
    pub held: bool,
    /// The details file's `key=value` lines: action, user, host, pid, time, build_id.
    pub details: Vec<String>,
}

impl Lock {
    fn get(&self, key: &str) -> Option<&str> {
        self.details
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }
}

/// The comparison `status` prints: the build the app reports against the ledger's.
pub fn verdict(live: Option<&str>, recorded: Option<&LiveRecord>) -> &'static str {
    match (live, recorded.and_then(|r| r.build_id.as_deref())) {
        (_, None) => "no deploy recorded",
        (None, Some(_)) => "unknown",
        (Some(a), Some(b)) if a == b => "matches",
        _ => "differs",
    }
}

pub fn status(config: &Config) -> Result<Status, Failure> {
    let remote = Remote::of(config)?;
    let wh = config.webhosting_deploy();
    let ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let db = config.database_path();
    let ssh = remote.connect(&wh)?;
    let pre = remote.inspect(&ssh, db.as_deref())?;
    ssh.close();
    let probe = remote.probe(config, &wh).ok();
    let recorded = ledger.live(Target::Webhosting)?;
    // A `contains` probe can only confirm a build it is given: the recorded one, filled from the
    // build_info.json of its package as deployed from here.
    let live = probe.as_ref().map(|p| {
        let mut look = p.look();
        // Read only when the look could not name a build (a JSON probe names it itself).
        let recorded_info = || {
            recorded
                .as_ref()
                .and_then(|r| r.package_sha256.as_deref())
                .map(|sha| super::deployed_zip(&config.root, sha))
                .and_then(|zip| super::read_build_info(&zip))
        };
        if let (None, Some(r)) = (&look.build, &recorded)
            && let Some(b) = r.build_id.as_deref()
            && let Some(info) = recorded_info()
            && p.shows(crate::probe::Expected {
                build_id: b,
                info: Some(&info),
            })
        {
            look.build = Some(b.to_string());
        }
        look
    });
    let known = ledger.backups(Target::Webhosting)?;
    let names: Vec<String> = pre.backups.iter().map(|b| b.name.clone()).collect();
    let kept = backup::kept_builds(pre.live_build.as_deref(), &pre.releases);
    let builds: Vec<&str> = kept.iter().map(String::as_str).collect();
    let pinned = retention::newest_per_build(&names, &builds);
    let plan = retention::plan_names(
        &names,
        &|n| pinned.contains(&n),
        Timestamp::now(),
        wh.retention,
    );
    let backups = pre
        .backups
        .iter()
        .map(|b| {
            let rec = known.iter().find(|k| k.name == b.name);
            let parsed = crate::model::release_name::parse(&b.name);
            BackupLine {
                name: b.name.clone(),
                size: b.size,
                taken_at: parsed.map(|(t, _)| t),
                build_id: parsed.map(|(_, b)| b.to_string()),
                sha256: rec.map(|r| r.sha256.clone()),
                kind: rec.map(|r| r.kind.as_str()),
                local: backup::local_path(&config.root, &b.name).is_file(),
                kept_for: plan
                    .keep
                    .iter()
                    .find(|(n, _)| *n == b.name)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let live_build = live.as_ref().and_then(|l| l.build.clone());
    Ok(Status {
        destination: remote.destination.clone(),
        remote_dir: remote.layout.live.clone(),
        version_url: probe
            .as_ref()
            .and_then(|p| p.version.path().map(|v| format!("{}{v}", p.base))),
        verdict: verdict(live_build.as_deref(), recorded.as_ref()),
        live,
        on_disk: pre.live_build.clone(),
        recorded,
        releases: pre.releases.clone(),
        backups,
        policy: wh.retention,
        lock: Lock {
            held: pre.lock.is_some(),
            details: pre.lock.clone().unwrap_or_default(),
        },
        database: db.as_deref().map(|rel| {
            match super::shared::DbState::of(pre.live_db, pre.db_shared) {
                super::shared::DbState::Shared => {
                    format!("shared: {}", remote.layout.shared_db(rel))
                }
                super::shared::DbState::InRelease => format!(
                    "in the release ({}/{rel}); the next deploy moves it to {}",
                    remote.layout.live,
                    remote.layout.shared_db(rel)
                ),
                super::shared::DbState::Absent => "none".into(),
            }
        }),
        writes_paused: pre.paused,
    })
}

/// The readable form.
pub fn text(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = format!("webhosting  {}:{}\n", s.destination, s.remote_dir);
    let recorded = match &s.recorded {
        Some(r) => format!(
            "build {} ({} #{} at {} UTC)",
            r.build_id.as_deref().unwrap_or("unknown"),
            r.via,
            r.id,
            r.at.short()
        ),
        None => "none".into(),
    };
    let live = match (&s.live, &s.version_url) {
        (None, _) => "not asked: [targets.webhosting] has no url".to_string(),
        (Some(l), url) => match (&l.build, &l.error) {
            (Some(b), _) => format!(
                "build {b} (health {})",
                l.health.map_or("no answer".into(), |h| h.to_string())
            ),
            (None, Some(e)) => format!("no answer from {}: {e}", url.as_deref().unwrap_or("")),
            (None, None) => format!(
                "{} answered {} without a build id",
                url.as_deref().unwrap_or(""),
                l.version_status.map_or("-".into(), |c| c.to_string())
            ),
        },
    };
    let _ = writeln!(out, "  live      {live}");
    let verdict = match s.verdict {
        "matches" => "matches the last deploy".to_string(),
        "differs" => "differs from the last deploy".to_string(),
        other => other.to_string(),
    };
    let _ = writeln!(out, "            {verdict}; last deploy: {recorded}");
    if let Some(d) = &s.on_disk
        && s.live.as_ref().and_then(|l| l.build.as_ref()) != Some(d)
    {
        let _ = writeln!(out, "            build_info.json on disk says {d}");
    }
    let lock = if s.lock.held {
        let who = match (s.lock.get("user"), s.lock.get("host")) {
            (Some(u), Some(h)) => format!("{u}@{h}"),
            _ => "unknown (no details file)".into(),
        };
        let mut l = format!("held by {who}");
        if let Some(a) = s.lock.get("action") {
            l.push_str(&format!(" for a {a}"));
        }
        if let Some(p) = s.lock.get("pid") {
            l.push_str(&format!(", pid {p}"));
        }
        if let Some(t) = s.lock.get("time") {
            l.push_str(&format!(", since {t}"));
        }
        l
    } else {
        "free".into()
    };
    let _ = writeln!(out, "  lock      {lock}");
    if let Some(d) = &s.database {
        let _ = writeln!(out, "  database  {d}");
    }
    if s.writes_paused {
        let _ = writeln!(
            out,
            "            WRITES ARE PAUSED: a deploy that changed the database did not finish; \
             the next deploy or rollback ends the pause"
        );
    }
    let _ = writeln!(
        out,
        "  releases  {} kept (rollback --to NAME or BUILD)",
        s.releases.len()
    );
    for r in &s.releases {
        let retired = crate::model::release_name::stamp(&r.name)
            .and_then(crate::model::release_name::parse_stamp)
            .map(|t| format!("replaced {} UTC", t.short()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:<60} build {:<36} built {:<22} {retired}",
            r.name,
            r.build_id.as_deref().unwrap_or("unknown"),
            r.built_at.as_deref().unwrap_or("?"),
        );
    }
    let _ = writeln!(
        out,
        "  backups   {} on the server; retention keeps {}",
        s.backups.len(),
        s.policy
    );
    for b in &s.backups {
        let why: Vec<String> = b
            .kept_for
            .iter()
            .map(|r| format!("{r:?}").to_lowercase())
            .collect();
        let _ = writeln!(
            out,
            "    {:<60} {:>9} KiB  {}  {}  sha256 {}{}",
            b.name,
            b.size.div_ceil(1024),
            b.taken_at
                .map(|t| format!("{} ago", backup::ago(t)))
                .unwrap_or_default(),
            if b.local { "local copy" } else { "server only" },
            b.sha256
                .as_deref()
                .map(|s| &s[..12.min(s.len())])
                .unwrap_or("not recorded here"),
            if why.is_empty() {
                String::new()
            } else {
                format!("  ({})", why.join(", "))
            }
        );
    }
    out
}

/// The package production should run, by the ledger (the newest successful deploy or rollback),
/// from its copy in .harness/deployed/.
pub fn deployed_package(config: &Config) -> Result<PathBuf, Failure> {
    let ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let Some(live) = ledger.live(Target::Webhosting)? else {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{} records no successful deploy to webhosting, so there is no deployed package to compare the server with",
                ledger.path().display()
            ),
        )
        .hint("parity --remote compares the server with the package of the last `harness deploy webhosting` from this project"));
    };
    let Some(sha) = &live.package_sha256 else {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "production runs build {} since {} #{} ({} UTC), and no deploy recorded its package",
                live.build_id.as_deref().unwrap_or("unknown"),
                live.via,
                live.id,
                live.at.short()
            ),
        )
        .hint("deploy from this project once; parity --remote then compares with that package"));
    };
    let zip = super::deployed_zip(&config.root, sha);
    if !zip.is_file() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "the package of the last deploy ({} #{}, build {}) is not in {}",
                live.via,
                live.id,
                live.build_id.as_deref().unwrap_or("unknown"),
                zip.display()
            ),
        )
        .hint("deploy keeps every shipped zip there (pruned with keep_releases); deploy again to compare"));
    }
    Ok(zip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(build: Option<&str>) -> LiveRecord {
        LiveRecord {
            via: "deploy",
            id: 1,
            at: Timestamp::from_unix_ms(0),
            build_id: build.map(Into::into),
            package_sha256: None,
        }
    }

    #[test]
    fn the_verdict_compares_the_answering_build_with_the_ledger() {
        assert_eq!(verdict(Some("A"), Some(&rec(Some("A")))), "matches");
        assert_eq!(
            verdict(Some("hand-edited"), Some(&rec(Some("A")))),
            "differs"
        );
        assert_eq!(verdict(None, Some(&rec(Some("A")))), "unknown");
        assert_eq!(verdict(Some("A"), None), "no deploy recorded");
    }
}
