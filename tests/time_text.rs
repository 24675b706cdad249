//! The hand-written time texts (`zone::local_text`, `zone::parse_rfc3339`) against chrono's own
//! formatter and parser, which they replace in the `.wasm`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use koha_offline_circ::zone::{local_text, parse_rfc3339};
use proptest::prelude::*;

fn chrono_parse(text: &str) -> Option<DateTime<Utc>> {
    text.parse::<DateTime<FixedOffset>>()
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Years -300 to 12000 (signs and 5-digit years), every nanosecond precision, leap seconds.
    (
        -300i32..12000,
        1u32..=12,
        1u32..=31,
        0u32..86_400,
        0u32..3,
        0u32..2_000_000_000,
    )
        .prop_filter_map(
            "a real date",
            |(year, month, day, secs, precision, nano)| {
                let nano = match precision {
                    0 => (nano % 1_000_000_000) / 1_000_000 * 1_000_000,
                    1 => (nano % 1_000_000_000) / 1_000 * 1_000,
                    _ => nano,
                };
                let date = NaiveDate::from_ymd_opt(year, month, day)?;
                let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nano)?;
                Some(Utc.from_utc_datetime(&NaiveDateTime::new(date, time)))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn reads_what_chrono_serde_writes(at in instant()) {
        let text = serde_json::to_value(at).unwrap();
        let text = text.as_str().unwrap();
        prop_assert_eq!(parse_rfc3339(text), Some(at), "{}", text);
    }

    #[test]
    fn reads_like_chrono(text in "[+-]?[0-9]{1,5} ?- ?[0-9]{1,2}-[0-9]{1,2}[Tt xX][0-9]{1,3}:[0-9]{1,2} ?:[0-9]{1,2}(\\.[0-9]{0,11})? ?(Z|z|UTC|uTc|[+-][0-9]{1,2}(:| |)[0-9]{1,3}|)[ ]?") {
        prop_assert_eq!(parse_rfc3339(&text), chrono_parse(&text), "{:?}", text);
    }

    #[test]
    fn reads_odd_offsets_and_spaces_like_chrono(text in "[ ]?2026-0?3-29[T ] ?[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?[ \u{3000}]?([+\u{2212}-][0-9]{2}[: ]{0,3}[0-9]{0,3}|[uU][tT][cC]|Z)[ \u{3000}]{0,2}") {
        prop_assert_eq!(parse_rfc3339(&text), chrono_parse(&text), "{:?}", text);
    }

    #[test]
    fn reads_realistic_texts_like_chrono(
        date in "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
        time in "[0-2][0-9]:[0-6][0-9]:[0-6][0-9]",
        fraction in "(\\.[0-9]{1,10})?",
        offset in "(Z|[+-][01][0-9]:[0-5][0-9])",
    ) {
        let text = format!("{date}T{time}{fraction}{offset}");
        prop_assert_eq!(parse_rfc3339(&text), chrono_parse(&text), "{:?}", text);
    }

    #[test]
    fn writes_like_chrono_format(at in instant()) {
        let local = at.naive_utc();
        prop_assert_eq!(
            local_text(local, "-", " ", ":"),
            local.format("%Y-%m-%d %H:%M:%S").to_string()
        );
        prop_assert_eq!(
            local_text(local, "", "-", ""),
            local.format("%Y%m%d-%H%M%S").to_string()
        );
    }
}

#[test]
fn refuses_what_is_not_a_date_and_time() {
    for text in [
        "",
        "2026-03-29",
        "2026-03-29T00:00:00",
        "2026-02-30T00:00:00Z",
        "x2026-03-29T00:00:00Z",
        "2026-03-29T00:00:00Zx",
        "2026-03-29T24:00:00Z",
        "2026-03-29T00:00:00.Z",
        "2026-03-29T00:00:00+2400",
    ] {
        assert_eq!(parse_rfc3339(text), None, "{text:?}");
        assert_eq!(chrono_parse(text), None, "{text:?}");
    }
}
