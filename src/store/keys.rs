//! The keys of every stored entry, and the versions of the formats written under them. A leaf:
//! every other storage module reads its keys from here.

use crate::transaction::TransactionId;

/// The storage schema this build writes and reads. Stored under [`META_KEY`].
pub const CURRENT_SCHEMA: u32 = 3;
/// The version of the transaction envelope this build writes.
pub const ENVELOPE_VERSION: u64 = 1;
/// The version of the archive chunk format this build writes.
pub const ARCHIVE_VERSION: u64 = 1;
/// The version of the export record format this build writes.
pub const EXPORT_VERSION: u64 = 1;

/// The version of the offline checks' snapshot entries this build writes.
pub const CHECKS_VERSION: u64 = 1;

/// Key of `{"schema": N}`.
pub const META_KEY: &str = "meta";
/// Key of the settings JSON.
pub const SETTINGS_KEY: &str = "settings";
/// Prefix of one transaction's key in `browser.storage.local`.
pub const TX_PREFIX: &str = "tx:";
/// Prefix of an entry kept aside because it could not be read.
pub const QUARANTINE_PREFIX: &str = "quarantine:";
/// Prefix of one transaction's key in the `localStorage` mirror.
pub const MIRROR_PREFIX: &str = "koha-offline-circ:tx:";
/// Prefix of an archive chunk's key.
pub const ARCHIVE_PREFIX: &str = "archive:";
/// Prefix of a pending chunk's key: transactions Koha had not accepted when it was written.
pub const PENDING_PREFIX: &str = "pending:";
/// Prefix of an export record's key.
pub const EXPORT_PREFIX: &str = "exported:";

/// Key of the last [`Barrier`](super::Barrier) a page wrote before a send or an export (a
/// random token as a JSON string).
pub const BARRIER_KEY: &str = "barrier";

/// Prefix of every entry of the offline checks' snapshot.
pub const CHECKS_PREFIX: &str = "checks:";
/// Key of the snapshot's meta entry, which names the chunks of the snapshot in use.
pub const CHECKS_META_KEY: &str = "checks:meta";

/// Key of the desk's balance limit for the offline checks (`{"v":1,"balance_cents":n}`): outside
/// `checks:`, so deleting the snapshot keeps it.
pub const CHECKS_LIMIT_KEY: &str = "checks-balance-limit";
/// Key of the automatic download's age setting (`{"v":1,"hours":n}`), outside `checks:` as the
/// balance limit is.
pub const CHECKS_AUTO_KEY: &str = "checks-auto-hours";

/// `tx:<id>`.
pub fn transaction_key(id: &TransactionId) -> String {
    format!("{TX_PREFIX}{id}")
}

/// Whether `key` is a transaction's key in `browser.storage.local`.
pub fn is_transaction_key(key: &str) -> bool {
    key.strip_prefix(TX_PREFIX).is_some_and(|id| !id.is_empty())
}

/// The transaction a `tx:<id>` key stores, if `key` is one.
pub fn id_of_transaction_key(key: &str) -> Option<TransactionId> {
    key.strip_prefix(TX_PREFIX)
        .filter(|id| !id.is_empty())
        .map(TransactionId::from_stored)
}

/// `koha-offline-circ:tx:<id>`.
pub fn mirror_key(id: &TransactionId) -> String {
    format!("{MIRROR_PREFIX}{id}")
}

/// The transaction a `koha-offline-circ:tx:<id>` key of the mirror holds, if `key` is one.
pub fn id_of_mirror_key(key: &str) -> Option<TransactionId> {
    key.strip_prefix(MIRROR_PREFIX)
        .filter(|id| !id.is_empty())
        .map(TransactionId::from_stored)
}

/// Whether `key` is a transaction's key in the `localStorage` mirror.
pub fn is_mirror_key(key: &str) -> bool {
    key.strip_prefix(MIRROR_PREFIX)
        .is_some_and(|id| !id.is_empty())
}

/// Whether `key` holds an entry kept aside because it could not be read.
pub fn is_quarantine_key(key: &str) -> bool {
    key.starts_with(QUARANTINE_PREFIX)
}

/// Whether `key` holds an archive chunk.
pub fn is_archive_key(key: &str) -> bool {
    key.strip_prefix(ARCHIVE_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether `key` holds a pending chunk.
pub fn is_pending_key(key: &str) -> bool {
    key.strip_prefix(PENDING_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether `key` holds an export record.
pub fn is_export_key(key: &str) -> bool {
    key.strip_prefix(EXPORT_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether `key` holds an entry of the offline checks' snapshot.
pub fn is_checks_key(key: &str) -> bool {
    key.starts_with(CHECKS_PREFIX)
}

/// Asking `browser.storage.local` for entries by name costs, per name, about as much as this
/// many stored entries add to one read of everything. Measured in Firefox 153 ESR with 50,000
/// single transaction keys stored: 50,000 names 13 s (linear: 1,000 names 0.3 s), everything
/// 2 s, so a refresh of a long outage's transactions by name took 13 s before each export.
pub const BY_NAME_COST: usize = 6;

/// How a page reads some of `browser.storage.local`'s entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// By name: few of many.
    ByName,
    /// Everything at once, keeping the wanted ones.
    Everything,
}

/// The cheaper way to read `wanted` entries of about `stored`. Either reads the same entries;
/// only the time differs.
pub fn cheaper_read(wanted: usize, stored: usize) -> Read {
    if wanted.saturating_mul(BY_NAME_COST) <= stored {
        Read::ByName
    } else {
        Read::Everything
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_entries_are_read_by_name_many_with_everything() {
        assert_eq!(cheaper_read(0, 0), Read::ByName);
        assert_eq!(cheaper_read(1, 6), Read::ByName);
        assert_eq!(cheaper_read(1, 5), Read::Everything);
        // A long outage: 50,000 unsent of 50,100 entries.
        assert_eq!(cheaper_read(50_000, 50_100), Read::Everything);
        // A few unsent among many archive chunks.
        assert_eq!(cheaper_read(200, 1_500), Read::ByName);
        assert_eq!(cheaper_read(usize::MAX, 10), Read::Everything);
    }
}
