//! The record streams a [`TraceReader`](super::TraceReader) hands out: every chunk's stream as
//! validation decompressed it, one after the other, so each chunk is decompressed once and
//! events, snapshots and record bodies are borrowed straight from it. Up to [`IN_MEMORY`] bytes
//! they stay in memory; beyond that they go to an unlinked temporary file, mapped read-only once
//! the trace is validated, whose pages [`Store::release`] hands back to the kernel (they are read
//! again from the file when touched), so the memory a reader holds stays bounded however much a
//! trace recorded.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, UncheckedAdvice};

/// Bytes kept in memory before the store moves to a temporary file.
#[cfg(not(test))]
const IN_MEMORY: usize = 64 << 20;
/// Small in unit tests, so every trace of more than a few records there takes the file path.
#[cfg(test)]
const IN_MEMORY: usize = 1 << 12;

/// A byte range in the store.
pub(crate) type Range = (usize, usize);

/// See the [module docs](self).
#[derive(Default)]
pub(crate) struct Store {
    /// The bytes not in the file (all of them for a small trace).
    memory: Vec<u8>,
    /// While validating: the temporary file and how many bytes it holds.
    file: Option<(BufWriter<File>, usize)>,
    /// After validating: the file, mapped.
    map: Option<Mmap>,
    /// Writing the file failed (a full disk): the store is unusable.
    failed: Option<std::io::Error>,
}

impl Store {
    /// Appends `bytes`; returns their range.
    pub fn add(&mut self, bytes: &[u8]) -> Range {
        let start = self.len();
        if self.file.is_none() && self.memory.len() + bytes.len() > IN_MEMORY {
            // Everything moves to the file, which then holds the store from its first byte.
            if let Some(file) = spill_file() {
                let mut file = BufWriter::with_capacity(1 << 20, file);
                if let Err(err) = file.write_all(&self.memory) {
                    self.failed.get_or_insert(err);
                }
                self.file = Some((file, start));
                self.memory = Vec::new();
            }
        }
        match &mut self.file {
            Some((file, len)) => match file.write_all(bytes) {
                Ok(()) => *len += bytes.len(),
                Err(err) => {
                    self.failed.get_or_insert(err);
                }
            },
            None => self.memory.extend_from_slice(bytes),
        }
        (start, self.len())
    }

    /// Bytes stored so far: where the next [`Store::add`] starts.
    pub fn len(&self) -> usize {
        self.file
            .as_ref()
            .map_or(self.memory.len(), |(_, len)| *len)
    }

    /// Ends validation: maps the temporary file, if there is one.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let Some((file, _)) = self.file.take() else {
            return Ok(());
        };
        let file = file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        // SAFETY: the file is this process's own, unlinked, and never written or truncated
        // again; the mapping is read-only.
        self.map = Some(unsafe { Mmap::map(&file)? });
        Ok(())
    }

    /// The bytes of `range`.
    pub fn get(&self, (start, end): Range) -> &[u8] {
        let bytes = self.map.as_deref().unwrap_or(&self.memory);
        bytes.get(start..end).unwrap_or_default()
    }

    /// Gives the pages of the mapped file back to the kernel; what is borrowed stays valid
    /// (touching it reads the file again).
    pub fn release(&self) {
        if let Some(map) = &self.map {
            // SAFETY: a shared, read-only mapping of a file: dropped pages are read back from
            // the file on the next access, with the same contents.
            let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
    }
}

/// A new temporary file that no other process can open (removed from its directory at once).
fn spill_file() -> Option<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".fever-trace-{}-{n}", std::process::id()));
        if let Ok(file) = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            let _ = std::fs::remove_file(&path);
            return Some(file);
        }
    }
    None
}
