//! The server layer: one SSH connection (ControlMaster) to the webhosting account, quoting in one
//! place, and the python3 scripts that copy, fence and put SQLite databases there. Deploy,
//! rollback, backup, status and `parity --remote` build on it; it names none of them.
pub mod sqlite;
pub mod ssh;
