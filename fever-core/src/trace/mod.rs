//! Trace files: what `fever record` writes and `fever show` / `fever check` read.
//!
//! # Contents
//! - `format.rs` (private): the byte layout below as constants plus encoders and
//!   decoders of the fixed-size little-endian parts (file header, block header, footer, record
//!   frame). The only place that knows byte offsets.
//! - [`meta`]: [`TraceHeader`] (who recorded what, when), [`CodeInfo`] (one entry of the code
//!   table) and [`RunStats`] (exact call counts, losses), all rkyv-archived in the file.
//! - [`event`]: [`Event`], the typed records the tracer writes (call, return, yield, resume,
//!   raise, unwind), and accessors on its archived form.
//! - [`writer`]: [`TraceWriter`], which streams chunks while the program runs and writes the code
//!   table and footer on [`TraceWriter::finish`]; [`AtomicFile`] for write-to-temp-then-rename.
//! - [`reader`]: [`TraceReader`], which validates a whole file before handing out anything, and
//!   reads a file whose recording never finished (a crash) up to its last complete chunk.
//! - `error.rs`: [`TraceError`], one variant per way a trace can be unreadable or a write refused.
//!
//! # Byte layout (format version 1)
//! All integers are little-endian. Every section starts at a file offset that is a multiple of 8,
//! and every rkyv archive and every record body starts 8-aligned, so the reader (which keeps the
//! file in a 16-aligned buffer) accesses archives in place. Padding is zero bytes, and the reader
//! rejects padding that is not zero. xxh3 means xxh3-64 with seed 0.
//!
//! ```text
//! file        = file_header trace_header pad8 block* [code_table footer]
//!
//! file_header (32 bytes)
//!    0  [u8; 8]  magic b"FEVERTRC"
//!    8  u32      format version (1)
//!   12  u32      length of the archived trace header, in bytes
//!   16  u64      xxh3 of the archived trace header
//!   24  u64      xxh3 of bytes 0..24 of this file header
//! trace_header   rkyv archive of TraceHeader (root at its end), then zero padding to 8
//!
//! block       = block_header payload pad8
//! block_header (32 bytes)
//!    0  [u8; 4]  kind: b"FVCH" record chunk, b"FVCT" code table
//!    4  u32      payload length in bytes (padding not included)
//!    8  u32      block index: 0, 1, 2, ... in file order (the code table continues the count)
//!   12  u32      number of records in the payload (entries, for the code table)
//!   16  u64      xxh3 of the payload
//!   24  u64      xxh3 of bytes 0..24 of this block header
//!
//! chunk payload = record*            (a multiple of 8 bytes)
//! record      = u32 body length, u32 record kind, body, zero padding to 8
//!               kind 1: rkyv archive of Event       kind 2: rkyv archive of CodeInfo
//!               kind 3: rkyv archive of RunStats (at most once, codes already announced)
//!               kind >= 0x100: opaque to this layer  kinds 0 and 4..0x100: invalid in version 1
//! code table payload = rkyv archive of Vec<CodeInfo>: every code of the trace, in the order the
//!               writer added them; the same entries as the kind-2 records of the chunks
//!
//! footer (56 bytes, the last bytes of a complete file)
//!    0  u64      offset of the code table's block header
//!    8  u64      length of the code table block (header, payload and padding)
//!   16  u64      xxh3 of the code table payload
//!   24  u64      number of record chunks
//!   32  u64      number of records in all chunks
//!   40  u64      xxh3 of bytes 0..40 of this footer
//!   48  [u8; 8]  end magic b"FEVEREND"
//! ```
//!
//! A code is announced by a kind-2 record before the first event that refers to it, so a file
//! cut short by a crash still names its functions; the code table at the end repeats them all
//! and the footer points to it, so a complete file is recognisable and its table findable from
//! the end. The reader walks the blocks from the start, so it needs the footer only as proof of
//! completeness and checks that footer, code table and chunks agree.
//!
//! Every byte is covered: magic and version by value, everything else by a checksum or by the
//! zero-padding rule, so any flipped bit is an error, never silently different data. A file that
//! ends before its code table (the recorder was killed) is read up to its last complete chunk and
//! reported through [`TraceReader::incomplete`]; an intact block that fails a check is an error.

mod error;
pub mod event;
mod format;
pub mod meta;
pub mod reader;
pub mod writer;

pub use error::TraceError;
pub use event::{ArchivedEvent, Event, EventKind, MUTATED_ARGS};
pub use format::{
    FIRST_OPAQUE_RECORD, FORMAT_VERSION, MAGIC, MAX_CHUNK_SIZE, MAX_RECORD_LEN, RECORD_CODE,
    RECORD_EVENT, RECORD_STATS,
};
pub use meta::{
    ArchivedCodeInfo, ArchivedRunStats, ArchivedTraceHeader, CodeCalls, CodeInfo, RunStats,
    TraceHeader,
};
pub use reader::{Events, Incomplete, Record, Records, TraceReader};
pub use writer::{AtomicFile, TraceWriter, DEFAULT_CHUNK_SIZE};
