//! Offline checks: what the desk warns about on a card or item scan while Koha is away, from a
//! snapshot of Koha taken while it was up (docs/koha.md 12).
//!
//! Everything here is pure. The shell fetches the pages a [`Download`] asks for (each list read
//! by a [`Pager`], each page by [`parse_patrons`], [`parse_items`] or [`parse_checkouts`]),
//! gets a [`Snapshot`] once every list is read or left out, stores it with [`write_plan`] and
//! reads it back with [`read_snapshot`].
//! At the desk, [`check_card`] and [`check_item`] look a scan up in `O(log n)`.
//!
//! The snapshot keeps only what the checks need: no names, addresses or e-mails.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use koha_offline_circ::checks::{self, CardLimits, Coverage, Snapshot};
//!
//! let page = r#"[{"patron_id": 7, "cardnumber": "C0001", "expiry_date": "2026-01-31",
//!     "restricted": false, "patron_card_lost": false, "incorrect_address": false,
//!     "library_id": "CPL", "surname": "not kept", "account_balance": 3.5}]"#;
//! let patrons = checks::parse_patrons(page).unwrap();
//! let taken = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
//! let coverage = Coverage { patrons: true, items: false, checkouts: false };
//! let snapshot = Snapshot::new(
//!     taken,
//!     coverage,
//!     patrons.into_iter().filter_map(|row| row.record).collect(),
//!     Vec::new(),
//! );
//! let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
//! let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
//! let limits = CardLimits { balance_cents: Some(500) };
//! let warnings = checks::check_card(&snapshot, "C0001", limits, today, now);
//! assert_eq!(warnings.len(), 1);
//! assert_eq!(warnings[0].kind(), "expired");
//! assert_eq!(warnings[0].age.minutes, 25 * 60);
//! ```

mod auto;
mod compact;
mod desk;
mod download;
mod incremental;
mod model;
mod paging;
mod rest;
mod warnings;

pub use auto::{
    auto_download_change, auto_download_due, parse_auto_hours, read_auto_download, AutoDownload,
    AutoHoursError, AUTO_HOURS_MAX, DEFAULT_AUTO_HOURS,
};
pub use compact::{
    delete_plan, placed, read_snapshot, snapshot_keys, write_plan, Place, CHUNK_RECORDS,
};
pub use desk::{
    balance_limit_change, card_accepted_after, card_limits, desk_checks, parse_balance_limit,
    payment_balance, read_balance_limit, snapshot_status, AgeText, DeskCheck, PaymentBalance,
    Problem, SnapshotStatus, UnavailableList, AGE_UNITS,
};
pub use download::{Availability, Download, DownloadError, Next, Unavailable};
pub use incremental::{
    goes_on, plan_pull, pull_source, since_value, FullWhy, Pull, StoppedDownload, FULL_PULL_EVERY,
    SINCE_MARGIN,
};
pub use model::{
    Coverage, Holder, ItemRecord, PatronId, PatronRecord, PullRecord, Restriction, Snapshot,
};
pub use paging::{
    per_page, Access, List, Pager, Progress, DEFAULT_PER_PAGE, PER_PAGE_OVERRIDE_KEY,
};
pub use rest::{
    join_loans, parse_checkouts, parse_items, parse_patrons, CheckoutRow, ItemRow, PageError,
    PatronRow,
};
pub use warnings::{
    check_card, check_item, koha_today, moved_here, CardLimits, CardProblem, CardWarning,
    ItemProblem, ItemScan, ItemWarning, SnapshotAge, Warning,
};
