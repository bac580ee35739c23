//! The history of applied reloads, for undo: each entry is one file's running text before and
//! after a save was applied. Pure bookkeeping, bounded in entries and bytes (the oldest entries go
//! first); the engine (`fever-monitor`'s `reload/history.rs`) records into it and applies what
//! [`ReloadHistory::take_last`] hands back. Texts are shared with the engine, never copied: a
//! reload of a big file records it at no cost.

use std::collections::VecDeque;
use std::sync::Arc;

/// One applied reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file as the program's code names it (`co_filename`).
    pub file: String,
    /// Its running text before the reload.
    pub before: Arc<String>,
    /// Its running text after it.
    pub after: Arc<String>,
}

impl Entry {
    fn size(&self) -> usize {
        self.file.len() + self.before.len() + self.after.len()
    }
}

/// Why there is nothing to undo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    #[error("there is no reload to undo")]
    Empty,
    /// The file's running text is no longer what the last reload left (the entry is dropped).
    #[error("{file} changed since its last reload without fever recording it; nothing was undone")]
    Changed { file: String },
}

/// Applied reloads, oldest first.
#[derive(Debug)]
pub struct ReloadHistory {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl ReloadHistory {
    /// An empty history keeping at most `max_entries` entries and about `max_bytes` of text
    /// (the last entry is always kept, whatever its size).
    pub const fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// Records that `file`'s running text went from `before` to `after` (an identical text is
    /// no change and is not recorded).
    pub fn record(&mut self, file: &str, before: &Arc<String>, after: &Arc<String>) {
        if Arc::ptr_eq(before, after) || before == after {
            return;
        }
        self.push(Entry {
            file: file.to_owned(),
            before: Arc::clone(before),
            after: Arc::clone(after),
        });
    }

    /// Puts back an entry [`Self::take_last`] handed out (when applying it failed).
    pub fn push(&mut self, entry: Entry) {
        self.bytes += entry.size();
        self.entries.push_back(entry);
        while self.entries.len() > 1
            && (self.entries.len() > self.max_entries || self.bytes > self.max_bytes)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.size();
            }
        }
    }

    /// The last reload, taken out of the history to be undone, when its file still runs the
    /// text it left: `running(file)` is that file's running text now.
    pub fn take_last(
        &mut self,
        running: impl FnOnce(&str) -> Option<Arc<String>>,
    ) -> Result<Entry, UndoError> {
        let entry = self.entries.pop_back().ok_or(UndoError::Empty)?;
        self.bytes -= entry.size();
        if running(&entry.file).is_none_or(|text| text != entry.after) {
            return Err(UndoError::Changed { file: entry.file });
        }
        Ok(entry)
    }

    /// The number of reloads that can be undone.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn text(s: &str) -> Arc<String> {
        Arc::new(s.to_owned())
    }

    #[test]
    fn undo_walks_back_the_reloads_last_first_across_files() {
        let mut history = ReloadHistory::new(10, 1 << 20);
        let mut running: HashMap<String, Arc<String>> = HashMap::from([
            ("a.py".to_owned(), text("a1")),
            ("b.py".to_owned(), text("b1")),
        ]);
        for (file, after) in [("a.py", "a2"), ("b.py", "b2"), ("a.py", "a3")] {
            let after = text(after);
            history.record(file, &running[file], &after);
            running.insert(file.to_owned(), after);
        }
        assert_eq!(history.len(), 3);
        for (file, back_to) in [("a.py", "a2"), ("b.py", "b1"), ("a.py", "a1")] {
            let entry = history.take_last(|f| running.get(f).cloned()).unwrap();
            assert_eq!(
                (entry.file.as_str(), entry.before.as_str()),
                (file, back_to)
            );
            running.insert(entry.file, entry.before);
        }
        assert_eq!(history.take_last(|_| None).unwrap_err(), UndoError::Empty);
    }

    #[test]
    fn an_identical_text_is_not_a_reload() {
        let mut history = ReloadHistory::new(10, 1 << 20);
        history.record("a.py", &text("x"), &text("x"));
        assert!(history.is_empty());
    }

    #[test]
    fn a_file_changed_behind_the_history_is_not_undone_and_its_entry_goes() {
        let mut history = ReloadHistory::new(10, 1 << 20);
        history.record("a.py", &text("v1"), &text("v2"));
        history.record("a.py", &text("v2"), &text("v3"));
        let err = history
            .take_last(|_| Some(text("something else")))
            .unwrap_err();
        assert_eq!(
            err,
            UndoError::Changed {
                file: "a.py".into()
            }
        );
        assert_eq!(history.len(), 1);
        let entry = history.take_last(|_| Some(text("v2"))).unwrap();
        assert_eq!(*entry.before, "v1");
    }

    #[test]
    fn the_oldest_entries_go_first_over_the_bounds_but_the_last_stays() {
        let mut history = ReloadHistory::new(2, 1 << 20);
        history.record("a.py", &text("1"), &text("2"));
        history.record("a.py", &text("2"), &text("3"));
        history.record("a.py", &text("3"), &text("4"));
        assert_eq!(history.len(), 2);
        let last = history.take_last(|_| Some(text("4"))).unwrap();
        history.push(last);
        assert_eq!(history.len(), 2);

        let mut small = ReloadHistory::new(10, 8);
        small.record("a.py", &text("0123456789"), &text("abcdefghij"));
        assert_eq!(
            small.len(),
            1,
            "the last entry stays even over the byte bound"
        );
        small.record("a.py", &text("abcdefghij"), &text("klmnopqrst"));
        assert_eq!(small.len(), 1);
        assert_eq!(
            small
                .take_last(|_| Some(text("klmnopqrst")))
                .unwrap()
                .before
                .as_str(),
            "abcdefghij"
        );
    }
}
