//! Ready when a log line contains the given text.
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use super::{POLL, Target, WaitError};

pub(super) async fn wait(
    target: &Target<'_>,
    text: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), WaitError> {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut stream = target.docker.logs(target.container, Some(options));
    // A line may arrive split over chunks, so matching runs over the unfinished tail too.
    let mut pending = String::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let msg = format!("no log line containing `{text}`");
            return Err(target.timed_out(&msg, timeout, "").await);
        }
        match tokio::time::timeout(remaining.min(POLL * 5), stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if pending.contains(text) {
                    return Ok(());
                }
                if let Some(nl) = pending.rfind('\n') {
                    pending.drain(..=nl);
                }
            }
            // The stream ends when the container stops.
            Ok(Some(Err(_))) | Ok(None) => {
                target.ensure_running().await?;
                tokio::time::sleep(POLL).await;
                stream = target.docker.logs(
                    target.container,
                    Some(LogsOptions {
                        follow: true,
                        stdout: true,
                        stderr: true,
                        since: 0,
                        ..Default::default()
                    }),
                );
            }
            Err(_) => target.ensure_running().await?,
        }
    }
}
