//! Entries in memory: a byte cap, the least recently used out first, and each entry's expiry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::entry::Entry;
use super::key::Key;

pub struct Memory {
    inner: Mutex<Lru>,
    max_bytes: usize,
}

#[derive(Default)]
struct Lru {
    slots: HashMap<Key, Slot>,
    /// Last use → key: the first is the least recently used.
    order: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

struct Slot {
    entry: Arc<Entry>,
    /// When it stops serving here (Unix ms); may be sooner than the entry's own expiry.
    until_ms: u64,
    used: u64,
    weight: usize,
}

impl Memory {
    pub fn new(max_bytes: usize) -> Memory {
        Memory {
            inner: Mutex::new(Lru::default()),
            max_bytes,
        }
    }

    pub fn get(&self, key: &Key, now_ms: u64) -> Option<Arc<Entry>> {
        let mut lru = self.inner.lock().expect("cache lock");
        let lru = &mut *lru;
        let slot = lru.slots.get_mut(key)?;
        if slot.until_ms <= now_ms {
            let used = slot.used;
            lru.order.remove(&used);
            if let Some(gone) = lru.slots.remove(key) {
                lru.bytes -= gone.weight;
            }
            return None;
        }
        lru.tick += 1;
        lru.order.remove(&slot.used);
        slot.used = lru.tick;
        lru.order.insert(lru.tick, *key);
        Some(slot.entry.clone())
    }

    pub fn put(&self, key: Key, entry: Arc<Entry>, until_ms: u64) {
        let weight = entry.weight();
        if weight > self.max_bytes {
            return;
        }
        let mut lru = self.inner.lock().expect("cache lock");
        let lru = &mut *lru;
        lru.tick += 1;
        let slot = Slot {
            entry,
            until_ms,
            used: lru.tick,
            weight,
        };
        if let Some(old) = lru.slots.insert(key, slot) {
            lru.order.remove(&old.used);
            lru.bytes -= old.weight;
        }
        lru.order.insert(lru.tick, key);
        lru.bytes += weight;
        while lru.bytes > self.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(gone) = lru.slots.remove(&oldest) {
                lru.bytes -= gone.weight;
            }
        }
    }

    pub fn remove(&self, key: &Key) {
        let mut lru = self.inner.lock().expect("cache lock");
        if let Some(gone) = lru.slots.remove(key) {
            lru.order.remove(&gone.used);
            lru.bytes -= gone.weight;
        }
    }

    /// (entries, bytes)
    pub fn size(&self) -> (usize, usize) {
        let lru = self.inner.lock().expect("cache lock");
        (lru.slots.len(), lru.bytes)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::entry::{Form, Made, Meta};
    use super::*;

    fn entry(body: usize) -> Arc<Entry> {
        Arc::new(Entry {
            meta: Meta {
                form: Form::Whole,
                created_ms: 0,
                expires_ms: 0,
                made: Made::default(),
            },
            body: Bytes::from(vec![b'x'; body]),
        })
    }

    #[test]
    fn the_least_recently_used_go_first_and_expired_entries_never_serve() {
        let one = entry(1000).weight();
        let memory = Memory::new(one * 2);
        memory.put([1; 32], entry(1000), 100);
        memory.put([2; 32], entry(1000), 100);
        assert!(
            memory.get(&[1; 32], 10).is_some(),
            "1 is now the most recently used"
        );
        memory.put([3; 32], entry(1000), 100);
        assert!(
            memory.get(&[2; 32], 10).is_none(),
            "2 was the least recently used"
        );
        assert!(memory.get(&[1; 32], 10).is_some());
        assert!(memory.get(&[3; 32], 10).is_some());
        assert_eq!(memory.size(), (2, one * 2));
        assert!(memory.get(&[1; 32], 100).is_none(), "expired");
        assert_eq!(memory.size(), (1, one));
        memory.put([9; 32], entry(one * 3), 100);
        assert!(
            memory.get(&[9; 32], 10).is_none(),
            "larger than the whole cache"
        );
    }
}
