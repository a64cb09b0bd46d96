//! The Docker end-to-end suite (`cargo nextest run --test e2e`), a libtest-mimic harness so nextest
//! can list and filter its cases. Each module under tests/e2e/ contributes `cases()`; the shared
//! framework is in tests/e2e/support.rs.
//!
//! Docker absent: every case is ignored when `CI` is unset, and fails when `CI` is set.
#[path = "e2e/images.rs"]
mod images;
#[path = "e2e/support.rs"]
mod support;

use libtest_mimic::{Arguments, Trial};
use support::DockerState;

fn main() {
    let args = Arguments::from_args();
    let state = support::docker_state().clone();
    let cases = images::cases();
    let trials = cases
        .into_iter()
        .map(|(name, case)| {
            let state = state.clone();
            let ignored = matches!(state, DockerState::Skip(_));
            Trial::test(name, move || match &state {
                DockerState::Ready => case(),
                DockerState::Missing(why) => Err(why.clone().into()),
                DockerState::Skip(why) => Err(why.clone().into()),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    if let DockerState::Skip(why) = &state {
        eprintln!("e2e: {why}");
    }
    let conclusion = libtest_mimic::run(&args, trials);
    support::sweep_run();
    conclusion.exit();
}
