//! [`TraceWriter`]: streams a trace while the program runs.
//!
//! Records are appended to an in-memory chunk (encoded by `stream.rs`); when the chunk reaches
//! the configured size it is compressed and written as one checksummed block, so the file grows
//! as the program runs and a crash loses at most the unwritten chunk (call
//! [`TraceWriter::flush`] at checkpoints to lose nothing).
//! [`TraceWriter::finish`] writes the last chunk, the code table and the footer. Dropping a writer
//! without finishing writes the pending chunk (best effort) and leaves an incomplete trace, which
//! the reader still reads.
//!
//! Writing is single-threaded: the tracer drains its per-thread buffers into one writer.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rkyv::rancor;

use super::compress::Compressor;
use super::format::{
    self, checksum, BlockHeader, Codec, FileHeader, Footer, CHUNK_KIND, CODE_TABLE_KIND,
    FIRST_OPAQUE_RECORD, MAX_CHUNK_SIZE, MAX_RECORD_LEN, RECORD_CODE, RECORD_STATS,
};
use super::ids::IdSet;
use super::stream::{encode_code, encode_stats, Decoded, Decoder, Encoder, RunRef, Snap};
use super::{CodeInfo, EventRef, RunStats, TraceError, TraceHeader};

/// Default size at which a chunk is compressed and written: 4 MiB of record stream (usually a
/// few hundred KB on disk). Larger chunks compress better (see `compress.rs`); the recorder also
/// writes a chunk whenever it has been idle for a second, so a crash loses little.
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;

const ZEROS: [u8; format::ALIGN] = [0; format::ALIGN];

/// Writes a trace file to any [`Write`]; see the [module docs](self).
///
/// After any error from the underlying writer, every later call returns
/// [`TraceError::WriterFailed`]: the file may end in a partial block, and what is before it stays
/// readable as an incomplete trace. Errors that refuse one record (an undefined code id, an
/// invalid kind, a record too large) leave the writer usable.
pub struct TraceWriter<W: Write> {
    /// `None` once finished.
    out: Option<W>,
    /// Bytes written to `out` so far.
    pos: u64,
    /// Record stream of the chunk being filled.
    chunk: Vec<u8>,
    chunk_records: u32,
    chunk_size: usize,
    encoder: Encoder,
    compressor: Compressor,
    /// The compressed chunk, reused.
    compressed: Vec<u8>,
    /// Index of the next block.
    next_index: u32,
    /// Records written, including those of the pending chunk.
    records: u64,
    codes: Vec<CodeInfo>,
    code_ids: IdSet,
    /// Every code id below this one was added (a run whose codes are all below it needs no
    /// check of each event).
    dense_codes: u32,
    wrote_stats: bool,
    failed: bool,
}

impl<W: Write> TraceWriter<W> {
    /// Starts a trace on `out` with chunks of [`DEFAULT_CHUNK_SIZE`]; writes the file header and
    /// `header` at once.
    pub fn new(out: W, header: &TraceHeader) -> Result<Self, TraceError> {
        Self::with_chunk_size(out, header, DEFAULT_CHUNK_SIZE)
    }

    /// Like [`new`](Self::new), writing a chunk whenever its record stream reaches `chunk_size`
    /// bytes (0 writes every record as its own chunk; capped at [`MAX_CHUNK_SIZE`]).
    pub fn with_chunk_size(
        out: W,
        header: &TraceHeader,
        chunk_size: usize,
    ) -> Result<Self, TraceError> {
        let archived =
            rkyv::to_bytes::<rancor::Error>(header).map_err(|e| TraceError::Serialize {
                what: "the trace header",
                detail: e.to_string(),
            })?;
        let header_len = u32::try_from(archived.len())
            .map_err(|_| TraceError::RecordTooLarge(archived.len()))?;
        let chunk_size = chunk_size.min(MAX_CHUNK_SIZE);
        let mut writer = Self {
            out: Some(out),
            pos: 0,
            chunk: Vec::with_capacity(chunk_size.min(DEFAULT_CHUNK_SIZE) + 256),
            chunk_records: 0,
            chunk_size,
            encoder: Encoder::default(),
            compressor: Compressor::new(),
            compressed: Vec::new(),
            next_index: 0,
            records: 0,
            codes: Vec::new(),
            code_ids: IdSet::default(),
            dense_codes: 0,
            wrote_stats: false,
            failed: false,
        };
        let fixed = FileHeader {
            header_len,
            header_xxh3: checksum(&archived),
        };
        writer.write_out(&fixed.encode())?;
        writer.write_out(&archived)?;
        writer.write_padding()?;
        Ok(writer)
    }

    /// Adds a code to the trace. Call it before writing the first event that refers to
    /// `code.id`: the code is announced in the record stream, so even a trace cut short by a
    /// crash names every function its events refer to.
    pub fn add_code(&mut self, code: CodeInfo) -> Result<(), TraceError> {
        self.check_usable()?;
        if self.code_ids.contains(&code.id) {
            return Err(TraceError::DuplicateCode(code.id));
        }
        let body = encode_code(&code);
        check_len(body.len())?;
        Encoder::record(RECORD_CODE, &body, &mut self.chunk);
        self.code_ids.insert(code.id);
        self.codes.push(code);
        while self.code_ids.contains(&self.dense_codes) {
            self.dense_codes += 1;
        }
        self.end_record()
    }

    /// Appends an event (an `&Event`, or an [`EventRef`] read from another trace). Its code id
    /// must have been added with [`add_code`](Self::add_code).
    pub fn write_event<'e>(&mut self, event: impl Into<EventRef<'e>>) -> Result<(), TraceError> {
        let event = event.into();
        self.check_usable()?;
        if !self.code_ids.contains(&event.code()) {
            return Err(TraceError::UndefinedCode(event.code()));
        }
        check_len(event.snapshot().map_or(0, <[u8]>::len))?;
        self.encoder.event(event, &mut self.chunk);
        self.end_record()
    }

    /// Appends a thread's run of events ([`EventRun`](super::EventRun)); returns how many it
    /// held. A run whose codes were all added is appended as it is: only its first event is
    /// written again, against the chunk's previous event (unless the chunk starts with it), and
    /// the rest copied, but for the snapshots, which are numbered ([`Encoder::run_tail`]: an
    /// event defining a snapshot differs in its tag, one referring to a snapshot defined before
    /// holds the reference instead of the bytes). A run with a code not added is written event
    /// by event, each code checked. A run that is not what [`EventRun::push`] makes (checked
    /// first: garbage read from a ring) is refused ([`TraceError::InvalidRun`]) and nothing of
    /// it written.
    ///
    /// [`EventRun::push`]: super::EventRun::push
    pub fn write_run(&mut self, run: RunRef<'_>) -> Result<u64, TraceError> {
        self.check_usable()?;
        if run.events == 0 {
            return Ok(0);
        }
        if run.max_code >= self.dense_codes {
            return self.write_run_by_event(run);
        }
        // Its bytes are copied as they are: they must be a run's.
        run.check().map_err(TraceError::InvalidRun)?;
        let before = (self.chunk.len(), self.encoder.checkpoint());
        let written = self.append_run(run);
        if let Err(why) = written {
            self.chunk.truncate(before.0);
            self.encoder.restore(before.1);
            return Err(TraceError::InvalidRun(why));
        }
        self.encoder.continue_after(run.last);
        self.chunk_records += run.events;
        self.records += u64::from(run.events);
        if self.chunk.len() >= self.chunk_size {
            self.write_chunk()?;
        }
        Ok(u64::from(run.events))
    }

    /// [`write_run`](Self::write_run)'s appending of `run` to the chunk; on an error, the chunk
    /// holds a part of it.
    fn append_run(&mut self, run: RunRef<'_>) -> Result<(), String> {
        let mut rest = 0;
        let mut first = 0;
        if self.chunk_records > 0 {
            let mut d = Decoder::new(run.bytes, 0);
            d.start_chunk(0, run.bytes.len());
            let Decoded::Event { mut event, snap } = d.next()? else {
                return Err("its first record is not an event".into());
            };
            event.snapshot = match snap {
                Snap::None => None,
                Snap::Inline(bytes) => Some(bytes),
                Snap::Define(..) | Snap::Ref(_) => return Err("a numbered snapshot".into()),
            };
            self.encoder.event(event, &mut self.chunk);
            rest = d.position();
            first = 1;
        }
        let events = if run.snapshots {
            self.encoder.run_tail(run.bytes, rest, &mut self.chunk)?
        } else {
            self.chunk.extend_from_slice(&run.bytes[rest..]);
            run.events - first
        };
        if first + events == run.events {
            Ok(())
        } else {
            Err(format!(
                "{} events, {} announced",
                first + events,
                run.events
            ))
        }
    }

    /// [`write_run`](Self::write_run), decoding each event and writing it on its own.
    fn write_run_by_event(&mut self, run: RunRef<'_>) -> Result<u64, TraceError> {
        self.write_run_as(run, Some)
    }

    /// Appends a run of another process's (or another numbering's) events, event by event, each
    /// as `map` rewrites it (its code id and thread, typically); `map` answers `None` for an
    /// event it cannot name (a code never announced), which refuses the run
    /// ([`TraceError::InvalidRun`]). As with [`write_run`](Self::write_run), a refused run writes
    /// nothing; returns how many events the run held.
    pub fn write_run_as<'r>(
        &mut self,
        run: RunRef<'r>,
        mut map: impl FnMut(EventRef<'r>) -> Option<EventRef<'r>>,
    ) -> Result<u64, TraceError> {
        self.check_usable()?;
        let mut events = Vec::with_capacity(run.events as usize);
        let mut d = Decoder::new(run.bytes, 0);
        d.start_chunk(0, run.bytes.len());
        while !d.is_done() {
            match d.next() {
                Ok(Decoded::Event { mut event, snap }) => {
                    event.snapshot = match snap {
                        Snap::None => None,
                        Snap::Inline(bytes) => Some(bytes),
                        Snap::Define(..) | Snap::Ref(_) => {
                            return Err(TraceError::InvalidRun("a numbered snapshot".into()))
                        }
                    };
                    let Some(event) = map(event) else {
                        return Err(TraceError::InvalidRun(format!(
                            "code {} was never announced",
                            event.code()
                        )));
                    };
                    if !self.code_ids.contains(&event.code()) {
                        return Err(TraceError::UndefinedCode(event.code()));
                    }
                    events.push(event);
                }
                Ok(Decoded::Other { .. }) => {
                    return Err(TraceError::InvalidRun(
                        "a record that is not an event".into(),
                    ))
                }
                Err(e) => return Err(TraceError::InvalidRun(e)),
            }
        }
        if events.len() != run.events as usize {
            return Err(TraceError::InvalidRun(format!(
                "{} events, {} announced",
                events.len(),
                run.events
            )));
        }
        for event in events {
            self.write_event(event)?;
        }
        Ok(u64::from(run.events))
    }

    /// Appends the run's statistics (once; every code they name must have been added).
    pub fn write_stats(&mut self, stats: &RunStats) -> Result<(), TraceError> {
        self.check_usable()?;
        if self.wrote_stats {
            return Err(TraceError::DuplicateStats);
        }
        if let Some(c) = stats
            .calls
            .iter()
            .find(|c| !self.code_ids.contains(&c.code))
        {
            return Err(TraceError::UndefinedCode(c.code));
        }
        let body = encode_stats(stats);
        check_len(body.len())?;
        Encoder::record(RECORD_STATS, &body, &mut self.chunk);
        self.wrote_stats = true;
        self.end_record()
    }

    /// Appends a record of a kind from [`FIRST_OPAQUE_RECORD`] up, for data this layer stores
    /// but does not interpret.
    pub fn write_record(&mut self, kind: u32, body: &[u8]) -> Result<(), TraceError> {
        self.check_usable()?;
        if kind < FIRST_OPAQUE_RECORD {
            return Err(TraceError::InvalidRecordKind(kind));
        }
        check_len(body.len())?;
        Encoder::record(kind, body, &mut self.chunk);
        self.end_record()
    }

    /// Writes the records buffered so far as a chunk (if there are any) and flushes the
    /// underlying writer, so a crash after this point loses none of them.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        self.check_usable()?;
        self.write_chunk()?;
        let result = self.out.as_mut().map_or(Ok(()), Write::flush);
        self.note_io(result)
    }

    /// Writes the pending chunk, the code table and the footer, flushes, and returns the
    /// underlying writer.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.check_usable()?;
        self.write_chunk()?;
        let chunk_count = u64::from(self.next_index);
        let mut table = Vec::new();
        for code in &self.codes {
            Encoder::record(RECORD_CODE, &encode_code(code), &mut table);
        }
        let count = u32::try_from(self.codes.len())
            .map_err(|_| TraceError::RecordTooLarge(self.codes.len()))?;
        let offset = self.pos;
        let index = self.next_index;
        let block = self.write_block(CODE_TABLE_KIND, index, count, &table)?;
        let footer = Footer {
            code_table_offset: offset,
            code_table_len: self.pos - offset,
            code_table_xxh3: block.payload_xxh3,
            chunk_count,
            record_count: self.records,
        };
        self.write_out(&footer.encode())?;
        let mut out = self.out.take().ok_or(TraceError::WriterFailed)?;
        if let Err(e) = out.flush() {
            self.failed = true;
            return Err(e.into());
        }
        Ok(out)
    }

    /// Whether a code with this id was added.
    pub fn has_code(&self, id: u32) -> bool {
        self.code_ids.contains(&id)
    }

    /// Records written so far (events, codes and opaque records), including buffered ones.
    pub fn record_count(&self) -> u64 {
        self.records
    }

    /// Bytes written to the underlying writer so far (not counting the pending chunk).
    pub fn bytes_written(&self) -> u64 {
        self.pos
    }

    fn check_usable(&self) -> Result<(), TraceError> {
        if self.failed || self.out.is_none() {
            Err(TraceError::WriterFailed)
        } else {
            Ok(())
        }
    }

    /// Counts the record just appended and writes the chunk if it is full.
    fn end_record(&mut self) -> Result<(), TraceError> {
        self.chunk_records += 1;
        self.records += 1;
        if self.chunk.len() >= self.chunk_size {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Writes the pending chunk as a block, if it holds any record.
    fn write_chunk(&mut self) -> Result<(), TraceError> {
        if self.chunk_records == 0 {
            return Ok(());
        }
        let index = self.next_index;
        self.next_index = self
            .next_index
            .checked_add(1)
            .ok_or_else(|| TraceError::Io(io::Error::other("too many chunks in one trace")))?;
        let chunk = std::mem::take(&mut self.chunk);
        let result = self.write_block(CHUNK_KIND, index, self.chunk_records, &chunk);
        self.chunk = chunk;
        self.chunk.clear();
        self.chunk_records = 0;
        self.encoder.start_chunk();
        result.map(|_| ())
    }

    /// Writes one block holding `raw`, compressed when that makes it smaller.
    fn write_block(
        &mut self,
        kind: [u8; 4],
        index: u32,
        count: u32,
        raw: &[u8],
    ) -> Result<BlockHeader, TraceError> {
        let raw_len =
            u32::try_from(raw.len()).map_err(|_| TraceError::RecordTooLarge(raw.len()))?;
        let mut compressed = std::mem::take(&mut self.compressed);
        let codec = self.compressor.compress(raw, &mut compressed);
        let payload = match codec {
            Codec::Stored => raw,
            Codec::Zstd => &compressed,
        };
        let block = BlockHeader {
            kind,
            payload_len: u32::try_from(payload.len())
                .map_err(|_| TraceError::RecordTooLarge(payload.len()))?,
            index,
            count,
            raw_len,
            codec,
            payload_xxh3: checksum(payload),
        };
        let result = self
            .write_out(&block.encode())
            .and_then(|()| self.write_out(payload))
            .and_then(|()| self.write_padding());
        self.compressed = compressed;
        result.map(|()| block)
    }

    fn write_padding(&mut self) -> Result<(), TraceError> {
        // `pos % ALIGN` is below 8, so the conversion cannot fail.
        let rem = usize::try_from(self.pos % format::ALIGN as u64).unwrap_or(0);
        if rem == 0 {
            return Ok(());
        }
        self.write_out(&ZEROS[..format::ALIGN - rem])
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        let result = match self.out.as_mut() {
            Some(out) => out.write_all(bytes),
            None => return Err(TraceError::WriterFailed),
        };
        self.note_io(result)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn note_io(&mut self, result: io::Result<()>) -> Result<(), TraceError> {
        result.map_err(|e| {
            self.failed = true;
            TraceError::Io(e)
        })
    }
}

/// Refuses a record body or snapshot longer than [`MAX_RECORD_LEN`].
fn check_len(len: usize) -> Result<(), TraceError> {
    if len > MAX_RECORD_LEN {
        Err(TraceError::RecordTooLarge(len))
    } else {
        Ok(())
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    /// Writes the pending chunk and flushes (errors ignored), leaving an incomplete but readable
    /// trace, unless the writer was finished or failed.
    fn drop(&mut self) {
        if self.failed || self.out.is_none() {
            return;
        }
        if self.write_chunk().is_ok() {
            if let Some(out) = self.out.as_mut() {
                let _ = out.flush();
            }
        }
    }
}

impl<W: Write> std::fmt::Debug for TraceWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("bytes_written", &self.pos)
            .field("records", &self.records)
            .field("codes", &self.codes.len())
            .field("finished", &self.out.is_none())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl TraceWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and starts a trace in it. The file is
    /// readable as an incomplete trace while it is written.
    pub fn create(path: impl AsRef<Path>, header: &TraceHeader) -> Result<Self, TraceError> {
        let file = File::create(path)?;
        Self::new(BufWriter::new(file), header)
    }
}

impl TraceWriter<AtomicFile> {
    /// Starts a trace in `PATH.tmp`; [`commit`](Self::commit) finishes it and renames it to
    /// `path`, so `path` is only ever absent, the previous trace, or a complete new one. If the
    /// recorder dies first, `PATH.tmp` holds an incomplete trace.
    pub fn create_atomic(path: impl AsRef<Path>, header: &TraceHeader) -> Result<Self, TraceError> {
        Self::new(AtomicFile::create(path)?, header)
    }

    /// [`finish`](Self::finish)es the trace, then syncs it and renames it into place; returns
    /// the final path.
    pub fn commit(self) -> Result<PathBuf, TraceError> {
        Ok(self.finish()?.commit()?)
    }
}

/// A buffered file written as `PATH.tmp` and renamed to `PATH` by [`commit`](Self::commit).
/// Dropping it without committing leaves `PATH.tmp` in place (it holds whatever was written).
#[derive(Debug)]
#[must_use = "an AtomicFile must be committed, or its data stays in PATH.tmp"]
pub struct AtomicFile {
    file: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates (or truncates) `PATH.tmp`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let dest = path.as_ref().to_path_buf();
        let mut tmp = dest.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = BufWriter::new(File::create(&tmp)?);
        Ok(Self { file, tmp, dest })
    }

    /// The temporary path being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes, syncs the data to disk and renames the temporary file to the final path.
    pub fn commit(self) -> io::Result<PathBuf> {
        let file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        Ok(self.dest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, EventKind, EventRun, TraceReader};

    fn writer(chunk_size: usize) -> TraceWriter<Vec<u8>> {
        let mut w =
            TraceWriter::with_chunk_size(Vec::new(), &TraceHeader::default(), chunk_size).unwrap();
        for id in 0..3 {
            w.add_code(CodeInfo::sample(id)).unwrap();
        }
        w
    }

    /// Runs of two threads: calls with snapshots short (inline) and long (numbered, repeated
    /// within and across runs), generator steps, returns with flags, events without any.
    fn runs() -> Vec<EventRun> {
        let long = |i: u64| vec![u8::try_from(i % 3).unwrap(); 40];
        let mut runs = Vec::new();
        for r in 0..12u64 {
            let mut run = EventRun::default();
            let thread = 1 + r % 2;
            let t0 = r * 10_000;
            let first = (r % 3 == 0).then(|| long(r));
            run.push(EventKind::Call, (thread, 0, t0), 0, first.as_deref());
            for i in 0..20u64 {
                let t = t0 + 10 + i * 300;
                run.push(EventKind::Call, (thread, 1, t), 0, Some(&long(i)));
                run.push(EventKind::Yield, (thread, 1, t + 50), 0, Some(&[1, 2]));
                run.push(EventKind::Resume, (thread, 1, t + 100), 0, None);
                run.push(EventKind::Call, (thread, 2, t + 150), 0, None);
                run.push(
                    EventKind::Return,
                    (thread, 2, t + 160),
                    0,
                    Some(&long(i + 1)),
                );
                run.push(
                    EventKind::Return,
                    (thread, 1, t + 200),
                    u32::from(i == 3),
                    None,
                );
            }
            run.push(EventKind::Return, (thread, 0, t0 + 9_000), 0, None);
            runs.push(run);
        }
        runs
    }

    fn events_of(bytes: &[u8]) -> Vec<Event> {
        let r = TraceReader::from_bytes(bytes).unwrap();
        r.events().map(Event::from).collect()
    }

    #[test]
    fn a_run_with_snapshots_is_written_as_its_events_one_by_one_would_be() {
        for chunk_size in [0, 700, 5_000, DEFAULT_CHUNK_SIZE] {
            let (mut whole, mut by_event) = (writer(chunk_size), writer(chunk_size));
            for run in &runs() {
                assert_eq!(whole.write_run(run.as_ref()).unwrap(), u64::from(run.len()));
                by_event.write_run_by_event(run.as_ref()).unwrap();
            }
            let (whole, by_event) = (whole.finish().unwrap(), by_event.finish().unwrap());
            assert_eq!(
                events_of(&whole),
                events_of(&by_event),
                "chunk size {chunk_size}"
            );
            assert_eq!(events_of(&whole).len(), 12 * 122);
            // The same bytes, when both cut their chunks at the same places (by event, a
            // chunk ends inside a run).
            if chunk_size == DEFAULT_CHUNK_SIZE {
                assert_eq!(whole, by_event);
            }
        }
    }

    #[test]
    fn a_run_cut_short_is_refused_and_numbers_none_of_its_snapshots() {
        let runs = runs();
        let mut w = writer(DEFAULT_CHUNK_SIZE);
        w.write_run(runs[1].as_ref()).unwrap();
        let before = w.chunk.len();
        // Cut inside the last snapshot, after events that define new snapshots.
        let mut cut = runs[0].as_ref();
        cut.bytes = &cut.bytes[..cut.bytes.len() - 20];
        assert!(matches!(w.write_run(cut), Err(TraceError::InvalidRun(_))));
        assert_eq!(w.chunk.len(), before);
        // A miscounted run too.
        let mut miscounted = runs[0].as_ref();
        miscounted.events += 1;
        assert!(matches!(
            w.write_run(miscounted),
            Err(TraceError::InvalidRun(_))
        ));
        // The refused runs' snapshots are defined again when a run holds them.
        w.write_run(runs[0].as_ref()).unwrap();
        let mut expected = writer(DEFAULT_CHUNK_SIZE);
        expected.write_run(runs[1].as_ref()).unwrap();
        expected.write_run(runs[0].as_ref()).unwrap();
        assert_eq!(w.finish().unwrap(), expected.finish().unwrap());
    }

    /// A run without snapshots, whose bytes the writer would copy as they are.
    fn plain_run(thread: u64, t0: u64) -> EventRun {
        let mut run = EventRun::default();
        for i in 0..30u64 {
            let code = u32::try_from(i % 3).unwrap();
            run.push(EventKind::Call, (thread, code, t0 + i * 10), 0, None);
            run.push(EventKind::Return, (thread, code, t0 + i * 10 + 5), 0, None);
        }
        run
    }

    #[test]
    fn a_corrupt_run_without_snapshots_is_refused_and_the_trace_stays_whole() {
        let good = plain_run(1, 1_000);
        let bytes = good.as_ref().bytes.to_vec();
        let mut garbage = bytes.clone();
        for b in &mut garbage[10..40] {
            *b = 0xFF;
        }
        let mut tag_of_a_record = bytes.clone();
        tag_of_a_record[0] = super::super::stream::TAG_RECORD;
        let mut corrupt = Vec::new();
        for (why, cut) in [
            ("garbage", garbage.as_slice()),
            ("cut short", &bytes[..bytes.len() - 3]),
            ("cut at an event", &bytes[..bytes.len() / 2]),
            ("not an event", tag_of_a_record.as_slice()),
            ("empty bytes", &[][..]),
        ] {
            let mut run = good.as_ref();
            run.bytes = cut;
            corrupt.push((why, run));
        }
        let mut miscounted = good.as_ref();
        miscounted.events -= 1;
        corrupt.push(("miscounted", miscounted));
        let mut low_max = good.as_ref();
        low_max.max_code = 1;
        corrupt.push(("a code above max_code", low_max));
        let mut wrong_last = good.as_ref();
        wrong_last.last.t_ns += 1;
        corrupt.push(("another last event", wrong_last));
        for chunk_records in [false, true] {
            let mut w = writer(DEFAULT_CHUNK_SIZE);
            let mut expected = writer(DEFAULT_CHUNK_SIZE);
            if chunk_records {
                w.write_run(plain_run(2, 0).as_ref()).unwrap();
                expected.write_run(plain_run(2, 0).as_ref()).unwrap();
            }
            for (why, run) in &corrupt {
                let before = w.chunk.len();
                let refused = w.write_run(*run);
                assert!(
                    matches!(refused, Err(TraceError::InvalidRun(_))),
                    "{why}: {refused:?}"
                );
                assert_eq!(w.chunk.len(), before, "{why}");
            }
            w.write_run(good.as_ref()).unwrap();
            expected.write_run(good.as_ref()).unwrap();
            let (w, expected) = (w.finish().unwrap(), expected.finish().unwrap());
            assert_eq!(w, expected);
            assert_eq!(events_of(&w).len(), if chunk_records { 120 } else { 60 });
        }
    }
}
