//! Stack: compose files → containers on one network per run, through the Docker Engine API.
//!
//! `compose` parses the documented subset (docs/compose.md) into [`ServiceSpec`]s; [`Engine`]
//! starts them level by level and hands back a [`StackHandle`] of [`RunningService`]s; `wait` holds
//! one module per readiness kind; `sweep` removes what dead runs left behind. Every container,
//! network and volume carries `harness.run`, `harness.project` and `harness.owner`, so cleanup
//! works from labels alone, even after a crash.
pub mod compose;
mod engine;
mod owner;
pub mod plan;
mod run;
pub mod sweep;
pub mod upload;
mod vendor;
pub mod wait;

pub use compose::ServiceSpec;
pub use engine::{Engine, RunningService, ServiceState, StackHandle};
pub use owner::Owner;
pub use run::{
    APP_ROOT, AppContainer, DownRequest, LogsRequest, ServiceUrl, StatusRequest, UpOutcome,
    UpRequest, down, logs, status, up,
};
pub(crate) use run::{
    AppSource, Launch, LaunchRequest, connect, guarded, identify, interrupted, materialize,
    plan_launch, playwright_server_url, project_root, runtime, service_env, start_stack, urls_of,
};
pub use upload::Upload;
pub(crate) use vendor::{VENDOR, VendorSet, WRITES_INTO_CACHE_HINT, writes_into_cache};

use crate::error::{Exit, Failure};

pub const LABEL_RUN: &str = "harness.run";
pub const LABEL_PROJECT: &str = "harness.project";
pub const LABEL_OWNER: &str = "harness.owner";
pub const LABEL_KEEP: &str = "harness.keep";
pub const LABEL_SERVICE: &str = "harness.service";
/// The app repository a run belongs to, so `status` and `down` in one project leave others alone.
pub const LABEL_ROOT: &str = "harness.root";
/// Cache volumes (venvs, wheels) carry this instead of a run label: they outlive runs.
pub const LABEL_CACHE: &str = "harness.cache";

/// What a run is called and who owns it; the source of every label.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    pub id: String,
    /// Unique per run: the prefix of every container, network and volume name.
    pub project: String,
    pub owner: Owner,
    pub root: String,
    pub keep: bool,
}

impl RunIdentity {
    pub fn new(root: &std::path::Path, keep: bool) -> RunIdentity {
        let id = new_run_id();
        RunIdentity {
            project: format!("harness-{id}"),
            id,
            owner: Owner::current(),
            root: root.display().to_string(),
            keep,
        }
    }

    pub fn labels(&self) -> std::collections::HashMap<String, String> {
        let mut l = std::collections::HashMap::from([
            (LABEL_RUN.to_string(), self.id.clone()),
            (LABEL_PROJECT.to_string(), self.project.clone()),
            (LABEL_OWNER.to_string(), self.owner.to_string()),
            (LABEL_ROOT.to_string(), self.root.clone()),
        ]);
        if self.keep {
            l.insert(LABEL_KEEP.to_string(), "true".to_string());
        }
        l
    }
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by start time, unique enough with 16 random bits plus pid mix.
fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now.format(&fmt).expect("format date");
    let salt: u16 = rand::random::<u16>() ^ (std::process::id() as u16).rotate_left(7);
    format!("{stamp}-{salt:04x}")
}

/// Stack failures with the context their messages need.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Compose(#[from] compose::ComposeError),
    #[error("{0}")]
    Unreachable(#[from] crate::docker::Unreachable),
    #[error("Docker: {action}: {reason}")]
    Docker { action: String, reason: String },
    #[error("image `{image}` for service `{service}` is not in the Docker daemon")]
    MissingImage { service: String, image: String },
    #[error("{0}")]
    Wait(#[from] wait::WaitError),
    #[error("interrupted; the run's containers, network and volumes were removed")]
    Interrupted,
    /// Another worker of the same `harness test --workers` failed; this one was removed too.
    #[error(
        "stopped because another worker failed; its containers, network and volumes were removed"
    )]
    Stopped,
    #[error("{0}")]
    Plan(String),
    /// The ready app does not show the package's build (`[stack] version`).
    #[error("the stack's app does not show the package's build: {0}")]
    Version(String),
}

impl From<StackError> for Failure {
    fn from(e: StackError) -> Failure {
        let message = e.to_string();
        match e {
            StackError::Compose(_) => Failure::new(Exit::BadInput, message).hint(
                "harness reads a subset of compose; docs/compose.md lists the supported keys and forms",
            ),
            StackError::Plan(_) => Failure::new(Exit::BadInput, message),
            StackError::Version(_) => Failure::new(Exit::Environment, message)
                .hint("check [stack] version in harness.toml (docs/config.md); the app's log is under .harness/runs/<id>/logs/"),
            StackError::Unreachable(e) => e.into(),
            StackError::Docker { .. } => Failure::new(Exit::Environment, message),
            StackError::MissingImage { .. } => Failure::new(Exit::Environment, message).hint(
                "bake the images with `harness images --bake`, or set HARNESS_IMAGE_<SERVICE> \
                 to an image that exists (`docker images`)",
            ),
            StackError::Wait(w) if w.logs.iter().any(|l| writes_into_cache(l)) => {
                Failure::new(Exit::Environment, message).hint(WRITES_INTO_CACHE_HINT)
            }
            StackError::Wait(_) => Failure::new(Exit::Environment, message).hint(
                "the service's own log lines are above; all logs are under .harness/runs/<id>/logs/",
            ),
            StackError::Interrupted => Failure::new(Exit::Interrupted, message),
            StackError::Stopped => Failure::new(Exit::Environment, message),
        }
    }
}

pub(crate) fn docker_err(
    action: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> StackError {
    let action = action.into();
    move |e| StackError::Docker {
        action,
        reason: e.to_string(),
    }
}
