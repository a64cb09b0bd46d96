//! Exit codes from DESIGN.md and the one error type that reaches the edge.
//!
//! Modules keep their own `thiserror` enums with the context their messages need; each maps itself
//! onto an [`Exit`] so that `cli` is the only place that turns failures into text and a code.
use std::fmt;

/// Process exit codes. Scripts rely on these numbers (DESIGN.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Tests failed, or a parity difference was found.
    Failed = 1,
    /// Bad input or configuration.
    BadInput = 2,
    /// Docker, SSH, registry, disk, or a failing external command.
    Environment = 3,
    /// Refused before any change: the gate, or a lock held by someone else.
    Refused = 4,
    /// Deploy failed verification and was rolled back.
    RolledBack = 5,
    /// Deploy failed and the remote state is unknown.
    Unknown = 6,
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure ready to show: what went wrong (with where), and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}
