//! How transactions and settings are laid out in extension storage, versioned and reconciled.
//!
//! Everything here is pure: the shell reads the entries of `browser.storage.local` (the store of
//! record) and of the `localStorage` mirror, hands them to [`open`], and applies the [`Change`]s it
//! gets back, in order. The same goes for each new or changed transaction ([`write_plan`]).
//!
//! # Layout of `browser.storage.local`
//!
//! | key | value |
//! |---|---|
//! | `meta` | `{"schema": 3}` ([`CURRENT_SCHEMA`]) |
//! | `settings` | the [`Settings`](crate::settings::Settings) JSON; the password only when remembered |
//! | `tx:<id>` | one transaction in an envelope: `{"v": 1, "tx": {…}}` |
//! | `archive:<first id>.<hash>` | JSON text `{"v": 1, "txs": [...]}`: [`ARCHIVE_CHUNK`] transactions Koha accepted ([`archive`]) |
//! | `pending:<first id>.<hash>` | JSON text in the archive's format: up to [`PENDING_CHUNK`] transactions Koha had not accepted when it was written ([`pending`]) |
//! | `exported:<ms>.<first id>` | JSON text `{"v": 1, "at": …, "ids": [...]}`: one `.koc` export ([`exports`]) |
//! | `checks:meta`, `checks:<generation>:…` | the offline checks' snapshot of Koha ([`crate::checks`]) |
//! | `quarantine:<key>` | an entry that could not be read, kept aside with the reason |
//! | `barrier` | the token of the last [`Barrier`] a page wrote before a send or an export |
//!
//! One key per transaction means recording one writes a bounded amount of data however many are
//! stored, and two desk pages writing at once never overwrite each other's transactions. Once
//! [`ARCHIVE_CHUNK`] transactions Koha accepted (which never change again) are stored that way,
//! they are packed into one archive chunk, so a desk with 50,000 stored reads about a hundred
//! keys at start instead of 50,000. The others are packed the same way into pending chunks by a
//! start that holds the send lock, once [`PENDING_MIN`] are stored one key each. Keys of other
//! shapes belong to other parts of the add-on and are left alone.
//!
//! # The mirror (`localStorage`)
//!
//! `koha-offline-circ:tx:<id>` holds the same envelope for every transaction Koha has not yet
//! accepted. It is written synchronously before the desk confirms, so a failing
//! `storage.local` write loses nothing; at start the two are reconciled ([`reconcile`]).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use koha_offline_circ::store::{self, Change, MemoryStore, Store};
//! use koha_offline_circ::{Action, Barcode, Branchcode, Transaction, TransactionId};
//!
//! let now = Utc.with_ymd_and_hms(2026, 3, 29, 10, 0, 0).unwrap();
//! let tx = Transaction::record(
//!     TransactionId::new(now, 1),
//!     now,
//!     Branchcode::parse("DE-627").unwrap(),
//!     Action::Return { barcode: Barcode::parse("39001").unwrap() },
//! );
//! let (mut primary, mut mirror) = (MemoryStore::new(), MemoryStore::new());
//! let plan = store::write_plan(&tx);
//! mirror.apply(&[plan.mirror]).unwrap(); // synchronous, before anything else
//! primary.apply(&[plan.primary]).unwrap(); // the desk confirms once this resolved
//!
//! let opened = store::open(primary.entries(), mirror.entries(), Some(now)).unwrap();
//! assert_eq!(opened.transactions, vec![tx]);
//! assert_eq!(opened.primary_changes.len(), 1); // the first start writes `meta`
//! assert!(matches!(&opened.primary_changes[0], Change::Put { key, .. } if key == "meta"));
//! ```

pub mod archive;
mod badge;
mod barrier;
mod change;
mod chunk_text;
mod deferral;
mod error;
pub mod exports;
mod incoming;
pub mod keys;
mod layout;
mod memory;
mod migrate;
mod open;
pub mod pending;
mod reconcile;
mod replica;
mod snapshot;
pub(crate) mod text;

pub use archive::{pack_plan, Packing, ARCHIVE_CHUNK};
pub use badge::NotAcceptedTally;
pub use barrier::Barrier;
pub use change::Change;
pub use deferral::{LazyText, ReadEntries};
pub use error::StoreError;
pub use exports::ExportRecord;
pub use incoming::{decode_change, reads_old_value, StoredChange};
pub use keys::{
    id_of_mirror_key, id_of_transaction_key, is_archive_key, is_export_key, is_mirror_key,
    is_pending_key, is_quarantine_key, is_transaction_key, mirror_key, transaction_key,
    ARCHIVE_PREFIX, BARRIER_KEY, CURRENT_SCHEMA, ENVELOPE_VERSION, EXPORT_PREFIX, META_KEY,
    MIRROR_PREFIX, PENDING_PREFIX, QUARANTINE_PREFIX, SETTINGS_KEY, TX_PREFIX,
};
pub use layout::{
    decode_mirror, decode_mirror_text, decode_settings, decode_transaction, encode_settings,
    encode_transaction, entry_bytes, mirror_change, mirror_entries_joined, remove_plan, write_plan,
    WritePlan, MIRROR_JOIN,
};
pub use memory::{MemoryStore, Store};
pub use migrate::{apply_to_map, migrate};
pub use open::{open, open_packing, Opened};
pub use pending::{pending_put, PENDING_CHUNK, PENDING_MIN};
pub use reconcile::{load_mirror, reconcile, Reconciled};
pub use replica::{EntryChange, PackingPlan, Replica, Writes};
pub use snapshot::{load_snapshot, meta_value, schema_of, Problem, Snapshot};
