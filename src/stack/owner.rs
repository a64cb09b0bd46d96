//! Who owns a run: `pid@host@starttime`. The start time (clock ticks since boot, from
//! /proc/PID/stat) tells a live owner from a recycled pid, so the sweep never removes a run whose
//! owner is still working and never keeps one whose pid was reused.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    pub start: u64,
}

impl Owner {
    /// The current process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            host: hostname(),
            start: start_ticks(pid).unwrap_or(0),
        }
    }

    pub fn parse(label: &str) -> Option<Owner> {
        let mut parts = label.splitn(3, '@');
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        let start = parts.next()?.parse().ok()?;
        Some(Owner { pid, host, start })
    }

    /// Whether the owning process still runs. An owner on another host cannot be checked from
    /// here, so it counts as alive: removing a colleague's running stack is worse than a leftover.
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        if self.start == 0 {
            // The owner could not read its own start time (e.g. /proc mounted with hidepid):
            // fall back to "a process with that pid exists", erring on the side of keeping.
            return std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        }
        start_ticks(self.pid) == Some(self.start)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}@{}", self.pid, self.host, self.start)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Field 22 of /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`. A zombie has exited: it counts as gone.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_round_trips() {
        let me = Owner::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
    }

    #[test]
    fn same_pid_with_other_start_time_is_dead() {
        let mut me = Owner::current();
        me.start += 1;
        assert!(!me.is_alive());
    }

    #[test]
    fn exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let owner = Owner {
            pid: child.id(),
            host: hostname(),
            start: start_ticks(child.id()).unwrap_or(1),
        };
        child.wait().unwrap();
        assert!(!owner.is_alive());
    }

    #[test]
    fn unknown_start_time_falls_back_to_pid_existence() {
        let me = Owner {
            start: 0,
            ..Owner::current()
        };
        assert!(me.is_alive());
        let gone = Owner {
            pid: u32::MAX - 1,
            host: hostname(),
            start: 0,
        };
        assert!(!gone.is_alive());
    }

    #[test]
    fn other_host_counts_as_alive() {
        let o = Owner {
            pid: 1,
            host: "elsewhere.invalid".into(),
            start: 1,
        };
        assert!(o.is_alive());
    }

    #[test]
    fn malformed_labels_do_not_parse() {
        assert_eq!(Owner::parse("12@h"), None);
        assert_eq!(Owner::parse("x@h@1"), None);
        assert_eq!(
            Owner::parse("12@my@host@5"),
            None,
            "host with @ is ambiguous"
        );
        assert_eq!(
            Owner::parse("12@h@5"),
            Some(Owner {
                pid: 12,
                host: "h".into(),
                start: 5
            })
        );
    }
}
