//! Docker's own healthcheck: ready when the engine reports `healthy`.
use std::time::{Duration, Instant};

use bollard::models::HealthStatusEnum;
use bollard::query_parameters::InspectContainerOptions;

use super::{POLL, Target, WaitError};

pub(super) async fn wait(
    target: &Target<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), WaitError> {
    let mut last = String::new();
    loop {
        let inspected = target
            .docker
            .inspect_container(target.container, None::<InspectContainerOptions>)
            .await;
        if let Ok(c) = inspected {
            let state = c.state.unwrap_or_default();
            if !state.running.unwrap_or(false) {
                return Err(target.fail("the container stopped", state.exit_code).await);
            }
            let health = state.health.unwrap_or_default();
            match health.status {
                Some(HealthStatusEnum::HEALTHY) => return Ok(()),
                Some(status) => {
                    let probe = health
                        .log
                        .and_then(|l| l.last().and_then(|r| r.output.clone()))
                        .unwrap_or_default();
                    last = format!("{status}: {}", probe.trim());
                }
                None => last = "no healthcheck status".into(),
            }
        }
        if Instant::now() >= deadline {
            return Err(target
                .timed_out("the healthcheck did not report healthy", timeout, &last)
                .await);
        }
        tokio::time::sleep(POLL).await;
    }
}
