//! Humane durations for `[gate] max_age`: "24h", "90m", "7d", "1d 12h", "2 weeks".
use std::time::Duration;

/// Parses a sum of `<number><unit>` terms. Units: s, m, h, d, w and their long names.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{s}`: expected a number at `{rest}`"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}`: number too large"))?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..letters];
        let secs = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => return Err(format!("`{s}`: `{n}` needs a unit (s, m, h, d or w)")),
            other => {
                return Err(format!(
                    "`{s}`: unknown unit `{other}` (use s, m, h, d or w)"
                ));
            }
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}`: too long"))?;
        rest = rest[letters..].trim_start();
    }
    if total == 0 {
        return Err(format!("`{s}` is zero; no run could ever be young enough"));
    }
    Ok(Duration::from_secs(total))
}

/// The largest two units, e.g. "2d 3h", "45m", "12s": enough to judge an age at a glance.
pub fn humane(d: Duration) -> String {
    let mut secs = d.as_secs();
    let units = [
        (604_800, "w"),
        (86_400, "d"),
        (3600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let mut parts = Vec::new();
    for (size, name) in units {
        if secs >= size {
            parts.push(format!("{}{name}", secs / size));
            secs %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_forms() {
        assert_eq!(parse("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse("1d 12h").unwrap(), Duration::from_secs(129_600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2 weeks").unwrap(), Duration::from_secs(1_209_600));
        assert_eq!(parse(" 45 s ").unwrap(), Duration::from_secs(45));
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("24").unwrap_err().contains("needs a unit"));
        assert!(parse("3 fortnights").unwrap_err().contains("unknown unit"));
        assert!(parse("h").unwrap_err().contains("expected a number"));
        assert!(parse("0h").unwrap_err().contains("zero"));
        assert!(parse("-1h").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn humane_shows_two_largest_units() {
        assert_eq!(
            humane(Duration::from_secs(2 * 86_400 + 3 * 3600 + 5)),
            "2d 3h"
        );
        assert_eq!(humane(Duration::from_secs(45 * 60)), "45m");
        assert_eq!(humane(Duration::from_secs(0)), "0s");
        assert_eq!(humane(Duration::from_secs(86_400)), "1d");
    }
}
