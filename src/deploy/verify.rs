//! Is the new build answering? Probed from this host with curl (production speaks HTTPS).
//!
//! Passenger notices tmp/restart.txt only when its stat throttle has passed, and until then the old
//! process answers, possibly with the new build_info.json read from disk. So a probe counts only
//! once `settle` has passed since the swap.
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Exit, Failure};

pub struct Probe {
    pub base: String,
    pub health_path: String,
    pub version_path: String,
    pub settle: Duration,
    pub timeout: Duration,
}

/// What the live app answers right now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Look {
    pub health: Option<u16>,
    pub version_status: Option<u16>,
    pub build: Option<String>,
    /// Why a request got no answer at all.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Unreachable(String),
    Health(u16),
    Version(Option<String>),
}

impl Probe {
    /// Waits until health is 2xx and the version reports `build_id`, counting only probes that
    /// start after `since + settle`.
    pub fn until(&self, build_id: &str, since: Instant) -> Result<String, Failure> {
        let deadline = since + self.timeout;
        let mut seen_builds: Vec<String> = Vec::new();
        loop {
            let at = Instant::now();
            let seen = self.once();
            if let Seen::Version(Some(b)) = &seen
                && !seen_builds.contains(b)
            {
                seen_builds.push(b.clone());
            }
            let matches = seen == Seen::Version(Some(build_id.to_string()));
            if matches && at >= since + self.settle {
                return Ok(format!(
                    "{}{} 2xx and {}{} = {build_id} after {:.1} s",
                    self.base,
                    self.health_path,
                    self.base,
                    self.version_path,
                    since.elapsed().as_secs_f64()
                ));
            }
            if Instant::now() >= deadline {
                let what = match &seen {
                    Seen::Unreachable(e) => format!("{} unreachable: {e}", self.base),
                    Seen::Health(code) => {
                        format!("{}{} answered {code}", self.base, self.health_path)
                    }
                    Seen::Version(b) => format!(
                        "{}{} reports build {}",
                        self.base,
                        self.version_path,
                        b.as_deref().unwrap_or("(none)")
                    ),
                };
                return Err(Failure::new(
                    Exit::Unknown,
                    format!(
                        "build {build_id} did not answer within {} s: {what} (builds seen: {})",
                        self.timeout.as_secs(),
                        if seen_builds.is_empty() {
                            "none".to_string()
                        } else {
                            seen_builds.join(", ")
                        }
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One look now, for `status`: the health answer and the build the version path reports.
    pub fn look(&self) -> Look {
        let health = get(&format!("{}{}", self.base, self.health_path)).map(|(c, _)| c);
        let version = get(&format!("{}{}", self.base, self.version_path));
        let build = match &version {
            Ok((code, body)) if (200..300).contains(code) => {
                serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["build_id"].as_str().map(str::to_string))
            }
            _ => None,
        };
        Look {
            health: health.as_ref().ok().copied(),
            version_status: version.as_ref().ok().map(|(c, _)| *c),
            build,
            error: health.err().or(version.err()),
        }
    }

    fn once(&self) -> Seen {
        match get(&format!("{}{}", self.base, self.health_path)) {
            Err(e) => return Seen::Unreachable(e),
            Ok((code, _)) if !(200..300).contains(&code) => return Seen::Health(code),
            Ok(_) => {}
        }
        match get(&format!("{}{}", self.base, self.version_path)) {
            Err(e) => Seen::Unreachable(e),
            Ok((code, _)) if !(200..300).contains(&code) => Seen::Health(code),
            Ok((_, body)) => Seen::Version(
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["build_id"].as_str().map(str::to_string)),
            ),
        }
    }
}

/// One GET: (status, body). `-w` appends the status on its own line after the body.
fn get(url: &str) -> Result<(u16, String), String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "5",
            "-H",
            "Cache-Control: no-cache",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("no status from {url}"))?;
    Ok((code, body.to_string()))
}
