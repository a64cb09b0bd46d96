//! Production's database lives outside the releases: `<home>/shared/<db>`, and every release's
//! `<db>` is a symlink to it. Why, and what each deploy does with it:
//!
//! - A release switch never copies data. The old release's app processes (Passenger lets them
//!   finish, up to its 10 s stat throttle after the swap) and the new release's write to one
//!   file, whatever connections they keep open. SQLite resolves the symlink before it names its
//!   `-wal`, `-shm` and `-journal` files, so those sit beside the real file for every process.
//!   This is Capistrano's `shared/` + `linked_files`, which fits a shared host: no root, no
//!   daemon, one filesystem, plain `ln -s`.
//! - A schema migration is the one change that needs a pause. The database is *fenced*
//!   (`sqlite::fence`: a trigger on every table aborts every write, in every connection, from
//!   one commit on; reads go on), and the pause file makes the packaged entry point answer
//!   writes with 503 and Retry-After (`package/write_pause.py`) before they reach the app. The
//!   migration runs on a copy; the migrated copy goes back into the same file (SQLite's backup
//!   API, so connections that stay open see it), fenced, until the new release answers. Nothing
//!   is written while fenced, so putting the restore point back on a failure loses nothing.
//! - A server deployed by an older harness, or by hand, has the database inside the live
//!   release. The next deploy moves it: fence it, copy it (fenced) to `shared/`, link the new
//!   release to it, and lift the fence once the new release answers. The old file stays fenced
//!   in the previous release, so a process that still has it open cannot write anything there
//!   that would be lost.
use crate::remote::layout::Layout;
use crate::remote::sqlite;
use crate::remote::ssh::quote;
use crate::remote::step::{RemoteStep, StepId};

/// The Retry-After the pause file carries: Passenger's 10 s throttle and a verification.
pub const RETRY_AFTER_SECS: u32 = 15;

/// Where production's database is, as the preflight found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbState {
    /// No live database: a first deploy, or a live release without one.
    Absent,
    /// A file inside the live release (an older harness, or a hand upload): this deploy moves it.
    InRelease,
    /// The live release links to `shared/<db>`.
    Shared,
}

impl DbState {
    /// Production has a database (in the release or shared).
    pub fn exists(self) -> bool {
        self != DbState::Absent
    }

    pub fn of(live_db: bool, db_shared: bool) -> DbState {
        match (live_db, db_shared) {
            (_, true) => DbState::Shared,
            (true, false) => DbState::InRelease,
            (false, false) => DbState::Absent,
        }
    }
}

/// What a deploy does with the database, chosen from the facts (see `plan::plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbChange {
    /// Nothing live: the package's database becomes the shared one.
    Install,
    /// The new release links to the shared database; no data moves, no pause.
    Link,
    /// The database moves out of the live release (fenced until the new release answers),
    /// migrated on the way when `migrate` is set.
    Move { migrate: Option<String> },
    /// The shared database is migrated under a pause.
    Migrate { command: String },
    /// `--fresh-db`: the package's database replaces production's (an explicit loss).
    Fresh { preserve_secret_key: bool },
}

impl DbChange {
    /// Whether writes are paused (fenced) from the `pause` step until `resume` after verify.
    pub fn pauses(&self) -> bool {
        matches!(self, DbChange::Move { .. } | DbChange::Migrate { .. })
    }
}

/// The database's paths for one layout.
#[derive(Debug, Clone, Copy)]
pub struct Db<'a> {
    pub layout: &'a Layout,
    /// Relative to a release (`[package.database] path`).
    pub rel: &'a str,
}

impl Db<'_> {
    pub fn shared(&self) -> String {
        self.layout.shared_db(self.rel)
    }
    fn in_dir(&self, dir: &str) -> String {
        format!("{dir}/{}", self.rel)
    }
    fn live(&self) -> String {
        self.in_dir(&self.layout.live)
    }
    /// The pre-migration copy a failed migration puts back.
    fn restore_point(&self) -> String {
        format!("{}.before-migration", self.shared())
    }
    /// The copy the migration runs on.
    pub fn work(&self) -> String {
        format!("{}.migrating", self.shared())
    }
    fn shared_dir(&self) -> String {
        match self.shared().rsplit_once('/') {
            Some((d, _)) => d.to_string(),
            None => self.layout.shared(),
        }
    }
}

/// `FILE FILE-wal FILE-shm FILE-journal`, quoted.
fn with_journals(file: &str) -> String {
    format!("{} {}", quote(file), crate::remote::sqlite::journals(file))
}

/// `<dir>/<db>` becomes the link to the shared database (whatever was there, a package's
/// database or a kept release's old copy, goes: the shared file is newer than both).
pub fn link(db: Db, dir: &str) -> String {
    let at = db.in_dir(dir);
    format!(
        "rm -f -- {} && ln -s {} {}",
        with_journals(&at),
        quote(&db.shared()),
        quote(&at)
    )
}

/// A shared database that the current layout does not use is set aside with `stamp` in its
/// name, never deleted: it may be the only copy of something.
fn set_aside(db: Db, stamp: &str) -> String {
    let s = db.shared();
    let aside = format!("{s}.set-aside-{stamp}");
    format!(
        "if [ -e {q} ]; then for x in '' -wal -shm -journal; do [ ! -e {q}\"$x\" ] || mv -- {q}\"$x\" {a}\"$x\"; done; \
         echo {msg} >&2; fi",
        q = quote(&s),
        a = quote(&aside),
        msg = quote(&format!(
            "a shared database no release links to was set aside as {aside}"
        )),
    )
}

/// The steps between extract and swap that give staging its database.
pub fn prepare(
    db: Db,
    change: &DbChange,
    stamp: &str,
    migrated: &std::path::Path,
) -> Vec<RemoteStep> {
    let staging = db.layout.staging();
    let staged = db.in_dir(&staging);
    let shared = db.shared();
    let mkdir = format!("mkdir -p {}", quote(&db.shared_dir()));
    let link_staging = link(db, &staging);
    let mut steps = Vec::new();
    match change {
        DbChange::Install => steps.push(RemoteStep::run(
            StepId::Database,
            format!("install the package's database as {shared} and link the release to it"),
            format!(
                "set -e\n{mkdir}\n{}\nmv -- {} {}\n{link_staging}",
                set_aside(db, stamp),
                quote(&staged),
                quote(&shared)
            ),
        )),
        DbChange::Link => steps.push(RemoteStep::run(
            StepId::Database,
            format!("link the release to production's database {shared} (nothing is copied)"),
            link_staging,
        )),
        DbChange::Fresh {
            preserve_secret_key,
        } => {
            if *preserve_secret_key {
                steps.push(RemoteStep::run(
                    StepId::SecretKey,
                    "copy production's secret_key byte for byte into the package's database",
                    sqlite::copy_secret_key(&db.live(), &staged),
                ));
            }
            steps.push(RemoteStep::run(
                StepId::Database,
                format!("--fresh-db: the package's database replaces {shared}"),
                format!(
                    "set -e\n{mkdir}\nif [ -e {q} ]; then {}; else mv -- {} {q}; fi\n{link_staging}",
                    sqlite::put(&staged, &shared),
                    quote(&staged),
                    q = quote(&shared),
                ),
            ));
        }
        DbChange::Move { migrate } => {
            steps.push(pause(db, &db.live(), Some(stamp)));
            match migrate {
                None => steps.push(RemoteStep::run(
                    StepId::Database,
                    format!(
                        "move production's database to {shared} (a consistent copy, fenced like the original) and link the release to it"
                    ),
                    format!(
                        "set -e\n{mkdir}\n{}\n{link_staging}",
                        sqlite::copy_to_new(&db.live(), &shared, false)
                    ),
                )),
                Some(command) => {
                    steps.extend(migrate_steps(db, &db.live(), command, migrated));
                    steps.push(RemoteStep::run(
                        StepId::Database,
                        format!(
                            "the migrated database becomes {shared} (fenced until the new release answers); link the release to it"
                        ),
                        format!(
                            "set -e\n{mkdir}\n{}\n{}\nrm -f -- {}\n{link_staging}",
                            sqlite::fence(&db.work()),
                            sqlite::copy_to_new(&db.work(), &shared, false),
                            with_journals(&db.work())
                        ),
                    ));
                }
            }
        }
        DbChange::Migrate { command } => {
            steps.push(pause(db, &shared, None));
            steps.push(RemoteStep::run(
                StepId::RestorePoint,
                "copy the fenced database: the restore point if anything fails",
                sqlite::copy_to_new(&shared, &db.restore_point(), true),
            ));
            steps.extend(migrate_steps(db, &shared, command, migrated));
            steps.push(RemoteStep::run(
                StepId::Database,
                format!(
                    "the migrated database goes into {shared} (same file, fenced until the new release answers); link the release to it"
                ),
                format!(
                    "set -e\n{}\n{}\nrm -f -- {}\n{link_staging}",
                    sqlite::fence(&db.work()),
                    sqlite::put(&db.work(), &shared),
                    with_journals(&db.work())
                ),
            ));
        }
    }
    steps
}

/// The pause begins: the flag file for the packaged entry point (503 + Retry-After), then the
/// fence on `fenced`. With `aside`, a shared database left from an earlier attempt moves
/// aside first, so the one this deploy writes is its own.
fn pause(db: Db, fenced: &str, aside: Option<&str>) -> RemoteStep {
    let flag = quote(&db.layout.pause());
    let part = quote(&format!("{}.part", db.layout.pause()));
    RemoteStep::run(
        StepId::Pause,
        format!(
            "pause writes: {} (503, Retry-After {RETRY_AFTER_SECS}) and fence {fenced} (every write fails, reads go on)",
            db.layout.pause()
        ),
        format!(
            "set -e\nmkdir -p {}\nprintf '%s\\n' {RETRY_AFTER_SECS} > {part}\nmv -f {part} {flag}\n{}{}",
            quote(&db.layout.home),
            aside
                .map(|s| format!("{}\n", set_aside(db, s)))
                .unwrap_or_default(),
            sqlite::fence(fenced)
        ),
    )
}

/// The migration on an unfenced copy of `source` (which stays fenced), then its schema check.
fn migrate_steps(
    db: Db,
    source: &str,
    command: &str,
    migrated: &std::path::Path,
) -> Vec<RemoteStep> {
    vec![
        RemoteStep::run(
            StepId::Migrate,
            format!(
                "run migrate_command on a copy of the fenced database ({})",
                db.work()
            ),
            format!(
                "set -e\nmkdir -p {}\n{}\ncd {}\nHARNESS_DB_PATH={} sh -c {}",
                quote(&db.shared_dir()),
                sqlite::copy_to_new(source, &db.work(), true),
                quote(&db.layout.staging()),
                quote(&db.work()),
                quote(command)
            ),
        ),
        RemoteStep {
            id: StepId::FetchMigrated,
            what: "fetch the migrated database".into(),
            action: crate::remote::step::Action::Download {
                script: crate::remote::sqlite::to_stdout(&db.work()),
                local: migrated.to_path_buf(),
            },
        },
        RemoteStep {
            id: StepId::MigratedSchema,
            what: "the migrated schema must be the package's".into(),
            action: crate::remote::step::Action::Check(crate::remote::step::Check::MigratedSchema),
        },
    ]
}

/// After the new release answers: the fence goes, the pause ends, the copies are removed.
pub fn resume(db: Db) -> RemoteStep {
    RemoteStep::run(
        StepId::Resume,
        format!("lift the fence on {} and end the write pause", db.shared()),
        format!(
            "set -e\n{}\nrm -f -- {} {} {}",
            sqlite::unfence(&db.shared()),
            quote(&db.layout.pause()),
            with_journals(&db.restore_point()),
            with_journals(&db.work())
        ),
    )
}

/// Undoes a paused change that did not go live (a failure or an interrupt before the swap, or
/// after a swap back): production's database is as it was when the pause began, unfenced, and
/// the pause ends. Nothing was written while fenced, so this loses nothing.
pub fn undo(db: Db, change: &DbChange) -> Option<RemoteStep> {
    let flag = quote(&db.layout.pause());
    let script = match change {
        // The original never changed: unfence it; the copy in shared/ is this deploy's own.
        DbChange::Move { .. } => format!(
            "set -e\n{}\nrm -f -- {} {}\nrm -f -- {flag}",
            sqlite::unfence(&db.live()),
            with_journals(&db.shared()),
            with_journals(&db.work())
        ),
        // The restore point is the database as the fence found it (unfenced).
        DbChange::Migrate { .. } => format!(
            "set -e\nif [ -e {rp} ]; then {}; fi\n{}\nrm -f -- {} {}\nrm -f -- {flag}",
            sqlite::put(&db.restore_point(), &db.shared()),
            sqlite::unfence(&db.shared()),
            with_journals(&db.restore_point()),
            with_journals(&db.work()),
            rp = quote(&db.restore_point()),
        ),
        _ => return None,
    };
    Some(RemoteStep::run(
        StepId::UndoDatabase,
        "put production's database back as the pause found it, unfenced, and end the pause",
        script,
    ))
}

/// After the lock: a pause left by a deploy that could not finish (killed, connection lost)
/// is ended, so production takes writes again. What it was doing is left for a person: the
/// restore point and the migration copy, when there, stay where they are.
pub fn recover(db: Db) -> RemoteStep {
    RemoteStep::run(
        StepId::Recover,
        format!(
            "a write pause was left on by a deploy that did not finish: lift the fence on {} and end it",
            db.live()
        ),
        format!(
            "set -e\n[ ! -e {live} ] || {}\n[ ! -e {shared} ] || {}\nrm -f -- {}\n\
             for f in {rp} {work}; do [ ! -e \"$f\" ] || echo \"kept for you to look at: $f\" >&2; done",
            sqlite::unfence(&db.live()),
            sqlite::unfence(&db.shared()),
            quote(&db.layout.pause()),
            live = quote(&db.live()),
            shared = quote(&db.shared()),
            rp = quote(&db.restore_point()),
            work = quote(&db.work()),
        ),
    )
}
