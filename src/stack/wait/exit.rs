//! Jobs: ready means the container exited with code 0.
use std::time::{Duration, Instant};

use super::{POLL, Target, WaitError};

pub(super) async fn wait(
    target: &Target<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), WaitError> {
    loop {
        let (running, code) = target.state().await;
        if !running {
            return match code {
                Some(0) => Ok(()),
                other => Err(target.fail("the job failed", other).await),
            };
        }
        if Instant::now() >= deadline {
            return Err(target
                .timed_out("the job did not finish", timeout, "")
                .await);
        }
        tokio::time::sleep(POLL).await;
    }
}
