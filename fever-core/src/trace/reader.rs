//! [`TraceReader`]: validates a whole trace file, then hands out its contents.
//!
//! [`TraceReader::open`] reads the file and checks everything before returning: magic, version,
//! every checksum, every length against the file, zero padding, that every chunk decompresses
//! to exactly the length its header says, every record of every chunk (framing, kinds, field
//! ranges, UTF-8 of names, that every event's code id and every snapshot it refers to were
//! defined before it, unique code ids) and the record counts, rkyv validation (bytecheck) of the
//! trace header, and that footer, code table and chunks agree. It keeps the decompressed chunks
//! (events take a few bytes each there, and each distinct snapshot is stored once); iteration
//! decodes events from them again without re-validating, and hands out snapshots borrowed from
//! them.
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

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::compress::decompress_into;
use super::format::{
    align_up, array_at, checksum, BlockHeader, FileHeader, Footer, BLOCK_HEADER_LEN, CHUNK_KIND,
    FILE_HEADER_LEN, FIRST_OPAQUE_RECORD, FOOTER_LEN, FORMAT_VERSION, MAGIC, RECORD_CODE,
    RECORD_EVENT, RECORD_STATS,
};
use super::stream::{decode_code, decode_stats, Decoded, Decoder};
use super::{ArchivedTraceHeader, CodeInfo, EventRef, RunStats, TraceError, TraceHeader};

use super::ids::IdMap;

/// A validated trace file; see the [module docs](self).
pub struct TraceReader {
    /// Every chunk's record stream, decompressed, one after the other. Never mutated after
    /// validation.
    decoded: Vec<u8>,
    /// Byte ranges in `decoded` of the snapshots events define, by number.
    snapshots: Vec<(usize, usize)>,
    file_len: u64,
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    code_index: IdMap<usize>,
    /// Ranges of the record chunks in `decoded`, in file order.
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
        Self::from_aligned(&data)
    }

    /// Validates a trace held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TraceError> {
        let mut data = AlignedVec::<16>::with_capacity(bytes.len());
        data.extend_from_slice(bytes);
        Self::from_aligned(&data)
    }

    fn from_aligned(data: &[u8]) -> Result<Self, TraceError> {
        let scan = scan(data)?;
        Ok(Self {
            decoded: scan.decoded,
            snapshots: scan.snapshots,
            file_len: data.len() as u64,
            header: scan.header,
            code_index: scan.code_index,
            codes: scan.codes,
            chunks: scan.chunks,
            record_count: scan.records,
            event_count: scan.events,
            incomplete: scan.incomplete,
            stats: scan.stats,
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

    /// Every record, in file order: events, code announcements, run statistics and opaque
    /// records.
    pub fn records(&self) -> Records<'_> {
        Records {
            reader: self,
            decoder: Decoder::new(&self.decoded, 0),
            chunks: self.chunks.iter(),
            codes: 0,
        }
    }

    /// Every event, in file order (convert with `Event::from` to own one).
    pub fn events(&self) -> Events<'_> {
        Events {
            records: self.records(),
        }
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
#[derive(Debug, Clone)]
pub struct Records<'a> {
    reader: &'a TraceReader,
    decoder: Decoder<'a>,
    chunks: std::slice::Iter<'a, (usize, usize)>,
    /// Code records seen so far: the next one is `reader.codes[codes]`.
    codes: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        while self.decoder.is_done() {
            let &(start, end) = self.chunks.next()?;
            self.decoder.start_chunk(start, end);
        }
        // Everything was validated by `scan`; a failure here cannot happen and ends iteration.
        let Ok(decoded) = self.decoder.next(&self.reader.snapshots) else {
            self.chunks = [].iter();
            self.decoder = Decoder::new(&[], 0);
            return None;
        };
        Some(match decoded {
            Decoded::Event { event, .. } => Record {
                kind: RECORD_EVENT,
                body: &[],
                event: Some(event),
                code: None,
            },
            Decoded::Other { kind, body } => {
                let code = (kind == RECORD_CODE).then(|| {
                    self.codes += 1;
                    self.reader.codes.get(self.codes - 1)
                });
                Record {
                    kind,
                    body,
                    event: None,
                    code: code.flatten(),
                }
            }
        })
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Iterator over the events of a [`TraceReader`]; see [`TraceReader::events`].
#[derive(Debug, Clone)]
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

/// What `scan` found in a file.
struct Scan {
    decoded: Vec<u8>,
    snapshots: Vec<(usize, usize)>,
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
        decoded: Vec::new(),
        snapshots: Vec::new(),
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
            let start = scan.decoded.len();
            decompress_into(
                block.codec,
                payload,
                to_usize(block.raw_len)?,
                &mut scan.decoded,
            )
            .map_err(|detail| TraceError::CorruptRecord {
                chunk: index,
                record: 0,
                detail,
            })?;
            let end = scan.decoded.len();
            scan_chunk(start, end, index, block.count, &mut scan)?;
            scan.chunks.push((start, end));
            index = index.checked_add(1).ok_or_else(too_large)?;
            pos = block_end;
            continue;
        }
        // `BlockHeader::decode` knows two kinds: this is the code table.
        if !is_zero(padding) {
            return Err(TraceError::CorruptCodeTable("non-zero padding".into()));
        }
        check_code_table(&block, payload, &scan.codes)?;
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

/// Validates the records of chunk `chunk`, decompressed at `scan.decoded[start..end]`, and adds
/// its codes, snapshots and counts to `scan`.
fn scan_chunk(
    start: usize,
    end: usize,
    chunk: u32,
    count: u32,
    scan: &mut Scan,
) -> Result<(), TraceError> {
    let mut decoder = Decoder::new(&scan.decoded, scan.snapshots.len());
    decoder.start_chunk(start, end);
    let mut record: u32 = 0;
    while !decoder.is_done() {
        let corrupt = |detail: String| TraceError::CorruptRecord {
            chunk,
            record,
            detail,
        };
        match decoder.next(&scan.snapshots).map_err(corrupt)? {
            Decoded::Event { event, defined } => {
                if !scan.code_index.contains_key(&event.code()) {
                    return Err(TraceError::UnknownCode {
                        chunk,
                        code: event.code(),
                    });
                }
                scan.snapshots.extend(defined);
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
        let entry = match decoder.next(&[]).map_err(corrupt)? {
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

    /// How zstd levels and LZ4 compare on the record streams of a real trace, at several chunk
    /// sizes. Run with `FEVER_TRACE=PATH cargo test --release -p fever-core --lib
    /// compression_of_a_real_trace -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement on a trace given by FEVER_TRACE, run by hand"]
    #[allow(clippy::cast_precision_loss)]
    fn compression_of_a_real_trace() {
        use std::time::Instant;
        let path = std::env::var("FEVER_TRACE").expect("FEVER_TRACE=path of a trace");
        let r = TraceReader::open(&path).unwrap();
        let raw = &r.decoded;
        println!(
            "{path}: {} bytes on disk, {} bytes of record stream, {} events",
            r.file_len(),
            raw.len(),
            r.event_count()
        );
        for chunk in [256 << 10, 1 << 20, 4 << 20] {
            for level in [1, 3] {
                let t = Instant::now();
                let mut z = zstd::bulk::Compressor::new(level).unwrap();
                let total: usize = raw
                    .chunks(chunk)
                    .map(|c| z.compress(c).unwrap().len())
                    .sum();
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "chunk {:>5} KiB  zstd -{level}: {total:>11} bytes ({:.1} B/event) {:>6.0} MB/s",
                    chunk >> 10,
                    total as f64 / r.event_count() as f64,
                    raw.len() as f64 / 1e6 / secs
                );
            }
            let t = Instant::now();
            let total: usize = raw
                .chunks(chunk)
                .map(|c| lz4_flex::block::compress(c).len())
                .sum();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "chunk {:>5} KiB  lz4_flex: {total:>11} bytes ({:.1} B/event) {:>6.0} MB/s",
                chunk >> 10,
                total as f64 / r.event_count() as f64,
                raw.len() as f64 / 1e6 / secs
            );
        }
    }
}
