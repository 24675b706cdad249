//! Fuzz target: the `.koc` reader must never panic, whatever the bytes, and must account for
//! every line it sees. Run with `cargo +nightly fuzz run koc_read` from the repository root.
#![no_main]

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use koha_offline_circ::koc::{self, TimeBasis};
use koha_offline_circ::zone::{FixedZone, ZoneRules};
use libfuzzer_sys::fuzz_target;

/// A zone with daylight saving time without a database: +01:00, and +02:00 from the last
/// Sunday-ish of March to that of October (days 87 to 300 of each year, close enough to
/// reach the repeated and skipped hours).
struct SummerTime;

impl ZoneRules for SummerTime {
    fn offset_at(&self, instant: DateTime<Utc>) -> FixedOffset {
        use chrono::Datelike;
        let day = instant.ordinal();
        let hours = if (87..300).contains(&day) { 2 } else { 1 };
        FixedOffset::east_opt(hours * 3600).unwrap_or(FixedZone::utc().0)
    }
}

fuzz_target!(|data: &[u8]| {
    let read = koc::read(data, &SummerTime, None);
    let _ = koc::read(data, &FixedZone::utc(), Some(TimeBasis::Utc));
    // Every row's instant is within a day of its local time.
    for row in &read.rows {
        let diff = row.at.naive_utc() - row.local;
        assert!(diff.abs() <= TimeDelta::days(1));
    }
});
