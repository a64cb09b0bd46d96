//! Everything that changes production: `deploy` (ship.rs), `rollback`, `backup`, and `status`,
//! which only reads it.
//!
//! Each command gathers its facts, plans its remote steps as data (`plan.rs`), and hands the plan
//! to the one release transaction (`transaction.rs`): lock → prepare → swap → verify → revert or
//! finish → audit and ledger. This file keeps what they share: who is acting (lock details, audit
//! lines), where shipped packages are kept, and the state file.
pub mod backup;
pub(crate) mod boot;
mod interrupt;
pub mod plan;
pub mod remote;
pub mod retention;
pub mod rollback;
pub mod shared;
mod ship;
pub mod status;
mod transaction;

pub use ship::{DeployReceipt, DeployRequest, deploy};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::gate::Force;
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;
use crate::remote::layout::Layout;
use transaction::lock_held;

/// Overrides `[targets.webhosting] url` for verification (tests point it at the twin's port).
pub const URL_ENV: &str = "HARNESS_DEPLOY_URL";

/// Passenger checks tmp/restart.txt at most this often (PassengerStatThrottleRate, production's
/// value); a probe is trusted only after it has passed, or the old process may still be answering.
pub const STAT_THROTTLE: Duration = Duration::from_secs(10);

pub(crate) fn whoami() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into());
    (user, host)
}

/// This process's claim on the server's lock: unlocking removes only a lock that carries it.
pub(crate) fn lock_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| hex::encode(rand::random::<[u8; 12]>()))
}

/// The lock's details file: who holds it, since when, for what, and this process's token.
fn lock_details(action: &str, build_id: &str) -> Vec<(String, String)> {
    let (user, host) = whoami();
    vec![
        ("action".into(), action.into()),
        ("user".into(), user),
        ("host".into(), host),
        ("pid".into(), std::process::id().to_string()),
        ("time".into(), Timestamp::now().rfc3339()),
        ("build_id".into(), build_id.into()),
        ("token".into(), lock_token().into()),
    ]
}

/// One audit log line: `<time> <what> by=<user>@<host> to=<dest>:<remote_dir>`.
fn audit_text(what: &str, dest: &str, layout: &Layout) -> String {
    let (user, host) = whoami();
    format!(
        "{} {} by={user}@{host} to={dest}:{}",
        Timestamp::now().rfc3339(),
        what.replace('\n', " "),
        layout.live
    )
}

/// The overrides a command ran with, for its audit line: ` forced="REASON" allow_dirty
/// break_lock`, each only when given. Whoever reads the log later must see what was waived.
fn audit_flags(force: Option<&Force>, allow_dirty: bool, break_lock: bool) -> String {
    let mut out = String::new();
    if let Some(f) = force {
        out.push_str(&format!(" forced={:?}", f.reason()));
    }
    if allow_dirty {
        out.push_str(" allow_dirty");
    }
    if break_lock {
        out.push_str(" break_lock");
    }
    out
}

fn append_local_audit(root: &Path, line: &str) {
    use std::io::Write;
    let path = root.join(".harness").join("audit.log");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
}

/// `[package.database] path`, when the package has a database.
/// Where a shipped package is kept: `.harness/deployed/<sha256>.zip`.
/// build_info.json of the package `zip`, when it has a readable one.
pub(crate) fn read_build_info(zip: &Path) -> Option<crate::model::build::BuildInfo> {
    let f = std::fs::File::open(zip).ok()?;
    let mut z = zip::ZipArchive::new(f).ok()?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name("build_info.json").ok()?, &mut bytes).ok()?;
    crate::model::build::BuildInfo::parse(&bytes).ok()
}

pub fn deployed_zip(root: &Path, sha256: &str) -> PathBuf {
    root.join(".harness")
        .join("deployed")
        .join(format!("{sha256}.zip"))
}

/// Sets `deployment` in deployment_state_webhosting.json (what production now runs), keeping
/// every other key and mode 0600.
fn write_state(config: &Config, deployment: Value) -> Result<(), Failure> {
    crate::package::secrets::set_state_key(
        &config.root,
        Target::Webhosting,
        "deployment",
        deployment,
    )
}

fn io_failure(what: impl std::fmt::Debug, e: std::io::Error) -> Failure {
    Failure::new(Exit::Environment, format!("{what:?}: {e}"))
}

fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, finding 8: the audit line says what was waived.
    #[test]
    fn audit_lines_carry_force_and_its_reason_allow_dirty_and_break_lock() {
        let force = Force::new("hotfix \"now\"\nplease").unwrap();
        assert_eq!(
            audit_flags(Some(&force), true, true),
            " forced=\"hotfix \\\"now\\\"\\nplease\" allow_dirty break_lock"
        );
        assert_eq!(audit_flags(None, false, false), "");
        let layout = Layout::of("/home/u/app").unwrap();
        let line = audit_text(
            &format!(
                "deploy deployed build=b{}",
                audit_flags(Some(&force), false, false)
            ),
            "u@h",
            &layout,
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("forced=\"hotfix"), "{line}");
    }
}
