//! Removes what runs whose owner process is gone left behind: containers, networks and volumes,
//! found by label. It runs at the start of every harness command, so a crash or a SIGKILL leaves
//! orphans only until the next command. Runs kept on purpose stay until `harness down`.
use std::path::PathBuf;
use std::time::Duration;

use super::{Engine, StackError};
use crate::events::{Event, Reporter};

/// What the sweep needs to know about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub owner_alive: bool,
    /// Came up completely with `harness.keep=true` (its marker volume exists).
    pub kept: bool,
}

/// The runs to remove: owner gone and not kept. A run killed while starting has no marker yet,
/// so it is removed even when it was meant to be kept.
pub fn orphans(candidates: &[Candidate]) -> Vec<String> {
    candidates
        .iter()
        .filter(|c| !c.owner_alive && !c.kept)
        .map(|c| c.id.clone())
        .collect()
}

/// Sweeps the daemon; returns the removed run ids.
pub async fn sweep(engine: &Engine) -> Result<Vec<String>, StackError> {
    let runs = engine.runs(None).await?;
    let candidates: Vec<Candidate> = runs
        .iter()
        .map(|r| Candidate {
            id: r.id.clone(),
            owner_alive: r.owner_alive,
            kept: r.kept,
        })
        .collect();
    let doomed = orphans(&candidates);
    for id in &doomed {
        let run = runs.iter().find(|r| &r.id == id).expect("listed");
        // Keep what the dead run logged, where its own run directory would have had it.
        let logs = (!run.root.is_empty()).then(|| {
            PathBuf::from(&run.root)
                .join(".harness/runs")
                .join(id)
                .join("logs")
        });
        engine.remove_run(id, logs.as_deref()).await?;
    }
    Ok(doomed)
}

/// The sweep at the start of a command: silent when there is no daemon (commands that do not
/// need Docker must still work), a warning when it fails otherwise.
pub fn at_start(reporter: &dyn Reporter) {
    let Ok(rt) = crate::docker::runtime() else {
        return;
    };
    rt.block_on(async {
        let Ok(engine) = Engine::connect_within(Duration::from_secs(2)).await else {
            return;
        };
        match sweep(&engine).await {
            Ok(ids) if !ids.is_empty() => reporter.event(&Event::Note {
                message: format!(
                    "swept {} orphaned run(s) whose harness process is gone: {}",
                    ids.len(),
                    ids.join(", ")
                ),
            }),
            Ok(_) => {}
            Err(e) => reporter.event(&Event::Warning {
                message: format!("sweeping orphaned runs failed: {e}"),
            }),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, owner_alive: bool, kept: bool) -> Candidate {
        Candidate {
            id: id.into(),
            owner_alive,
            kept,
        }
    }

    #[test]
    fn only_dead_unkept_runs_are_orphans() {
        let all = [
            c("live", true, false),
            c("live-kept", true, true),
            c("dead", false, false),
            c("dead-kept", false, true),
        ];
        assert_eq!(orphans(&all), vec!["dead".to_string()]);
    }

    #[test]
    fn nothing_to_sweep() {
        assert!(orphans(&[]).is_empty());
    }
}
