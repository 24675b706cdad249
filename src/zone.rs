//! Time zones: converting instants to a Koha server's local time, injected by the caller.
//!
//! The core carries no time-zone database (the `.xpi` must stay small). A zone is anything that
//! can say which UTC offset applies at a given instant ([`ZoneRules`]); the browser shell answers
//! that with `Intl`, the tests with `chrono-tz`.
//!
//! UTC → local is always well defined ([`to_local`]). Local → UTC is not: when clocks go back a
//! local time occurs twice, and when they go forward a local time never occurs. [`from_local`]
//! gives every local time exactly one instant, with defined rules for both cases, and says which
//! case applied ([`LocalResolution`]).
//!
//! Assumption: offset changes of a zone are more than a day apart (true of every real zone), since
//! the offsets in force around a local time are found by probing one day before and after it.
//!
//! A zone's name, as an admin types it on the options page, is a [`TimezoneName`].

mod name;

pub use name::{TimezoneError, TimezoneName, TIMEZONE_MAX};

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};

/// The rules of one time zone: the UTC offset in force at any instant.
pub trait ZoneRules {
    /// The offset from UTC in force at `instant`.
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset;
}

/// A zone with one constant offset, such as UTC. It never has repeated or skipped local times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedZone(pub FixedOffset);

impl FixedZone {
    /// UTC itself (offset zero).
    pub fn utc() -> Self {
        FixedZone(Utc.fix())
    }
}

impl ZoneRules for FixedZone {
    fn offset_at(&self, _instant: DateTime<Utc>) -> FixedOffset {
        self.0
    }
}

/// How a local time was turned into an instant by [`from_local`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResolution {
    /// The local time occurs exactly once.
    Unique(DateTime<Utc>),
    /// The local time occurs twice (clocks went back). [`LocalResolution::instant`] is `earlier`.
    Ambiguous {
        /// The first occurrence, under the offset in force before the change.
        earlier: DateTime<Utc>,
        /// The second occurrence, under the offset in force after the change.
        later: DateTime<Utc>,
    },
    /// The local time never occurs (clocks went forward). It is shifted forward by the gap: the
    /// instant is read with the offset in force before the change, so 02:30 in a skipped
    /// 02:00–03:00 hour becomes 03:30 local time.
    Skipped {
        /// The chosen instant.
        instant: DateTime<Utc>,
        /// How far the clocks jumped (positive).
        gap: TimeDelta,
    },
}

impl LocalResolution {
    /// The instant chosen: the only one, the earlier one, or the shifted one.
    pub fn instant(&self) -> DateTime<Utc> {
        match *self {
            LocalResolution::Unique(at) => at,
            LocalResolution::Ambiguous { earlier, .. } => earlier,
            LocalResolution::Skipped { instant, .. } => instant,
        }
    }

    /// Stable name of the case: `unique`, `ambiguous` or `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            LocalResolution::Unique(_) => "unique",
            LocalResolution::Ambiguous { .. } => "ambiguous",
            LocalResolution::Skipped { .. } => "skipped",
        }
    }
}

/// The local wall-clock time at `instant` in `zone`. Never panics: at the very ends of chrono's
/// range, where adding the offset would overflow, the UTC time itself is returned.
pub fn to_local(instant: DateTime<Utc>, zone: &dyn ZoneRules) -> NaiveDateTime {
    let utc = instant.naive_utc();
    utc.checked_add_offset(zone.offset_at(instant))
        .unwrap_or(utc)
}

/// The instant at which `zone` shows the wall-clock time `local`, using only
/// [`ZoneRules::offset_at`]:
///
/// - candidate offsets are those in force one day before, at, and one day after `local` (read as
///   if it were UTC);
/// - a candidate `o` is valid when `offset_at(local - o) == o`;
/// - one valid instant gives [`LocalResolution::Unique`], two give
///   [`LocalResolution::Ambiguous`] (the earlier is chosen), none gives
///   [`LocalResolution::Skipped`] (read with the offset before the change, so shifted forward by
///   the gap).
///
/// Rules that contradict themselves (no valid offset and no forward jump) fall back to the
/// offset in force at `local` read as UTC, reported as `Unique`. Never panics.
pub fn from_local(local: NaiveDateTime, zone: &dyn ZoneRules) -> LocalResolution {
    let day = TimeDelta::days(1);
    let probe = |naive: Option<NaiveDateTime>| naive.map(|n| zone.offset_at(n.and_utc()));
    let before = probe(local.checked_sub_signed(day));
    let here = probe(Some(local));
    let after = probe(local.checked_add_signed(day));

    let mut valid: Vec<DateTime<Utc>> = [before, here, after]
        .into_iter()
        .flatten()
        .filter_map(|offset| {
            let instant = local.checked_sub_offset(offset)?.and_utc();
            (zone.offset_at(instant) == offset).then_some(instant)
        })
        .collect();
    valid.sort();
    valid.dedup();

    match (valid.first(), valid.last()) {
        (Some(&first), Some(&last)) if first == last => LocalResolution::Unique(first),
        (Some(&earlier), Some(&later)) => LocalResolution::Ambiguous { earlier, later },
        _ => {
            let before = before.or(here);
            let after = after.or(here);
            let shifted = before.and_then(|o| local.checked_sub_offset(o));
            match (before, after, shifted) {
                (Some(b), Some(a), Some(instant)) if a.local_minus_utc() > b.local_minus_utc() => {
                    LocalResolution::Skipped {
                        instant: instant.and_utc(),
                        gap: TimeDelta::seconds(i64::from(
                            a.local_minus_utc() - b.local_minus_utc(),
                        )),
                    }
                }
                _ => {
                    let offset = here.unwrap_or(FixedZone::utc().0);
                    let naive = local.checked_sub_offset(offset).unwrap_or(local);
                    LocalResolution::Unique(naive.and_utc())
                }
            }
        }
    }
}

/// `local` as chrono's `%Y<d>%m<d>%d<b>%H<t>%M<t>%S` writes it (`("-", " ", ":")` gives
/// `2026-03-29 01:02:03`), without chrono's format-string machinery in the `.wasm`. Years outside
/// 0–9999 carry a sign, a leap second reads `60`, as with chrono.
pub fn local_text(local: NaiveDateTime, date: &str, between: &str, time: &str) -> String {
    let year = local.year();
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+05}")
    };
    format!(
        "{year}{date}{:02}{date}{:02}{between}{:02}{time}{:02}{time}{:02}",
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second() + local.nanosecond() / 1_000_000_000,
    )
}

/// Reads an RFC 3339 date and time (`2026-03-29T00:00:08.250Z`, `…+01:00`) as the stores hold
/// it, without chrono's general parser in the `.wasm`. Accepts exactly what chrono's
/// `DateTime<FixedOffset>::from_str` (its serde) accepts (a property test compares them): `T`,
/// `t` or a space between date and time; numbers of 1 or 2 digits (a year of 1 to 4, or
/// signed); spaces before numbers, `-`, `:`, the offset and at the end; 1 to 9 fraction digits
/// (more are ignored); `Z`, `z`, `UTC` in any case, or an offset `±HH:MM` (`:` and spaces
/// optional, `−` for minus); a leap second `60`.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let mut c = Cursor { rest: text };
    c.skip_spaces();
    let year = if let Some(rest) = c.rest.strip_prefix('-') {
        c.rest = rest;
        -c.number(1, usize::MAX)?
    } else if let Some(rest) = c.rest.strip_prefix('+') {
        c.rest = rest;
        c.number(1, usize::MAX)?
    } else {
        c.number(1, 4)?
    };
    c.literal('-')?;
    let month = c.spaced_number(2)?;
    c.literal('-')?;
    let day = c.spaced_number(2)?;
    c.rest = c.rest.strip_prefix(['T', 't', ' ']).ok_or(()).ok()?;
    let hour = c.spaced_number(2)?;
    c.literal(':')?;
    let minute = c.spaced_number(2)?;
    c.literal(':')?;
    let mut second = c.spaced_number(2)?;
    let mut nano = 0;
    if let Some(rest) = c.rest.strip_prefix('.') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, d) in rest.bytes().take(digits.min(9)).enumerate() {
            nano += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
        }
        c.rest = &rest[digits..];
    }
    c.skip_spaces();
    let offset = if let Some(rest) = c.rest.strip_prefix(['Z', 'z']) {
        c.rest = rest;
        0
    } else if c
        .rest
        .get(..3)
        .is_some_and(|u| u.eq_ignore_ascii_case("UTC"))
    {
        c.rest = &c.rest[3..];
        0
    } else {
        let sign = if let Some(rest) = c.rest.strip_prefix('+') {
            c.rest = rest;
            1
        } else if let Some(rest) = c.rest.strip_prefix(['-', '\u{2212}']) {
            c.rest = rest;
            -1
        } else {
            return None;
        };
        let hours = c.two_digits()?;
        c.rest = c
            .rest
            .trim_start_matches(|ch: char| ch == ':' || ch.is_whitespace());
        let minutes = c.two_digits().filter(|m| *m < 60)?;
        sign * (hours * 3600 + minutes * 60)
    };
    c.skip_spaces();
    if !c.rest.is_empty()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    if second == 60 {
        second = 59;
        nano += 1_000_000_000;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?;
    let time =
        NaiveTime::from_hms_nano_opt(hour as u32, minute as u32, second as u32, nano as u32)?;
    let offset = FixedOffset::east_opt(i32::try_from(offset).ok()?)?;
    let local = offset
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .single()?;
    Some(local.with_timezone(&Utc))
}

/// What is left of a text being read.
struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// `ch`, after any spaces.
    fn literal(&mut self, ch: char) -> Option<()> {
        self.skip_spaces();
        self.rest = self.rest.strip_prefix(ch)?;
        Some(())
    }

    /// A number of 1 to `max` ASCII digits, after any spaces.
    fn spaced_number(&mut self, max: usize) -> Option<i64> {
        self.skip_spaces();
        self.number(1, max)
    }

    /// A number of `min` to `max` ASCII digits.
    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let digits = self
            .rest
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if digits < min {
            return None;
        }
        let mut value: i64 = 0;
        for d in self.rest[..digits].bytes() {
            value = value.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        }
        self.rest = &self.rest[digits..];
        Some(value)
    }

    /// Exactly two ASCII digits.
    fn two_digits(&mut self) -> Option<i64> {
        let b = self.rest.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_digit() || !b[1].is_ascii_digit() {
            return None;
        }
        let value = i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0');
        self.rest = &self.rest[2..];
        Some(value)
    }
}

/// The offset in a zone name as `Intl.DateTimeFormat` gives it with `timeZoneName: "longOffset"`:
/// `GMT` (UTC itself), `GMT+01:00`, `GMT-03:30`; hours alone (`GMT+5`) are taken too, and so are
/// seconds (`GMT+00:53:28`, the local mean time zones had before standard time).
pub fn parse_gmt_offset(name: &str) -> Option<FixedOffset> {
    let rest = name.strip_prefix("GMT")?;
    if rest.is_empty() {
        return FixedOffset::east_opt(0);
    }
    let sign = match rest.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |part: &str| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<i32>().ok())
            .flatten()
    };
    let mut parts = rest[1..].split(':');
    let hours = digits(parts.next()?)?;
    let mut sixtieths = || match parts.next() {
        None => Some(0),
        Some(part) => digits(part).filter(|n| *n < 60),
    };
    let (minutes, seconds) = (sixtieths()?, sixtieths()?);
    if parts.next().is_some() {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60 + seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn offsets_are_read_from_intl_zone_names() {
        let east = |s: i32| FixedOffset::east_opt(s);
        assert_eq!(parse_gmt_offset("GMT"), east(0));
        assert_eq!(parse_gmt_offset("GMT+01:00"), east(3600));
        assert_eq!(parse_gmt_offset("GMT-03:30"), east(-(3 * 3600 + 1800)));
        assert_eq!(parse_gmt_offset("GMT+05:45"), east(5 * 3600 + 45 * 60));
        assert_eq!(parse_gmt_offset("GMT+5"), east(5 * 3600));
        assert_eq!(parse_gmt_offset("GMT+00:53:28"), east(53 * 60 + 28));
        assert_eq!(parse_gmt_offset("GMT-00:25:21"), east(-(25 * 60 + 21)));
        for unreadable in [
            "",
            "UTC",
            "GMT 1",
            "GMT+",
            "GMT+aa:00",
            "GMT+01:xx",
            "GMT+25:00",
            "GMT++1",
            "GMT+-1",
            "GMT+01:60",
            "GMT+01:00:60",
            "GMT+01:00:00:00",
        ] {
            assert_eq!(parse_gmt_offset(unreadable), None, "{unreadable:?}");
        }
    }

    /// A zone at +01:00 that moves to +02:00 at 2026-03-29 01:00 UTC and back at
    /// 2026-10-25 01:00 UTC, like Central Europe.
    struct TwoChanges;

    impl ZoneRules for TwoChanges {
        fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
            let spring = utc(2026, 3, 29, 1, 0, 0);
            let autumn = utc(2026, 10, 25, 1, 0, 0);
            let hours = if instant >= spring && instant < autumn {
                2
            } else {
                1
            };
            FixedOffset::east_opt(hours * 3600).unwrap()
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        local(y, mo, d, h, mi, s).and_utc()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn ordinary_times_are_unique() {
        let r = from_local(local(2026, 7, 1, 12, 0, 0), &TwoChanges);
        assert_eq!(r, LocalResolution::Unique(utc(2026, 7, 1, 10, 0, 0)));
        assert_eq!(r.kind(), "unique");
        assert_eq!(
            to_local(utc(2026, 1, 1, 23, 30, 0), &TwoChanges),
            local(2026, 1, 2, 0, 30, 0)
        );
    }

    #[test]
    fn repeated_hour_takes_the_earlier_instant() {
        let r = from_local(local(2026, 10, 25, 2, 30, 0), &TwoChanges);
        assert_eq!(
            r,
            LocalResolution::Ambiguous {
                earlier: utc(2026, 10, 25, 0, 30, 0),
                later: utc(2026, 10, 25, 1, 30, 0),
            }
        );
        assert_eq!(r.instant(), utc(2026, 10, 25, 0, 30, 0));
        assert_eq!(r.kind(), "ambiguous");
        // The boundaries: 02:00 is repeated, 03:00 is not.
        assert_eq!(
            from_local(local(2026, 10, 25, 2, 0, 0), &TwoChanges).kind(),
            "ambiguous"
        );
        assert_eq!(
            from_local(local(2026, 10, 25, 3, 0, 0), &TwoChanges),
            LocalResolution::Unique(utc(2026, 10, 25, 2, 0, 0))
        );
    }

    #[test]
    fn skipped_hour_moves_forward_by_the_gap() {
        let r = from_local(local(2026, 3, 29, 2, 30, 0), &TwoChanges);
        assert_eq!(
            r,
            LocalResolution::Skipped {
                instant: utc(2026, 3, 29, 1, 30, 0),
                gap: TimeDelta::hours(1),
            }
        );
        assert_eq!(
            to_local(r.instant(), &TwoChanges),
            local(2026, 3, 29, 3, 30, 0)
        );
        assert_eq!(
            from_local(local(2026, 3, 29, 3, 0, 0), &TwoChanges),
            LocalResolution::Unique(utc(2026, 3, 29, 1, 0, 0))
        );
        assert_eq!(
            from_local(local(2026, 3, 29, 1, 59, 59), &TwoChanges),
            LocalResolution::Unique(utc(2026, 3, 29, 0, 59, 59))
        );
    }

    #[test]
    fn fixed_zone_and_extremes_do_not_panic() {
        let plus = FixedZone(FixedOffset::east_opt(-5 * 3600).unwrap());
        assert_eq!(
            from_local(local(2026, 1, 1, 0, 0, 0), &plus),
            LocalResolution::Unique(utc(2026, 1, 1, 5, 0, 0))
        );
        assert_eq!(FixedZone::utc().0.local_minus_utc(), 0);
        let _ = from_local(NaiveDateTime::MAX, &plus);
        let _ = from_local(NaiveDateTime::MIN, &plus);
        let _ = to_local(DateTime::<Utc>::MAX_UTC, &plus);
        let _ = to_local(DateTime::<Utc>::MIN_UTC, &plus);
    }
}
