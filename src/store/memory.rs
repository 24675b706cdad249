//! The storage port, and an in-memory adapter for tests.

use super::change::Change;
use super::error::StoreError;
use super::layout::entry_bytes;
use super::migrate::apply_to_map;
use serde_json::Value;
use std::collections::BTreeMap;

/// A key-value store as the core sees it: `browser.storage.local` or the `localStorage` mirror.
/// The shell's adapters are asynchronous and call the pure functions of this module; this trait lets
/// native tests and tools drive the same sequences synchronously.
pub trait Store {
    /// Every entry.
    fn entries(&self) -> Vec<(String, Value)>;
    /// One entry.
    fn get(&self, key: &str) -> Option<Value>;
    /// Applies the changes in order, all or nothing (like one `storage.local.set` call).
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError>;
}

/// An in-memory [`Store`] that can simulate a full disk or a broken database, and records the
/// bytes each write carried.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: BTreeMap<String, Value>,
    quota_bytes: Option<usize>,
    failing: Option<String>,
    written: Vec<usize>,
}

impl MemoryStore {
    /// An empty store without a quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits the total size ([`entry_bytes`] summed over all entries); a write that would go
    /// beyond it fails with `quota exceeded` and changes nothing. `None` lifts the limit.
    pub fn set_quota(&mut self, bytes: Option<usize>) {
        self.quota_bytes = bytes;
    }

    /// Makes every write fail with this reason (`None`: writes work again).
    pub fn set_failing(&mut self, reason: Option<&str>) {
        self.failing = reason.map(str::to_owned);
    }

    /// Deletes everything (the user cleared site data).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Total size of the entries, as [`entry_bytes`] counts it.
    pub fn total_bytes(&self) -> usize {
        self.entries.iter().map(|(k, v)| entry_bytes(k, v)).sum()
    }

    /// Bytes carried by each successful [`Store::apply`] call, in order (puts count key and
    /// value, removals the key).
    pub fn written(&self) -> &[usize] {
        &self.written
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Store for MemoryStore {
    fn entries(&self) -> Vec<(String, Value)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn get(&self, key: &str) -> Option<Value> {
        self.entries.get(key).cloned()
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if let Some(reason) = &self.failing {
            return Err(StoreError::WriteFailed {
                reason: reason.clone(),
            });
        }
        if let Some(quota) = self.quota_bytes {
            // The final state of each touched key, to size the result without copying the store.
            let mut touched: BTreeMap<&str, Option<&Value>> = BTreeMap::new();
            for change in changes {
                match change {
                    Change::Put { key, value } => touched.insert(key, Some(value)),
                    Change::Remove { key } => touched.insert(key, None),
                };
            }
            let mut size = self.total_bytes();
            for (key, new) in touched {
                if let Some(old) = self.entries.get(key) {
                    size -= entry_bytes(key, old);
                }
                if let Some(new) = new {
                    size += entry_bytes(key, new);
                }
            }
            if size > quota {
                return Err(StoreError::WriteFailed {
                    reason: "quota exceeded".to_owned(),
                });
            }
        }
        apply_to_map(&mut self.entries, changes);
        self.written.push(
            changes
                .iter()
                .map(|c| match c {
                    Change::Put { key, value } => entry_bytes(key, value),
                    Change::Remove { key } => key.len(),
                })
                .sum(),
        );
        Ok(())
    }
}
