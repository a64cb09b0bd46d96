//! Ctrl-C, SIGTERM and SIGHUP during a deploy. Until the swap, an interrupt stops before the next step,
//! releases the lock and exits 130 with production unchanged. From the swap on, stopping would
//! leave an unverified release, so the deploy finishes verification (and rollback) first.
//!
//! The ssh children run in their own process group, so the terminal's SIGINT reaches only harness
//! and a remote step in flight completes instead of dying half-way.
//!
//! SIGHUP (the terminal closed, an SSH session dropped) is an interrupt like the others: the
//! deploy still reverts or finishes, unlocks and records. Its output then has nowhere to go, and
//! a write to a hung-up terminal fails, which would end the process half-way; so the handler
//! points the standard streams that were terminals at /dev/null (dup2 is async-signal-safe).
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// An fd open on /dev/null, and which of stdout/stderr were terminals at install time.
static DEV_NULL: AtomicI32 = AtomicI32::new(-1);
static TTY_OUT: AtomicBool = AtomicBool::new(false);
static TTY_ERR: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only atomics and dup2: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
    let null = DEV_NULL.load(Ordering::SeqCst);
    if signal == libc::SIGHUP && null >= 0 {
        // SAFETY: dup2 on descriptors this process owns.
        unsafe {
            if TTY_OUT.load(Ordering::SeqCst) {
                libc::dup2(null, 1);
            }
            if TTY_ERR.load(Ordering::SeqCst) {
                libc::dup2(null, 2);
            }
        }
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP for the rest of the process.
pub fn install() {
    // SAFETY: the handler only stores to atomics and calls dup2; sigaction is given a zeroed,
    // valid struct; the path is a NUL-terminated literal.
    unsafe {
        TTY_OUT.store(libc::isatty(1) == 1, Ordering::SeqCst);
        TTY_ERR.store(libc::isatty(2) == 1, Ordering::SeqCst);
        if DEV_NULL.load(Ordering::SeqCst) < 0 {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            DEV_NULL.store(fd, Ordering::SeqCst);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
    }
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
