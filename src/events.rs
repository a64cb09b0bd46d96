//! Stages report progress as typed events; reporters decide how they look. No stage prints.
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// One JSON object per line on stderr (`HARNESS_EVENTS=json`), for a CI system or an editor that
/// shows progress its own way. stdout keeps the command's result, as with the terminal reporter.
pub struct JsonReporter;

impl JsonReporter {
    /// The event as the one-line object this reporter writes.
    pub fn render(event: &Event) -> serde_json::Value {
        use serde_json::json;
        let ms = |d: &Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        match event {
            Event::PhaseStarted { phase } => json!({"event": "phase_started", "phase": phase}),
            Event::PhaseFinished {
                phase,
                elapsed,
                detail,
            } => {
                json!({"event": "phase_finished", "phase": phase, "ms": ms(elapsed), "detail": detail})
            }
            Event::Note { message } => json!({"event": "note", "message": message}),
            Event::Warning { message } => json!({"event": "warning", "message": message}),
            Event::ServiceReady { service, elapsed } => {
                json!({"event": "service_ready", "service": service, "ms": ms(elapsed)})
            }
            Event::SuiteOutput { bytes } => {
                json!({"event": "suite_output", "text": String::from_utf8_lossy(bytes)})
            }
        }
    }
}

impl Reporter for JsonReporter {
    fn event(&self, event: &Event) {
        use std::io::Write;
        let line = Self::render(event).to_string();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// The environment variable that picks the reporter: `json` for [`JsonReporter`], anything else
/// (or unset) for the terminal.
pub const EVENTS_ENV: &str = "HARNESS_EVENTS";

/// The reporter the environment asks for.
pub fn from_env() -> Box<dyn Reporter> {
    match std::env::var(EVENTS_ENV).as_deref() {
        Ok("json") => Box::new(JsonReporter),
        _ => Box::new(TerminalReporter),
    }
}

/// Keeps every event, for tests that check what a stage reported (and in what order).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("recorder").clone()
    }

    /// The phases that finished, in order.
    pub fn finished(&self) -> Vec<&'static str> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::PhaseFinished { phase, .. } => Some(*phase),
                _ => None,
            })
            .collect()
    }
}

impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().expect("recorder").push(event.clone());
    }
}

/// A phase under way: made by [`Phase::start`], which reports the start; [`Phase::finish`]
/// reports the end with its time. The one timer of every stage, synchronous or not.
#[must_use = "a phase that is never finished is never reported"]
pub struct Phase<'a> {
    reporter: &'a dyn Reporter,
    name: &'static str,
    start: Instant,
}

impl<'a> Phase<'a> {
    pub fn start(reporter: &'a dyn Reporter, name: &'static str) -> Self {
        reporter.event(&Event::PhaseStarted { phase: name });
        Phase {
            reporter,
            name,
            start: Instant::now(),
        }
    }

    /// Reports the end; how long the phase took.
    pub fn finish(self, detail: impl Into<String>) -> Duration {
        let elapsed = self.start.elapsed();
        self.reporter.event(&Event::PhaseFinished {
            phase: self.name,
            elapsed,
            detail: detail.into(),
        });
        elapsed
    }

    /// Reports a phase that was timed where it ran (a step inside a container, or one part of a
    /// blocking call that returns its own times).
    pub fn measured(
        reporter: &dyn Reporter,
        name: &'static str,
        elapsed: Duration,
        detail: impl Into<String>,
    ) {
        reporter.event(&Event::PhaseFinished {
            phase: name,
            elapsed,
            detail: detail.into(),
        });
    }

    /// Reports the end and keeps the time in `timings`, for a report's phase list.
    pub fn finish_into(self, timings: &Timings, detail: impl Into<String>) {
        let name = self.name;
        timings.keep(name, self.finish(detail));
    }
}

/// Times `work` as one phase; its `String` is the finished line's detail. An error ends the phase
/// unreported: the failure says what happened.
pub fn phase<T, E>(
    reporter: &dyn Reporter,
    name: &'static str,
    work: impl FnOnce() -> Result<(T, String), E>,
) -> Result<T, E> {
    timed(reporter, name, None, work)
}

fn timed<T, E>(
    reporter: &dyn Reporter,
    name: &'static str,
    keep: Option<&Timings>,
    work: impl FnOnce() -> Result<(T, String), E>,
) -> Result<T, E> {
    let p = Phase::start(reporter, name);
    let (value, detail) = work()?;
    match keep {
        Some(timings) => p.finish_into(timings, detail),
        None => {
            p.finish(detail);
        }
    }
    Ok(value)
}

/// The phases a stage finished, with their times, kept for its report (a build's
/// `timings_ms`, a run's `phases`).
#[derive(Default)]
pub struct Timings(Mutex<Vec<(&'static str, Duration)>>);

impl Timings {
    /// [`phase`], keeping the time.
    pub fn phase<T, E>(
        &self,
        reporter: &dyn Reporter,
        name: &'static str,
        work: impl FnOnce() -> Result<(T, String), E>,
    ) -> Result<T, E> {
        timed(reporter, name, Some(self), work)
    }

    /// Keeps a time another stage reported (or that spans several of its phases) without
    /// reporting it again.
    pub fn keep(&self, name: &'static str, elapsed: Duration) {
        self.0.lock().expect("timings").push((name, elapsed));
    }

    pub fn list(&self) -> Vec<(&'static str, Duration)> {
        self.0.lock().expect("timings").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_report_start_then_finish_and_timings_keep_only_their_own() {
        let rec = Recorder::default();
        let timings = Timings::default();
        let v: Result<u8, ()> = timings.phase(&rec, "zip", || Ok((7, "3 files".into())));
        assert_eq!(v, Ok(7));
        let failed: Result<(), &str> = timings.phase(&rec, "vendor", || Err("no index"));
        assert_eq!(failed, Err("no index"));
        let other = Phase::start(&rec, "stack");
        other.finish("2 services ready");
        assert_eq!(rec.finished(), vec!["zip", "stack"]);
        let starts: Vec<_> = rec
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::PhaseStarted { phase } => Some(*phase),
                _ => None,
            })
            .collect();
        assert_eq!(starts, vec!["zip", "vendor", "stack"]);
        let kept: Vec<_> = timings.list().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            kept,
            vec!["zip"],
            "a failed phase has no time, another timer's is not ours"
        );
        match &rec.events()[1] {
            Event::PhaseFinished { detail, .. } => assert_eq!(detail, "3 files"),
            e => panic!("not the zip's end: {e:?}"),
        }
    }

    #[test]
    fn json_lines_carry_the_kind_and_the_fields() {
        let line = JsonReporter::render(&Event::PhaseFinished {
            phase: "zip",
            elapsed: Duration::from_micros(12_345),
            detail: "3 files".into(),
        });
        assert_eq!(
            line,
            serde_json::json!({"event": "phase_finished", "phase": "zip", "ms": 12.3, "detail": "3 files"})
        );
        let out = JsonReporter::render(&Event::SuiteOutput {
            bytes: b"1 passed\n".to_vec(),
        });
        assert_eq!(out["text"], "1 passed\n");
        assert_eq!(
            JsonReporter::render(&Event::Warning {
                message: "w".into()
            })["event"],
            "warning"
        );
    }
}
