//! The deploy as data: each remote step says what it means and the exact shell it runs. `plan` is
//! pure (unit-tested by its commands, printed by `--dry-run`); `execute` does the I/O.
use std::path::PathBuf;
use std::time::Instant;

use super::shared::{self, Db, DbChange, DbState};
use crate::events::{Event, Reporter};
use crate::remote::ssh::{Ssh, SshError, quote};

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
    /// Production's data, outside every release (see `shared`).
    pub fn shared(&self) -> String {
        self.at("shared")
    }
    /// Production's database: `shared/<db>`, where every release's `<db>` links to.
    pub fn shared_db(&self, db: &str) -> String {
        format!("{}/{db}", self.shared())
    }
    /// The write pause's flag file; the packaged entry point looks for it (see `shared`).
    pub fn pause(&self) -> String {
        self.at("pause")
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
    /// Where production's database is (see `shared`); `Absent` when production has none.
    pub db_state: DbState,
    /// Production's schema differs from the package's (the preflight's check; the same check
    /// under the lock refuses when it no longer agrees).
    pub schema_differs: bool,
    /// A write pause left on by a deploy that did not finish: ended after the lock.
    pub paused: bool,
    /// How the switch is verified (`[stack] version`).
    pub version: crate::config::VersionProbe,
    /// What the current release is called under releases/ once it is swapped out.
    pub previous_release: String,
    /// What the new release is called under releases/ if it has to be swapped out again.
    pub failed_release: String,
    pub backup_name: String,
    /// Where the backup goes locally.
    pub local_backup: PathBuf,
    /// Where the database snapshot for the schema check goes locally.
    pub local_db_snapshot: PathBuf,
    /// Releases to delete once this deploy is verified (`Preflight::releases_to_prune`).
    pub prune_releases: Vec<String>,
    /// Backups that retention deletes once the deploy is verified (`retention::plan_names`).
    pub prune_backups: Vec<String>,
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

/// Every remote step, by what it does. Control flow asks for a step by this id (where to resume,
/// which failure means a held lock); `as_str` is the name plans print and events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    /// Not run on the server: the package started in the app image before anything moves.
    BootCheck,
    Audit,
    Backup,
    CheckBackup,
    Checksum,
    Database,
    Extract,
    FetchBackup,
    FetchDb,
    FetchMigrated,
    Lock,
    Migrate,
    MigratedSchema,
    Pause,
    Prune,
    PruneBackups,
    Recover,
    RestoreDb,
    RestorePoint,
    Resume,
    Revert,
    Rollback,
    Schema,
    SecretKey,
    Swap,
    UndoDatabase,
    Unlock,
    Upload,
    Verify,
    VerifyRevert,
    VerifyRollback,
}

impl StepId {
    pub const fn as_str(self) -> &'static str {
        match self {
            StepId::BootCheck => "boot-check",
            StepId::Audit => "audit",
            StepId::Backup => "backup",
            StepId::CheckBackup => "check-backup",
            StepId::Checksum => "checksum",
            StepId::Database => "database",
            StepId::Extract => "extract",
            StepId::FetchBackup => "fetch-backup",
            StepId::FetchDb => "fetch-db",
            StepId::FetchMigrated => "fetch-migrated",
            StepId::Lock => "lock",
            StepId::Migrate => "migrate",
            StepId::MigratedSchema => "migrated-schema",
            StepId::Pause => "pause",
            StepId::Prune => "prune",
            StepId::PruneBackups => "prune-backups",
            StepId::Recover => "recover",
            StepId::RestoreDb => "restore-db",
            StepId::RestorePoint => "restore-point",
            StepId::Resume => "resume",
            StepId::Revert => "revert",
            StepId::Rollback => "rollback",
            StepId::Schema => "schema",
            StepId::SecretKey => "secret-key",
            StepId::Swap => "swap",
            StepId::UndoDatabase => "undo-database",
            StepId::Unlock => "unlock",
            StepId::Upload => "upload",
            StepId::Verify => "verify",
            StepId::VerifyRevert => "verify-revert",
            StepId::VerifyRollback => "verify-rollback",
        }
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so a plan's `{:<14}` column still lines up.
        f.pad(self.as_str())
    }
}

impl serde::Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `{ "id", "what", "command" }`: a step as `--json` receipts show it.
impl serde::Serialize for RemoteStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("RemoteStep", 3)?;
        m.serialize_field("id", &self.id)?;
        m.serialize_field("what", &self.what)?;
        m.serialize_field("command", &self.command())?;
        m.end()
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStep {
    pub id: StepId,
    /// What the step means, for people.
    pub what: String,
    pub action: Action,
}

impl RemoteStep {
    pub(super) fn run(id: StepId, what: impl Into<String>, script: String) -> Self {
        RemoteStep {
            id,
            what: what.into(),
            action: Action::Run(script),
        }
    }

    /// The command as `--dry-run` prints it (and `--json` gives it).
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
    let shared = match db {
        Some(db) => {
            let (link, target) = (
                quote(&format!("{}/{db}", layout.live)),
                quote(&layout.shared_db(db)),
            );
            format!(
                "[ -L {link} ] && [ \"$(readlink {link})\" = {target} ] && echo db_shared=yes || echo db_shared=no\n\
                 [ -e {target} ] && echo shared_db=yes || echo shared_db=no"
            )
        }
        None => "echo db_shared=no".to_string(),
    };
    [
        format!("[ -d {live} ] && echo live=yes || echo live=no"),
        db_test,
        shared,
        format!(
            "[ -e {} ] && echo paused=yes || echo paused=no",
            quote(&layout.pause())
        ),
        format!(
            "if [ -d {lock} ]; then echo lock=yes; sed 's/^/lock./' {lock}/details 2>/dev/null; else echo lock=no; fi"
        ),
        format!(
            "echo free_kb=$(df -Pk {} 2>/dev/null | awk 'NR==2 {{print $4}}')",
            quote(layout.parent())
        ),
        // What a backup of the live release takes: the tree, and a copy of its database.
        // The shared database counts: it is outside the tree, and a backup copies it.
        format!(
            "[ -d {live} ] && echo live_kb=$(du -sk {live} {} 2>/dev/null | awk '{{s += $1}} END {{print s}}')",
            db.map(|d| quote(&layout.shared_db(d))).unwrap_or_default()
        ),
        format!(
            "echo live_build=$({})",
            json_field("build_id", &format!("{live}/build_info.json"))
        ),
        "for t in python3 unzip sha256sum tar; do command -v $t >/dev/null 2>&1 && echo tool.$t=yes || echo tool.$t=no; done".to_string(),
        // Kept releases with the build they hold, and backups with their size: one line each.
        format!(
            "for d in {}/*/; do [ -d \"$d\" ] || continue; n=${{d%/}}; n=${{n##*/}}; \
             printf 'release=%s\\t%s\\t%s\\t%s\\n' \"$n\" \"$({})\" \"$({})\" \"$({})\"; done",
            quote(&layout.releases()),
            json_field("build_id", "\"$d\"build_info.json"),
            json_field("built_at", "\"$d\"build_info.json"),
            json_field("schema", "\"$d\"build_info.json"),
        ),
        format!(
            "for f in {}/*.tar.gz; do [ -f \"$f\" ] || continue; n=${{f##*/}}; \
             printf 'backup=%s\\t%s\\n' \"${{n%.tar.gz}}\" \"$(wc -c < \"$f\" | tr -d ' ')\"; done",
            quote(&layout.backups())
        ),
    ]
    .join("\n")
}

/// A top-level string field of a pretty-printed build_info.json (one key per line), by sed, so
/// the server needs no Python for it.
fn json_field(key: &str, file: &str) -> String {
    format!("sed -n 's/^ *\"{key}\": *\"\\([^\"]*\\)\".*/\\1/p' {file} 2>/dev/null | head -n 1")
}

/// The exit code the lock step uses when someone else holds the lock.
pub const LOCK_HELD: i32 = 75;

/// The remote steps of a deploy, up to and including verification.
pub fn plan(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let live = quote(&l.live);
    let staging = quote(&l.staging());
    let upload = quote(&format!("{}/{}.zip", l.uploads(), f.zip_sha256));
    let mut steps = Vec::new();

    steps.push(lock(l, &f.lock_details, f.break_lock));
    if let (true, Some(rel)) = (f.paused, &f.db) {
        steps.push(shared::recover(Db { layout: l, rel }));
    }

    if f.live_exists {
        let name = &f.backup_name;
        let backup = Backup {
            name: name.clone(),
            db: f.db.clone().filter(|_| f.db_state.exists()),
            local: f.local_backup.clone(),
            keep_db_snapshot: true,
        };
        steps.extend(backup_steps(l, &backup));
        if let (Some(_), true) = (&f.db, f.db_state.exists()) {
            let snap = quote(&format!("{}/{name}.db", l.backups()));
            steps.push(RemoteStep {
                id: StepId::FetchDb,
                what: "fetch the database snapshot for the schema check".into(),
                action: Action::Download {
                    script: format!("cat {snap} && rm -f {snap}"),
                    local: f.local_db_snapshot.clone(),
                },
            });
            steps.push(RemoteStep {
                id: StepId::Schema,
                what: "compare production's schema fingerprint with the package's".into(),
                action: Action::Check(Check::Schema),
            });
        }
    }

    steps.push(RemoteStep {
        id: StepId::Upload,
        what: format!("upload {} ({})", f.zip.display(), f.zip_sha256),
        action: Action::Upload {
            local: f.zip.clone(),
            script: format!("mkdir -p {} && cat > {upload}", quote(&l.uploads())),
        },
    });
    steps.push(RemoteStep::run(
        StepId::Checksum,
        "verify the upload's sha256 on the server",
        format!(
            "cd {} && printf '%s  %s\\n' {} {} | sha256sum -c --quiet -",
            quote(&l.uploads()),
            f.zip_sha256,
            quote(&format!("{}.zip", f.zip_sha256))
        ),
    ));
    steps.push(RemoteStep::run(
        StepId::Extract,
        format!("extract to {}", l.staging()),
        format!(
            "rm -rf {staging} && mkdir {staging} && unzip -q {upload} -d {staging} && mkdir -p {staging}/tmp && rm -f {upload}"
        ),
    ));

    if let (Some(rel), Some(change)) = (&f.db, db_change(f)) {
        let db = Db { layout: l, rel };
        steps.extend(shared::prepare(
            db,
            &change,
            &f.previous_release[..16.min(f.previous_release.len())],
            &migrated_snapshot(f),
        ));
    }

    let releases = quote(&l.releases());
    let prev = quote(&format!("{}/{}", l.releases(), f.previous_release));
    // The preflight looked before the lock; the swap checks again, under it, and refuses (exit
    // SWAP_REFUSED) before anything moves when the server is not as planned: a first deploy must
    // not move staging into (or over) a live tree that appeared meanwhile.
    let move_old = if f.live_exists {
        format!(
            "[ -d {live} ] || {{ echo 'the live release is gone: '{live} >&2; exit {SWAP_REFUSED}; }}\n\
             [ ! -e {prev} ] || {{ echo 'already exists: '{prev} >&2; exit {SWAP_REFUSED}; }}\n\
             mv {live} {prev}\n"
        )
    } else {
        format!(
            "[ ! -e {live} ] || {{ echo 'a live release appeared since the preflight: '{live} >&2; exit {SWAP_REFUSED}; }}\n"
        )
    };
    steps.push(RemoteStep::run(
        StepId::Swap,
        format!(
            "swap in one script: {} -> releases/{}, staging -> {}, touch tmp/restart.txt",
            l.live, f.previous_release, l.live
        ),
        format!(
            "set -e\nmkdir -p {releases}\n{move_old}mv {staging} {live}\n{}",
            restart(&live)
        ),
    ));
    steps.push(RemoteStep {
        id: StepId::Verify,
        what: format!(
            "{} after Passenger's restart",
            crate::probe::describe(&f.version, &f.build_id)
        ),
        action: Action::Check(Check::Verify),
    });
    steps
}

/// What this deploy does with the database, when the package has one.
pub fn db_change(f: &Facts) -> Option<DbChange> {
    f.db.as_ref()?;
    Some(match f.db_state {
        DbState::Absent => DbChange::Install,
        _ if f.fresh_db => DbChange::Fresh {
            preserve_secret_key: f.preserve_secret_key,
        },
        DbState::InRelease => DbChange::Move {
            migrate: f.migrate_command.clone().filter(|_| f.schema_differs),
        },
        DbState::Shared => match (&f.migrate_command, f.schema_differs) {
            (Some(command), true) => DbChange::Migrate {
                command: command.clone(),
            },
            _ => DbChange::Link,
        },
    })
}

/// The deploy lock: an atomic `mkdir` with a details file; exit [`LOCK_HELD`] when someone else
/// holds it. Deploy, rollback and backup all take it.
pub fn lock(l: &Layout, details: &[(String, String)], break_lock: bool) -> RemoteStep {
    let (home, lock) = (quote(&l.home), quote(&l.lock()));
    let detail = |k: &str| {
        details
            .iter()
            .find(|(key, _)| key == k)
            .map_or("unknown", |(_, v)| v.as_str())
            .to_string()
    };
    let details_args: String = details
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ");
    let take = format!(
        "mkdir -p {home} && if mkdir {lock} 2>/dev/null; then printf '%s\\n' {details_args} > {lock}/details; \
         else echo 'lock held:' >&2; cat {lock}/details >&2; exit {LOCK_HELD}; fi"
    );
    if break_lock {
        // The break is audited where every deploy is: who broke it, and whose lock it was.
        let audit = quote(&l.audit_log());
        let by = quote(&format!(
            "{} lock broken by={}@{} pid={} for={}; it was held by:",
            detail("time"),
            detail("user"),
            detail("host"),
            detail("pid"),
            detail("action")
        ));
        RemoteStep::run(
            StepId::Lock,
            format!(
                "break any existing lock (audited), then take it: {}",
                l.lock()
            ),
            format!(
                "mkdir -p {home} && if [ -d {lock} ]; then printf '%s %s\\n' {by} \
                 \"$(tr '\\n' ' ' < {lock}/details 2>/dev/null)\" >> {audit}; rm -rf {lock}; fi && {take}"
            ),
        )
    } else {
        RemoteStep::run(
            StepId::Lock,
            format!("take the deploy lock {}", l.lock()),
            take,
        )
    }
}

/// One backup of the live release: `backups/<name>.tar.gz` on the server, then a local copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// `<stamp>-<live build id>` (see `retention`).
    pub name: String,
    /// The database (relative to remote_dir) when the live release has one.
    pub db: Option<String>,
    /// Where the local copy goes.
    pub local: PathBuf,
    /// Leave the database copy beside the tarball as `backups/<name>.db` (the deploy fetches it
    /// for its schema check and removes it).
    pub keep_db_snapshot: bool,
}

/// The archive's layout: the database copy at its path (`app.db`), then the live tree under `./`
/// without the live database and its journals. Extracted, it is the release as it ran, with a
/// consistent database: what `backup::extract` gives back.
pub fn backup_steps(l: &Layout, b: &Backup) -> Vec<RemoteStep> {
    let (backups, live) = (quote(&l.backups()), quote(&l.live));
    let name = &b.name;
    let tarball = quote(&format!("{}/{name}.tar.gz", l.backups()));
    let part = quote(&format!("{}/{name}.tar.gz.part", l.backups()));
    let snap_dir_raw = format!("{}/{name}.d", l.backups());
    let snap_dir = quote(&snap_dir_raw);
    // Whatever stops the script (a failed step, a signal, a lost connection), the snapshot
    // folder and the partial archive go: they are a full copy of the database each. Partials a
    // killed run left behind go first (the lock makes this the only backup running).
    // The trap's command is itself a quoted word: the quoted paths inside it are quoted again.
    let cleanup = quote(&format!("rm -rf -- {snap_dir} {part}"));
    let mut script = format!(
        "set -e\nmkdir -p {backups}\n\
         trap {cleanup} EXIT\ntrap 'exit 130' HUP INT TERM\n\
         for stale in {backups}/*.tar.gz.part {backups}/*.d; do [ -e \"$stale\" ] && rm -rf -- \"$stale\"; done\n\
         mkdir {snap_dir}\n"
    );
    match &b.db {
        Some(db) => {
            if let Some((dir, _)) = db.rsplit_once('/') {
                script.push_str(&format!(
                    "mkdir -p {}\n",
                    quote(&format!("{snap_dir_raw}/{dir}"))
                ));
            }
            // The SQLite backup API gives a consistent copy while the app writes.
            script.push_str(&crate::remote::sqlite::copy(
                &format!("{}/{db}", l.live),
                &format!("{snap_dir_raw}/{db}"),
            ));
            script.push('\n');
            let excludes: String = ["", "-wal", "-shm", "-journal"]
                .iter()
                .map(|s| format!(" --exclude={}", quote(&format!("./{db}{s}"))))
                .collect();
            script.push_str(&tar_gz(
                &part,
                &format!("-C {snap_dir} {} -C {live}{excludes} .", quote(db)),
            ));
            if b.keep_db_snapshot {
                script.push_str(&format!(
                    "mv {} {}\n",
                    quote(&format!("{snap_dir_raw}/{db}")),
                    quote(&format!("{}/{name}.db", l.backups()))
                ));
            }
        }
        None => script.push_str(&tar_gz(&part, &format!("-C {live} ."))),
    }
    // Renamed when complete: a listing never shows half a backup.
    script.push_str(&format!("mv {part} {tarball}"));
    vec![
        RemoteStep::run(
            StepId::Backup,
            format!(
                "back up {} ({}) to {}/{name}.tar.gz",
                l.live,
                if b.db.is_some() {
                    "database via SQLite's backup API"
                } else {
                    "no database"
                },
                l.backups()
            ),
            script,
        ),
        RemoteStep {
            id: StepId::FetchBackup,
            what: format!("copy the backup to {}", b.local.display()),
            action: Action::Download {
                script: format!("cat {tarball}"),
                local: b.local.clone(),
            },
        },
    ]
}

/// `tar -cf - ARGS | gzip -1 > OUT`, failing when tar fails. `gzip -1` halves the time of tar's
/// default level for a few percent more bytes. POSIX sh has no pipefail, so tar's status comes
/// back through fd 3. Exit 1 is GNU tar's "file changed as we read it": a live app writes its
/// logs while it is archived (the database is copied on its own, consistently), so it counts as
/// success.
fn tar_gz(out: &str, args: &str) -> String {
    format!(
        "rc=$( {{ {{ if tar -cf - {args}; then echo 0 >&3; else echo $? >&3; fi; }} | gzip -1 > {out}; }} 3>&1 )\n\
         case \"$rc\" in 0|1) ;; *) echo \"tar failed (exit $rc)\" >&2; exit 1;; esac\n"
    )
}

/// Checks a file on the server against a sha256 (`sha256sum -c`).
pub fn sha256_check(id: StepId, dir: &str, file: &str, sha256: &str) -> RemoteStep {
    RemoteStep::run(
        id,
        format!("check {dir}/{file} against sha256 {sha256}"),
        format!(
            "cd {} && printf '%s  %s\\n' {} {} | sha256sum -c --quiet -",
            quote(dir),
            quote(sha256),
            quote(file)
        ),
    )
}

/// Deletes the named backups (retention's decision, made here from the server's listing).
pub fn prune_backups(l: &Layout, names: &[String]) -> RemoteStep {
    let files: Vec<String> = names
        .iter()
        .map(|n| quote(&format!("{}/{n}.tar.gz", l.backups())))
        .collect();
    RemoteStep::run(
        StepId::PruneBackups,
        format!("delete {} backups retention no longer keeps", names.len()),
        format!("rm -f -- {}", files.join(" ")),
    )
}

/// Deletes the named releases under releases/: `Preflight::releases_to_prune` chose them from the
/// server's listing, by name, never the rollback target.
pub fn prune_releases(l: &Layout, names: &[String]) -> RemoteStep {
    let dirs: Vec<String> = names
        .iter()
        .map(|n| quote(&format!("{}/{n}", l.releases())))
        .collect();
    RemoteStep::run(
        StepId::Prune,
        if names.is_empty() {
            "no release to prune".to_string()
        } else {
            format!(
                "delete {} older releases: {}",
                names.len(),
                names.join(", ")
            )
        },
        if dirs.is_empty() {
            "true".to_string()
        } else {
            format!("rm -rf -- {}", dirs.join(" "))
        },
    )
}

/// Production's database copied consistently into `dir` (staging, or a kept release about to go
/// live). A kept release may still hold its old copy's -wal or -shm, which SQLite would replay
/// into the new copy; they go first.
pub fn keep_production_db(l: &Layout, db: &str, dir: &str) -> RemoteStep {
    let target = format!("{dir}/{db}");
    RemoteStep::run(
        StepId::Database,
        format!(
            "keep production's database: consistent copy of {}/{db} into {dir}",
            l.live
        ),
        format!(
            "rm -f {} && {}",
            journals(&target),
            crate::remote::sqlite::copy(&format!("{}/{db}", l.live), &target)
        ),
    )
}

/// `FILE-wal FILE-shm FILE-journal`, quoted.
pub(super) fn journals(file: &str) -> String {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| quote(&format!("{file}{s}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a rollback depends on; gathered by `rollback` before anything changes.
#[derive(Debug, Clone)]
pub struct RollbackFacts {
    pub layout: Layout,
    /// The kept release to put back: its name under releases/.
    pub release: String,
    /// The name the live release gets under releases/ (`<stamp>-<live build>`).
    pub outgoing: String,
    /// The database, relative to remote_dir (`[package.database] path`).
    pub db: Option<String>,
    /// Where production's database is (`Absent`: it has none): in the shared layout the kept
    /// release is linked to it, in a release it is copied into the kept one (without --with-db).
    pub db_state: DbState,
    /// A write pause left on by a deploy that did not finish: ended after the lock.
    pub paused: bool,
    /// How the switch is verified (`[stack] version`).
    pub version: crate::config::VersionProbe,
    /// `--with-db`: restore the database from this backup (by name, under backups/) after
    /// checking its sha256 when the ledger has it; and back up the live release first.
    pub restore: Option<Restore>,
    pub lock_details: Vec<(String, String)>,
    pub break_lock: bool,
}

#[derive(Debug, Clone)]
pub struct Restore {
    pub backup: String,
    pub sha256: Option<String>,
    /// The backup of the live release taken first.
    pub safety: Backup,
}

/// The remote steps of a rollback, up to and including verification. Without --with-db the
/// kept release gets production's database (the code goes back, the data stays); with it, the
/// kept release's database backup, after a backup of what is live now.
pub fn rollback_plan(f: &RollbackFacts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let dir = format!("{}/{}", l.releases(), f.release);
    let mut steps = vec![lock(l, &f.lock_details, f.break_lock)];
    if let (true, Some(rel)) = (f.paused, &f.db) {
        steps.push(shared::recover(Db { layout: l, rel }));
    }
    let shared_layout = f.db_state == DbState::Shared;
    if let (Some(r), Some(_)) = (&f.restore, &f.db) {
        steps.extend(backup_steps(l, &r.safety));
        if let Some(sha) = &r.sha256 {
            steps.push(sha256_check(
                StepId::CheckBackup,
                &l.backups(),
                &format!("{}.tar.gz", r.backup),
                sha,
            ));
        }
    }
    match (&f.restore, &f.db) {
        (Some(r), Some(rel)) if shared_layout => {
            // --with-db in the shared layout: the backup's database goes into production's
            // file (same inode, so every open connection sees it); the kept release links to it.
            let db = Db { layout: l, rel };
            let scratch = format!("{}.restoring", db.shared());
            steps.push(RemoteStep::run(
                StepId::RestoreDb,
                format!("the database of backup {} into {}", r.backup, db.shared()),
                format!(
                    "set -e\nrm -f -- {s}\ntar -xzOf {} {} > {s}\n{}\nrm -f -- {s}\n{}",
                    quote(&format!("{}/{}.tar.gz", l.backups(), r.backup)),
                    quote(rel),
                    crate::remote::sqlite::put(&scratch, &db.shared()),
                    shared::link(db, &dir),
                    s = quote(&scratch),
                ),
            ));
        }
        (None, Some(rel)) if shared_layout => steps.push(RemoteStep::run(
            StepId::Database,
            format!(
                "link releases/{} to production's database {} (nothing is copied)",
                f.release,
                l.shared_db(rel)
            ),
            shared::link(Db { layout: l, rel }, &dir),
        )),
        (Some(r), Some(db)) => {
            let target = format!("{dir}/{db}");
            steps.push(RemoteStep::run(
                StepId::RestoreDb,
                format!(
                    "the database of backup {} into releases/{}",
                    r.backup, f.release
                ),
                format!(
                    "rm -f {} {} && tar -xzf {} -C {} {}\n[ -f {} ]",
                    quote(&target),
                    journals(&target),
                    quote(&format!("{}/{}.tar.gz", l.backups(), r.backup)),
                    quote(&dir),
                    quote(db),
                    quote(&target)
                ),
            ));
        }
        (None, Some(db)) if f.db_state.exists() => steps.push(keep_production_db(l, db, &dir)),
        _ => {}
    }
    steps.push(RemoteStep::run(
        StepId::Swap,
        format!(
            "swap in one script: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
            l.live, f.outgoing, f.release, l.live
        ),
        swap_kept(l, &f.release, &f.outgoing),
    ));
    steps.push(RemoteStep {
        id: StepId::Verify,
        what: crate::probe::describe(&f.version, &format!("of release {}", f.release)),
        action: Action::Check(Check::Verify),
    });
    steps
}

/// When the rolled-back release does not answer: the release that was live goes back.
pub fn revert_rollback(f: &RollbackFacts) -> Vec<RemoteStep> {
    vec![
        RemoteStep::run(
            StepId::Revert,
            format!(
                "swap back: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
                f.layout.live, f.release, f.outgoing, f.layout.live
            ),
            swap_kept(&f.layout, &f.outgoing, &f.release),
        ),
        RemoteStep {
            id: StepId::VerifyRevert,
            what: "the build that was live answers health and version again".into(),
            action: Action::Check(Check::VerifyRollback),
        },
    ]
}

/// The exit code of a swap that changed nothing: the release to put live is gone, or the name
/// for the live one is taken.
pub const SWAP_REFUSED: i32 = 76;

/// ONE script: the live release moves to releases/<outgoing>, releases/<incoming> goes live.
/// Its checks come first and exit [`SWAP_REFUSED`] before anything moves.
fn swap_kept(l: &Layout, incoming: &str, outgoing: &str) -> String {
    let live = quote(&l.live);
    let incoming = quote(&format!("{}/{incoming}", l.releases()));
    let outgoing = quote(&format!("{}/{outgoing}", l.releases()));
    format!(
        "set -e\n[ -d {incoming} ] || {{ echo 'no release '{incoming} >&2; exit {SWAP_REFUSED}; }}\n\
         [ ! -e {outgoing} ] || {{ echo 'already exists: '{outgoing} >&2; exit {SWAP_REFUSED}; }}\n\
         if [ -d {live} ]; then mv {live} {outgoing}; fi\nmv {incoming} {live}\n{}",
        restart(&live)
    )
}

/// A consistent copy of the SQLite file `db` on stdout (read-only for the server: the copy is a
/// temporary file, removed again).
pub fn db_snapshot(db: &str) -> String {
    crate::remote::sqlite::to_stdout(db)
}

/// Touches tmp/restart.txt in the live release: Passenger restarts the app after its throttle.
fn restart(live: &str) -> String {
    format!("mkdir -p {live}/tmp\ntouch {live}/tmp/restart.txt")
}

/// Where the migrated database is fetched to for its check.
pub fn migrated_snapshot(f: &Facts) -> PathBuf {
    f.local_db_snapshot.with_extension("migrated.db")
}

/// What runs after a successful verification.
pub fn finish(f: &Facts) -> Vec<RemoteStep> {
    let mut steps = vec![prune_releases(&f.layout, &f.prune_releases)];
    if let (Some(rel), Some(true)) = (&f.db, db_change(f).map(|c| c.pauses())) {
        steps.push(shared::resume(Db {
            layout: &f.layout,
            rel,
        }));
    }
    if !f.prune_backups.is_empty() {
        steps.push(prune_backups(&f.layout, &f.prune_backups));
    }
    steps.push(unlock(&f.layout, token_of(&f.lock_details)));
    steps.push(audit(&f.layout, &f.audit_line));
    steps
}

/// Swaps the previous release back in; only possible when there was one.
pub fn rollback(f: &Facts) -> Vec<RemoteStep> {
    let l = &f.layout;
    let live = quote(&l.live);
    let prev = quote(&format!("{}/{}", l.releases(), f.previous_release));
    let failed = quote(&format!("{}/{}", l.releases(), f.failed_release));
    // A paused change goes back with the code: the database as the pause found it.
    let undo = match (&f.db, db_change(f)) {
        (Some(rel), Some(change)) => shared::undo(Db { layout: l, rel }, &change),
        _ => None,
    };
    let mut steps = vec![RemoteStep::run(
        StepId::Rollback,
        format!(
            "swap back: {} -> releases/{}, releases/{} -> {}, touch tmp/restart.txt",
            l.live, f.failed_release, f.previous_release, l.live
        ),
        format!(
            "set -e\n[ -d {prev} ]\nif [ -d {live} ]; then mv {live} {failed}; fi\nmv {prev} {live}\n{}",
            restart(&live)
        ),
    )];
    steps.extend(undo);
    steps.push(RemoteStep {
        id: StepId::VerifyRollback,
        what: "the previous build answers health and version again".into(),
        action: Action::Check(Check::VerifyRollback),
    });
    steps
}

/// Run when a deploy fails or is interrupted before its swap, after its `pause` step began.
pub fn undo_before_swap(f: &Facts) -> Option<RemoteStep> {
    match (&f.db, db_change(f)) {
        (Some(rel), Some(change)) => shared::undo(
            Db {
                layout: &f.layout,
                rel,
            },
            &change,
        ),
        _ => None,
    }
}

/// The token in a lock's details (see `deploy::lock_details`).
fn token_of(details: &[(String, String)]) -> &str {
    details
        .iter()
        .find(|(k, _)| k == "token")
        .map_or("", |(_, v)| v.as_str())
}

/// Releases the lock only when it is still the one `token` took: a lock someone broke and took
/// meanwhile stays theirs.
pub fn unlock(l: &Layout, token: &str) -> RemoteStep {
    let lock = quote(&l.lock());
    RemoteStep::run(
        StepId::Unlock,
        "release the deploy lock",
        format!(
            "if grep -qxF {} {lock}/details 2>/dev/null; then rm -rf {lock}; \
             elif [ -d {lock} ]; then echo 'the lock is not ours any more (someone broke it); left as it is' >&2; fi",
            quote(&format!("token={token}"))
        ),
    )
}

pub fn audit(l: &Layout, line: &str) -> RemoteStep {
    RemoteStep::run(
        StepId::Audit,
        format!("append to {}", l.audit_log()),
        format!(
            "mkdir -p {} && printf '%s\\n' {} >> {}",
            quote(&l.home),
            quote(line),
            quote(&l.audit_log())
        ),
    )
}

/// Runs `script` into `<local>.part`, renamed to `local` only when it succeeded: a file under
/// its final name is always whole (an interrupted or failed copy of a backup must never look
/// like one).
fn download(ssh: &Ssh, script: &str, local: &std::path::Path) -> Result<String, StepError> {
    let mut part = local.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = ssh.run_to_file(script, &part).map_err(StepError::Ssh);
    match result {
        Ok(_) => std::fs::rename(&part, local)
            .map(|_| String::new())
            .map_err(|e| {
                StepError::Check(crate::error::Failure::new(
                    crate::error::Exit::Environment,
                    format!(
                        "cannot rename {} to {}: {e}",
                        part.display(),
                        local.display()
                    ),
                ))
            }),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
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
) -> Result<(), (StepId, StepError)> {
    for step in steps {
        if interrupted() {
            return Err((step.id, StepError::Interrupted));
        }
        reporter.event(&Event::PhaseStarted {
            phase: step.id.as_str(),
        });
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
            Action::Download { script, local } => download(ssh, script, local),
            Action::Check(c) => check(*c).map_err(StepError::Check),
        };
        match result {
            Ok(detail) => reporter.event(&Event::PhaseFinished {
                phase: step.id.as_str(),
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
