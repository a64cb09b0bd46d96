//! Is the new build answering, and is it the build we expect? Probed from this host with curl
//! (production speaks HTTPS). `up` and `test` ask the stack's app, the boot check its container,
//! deploy, rollback and `status webhosting` the server (`deploy::verify` is this module).
//!
//! Passenger notices tmp/restart.txt only when its stat throttle has passed, and until then the old
//! process answers, possibly with the new build_info.json read from disk. So a probe counts only
//! once `settle` has passed since the swap.
use std::process::Command;
use std::time::{Duration, Instant};

use crate::config::VersionProbe;
use crate::error::{Exit, Failure};
use crate::model::build::BuildInfo;

/// How long an app may answer nothing but 500 before a wait gives up early. Passenger holds
/// requests while it spawns an app, so an app that is still starting is slow, not failing; a
/// streak of 500 means it failed to start (an import error) or its health check fails, and
/// waiting out the whole timeout would only prolong the outage. Only 500 counts: 502, 503 and
/// 504 are what proxies and a busy Passenger queue answer while things come up.
pub const SERVER_ERROR_STREAK: Duration = Duration::from_secs(5);

/// Tracks an unbroken run of 500 answers (see [`SERVER_ERROR_STREAK`]).
#[derive(Debug, Default)]
struct ErrorStreak {
    since: Option<Instant>,
}

impl ErrorStreak {
    /// Notes one answer (`None`: no answer at all) at `at`; returns how long the streak has
    /// lasted once it reaches [`SERVER_ERROR_STREAK`].
    fn note(&mut self, status: Option<u16>, at: Instant) -> Option<Duration> {
        self.since = match status {
            Some(500) => self.since.or(Some(at)),
            _ => None,
        };
        self.since
            .map(|first| at.duration_since(first))
            .filter(|d| *d >= SERVER_ERROR_STREAK)
    }
}

pub struct Probe {
    pub base: String,
    pub health_path: String,
    pub version: VersionProbe,
    pub settle: Duration,
    pub timeout: Duration,
}

/// The build a probe waits for: its id, and its build_info.json for a `contains` probe.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub build_id: &'a str,
    pub info: Option<&'a BuildInfo>,
}

impl<'a> Expected<'a> {
    pub fn id(build_id: &'a str) -> Self {
        Expected {
            build_id,
            info: None,
        }
    }
}

/// `template` with every `{{field}}` replaced by that build_info.json field; `None` when one is
/// missing (then the page cannot be checked for it).
pub fn render(template: &str, info: &BuildInfo) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{{") {
        let (name, tail) = after.split_once("}}")?;
        out.push_str(before);
        out.push_str(info.field(name.trim())?);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
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
    /// The build id a JSON version answer holds.
    Version(Option<String>),
    /// Whether the page holds the expected text (`contains`).
    Page(bool),
    /// Health 2xx, and no version probe.
    Healthy,
}

impl Probe {
    /// Waits until health is 2xx and the version reports `build_id`, counting only probes that
    /// start after `since + settle`. Gives up at the timeout, or earlier when every counted probe
    /// for [`SERVER_ERROR_STREAK`] answered 500.
    pub fn until(&self, expected: Expected, since: Instant) -> Result<String, Failure> {
        self.until_alive(expected, since, || Ok(()))
    }

    /// [`Self::until`], giving up at once when `alive` says the server is gone (a container
    /// that exited answers nothing, however long one waits).
    pub fn until_alive(
        &self,
        expected: Expected,
        since: Instant,
        mut alive: impl FnMut() -> Result<(), String>,
    ) -> Result<String, Failure> {
        let build_id = expected.build_id;
        let text = match (&self.version, expected.info) {
            (VersionProbe::Contains { template, .. }, Some(info)) => render(template, info),
            _ => None,
        };
        if let (VersionProbe::Contains { template, .. }, None) = (&self.version, &text) {
            return Err(Failure::new(
                Exit::Unknown,
                format!(
                    "cannot check for build {build_id}: [stack] version contains {template:?} needs \
                     build_info.json fields this build does not have"
                ),
            ));
        }
        let deadline = since + self.timeout;
        let mut seen_builds: Vec<String> = Vec::new();
        let mut streak = ErrorStreak::default();
        loop {
            if let Err(why) = alive() {
                return Err(Failure::new(
                    Exit::Unknown,
                    format!(
                        "build {build_id} cannot answer: {why} ({:.1} s after the start)",
                        since.elapsed().as_secs_f64()
                    ),
                ));
            }
            let at = Instant::now();
            let seen = self.once(text.as_deref());
            let status = match &seen {
                Seen::Health(code) if at >= since + self.settle => Some(*code),
                _ => None,
            };
            if let Some(lasted) = streak.note(status, at) {
                return Err(Failure::new(
                    Exit::Unknown,
                    format!(
                        "build {build_id} does not answer: {}{} answered 500 for {:.1} s in a row \
                         ({:.1} s after the restart); not waiting out the {} s timeout",
                        self.base,
                        self.health_path,
                        lasted.as_secs_f64(),
                        since.elapsed().as_secs_f64(),
                        self.timeout.as_secs()
                    ),
                ));
            }
            if let Seen::Version(Some(b)) = &seen
                && !seen_builds.contains(b)
            {
                seen_builds.push(b.clone());
            }
            let matches = match &seen {
                Seen::Version(b) => b.as_deref() == Some(build_id),
                Seen::Page(found) => *found,
                Seen::Healthy => true,
                _ => false,
            };
            if matches && at >= since + self.settle {
                let how = match (&self.version, &text) {
                    (VersionProbe::Json { path, pointer }, _) => {
                        format!(" and {}{path} {pointer} = {build_id}", self.base)
                    }
                    (VersionProbe::Contains { path, .. }, Some(t)) => {
                        format!(" and {}{path} contains {t:?} (build {build_id})", self.base)
                    }
                    _ => format!("; {HEALTH_ALONE}"),
                };
                return Ok(format!(
                    "{}{} 2xx{how} after {:.1} s",
                    self.base,
                    self.health_path,
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
                        self.version.path().unwrap_or(""),
                        b.as_deref().unwrap_or("(none)")
                    ),
                    Seen::Page(_) => format!(
                        "{}{} does not contain {:?}",
                        self.base,
                        self.version.path().unwrap_or(""),
                        text.as_deref().unwrap_or("")
                    ),
                    Seen::Healthy => "healthy".into(),
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
    /// The build a JSON probe's answer names (`status` has no build to expect); `None` for the
    /// other probes, which can only confirm a build they are given.
    pub fn look(&self) -> Look {
        let health = get(&format!("{}{}", self.base, self.health_path)).map(|(c, _)| c);
        let Some(path) = self.version.path() else {
            return Look {
                health: health.as_ref().ok().copied(),
                version_status: None,
                build: None,
                error: health.err(),
            };
        };
        let version = get(&format!("{}{path}", self.base));
        let build = match (&version, &self.version) {
            (Ok((code, body)), VersionProbe::Json { pointer, .. }) if (200..300).contains(code) => {
                json_build(body, pointer)
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

    /// Whether the app shows `expected` right now (one probe, no waiting); a JSON probe compares
    /// the build it names.
    pub fn shows(&self, expected: Expected) -> bool {
        let text = match (&self.version, expected.info) {
            (VersionProbe::Contains { template, .. }, Some(info)) => render(template, info),
            _ => None,
        };
        match self.once(text.as_deref()) {
            Seen::Version(b) => b.as_deref() == Some(expected.build_id),
            Seen::Page(found) => found,
            _ => false,
        }
    }

    fn once(&self, text: Option<&str>) -> Seen {
        match get(&format!("{}{}", self.base, self.health_path)) {
            Err(e) => return Seen::Unreachable(e),
            Ok((code, _)) if !(200..300).contains(&code) => return Seen::Health(code),
            Ok(_) => {}
        }
        let Some(path) = self.version.path() else {
            return Seen::Healthy;
        };
        match get(&format!("{}{path}", self.base)) {
            Err(e) => Seen::Unreachable(e),
            Ok((code, _)) if !(200..300).contains(&code) => Seen::Health(code),
            Ok((_, body)) => match &self.version {
                VersionProbe::Json { pointer, .. } => Seen::Version(json_build(&body, pointer)),
                _ => Seen::Page(text.is_some_and(|t| body.contains(t))),
            },
        }
    }
}

/// What verifying a switch to `build` means with `probe`, for plans and receipts.
pub fn describe(probe: &VersionProbe, build: &str) -> String {
    match probe {
        VersionProbe::Json { path, pointer } => {
            format!("health 2xx and {path} {pointer} = {build}")
        }
        VersionProbe::Contains { path, template } => {
            format!("health 2xx and {path} contains {template:?} of build {build}")
        }
        VersionProbe::Off => HEALTH_ALONE.to_string(),
    }
}

/// What a switch verified without a version probe says, in plans, receipts and `--json`.
pub const HEALTH_ALONE: &str =
    "verified by health alone ([stack] version = false): the new build was not identified";

/// The string at JSON `pointer` of `body`.
fn json_build(body: &str, pointer: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .pointer(pointer)?
        .as_str()
        .map(str::to_string)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A real HTTP server on 127.0.0.1: `answer(n)` gives the status and body of request n.
    fn serve(answer: impl Fn(usize) -> (u16, String) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let (code, body) = answer(count.fetch_add(1, Ordering::SeqCst));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        base
    }

    fn probe(base: String, timeout: Duration) -> Probe {
        Probe {
            base,
            health_path: "/health".into(),
            version: VersionProbe::Json {
                path: "/version".into(),
                pointer: "/build_id".into(),
            },
            settle: Duration::ZERO,
            timeout,
        }
    }

    #[test]
    fn a_contains_probe_finds_the_build_in_a_page_and_a_json_probe_follows_its_pointer() {
        let info = BuildInfo {
            build_id: "b1".into(),
            git_commit_short: Some("abc1234".into()),
            ..Default::default()
        };
        assert_eq!(
            render("build {{git_commit_short}} ({{ build_id }})", &info).as_deref(),
            Some("build abc1234 (b1)")
        );
        assert_eq!(render("{{git_branch}}", &info), None);
        let base = serve(|_| (200, "<footer>Shop · build abc1234</footer>".into()));
        let mut p = probe(base, Duration::from_secs(5));
        p.version = VersionProbe::Contains {
            path: "/".into(),
            template: "build {{git_commit_short}}".into(),
        };
        let done = p
            .until(
                Expected {
                    build_id: "b1",
                    info: Some(&info),
                },
                Instant::now(),
            )
            .unwrap();
        assert!(done.contains("contains \"build abc1234\""), "{done}");
        // Another commit's page does not count, and without build_info nothing can be checked.
        let other = BuildInfo {
            build_id: "b2".into(),
            git_commit_short: Some("def5678".into()),
            ..Default::default()
        };
        p.timeout = Duration::from_secs(1);
        let err = p
            .until(
                Expected {
                    build_id: "b2",
                    info: Some(&other),
                },
                Instant::now(),
            )
            .unwrap_err();
        assert!(err.message.contains("does not contain"), "{}", err.message);
        assert!(p.until(Expected::id("b2"), Instant::now()).is_err());

        let base = serve(|_| (200, r#"{"build": {"id": "b3"}}"#.into()));
        let mut p = probe(base, Duration::from_secs(5));
        p.version = VersionProbe::Json {
            path: "/api/info".into(),
            pointer: "/build/id".into(),
        };
        assert!(p.until(Expected::id("b3"), Instant::now()).is_ok());
        assert_eq!(p.look().build.as_deref(), Some("b3"));
    }

    #[test]
    fn without_a_version_probe_health_alone_verifies_and_says_so() {
        let base = serve(|_| (200, "ok".into()));
        let mut p = probe(base, Duration::from_secs(5));
        p.version = VersionProbe::Off;
        let done = p.until(Expected::id("b1"), Instant::now()).unwrap();
        assert!(done.contains(HEALTH_ALONE), "{done}");
        assert_eq!(describe(&p.version, "b1"), HEALTH_ALONE);
    }

    #[test]
    fn an_app_that_only_answers_500_is_given_up_on_before_the_timeout() {
        let base = serve(|_| (500, "Internal Server Error".into()));
        let err = probe(base, Duration::from_secs(60))
            .until(Expected::id("b1"), Instant::now())
            .unwrap_err();
        assert!(
            err.message.contains("answered 500") && err.message.contains("in a row"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_few_server_errors_while_starting_do_not_fail_the_wait() {
        // Each probe is two requests (health, then version); the first three fail.
        let base = serve(|n| {
            if n < 3 {
                (500, String::new())
            } else {
                (200, r#"{"build_id": "b1"}"#.into())
            }
        });
        let done = probe(base, Duration::from_secs(60))
            .until(Expected::id("b1"), Instant::now())
            .unwrap();
        assert!(done.contains("= b1"), "{done}");
    }

    #[test]
    fn unavailable_is_waited_out_not_given_up_on() {
        // 503 is what a busy Passenger queue or a proxy answers while things come up.
        let base = serve(|_| (503, String::new()));
        let err = probe(base, Duration::from_secs(7))
            .until(Expected::id("b1"), Instant::now())
            .unwrap_err();
        assert!(
            err.message.contains("did not answer within 7 s") && err.message.contains("503"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_wrong_build_is_not_a_server_error_and_waits_for_the_timeout() {
        let base = serve(|_| (200, r#"{"build_id": "old"}"#.into()));
        let err = probe(base, Duration::from_secs(1))
            .until(Expected::id("new"), Instant::now())
            .unwrap_err();
        assert!(
            err.message.contains("did not answer within 1 s")
                && err.message.contains("builds seen: old"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_streak_is_only_unbroken_500s_for_the_whole_span() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = ErrorStreak::default();
        assert_eq!(s.note(Some(500), at(0)), None);
        assert_eq!(s.note(Some(500), at(4_000)), None);
        // One other answer (or none at all) starts it over.
        assert_eq!(s.note(None, at(4_500)), None);
        assert_eq!(s.note(Some(500), at(5_000)), None);
        assert_eq!(s.note(Some(503), at(6_000)), None);
        assert_eq!(s.note(Some(500), at(7_000)), None);
        assert_eq!(s.note(Some(500), at(11_999)), None);
        assert_eq!(s.note(Some(500), at(12_000)), Some(Duration::from_secs(5)));
    }
}
