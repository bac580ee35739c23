//! [`TraceReader`]: validates a whole trace file, then hands out its contents, chunk by chunk.
//!
//! [`TraceReader::open`] reads the file and checks everything before returning: magic, version,
//! every checksum, every length against the file, zero padding, that every chunk decompresses
//! to exactly the length its header says, every record of every chunk (framing, kinds, field
//! ranges, UTF-8 of names, that every event's code id and every snapshot it refers to were
//! defined before it, unique code ids) and the record counts, rkyv validation (bytecheck) of the
//! trace header, and that footer, code table and chunks agree.
//!
//! Each chunk is read and decompressed once, by validation (on a second thread, while the next
//! block is read and checked; chunks are still scanned, and errors named, in file order), which
//! keeps the decompressed record streams (`store.rs`: in memory for a small trace, else in a
//! temporary file whose pages are handed back as iteration goes, so memory stays bounded
//! however long the trace). Iteration
//! ([`TraceReader::records`], [`TraceReader::events`]) decodes those streams again, which is
//! cheap, and hands out events, snapshots and record bodies borrowed from them: what is handed
//! out is always what was validated, even if the file changes on disk meanwhile.
//!
//! A file that ends before its footer (the recorder was killed) is not an error: the reader
//! keeps every chunk that is complete and valid and reports the rest through
//! [`TraceReader::incomplete`]. Only running out of bytes is treated that way (or a tail of zero
//! bytes, which a crash can leave on some file systems); a block that is all there but fails a
//! check is an error.
//!
//! The file is read, never memory-mapped: a file truncated under a mapping kills the process
//! with `SIGBUS`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::compress::decompress_into;
use super::format::{
    align_up, array_at, checksum, BlockHeader, FileHeader, Footer, BLOCK_HEADER_LEN, CHUNK_KIND,
    FILE_HEADER_LEN, FIRST_OPAQUE_RECORD, FOOTER_LEN, FORMAT_VERSION, MAGIC, RECORD_CODE,
    RECORD_EVENT, RECORD_STATS,
};
use super::stream::{decode_code, decode_stats, Decoded, Decoder, Snap};
use super::{ArchivedTraceHeader, CodeInfo, EventRef, RunStats, TraceError, TraceHeader};

use super::ids::IdMap;
use super::store::{Range, Store};

/// A validated trace file; see the [module docs](self).
pub struct TraceReader {
    /// The chunks' record streams, decompressed.
    store: Store,
    /// Where each numbered snapshot is in the store, by number.
    numbered: Vec<Range>,
    file_len: u64,
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    code_index: IdMap<usize>,
    /// The record chunks, in file order.
    chunks: Vec<Chunk>,
    record_count: u64,
    event_count: u64,
    incomplete: Option<Incomplete>,
    stats: Option<RunStats>,
    /// The earliest and the latest timestamp of the events.
    time_range: Option<(u64, u64)>,
}

/// Where the bytes of the trace are while it is validated.
enum Source<'b> {
    /// The file opened (read with `pread`: no seek, no lock).
    File(File),
    /// A trace held in memory.
    Memory(&'b [u8]),
}

impl Source<'_> {
    /// Fills `buf` with the bytes at `offset`, which the caller knows are within the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Source::File(file) => file.read_exact_at(buf, offset),
            Source::Memory(bytes) => {
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|start| Some(start..start.checked_add(buf.len())?))
                    .and_then(|range| bytes.get(range))
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(range);
                Ok(())
            }
        }
    }
}

/// A record chunk, validated.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    /// Its record stream in the store.
    stream: Range,
    /// Snapshots the trace numbered before this chunk.
    defined_before: usize,
}

/// How much of a trace whose recording did not finish could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incomplete {
    /// Length of the file in bytes.
    pub file_len: u64,
    /// Bytes from the start of the file up to the end of the last complete block.
    pub readable_len: u64,
    /// Complete record chunks read.
    pub chunks: u64,
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "incomplete trace (the recording did not finish): {} chunks read, the last {} of {} \
             bytes are missing or cut off",
            self.chunks,
            self.file_len.saturating_sub(self.readable_len),
            self.file_len
        )
    }
}

impl TraceReader {
    /// Reads and validates the trace file at `path`.
    ///
    /// The first 12 bytes are checked before the rest is read, so a foreign file (however
    /// large, or endless like `/dev/zero`) is rejected without reading it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut preamble = Vec::new();
        file.by_ref()
            .take(PREAMBLE_LEN as u64)
            .read_to_end(&mut preamble)?;
        check_preamble(&preamble)?;
        Self::validate(&Source::File(file), len)
    }

    /// Validates a trace held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TraceError> {
        Self::validate(&Source::Memory(bytes), bytes.len() as u64)
    }

    fn validate(source: &Source, len: u64) -> Result<Self, TraceError> {
        let mut scan = scan(source, len)?;
        scan.store.finish()?;
        Ok(Self {
            store: scan.store,
            numbered: scan.numbered,
            file_len: len,
            header: scan.header,
            code_index: scan.code_index,
            codes: scan.codes,
            chunks: scan.chunks,
            record_count: scan.records,
            event_count: scan.events,
            incomplete: scan.incomplete,
            stats: scan.stats,
            time_range: scan.time_range,
        })
    }

    /// The trace header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Every code of the trace, in the order they were added.
    pub fn codes(&self) -> &[CodeInfo] {
        &self.codes
    }

    /// The code with this id.
    pub fn code(&self, id: u32) -> Option<&CodeInfo> {
        self.codes.get(*self.code_index.get(&id)?)
    }

    /// The run statistics (exact call counts), absent when the recording was cut short.
    pub fn stats(&self) -> Option<&RunStats> {
        self.stats.as_ref()
    }

    /// `true` if the file ends with a valid code table and footer.
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_none()
    }

    /// For a trace whose recording did not finish, how much of it was read.
    pub fn incomplete(&self) -> Option<&Incomplete> {
        self.incomplete.as_ref()
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Number of record chunks read.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Number of records (of every kind) read.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// Number of event records read.
    pub fn event_count(&self) -> u64 {
        self.event_count
    }

    /// The earliest and the latest timestamp of the events, if there are any.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.time_range
    }

    /// Every record, in file order: events, code announcements, run statistics and opaque
    /// records.
    pub fn records(&self) -> Records<'_> {
        Records {
            reader: self,
            next_chunk: 0,
            decoder: Decoder::new(&[], 0),
            codes: 0,
        }
    }

    /// Every event, in file order (convert with `Event::from` to own one).
    pub fn events(&self) -> Events<'_> {
        Events {
            records: self.records(),
        }
    }

    /// Each chunk's record stream, decompressed, in file order. `benches/trace.rs` compares
    /// compressors on it.
    pub fn record_streams(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks.iter().map(|chunk| self.store.get(chunk.stream))
    }
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("file_len", &self.file_len)
            .field("header", &self.header)
            .field("codes", &self.codes.len())
            .field("chunks", &self.chunks.len())
            .field("records", &self.record_count)
            .field("incomplete", &self.incomplete)
            .finish_non_exhaustive()
    }
}

/// One record of a validated trace.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    kind: u32,
    body: &'a [u8],
    event: Option<EventRef<'a>>,
    code: Option<&'a CodeInfo>,
}

impl<'a> Record<'a> {
    /// The record kind ([`RECORD_EVENT`], [`RECORD_CODE`], [`RECORD_STATS`], or an opaque kind).
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// The body of a code, run-statistics or opaque record as stored (empty for events).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The event, if this is an event record.
    pub fn event(&self) -> Option<EventRef<'a>> {
        self.event
    }

    /// The code, if this is a code record.
    pub fn code(&self) -> Option<&'a CodeInfo> {
        self.code
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("len", &self.body.len())
            .finish()
    }
}

/// Iterator over the records of a [`TraceReader`]; see [`TraceReader::records`].
pub struct Records<'a> {
    reader: &'a TraceReader,
    /// The chunk to decode when the current one is used up.
    next_chunk: usize,
    /// Over the current chunk's record stream.
    decoder: Decoder<'a>,
    /// Code records seen so far: the next one is `reader.codes[codes]`.
    codes: usize,
}

impl fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("next_chunk", &self.next_chunk)
            .field("codes_seen", &self.codes)
            .finish_non_exhaustive()
    }
}

impl Records<'_> {
    fn stop(&mut self) {
        self.next_chunk = self.reader.chunks.len();
        self.decoder = Decoder::new(&[], 0);
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let reader = self.reader;
        while self.decoder.is_done() {
            let chunk = reader.chunks.get(self.next_chunk)?;
            self.next_chunk += 1;
            reader.store.release();
            let stream = reader.store.get(chunk.stream);
            self.decoder = Decoder::new(stream, chunk.defined_before);
            self.decoder.start_chunk(0, stream.len());
        }
        // Everything was validated by `scan`; a failure here cannot happen and ends iteration.
        let record = match self.decoder.next() {
            Ok(Decoded::Event { event, snap }) => {
                let snapshot = match snap {
                    Snap::None => None,
                    Snap::Inline(bytes) | Snap::Define(bytes, _) => Some(bytes),
                    Snap::Ref(n) => reader.numbered.get(n).map(|range| reader.store.get(*range)),
                };
                let event = EventRef { snapshot, ..event };
                let had = !matches!(snap, Snap::None);
                (had == snapshot.is_some()).then_some(Record {
                    kind: RECORD_EVENT,
                    body: &[],
                    event: Some(event),
                    code: None,
                })
            }
            Ok(Decoded::Other { kind, body }) => {
                let code = (kind == RECORD_CODE).then(|| {
                    self.codes += 1;
                    reader.codes.get(self.codes - 1)
                });
                Some(Record {
                    kind,
                    body,
                    event: None,
                    code: code.flatten(),
                })
            }
            Err(_) => None,
        };
        if record.is_none() {
            self.stop();
        }
        record
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Iterator over the events of a [`TraceReader`]; see [`TraceReader::events`].
#[derive(Debug)]
pub struct Events<'a> {
    records: Records<'a>,
}

impl<'a> Iterator for Events<'a> {
    type Item = EventRef<'a>;

    fn next(&mut self) -> Option<EventRef<'a>> {
        self.records.find_map(|r| r.event())
    }
}

impl std::iter::FusedIterator for Events<'_> {}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn to_usize(n: u32) -> Result<usize, TraceError> {
    usize::try_from(n).map_err(|_| too_large())
}

/// Lengths that overflow `usize` (only possible on 32-bit platforms, or on absurd lengths).
fn too_large() -> TraceError {
    TraceError::TooLarge
}

/// Magic and version: what is checked before anything else, even before reading the file.
const PREAMBLE_LEN: usize = MAGIC.len() + 4;

/// Checks as much of the magic and version as `data` holds: `Ok` means "may be a trace this
/// fever reads".
fn check_preamble(data: &[u8]) -> Result<(), TraceError> {
    if data.is_empty() {
        return Err(TraceError::Empty);
    }
    let magic_len = data.len().min(MAGIC.len());
    if data.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(TraceError::BadMagic);
    }
    let Some(&version) = array_at(data, MAGIC.len()) else {
        return Ok(());
    };
    match FileHeader::version(version) {
        FORMAT_VERSION => Ok(()),
        found if found > FORMAT_VERSION => Err(TraceError::NewerVersion {
            found,
            supported: FORMAT_VERSION,
        }),
        0 => Err(TraceError::UnsupportedVersion(0)),
        found => Err(TraceError::OlderVersion {
            found,
            supported: FORMAT_VERSION,
        }),
    }
}

/// What `scan` found in a file.
struct Scan {
    store: Store,
    numbered: Vec<Range>,
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    code_index: IdMap<usize>,
    chunks: Vec<Chunk>,
    records: u64,
    events: u64,
    incomplete: Option<Incomplete>,
    stats: Option<RunStats>,
    time_range: Option<(u64, u64)>,
}

impl Scan {
    /// The scan stopped at `readable`, the end of the last complete block, for lack of bytes.
    fn incomplete(mut self, readable: u64, file_len: u64) -> Self {
        self.incomplete = Some(Incomplete {
            file_len,
            readable_len: readable,
            chunks: self.chunks.len() as u64,
        });
        self
    }
}

/// `len` bytes at `offset` of `source`, or `None` when the file (of `file_len` bytes) ends
/// first.
fn read_exact(
    source: &Source,
    offset: u64,
    len: usize,
    file_len: u64,
    buf: &mut Vec<u8>,
) -> Result<bool, TraceError> {
    let end = offset.checked_add(len as u64).ok_or_else(too_large)?;
    if end > file_len {
        return Ok(false);
    }
    buf.resize(len, 0);
    source.read_at(offset, buf)?;
    Ok(true)
}

/// Whether the bytes of `source` from `offset` to `file_len` are all zero.
fn zero_from(source: &Source, offset: u64, file_len: u64) -> Result<bool, TraceError> {
    let mut buf = Vec::new();
    let mut at = offset;
    while at < file_len {
        let n = usize::try_from((file_len - at).min(1 << 20)).map_err(|_| too_large())?;
        read_exact(source, at, n, file_len, &mut buf)?;
        if !is_zero(&buf) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Validates everything in `source`, a whole trace file of `len` bytes.
fn scan(source: &Source, len: u64) -> Result<Scan, TraceError> {
    let truncated = || TraceError::Truncated(len);
    let mut buf = Vec::new();
    let head = usize::try_from(len.min(FILE_HEADER_LEN as u64)).map_err(|_| too_large())?;
    read_exact(source, 0, head, len, &mut buf)?;
    check_preamble(&buf)?;
    let fixed = FileHeader::decode(array_at(&buf, 0).ok_or_else(truncated)?)
        .ok_or(TraceError::CorruptFileHeader)?;

    let header_len = to_usize(fixed.header_len)?;
    let header_end = FILE_HEADER_LEN
        .checked_add(header_len)
        .ok_or_else(too_large)?;
    let header_padded = align_up(header_end).ok_or_else(too_large)?;
    if !read_exact(
        source,
        FILE_HEADER_LEN as u64,
        header_padded - FILE_HEADER_LEN,
        len,
        &mut buf,
    )? {
        return Err(truncated());
    }
    let (archived_bytes, padding) = buf.split_at(header_len);
    if checksum(archived_bytes) != fixed.header_xxh3 {
        return Err(TraceError::CorruptTraceHeader("checksum mismatch".into()));
    }
    if !is_zero(padding) {
        return Err(TraceError::CorruptTraceHeader("non-zero padding".into()));
    }
    // rkyv reads the archive in place: it needs the alignment the file gives it.
    let mut archived = AlignedVec::<16>::with_capacity(header_len);
    archived.extend_from_slice(archived_bytes);
    let header = rkyv::access::<ArchivedTraceHeader, rancor::Error>(&archived)
        .map_err(|e| TraceError::CorruptTraceHeader(e.to_string()))?;

    let mut scan = Scan {
        store: Store::default(),
        numbered: Vec::new(),
        header: TraceHeader::from(header),
        codes: Vec::new(),
        code_index: IdMap::default(),
        chunks: Vec::new(),
        records: 0,
        events: 0,
        incomplete: None,
        stats: None,
        time_range: None,
    };
    let mut inflater = Inflater::default();
    // Each chunk decompresses on a thread of its own while this one reads and checks the next
    // block; the chunk is scanned right after, in file order, so errors come in the same order.
    let end = std::thread::scope(|threads| {
        let (jobs, todo) = mpsc::sync_channel::<Job>(1);
        let (finished, done) = mpsc::sync_channel::<Inflated>(1);
        threads.spawn(move || {
            for job in todo {
                let mut raw = Vec::new();
                let result =
                    decompress_into(job.codec, &job.payload, job.raw_len, &mut raw).map(|()| raw);
                if finished.send((job.index, job.count, result)).is_err() {
                    break;
                }
            }
        });
        inflater.channels = Some((jobs, done));
        let end = blocks(source, len, header_padded as u64, &mut scan, &mut inflater);
        // A chunk still decompressing comes before the block that ended the walk.
        let pending = inflater.finish(&mut scan);
        inflater.channels = None;
        pending.and(end)
    })?;
    Ok(match end {
        End::Complete => scan,
        End::Incomplete(readable) => scan.incomplete(readable, len),
    })
}

/// How the walk over the blocks ended.
enum End {
    /// At a valid footer.
    Complete,
    /// For lack of bytes, after the last complete block, which ends here.
    Incomplete(u64),
}

/// A chunk's payload to decompress: its index, record count, codec, payload and length once
/// decompressed.
struct Job {
    index: u32,
    count: u32,
    codec: super::format::Codec,
    payload: Vec<u8>,
    raw_len: usize,
}

/// A chunk decompressed (or why it did not): its index, record count and record stream.
type Inflated = (u32, u32, Result<Vec<u8>, String>);

/// The chunks handed to the decompressing thread, at most one of them not scanned yet.
#[derive(Default)]
struct Inflater {
    channels: Option<(mpsc::SyncSender<Job>, mpsc::Receiver<Inflated>)>,
    pending: bool,
}

impl Inflater {
    /// Hands `job` over, then scans the chunk handed over before it, if any.
    fn push(&mut self, job: Job, scan: &mut Scan) -> Result<(), TraceError> {
        let (jobs, _) = self.channels.as_ref().ok_or_else(worker_gone)?;
        jobs.send(job).map_err(|_| worker_gone())?;
        let previous = std::mem::replace(&mut self.pending, true);
        if previous {
            if let Err(err) = self.scan_next(scan) {
                // The error of the earlier chunk is the one to report: drop `job`'s.
                self.pending = false;
                return Err(err);
            }
        }
        Ok(())
    }

    /// Scans the chunk handed over last, if it has not been.
    fn finish(&mut self, scan: &mut Scan) -> Result<(), TraceError> {
        if std::mem::take(&mut self.pending) {
            self.scan_next(scan)?;
        }
        Ok(())
    }

    fn scan_next(&mut self, scan: &mut Scan) -> Result<(), TraceError> {
        let (_, done) = self.channels.as_ref().ok_or_else(worker_gone)?;
        let (index, count, raw) = done.recv().map_err(|_| worker_gone())?;
        let raw = raw.map_err(|detail| TraceError::CorruptRecord {
            chunk: index,
            record: 0,
            detail,
        })?;
        let defined_before = scan.numbered.len();
        scan_chunk(&raw, index, count, scan)?;
        let stream = scan.store.add(&raw);
        scan.chunks.push(Chunk {
            stream,
            defined_before,
        });
        Ok(())
    }
}

/// The decompressing thread stopped (it panicked): reading cannot go on.
fn worker_gone() -> TraceError {
    TraceError::Io(io::Error::other(
        "the thread decompressing the chunks stopped",
    ))
}

/// Walks the blocks from `pos` (the first after the trace header) to the end of the file,
/// checking each and handing the chunks to `inflater`.
fn blocks(
    source: &Source,
    len: u64,
    mut pos: u64,
    scan: &mut Scan,
    inflater: &mut Inflater,
) -> Result<End, TraceError> {
    let truncated = || TraceError::Truncated(len);
    let mut buf = Vec::new();
    let mut index: u32 = 0;
    loop {
        if !read_exact(source, pos, BLOCK_HEADER_LEN, len, &mut buf)? {
            // End of file at a block boundary or inside a block header.
            return Ok(End::Incomplete(pos));
        }
        let Some(block) = BlockHeader::decode(array_at(&buf, 0).ok_or_else(truncated)?) else {
            if zero_from(source, pos, len)? {
                return Ok(End::Incomplete(pos));
            }
            return Err(TraceError::CorruptChunkHeader {
                chunk: index,
                offset: pos,
            });
        };
        if block.index != index {
            return Err(TraceError::ChunkOutOfSequence {
                expected: index,
                found: block.index,
                offset: pos,
            });
        }
        let payload_len = to_usize(block.payload_len)?;
        let padded = align_up(payload_len).ok_or_else(too_large)?;
        let payload_start = pos + BLOCK_HEADER_LEN as u64;
        let block_end = payload_start
            .checked_add(padded as u64)
            .ok_or_else(too_large)?;
        if !read_exact(source, payload_start, padded, len, &mut buf)? {
            // End of file inside this block.
            return Ok(End::Incomplete(pos));
        }
        let (payload, padding) = buf.split_at(payload_len);
        if checksum(payload) != block.payload_xxh3 {
            return Err(TraceError::ChunkChecksum {
                chunk: index,
                offset: pos,
            });
        }
        if block.kind == CHUNK_KIND {
            if !is_zero(padding) {
                return Err(TraceError::CorruptRecord {
                    chunk: index,
                    record: block.count,
                    detail: "non-zero padding after the chunk".into(),
                });
            }
            let mut payload = std::mem::take(&mut buf);
            payload.truncate(payload_len);
            let job = Job {
                index,
                count: block.count,
                codec: block.codec,
                payload,
                raw_len: to_usize(block.raw_len)?,
            };
            inflater.push(job, scan)?;
            index = index.checked_add(1).ok_or_else(too_large)?;
            pos = block_end;
            continue;
        }
        // `BlockHeader::decode` knows two kinds: this is the code table, which is checked
        // against every chunk's codes.
        inflater.finish(scan)?;
        if !is_zero(padding) {
            return Err(TraceError::CorruptCodeTable("non-zero padding".into()));
        }
        check_code_table(&block, payload, &scan.codes)?;
        return match len.saturating_sub(block_end) {
            n if n < FOOTER_LEN as u64 => Ok(End::Incomplete(block_end)),
            n if n == FOOTER_LEN as u64 => {
                read_exact(source, block_end, FOOTER_LEN, len, &mut buf)?;
                let footer = Footer::decode(array_at(&buf, 0).ok_or_else(truncated)?)
                    .map_err(|e| TraceError::CorruptFooter(e.into()))?;
                let expected = Footer {
                    code_table_offset: pos,
                    code_table_len: block_end - pos,
                    code_table_xxh3: block.payload_xxh3,
                    chunk_count: u64::from(index),
                    record_count: scan.records,
                };
                if footer != expected {
                    return Err(TraceError::CorruptFooter(
                        "does not match the rest of the file".into(),
                    ));
                }
                Ok(End::Complete)
            }
            _ => Err(TraceError::TrailingData(
                block_end.saturating_add(FOOTER_LEN as u64),
            )),
        };
    }
}

/// Validates the records of chunk `chunk`, decompressed in `raw` (which goes into the store
/// next), and adds its codes, where its numbered snapshots will be, and its counts to `scan`.
fn scan_chunk(raw: &[u8], chunk: u32, count: u32, scan: &mut Scan) -> Result<(), TraceError> {
    let base = scan.store.len();
    let mut decoder = Decoder::new(raw, scan.numbered.len());
    decoder.start_chunk(0, raw.len());
    let mut record: u32 = 0;
    while !decoder.is_done() {
        let corrupt = |detail: String| TraceError::CorruptRecord {
            chunk,
            record,
            detail,
        };
        let decoded = decoder.next().map_err(corrupt)?;
        match decoded {
            Decoded::Event { event, snap } => {
                if !scan.code_index.contains_key(&event.code()) {
                    return Err(TraceError::UnknownCode {
                        chunk,
                        code: event.code(),
                    });
                }
                if let Snap::Define(bytes, _) = snap {
                    // A snapshot is the last field of its record.
                    let end = base + decoder.position();
                    scan.numbered.push((end - bytes.len(), end));
                }
                let t = event.t_ns();
                scan.time_range = Some(
                    scan.time_range
                        .map_or((t, t), |(first, last)| (first.min(t), last.max(t))),
                );
                scan.events += 1;
            }
            Decoded::Other {
                kind: RECORD_CODE,
                body,
            } => {
                let code = decode_code(body).map_err(|e| corrupt(format!("invalid code: {e}")))?;
                if scan.code_index.insert(code.id, scan.codes.len()).is_some() {
                    return Err(TraceError::DuplicateCode(code.id));
                }
                scan.codes.push(code);
            }
            Decoded::Other {
                kind: RECORD_STATS,
                body,
            } => {
                let stats = decode_stats(body)
                    .map_err(|e| corrupt(format!("invalid run statistics: {e}")))?;
                if scan.stats.is_some() {
                    return Err(TraceError::DuplicateStats);
                }
                if let Some(c) = stats
                    .calls
                    .iter()
                    .find(|c| !scan.code_index.contains_key(&c.code))
                {
                    return Err(TraceError::UnknownCode {
                        chunk,
                        code: c.code,
                    });
                }
                scan.stats = Some(stats);
            }
            Decoded::Other { kind, .. } if kind >= FIRST_OPAQUE_RECORD => {}
            Decoded::Other { kind, .. } => {
                return Err(corrupt(format!("unknown record kind {kind}")));
            }
        }
        record = record.checked_add(1).ok_or_else(too_large)?;
        scan.records += 1;
    }
    if record != count {
        return Err(TraceError::CorruptRecord {
            chunk,
            record,
            detail: format!("the chunk header says {count} records, the chunk holds {record}"),
        });
    }
    Ok(())
}

/// Validates the code table (its checksum already matched) against the codes the chunks
/// announced.
fn check_code_table(
    block: &BlockHeader,
    payload: &[u8],
    codes: &[CodeInfo],
) -> Result<(), TraceError> {
    let corrupt = TraceError::CorruptCodeTable;
    let mut raw = Vec::new();
    decompress_into(block.codec, payload, to_usize(block.raw_len)?, &mut raw).map_err(corrupt)?;
    let mut decoder = Decoder::new(&raw, 0);
    decoder.start_chunk(0, raw.len());
    let mut entries = 0usize;
    while !decoder.is_done() {
        let entry = match decoder.next().map_err(corrupt)? {
            Decoded::Other {
                kind: RECORD_CODE,
                body,
            } => decode_code(body).map_err(corrupt)?,
            _ => return Err(corrupt("holds something other than codes".into())),
        };
        if codes.get(entries) != Some(&entry) {
            return Err(corrupt(
                "does not match the codes announced in the chunks".into(),
            ));
        }
        entries += 1;
    }
    if entries != to_usize(block.count)? {
        return Err(corrupt(format!(
            "the header says {} entries, the table holds {entries}",
            block.count
        )));
    }
    if entries != codes.len() {
        return Err(corrupt(
            "does not match the codes announced in the chunks".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TraceReader;
    use crate::trace::{CodeInfo, Event, TraceError, TraceHeader, TraceWriter};

    /// A trace of `n` calls with distinct, repeated and short snapshots, in small chunks.
    fn varied_trace(n: u64) -> (Vec<u8>, Vec<Event>) {
        let mut w = TraceWriter::with_chunk_size(Vec::new(), &TraceHeader::default(), 512).unwrap();
        w.add_code(CodeInfo {
            id: 1,
            module: "m".into(),
            qualname: "f".into(),
            file: "m.py".into(),
            first_line: 1,
            code_hash: 0,
        })
        .unwrap();
        let mut events = Vec::new();
        for i in 0..n {
            let distinct = format!("distinct snapshot number {i}").into_bytes();
            let repeated = b"the same snapshot every time".to_vec();
            events.push(Event::Call {
                thread: 1,
                code: 1,
                t_ns: i * 10,
                args: Some(if i % 3 == 0 { repeated } else { distinct }),
            });
            events.push(Event::Return {
                thread: 1,
                code: 1,
                flags: 0,
                t_ns: i * 10 + 5,
                value: Some(vec![
                    u8::try_from(i % 5).unwrap();
                    usize::try_from(i % 7).unwrap()
                ]),
            });
        }
        for event in &events {
            w.write_event(event).unwrap();
        }
        (w.finish().unwrap(), events)
    }

    #[test]
    fn streams_beyond_the_memory_budget_read_back_the_same_from_the_file() {
        // Unit tests keep 4 KiB in memory: this trace's streams go to the temporary file.
        let (bytes, events) = varied_trace(2000);
        let path = std::env::temp_dir().join(format!("fever-spill-{}.trace", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        for reader in [
            TraceReader::open(&path).unwrap(),
            TraceReader::from_bytes(&bytes).unwrap(),
        ] {
            assert!(reader.chunk_count() > 10);
            for _ in 0..2 {
                let read: Vec<Event> = reader.events().map(Event::from).collect();
                assert_eq!(read, events);
            }
            assert_eq!(reader.time_range(), Some((0, 19_995)));
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// The file offsets of the record chunks' block headers, in order.
    fn chunk_offsets(bytes: &[u8]) -> Vec<usize> {
        let mut offsets = Vec::new();
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(4).position(|w| w == b"FVCH") {
            let offset = at + found;
            if offset % 8 == 0 {
                offsets.push(offset);
            }
            at = offset + 4;
        }
        offsets
    }

    #[test]
    fn chunks_decompressed_ahead_are_reported_in_file_order() {
        let (bytes, _) = varied_trace(2000);
        let offsets = chunk_offsets(&bytes);
        assert!(offsets.len() > 10);
        // A chunk whose stream is not what its header says fails, even when the next block
        // (read while it decompresses) is broken too: the first one is named.
        let mut two_bad = bytes.clone();
        for &offset in &offsets[3..5] {
            // The decompressed length, with the header's checksum made right again.
            let header = &mut two_bad[offset..offset + 40];
            header[16] ^= 1;
            let sum = xxhash_rust::xxh3::xxh3_64(&header[..32]);
            header[32..].copy_from_slice(&sum.to_le_bytes());
        }
        let err = TraceReader::from_bytes(&two_bad).unwrap_err();
        assert!(
            matches!(
                err,
                TraceError::CorruptRecord {
                    chunk: 3,
                    record: 0,
                    ..
                }
            ),
            "{err}"
        );
        // A payload whose checksum fails after a good chunk: that block is named.
        let mut bad_payload = bytes.clone();
        bad_payload[offsets[6] + 48] ^= 0xff;
        assert_eq!(
            TraceReader::from_bytes(&bad_payload)
                .unwrap_err()
                .to_string(),
            TraceError::ChunkChecksum {
                chunk: 6,
                offset: offsets[6] as u64
            }
            .to_string()
        );
        // Cut inside chunk 7: the 7 chunks before it are read, and nothing else.
        let cut = TraceReader::from_bytes(&bytes[..offsets[7] + 60]).unwrap();
        assert_eq!(cut.chunk_count(), 7);
        assert_eq!(cut.incomplete().unwrap().readable_len, offsets[7] as u64);
        let whole = TraceReader::from_bytes(&bytes).unwrap();
        let events = whole.events().count();
        assert!(cut.events().count() < events);
        assert!(cut
            .events()
            .map(Event::from)
            .eq(whole.events().map(Event::from).take(cut.events().count())));
    }

    #[test]
    fn a_file_changed_on_disk_after_validation_reads_as_validated() {
        let (mut bytes, events) = varied_trace(500);
        let path = std::env::temp_dir().join(format!("fever-changed-{}.trace", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let reader = TraceReader::open(&path).unwrap();
        // Overwrite a byte in the middle of the file, in place: each chunk was read once.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let read: Vec<Event> = reader.events().map(Event::from).collect();
        assert_eq!(read, events);
        assert!(TraceReader::open(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
