//! "Failures explained": what the server and the browser saw while a failed test ran.
//!
//! The plugin writes each test's start and end (epoch seconds, the job's clock) and the browser
//! events of its pages; the proxy's access log has each request's end time, duration and
//! `X-Request-Id`; the app's output comes from the engine with its receive time per line
//! (`Engine::timed_log`), because Passenger passes the app's stderr on without a time. All
//! three clocks are the engine host's, so a test's window selects its own lines. A request that
//! overlaps the window also brings the app lines that name its request id, for apps that log it.
use serde::Deserialize;

/// When one test ran, from the plugin's `started_at` and `finished_at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl Window {
    fn overlaps(&self, start: f64, end: f64) -> bool {
        start <= self.end && end >= self.start
    }
}

/// One thing a test's pages reported: a console error, an uncaught page error, or a request
/// that failed on the network (not an HTTP error status; those show in the proxy's requests).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct BrowserEvent {
    /// `console.error`, `pageerror` or `requestfailed`.
    pub kind: String,
    pub text: String,
    #[serde(default)]
    pub url: String,
}

/// One line of the app's output with the engine's receive time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedLine {
    pub at: f64,
    pub text: String,
}

/// One request the proxy served.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub start: f64,
    pub end: f64,
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub ms: f64,
    pub request_id: String,
}

/// What the server did during one failed test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSide {
    pub app_lines: Vec<String>,
    pub requests: Vec<Request>,
}

/// Most lines one failure section shows of the app's output; the rest is in logs/app.log.
const MAX_APP_LINES: usize = 400;

/// `docker logs --timestamps` output: `2026-12-07T01:40:00.123456789Z text`. Lines without a
/// readable time (a long line the engine split) take the time of the line before.
pub fn parse_timed_log(text: &str) -> Vec<TimedLine> {
    let mut out = Vec::new();
    let mut last = 0.0;
    for raw in text.lines() {
        let (stamp, rest) = raw.split_once(' ').unwrap_or((raw, ""));
        match time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339) {
            Ok(t) => {
                last = t.unix_timestamp_nanos() as f64 / 1e9;
                out.push(TimedLine {
                    at: last,
                    text: rest.to_string(),
                });
            }
            Err(_) => out.push(TimedLine {
                at: last,
                text: raw.to_string(),
            }),
        }
    }
    out
}

/// A log file the app writes into its own folder (Python's logging: `2026-12-07 01:40:00,123`,
/// or ISO 8601 with `T`, a fraction and `Z` or an offset). Each line is marked with the file's
/// name; a line without a time (a traceback's body) takes the time of the line before, and lines
/// before the first time are left out. A time without an offset is UTC, the container's zone.
pub fn parse_app_log(name: &str, text: &str) -> Vec<TimedLine> {
    let mut out = Vec::new();
    let mut last = None;
    for raw in text.lines() {
        if let Some(at) = leading_time(raw) {
            last = Some(at);
        }
        if let Some(at) = last {
            out.push(TimedLine {
                at,
                text: format!("[{name}] {raw}"),
            });
        }
    }
    out
}

/// The time at the start of a log line (after an optional `[`), in epoch seconds.
fn leading_time(line: &str) -> Option<f64> {
    let s = line.strip_prefix('[').unwrap_or(line);
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let date =
        time::Date::from_calendar_date(y as i32, time::Month::try_from(mo as u8).ok()?, d as u8)
            .ok()?;
    let t = time::Time::from_hms(h as u8, mi as u8, sec as u8).ok()?;
    let mut at = date.with_time(t).assume_utc().unix_timestamp() as f64;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 {
            at += format!("0.{}", &frac[..n]).parse::<f64>().unwrap_or(0.0);
        }
        rest = &frac[n..];
    }
    // An explicit offset: +02:00 means the clock read two hours ahead of UTC.
    let sign = match rest.as_bytes().first() {
        Some(b'+') => -1.0,
        Some(b'-') => 1.0,
        _ => 0.0,
    };
    if sign != 0.0
        && let (Some(oh), Some(om)) = (
            rest.get(1..3).and_then(|p| p.parse::<f64>().ok()),
            rest.get(4..6).and_then(|p| p.parse::<f64>().ok()),
        )
    {
        at += sign * (oh * 3600.0 + om * 60.0);
    }
    Some(at)
}

/// The app's output from the engine and its own log files as one list in time order.
pub fn merge_lines(mut lines: Vec<TimedLine>, more: Vec<TimedLine>) -> Vec<TimedLine> {
    lines.extend(more);
    lines.sort_by(|a, b| a.at.total_cmp(&b.at));
    lines
}

/// The proxy's access log (`harness_json`), without the stack's readiness probes. Lines from
/// before `msec` was logged are skipped: they cannot be placed in time.
pub fn parse_proxy_log(jsonl: &str) -> Vec<Request> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<super::proxylog::Line>(l).ok())
        .filter(|l| !l.is_probe())
        .filter_map(|l| {
            let end = l.msec?;
            Some(Request {
                start: end - l.request_time,
                end,
                method: l.method,
                uri: l.uri,
                status: l.status,
                ms: l.request_time * 1000.0,
                request_id: l.request_id,
            })
        })
        .collect()
}

/// The requests that overlapped the window, and the app lines written inside it or naming one
/// of those requests' ids.
pub fn during(window: Window, app: &[TimedLine], proxy: &[Request]) -> ServerSide {
    let requests: Vec<Request> = proxy
        .iter()
        .filter(|r| window.overlaps(r.start, r.end))
        .cloned()
        .collect();
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.request_id.as_str())
        .filter(|id| id.len() >= 8)
        .collect();
    let mut app_lines: Vec<String> = app
        .iter()
        .filter(|l| {
            (l.at >= window.start && l.at <= window.end) || ids.iter().any(|id| l.text.contains(id))
        })
        .map(|l| l.text.clone())
        .collect();
    if app_lines.len() > MAX_APP_LINES {
        let cut = app_lines.len() - MAX_APP_LINES;
        app_lines.drain(..cut);
        app_lines.insert(
            0,
            format!("… {cut} earlier lines left out; logs/app.log has them all"),
        );
    }
    ServerSide {
        app_lines,
        requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_log_lines_carry_their_time_and_untimed_ones_the_previous() {
        let lines = parse_timed_log(
            "2026-12-07T01:40:00.500000000Z App 42 output: Traceback (most recent call last):\n\
             continued part\n\
             2026-12-07T01:40:01Z second\n",
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0].text,
            "App 42 output: Traceback (most recent call last):"
        );
        assert!(
            (lines[0].at - 1_796_607_600.5).abs() < 1e-6,
            "{}",
            lines[0].at
        );
        assert_eq!(lines[1].at, lines[0].at);
        assert_eq!(lines[1].text, "continued part");
        assert!((lines[2].at - 1_796_607_601.0).abs() < 1e-6);
    }

    fn line(at: f64, text: &str) -> TimedLine {
        TimedLine {
            at,
            text: text.into(),
        }
    }

    #[test]
    fn a_window_takes_its_own_lines_requests_and_lines_naming_their_ids() {
        let proxy = parse_proxy_log(concat!(
            r#"{"msec":100.2,"method":"GET","uri":"/a","status":500,"request_time":0.1,"request_id":"aaaaaaaa11","agent":"chrome"}"#,
            "\n",
            r#"{"msec":100.3,"method":"GET","uri":"/health","status":200,"request_time":0.0,"request_id":"bbbbbbbb22","agent":"harness-wait"}"#,
            "\n",
            r#"{"msec":200.2,"method":"GET","uri":"/b","status":500,"request_time":0.1,"request_id":"cccccccc33","agent":"chrome"}"#,
            "\n",
            r#"{"method":"GET","uri":"/old","status":200,"request_time":0.1}"#,
            "\n"
        ));
        assert_eq!(
            proxy.len(),
            2,
            "the probe and the untimed line are left out"
        );
        let app = vec![
            line(100.15, "boom alpha"),
            line(150.0, "late line about aaaaaaaa11"),
            line(200.15, "boom beta"),
        ];
        let first = during(
            Window {
                start: 100.0,
                end: 101.0,
            },
            &app,
            &proxy,
        );
        assert_eq!(
            first.app_lines,
            vec!["boom alpha", "late line about aaaaaaaa11"]
        );
        assert_eq!(first.requests.len(), 1);
        assert_eq!(first.requests[0].uri, "/a");
        let second = during(
            Window {
                start: 200.0,
                end: 201.0,
            },
            &app,
            &proxy,
        );
        assert_eq!(second.app_lines, vec!["boom beta"]);
        assert_eq!(second.requests[0].request_id, "cccccccc33");
    }

    #[test]
    fn app_log_files_are_timed_by_their_own_stamps_and_tracebacks_follow_them() {
        let lines = parse_app_log(
            "app.log",
            "leftover without a time\n\
             2026-12-07 01:40:00,250 ERROR app: Exception on /boom/alpha [GET]\n\
             Traceback (most recent call last):\n\
             RuntimeError: boom alpha\n\
             2026-12-07T01:40:01.5Z CRITICAL passenger_wsgi: failed\n\
             [2026-12-07T03:40:02+02:00] shifted\n",
        );
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(
            lines[0].text,
            "[app.log] 2026-12-07 01:40:00,250 ERROR app: Exception on /boom/alpha [GET]"
        );
        assert!(
            (lines[0].at - 1_796_607_600.25).abs() < 1e-6,
            "{}",
            lines[0].at
        );
        assert_eq!(lines[2].at, lines[0].at);
        assert!((lines[3].at - 1_796_607_601.5).abs() < 1e-6);
        assert!(
            (lines[4].at - 1_796_607_602.0).abs() < 1e-6,
            "{}",
            lines[4].at
        );
        assert_eq!(leading_time("2026-13-07 01:40:00 x"), None);
        assert_eq!(leading_time("GET /x 200"), None);
    }

    #[test]
    fn a_long_window_keeps_the_newest_lines_and_says_so() {
        let app: Vec<TimedLine> = (0..MAX_APP_LINES + 5)
            .map(|i| line(1.0, &format!("l{i}")))
            .collect();
        let s = during(
            Window {
                start: 0.0,
                end: 2.0,
            },
            &app,
            &[],
        );
        assert_eq!(s.app_lines.len(), MAX_APP_LINES + 1);
        assert!(s.app_lines[0].starts_with("… 5 earlier lines"));
        assert_eq!(
            s.app_lines.last().unwrap(),
            &format!("l{}", MAX_APP_LINES + 4)
        );
    }
}
