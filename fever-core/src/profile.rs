//! `fever attach`'s profile: the shared region the attached process counts into and the client
//! reads, and the table made of it.
//!
//! The region is a file both sides map (`memmap2`): a header ([`HEADER`] bytes: magic, layout
//! version, capacity, nanoseconds per tick), then one slot of three `u64` counters per function
//! entry: calls, total ticks (outermost calls only, so recursion is not counted twice) and self
//! ticks. Only the profiled process writes, with the GIL held; the client reads at any time with
//! relaxed atomic loads (a row may be a call behind its neighbour, never torn).

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut};

/// Bytes before the first slot.
pub const HEADER: usize = 64;
/// Bytes of one function's slot.
const SLOT: usize = 32;
const MAGIC: u64 = u64::from_le_bytes(*b"FEVERPRF");
const LAYOUT: u64 = 1;

/// Counter indices within a slot.
const CALLS: usize = 0;
const TOTAL: usize = 1;
const SELF: usize = 2;

/// The region as the profiled process writes it.
pub struct RegionWriter {
    map: MmapMut,
    capacity: u32,
}

/// The region as the client reads it.
pub struct RegionReader {
    map: Mmap,
    ns_per_tick: f64,
}

/// One function's counters, in ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub calls: u64,
    pub total_ticks: u64,
    pub self_ticks: u64,
}

/// The `index`th 8-byte word of `map` (a whole mapping: page-aligned, so every word is aligned).
#[allow(clippy::cast_ptr_alignment)] // the mapping is page-aligned and `index * 8` keeps alignment
fn word(map: &[u8], index: usize) -> &AtomicU64 {
    assert!(index * 8 + 8 <= map.len());
    debug_assert_eq!(map.as_ptr() as usize % 8, 0);
    // SAFETY: in bounds (checked), aligned (above), and the bytes live as long as the borrow;
    // all access to the counters goes through atomics.
    unsafe { &*map.as_ptr().add(index * 8).cast::<AtomicU64>() }
}

impl RegionWriter {
    /// Creates the region file at `path` (0600, replacing any) for `capacity` functions.
    pub fn create(path: &Path, capacity: u32, ns_per_tick: f64) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len((HEADER + SLOT * capacity as usize) as u64)?;
        // SAFETY: a fresh private file of ours; the client only reads it.
        let mut map = unsafe { MmapMut::map_mut(&file) }?;
        map[..8].copy_from_slice(&MAGIC.to_le_bytes());
        map[8..16].copy_from_slice(&LAYOUT.to_le_bytes());
        map[16..24].copy_from_slice(&u64::from(capacity).to_le_bytes());
        map[24..32].copy_from_slice(&ns_per_tick.to_bits().to_le_bytes());
        Ok(Self { map, capacity })
    }

    /// How many functions fit.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Counters of entries `0..count` (fewer if the region holds fewer).
    pub fn read(&self, count: usize) -> Vec<Counters> {
        read(&self.map, count)
    }

    fn counter(&self, entry: u32, which: usize) -> &AtomicU64 {
        debug_assert!(entry < self.capacity);
        word(&self.map, (HEADER + entry as usize * SLOT) / 8 + which)
    }

    fn add(&self, entry: u32, which: usize, n: u64) {
        // One writer (the GIL holder): a load and a store, no locked instruction.
        let counter = self.counter(entry, which);
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// A call of `entry` started (`entry` below [`capacity`](Self::capacity)).
    #[inline]
    pub fn count_call(&self, entry: u32) {
        self.add(entry, CALLS, 1);
    }

    /// `entry` ran `elapsed` ticks, `own` of them in its own code; `outermost` when no other
    /// call of it is running (only those add to its total).
    #[inline]
    pub fn add_time(&self, entry: u32, elapsed: u64, own: u64, outermost: bool) {
        if outermost {
            self.add(entry, TOTAL, elapsed);
        }
        self.add(entry, SELF, own);
    }
}

/// Counters of entries `0..count` of the region `map` (fewer if it holds fewer).
fn read(map: &[u8], count: usize) -> Vec<Counters> {
    let slots = (map.len() - HEADER) / SLOT;
    (0..count.min(slots))
        .map(|entry| {
            let at = |which: usize| {
                word(map, (HEADER + entry * SLOT) / 8 + which).load(Ordering::Relaxed)
            };
            Counters {
                calls: at(CALLS),
                total_ticks: at(TOTAL),
                self_ticks: at(SELF),
            }
        })
        .collect()
}

impl RegionReader {
    /// Maps the region at `path` read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        // SAFETY: the profiled process only grows nothing and writes whole words.
        let map = unsafe { Mmap::map(&file) }?;
        let field =
            |i: usize| u64::from_le_bytes(map[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        if map.len() < HEADER || field(0) != MAGIC || field(1) != LAYOUT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a fever profile region", path.display()),
            ));
        }
        let capacity = usize::try_from(field(2)).unwrap_or(usize::MAX);
        if map.len() < HEADER + capacity.saturating_mul(SLOT) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is cut short", path.display()),
            ));
        }
        let ns_per_tick = f64::from_bits(field(3));
        Ok(Self { map, ns_per_tick })
    }

    /// Counters of entries `0..count` (fewer if the region holds fewer).
    pub fn read(&self, count: usize) -> Vec<Counters> {
        read(&self.map, count)
    }

    /// Nanoseconds per tick of the counters' clock.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub calls: u64,
    pub total_ns: u64,
    pub self_ns: u64,
}

impl Row {
    /// Mean time per call, in nanoseconds.
    pub fn per_call_ns(&self) -> u64 {
        self.total_ns.checked_div(self.calls).unwrap_or(0)
    }
}

/// What the table is sorted by (largest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Total,
    SelfTime,
    Calls,
}

impl SortKey {
    /// The next key (for a key that cycles through them).
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Total => Self::SelfTime,
            Self::SelfTime => Self::Calls,
            Self::Calls => Self::Total,
        }
    }
}

/// The rows of the functions that were called, sorted by `key` (ties by name), `top` at most.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
pub fn rows(
    names: &[String],
    counters: &[Counters],
    ns_per_tick: f64,
    key: SortKey,
    top: usize,
) -> Vec<Row> {
    let ns = |ticks: u64| (ticks as f64 * ns_per_tick) as u64;
    let mut rows: Vec<Row> = names
        .iter()
        .zip(counters)
        .filter(|(_, c)| c.calls > 0)
        .map(|(name, c)| Row {
            name: name.clone(),
            calls: c.calls,
            total_ns: ns(c.total_ticks),
            self_ns: ns(c.self_ticks),
        })
        .collect();
    let value = |row: &Row| match key {
        SortKey::Total => row.total_ns,
        SortKey::SelfTime => row.self_ns,
        SortKey::Calls => row.calls,
    };
    rows.sort_by(|a, b| value(b).cmp(&value(a)).then_with(|| a.name.cmp(&b.name)));
    rows.truncate(top);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_written_are_read_by_another_mapping() {
        let path = std::env::temp_dir().join(format!("fever-region-{}", std::process::id()));
        let writer = RegionWriter::create(&path, 4, 0.5).unwrap();
        let reader = RegionReader::open(&path).unwrap();
        writer.count_call(1);
        writer.count_call(1);
        writer.add_time(1, 100, 60, true);
        writer.add_time(1, 10, 10, false);
        writer.count_call(3);
        let read = reader.read(10);
        assert_eq!(read.len(), 4);
        assert_eq!(
            read[1],
            Counters {
                calls: 2,
                total_ticks: 100,
                self_ticks: 70
            }
        );
        assert_eq!(read[3].calls, 1);
        assert_eq!(read[0], Counters::default());
        assert!((reader.ns_per_tick() - 0.5).abs() < f64::EPSILON);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_foreign_file_is_not_a_region() {
        let path = std::env::temp_dir().join(format!("fever-region-bad-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 200]).unwrap();
        assert!(RegionReader::open(&path).is_err());
        std::fs::write(&path, b"").unwrap();
        assert!(RegionReader::open(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn rows_skip_uncalled_functions_sort_and_cut() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let c = |calls, total_ticks, self_ticks| Counters {
            calls,
            total_ticks,
            self_ticks,
        };
        let counters = [c(1, 100, 10), c(50, 40, 40), c(0, 0, 0), c(5, 100, 90)];
        let by_total = rows(&names, &counters, 2.0, SortKey::Total, 10);
        let order: Vec<&str> = by_total.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(order, ["a", "d", "b"]);
        assert_eq!(by_total[0].total_ns, 200);
        assert_eq!(by_total[1].per_call_ns(), 40);
        let by_self = rows(&names, &counters, 2.0, SortKey::SelfTime, 2);
        assert_eq!(by_self.len(), 2);
        assert_eq!(by_self[0].name, "d");
        let by_calls = rows(&names, &counters, 2.0, SortKey::Calls, 1);
        assert_eq!(by_calls[0].name, "b");
        assert_eq!(SortKey::Calls.next(), SortKey::Total);
    }
}
