//! Releases on the server: the three one-script swaps (staging in, a kept release in, the previous
//! release back), Passenger's restart file, and the pruning of old releases. Each swap checks
//! the server under the lock and moves nothing when it is not as planned.
use super::layout::Layout;
use super::ssh::quote;
use super::step::{RemoteStep, StepId};

/// The exit code of a swap that changed nothing: the release to put live is gone, or the name
/// for the live one is taken.
pub const SWAP_REFUSED: i32 = 76;

/// ONE script: the live release moves to releases/<outgoing>, releases/<incoming> goes live.
/// Its checks come first and exit [`SWAP_REFUSED`] before anything moves.
pub fn swap_kept(l: &Layout, incoming: &str, outgoing: &str) -> String {
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

/// ONE script: the deploy's swap. The live release (when `live_exists`) moves to
/// releases/<previous>, staging goes live. The preflight looked before the lock; this checks again,
/// under it, and exits [`SWAP_REFUSED`] before anything moves when the server is not as planned: a
/// first deploy must not move staging into (or over) a live tree that appeared meanwhile.
pub fn swap_in_staging(l: &Layout, previous: &str, live_exists: bool) -> String {
    let live = quote(&l.live);
    let staging = quote(&l.staging());
    let releases = quote(&l.releases());
    let prev = quote(&format!("{}/{previous}", l.releases()));
    let move_old = if live_exists {
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
    format!(
        "set -e\nmkdir -p {releases}\n{move_old}mv {staging} {live}\n{}",
        restart(&live)
    )
}

/// ONE script: a failed deploy's release retires to releases/<failed>, releases/<previous> goes
/// live again.
pub fn swap_back(l: &Layout, previous: &str, failed: &str) -> String {
    let live = quote(&l.live);
    let prev = quote(&format!("{}/{previous}", l.releases()));
    let failed = quote(&format!("{}/{failed}", l.releases()));
    format!(
        "set -e\n[ -d {prev} ]\nif [ -d {live} ]; then mv {live} {failed}; fi\nmv {prev} {live}\n{}",
        restart(&live)
    )
}

/// Touches tmp/restart.txt in the live release: Passenger restarts the app after its throttle.
pub fn restart(live: &str) -> String {
    format!("mkdir -p {live}/tmp\ntouch {live}/tmp/restart.txt")
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
