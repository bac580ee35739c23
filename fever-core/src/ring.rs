//! The file-backed ring buffer of records: one writer, any number of readers, in any process.
//!
//! This module owns the layout of a ring file, the [`RingWriter`] that appends variable-length byte
//! records to it without ever blocking, and the [`RingReader`] that follows a live writer without
//! locks, notices when the writer has overwritten records it had not read yet (and counts them), and
//! never hands out a torn record. It is the transport of the tracer, the call cache, `fever attach`
//! and replay; what the records contain (rkyv-serialized events and snapshots) is not its business.
//!
//! # File layout
//!
//! A ring file is a [`HEADER_LEN`]-byte header followed by `capacity` bytes of record data, and is
//! exactly `HEADER_LEN + capacity` bytes long. `capacity` is a power of two between
//! [`MIN_CAPACITY`] and [`MAX_CAPACITY`]. Every header field is a little-endian `u64` at a fixed,
//! 8-byte-aligned offset, read and written as an [`AtomicU64`]:
//!
//! | offset | field | written |
//! |---|---|---|
//! | 0 | magic `b"FEVRRING"` | at creation |
//! | 8 | format version (low 32 bits), header length (high 32 bits) | at creation |
//! | 16 | capacity in bytes | at creation |
//! | 24 | 1 once the writer has closed | at close |
//! | 64 | head: end of the last published record (a byte position, see below) | every publish |
//! | 128 | tail: start of the oldest record still intact | when space is reclaimed |
//! | 192 | generation: odd while the writer updates the fields at 200..240, even otherwise | |
//! | 200 | head, again, for snapshots | every publish |
//! | 208 | sequence number of the next record to be written | every publish |
//! | 216 | tail, again, for snapshots | when space is reclaimed |
//! | 224 | sequence number of the record at the tail | when space is reclaimed |
//! | 232 | records the writer refused (larger than [`RingWriter::max_payload_len`]) | every publish |
//!
//! Head and tail are byte *positions*: monotonic counts of bytes ever written, never wrapped. The
//! byte at position `p` lives at data offset `p % capacity`. The live records are those in
//! `tail..head`. Head, tail and the snapshot group each have a cache line of their own: a reader
//! polls the head when it has caught up and loads the tail after every record, and every store
//! the writer makes to a line a reader keeps loading costs it a cache miss, so the head line gets
//! exactly one store per publish and the tail line one per reclaim.
//!
//! # Records
//!
//! A record is a 16-byte header — word 0: tag (high 32 bits) and payload length (low 32 bits);
//! word 1: sequence number — followed by the payload, zero-padded to a multiple of 8 bytes. Records
//! are 8-byte aligned and never straddle the end of the data area: when a record does not fit in
//! what is left of the current lap, the writer puts a padding marker (one word with the padding
//! tag) there and writes the record at the start of the next lap. A record's framed size (header
//! plus padded payload) is at most half the capacity; that bound is what guarantees the padding
//! marker and the record written after it never overlap, and that a record never evicts the whole
//! ring. Sequence numbers start at 0 and count records written; refused records take none.
//!
//! # Concurrency
//!
//! The data area is only ever accessed through 8-byte atomic operations, so a reader racing the
//! writer is well-defined; correctness comes from the protocol:
//!
//! - Publishing: the writer stores records with relaxed stores and, every
//!   [`RingWriter::publish_every`] records (default [`DEFAULT_PUBLISH_EVERY`]) or on
//!   [`RingWriter::flush`] / drop, stores the head with release ordering. Batching matters: with a
//!   reader polling the head, storing it after every record moves its cache line back and forth
//!   and costs several times the record itself.
//! - Reclaiming: before the writer overwrites any byte of a record, it advances the tail past that
//!   record, stores it, and issues a release fence; only then does it store into the freed region.
//!   It reclaims in chunks (up to `capacity / 16`, at most 64 KiB, beyond what it needs) so the tail
//!   line is touched rarely; the price is that a reader about to be lapped loses that much early.
//! - Reading: a reader checks its position against the head, copies the record with relaxed loads,
//!   issues an acquire fence and re-loads the tail. If the tail is still at or before the record's
//!   start, the writer had not begun overwriting it when the copy finished (the fences pair up: any
//!   overwritten word the copy saw would make the tail store visible), so the copy is intact;
//!   otherwise the copy is discarded and the reader jumps to the tail. The record's sequence number
//!   then tells how many records were lost.
//! - Snapshots: the fields at 200..240 change together under a seqlock (the generation word), so a
//!   reader can take a consistent (tail, tail sequence) or (head, next sequence) pair to start from.
//!
//! Readers map the file read-only and use only relaxed loads followed by acquire fences, which the
//! standard library guarantees to work on read-only memory for 8-byte loads on 64-bit targets.
//!
//! Bytes in the file are untrusted: a reader validates every record header against the head, the
//! capacity and the record bounds, and reports anything inconsistent as
//! [`RingError::Corrupt`] instead of panicking or reading out of bounds.
//!
//! # Caveats
//!
//! A mapping of a file that someone truncates is a `SIGBUS` for whoever touches the missing pages;
//! keep ring files in a private directory. A live ring on a disk-backed file system gets its dirty
//! pages written back by the kernel for nothing; put it on tmpfs (`/dev/shm`, `$XDG_RUNTIME_DIR`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "fever's ring buffer needs a 64-bit target: readers rely on 8-byte relaxed atomic loads \
     working on read-only mappings"
);

/// Format version written in (and required of) ring files.
pub const FORMAT_VERSION: u32 = 1;
/// Length in bytes of the header at the start of a ring file.
pub const HEADER_LEN: u64 = 256;
/// Smallest capacity (data bytes) a ring may have.
pub const MIN_CAPACITY: u64 = 256;
/// Largest capacity (data bytes) a ring may have.
pub const MAX_CAPACITY: u64 = 1 << 40;
/// How many records the writer appends between two publications of the head, unless told otherwise.
pub const DEFAULT_PUBLISH_EVERY: u32 = 64;

const MAGIC: [u8; 8] = *b"FEVRRING";
const PREFETCH_DISTANCE: u64 = 2048;
const HEADER_WORDS: usize = 32;
/// Framing: tag + length word, sequence word.
const RECORD_HEADER_LEN: u64 = 16;
const TAG_RECORD: u32 = 0x5245_4331; // "REC1"
const TAG_PAD: u32 = 0x5041_4431; // "PAD1"
/// Most bytes reclaimed beyond what a record needs.
const MAX_RECLAIM_SLACK: u64 = 64 * 1024;
/// Times a reader retries after being lapped mid-read before it gives up for this call.
const MAX_READ_ATTEMPTS: u32 = 64;
/// Times a reader retries a header snapshot the writer keeps changing.
const MAX_SNAPSHOT_ATTEMPTS: u32 = 10_000;

/// Word indexes of the header fields (byte offset = index * 8). Four cache lines: constants and
/// the closed flag (written once); the head alone (written every publish, polled by readers);
/// the tail alone (written on reclaim, loaded by readers after every record); the seqlock group
/// (written every publish, read by readers only when asked).
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const CAPACITY: usize = 2;
    pub const CLOSED: usize = 3;
    pub const HEAD: usize = 8;
    pub const TAIL: usize = 16;
    pub const GENERATION: usize = 24;
    pub const SNAP_HEAD: usize = 25;
    pub const NEXT_SEQ: usize = 26;
    pub const SNAP_TAIL: usize = 27;
    pub const TAIL_SEQ: usize = 28;
    pub const DROPPED: usize = 29;
}

/// Errors from creating, opening or reading a ring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The file could not be created, opened, sized, mapped or renamed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The requested capacity is not a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    #[error(
        "ring capacity {0} is not a power of two between {MIN_CAPACITY} and {MAX_CAPACITY} bytes"
    )]
    InvalidCapacity(u64),
    /// The file is not a ring file: wrong magic, truncated, inconsistent header or size.
    #[error("{}: not a fever ring file: {reason}", .path.display())]
    NotARing {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is a ring of a format version this build does not read.
    #[error(
        "{}: ring format version {found} is not supported (this build reads version {FORMAT_VERSION})",
        .path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u32,
    },
    /// The reader met bytes no writer following the protocol could have left at `position`. The
    /// reader has moved on to the newest published record; the next call continues from there.
    #[error("corrupt ring at byte position {position}: {reason}")]
    Corrupt {
        /// Byte position (not offset) of the bad record or marker.
        position: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What [`RingReader::next_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A record, whose payload is now in the caller's buffer, with its sequence number.
    Record(u64),
    /// The reader has read everything published so far.
    Empty,
    /// The writer overwrote this many records before the reader got to them; the next call returns
    /// the oldest record still intact. `Lost(0)` means the writer lapped the reader again on every
    /// attempt during this call: something was lost and the count comes with a later `Lost(n)`.
    Lost(u64),
}

/// A shared mapping of a whole ring file, viewed as 8-byte words.
struct Mapping {
    map: MmapRaw,
    /// Data area length in bytes.
    capacity: u64,
}

impl Mapping {
    /// Checks that the mapping is exactly a header plus `capacity` bytes and 8-byte aligned.
    fn new(map: MmapRaw, capacity: u64) -> Result<Self, String> {
        let expected = HEADER_LEN + capacity;
        if map.len() as u64 != expected {
            return Err(format!("mapped {} bytes, expected {expected}", map.len()));
        }
        if map.as_ptr().align_offset(std::mem::align_of::<AtomicU64>()) != 0 {
            return Err("mapping is not 8-byte aligned".to_owned());
        }
        Ok(Mapping { map, capacity })
    }

    /// Every word of the file.
    #[inline]
    #[allow(clippy::cast_ptr_alignment)] // alignment checked in `Mapping::new`
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: `Mapping::new` checked that the mapping is 8-byte aligned and that its length,
        // `HEADER_LEN + capacity` with both multiples of 8, is a whole number of words; the mapping
        // lives as long as `self.map`, which the returned borrow cannot outlive. `AtomicU64` has
        // the size and layout of `u64`, and every access to these words anywhere in this module
        // (in any process) is an atomic 8-byte access, so there are no mixed-size or non-atomic
        // races. The mapping is shared memory that other processes may change at any time, which
        // is exactly what `AtomicU64`'s interior mutability allows. A read-only mapping (readers)
        // is only ever loaded from with `Ordering::Relaxed`, which the standard library documents
        // as working on read-only memory for 8-byte atomics on 64-bit targets (enforced above).
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.map.len() / 8)
        }
    }

    #[inline]
    fn header(&self) -> &[AtomicU64] {
        &self.words()[..HEADER_WORDS]
    }

    #[inline]
    fn data(&self) -> &[AtomicU64] {
        &self.words()[HEADER_WORDS..]
    }

    /// Relaxed load of a header field, decoded from little-endian.
    #[inline]
    fn load(&self, index: usize) -> u64 {
        u64::from_le(self.header()[index].load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Lossless on the 64-bit targets this module compiles for.
#[inline]
#[allow(clippy::cast_possible_truncation)]
fn to_usize(x: u64) -> usize {
    x as usize
}

/// Header length plus payload rounded up to 8 bytes.
#[inline]
fn framed_len(payload_len: u64) -> u64 {
    RECORD_HEADER_LEN + ((payload_len + 7) & !7)
}

#[inline]
fn record_word(payload_len: u64) -> u64 {
    (u64::from(TAG_RECORD) << 32) | payload_len
}

/// A record header's first word, decoded.
enum Marker {
    Record { len: u64 },
    Pad,
    Unknown,
}

#[inline]
fn decode_marker(word: u64) -> Marker {
    let len = word & 0xFFFF_FFFF;
    match word >> 32 {
        t if t == u64::from(TAG_RECORD) => Marker::Record { len },
        t if t == u64::from(TAG_PAD) => Marker::Pad,
        _ => Marker::Unknown,
    }
}

fn check_capacity(capacity: u64) -> Result<(), RingError> {
    if capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(RingError::InvalidCapacity(capacity))
    }
}

/// Largest framed record a ring of this capacity holds (see the module docs for why half).
#[inline]
fn max_framed_len(capacity: u64) -> u64 {
    capacity / 2
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RingError + '_ {
    move |source| RingError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The single writer of a ring file.
///
/// `push` appends a record and never blocks: when the ring is full it reclaims the oldest records.
/// The writer publishes its progress to readers every [`publish_every`](Self::publish_every)
/// records, on [`flush`](Self::flush), and when closed or dropped (which also marks the ring
/// closed). It is `Send`, so it can move between threads, but it is one writer: `push` takes
/// `&mut self`.
#[derive(Debug)]
pub struct RingWriter {
    map: Mapping,
    path: PathBuf,
    mask: u64,
    max_payload: u64,
    slack: u64,
    /// End of the last record written (published or not).
    write: u64,
    /// Oldest intact record and its sequence number, as last published.
    tail: u64,
    tail_seq: u64,
    /// `tail + capacity`: the writer may store below this position without reclaiming.
    limit: u64,
    next_seq: u64,
    dropped: u64,
    published_head: u64,
    unpublished: u32,
    publish_every: u32,
    generation: u64,
    closed: bool,
}

impl RingWriter {
    /// Creates a ring file of `capacity` data bytes at `path`, replacing whatever file is there.
    ///
    /// The file is built under a temporary name in the same directory and renamed into place, so
    /// a reader never sees a half-initialized ring, and readers of a ring previously at `path` keep
    /// their (now unlinked) file instead of seeing it truncated. On Unix the file is created with
    /// mode 0600. `capacity` must be a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub fn create(path: impl AsRef<Path>, capacity: u64) -> Result<Self, RingError> {
        Self::create_with(path.as_ref(), capacity, true)
    }

    /// Like [`create`](Self::create), but the file's pages are left to be faulted in as records
    /// are written: a large ring that is mostly empty (a cache file) costs only what it holds,
    /// in time and in memory, while the live trace ring is faulted in up front.
    pub fn create_sparse(path: impl AsRef<Path>, capacity: u64) -> Result<Self, RingError> {
        Self::create_with(path.as_ref(), capacity, false)
    }

    fn create_with(path: &Path, capacity: u64, populate: bool) -> Result<Self, RingError> {
        check_capacity(capacity)?;
        let tmp = temp_path(path).ok_or_else(|| RingError::Io {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        })?;
        let result = Self::create_at(path, &tmp, capacity, populate);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn create_at(
        path: &Path,
        tmp: &Path,
        capacity: u64,
        populate: bool,
    ) -> Result<Self, RingError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(tmp).map_err(io_error(tmp))?;
        file.set_len(HEADER_LEN + capacity).map_err(io_error(tmp))?;
        let mut mmap = MmapOptions::new();
        if populate {
            // Pages faulted in now rather than one by one on the first lap, at the writer's
            // expense.
            mmap.populate();
        }
        let raw = mmap.map_raw(&file).map_err(io_error(tmp))?;
        let writer = Self::on(raw, capacity, path, tmp)?;
        fs::rename(tmp, path).map_err(io_error(path))?;
        Ok(writer)
    }

    /// A ring of `capacity` data bytes in anonymous memory: no other process can read it, and
    /// there is no file to create, to collide with a stale one, or to leave behind when the
    /// process is killed. For a writer nobody reads (the tracer of a forked replay child).
    pub fn anonymous(capacity: u64) -> Result<Self, RingError> {
        check_capacity(capacity)?;
        let path = Path::new("<anonymous ring>");
        let len = usize::try_from(HEADER_LEN + capacity).map_err(|_| RingError::Io {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "capacity too large"),
        })?;
        let raw = MmapOptions::new()
            .len(len)
            .map_anon()
            .map(MmapRaw::from)
            .map_err(io_error(path))?;
        Self::on(raw, capacity, path, path)
    }

    /// A new, empty ring on the mapping `raw` (`shown`: the name errors give it).
    fn on(raw: MmapRaw, capacity: u64, path: &Path, shown: &Path) -> Result<Self, RingError> {
        let map = Mapping::new(raw, capacity).map_err(|reason| RingError::Io {
            path: shown.to_owned(),
            source: io::Error::other(reason),
        })?;
        let header = map.header();
        header[field::MAGIC].store(u64::from_le_bytes(MAGIC).to_le(), Ordering::Relaxed);
        let version = u64::from(FORMAT_VERSION) | (HEADER_LEN << 32);
        header[field::VERSION].store(version.to_le(), Ordering::Relaxed);
        header[field::CAPACITY].store(capacity.to_le(), Ordering::Relaxed);
        // The rest of the header is zero: head = tail = 0, sequences 0, not closed, generation 0.
        let slack = (capacity / 16).min(MAX_RECLAIM_SLACK);
        Ok(RingWriter {
            map,
            path: path.to_owned(),
            mask: capacity - 1,
            max_payload: (max_framed_len(capacity) - RECORD_HEADER_LEN)
                .min(u64::from(u32::MAX) & !7),
            slack,
            write: 0,
            tail: 0,
            tail_seq: 0,
            limit: capacity,
            next_seq: 0,
            dropped: 0,
            published_head: 0,
            unpublished: 0,
            publish_every: DEFAULT_PUBLISH_EVERY,
            generation: 0,
            closed: false,
        })
    }

    /// Sets how many records are appended between two publications of the head (0 counts as 1).
    /// Readers see a record only once it is published; larger batches are faster with a reader
    /// polling, smaller ones show records sooner.
    #[must_use]
    pub fn publish_every(mut self, records: u32) -> Self {
        self.publish_every = records.max(1);
        self
    }

    /// Appends a record and returns its sequence number, or `None` if the payload is longer than
    /// [`max_payload_len`](Self::max_payload_len): such a record is not written and is counted in
    /// [`dropped`](Self::dropped). Overwrites the oldest records when the ring is full.
    #[inline]
    pub fn push(&mut self, payload: &[u8]) -> Option<u64> {
        let len = payload.len() as u64;
        if len > self.max_payload {
            self.dropped += 1;
            return None;
        }
        let framed = framed_len(len);
        let mut offset = self.write & self.mask;
        let room = self.map.capacity - offset;
        let pad = if framed > room { room } else { 0 };
        let end = self.write + pad + framed;
        if end > self.limit {
            self.reclaim(end);
        }
        let data = self.map.data();
        if pad != 0 {
            data[to_usize(offset / 8)].store((u64::from(TAG_PAD) << 32).to_le(), Ordering::Relaxed);
            offset = 0;
        }
        let first = to_usize(offset / 8);
        let slot = &data[first..first + to_usize(framed / 8)];
        let seq = self.next_seq;
        slot[0].store(record_word(len).to_le(), Ordering::Relaxed);
        slot[1].store(seq.to_le(), Ordering::Relaxed);
        let (full, partial) = slot[2..].split_at(payload.len() / 8);
        let chunks = payload.chunks_exact(8);
        let rest = chunks.remainder();
        for (word, chunk) in full.iter().zip(chunks) {
            // Payload bytes are stored in memory order, so the file holds them verbatim.
            word.store(
                u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])),
                Ordering::Relaxed,
            );
        }
        if let Some(word) = partial.first().filter(|_| !rest.is_empty()) {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            word.store(u64::from_ne_bytes(last), Ordering::Relaxed);
        }
        self.write = end;
        self.prefetch_ahead();
        self.next_seq = seq + 1;
        self.unpublished += 1;
        if self.unpublished >= self.publish_every {
            self.publish();
        }
        Some(seq)
    }

    #[inline]
    fn prefetch_ahead(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let ahead =
                to_usize((self.write + PREFETCH_DISTANCE) & self.mask) + to_usize(HEADER_LEN);
            let p = self.map.map.as_ptr().wrapping_add(ahead).cast::<i8>();
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(p) };
        }
    }

    /// Publishes every record appended so far (and the dropped count) to readers. This does not
    /// write anything to disk; the mapping is shared through the page cache.
    pub fn flush(&mut self) {
        self.publish();
    }

    /// Publishes the rest and marks the ring closed, so readers know no more records will come.
    /// Dropping the writer does the same.
    pub fn close(mut self) {
        self.finish();
    }

    /// The largest payload [`push`](Self::push) accepts: half the capacity minus the 16-byte
    /// record header (and at most `u32::MAX` rounded down to 8).
    pub fn max_payload_len(&self) -> usize {
        to_usize(self.max_payload)
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.map.capacity
    }

    /// Records refused because they were larger than [`max_payload_len`](Self::max_payload_len).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records written so far, which is also the sequence number of the next one.
    pub fn records_written(&self) -> u64 {
        self.next_seq
    }

    /// Byte position where the next record will be written (positions never wrap; see the
    /// module docs). With [`RingReader::position`], how far a reader is behind.
    pub fn position(&self) -> u64 {
        self.write
    }

    /// This writer's mapping of the file: its address and length in bytes (to fault its pages
    /// in from another thread while this writer lives).
    pub fn mapped(&self) -> (usize, usize) {
        (self.map.map.as_ptr() as usize, self.map.map.len())
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn finish(&mut self) {
        if !self.closed {
            self.closed = true;
            self.publish();
            self.map.header()[field::CLOSED].store(1u64.to_le(), Ordering::Release);
        }
    }

    /// Opens a seqlock update of the snapshot group: readers taking a snapshot retry until the
    /// generation is even and unchanged.
    #[inline]
    fn begin_update(&mut self) {
        self.generation += 1;
        self.map.header()[field::GENERATION].store(self.generation.to_le(), Ordering::Relaxed);
        // Orders the odd generation before the field stores below and, for readers that load the
        // head with a relaxed load and an acquire fence, every record stored so far before the head.
        fence(Ordering::Release);
    }

    #[inline]
    fn end_update(&mut self) {
        self.generation += 1;
        self.map.header()[field::GENERATION].store(self.generation.to_le(), Ordering::Release);
    }

    /// Stores head, next sequence and dropped count for readers.
    #[inline]
    fn publish(&mut self) {
        self.begin_update();
        self.store_head();
        self.end_update();
    }

    #[inline]
    fn store_head(&mut self) {
        let header = self.map.header();
        header[field::SNAP_HEAD].store(self.write.to_le(), Ordering::Relaxed);
        header[field::NEXT_SEQ].store(self.next_seq.to_le(), Ordering::Relaxed);
        header[field::DROPPED].store(self.dropped.to_le(), Ordering::Relaxed);
        header[field::HEAD].store(self.write.to_le(), Ordering::Release);
        self.published_head = self.write;
        self.unpublished = 0;
    }

    /// Moves the tail past every record that the bytes up to position `end` will overwrite (and a
    /// chunk more), publishes it, and fences so that the new tail is visible before any of those
    /// bytes changes.
    #[cold]
    #[inline(never)]
    fn reclaim(&mut self, end: u64) {
        let capacity = self.map.capacity;
        // `end - capacity < self.write` because a framed record is at most half the capacity and
        // padding is only needed when the record is larger than what is left of the lap.
        let goal = (end - capacity + self.slack).min(self.write);
        let data = self.map.data();
        while self.tail < goal {
            let offset = self.tail & self.mask;
            let word = u64::from_le(data[to_usize(offset / 8)].load(Ordering::Relaxed));
            // (position after it, records it holds)
            let step = match decode_marker(word) {
                Marker::Pad if offset != 0 => Some(((self.tail | self.mask) + 1, 0)),
                Marker::Record { len } => {
                    let framed = framed_len(len);
                    (framed <= max_framed_len(capacity) && offset + framed <= capacity)
                        .then_some((self.tail + framed, 1))
                }
                Marker::Pad | Marker::Unknown => None,
            };
            match step {
                Some((next, records)) if next <= self.write => {
                    self.tail = next;
                    self.tail_seq += records;
                }
                // Only possible if something else wrote into the file: give up on every record.
                _ => {
                    self.tail = self.write;
                    self.tail_seq = self.next_seq;
                }
            }
        }
        self.limit = self.tail + capacity;
        self.begin_update();
        if self.tail > self.published_head {
            // Readers rely on head >= tail; every record below `write` is complete.
            self.store_head();
        }
        let header = self.map.header();
        header[field::SNAP_TAIL].store(self.tail.to_le(), Ordering::Relaxed);
        header[field::TAIL_SEQ].store(self.tail_seq.to_le(), Ordering::Relaxed);
        header[field::TAIL].store(self.tail.to_le(), Ordering::Release);
        self.end_update();
        // The tail store above must be visible before any store into the region it frees: a reader
        // that sees one of those stores and then fences will see this tail and discard its copy.
        fence(Ordering::Release);
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `dir/.name.PID.N.tmp` next to `path`.
fn temp_path(path: &Path) -> Option<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name()?.to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Some(path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id())))
}

/// A consistent view of the seqlock-protected header fields.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    head: u64,
    next_seq: u64,
    tail: u64,
    tail_seq: u64,
}

/// A reader of a ring file, in this process or another one.
///
/// It maps the file read-only and follows the writer without locks: [`next_record`](Self::next_record)
/// copies the next record into the caller's buffer, says when it has caught up, and reports how
/// many records the writer overwrote before the reader got to them.
#[derive(Debug)]
pub struct RingReader {
    map: Mapping,
    path: PathBuf,
    mask: u64,
    /// Position of the next record to read (always a record boundary, or a lap start).
    pos: u64,
    /// Sequence number the next record should have; `None` when not known.
    expected: Option<u64>,
    /// Head as last loaded; re-loaded only when `pos` reaches it.
    known_head: u64,
    lost: u64,
}

impl RingReader {
    /// Opens the ring file at `path`, positioned at the oldest record still in it.
    ///
    /// Fails with [`RingError::NotARing`] or [`RingError::UnsupportedVersion`] for a file that is
    /// not a complete ring of this format (empty, truncated, foreign, wrong size); never panics.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RingError> {
        let path = path.as_ref();
        let not_a_ring = |reason: String| RingError::NotARing {
            path: path.to_owned(),
            reason,
        };
        let mut file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        let mut header = [0u8; 24];
        if len < HEADER_LEN {
            return Err(not_a_ring(format!(
                "{len} bytes is shorter than a ring header"
            )));
        }
        file.read_exact(&mut header).map_err(io_error(path))?;
        let word = |i: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[i * 8..i * 8 + 8]);
            u64::from_le_bytes(bytes)
        };
        if header[..8] != MAGIC {
            return Err(not_a_ring("wrong magic bytes".to_owned()));
        }
        let version = word(field::VERSION);
        let (found, header_len) = (version & 0xFFFF_FFFF, version >> 32);
        if found != u64::from(FORMAT_VERSION) {
            return Err(RingError::UnsupportedVersion {
                path: path.to_owned(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        if header_len != HEADER_LEN {
            return Err(not_a_ring(format!(
                "header length {header_len}, expected {HEADER_LEN}"
            )));
        }
        let capacity = word(field::CAPACITY);
        if check_capacity(capacity).is_err() {
            return Err(not_a_ring(format!("invalid capacity {capacity}")));
        }
        if len != HEADER_LEN + capacity {
            return Err(not_a_ring(format!(
                "{len} bytes, but a ring of capacity {capacity} has {}",
                HEADER_LEN + capacity
            )));
        }
        let raw = MmapOptions::new()
            .len(to_usize(HEADER_LEN + capacity))
            .map_raw_read_only(&file)
            .map_err(io_error(path))?;
        let map = Mapping::new(raw, capacity).map_err(not_a_ring)?;
        // The file may have been replaced between the read and the mapping: check again.
        if map.load(field::MAGIC) != u64::from_le_bytes(MAGIC)
            || map.load(field::CAPACITY) != capacity
        {
            return Err(not_a_ring("header changed while opening".to_owned()));
        }
        let mut reader = RingReader {
            map,
            path: path.to_owned(),
            mask: capacity - 1,
            pos: 0,
            expected: None,
            known_head: 0,
            lost: 0,
        };
        if let Some(snap) = reader.snapshot() {
            reader.pos = snap.tail;
            reader.expected = Some(snap.tail_seq);
            reader.known_head = snap.head;
        } else {
            // A writer that died halfway through an update: start at the tail, count from there.
            reader.pos = reader.map.load(field::TAIL);
        }
        Ok(reader)
    }

    /// Moves to the end: the next record returned is the first one published after this call.
    pub fn skip_to_newest(&mut self) {
        if let Some(snap) = self.snapshot() {
            self.pos = snap.head;
            self.expected = Some(snap.next_seq);
            self.known_head = snap.head;
        } else {
            self.pos = self.map.load(field::HEAD);
            fence(Ordering::Acquire);
            self.expected = None;
            self.known_head = self.pos;
        }
    }

    /// Reads the next record into `buf` (replacing its contents) without blocking.
    ///
    /// Returns [`ReadOutcome::Record`] with the record's sequence number, [`ReadOutcome::Empty`]
    /// when every published record has been read, or [`ReadOutcome::Lost`] when the writer
    /// overwrote records before this reader got to them. `buf` holds a payload only after
    /// `Record`; it is cleared otherwise. A record returned is exactly what the writer pushed.
    ///
    /// Errors only with [`RingError::Corrupt`], for bytes no writer could have produced; the reader
    /// then skips to the newest published record, so calling again makes progress.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<ReadOutcome, RingError> {
        for _ in 0..MAX_READ_ATTEMPTS {
            match self.attempt(buf) {
                Attempt::Done(outcome) => {
                    if !matches!(outcome, ReadOutcome::Record(_)) {
                        buf.clear();
                    }
                    return Ok(outcome);
                }
                Attempt::Lapped => {}
                Attempt::Corrupt { position, reason } => {
                    buf.clear();
                    self.resync();
                    return Err(RingError::Corrupt { position, reason });
                }
            }
        }
        buf.clear();
        Ok(ReadOutcome::Lost(0))
    }

    /// Total records this reader lost to the writer overwriting them.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Byte position of the next record this reader will read (see [`RingWriter::position`]).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Records the writer refused as too large, as last published.
    pub fn writer_dropped(&self) -> u64 {
        let dropped = self.map.load(field::DROPPED);
        fence(Ordering::Acquire);
        dropped
    }

    /// Records the writer has published (the sequence number of the next one).
    pub fn writer_records(&self) -> u64 {
        let n = self.map.load(field::NEXT_SEQ);
        fence(Ordering::Acquire);
        n
    }

    /// Whether the writer has closed the ring. Once this is true, a following
    /// [`ReadOutcome::Empty`] means no record will ever come.
    pub fn writer_closed(&self) -> bool {
        let closed = self.map.load(field::CLOSED) != 0;
        fence(Ordering::Acquire);
        closed
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.map.capacity
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After corruption: continue from the newest published position, sequence unknown.
    fn resync(&mut self) {
        fence(Ordering::Acquire);
        self.known_head = self.map.load(field::HEAD);
        fence(Ordering::Acquire);
        self.pos = self.known_head;
        self.expected = None;
    }

    /// Seqlock read of the fields the writer updates together.
    fn snapshot(&self) -> Option<Snapshot> {
        for _ in 0..MAX_SNAPSHOT_ATTEMPTS {
            let before = self.map.load(field::GENERATION);
            fence(Ordering::Acquire);
            if before & 1 == 0 {
                let snap = Snapshot {
                    head: self.map.load(field::SNAP_HEAD),
                    next_seq: self.map.load(field::NEXT_SEQ),
                    tail: self.map.load(field::SNAP_TAIL),
                    tail_seq: self.map.load(field::TAIL_SEQ),
                };
                fence(Ordering::Acquire);
                if self.map.load(field::GENERATION) == before {
                    return Some(snap);
                }
            }
            std::hint::spin_loop();
        }
        None
    }

    /// Whether the writer had not started overwriting position `pos` when everything loaded
    /// before this call was loaded.
    #[inline]
    fn still_intact(&self, pos: u64) -> bool {
        fence(Ordering::Acquire);
        self.map.load(field::TAIL) <= pos
    }

    /// One try at the next record; `Lapped` means the writer overwrote what was being read.
    #[inline]
    fn attempt(&mut self, buf: &mut Vec<u8>) -> Attempt {
        let capacity = self.map.capacity;
        let tail = self.map.load(field::TAIL);
        if self.pos < tail {
            // Lapped while away: the sequence number of the record at the tail says by how much.
            self.pos = tail;
        }
        // At most two rounds: a padding marker, then a record at the start of the next lap.
        loop {
            if self.pos >= self.known_head {
                // Loaded after the tail (the writer stores the head first), so head >= tail.
                fence(Ordering::Acquire);
                self.known_head = self.map.load(field::HEAD);
                // Pairs with the writer's release: records below the head are fully visible.
                fence(Ordering::Acquire);
                if self.pos == self.known_head {
                    return Attempt::Done(ReadOutcome::Empty);
                }
                if self.pos > self.known_head {
                    return self
                        .corrupt_unless_lapped(self.pos, "position is past the published head");
                }
            }
            let pos = self.pos;
            let offset = pos & self.mask;
            let first = to_usize(offset / 8);
            let data = self.map.data();
            let word = u64::from_le(data[first].load(Ordering::Relaxed));
            match decode_marker(word) {
                Marker::Pad => {
                    let next = (pos | self.mask).checked_add(1);
                    let next = next.filter(|&next| offset != 0 && next <= self.known_head);
                    let Some(next) = next else {
                        return self.corrupt_unless_lapped(pos, "misplaced padding marker");
                    };
                    if !self.still_intact(pos) {
                        return Attempt::Lapped;
                    }
                    self.pos = next;
                }
                Marker::Record { len } => {
                    let framed = framed_len(len);
                    let end = pos.checked_add(framed);
                    if framed > max_framed_len(capacity)
                        || offset + framed > capacity
                        || !matches!(end, Some(end) if end <= self.known_head)
                    {
                        return self.corrupt_unless_lapped(pos, "record length out of bounds");
                    }
                    let seq = u64::from_le(data[first + 1].load(Ordering::Relaxed));
                    let payload = &data[first + 2..first + to_usize(framed / 8)];
                    let len = to_usize(len);
                    buf.clear();
                    buf.reserve(payload.len() * 8);
                    for word in payload {
                        buf.extend_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
                    }
                    buf.truncate(len);
                    if !self.still_intact(pos) {
                        return Attempt::Lapped;
                    }
                    match self.expected {
                        Some(expected) if seq > expected => {
                            // Stay on this record: the next call returns it.
                            let lost = seq - expected;
                            self.expected = Some(seq);
                            self.lost += lost;
                            return Attempt::Done(ReadOutcome::Lost(lost));
                        }
                        Some(expected) if seq < expected => {
                            return Attempt::Corrupt {
                                position: pos,
                                reason: "sequence number went backwards",
                            };
                        }
                        _ => {}
                    }
                    self.pos = pos + framed;
                    self.expected = Some(seq.wrapping_add(1));
                    return Attempt::Done(ReadOutcome::Record(seq));
                }
                Marker::Unknown => {
                    return self.corrupt_unless_lapped(pos, "unknown record tag");
                }
            }
        }
    }

    /// Bad bytes at `pos` are only corruption if the writer was not overwriting them meanwhile.
    fn corrupt_unless_lapped(&self, pos: u64, reason: &'static str) -> Attempt {
        if self.still_intact(pos) {
            Attempt::Corrupt {
                position: pos,
                reason,
            }
        } else {
            Attempt::Lapped
        }
    }
}

enum Attempt {
    Done(ReadOutcome),
    Lapped,
    Corrupt { position: u64, reason: &'static str },
}

#[cfg(test)]
// `Duration::from_mins` is newer than the workspace's declared MSRV.
#[allow(clippy::cast_possible_truncation, clippy::duration_suboptimal_units)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("fever-ring-test-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Deterministic payload of record `i`: length from `i`, bytes from `i` and their index.
    fn payload(i: u64, max_len: u64) -> Vec<u8> {
        let len = (i.wrapping_mul(2_654_435_761) >> 7) % (max_len + 1);
        (0..len)
            .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
            .collect()
    }

    /// Payload of at least 8 bytes that carries `i` in its first 8 bytes.
    fn tagged_payload(i: u64, max_len: u64) -> Vec<u8> {
        let mut p = i.to_le_bytes().to_vec();
        p.extend(payload(i, max_len - 8));
        p
    }

    fn check_tagged(buf: &[u8], max_len: u64) -> u64 {
        assert!(buf.len() >= 8, "record shorter than its tag: {}", buf.len());
        let i = u64::from_le_bytes(buf[..8].try_into().unwrap());
        assert_eq!(buf, tagged_payload(i, max_len), "torn or wrong record {i}");
        i
    }

    fn read(reader: &mut RingReader, buf: &mut Vec<u8>) -> ReadOutcome {
        reader.next_record(buf).expect("no corruption")
    }

    #[test]
    fn an_anonymous_ring_takes_records_and_wraps_around_without_a_file() {
        let mut writer = RingWriter::anonymous(4096).unwrap();
        for i in 0..10_000 {
            assert_eq!(writer.push(&payload(i, 200)), Some(i));
        }
        writer.flush();
        assert!(writer.position() > 4096 * 100);
        assert_eq!(writer.dropped(), 0);
        assert!(RingWriter::anonymous(3).is_err());
    }

    #[test]
    fn round_trip_of_varied_sizes() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1 << 20).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        for i in 0..2_000 {
            assert_eq!(writer.push(&payload(i, 300)), Some(i));
        }
        writer.flush();
        for i in 0..2_000 {
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(i));
            assert_eq!(buf, payload(i, 300));
        }
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        assert_eq!(reader.lost(), 0);
        assert!(!reader.writer_closed());
        drop(writer);
        assert!(reader.writer_closed());
    }

    #[test]
    fn every_payload_length_round_trips() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1 << 16).unwrap().publish_every(1);
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        for len in 0..=writer.max_payload_len() {
            let p: Vec<u8> = (0..len).map(|j| (j * 13 + len) as u8).collect();
            let seq = writer.push(&p).unwrap();
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(seq));
            assert_eq!(buf, p, "length {len}");
        }
    }

    #[test]
    fn wraps_around_many_times_with_a_reader_keeping_up() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 4096).unwrap().publish_every(3);
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        let mut next = 0;
        for i in 0..100_000 {
            writer.push(&payload(i, 200)).unwrap();
            if i % 5 == 4 {
                writer.flush();
                while let ReadOutcome::Record(seq) = read(&mut reader, &mut buf) {
                    assert_eq!(seq, next);
                    assert_eq!(buf, payload(seq, 200));
                    next += 1;
                }
            }
        }
        assert_eq!(next, 100_000);
        assert_eq!(reader.lost(), 0);
        assert!(
            writer.write > 100 * 4096,
            "wrapped only {} times",
            writer.write / 4096
        );
    }

    /// Reads everything left; returns (records, lost) and checks order and content.
    fn drain(reader: &mut RingReader, max_len: u64) -> (Vec<u64>, u64) {
        let mut buf = Vec::new();
        let mut seqs = Vec::new();
        let mut lost = 0;
        loop {
            match read(reader, &mut buf) {
                ReadOutcome::Record(seq) => {
                    assert_eq!(check_tagged(&buf, max_len), seq);
                    if let Some(&last) = seqs.last() {
                        assert!(seq > last);
                    }
                    seqs.push(seq);
                }
                ReadOutcome::Lost(n) => lost += n,
                ReadOutcome::Empty => return (seqs, lost),
            }
        }
    }

    #[test]
    fn a_reader_that_falls_behind_counts_what_it_lost() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 4096).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        for i in 0..10 {
            writer.push(&tagged_payload(i, 40)).unwrap();
        }
        writer.flush();
        for i in 0..3 {
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(i));
        }
        for i in 10..1_000 {
            writer.push(&tagged_payload(i, 40)).unwrap();
        }
        writer.flush();
        let first = match read(&mut reader, &mut buf) {
            ReadOutcome::Lost(n) => n + 3,
            other => panic!("expected Lost, got {other:?}"),
        };
        assert_eq!(reader.lost(), first - 3);
        assert_eq!(
            first, writer.tail_seq,
            "the reader resumes at the writer's tail"
        );
        let (seqs, lost) = drain(&mut reader, 40);
        assert_eq!(lost, 0);
        assert_eq!(
            seqs,
            (first..1_000).collect::<Vec<_>>(),
            "the newest records, all intact"
        );
        // Most of the ring is still readable: only the reclaim slack is given up early.
        assert!(
            seqs.len() as u64 * 64 > 4096 / 2,
            "kept only {} records",
            seqs.len()
        );
    }

    #[test]
    fn a_reader_opened_on_an_empty_ring_counts_losses_from_the_first_record() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1024).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        for i in 0..500 {
            writer.push(&tagged_payload(i, 32)).unwrap();
        }
        writer.flush();
        let mut buf = Vec::new();
        let ReadOutcome::Lost(n) = read(&mut reader, &mut buf) else {
            panic!("expected Lost")
        };
        let (seqs, lost) = drain(&mut reader, 32);
        assert_eq!(lost, 0);
        assert_eq!(seqs.first(), Some(&n));
        assert_eq!(n + seqs.len() as u64, 500);
    }

    #[test]
    fn a_reader_opened_late_starts_at_the_oldest_record_without_a_loss() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1024).unwrap();
        for i in 0..500 {
            writer.push(&tagged_payload(i, 32)).unwrap();
        }
        writer.close();
        let mut reader = RingReader::open(&path).unwrap();
        let (seqs, lost) = drain(&mut reader, 32);
        assert_eq!(lost, 0);
        assert_eq!(*seqs.last().unwrap(), 499);
        assert_eq!(seqs, (seqs[0]..500).collect::<Vec<_>>());
        assert!(reader.writer_closed());
    }

    #[test]
    fn skip_to_newest_returns_only_later_records() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 4096).unwrap();
        for i in 0..20 {
            writer.push(&tagged_payload(i, 32)).unwrap();
        }
        writer.flush();
        let mut reader = RingReader::open(&path).unwrap();
        reader.skip_to_newest();
        let mut buf = Vec::new();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        writer.push(&tagged_payload(20, 32)).unwrap();
        writer.flush();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(20));
        assert_eq!(check_tagged(&buf, 32), 20);
    }

    #[test]
    fn records_are_visible_only_once_published() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1 << 16).unwrap().publish_every(4);
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        for i in 0..3u8 {
            writer.push(&[i]).unwrap();
        }
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        writer.push(&[3]).unwrap();
        for i in 0..4 {
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(i));
        }
        writer.push(&[4]).unwrap();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        assert_eq!(reader.writer_records(), 4);
        drop(writer);
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(4));
        assert_eq!(buf, [4]);
        assert_eq!(reader.writer_records(), 5);
    }

    #[test]
    fn a_record_larger_than_the_ring_is_refused_and_counted() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 4096).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        assert_eq!(writer.max_payload_len(), 2048 - 16);
        assert_eq!(writer.push(&vec![1; 5000]), None);
        assert_eq!(writer.push(&vec![2; writer.max_payload_len() + 1]), None);
        assert_eq!(writer.push(&vec![3; writer.max_payload_len()]), Some(0));
        assert_eq!(writer.push(b"small"), Some(1));
        assert_eq!(writer.dropped(), 2);
        writer.flush();
        assert_eq!(reader.writer_dropped(), 2);
        let mut buf = Vec::new();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(0));
        assert_eq!(buf, vec![3; 2048 - 16]);
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(1));
        assert_eq!(buf, b"small");
        // Half-ring records keep wrapping correctly (padding, then the start of the next lap).
        for i in 2..50 {
            let p = vec![i as u8; 1500 + (i as usize * 37) % 500];
            assert_eq!(writer.push(&p), Some(i));
            writer.flush();
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(i));
            assert_eq!(buf, p);
        }
    }

    /// A writer thread pushes `records` tagged records into a ring of `capacity` while this thread
    /// follows it; every record read must be intact and in order, and every record must be either
    /// read or counted as lost.
    fn follow_a_live_writer(capacity: u64, max_len: u64, records: u64) {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let writer = RingWriter::create(&path, capacity).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        let writer_thread = std::thread::spawn(move || {
            let mut writer = writer;
            let payloads: Vec<Vec<u8>> = (0..4096).map(|i| tagged_payload(i, max_len)).collect();
            for i in 0..records {
                // Reuse a few thousand distinct payloads; the tag in front still identifies `i`.
                let mut p = payloads[(i % 4096) as usize].clone();
                p[..8].copy_from_slice(&i.to_le_bytes());
                assert_eq!(writer.push(&p), Some(i));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut buf = Vec::new();
        let (mut received, mut lost, mut last) = (0u64, 0u64, None);
        loop {
            assert!(Instant::now() < deadline, "reader did not finish in time");
            let closed = reader.writer_closed();
            match read(&mut reader, &mut buf) {
                ReadOutcome::Record(seq) => {
                    let i = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    assert_eq!(i, seq, "record {seq} carries the tag of {i}");
                    let mut expected = tagged_payload(i % 4096, max_len);
                    expected[..8].copy_from_slice(&i.to_le_bytes());
                    assert_eq!(buf, expected, "torn record {seq}");
                    assert!(!matches!(last, Some(last) if seq <= last));
                    last = Some(seq);
                    received += 1;
                }
                ReadOutcome::Lost(n) => lost += n,
                ReadOutcome::Empty if closed => break,
                ReadOutcome::Empty => std::thread::yield_now(),
            }
        }
        writer_thread.join().unwrap();
        assert_eq!(last, Some(records - 1));
        assert_eq!(
            received + lost,
            records,
            "every record is either read or counted as lost"
        );
        assert_eq!(reader.lost(), lost);
    }

    #[test]
    fn a_reader_thread_follows_a_live_writer() {
        follow_a_live_writer(1 << 16, 120, 1_000_000);
    }

    #[test]
    fn a_reader_thread_follows_a_live_writer_lapping_a_tiny_ring() {
        // The writer laps this ring every few records, so it often overwrites the record the reader
        // is copying: those copies must be discarded, never returned.
        follow_a_live_writer(MIN_CAPACITY, 112, 300_000);
    }

    #[test]
    fn a_reader_on_a_separate_mapping_sees_the_writer() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 1 << 16).unwrap();
        let mut first = RingReader::open(&path).unwrap();
        let mut second = RingReader::open(&path).unwrap();
        for i in 0..100 {
            writer.push(&tagged_payload(i, 64)).unwrap();
        }
        writer.flush();
        let (a, _) = drain(&mut first, 64);
        let (b, _) = drain(&mut second, 64);
        assert_eq!(a, (0..100).collect::<Vec<_>>());
        assert_eq!(a, b);
    }

    #[test]
    fn create_replaces_an_existing_file_and_leaves_no_temporary() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        fs::write(&path, b"old contents").unwrap();
        let writer = RingWriter::create(&path, 4096).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), HEADER_LEN + 4096);
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ring"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        drop(writer);
    }

    #[test]
    fn invalid_capacities_are_refused() {
        let dir = TempDir::new();
        for capacity in [0, 100, 128, 4097, MAX_CAPACITY * 2] {
            assert!(matches!(
                RingWriter::create(dir.file("ring"), capacity),
                Err(RingError::InvalidCapacity(c)) if c == capacity
            ));
        }
        assert!(matches!(
            RingWriter::create(dir.file("missing/ring"), 4096),
            Err(RingError::Io { .. })
        ));
    }

    /// The bytes of a valid, empty ring of this capacity.
    fn ring_bytes(capacity: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; to_usize(HEADER_LEN + capacity)];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..16]
            .copy_from_slice(&(u64::from(FORMAT_VERSION) | (HEADER_LEN << 32)).to_le_bytes());
        bytes[16..24].copy_from_slice(&capacity.to_le_bytes());
        bytes
    }

    fn set_word(bytes: &mut [u8], index: usize, value: u64) {
        bytes[index * 8..index * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn open_bytes(dir: &TempDir, bytes: &[u8]) -> Result<RingReader, RingError> {
        let path = dir.file("ring");
        let _ = fs::remove_file(&path);
        fs::write(&path, bytes).unwrap();
        RingReader::open(&path)
    }

    #[test]
    fn files_that_are_not_rings_are_refused_with_a_reason() {
        let dir = TempDir::new();
        let not_a_ring = |bytes: &[u8], needle: &str| match open_bytes(&dir, bytes) {
            Err(e @ RingError::NotARing { .. }) => {
                assert!(e.to_string().contains(needle), "{e}");
            }
            other => panic!("expected NotARing ({needle}), got {other:?}"),
        };
        not_a_ring(b"", "shorter than a ring header");
        not_a_ring(&ring_bytes(4096)[..100], "shorter than a ring header");
        not_a_ring(
            &ring_bytes(4096)[..2000],
            "a ring of capacity 4096 has 4352",
        );
        not_a_ring(&[0xAB; 4352], "wrong magic");
        let mut bytes = ring_bytes(4096);
        bytes.extend([0; 8]);
        not_a_ring(&bytes, "4360 bytes");
        let mut bytes = ring_bytes(4096);
        set_word(&mut bytes, field::CAPACITY, 3000);
        not_a_ring(&bytes, "invalid capacity 3000");
        let mut bytes = ring_bytes(4096);
        set_word(
            &mut bytes,
            field::VERSION,
            u64::from(FORMAT_VERSION) | (512 << 32),
        );
        not_a_ring(&bytes, "header length 512");
        let mut bytes = ring_bytes(4096);
        set_word(&mut bytes, field::VERSION, 7 | (HEADER_LEN << 32));
        match open_bytes(&dir, &bytes) {
            Err(e @ RingError::UnsupportedVersion { found: 7, .. }) => {
                assert!(e.to_string().contains("version 7 is not supported"), "{e}");
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert!(matches!(
            RingReader::open(dir.file("nope")),
            Err(RingError::Io { .. })
        ));
        assert!(
            RingReader::open(&dir.0).is_err(),
            "a directory is not a ring"
        );
        open_bytes(&dir, &ring_bytes(4096)).expect("an empty ring opens");
    }

    #[test]
    fn a_corrupted_record_header_is_an_error_then_the_reader_moves_on() {
        let dir = TempDir::new();
        let path = dir.file("ring");
        let mut writer = RingWriter::create(&path, 4096).unwrap();
        for i in 0..10 {
            writer.push(&tagged_payload(i, 24)).unwrap();
        }
        writer.flush();
        // Record 0 is at data offset 0: give it an absurd length through a separate handle.
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = OpenOptions::new().write(true).open(&path).unwrap();
            file.seek(SeekFrom::Start(HEADER_LEN)).unwrap();
            file.write_all(&record_word(1 << 30).to_le_bytes()).unwrap();
        }
        let mut reader = RingReader::open(&path).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            reader.next_record(&mut buf),
            Err(RingError::Corrupt {
                position: 0,
                reason: "record length out of bounds"
            })
        ));
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        writer.push(&tagged_payload(10, 24)).unwrap();
        writer.flush();
        assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Record(10));
        // The writer itself survives reclaiming over the corrupted record.
        for i in 11..1_000 {
            assert_eq!(writer.push(&tagged_payload(i, 24)), Some(i));
        }
        writer.flush();
        let (seqs, lost) = drain(&mut reader, 24);
        assert_eq!(seqs.last(), Some(&999));
        assert_eq!(lost + seqs.len() as u64, 1_000 - 11);
    }

    #[test]
    fn bad_markers_are_errors_not_panics() {
        let dir = TempDir::new();
        let capacity = 1024;
        let cases: [(u64, &str); 4] = [
            (0xDEAD_BEEF_0000_0008, "unknown record tag"),
            (u64::from(TAG_PAD) << 32, "misplaced padding marker"),
            (record_word(600), "record length out of bounds"),
            (
                record_word(u64::from(u32::MAX)),
                "record length out of bounds",
            ),
        ];
        for (word, reason) in cases {
            let mut bytes = ring_bytes(capacity);
            set_word(&mut bytes, field::HEAD, 64);
            set_word(&mut bytes, HEADER_WORDS, word);
            let mut reader = open_bytes(&dir, &bytes).unwrap();
            let mut buf = Vec::new();
            match reader.next_record(&mut buf) {
                Err(RingError::Corrupt {
                    position: 0,
                    reason: r,
                }) => assert_eq!(r, reason),
                other => panic!("expected Corrupt({reason}), got {other:?}"),
            }
            assert_eq!(read(&mut reader, &mut buf), ReadOutcome::Empty);
        }
        // A head far beyond anything written, and a tail past the head.
        let mut bytes = ring_bytes(capacity);
        for (index, value) in [
            (field::HEAD, u64::MAX),
            (field::SNAP_HEAD, u64::MAX),
            (field::TAIL, u64::MAX - 3),
            (field::SNAP_TAIL, u64::MAX - 3),
        ] {
            set_word(&mut bytes, index, value);
        }
        let mut reader = open_bytes(&dir, &bytes).unwrap();
        exercise(&mut reader);
    }

    /// Reads a (possibly garbage) ring for a bounded number of calls; must never panic.
    fn exercise(reader: &mut RingReader) {
        let mut buf = Vec::new();
        let max = reader.capacity() / 2;
        for _ in 0..2_000 {
            match reader.next_record(&mut buf) {
                Ok(ReadOutcome::Record(_)) => assert!(buf.len() as u64 <= max),
                Ok(ReadOutcome::Empty) => break,
                Ok(ReadOutcome::Lost(_)) | Err(RingError::Corrupt { .. }) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        let _ = (
            reader.writer_closed(),
            reader.writer_dropped(),
            reader.writer_records(),
        );
        reader.skip_to_newest();
        let _ = reader.next_record(&mut buf);
    }

    /// A valid ring with some records, as bytes.
    fn written_ring(dir: &TempDir, capacity: u64, records: u64) -> Vec<u8> {
        let path = dir.file("source");
        let mut writer = RingWriter::create(&path, capacity).unwrap();
        for i in 0..records {
            writer.push(&payload(i, 90)).unwrap();
        }
        writer.close();
        fs::read(&path).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let dir = TempDir::new();
            if let Ok(mut reader) = open_bytes(&dir, &bytes) {
                exercise(&mut reader);
            }
        }

        #[test]
        fn a_valid_header_over_random_contents_never_panics_the_reader(
            log2 in 8u32..12,
            body in proptest::collection::vec(any::<u8>(), 0..4096),
            head in prop_oneof![0u64..20_000, any::<u64>()],
            tail in prop_oneof![0u64..20_000, any::<u64>()],
            seqs in (any::<u64>(), any::<u64>(), 0u64..4),
        ) {
            let dir = TempDir::new();
            let capacity = 1u64 << log2;
            let mut bytes = ring_bytes(capacity);
            let data = &mut bytes[to_usize(HEADER_LEN)..];
            let n = body.len().min(data.len());
            data[..n].copy_from_slice(&body[..n]);
            set_word(&mut bytes, field::HEAD, head);
            set_word(&mut bytes, field::TAIL, tail);
            set_word(&mut bytes, field::SNAP_HEAD, head);
            set_word(&mut bytes, field::SNAP_TAIL, tail);
            set_word(&mut bytes, field::NEXT_SEQ, seqs.0);
            set_word(&mut bytes, field::TAIL_SEQ, seqs.1);
            set_word(&mut bytes, field::GENERATION, seqs.2);
            let mut reader = open_bytes(&dir, &bytes).unwrap();
            exercise(&mut reader);
        }

        #[test]
        fn mutations_of_a_real_ring_never_panic_the_reader(
            records in 0u64..200,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        ) {
            let dir = TempDir::new();
            let mut bytes = written_ring(&dir, 2048, records);
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(mut reader) = open_bytes(&dir, &bytes) {
                exercise(&mut reader);
            }
        }
    }
}
