//! The deploy as data: each remote step says what it means and the exact shell it runs. `plan` is
//! pure (unit-tested by its commands, printed by `--dry-run`); `execute` does the I/O.
use std::path::PathBuf;
use std::time::Instant;

use super::ssh::{Ssh, SshError, quote};
use crate::events::{Event, Reporter};

/// Where things live on the server: all beside `remote_dir`, on the same filesystem, so a swap
/// is a rename and nothing of ours is inside the tree that is swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The live directory Passenger serves (`remote_dir`).
    pub live: String,
    /// `<parent>/.<name>.harness`
    pub home: String,
}

impl Layout {
    /// `remote_dir` must be absolute and not `/`.
    pub fn of(remote_dir: &str) -> Option<Layout> {
        let live = remote_dir.trim_end_matches('/');
        if !live.starts_with('/') || live.contains("/../") || live.ends_with("/..") {
            return None;
        }
        let (parent, name) = live.rsplit_once('/')?;
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        Some(Layout {
            live: live.to_string(),
            home: format!("{parent}/.{name}.harness"),
        })
    }

    pub fn parent(&self) -> &str {
        match self.live.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((p, _)) => p,
        }
    }

    fn at(&self, rel: &str) -> String {
        format!("{}/{rel}", self.home)
    }

    pub fn lock(&self) -> String {
        self.at("lock")
    }
    pub fn staging(&self) -> String {
        self.at("staging")
    }
    pub fn releases(&self) -> String {
        self.at("releases")
    }
    pub fn backups(&self) -> String {
        self.at("backups")
    }
    pub fn uploads(&self) -> String {
        self.at("uploads")
    }
    pub fn audit_log(&self) -> String {
        self.at("audit.log")
    }
}

/// Everything the plan depends on; gathered by `deploy` before anything changes.
#[derive(Debug, Clone)]
pub struct Facts {
    pub layout: Layout,
    pub build_id: String,
    pub zip: PathBuf,
    pub zip_sha256: String,
    /// The database file relative to the package root, when the package has one.
    pub db: Option<String>,
    /// Whether `remote_dir` exists (false on the first deploy).
    pub live_exists: bool,
    pub live_db_exists: bool,
    /// What the current release is called under releases/ once it is swapped out.
    pub previous_release: String,
    /// What the new release is called under releases/ if it has to be swapped out again.
    pub failed_release: String,
    pub backup_name: String,
    /// Where the backup goes locally.
    pub local_backup: PathBuf,
    /// Where the database snapshot for the schema check goes locally.
    pub local_db_snapshot: PathBuf,
    pub keep_releases: u32,
    pub keep_backups: u32,
    pub fresh_db: bool,
    pub preserve_secret_key: bool,
    pub break_lock: bool,
    pub migrate_command: Option<String>,
    /// `key=value` lines for the lock's details file.
    pub lock_details: Vec<(String, String)>,
    pub audit_line: String,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this script with `sh` on the server.
    Run(String),
    /// Run this script with the local file on its stdin.
    Upload { local: PathBuf, script: String },
    /// Run this script and keep its stdout in the local file.
    Download { script: String, local: PathBuf },
    /// A check done here, between remote steps.
    Check(Check),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Production's schema fingerprint (from the fetched snapshot) against the package's.
    Schema,
    /// After migrate_command: the staged database's fingerprint must now be the package's.
    MigratedSchema,
    /// Health 2xx and the new build id, after Passenger's throttle.
    Verify,
    /// The same for the previous build after a rollback.
    VerifyRollback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStep {
    pub id: &'static str,
    /// What the step means, for people.
    pub what: String,
    pub action: Action,
}

impl RemoteStep {
    fn run(id: &'static str, what: impl Into<String>, script: String) -> Self {
        RemoteStep {
            id,
            what: what.into(),
            action: Action::Run(script),
        }
    }

    /// The command as `--dry-run` prints it.
    pub fn command(&self) -> String {
        match &self.action {
            Action::Run(s) => s.clone(),
            Action::Upload { local, script } => format!("{script} < {}", local.display()),
            Action::Download { script, local } => format!("{script} > {}", local.display()),
            Action::Check(c) => format!("(local check: {c:?})"),
        }
    }
}

/// Read-only facts about the server, one `key=value` per line; run by deploy and by --dry-run.
pub fn preflight_script(layout: &Layout, db: Option<&str>) -> String {
    let live = quote(&layout.live);
    let lock = quote(&layout.lock());
    let db_test = match db {
        Some(db) => format!(
            "[ -f {} ] && echo live_db=yes || echo live_db=no",
            quote(&format!("{}/{db}", layout.live))
        ),
        None => "echo live_db=no".to_string(),
    };
    [
        format!("[ -d {live} ] && echo live=yes || echo live=no"),
        db_test,
        format!(
            "if [ -d {lock} ]; then echo lock=yes; sed 's/^/lock./' {lock}/details 2>/dev/null; else echo lock=no; fi"
        ),
        format!(
            "echo free_kb=$(df -Pk {} 2>/dev/null | awk 'NR==2 {{print $4}}')",
            quote(layout.parent())
        ),
        format!(
            "echo live_build=$(sed -n 's/^ *\"build_id\": *\"\\([^\"]*\\)\".*/\\1/p' {live}/build_info.json 2>/dev/null | head -n 1)"
        ),
        "for t in sqlite3 unzip sha256sum tar; do command -v $t >/dev/null 2>&1 && echo tool.$t=yes || echo tool.$t=no; done".to_string(),
    ]
    .join("\n")
}

/// The exit code the lock step uses when someone else holds the lock.
pub const LOCK_HELD: i32 = 75;

/// The remote steps of a deploy, up to and including verification.
pub fn plan(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let (home, live, lock) = (quote(&l.home), quote(&l.live), quote(&l.lock()));
    let staging = quote(&l.staging());
    let upload = quote(&format!("{}/{}.zip", l.uploads(), f.zip_sha256));
    let mut steps = Vec::new();

    let details: String = f
        .lock_details
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ");
    let take = format!(
        "mkdir -p {home} && if mkdir {lock} 2>/dev/null; then printf '%s\\n' {details} > {lock}/details; \
         else echo 'lock held:' >&2; cat {lock}/details >&2; exit {LOCK_HELD}; fi"
    );
    let (what, script) = if f.break_lock {
        (
            format!("break any existing lock, then take it: {}", l.lock()),
            format!("rm -rf {lock} && {take}"),
        )
    } else {
        (format!("take the deploy lock {}", l.lock()), take)
    };
    steps.push(RemoteStep::run("lock", what, script));

    if f.live_exists {
        let backups = quote(&l.backups());
        let name = &f.backup_name;
        let tarball = quote(&format!("{}/{name}.tar.gz", l.backups()));
        let snap_dir = quote(&format!("{}/{name}.d", l.backups()));
        let mut script =
            format!("set -e\nmkdir -p {backups}\nrm -rf {snap_dir}\nmkdir {snap_dir}\n");
        match (&f.db, f.live_db_exists) {
            (Some(db), true) => {
                let snap = quote(&format!("{}/{name}.d/{db}", l.backups()));
                let live_db = quote(&format!("{}/{db}", l.live));
                // The SQLite backup API gives a consistent copy while the app writes.
                script.push_str(&format!(
                    "sqlite3 {live_db} \".backup '{}'\"\n",
                    sql_path(&format!("{}/{name}.d/{db}", l.backups()))
                ));
                let excludes: String = ["", "-wal", "-shm", "-journal"]
                    .iter()
                    .map(|s| format!(" --exclude={}", quote(&format!("./{db}{s}"))))
                    .collect();
                script.push_str(&format!(
                    "tar -czf {tarball} -C {snap_dir} {} -C {live}{excludes} .\n",
                    quote(db)
                ));
                script.push_str(&format!(
                    "mv {snap} {}\n",
                    quote(&format!("{}/{name}.db", l.backups()))
                ));
            }
            _ => script.push_str(&format!("tar -czf {tarball} -C {live} .\n")),
        }
        script.push_str(&format!("rmdir {snap_dir}\n"));
        script.push_str(&format!(
            "ls -1 {backups} | grep '\\.tar\\.gz$' | sort -r | tail -n +{} | while IFS= read -r old; do rm -f {backups}/\"$old\"; done",
            f.keep_backups.max(1) + 1
        ));
        steps.push(RemoteStep::run(
            "backup",
            format!(
                "back up {} (database via sqlite3 .backup) to {}",
                l.live,
                l.backups()
            ),
            script,
        ));
        steps.push(RemoteStep {
            id: "fetch-backup",
            what: format!("copy the backup to {}", f.local_backup.display()),
            action: Action::Download {
                script: format!("cat {tarball}"),
                local: f.local_backup.clone(),
            },
        });
        if let (Some(_), true) = (&f.db, f.live_db_exists) {
            let snap = quote(&format!("{}/{name}.db", l.backups()));
            steps.push(RemoteStep {
                id: "fetch-db",
                what: "fetch the database snapshot for the schema check".into(),
                action: Action::Download {
                    script: format!("cat {snap} && rm -f {snap}"),
                    local: f.local_db_snapshot.clone(),
                },
            });
            steps.push(RemoteStep {
                id: "schema",
                what: "compare production's schema fingerprint with the package's".into(),
                action: Action::Check(Check::Schema),
            });
        }
    }

    steps.push(RemoteStep {
        id: "upload",
        what: format!("upload {} ({})", f.zip.display(), f.zip_sha256),
        action: Action::Upload {
            local: f.zip.clone(),
            script: format!("mkdir -p {} && cat > {upload}", quote(&l.uploads())),
        },
    });
    steps.push(RemoteStep::run(
        "checksum",
        "verify the upload's sha256 on the server",
        format!(
            "cd {} && printf '%s  %s\\n' {} {} | sha256sum -c --quiet -",
            quote(&l.uploads()),
            f.zip_sha256,
            quote(&format!("{}.zip", f.zip_sha256))
        ),
    ));
    steps.push(RemoteStep::run(
        "extract",
        format!("extract to {}", l.staging()),
        format!(
            "rm -rf {staging} && mkdir {staging} && unzip -q {upload} -d {staging} && mkdir -p {staging}/tmp && rm -f {upload}"
        ),
    ));

    if let Some(db) = &f.db {
        let live_db = format!("{}/{db}", l.live);
        let staged_db = format!("{}/{db}", l.staging());
        if f.live_db_exists && !f.fresh_db {
            steps.push(RemoteStep::run(
                "database",
                format!("keep production's database: consistent copy of {live_db} into staging"),
                format!(
                    "sqlite3 {} \".backup '{}'\"",
                    quote(&live_db),
                    sql_path(&staged_db)
                ),
            ));
        } else if f.live_db_exists && f.preserve_secret_key {
            // The value is read as hex and written back from a blob literal cast to TEXT: the
            // bytes survive whatever they are (quotes, backslashes, non-UTF-8).
            steps.push(RemoteStep::run(
                "secret-key",
                "install the package's database, with production's secret_key copied byte for byte",
                format!(
                    "v=$(sqlite3 {} \"SELECT hex(value) FROM settings WHERE key = 'secret_key'\") || exit 1\n\
                     case \"$v\" in ''|*[!0-9A-F]*) echo 'production has no secret_key in settings' >&2; exit 1;; esac\n\
                     n=$(sqlite3 {} \"UPDATE settings SET value = CAST(X'$v' AS TEXT) WHERE key = 'secret_key'; SELECT changes();\") || exit 1\n\
                     [ \"$n\" = 1 ] || {{ echo 'the package database has no settings row secret_key' >&2; exit 1; }}",
                    quote(&live_db),
                    quote(&staged_db)
                ),
            ));
        }
        if let (Some(cmd), true) = (&f.migrate_command, f.live_db_exists && !f.fresh_db) {
            steps.push(RemoteStep::run(
                "migrate",
                "run the configured migrate_command in staging, on the copied database",
                format!(
                    "cd {staging} && HARNESS_DB_PATH={} sh -c {}",
                    quote(&staged_db),
                    quote(cmd)
                ),
            ));
            steps.push(RemoteStep {
                id: "fetch-migrated",
                what: "fetch the migrated database".into(),
                action: Action::Download {
                    script: format!("cat {}", quote(&staged_db)),
                    local: migrated_snapshot(f),
                },
            });
            steps.push(RemoteStep {
                id: "migrated-schema",
                what: "the migrated schema must be the package's".into(),
                action: Action::Check(Check::MigratedSchema),
            });
        }
    }

    let releases = quote(&l.releases());
    let prev = quote(&format!("{}/{}", l.releases(), f.previous_release));
    let move_old = if f.live_exists {
        format!("mv {live} {prev}\n")
    } else {
        String::new()
    };
    steps.push(RemoteStep::run(
        "swap",
        format!(
            "swap in one script: {} -> releases/{}, staging -> {}, touch tmp/restart.txt",
            l.live, f.previous_release, l.live
        ),
        format!(
            "set -e\nmkdir -p {releases}\n{move_old}mv {staging} {live}\nmkdir -p {live}/tmp\ntouch {live}/tmp/restart.txt"
        ),
    ));
    steps.push(RemoteStep {
        id: "verify",
        what: format!(
            "health 2xx and version = {} after Passenger's restart",
            f.build_id
        ),
        action: Action::Check(Check::Verify),
    });
    steps
}

/// Where the migrated database is fetched to for its check.
pub fn migrated_snapshot(f: &Facts) -> PathBuf {
    f.local_db_snapshot.with_extension("migrated.db")
}

/// What runs after a successful verification.
pub fn finish(f: &Facts) -> Vec<RemoteStep> {
    let releases = quote(&f.layout.releases());
    vec![
        RemoteStep::run(
            "prune",
            format!("keep the newest {} previous releases", f.keep_releases),
            format!(
                "mkdir -p {releases} && cd {releases} && ls -1 | sort -r | tail -n +{} | while IFS= read -r old; do rm -rf -- \"$old\"; done",
                f.keep_releases + 1
            ),
        ),
        unlock(&f.layout),
        audit(&f.layout, &f.audit_line),
    ]
}

/// Swaps the previous release back in; only possible when there was one.
pub fn rollback(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let live = quote(&l.live);
    let prev = quote(&format!("{}/{}", l.releases(), f.previous_release));
    let failed = quote(&format!("{}/{}", l.releases(), f.failed_release));
    vec![
        RemoteStep::run(
            "rollback",
            format!(
                "swap back: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
                l.live, f.failed_release, f.previous_release, l.live
            ),
            format!(
                "set -e\n[ -d {prev} ]\nif [ -d {live} ]; then mv {live} {failed}; fi\nmv {prev} {live}\nmkdir -p {live}/tmp\ntouch {live}/tmp/restart.txt"
            ),
        ),
        RemoteStep {
            id: "verify-rollback",
            what: "the previous build answers health and version again".into(),
            action: Action::Check(Check::VerifyRollback),
        },
    ]
}

pub fn unlock(l: &Layout) -> RemoteStep {
    RemoteStep::run(
        "unlock",
        "release the deploy lock",
        format!("rm -rf {}", quote(&l.lock())),
    )
}

pub fn audit(l: &Layout, line: &str) -> RemoteStep {
    RemoteStep::run(
        "audit",
        format!("append to {}", l.audit_log()),
        format!(
            "mkdir -p {} && printf '%s\\n' {} >> {}",
            quote(&l.home),
            quote(line),
            quote(&l.audit_log())
        ),
    )
}

/// A path inside a double-quoted sqlite3 dot-command argument in single quotes.
fn sql_path(p: &str) -> String {
    p.replace('\'', "''")
}

/// Why a step failed.
#[derive(Debug)]
pub enum StepError {
    Ssh(SshError),
    Check(crate::error::Failure),
    /// Ctrl-C or SIGTERM arrived; the step did not start.
    Interrupted,
}

/// Runs `steps` in order with per-step timing events; stops at the first failure and says which
/// step it was. With `interrupted` returning true, the next step is not started.
pub fn execute(
    steps: &[RemoteStep],
    ssh: &Ssh,
    reporter: &dyn Reporter,
    check: &mut dyn FnMut(Check) -> Result<String, crate::error::Failure>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), (&'static str, StepError)> {
    for step in steps {
        if interrupted() {
            return Err((step.id, StepError::Interrupted));
        }
        reporter.event(&Event::PhaseStarted { phase: step.id });
        let start = Instant::now();
        let result = match &step.action {
            Action::Run(script) => ssh
                .run(script)
                .map(|_| String::new())
                .map_err(StepError::Ssh),
            Action::Upload { local, script } => ssh
                .run_with_input(script, local)
                .map(|_| String::new())
                .map_err(StepError::Ssh),
            Action::Download { script, local } => ssh
                .run_to_file(script, local)
                .map(|_| String::new())
                .map_err(StepError::Ssh),
            Action::Check(c) => check(*c).map_err(StepError::Check),
        };
        match result {
            Ok(detail) => reporter.event(&Event::PhaseFinished {
                phase: step.id,
                elapsed: start.elapsed(),
                detail: if detail.is_empty() {
                    step.what.clone()
                } else {
                    detail
                },
            }),
            Err(e) => return Err((step.id, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
