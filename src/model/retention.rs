//! How many backups of each kind retention keeps; `deploy::retention` decides with it.
use serde::Serialize;

/// How many backups of each kind to keep (`[targets.webhosting] keep_backups`, `keep_daily`,
/// `keep_weekly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
}

impl std::fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the newest {}, one a day for {} days, one a week for {} weeks",
            self.last, self.daily, self.weekly
        )
    }
}
