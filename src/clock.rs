//! Is the desk's clock right? Every recorded time comes from it, and Koha accepts any timestamp,
//! so a desk clock that is off puts every checkout, check-in and due date off by as much.
//!
//! The check compares the desk's clock with the HTTP `Date` header of an answer from Koha's web
//! server. `Date` has whole seconds and is written at some moment while the request was under
//! way, so the check only reports a difference it is sure of: beyond [`THRESHOLD`] even after
//! allowing one second for the header's resolution and the whole round trip for when it was
//! written.
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use koha_offline_circ::clock::{check, ClockCheck};
//!
//! let arrived = Utc.with_ymd_and_hms(1994, 11, 6, 8, 59, 40).unwrap();
//! let koha_date = Some("Sun, 06 Nov 1994 08:49:37 GMT");
//! match check(arrived, koha_date) {
//!     ClockCheck::DeskAhead { by, .. } => assert_eq!(by, TimeDelta::seconds(603)),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(check(arrived, Some("Sun, 06 Nov 1994 08:59:39 GMT")), ClockCheck::InStep);
//! assert!(matches!(check(arrived, None), ClockCheck::Unknown(_)));
//! ```

use crate::kinds::kinds;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use serde::Serialize;
use thiserror::Error;

/// How far the desk's clock may be off before the desk warns: 2 minutes.
pub const THRESHOLD: TimeDelta = TimeDelta::minutes(2);

/// The resolution of an HTTP `Date`: it is the server's time cut down to the second.
const RESOLUTION: TimeDelta = TimeDelta::seconds(1);

/// The outcome of a clock check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockCheck {
    /// The clocks agree within [`THRESHOLD`] (or the difference cannot be told from the request
    /// time and the header's resolution).
    InStep,
    /// The desk's clock is ahead of Koha's by more than [`THRESHOLD`].
    DeskAhead {
        /// `desk - koha`, the difference between the two times below.
        by: TimeDelta,
        /// The desk's clock when the answer arrived.
        desk: DateTime<Utc>,
        /// Koha's `Date`.
        koha: DateTime<Utc>,
    },
    /// The desk's clock is behind Koha's by more than [`THRESHOLD`].
    DeskBehind {
        /// `koha - desk`, the difference between the two times below.
        by: TimeDelta,
        /// The desk's clock when the answer arrived.
        desk: DateTime<Utc>,
        /// Koha's `Date`.
        koha: DateTime<Utc>,
    },
    /// No usable `Date` header: nothing can be said.
    Unknown(DateError),
}

kinds!(ClockCheck {
    InStep => "in-step",
    DeskAhead => "desk-ahead",
    DeskBehind => "desk-behind",
    Unknown => "unknown",
});

impl ClockCheck {
    /// Whether the desk must warn (ahead or behind beyond [`THRESHOLD`]).
    pub fn is_off(&self) -> bool {
        matches!(
            self,
            ClockCheck::DeskAhead { .. } | ClockCheck::DeskBehind { .. }
        )
    }

    /// The desk's time and Koha's, when the clock is off.
    pub fn times(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            ClockCheck::DeskAhead { desk, koha, .. }
            | ClockCheck::DeskBehind { desk, koha, .. } => Some((*desk, *koha)),
            _ => None,
        }
    }
}

/// Compares the desk's clock at the moment an answer arrived (`desk_now`) with that answer's
/// `Date` header. The same as [`check_round_trip`] with the request sent at `desk_now`: use that
/// when the sending time is known, so that a slow request cannot make the desk look ahead.
pub fn check(desk_now: DateTime<Utc>, date_header: Option<&str>) -> ClockCheck {
    check_round_trip(desk_now, desk_now, date_header)
}

/// Compares the desk's clock with an answer's `Date` header, knowing when (by the desk's clock)
/// the request was `sent` and its answer `received`.
///
/// Koha wrote `Date` at some desk time between `sent` and `received`, from its clock cut down to
/// the second. So the desk is ahead by at least `sent - Date - 1 s` and behind by at least
/// `Date - received`; it is reported off only when one of these exceeds [`THRESHOLD`]. `by` is the
/// plain difference between the desk's time at arrival and `Date`, the two times a page shows.
pub fn check_round_trip(
    sent: DateTime<Utc>,
    received: DateTime<Utc>,
    date_header: Option<&str>,
) -> ClockCheck {
    let koha = match date_header.map(parse_http_date) {
        None => return ClockCheck::Unknown(DateError::Missing),
        Some(Err(e)) => return ClockCheck::Unknown(e),
        Some(Ok(koha)) => koha,
    };
    let sent = sent.min(received);
    if sent - koha - RESOLUTION > THRESHOLD {
        ClockCheck::DeskAhead {
            by: received - koha,
            desk: received,
            koha,
        }
    } else if koha - received > THRESHOLD {
        ClockCheck::DeskBehind {
            by: koha - received,
            desk: received,
            koha,
        }
    } else {
        ClockCheck::InStep
    }
}

/// Why a `Date` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateError {
    /// The answer had no `Date` header.
    #[error("no Date header")]
    Missing,
    /// Not one of the three forms HTTP allows.
    #[error("not an HTTP date: {0:?}")]
    Shape(String),
    /// An unknown day or month name.
    #[error("unknown name {0:?}")]
    Name(String),
    /// A day, hour, minute or second out of range, or a day the month does not have.
    #[error("no such date or time: {0:?}")]
    Impossible(String),
    /// The day name does not fit the date.
    #[error("{0:?} names the wrong day of the week")]
    WrongWeekday(String),
}

/// Reads an HTTP date (RFC 9110, section 5.6.7) as an instant in UTC.
///
/// Accepts the preferred IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and, as HTTP asks of
/// recipients, the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year
/// `70`–`99` is 19xx, `00`–`69` is 20xx) and asctime's (`Sun Nov  6 08:49:37 1994`, in UTC).
/// Names are case-sensitive as in the grammar, the day name must fit the date, and the second
/// may be `60` (a leap second). Outer whitespace is ignored; nothing else is.
pub fn parse_http_date(text: &str) -> Result<DateTime<Utc>, DateError> {
    let text = text.trim_matches([' ', '\t']);
    let shape = || DateError::Shape(text.to_owned());
    let (weekday, date, time) = if let Some((name, rest)) = text.split_once(", ") {
        let rest = rest.strip_suffix(" GMT").ok_or_else(shape)?;
        let (date, time) = rest.rsplit_once(' ').ok_or_else(shape)?;
        if let Some(day) = short_weekday(name) {
            // IMF-fixdate: `DD Mon YYYY`.
            let [d, m, y] = fields(date, ' ').ok_or_else(shape)?;
            let year = digits(y, 4).ok_or_else(shape)?;
            (
                day,
                (year, month(m)?, digits(d, 2).ok_or_else(shape)?),
                time,
            )
        } else {
            // RFC 850: `Weekday, DD-Mon-YY`.
            let day = long_weekday(name).ok_or_else(|| DateError::Name(name.to_owned()))?;
            let [d, m, y] = fields(date, '-').ok_or_else(shape)?;
            let yy = digits(y, 2).ok_or_else(shape)?;
            let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
            (
                day,
                (year, month(m)?, digits(d, 2).ok_or_else(shape)?),
                time,
            )
        }
    } else {
        // asctime: `Www Mmm _D HH:MM:SS YYYY`, the day padded with a space.
        let name = text
            .get(..4)
            .and_then(|n| n.strip_suffix(' '))
            .ok_or_else(shape)?;
        let rest = &text[4..];
        let day = short_weekday(name).ok_or_else(|| DateError::Name(name.to_owned()))?;
        let (m, rest) = rest.split_at_checked(4).ok_or_else(shape)?;
        let m = m.strip_suffix(' ').ok_or_else(shape)?;
        let (d, rest) = rest.split_at_checked(3).ok_or_else(shape)?;
        let d = d.strip_suffix(' ').ok_or_else(shape)?;
        let d = d.strip_prefix(' ').unwrap_or(d);
        let (time, y) = rest.split_once(' ').ok_or_else(shape)?;
        let day_of_month = match d.len() {
            1 | 2 => digits(d, d.len()).ok_or_else(shape)?,
            _ => return Err(shape()),
        };
        let year = digits(y, 4).ok_or_else(shape)?;
        (day, (year, month(m)?, day_of_month), time)
    };
    let [h, mi, s] = fields(time, ':').ok_or_else(shape)?;
    let (h, mi, s) = (
        digits(h, 2).ok_or_else(shape)?,
        digits(mi, 2).ok_or_else(shape)?,
        digits(s, 2).ok_or_else(shape)?,
    );
    let impossible = || DateError::Impossible(text.to_owned());
    let (year, month, day) = date;
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or_else(impossible)?;
    let time = match s {
        // A leap second, as chrono represents it: the 59th second lasting 2 seconds.
        60 => NaiveTime::from_hms_milli_opt(h, mi, 59, 1_000),
        _ => NaiveTime::from_hms_opt(h, mi, s),
    }
    .ok_or_else(impossible)?;
    if date.weekday() != weekday {
        return Err(DateError::WrongWeekday(text.to_owned()));
    }
    Ok(date.and_time(time).and_utc())
}

/// Exactly three non-empty parts separated by `separator`.
fn fields(text: &str, separator: char) -> Option<[&str; 3]> {
    let mut parts = text.split(separator);
    let out = [parts.next()?, parts.next()?, parts.next()?];
    (parts.next().is_none() && out.iter().all(|p| !p.is_empty())).then_some(out)
}

/// Exactly `len` ASCII digits.
fn digits(text: &str, len: usize) -> Option<u32> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

const DAYS: [(&str, &str, Weekday); 7] = [
    ("Mon", "Monday", Weekday::Mon),
    ("Tue", "Tuesday", Weekday::Tue),
    ("Wed", "Wednesday", Weekday::Wed),
    ("Thu", "Thursday", Weekday::Thu),
    ("Fri", "Friday", Weekday::Fri),
    ("Sat", "Saturday", Weekday::Sat),
    ("Sun", "Sunday", Weekday::Sun),
];

fn short_weekday(name: &str) -> Option<Weekday> {
    DAYS.iter().find(|(s, _, _)| *s == name).map(|d| d.2)
}

fn long_weekday(name: &str) -> Option<Weekday> {
    DAYS.iter().find(|(_, l, _)| *l == name).map(|d| d.2)
}

fn month(name: &str) -> Result<u32, DateError> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == name)
        .and_then(|i| u32::try_from(i + 1).ok())
        .ok_or_else(|| DateError::Name(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn ms(t: DateTime<Utc>, millis: i64) -> DateTime<Utc> {
        t + TimeDelta::milliseconds(millis)
    }

    const RFC_EXAMPLE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn the_three_forms_of_rfc_9110() {
        let want = at(1994, 11, 6, 8, 49, 37);
        assert_eq!(parse_http_date(RFC_EXAMPLE), Ok(want));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Ok(want));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Ok(want));
        assert_eq!(parse_http_date("Sun Nov 06 08:49:37 1994"), Ok(want));
        assert_eq!(
            parse_http_date("Wed Nov 26 08:49:37 2025"),
            Ok(at(2025, 11, 26, 8, 49, 37))
        );
        // Outer whitespace (as a header value may carry) is ignored.
        assert_eq!(parse_http_date(&format!(" {RFC_EXAMPLE}\t")), Ok(want));
    }

    #[test]
    fn two_digit_years_pivot_at_70() {
        assert_eq!(
            parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"),
            Ok(at(1970, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_http_date("Tuesday, 31-Dec-69 23:59:59 GMT"),
            Ok(at(2069, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            parse_http_date("Saturday, 28-Nov-26 10:00:00 GMT"),
            Ok(at(2026, 11, 28, 10, 0, 0))
        );
    }

    #[test]
    fn leap_days_and_leap_seconds() {
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Ok(at(2024, 2, 29, 12, 0, 0))
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Ok(at(2000, 2, 29, 0, 0, 0))
        );
        // 1900 and 2100 are not leap years.
        for text in [
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Mon, 29 Feb 2100 00:00:00 GMT",
            "Sat, 29 Feb 2025 00:00:00 GMT",
            "Thu, 31 Apr 2025 00:00:00 GMT",
            "Wed, 00 Jan 2025 00:00:00 GMT",
            "Wed, 01 Jan 2025 24:00:00 GMT",
            "Wed, 01 Jan 2025 23:60:00 GMT",
            "Wed, 01 Jan 2025 23:59:61 GMT",
        ] {
            assert_eq!(
                parse_http_date(text),
                Err(DateError::Impossible(text.to_owned())),
                "{text}"
            );
        }
        // A leap second reads as the last second of the minute, one second long.
        let leap = parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT").unwrap();
        assert_eq!(leap.timestamp(), at(2016, 12, 31, 23, 59, 59).timestamp());
        assert_eq!(
            check(
                at(2017, 1, 1, 0, 0, 1),
                Some("Sat, 31 Dec 2016 23:59:60 GMT")
            ),
            ClockCheck::InStep
        );
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        for text in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37.5 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "1994-11-06T08:49:37Z",
            "Sun, 06 Nov +994 08:49:37 GMT",
        ] {
            assert_eq!(
                parse_http_date(text),
                Err(DateError::Shape(text.trim().to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_http_date("sun, 06 Nov 1994 08:49:37 GMT"),
            Err(DateError::Name("sun".into()))
        );
        assert_eq!(
            parse_http_date("Sun, 06 nov 1994 08:49:37 GMT"),
            Err(DateError::Name("nov".into()))
        );
        assert_eq!(
            parse_http_date("Sun, 06 Noe 1994 08:49:37 GMT"),
            Err(DateError::Name("Noe".into()))
        );
        assert_eq!(
            parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            Err(DateError::WrongWeekday(
                "Mon, 06 Nov 1994 08:49:37 GMT".into()
            ))
        );
        // The messages are API.
        assert_eq!(DateError::Missing.to_string(), "no Date header");
        assert_eq!(
            DateError::Shape("x".into()).to_string(),
            "not an HTTP date: \"x\""
        );
        assert_eq!(
            DateError::Name("Noe".into()).to_string(),
            "unknown name \"Noe\""
        );
        assert_eq!(
            DateError::Impossible("d".into()).to_string(),
            "no such date or time: \"d\""
        );
        assert_eq!(
            DateError::WrongWeekday("d".into()).to_string(),
            "\"d\" names the wrong day of the week"
        );
    }

    #[test]
    fn missing_or_bad_header_is_unknown() {
        let now = at(2026, 11, 28, 10, 0, 0);
        assert_eq!(check(now, None), ClockCheck::Unknown(DateError::Missing));
        assert_eq!(
            check(now, Some("garbage")),
            ClockCheck::Unknown(DateError::Shape("garbage".into()))
        );
        assert_eq!(check(now, None).kind(), "unknown");
        assert!(!check(now, None).is_off());
        assert_eq!(check(now, None).times(), None);
    }

    const KOHA: &str = "Sat, 28 Nov 2026 10:00:00 GMT";

    fn koha() -> DateTime<Utc> {
        at(2026, 11, 28, 10, 0, 0)
    }

    #[test]
    fn ahead_boundary_allows_for_the_second_of_resolution() {
        // Koha's clock read 10:00:00.999 when it wrote the header; the desk is exactly 2 minutes
        // ahead of that reading at most when it says 10:02:01 (whole).
        assert_eq!(
            check(at(2026, 11, 28, 10, 2, 1), Some(KOHA)),
            ClockCheck::InStep
        );
        let just_over = ms(at(2026, 11, 28, 10, 2, 1), 1);
        assert_eq!(
            check(just_over, Some(KOHA)),
            ClockCheck::DeskAhead {
                by: TimeDelta::milliseconds(121_001),
                desk: just_over,
                koha: koha(),
            }
        );
        assert!(check(just_over, Some(KOHA)).is_off());
        assert_eq!(check(just_over, Some(KOHA)).kind(), "desk-ahead");
        assert_eq!(
            check(just_over, Some(KOHA)).times(),
            Some((just_over, koha()))
        );
    }

    #[test]
    fn behind_boundary() {
        let exactly = at(2026, 11, 28, 9, 58, 0);
        assert_eq!(check(exactly, Some(KOHA)), ClockCheck::InStep);
        let over = ms(exactly, -1);
        assert_eq!(
            check(over, Some(KOHA)),
            ClockCheck::DeskBehind {
                by: TimeDelta::milliseconds(120_001),
                desk: over,
                koha: koha(),
            }
        );
        assert_eq!(check(over, Some(KOHA)).kind(), "desk-behind");
    }

    #[test]
    fn in_step_both_ways_and_at_the_same_second() {
        for offset_ms in [-120_000, -60_000, -999, 0, 999, 1_000, 60_000, 121_000] {
            let desk = ms(koha(), offset_ms);
            assert_eq!(check(desk, Some(KOHA)), ClockCheck::InStep, "{offset_ms}");
            assert_eq!(check(desk, Some(KOHA)).kind(), "in-step");
        }
    }

    #[test]
    fn a_slow_request_does_not_make_the_desk_look_ahead() {
        // Sent at 10:00:00 by both clocks, Koha stamped it at once, the answer took 5 minutes.
        let sent = koha();
        let received = at(2026, 11, 28, 10, 5, 0);
        assert_eq!(
            check_round_trip(sent, received, Some(KOHA)),
            ClockCheck::InStep
        );
        // Without the sending time the same answer looks 5 minutes ahead.
        assert!(matches!(
            check(received, Some(KOHA)),
            ClockCheck::DeskAhead { .. }
        ));
        // Really ahead: 10 minutes before the request was even sent.
        let sent = at(2026, 11, 28, 10, 10, 0);
        assert_eq!(
            check_round_trip(sent, ms(sent, 300), Some(KOHA)),
            ClockCheck::DeskAhead {
                by: TimeDelta::milliseconds(600_300),
                desk: ms(sent, 300),
                koha: koha(),
            }
        );
        // Behind is judged by the arrival: Koha wrote the date before the answer arrived.
        let received = at(2026, 11, 28, 9, 50, 0);
        assert_eq!(
            check_round_trip(ms(received, -200), received, Some(KOHA)),
            ClockCheck::DeskBehind {
                by: TimeDelta::minutes(10),
                desk: received,
                koha: koha(),
            }
        );
        // A `sent` after `received` (a clock step in between) is read as `received`.
        assert_eq!(
            check_round_trip(at(2026, 11, 28, 11, 0, 0), koha(), Some(KOHA)),
            ClockCheck::InStep
        );
    }

    #[test]
    fn year_and_month_ends() {
        let new_year = "Thu, 01 Jan 2026 00:00:00 GMT";
        assert_eq!(
            check(at(2025, 12, 31, 23, 58, 30), Some(new_year)),
            ClockCheck::InStep
        );
        assert!(matches!(
            check(at(2025, 12, 31, 23, 57, 59), Some(new_year)),
            ClockCheck::DeskBehind { .. }
        ));
        assert!(matches!(
            check(
                at(2026, 1, 1, 0, 2, 2),
                Some("Wed, 31 Dec 2025 23:59:59 GMT")
            ),
            ClockCheck::DeskAhead { .. }
        ));
        assert_eq!(
            check(
                at(2024, 3, 1, 0, 0, 30),
                Some("Thu, 29 Feb 2024 23:59:59 GMT")
            ),
            ClockCheck::InStep
        );
    }
}
