//! Backups on the server: a tarball of the live tree with a consistent copy of its database,
//! its checksum, and retention's deletions.
use std::path::PathBuf;

use super::layout::Layout;
use super::ssh::quote;
use super::step::{Action, RemoteStep, StepId};

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
            script.push_str(&super::sqlite::copy(
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
pub fn tar_gz(out: &str, args: &str) -> String {
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
