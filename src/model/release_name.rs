//! How harness names what it keeps on the server: `<stamp>-<build id>` for releases under
//! releases/ and backups under backups/ (`20260301T030000Z-20260228T120000Z-abcdef123456`), and
//! `<stamp>-failed-<build id>` for a release that failed verification. The stamp sorts by time
//! and dates the name; a name that does not parse was not written by harness, and harness never
//! deletes it.
use crate::model::timestamp::Timestamp;

/// The name of something taken or retired at `at`, from the build that was live (`unknown`
/// when it had none).
pub fn new(at: Timestamp, build: Option<&str>) -> String {
    format!("{}-{}", stamp_of(at), build.unwrap_or("unknown"))
}

/// A release that failed verification, retired under the stamp of `name` (a name from [`new`]).
pub fn failed(name: &str, build: &str) -> Option<String> {
    Some(format!("{}-failed-{build}", stamp(name)?))
}

/// `20260301T030000Z-<build>` → the time and the rest. `None` for names harness did not write.
pub fn parse(name: &str) -> Option<(Timestamp, &str)> {
    let (stamp, build) = name.split_once('-')?;
    if build.is_empty() {
        return None;
    }
    Some((parse_stamp(stamp)?, build))
}

/// The stamp at the front of `name`, when it has a valid one.
pub fn stamp(name: &str) -> Option<&str> {
    let stamp = name.get(..16)?;
    parse_stamp(stamp).map(|_| stamp)
}

/// `20260301T030000Z` → a timestamp.
pub fn parse_stamp(stamp: &str) -> Option<Timestamp> {
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = stamp.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let date = time::Date::from_calendar_date(
        digits(0..4)? as i32,
        time::Month::try_from(digits(4..6)? as u8).ok()?,
        digits(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(
        digits(9..11)? as u8,
        digits(11..13)? as u8,
        digits(13..15)? as u8,
    )
    .ok()?;
    let at = time::PrimitiveDateTime::new(date, t).assume_utc();
    Some(Timestamp::from_unix_ms(
        (at.unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

/// The stamp that names a backup or a release taken at `t`.
pub fn stamp_of(t: Timestamp) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_ms()) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .expect("a date formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_name_parses_back_and_its_stamp_names_the_failed_release() {
        let t = parse_stamp("20260301T030000Z").unwrap();
        let name = new(t, Some("20260228T120000Z-abcdef123456"));
        assert_eq!(name, "20260301T030000Z-20260228T120000Z-abcdef123456");
        assert_eq!(parse(&name), Some((t, "20260228T120000Z-abcdef123456")));
        assert_eq!(stamp(&name), Some("20260301T030000Z"));
        assert_eq!(
            failed(&name, "b2").as_deref(),
            Some("20260301T030000Z-failed-b2")
        );
        assert_eq!(new(t, None), "20260301T030000Z-unknown");
        for bad in ["", "x", "20261301T030000Z-b", "2026030xT030000Z-b"] {
            assert_eq!(parse(bad), None, "{bad}");
            assert_eq!(failed(bad, "b"), None, "{bad}");
        }
        // A stamp with nothing after it is no name, though it dates one.
        assert_eq!(parse("20260301T030000Z"), None);
    }
}
