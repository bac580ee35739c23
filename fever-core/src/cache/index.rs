//! The cache index: entries keyed by [`Key`] (the cached function's code hash and its
//! arguments' structural hash), each valid while every function it reached still runs the code
//! it ran then; least recently used entries are evicted to stay within a byte budget.
//!
//! Functions are named by [`CodeSlot`]s: one per (file, qualified name), whose *current* code
//! hash the engine reports with [`CacheIndex::code_seen`] whenever a function with that name
//! is created or has its code replaced. A change drops every entry that reached the old code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// The slot name under which an entry depends on class `qualname` (whose instances its result
/// holds): its hash is the class's shape (fields, decorators, bases), so reshaping the class
/// drops the entry.
pub fn class_slot_name(qualname: &str) -> String {
    format!("class {qualname}")
}

/// The class a slot name made by [`class_slot_name`] stands for.
pub fn slot_class(name: &str) -> Option<&str> {
    name.strip_prefix("class ")
}

/// What a cached call is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Content hash of the called function's code (it ignores line numbers, so a function that
    /// only moved keeps its entries).
    pub code: u64,
    /// Structural hash of the arguments, defaults applied.
    pub args: u64,
}

/// A (file, qualified name) the index follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeSlot(u32);

/// One function a cached call reached, and the code hash it had.
pub type Reached = (CodeSlot, u64);

/// A cached call.
#[derive(Debug)]
pub struct Entry<V> {
    /// The stored result.
    pub value: V,
    /// The function's qualified name, for messages.
    pub name: String,
    /// Every project function the call reached, itself included.
    pub reached: Vec<Reached>,
    /// Estimated memory the result takes.
    pub bytes: u64,
    /// How long the real call took.
    pub cost: Duration,
    /// The real call printed to stdout or stderr.
    pub printed: bool,
    /// The real call opened files for writing.
    pub wrote_files: bool,
    last_used: u64,
}

impl<V> Entry<V> {
    /// A new entry (not yet used).
    pub fn new(value: V, name: String, reached: Vec<Reached>, bytes: u64, cost: Duration) -> Self {
        Self {
            value,
            name,
            reached,
            bytes,
            cost,
            printed: false,
            wrote_files: false,
            last_used: 0,
        }
    }
}

/// An entry dropped to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub name: String,
    pub bytes: u64,
}

/// The cache's entries and the code they depend on.
#[derive(Debug)]
pub struct CacheIndex<V> {
    entries: HashMap<Key, Entry<V>>,
    /// `last_used` tick → key, oldest first.
    lru: BTreeMap<u64, Key>,
    tick: u64,
    bytes: u64,
    budget: u64,
    slots: HashMap<(String, String), CodeSlot>,
    slot_files: Vec<String>,
    /// Current code hash per slot, once known.
    current: Vec<Option<u64>>,
    /// Entries that reached each slot.
    dependents: HashMap<CodeSlot, HashSet<Key>>,
}

impl<V> CacheIndex<V> {
    /// An empty index that keeps at most `budget` estimated bytes of results.
    pub fn new(budget: u64) -> Self {
        Self {
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            budget,
            slots: HashMap::new(),
            slot_files: Vec::new(),
            current: Vec::new(),
            dependents: HashMap::new(),
        }
    }

    /// The slot of `qualname` in `file`, created on first use.
    pub fn slot(&mut self, file: &str, qualname: &str) -> CodeSlot {
        if let Some(&slot) = self.slots.get(&(file.to_owned(), qualname.to_owned())) {
            return slot;
        }
        let slot = CodeSlot(u32::try_from(self.current.len()).unwrap_or(u32::MAX));
        self.slots
            .insert((file.to_owned(), qualname.to_owned()), slot);
        self.slot_files.push(file.to_owned());
        self.current.push(None);
        slot
    }

    /// The slot of `qualname` in `file` if some entry ever depended on it.
    pub fn existing_slot(&self, file: &str, qualname: &str) -> Option<CodeSlot> {
        self.slots
            .get(&(file.to_owned(), qualname.to_owned()))
            .copied()
    }

    /// A function named by `slot` now runs code with `hash`; drops the entries that reached
    /// other code under that name and returns how many.
    pub fn code_seen(&mut self, slot: CodeSlot, hash: u64) -> usize {
        let Some(current) = self.current.get_mut(slot.0 as usize) else {
            return 0;
        };
        let previous = current.replace(hash);
        if previous.is_none_or(|p| p == hash) {
            return 0;
        }
        let stale: Vec<Key> = self
            .dependents
            .get(&slot)
            .into_iter()
            .flatten()
            .copied()
            .filter(|key| {
                self.entries
                    .get(key)
                    .is_some_and(|e| e.reached.iter().any(|&(s, h)| s == slot && h != hash))
            })
            .collect();
        for key in &stale {
            self.remove(key);
        }
        stale.len()
    }

    /// Drops every entry that reached code of `file` (something in it changed that may change
    /// what its functions compute); returns how many.
    pub fn invalidate_file(&mut self, file: &str) -> usize {
        let slots: HashSet<CodeSlot> = self
            .slot_files
            .iter()
            .enumerate()
            .filter(|(_, f)| *f == file)
            .map(|(i, _)| CodeSlot(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        self.invalidate_reaching(&slots)
    }

    /// Drops every entry that reached any of `slots`; returns how many.
    pub fn invalidate_reaching(&mut self, slots: &HashSet<CodeSlot>) -> usize {
        let stale: HashSet<Key> = slots
            .iter()
            .filter_map(|slot| self.dependents.get(slot))
            .flatten()
            .copied()
            .collect();
        for key in &stale {
            self.remove(key);
        }
        stale.len()
    }

    /// The entry for `key` if it is still valid; marks it as used.
    pub fn get(&mut self, key: &Key) -> Option<&mut Entry<V>> {
        let entry = self.entries.get_mut(key)?;
        self.lru.remove(&entry.last_used);
        self.tick += 1;
        entry.last_used = self.tick;
        self.lru.insert(self.tick, *key);
        Some(entry)
    }

    /// Stores `entry` under `key` (replacing an older one), evicting least recently used
    /// entries until the results fit the budget. An entry larger than the whole budget is not
    /// stored: `Err` gives it back. Entries whose reached code is no longer current are not
    /// stored either (a function was edited while the call ran).
    pub fn insert(&mut self, key: Key, mut entry: Entry<V>) -> Result<Vec<Evicted>, Entry<V>> {
        if entry.bytes > self.budget {
            return Err(entry);
        }
        for &(slot, hash) in &entry.reached {
            let current = &mut self.current[slot.0 as usize];
            match current {
                Some(now) if *now != hash => return Err(entry),
                Some(_) => {}
                None => *current = Some(hash),
            }
        }
        self.remove(&key);
        let mut evicted = Vec::new();
        while self.bytes + entry.bytes > self.budget {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            if let Some(old) = self.remove(&oldest) {
                evicted.push(Evicted {
                    name: old.name,
                    bytes: old.bytes,
                });
            }
        }
        self.tick += 1;
        entry.last_used = self.tick;
        self.lru.insert(self.tick, key);
        self.bytes += entry.bytes;
        for &(slot, _) in &entry.reached {
            self.dependents.entry(slot).or_default().insert(key);
        }
        self.entries.insert(key, entry);
        Ok(evicted)
    }

    /// Drops the entry for `key`.
    pub fn remove(&mut self, key: &Key) -> Option<Entry<V>> {
        let entry = self.entries.remove(key)?;
        self.lru.remove(&entry.last_used);
        self.bytes -= entry.bytes;
        for (slot, _) in &entry.reached {
            if let Some(keys) = self.dependents.get_mut(slot) {
                keys.remove(key);
            }
        }
        Some(entry)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes of all stored results.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Every entry with its key (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry<V>)> {
        self.entries.iter()
    }

    /// Every entry with its key, to change what it stores (in no particular order).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Key, &mut Entry<V>)> {
        self.entries.iter_mut()
    }

    /// The file and qualified name of `slot`.
    pub fn slot_name(&self, slot: CodeSlot) -> Option<(&str, &str)> {
        self.slots
            .iter()
            .find(|(_, &s)| s == slot)
            .map(|((file, name), _)| (file.as_str(), name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_slots_name_classes() {
        assert_eq!(slot_class(&class_slot_name("Outer.Rec")), Some("Outer.Rec"));
        assert_eq!(slot_class("load"), None);
    }

    fn entry(
        index: &mut CacheIndex<u32>,
        value: u32,
        reached: &[(&str, u64)],
        bytes: u64,
    ) -> Entry<u32> {
        let reached = reached
            .iter()
            .map(|&(name, hash)| (index.slot("app.py", name), hash))
            .collect();
        Entry::new(value, "load".into(), reached, bytes, Duration::from_secs(1))
    }

    fn key(code: u64, args: u64) -> Key {
        Key { code, args }
    }

    #[test]
    fn hit_until_a_reached_function_changes() {
        let mut index = CacheIndex::new(1000);
        let e = entry(&mut index, 7, &[("load", 1), ("parse", 2)], 10);
        index.insert(key(1, 9), e).unwrap();
        assert_eq!(index.get(&key(1, 9)).map(|e| e.value), Some(7));
        assert!(index.get(&key(1, 8)).is_none(), "other arguments miss");
        let parse = index.slot("app.py", "parse");
        // Seeing the same code again (a re-run re-created the function) changes nothing.
        assert_eq!(index.code_seen(parse, 2), 0);
        assert!(index.get(&key(1, 9)).is_some());
        // An edit of the helper drops the entry.
        assert_eq!(index.code_seen(parse, 3), 1);
        assert!(index.get(&key(1, 9)).is_none());
        assert_eq!(index.bytes(), 0);
        // Going back to the old code does not resurrect it.
        assert_eq!(index.code_seen(parse, 2), 0);
        assert!(index.is_empty());
    }

    #[test]
    fn unrelated_changes_keep_entries() {
        let mut index = CacheIndex::new(1000);
        let e = entry(&mut index, 1, &[("load", 1)], 10);
        index.insert(key(1, 1), e).unwrap();
        let other = index.slot("app.py", "summarize");
        index.code_seen(other, 5);
        assert_eq!(index.code_seen(other, 6), 0);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn stale_results_are_not_stored() {
        let mut index = CacheIndex::new(1000);
        let parse = index.slot("app.py", "parse");
        index.code_seen(parse, 3);
        // The call ran parse's old code (hash 2): an edit landed while it ran.
        let e = entry(&mut index, 1, &[("load", 1), ("parse", 2)], 10);
        assert!(index.insert(key(1, 1), e).is_err());
        assert!(index.is_empty());
    }

    #[test]
    fn lru_eviction_within_budget() {
        let mut index = CacheIndex::new(100);
        for i in 0..3 {
            let e = entry(&mut index, i, &[("load", 1)], 40);
            index.insert(key(1, u64::from(i)), e).unwrap();
        }
        // 3 × 40 > 100: the first went.
        assert_eq!(index.len(), 2);
        assert!(index.get(&key(1, 0)).is_none());
        // Using entry 1 makes entry 2 the oldest.
        assert!(index.get(&key(1, 1)).is_some());
        let e = entry(&mut index, 3, &[("load", 1)], 40);
        let evicted = index.insert(key(1, 3), e).unwrap();
        assert_eq!(
            evicted,
            vec![Evicted {
                name: "load".into(),
                bytes: 40
            }]
        );
        assert!(index.get(&key(1, 2)).is_none());
        assert!(index.get(&key(1, 1)).is_some());
        assert_eq!(index.bytes(), 80);
        let too_big = entry(&mut index, 4, &[("load", 1)], 101);
        assert!(index.insert(key(1, 4), too_big).is_err());
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn replacing_an_entry_keeps_the_byte_count() {
        let mut index = CacheIndex::new(100);
        for value in 0..5 {
            let e = entry(&mut index, value, &[("load", 1)], 30);
            index.insert(key(1, 1), e).unwrap();
        }
        assert_eq!((index.len(), index.bytes()), (1, 30));
        assert_eq!(index.get(&key(1, 1)).map(|e| e.value), Some(4));
    }

    #[test]
    fn file_invalidation() {
        let mut index = CacheIndex::new(1000);
        let a = entry(&mut index, 1, &[("load", 1)], 1);
        index.insert(key(1, 1), a).unwrap();
        let slot = index.slot("lib.py", "helper");
        let b = Entry::new(2, "other".into(), vec![(slot, 4)], 1, Duration::ZERO);
        index.insert(key(2, 1), b).unwrap();
        assert_eq!(index.invalidate_file("lib.py"), 1);
        assert_eq!(index.invalidate_file("lib.py"), 0);
        assert!(index.get(&key(1, 1)).is_some());
        assert!(index.get(&key(2, 1)).is_none());
        assert_eq!(index.slot_name(slot), Some(("lib.py", "helper")));
        let load = index.slot("app.py", "load");
        let other = index.slot("app.py", "other");
        assert_eq!(index.invalidate_reaching(&HashSet::from([other])), 0);
        assert_eq!(index.invalidate_reaching(&HashSet::from([load])), 1);
        assert!(index.is_empty());
    }
}
