//! Releases on the server: the one-script swap of a kept release, Passenger's restart file, and
//! the pruning of old releases.
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
