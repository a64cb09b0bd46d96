//! Ctrl-C and SIGTERM during a deploy. Until the swap, an interrupt stops before the next step,
//! releases the lock and exits 130 with production unchanged. From the swap on, stopping would
//! leave an unverified release, so the deploy finishes verification (and rollback) first.
//!
//! The ssh children run in their own process group, so the terminal's SIGINT reaches only harness
//! and a remote step in flight completes instead of dying half-way.
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    // SAFETY: the handler only stores to an atomic; sigaction is given a zeroed, valid struct.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
