//! The deploy lock: an atomic `mkdir` with a details file, taken by deploy, rollback and backup,
//! released only by the process that took it.
use super::layout::Layout;
use super::ssh::quote;
use super::step::{RemoteStep, StepId};

/// The exit code the lock step uses when someone else holds the lock.
pub const LOCK_HELD: i32 = 75;

/// The deploy lock: an atomic `mkdir` with a details file; exit [`LOCK_HELD`] when someone else
/// holds it. Deploy, rollback and backup all take it.
pub fn lock(l: &Layout, details: &[(String, String)], break_lock: bool) -> RemoteStep {
    let (home, lock) = (quote(&l.home), quote(&l.lock()));
    let detail = |k: &str| {
        details
            .iter()
            .find(|(key, _)| key == k)
            .map_or("unknown", |(_, v)| v.as_str())
            .to_string()
    };
    let details_args: String = details
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ");
    let take = format!(
        "mkdir -p {home} && if mkdir {lock} 2>/dev/null; then printf '%s\\n' {details_args} > {lock}/details; \
         else echo 'lock held:' >&2; cat {lock}/details >&2; exit {LOCK_HELD}; fi"
    );
    if break_lock {
        // The break is audited where every deploy is: who broke it, and whose lock it was.
        let audit = quote(&l.audit_log());
        let by = quote(&format!(
            "{} lock broken by={}@{} pid={} for={}; it was held by:",
            detail("time"),
            detail("user"),
            detail("host"),
            detail("pid"),
            detail("action")
        ));
        RemoteStep::run(
            StepId::Lock,
            format!(
                "break any existing lock (audited), then take it: {}",
                l.lock()
            ),
            format!(
                "mkdir -p {home} && if [ -d {lock} ]; then printf '%s %s\\n' {by} \
                 \"$(tr '\\n' ' ' < {lock}/details 2>/dev/null)\" >> {audit}; rm -rf {lock}; fi && {take}"
            ),
        )
    } else {
        RemoteStep::run(
            StepId::Lock,
            format!("take the deploy lock {}", l.lock()),
            take,
        )
    }
}

/// The token in a lock's details (see `deploy::lock_details`).
pub fn token_of(details: &[(String, String)]) -> &str {
    details
        .iter()
        .find(|(k, _)| k == "token")
        .map_or("", |(_, v)| v.as_str())
}

/// Releases the lock only when it is still the one `token` took: a lock someone broke and took
/// meanwhile stays theirs.
pub fn unlock(l: &Layout, token: &str) -> RemoteStep {
    let lock = quote(&l.lock());
    RemoteStep::run(
        StepId::Unlock,
        "release the deploy lock",
        format!(
            "if grep -qxF {} {lock}/details 2>/dev/null; then rm -rf {lock}; \
             elif [ -d {lock} ]; then echo 'the lock is not ours any more (someone broke it); left as it is' >&2; fi",
            quote(&format!("token={token}"))
        ),
    )
}
