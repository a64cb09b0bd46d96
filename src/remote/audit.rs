//! The audit log on the server: one line per deploy, rollback, backup and broken lock.
use super::layout::Layout;
use super::ssh::quote;
use super::step::{RemoteStep, StepId};

pub fn audit(l: &Layout, line: &str) -> RemoteStep {
    RemoteStep::run(
        StepId::Audit,
        format!("append to {}", l.audit_log()),
        format!(
            "mkdir -p {} && printf '%s\\n' {} >> {}",
            quote(&l.home),
            quote(line),
            quote(&l.audit_log())
        ),
    )
}
