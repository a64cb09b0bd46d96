//! Which backups to keep: a pure function of their times, the time now and the policy.
//!
//! The policy is the one restic and borg call keep-last / keep-daily / keep-weekly, on calendar
//! time counted back from now: the newest `last` backups; the newest backup of each of the last
//! `daily` UTC days (today included); the newest of each of the last `weekly` ISO weeks (Monday to
//! Sunday, UTC, this week included). Backups the caller pins (the database backup of a release that
//! is still kept, so `rollback --with-db` can restore it) are kept too, and so is anything stamped
//! after now (clock skew between machines is no reason to delete).
//!
//! Backup names are `<stamp>-<build id>`: the UTC time it was taken (`20260301T030000Z`) and the
//! build that was live then. The same name is used on the server, locally and in the ledger.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::timestamp::Timestamp;

use crate::model::release_name;
use crate::model::retention::RetentionPolicy;

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Among the newest `last`.
    Last,
    /// The newest of one of the last `daily` days.
    Daily,
    /// The newest of one of the last `weekly` weeks.
    Weekly,
    /// Pinned by the caller: the database of a kept release.
    Release,
    /// Stamped after now.
    Future,
}

/// One backup as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped {
    pub at: Timestamp,
    pub pinned: bool,
}

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 (UTC), rounding towards minus infinity.
fn day(t: Timestamp) -> i64 {
    t.unix_ms().div_euclid(DAY_MS)
}

/// Monday-based weeks since the week of 1970-01-01 (a Thursday, so day 0 is weekday 3).
fn week(t: Timestamp) -> i64 {
    (day(t) + 3).div_euclid(7)
}

/// For each backup, in input order, why it is kept; an empty list means it is pruned.
pub fn decide(backups: &[Stamped], now: Timestamp, policy: RetentionPolicy) -> Vec<Vec<Reason>> {
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); backups.len()];
    // Newest first; equal times by input position, so the result never depends on sort luck.
    let mut order: Vec<usize> = (0..backups.len()).collect();
    order.sort_by(|&a, &b| backups[b].at.cmp(&backups[a].at).then(b.cmp(&a)));
    let mut newest_of_day: BTreeMap<i64, usize> = BTreeMap::new();
    let mut newest_of_week: BTreeMap<i64, usize> = BTreeMap::new();
    for (rank, &i) in order.iter().enumerate() {
        let b = backups[i];
        if rank < policy.last as usize {
            reasons[i].push(Reason::Last);
        }
        if b.at > now {
            reasons[i].push(Reason::Future);
            continue;
        }
        let days_ago = day(now) - day(b.at);
        if days_ago < i64::from(policy.daily) {
            newest_of_day.entry(day(b.at)).or_insert(i);
        }
        let weeks_ago = week(now) - week(b.at);
        if weeks_ago < i64::from(policy.weekly) {
            newest_of_week.entry(week(b.at)).or_insert(i);
        }
    }
    for i in newest_of_day.into_values() {
        reasons[i].push(Reason::Daily);
    }
    for i in newest_of_week.into_values() {
        reasons[i].push(Reason::Weekly);
    }
    for (i, b) in backups.iter().enumerate() {
        if b.pinned {
            reasons[i].push(Reason::Release);
        }
        reasons[i].sort();
    }
    reasons
}

/// What the policy does to a set of named backups: the names kept (with their reasons) and the
/// names to delete. Names that do not parse are kept and reported: harness deletes only what it
/// can date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub keep: Vec<(String, Vec<Reason>)>,
    pub prune: Vec<String>,
    pub foreign: Vec<String>,
}

/// Applies [`decide`] to backup names; `pinned` says which names must stay.
pub fn plan_names(
    names: &[String],
    pinned: &dyn Fn(&str) -> bool,
    now: Timestamp,
    policy: RetentionPolicy,
) -> Plan {
    let mut dated = Vec::new();
    let mut plan = Plan::default();
    for n in names {
        match release_name::parse(n) {
            Some((at, _)) => dated.push((
                n.clone(),
                Stamped {
                    at,
                    pinned: pinned(n),
                },
            )),
            None => plan.foreign.push(n.clone()),
        }
    }
    let stamps: Vec<Stamped> = dated.iter().map(|(_, s)| *s).collect();
    for ((name, _), reasons) in dated.into_iter().zip(decide(&stamps, now, policy)) {
        if reasons.is_empty() {
            plan.prune.push(name);
        } else {
            plan.keep.push((name, reasons));
        }
    }
    plan.keep.sort_by(|a, b| b.0.cmp(&a.0));
    plan.prune.sort();
    plan
}

/// The database backup of each build in `builds`: its newest backup (by name, so by time).
/// These are pinned so `rollback --with-db` can always restore a kept release's database.
pub fn newest_per_build<'a>(names: &'a [String], builds: &[&str]) -> Vec<&'a str> {
    let mut out: BTreeMap<&str, &str> = BTreeMap::new();
    for n in names {
        if let Some((_, build)) = release_name::parse(n)
            && builds.contains(&build)
        {
            let e = out.entry(build).or_insert(n);
            if n.as_str() > *e {
                *e = n;
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    const DEFAULT: RetentionPolicy = RetentionPolicy {
        last: 5,
        daily: 7,
        weekly: 4,
    };

    #[test]
    fn names_carry_their_time_and_build() {
        let (t, b) = release_name::parse("20260301T030000Z-20260228T120000Z-abcdef").unwrap();
        assert_eq!(t, at("2026-03-01T03:00:00Z"));
        assert_eq!(b, "20260228T120000Z-abcdef");
        assert_eq!(release_name::stamp_of(t), "20260301T030000Z");
        for bad in [
            "",
            "x",
            "20260301T030000Z",
            "20260301T030000Z-",
            "20261301T030000Z-b",
            "2026030xT030000Z-b",
            "20260301 030000Z-b",
            "20260301T250000Z-b",
        ] {
            assert_eq!(release_name::parse(bad), None, "{bad}");
        }
    }

    /// Nine days of nightly backups, from Saturday 2026-02-28 to Sunday 2026-03-08, with the
    /// default policy on the ninth morning: the seven days from Monday 03-02 are kept as dailies;
    /// Sunday 03-01 is the newest of the previous ISO week, so it stays as a weekly; Saturday 02-28
    /// is neither and goes.
    #[test]
    fn nine_days_of_nightly_backups_keep_seven_dailies_and_last_weeks_sunday() {
        let days: Vec<String> = (0..9)
            .map(|d| {
                let date = time::Date::from_calendar_date(2026, time::Month::February, 28)
                    .unwrap()
                    .saturating_add(time::Duration::days(d));
                format!(
                    "{:04}{:02}{:02}T030000Z-build1",
                    date.year(),
                    date.month() as u8,
                    date.day()
                )
            })
            .collect();
        assert_eq!(days[0], "20260228T030000Z-build1");
        assert_eq!(days[8], "20260308T030000Z-build1");
        let p = plan_names(&days, &|_| false, at("2026-03-08T03:00:05Z"), DEFAULT);
        assert_eq!(p.prune, ["20260228T030000Z-build1"]);
        let kept: Vec<(&str, Vec<Reason>)> = p
            .keep
            .iter()
            .map(|(n, r)| (n.as_str(), r.clone()))
            .collect();
        use Reason::*;
        assert_eq!(
            kept,
            [
                ("20260308T030000Z-build1", vec![Last, Daily, Weekly]),
                ("20260307T030000Z-build1", vec![Last, Daily]),
                ("20260306T030000Z-build1", vec![Last, Daily]),
                ("20260305T030000Z-build1", vec![Last, Daily]),
                ("20260304T030000Z-build1", vec![Last, Daily]),
                ("20260303T030000Z-build1", vec![Daily]),
                ("20260302T030000Z-build1", vec![Daily]),
                ("20260301T030000Z-build1", vec![Weekly]),
            ]
        );
    }

    #[test]
    fn several_backups_a_day_keep_the_days_newest_beyond_the_last_n() {
        // Three a day (a nightly one and two deploys) for four days, newest policy of two.
        let mut names = Vec::new();
        for d in 1..=4 {
            for h in ["03", "12", "18"] {
                names.push(format!("202603{d:02}T{h}0000Z-b"));
            }
        }
        let p = plan_names(
            &names,
            &|_| false,
            at("2026-03-04T20:00:00Z"),
            RetentionPolicy {
                last: 2,
                daily: 3,
                weekly: 0,
            },
        );
        let kept: Vec<&str> = p.keep.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            kept,
            [
                "20260304T180000Z-b",
                "20260304T120000Z-b",
                "20260303T180000Z-b",
                "20260302T180000Z-b"
            ]
        );
        assert_eq!(p.prune.len(), 8);
    }

    #[test]
    fn pinned_future_and_foreign_names_stay() {
        let names: Vec<String> = [
            "20200101T000000Z-old-release",
            "20200102T000000Z-x",
            "20990101T000000Z-future",
            "notes.tar.gz",
        ]
        .map(String::from)
        .to_vec();
        let p = plan_names(
            &names,
            &|n| n.ends_with("old-release"),
            at("2026-03-01T00:00:00Z"),
            RetentionPolicy {
                last: 0,
                daily: 7,
                weekly: 4,
            },
        );
        assert_eq!(p.prune, ["20200102T000000Z-x"]);
        assert_eq!(p.foreign, ["notes.tar.gz"]);
        assert_eq!(
            p.keep,
            [
                ("20990101T000000Z-future".to_string(), vec![Reason::Future]),
                (
                    "20200101T000000Z-old-release".to_string(),
                    vec![Reason::Release]
                ),
            ]
        );
    }

    #[test]
    fn the_newest_backup_of_each_build_is_its_database_backup() {
        let names: Vec<String> = [
            "20260301T000000Z-A",
            "20260302T000000Z-A",
            "20260303T000000Z-B",
            "20260304T000000Z-C",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            newest_per_build(&names, &["A", "B", "Z"]),
            ["20260302T000000Z-A", "20260303T000000Z-B"]
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-03-01 is a Sunday, 2026-03-02 a Monday.
        assert_eq!(
            week(at("2026-03-01T23:59:59Z")) + 1,
            week(at("2026-03-02T00:00:00Z"))
        );
        assert_eq!(
            week(at("2026-03-02T00:00:00Z")),
            week(at("2026-03-08T23:59:59Z"))
        );
    }

    fn arb_backups() -> impl Strategy<Value = (Vec<Stamped>, Timestamp, RetentionPolicy)> {
        let now = 1_770_000_000_000i64;
        (
            proptest::collection::vec(
                (
                    0i64..60 * DAY_MS,
                    any::<bool>(),
                    proptest::bool::weighted(0.05),
                ),
                0..40,
            ),
            0u32..6,
            0u32..10,
            0u32..6,
        )
            .prop_map(move |(items, last, daily, weekly)| {
                let backups = items
                    .into_iter()
                    .map(|(ago, pinned, future)| Stamped {
                        at: Timestamp::from_unix_ms(if future { now + ago } else { now - ago }),
                        pinned: pinned && ago % 7 == 0,
                    })
                    .collect();
                (
                    backups,
                    Timestamp::from_unix_ms(now),
                    RetentionPolicy {
                        last,
                        daily,
                        weekly,
                    },
                )
            })
    }

    proptest! {
        #[test]
        fn pruning_again_prunes_nothing_more((backups, now, policy) in arb_backups()) {
            let first = decide(&backups, now, policy);
            let kept: Vec<Stamped> = backups
                .iter()
                .zip(&first)
                .filter(|(_, r)| !r.is_empty())
                .map(|(b, _)| *b)
                .collect();
            let second = decide(&kept, now, policy);
            prop_assert!(second.iter().all(|r| !r.is_empty()));
        }

        #[test]
        fn every_rule_is_honoured((backups, now, policy) in arb_backups()) {
            let r = decide(&backups, now, policy);
            let kept = |i: usize| !r[i].is_empty();
            // Pinned and future backups stay.
            for (i, b) in backups.iter().enumerate() {
                if b.pinned || b.at > now {
                    prop_assert!(kept(i));
                }
            }
            // The newest `last` stay.
            let mut order: Vec<usize> = (0..backups.len()).collect();
            order.sort_by(|&a, &b| backups[b].at.cmp(&backups[a].at).then(b.cmp(&a)));
            for &i in order.iter().take(policy.last as usize) {
                prop_assert!(kept(i));
            }
            // Each of the last `daily` days (and `weekly` weeks) that has a backup keeps its
            // newest (equal times: the later one in the input).
            let newest_in = |i: usize, bucket: fn(Timestamp) -> i64| {
                backups.iter().enumerate().filter(|(_, o)| o.at <= now && bucket(o.at) == bucket(backups[i].at))
                    .all(|(j, o)| o.at < backups[i].at || (o.at == backups[i].at && j <= i))
            };
            for (i, b) in backups.iter().enumerate() {
                if b.at > now {
                    continue;
                }
                if day(now) - day(b.at) < i64::from(policy.daily) && newest_in(i, day) {
                    prop_assert!(kept(i));
                }
                if week(now) - week(b.at) < i64::from(policy.weekly) && newest_in(i, week) {
                    prop_assert!(kept(i));
                }
            }
            // Nothing else: at most one backup per day and per week beyond the other rules.
            let extra = r.iter().filter(|x| !x.is_empty() && !x.contains(&Reason::Last) && !x.contains(&Reason::Release) && !x.contains(&Reason::Future)).count();
            prop_assert!(extra <= (policy.daily + policy.weekly) as usize);
            for (i, reasons) in r.iter().enumerate() {
                if reasons.contains(&Reason::Daily) {
                    prop_assert!(newest_in(i, day));
                }
                if reasons.contains(&Reason::Weekly) {
                    prop_assert!(newest_in(i, week));
                }
            }
        }
    }
}
