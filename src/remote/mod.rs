//! The server layer: one SSH connection (ControlMaster) to the webhosting account, quoting in one
//! place (`ssh::quote`), remote steps as data and their executor (`step`), where things are
//! (`layout`), and one module per concern that only builds commands: `lock`, `backup`, `release`
//! (swap, restart, prune), `audit`, `listing` (the read-only look), `sqlite` (the python3 scripts
//! that copy, fence and put SQLite databases). Deploy, rollback, backup, status and
//! `parity --remote` build on it; it names none of them.
pub mod audit;
pub mod backup;
pub mod layout;
pub mod listing;
pub mod lock;
pub mod release;
pub mod sqlite;
pub mod ssh;
pub mod step;
