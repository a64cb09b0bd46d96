//! Stages report progress as typed events; reporters decide how they look. No stage prints.
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    PhaseStarted {
        phase: &'static str,
    },
    PhaseFinished {
        phase: &'static str,
        elapsed: Duration,
        detail: String,
    },
    Note {
        message: String,
    },
    Warning {
        message: String,
    },
    /// A stack service passed its wait; `elapsed` counts from the start of the stack.
    ServiceReady {
        service: String,
        elapsed: Duration,
    },
    /// Output of the test suite as it arrives (pytest's own progress), passed through unchanged.
    SuiteOutput {
        bytes: Vec<u8>,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);
}

/// One line per finished phase on stderr, so stdout stays free for results.
pub struct TerminalReporter;

impl Reporter for TerminalReporter {
    fn event(&self, event: &Event) {
        match event {
            Event::PhaseStarted { .. } => {}
            Event::PhaseFinished {
                phase,
                elapsed,
                detail,
            } => {
                let ms = elapsed.as_secs_f64() * 1000.0;
                if detail.is_empty() {
                    eprintln!("  {phase:<10} {ms:>8.1} ms");
                } else {
                    eprintln!("  {phase:<10} {ms:>8.1} ms  {detail}");
                }
            }
            Event::Note { message } => eprintln!("  {message}"),
            Event::Warning { message } => eprintln!("warning: {message}"),
            Event::SuiteOutput { bytes } => {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(bytes);
                let _ = err.flush();
            }
            Event::ServiceReady { service, elapsed } => {
                let ms = elapsed.as_secs_f64() * 1000.0;
                eprintln!("  ready      {ms:>8.1} ms  {service}");
            }
        }
    }
}

/// Times a phase and reports its start and end.
pub fn phase<T, E>(
    reporter: &dyn Reporter,
    phase: &'static str,
    work: impl FnOnce() -> Result<(T, String), E>,
) -> Result<T, E> {
    reporter.event(&Event::PhaseStarted { phase });
    let start = std::time::Instant::now();
    let (value, detail) = work()?;
    reporter.event(&Event::PhaseFinished {
        phase,
        elapsed: start.elapsed(),
        detail,
    });
    Ok(value)
}
