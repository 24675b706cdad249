//! The keys of every stored entry, and the versions of the formats written under them. A leaf:
//! every other storage module reads its keys from here.

use crate::transaction::TransactionId;

/// The storage schema this build writes and reads. Stored under [`META_KEY`].
pub const CURRENT_SCHEMA: u32 = 2;
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
/// Prefix of an export record's key.
pub const EXPORT_PREFIX: &str = "exported:";

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

/// Whether `key` holds an export record.
pub fn is_export_key(key: &str) -> bool {
    key.strip_prefix(EXPORT_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether `key` holds an entry of the offline checks' snapshot.
pub fn is_checks_key(key: &str) -> bool {
    key.starts_with(CHECKS_PREFIX)
}

/// How the desk's start reads `browser.storage.local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRead {
    /// Everything at once: no snapshot is stored (one read of everything is much faster than
    /// asking for thousands of keys by name).
    Everything,
    /// First the list of keys, then these, leaving out the offline checks' snapshot (megabytes
    /// with a large library; read on its own once the desk is ready).
    Listed,
}

/// How the start reads, from whether the snapshot's meta entry ([`CHECKS_META_KEY`]) is stored.
/// Listing the keys costs as much as reading everything when no snapshot is stored, so it is
/// done only when there is one to leave out. Snapshot chunks without a meta entry (a download or
/// a deletion cut short) are read with everything and skipped ([`is_checks_key`]): slower, never
/// wrong.
pub fn start_read(snapshot_meta_stored: bool) -> StartRead {
    if snapshot_meta_stored {
        StartRead::Listed
    } else {
        StartRead::Everything
    }
}

/// The keys the start reads from the listed `keys`: all but the snapshot's.
pub fn start_keys(keys: &[String]) -> impl Iterator<Item = &str> {
    keys.iter()
        .map(String::as_str)
        .filter(|key| !is_checks_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_lists_keys_only_when_a_snapshot_is_stored() {
        assert_eq!(start_read(false), StartRead::Everything);
        assert_eq!(start_read(true), StartRead::Listed);
    }

    #[test]
    fn the_start_reads_every_key_but_the_snapshots() {
        let keys: Vec<String> = [
            META_KEY,
            SETTINGS_KEY,
            "tx:a",
            "archive:1",
            "exported:2",
            CHECKS_META_KEY,
            "checks:p:0",
            CHECKS_LIMIT_KEY,
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            start_keys(&keys).collect::<Vec<_>>(),
            [
                META_KEY,
                SETTINGS_KEY,
                "tx:a",
                "archive:1",
                "exported:2",
                CHECKS_LIMIT_KEY
            ]
        );
    }
}
