//! What the storage tests build their transactions from.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses part; a panic is a failure report

use chrono::{DateTime, Duration, TimeZone, Utc};
use koha_offline_circ::{Action, Barcode, Branchcode, Cardnumber, Transaction, TransactionId};

/// Second `sec` of a fixed morning, 2026-03-29 08:00 UTC.
pub fn at(sec: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 8, 0, 0).unwrap() + Duration::seconds(sec)
}

/// A checkout recorded at second `n`, with a distinct id and a fixed-width barcode.
pub fn checkout(n: u64) -> Transaction {
    Transaction::record(
        TransactionId::new(at(n as i64), n),
        at(n as i64),
        Branchcode::parse("DE-627").unwrap(),
        Action::Issue {
            cardnumber: Cardnumber::parse("P0001").unwrap(),
            barcode: Barcode::parse(&format!("{n:08}")).unwrap(),
        },
    )
}
