//! [`TraceReader`]: validates a whole trace file, then hands out its contents.
//!
//! [`TraceReader::open`] reads the file into a 16-aligned buffer and checks everything before
//! returning: magic, version, every checksum, every length against the file, zero padding,
//! record framing and counts, rkyv validation (bytecheck) of every archive (trace header, every
//! event and code record, the code table), unique code ids, that every event's code id was
//! defined before it, and that footer, code table and chunks agree. After that, iteration hands
//! out records and archived events in place, without copying or re-validating.
//!
//! A file that ends before its footer (the recorder was killed) is not an error: the reader
//! keeps every chunk that is complete and valid and reports the rest through
//! [`TraceReader::incomplete`]. Only running out of bytes is treated that way (or a tail of zero
//! bytes, which a crash can leave on some file systems); a block that is all there but fails a
//! check is an error.
//!
//! The file is read into memory rather than memory-mapped: the reader promises that what it
//! validated is what it hands out, which a mapping of a file someone else can still modify
//! cannot promise (and a file truncated under a mapping kills the process with `SIGBUS`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::Read;
use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::vec::ArchivedVec;

use super::format::{
    align_up, array_at, checksum, decode_record_header, BlockHeader, FileHeader, Footer,
    BLOCK_HEADER_LEN, CHUNK_KIND, FILE_HEADER_LEN, FIRST_OPAQUE_RECORD, FOOTER_LEN, FORMAT_VERSION,
    MAGIC, RECORD_CODE, RECORD_EVENT, RECORD_HEADER_LEN, RECORD_STATS,
};
use super::TraceHeader;
use super::{
    ArchivedCodeInfo, ArchivedEvent, ArchivedRunStats, ArchivedTraceHeader, CodeInfo, RunStats,
    TraceError,
};

/// Code id to index in the code table. Looked up once per event while validating, so it uses
/// [`IdHasher`] rather than `SipHash` (ids are written by fever, not chosen by an attacker, and
/// a file with colliding ids costs time, never correctness).
pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;
/// A set of code ids; see [`IdMap`].
pub(crate) type IdSet = HashSet<u32, BuildHasherDefault<IdHasher>>;

/// A multiplicative hash for `u32` ids.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// A validated trace file; see the [module docs](self).
pub struct TraceReader {
    /// The whole file. Never mutated after validation: `Record` relies on it.
    data: AlignedVec<16>,
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    code_index: IdMap<usize>,
    /// Payload ranges of the record chunks, in file order.
    chunks: Vec<(usize, usize)>,
    record_count: u64,
    event_count: u64,
    incomplete: Option<Incomplete>,
    stats: Option<RunStats>,
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
        let mut data = AlignedVec::<16>::new();
        data.extend_from_reader(&mut file.by_ref().take(PREAMBLE_LEN as u64))?;
        check_preamble(&data)?;
        if let Ok(len) = usize::try_from(len) {
            // One byte more than the file: reading to the end must not grow (and zero) the buffer.
            data.reserve(len.saturating_sub(data.len()) + 1);
        }
        data.extend_from_reader(&mut file)?;
        Self::from_aligned(data)
    }

    /// Validates a trace held in memory (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TraceError> {
        let mut data = AlignedVec::<16>::with_capacity(bytes.len());
        data.extend_from_slice(bytes);
        Self::from_aligned(data)
    }

    fn from_aligned(data: AlignedVec<16>) -> Result<Self, TraceError> {
        let scan = scan(&data)?;
        Ok(Self {
            header: scan.header,
            code_index: scan.code_index,
            codes: scan.codes,
            chunks: scan.chunks,
            record_count: scan.records,
            event_count: scan.events,
            incomplete: scan.incomplete,
            stats: scan.stats,
            data,
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
        self.data.len() as u64
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

    /// Every record, in file order: events, code announcements and opaque records.
    pub fn records(&self) -> Records<'_> {
        Records {
            data: &self.data,
            chunks: self.chunks.iter(),
            current: &[],
        }
    }

    /// Every event, in file order, archived in place (convert with `Event::from` to own one).
    pub fn events(&self) -> Events<'_> {
        Events {
            records: self.records(),
        }
    }
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("file_len", &self.data.len())
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
}

impl<'a> Record<'a> {
    /// The record kind ([`RECORD_EVENT`], [`RECORD_CODE`], or an opaque kind).
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// The record body, 8-aligned in memory.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The event, if this is an event record.
    pub fn event(&self) -> Option<&'a ArchivedEvent> {
        if self.kind != RECORD_EVENT {
            return None;
        }
        // SAFETY: a `Record` is only made by `Records`, from the buffer of a `TraceReader` that
        // `scan` validated with `rkyv::access::<ArchivedEvent>` on exactly this byte range for
        // every event record. The buffer is owned by the reader, never mutated, and borrowed
        // for 'a, so the bytes are still the validated ones.
        Some(unsafe { rkyv::access_unchecked::<ArchivedEvent>(self.body) })
    }

    /// The code, if this is a code record.
    pub fn code(&self) -> Option<&'a ArchivedCodeInfo> {
        if self.kind != RECORD_CODE {
            return None;
        }
        // SAFETY: as in `event`, with `rkyv::access::<ArchivedCodeInfo>` for code records.
        Some(unsafe { rkyv::access_unchecked::<ArchivedCodeInfo>(self.body) })
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
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    chunks: std::slice::Iter<'a, (usize, usize)>,
    /// Unread part of the current chunk's payload.
    current: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        while self.current.is_empty() {
            let &(start, end) = self.chunks.next()?;
            self.current = self.data.get(start..end)?;
        }
        // The framing was validated by `scan`; a failure here cannot happen and ends iteration.
        let (len, kind) = decode_record_header(*array_at(self.current, 0)?);
        let body_end = RECORD_HEADER_LEN.checked_add(usize::try_from(len).ok()?)?;
        let body = self.current.get(RECORD_HEADER_LEN..body_end)?;
        let next = align_up(body_end)?;
        self.current = self.current.get(next..)?;
        Some(Record { kind, body })
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Iterator over the events of a [`TraceReader`]; see [`TraceReader::events`].
#[derive(Debug, Clone)]
pub struct Events<'a> {
    records: Records<'a>,
}

impl<'a> Iterator for Events<'a> {
    type Item = &'a ArchivedEvent;

    fn next(&mut self) -> Option<&'a ArchivedEvent> {
        self.records.find_map(|r| r.event())
    }
}

impl std::iter::FusedIterator for Events<'_> {}

/// What `scan` found in a file.
struct Scan {
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    code_index: IdMap<usize>,
    chunks: Vec<(usize, usize)>,
    records: u64,
    events: u64,
    incomplete: Option<Incomplete>,
    stats: Option<RunStats>,
}

impl Scan {
    /// The scan stopped at `readable`, the end of the last complete block, for lack of bytes.
    fn incomplete(mut self, readable: usize, file_len: usize) -> Self {
        self.incomplete = Some(Incomplete {
            file_len: file_len as u64,
            readable_len: readable as u64,
            chunks: self.chunks.len() as u64,
        });
        self
    }
}

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
    let version = FileHeader::version(version);
    if version > FORMAT_VERSION {
        return Err(TraceError::NewerVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version != FORMAT_VERSION {
        return Err(TraceError::UnsupportedVersion(version));
    }
    Ok(())
}

/// Validates everything in `data`, a whole trace file.
fn scan(data: &[u8]) -> Result<Scan, TraceError> {
    let len = data.len();
    let truncated = || TraceError::Truncated(len as u64);
    check_preamble(data)?;
    let fixed = FileHeader::decode(array_at(data, 0).ok_or_else(truncated)?)
        .ok_or(TraceError::CorruptFileHeader)?;

    let header_end = FILE_HEADER_LEN
        .checked_add(to_usize(fixed.header_len)?)
        .ok_or_else(too_large)?;
    let header_padded = align_up(header_end).ok_or_else(too_large)?;
    let archived = data
        .get(FILE_HEADER_LEN..header_end)
        .ok_or_else(truncated)?;
    let padding = data.get(header_end..header_padded).ok_or_else(truncated)?;
    if checksum(archived) != fixed.header_xxh3 {
        return Err(TraceError::CorruptTraceHeader("checksum mismatch".into()));
    }
    if !is_zero(padding) {
        return Err(TraceError::CorruptTraceHeader("non-zero padding".into()));
    }
    let header = rkyv::access::<ArchivedTraceHeader, rancor::Error>(archived)
        .map_err(|e| TraceError::CorruptTraceHeader(e.to_string()))?;

    let mut scan = Scan {
        header: TraceHeader::from(header),
        codes: Vec::new(),
        code_index: IdMap::default(),
        chunks: Vec::new(),
        records: 0,
        events: 0,
        incomplete: None,
        stats: None,
    };
    let mut pos = header_padded;
    let mut index: u32 = 0;
    loop {
        let rest = data.get(pos..).unwrap_or_default();
        let Some(raw) = array_at::<BLOCK_HEADER_LEN>(data, pos) else {
            // End of file at a block boundary or inside a block header.
            return Ok(scan.incomplete(pos, len));
        };
        let Some(block) = BlockHeader::decode(raw) else {
            if is_zero(rest) {
                return Ok(scan.incomplete(pos, len));
            }
            return Err(TraceError::CorruptChunkHeader {
                chunk: index,
                offset: pos as u64,
            });
        };
        if block.index != index {
            return Err(TraceError::ChunkOutOfSequence {
                expected: index,
                found: block.index,
                offset: pos as u64,
            });
        }
        let payload_start = pos.checked_add(BLOCK_HEADER_LEN).ok_or_else(too_large)?;
        let payload_end = payload_start
            .checked_add(to_usize(block.payload_len)?)
            .ok_or_else(too_large)?;
        let block_end = align_up(payload_end).ok_or_else(too_large)?;
        let (Some(payload), Some(padding)) = (
            data.get(payload_start..payload_end),
            data.get(payload_end..block_end),
        ) else {
            // End of file inside this block.
            return Ok(scan.incomplete(pos, len));
        };
        if checksum(payload) != block.payload_xxh3 {
            return Err(TraceError::ChunkChecksum {
                chunk: index,
                offset: pos as u64,
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
            scan_chunk(payload, index, block.count, &mut scan)?;
            scan.chunks.push((payload_start, payload_end));
            index = index.checked_add(1).ok_or_else(too_large)?;
            pos = block_end;
            continue;
        }
        // `BlockHeader::decode` knows two kinds: this is the code table.
        if !is_zero(padding) {
            return Err(TraceError::CorruptCodeTable("non-zero padding".into()));
        }
        check_code_table(payload, block.count, &scan.codes)?;
        return match data.get(block_end..).unwrap_or_default().len() {
            n if n < FOOTER_LEN => Ok(scan.incomplete(block_end, len)),
            FOOTER_LEN => {
                let footer = Footer::decode(array_at(data, block_end).ok_or_else(truncated)?)
                    .map_err(|e| TraceError::CorruptFooter(e.into()))?;
                let expected = Footer {
                    code_table_offset: pos as u64,
                    code_table_len: (block_end - pos) as u64,
                    code_table_xxh3: block.payload_xxh3,
                    chunk_count: u64::from(index),
                    record_count: scan.records,
                };
                if footer != expected {
                    return Err(TraceError::CorruptFooter(
                        "does not match the rest of the file".into(),
                    ));
                }
                Ok(scan)
            }
            _ => Err(TraceError::TrailingData(
                block_end.saturating_add(FOOTER_LEN) as u64,
            )),
        };
    }
}

/// Validates the records of chunk `chunk` (its checksum already matched) and adds its codes and
/// counts to `scan`.
fn scan_chunk(payload: &[u8], chunk: u32, count: u32, scan: &mut Scan) -> Result<(), TraceError> {
    let mut at = 0;
    let mut record: u32 = 0;
    while at < payload.len() {
        let corrupt = |detail: String| TraceError::CorruptRecord {
            chunk,
            record,
            detail,
        };
        let frame = array_at(payload, at).ok_or_else(|| corrupt("cut off".into()))?;
        let (body_len, kind) = decode_record_header(*frame);
        let body_start = at.checked_add(RECORD_HEADER_LEN).ok_or_else(too_large)?;
        let body_end = body_start
            .checked_add(to_usize(body_len)?)
            .ok_or_else(too_large)?;
        let next = align_up(body_end).ok_or_else(too_large)?;
        let (Some(body), Some(padding)) = (
            payload.get(body_start..body_end),
            payload.get(body_end..next),
        ) else {
            return Err(corrupt(format!(
                "length {body_len} runs past the end of the chunk"
            )));
        };
        if !is_zero(padding) {
            return Err(corrupt("non-zero padding".into()));
        }
        match kind {
            RECORD_EVENT => {
                let event = rkyv::access::<ArchivedEvent, rancor::Error>(body)
                    .map_err(|e| corrupt(format!("invalid event: {e}")))?;
                if !scan.code_index.contains_key(&event.code()) {
                    return Err(TraceError::UnknownCode {
                        chunk,
                        code: event.code(),
                    });
                }
                scan.events += 1;
            }
            RECORD_CODE => {
                let code = rkyv::access::<ArchivedCodeInfo, rancor::Error>(body)
                    .map_err(|e| corrupt(format!("invalid code: {e}")))?;
                let id = code.id.to_native();
                if scan.code_index.insert(id, scan.codes.len()).is_some() {
                    return Err(TraceError::DuplicateCode(id));
                }
                scan.codes.push(CodeInfo::from(code));
            }
            RECORD_STATS => {
                let stats = rkyv::access::<ArchivedRunStats, rancor::Error>(body)
                    .map_err(|e| corrupt(format!("invalid run statistics: {e}")))?;
                if scan.stats.is_some() {
                    return Err(TraceError::DuplicateStats);
                }
                if let Some(c) = stats
                    .calls
                    .iter()
                    .find(|c| !scan.code_index.contains_key(&c.code.to_native()))
                {
                    return Err(TraceError::UnknownCode {
                        chunk,
                        code: c.code.to_native(),
                    });
                }
                scan.stats = Some(RunStats::from(stats));
            }
            kind if kind >= FIRST_OPAQUE_RECORD => {}
            kind => return Err(corrupt(format!("unknown record kind {kind}"))),
        }
        record = record.checked_add(1).ok_or_else(too_large)?;
        scan.records += 1;
        at = next;
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
fn check_code_table(payload: &[u8], count: u32, codes: &[CodeInfo]) -> Result<(), TraceError> {
    let table = rkyv::access::<ArchivedVec<ArchivedCodeInfo>, rancor::Error>(payload)
        .map_err(|e| TraceError::CorruptCodeTable(e.to_string()))?;
    if table.len() != to_usize(count)? {
        return Err(TraceError::CorruptCodeTable(format!(
            "the header says {count} entries, the table holds {}",
            table.len()
        )));
    }
    if table.len() != codes.len() || table.iter().zip(codes).any(|(a, c)| a != c) {
        return Err(TraceError::CorruptCodeTable(
            "does not match the codes announced in the chunks".into(),
        ));
    }
    Ok(())
}
