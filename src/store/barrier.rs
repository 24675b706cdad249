//! What tells a page, before it sends or exports (or settles a row it found in no key before
//! a deletion or a retry), that it has heard of every earlier write.
//!
//! A page keeps its copy of the stores current through `storage.onChanged` events, and one may
//! still be on its way when the page takes the send lock: another page's run answered a moment
//! ago. Reading the whole store of record instead costs hundreds of milliseconds with tens of
//! thousands of accepted transactions stored, and seconds with tens of thousands unsent. The
//! page writes a fresh token under [`BARRIER_KEY`] and waits for that write's own event. In
//! Firefox (`ext-storage.js`, `ExtensionStorageIDB`), every extension page writes
//! `storage.local` through one IndexedDB store in the one extension process, so writes happen
//! one after another; each write's changes go to the parent process in one message, after the
//! write, over the process's one channel; and the parent hands each message, in arrival order,
//! to every page listening, the writer included. (A page's very first `storage.local` call
//! goes through the parent process instead; every page reads the stores at its start, before
//! it writes anything.) So once a page has its barrier's event, it has had the event of every
//! write made before the barrier.
//!
//! If the barrier cannot be written or its event does not come in time, the page reads
//! everything as before.

use super::change::Change;
use super::keys::BARRIER_KEY;
use super::replica::EntryChange;
use serde_json::Value;

/// One barrier write and the event that answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barrier {
    token: String,
}

impl Barrier {
    /// A barrier with a token no other page's barrier has (a random number).
    pub fn new(token: u64) -> Barrier {
        Barrier {
            token: format!("{token:016x}"),
        }
    }

    /// The write to make in the store of record.
    pub fn write(&self) -> Change {
        Change::Put {
            key: BARRIER_KEY.to_owned(),
            value: Value::String(self.token.clone()),
        }
    }

    /// Whether this `storage.onChanged` batch is this barrier's own event.
    pub fn answered_by(&self, batch: &[EntryChange]) -> bool {
        batch.iter().any(|change| {
            change.key == BARRIER_KEY
                && change.new_value.as_ref().and_then(Value::as_str) == Some(self.token.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, value: Option<&str>) -> Vec<EntryChange> {
        vec![EntryChange {
            key: key.to_owned(),
            new_value: value.map(|v| Value::String(v.to_owned())),
            old_value: None,
        }]
    }

    #[test]
    fn only_its_own_token_answers_a_barrier() {
        let barrier = Barrier::new(0xbeef);
        let Change::Put { key, value } = barrier.write() else {
            panic!("a barrier is a put");
        };
        assert_eq!(key, BARRIER_KEY);
        let token = value.as_str().expect("a string").to_owned();
        assert!(barrier.answered_by(&event(BARRIER_KEY, Some(&token))));
        // Another page's barrier, a removal, or the token under another key answer nothing.
        assert!(!barrier.answered_by(&event(BARRIER_KEY, Some("000000000000beee"))));
        assert!(!barrier.answered_by(&event(BARRIER_KEY, None)));
        assert!(!barrier.answered_by(&event("tx:1", Some(&token))));
        assert_ne!(Barrier::new(1), Barrier::new(2));
    }
}
