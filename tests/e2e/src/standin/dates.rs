//! `service.pl` timestamps (docs/koha.md 6.1): parse, then convert from UTC (or the given offset)
//! to the server's zone.

use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The format Koha stores: `YYYY-MM-DD HH:MM:SS`.
pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.s.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        std::str::from_utf8(part).ok()?.parse().ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i == self.s.len()
    }
    fn space(&mut self) -> bool {
        match self.peek() {
            Some(c) if c.is_ascii_whitespace() => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }
}

fn date(c: &mut Cursor<'_>) -> Option<(i32, u32, u32)> {
    let y = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let m = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)?;
    Some((i32::try_from(y).ok()?, m, d))
}

fn build((y, m, d): (i32, u32, u32), (h, min, s): (u32, u32, u32)) -> Option<NaiveDateTime> {
    // Day 00 is read as 01, as Koha's newer parser does.
    let d = if d == 0 { 1 } else { d };
    NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(h, min, s)
}

/// The newer grammar, which must match the whole text (docs/koha.md 6.1). Returns the instant as
/// naive UTC.
fn parse_new(text: &str) -> Option<NaiveDateTime> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let ymd = date(&mut c)?;
    if c.at_end() {
        return build(ymd, (0, 0, 0));
    }
    if !c.eat(b'T') {
        c.eat(b't');
    }
    while c.space() {}
    let mut h = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let min = c.digits(2)?;
    let mut s = 0;
    if c.eat(b':') {
        s = c.digits(2)?;
    }
    // Optionally one whitespace character and AM/PM.
    let save = c.i;
    let spaced = c.space();
    let rest = &text.as_bytes()[c.i..];
    if rest.starts_with(b"AM") || rest.starts_with(b"PM") {
        let pm = rest[0] == b'P';
        c.i += 2;
        h = match (pm, h) {
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, 12) => 0,
            (false, h) => h,
        };
    } else if spaced {
        c.i = save;
    }
    let mut offset_secs: i64 = 0;
    match c.peek() {
        None => {}
        Some(b'Z' | b'z') => {
            c.i += 1;
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2)?;
            if oh > 23 {
                return None;
            }
            c.eat(b':');
            let om = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.digits(2)?
            } else {
                0
            };
            if om > 59 {
                return None;
            }
            offset_secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                offset_secs = -offset_secs;
            }
        }
        Some(_) => return None,
    }
    if !c.at_end() {
        return None;
    }
    Some(build(ymd, (h, min, s))? - Duration::seconds(offset_secs))
}

/// The old grammar: the first date anywhere, optional whitespace and `HH:MM[:SS]`, rest ignored.
fn parse_old(text: &str) -> Option<NaiveDateTime> {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        let mut c = Cursor { s: bytes, i: start };
        let Some(ymd) = date(&mut c) else { continue };
        while c.space() {}
        let time = (|| {
            let h = c.digits(2)?;
            if !c.eat(b':') {
                return None;
            }
            let m = c.digits(2)?;
            let s = if c.eat(b':') { c.digits(2)? } else { 0 };
            Some((h, m, s))
        })();
        return build(ymd, time.unwrap_or((0, 0, 0)));
    }
    None
}

/// Parses a non-empty `service.pl` timestamp and converts it to `tz`, formatted as Koha stores
/// it. `None` means Koha dies with 500 (docs/koha.md 6.1).
pub fn convert(text: &str, old_parser: bool, tz: Tz) -> Option<String> {
    if text.starts_with("0000-0") {
        return None;
    }
    let utc = if old_parser {
        parse_old(text)?
    } else {
        parse_new(text)?
    };
    Some(tz.from_utc_datetime(&utc).format(FORMAT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_5_table() {
        let tz: Tz = "UTC".parse().unwrap_or(Tz::UTC);
        let cases = [
            (
                "2025-01-31 14:05:09",
                Some("2025-01-31 14:05:09"),
                Some("2025-01-31 14:05:09"),
            ),
            (
                "2025-01-31 14:05",
                Some("2025-01-31 14:05:00"),
                Some("2025-01-31 14:05:00"),
            ),
            (
                "2025-01-31T14:05:09Z",
                Some("2025-01-31 00:00:00"),
                Some("2025-01-31 14:05:09"),
            ),
            (
                "2025-01-31T14:05:09+01:00",
                Some("2025-01-31 00:00:00"),
                Some("2025-01-31 13:05:09"),
            ),
            ("2025-01-31 14:05:09.123", Some("2025-01-31 14:05:09"), None),
            ("2025-01-31 14-05-09", Some("2025-01-31 00:00:00"), None),
            (
                "2025-01-31",
                Some("2025-01-31 00:00:00"),
                Some("2025-01-31 00:00:00"),
            ),
            ("0000-00-00 00:00:00", None, None),
            ("31/01/2025 10:00:00", None, None),
            (
                "2025-01-00 10:00",
                Some("2025-01-01 10:00:00"),
                Some("2025-01-01 10:00:00"),
            ),
            ("2025-02-30 10:00", None, None),
            ("2025-01-31 24:00", None, None),
            (
                "2025-01-31 12:30 AM",
                Some("2025-01-31 12:30:00"),
                Some("2025-01-31 00:30:00"),
            ),
            (
                "2025-01-31 12:30 PM",
                Some("2025-01-31 12:30:00"),
                Some("2025-01-31 12:30:00"),
            ),
            (
                "2025-01-31 01:30:05PM",
                Some("2025-01-31 01:30:05"),
                Some("2025-01-31 13:30:05"),
            ),
            (
                "2025-01-31t  01:30-0230",
                Some("2025-01-31 00:00:00"),
                Some("2025-01-31 04:00:00"),
            ),
            ("2025-01-31 01:30+24", Some("2025-01-31 01:30:00"), None),
            ("x2025-01-31 01:30", Some("2025-01-31 01:30:00"), None),
            ("2025-01-31 01:30 ", Some("2025-01-31 01:30:00"), None),
        ];
        for (input, old, new) in cases {
            assert_eq!(convert(input, true, tz).as_deref(), old, "old {input:?}");
            assert_eq!(convert(input, false, tz).as_deref(), new, "new {input:?}");
        }
    }

    #[test]
    fn converts_to_the_server_zone_with_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap_or(Tz::UTC);
        assert_eq!(
            convert("2025-01-31 23:30:00", false, berlin).as_deref(),
            Some("2025-02-01 00:30:00")
        );
        assert_eq!(
            convert("2025-07-01 12:00:00", false, berlin).as_deref(),
            Some("2025-07-01 14:00:00")
        );
    }
}
