//! Trace files: what `fever record` writes and `fever show` / `fever check` read.
//!
//! # Contents
//! - `format.rs` (private): the byte layout below as constants plus encoders and
//!   decoders of the fixed-size little-endian parts (file header, block header, footer). The only
//!   place that knows byte offsets.
//! - `stream.rs` (private): the record stream inside a chunk (tag bytes, varints, timestamps as
//!   differences, snapshots stored once per trace), encoded and decoded with every field checked;
//!   and [`EventRun`], a thread's events encoded by the recording thread itself, which the writer
//!   appends whole ([`TraceWriter::write_run`]).
//! - `compress.rs` (private): each chunk's stream compressed as one zstd frame.
//! - `store.rs` (private): the record streams a reader decompressed once and hands out, in
//!   memory or (for a big trace) in a temporary file whose pages are released as iteration goes.
//! - [`meta`]: [`TraceHeader`] (who recorded what, when; rkyv-archived in the file),
//!   [`CodeInfo`] (one entry of the code table) and [`RunStats`] (exact call counts, losses).
//! - [`event`]: [`Event`], the typed records the tracer writes (call, return, yield, resume,
//!   raise, unwind), and [`EventRef`], an event as the reader hands it out.
//! - [`writer`]: [`TraceWriter`], which streams chunks while the program runs and writes the code
//!   table and footer on [`TraceWriter::finish`]; [`AtomicFile`] for write-to-temp-then-rename.
//! - [`reader`]: [`TraceReader`], which validates a whole file before handing out anything,
//!   decompressing each chunk once, then hands it out chunk by chunk in bounded memory, and reads a file whose recording never finished
//!   (a crash) up to its last complete chunk.
//! - `error.rs`: [`TraceError`], one variant per way a trace can be unreadable or a write refused.
//! - `ids.rs` (private): hash maps and sets keyed by code ids, with a cheap hash.
//! - `process.rs` (private): the thread ids of child processes ([`child_thread`],
//!   [`thread_process`]): a trace holds the calls of the program's forked children too.
//!
//! # Byte layout (format version 2)
//! All integers of the fixed parts are little-endian. Every block starts at a file offset that
//! is a multiple of 8, so the reader (which keeps the file in a 16-aligned buffer) accesses the
//! rkyv archive of the trace header in place. Padding is zero bytes, and the reader rejects
//! padding that is not zero. xxh3 means xxh3-64 with seed 0.
//!
//! ```text
//! file        = file_header trace_header pad8 block* [code_table footer]
//!
//! file_header (32 bytes)
//!    0  [u8; 8]  magic b"FEVERTRC"
//!    8  u32      format version (2; version 1 is refused as "recorded by an older fever")
//!   12  u32      length of the archived trace header, in bytes
//!   16  u64      xxh3 of the archived trace header
//!   24  u64      xxh3 of bytes 0..24 of this file header
//! trace_header   rkyv archive of TraceHeader (root at its end), then zero padding to 8
//!
//! block       = block_header payload pad8
//! block_header (40 bytes)
//!    0  [u8; 4]  kind: b"FVCH" record chunk, b"FVCT" code table
//!    4  u32      payload length in the file, in bytes (padding not included)
//!    8  u32      block index: 0, 1, 2, ... in file order (the code table continues the count)
//!   12  u32      number of records in the payload (entries, for the code table)
//!   16  u32      length of the payload once decompressed (the record stream)
//!   20  u32      codec: 0 stored as is (both lengths equal), 1 one zstd frame
//!   24  u64      xxh3 of the payload as stored
//!   32  u64      xxh3 of bytes 0..32 of this block header
//!
//! record stream (a chunk's payload once decompressed) = record*
//! record      = tag [thread] [code] dt [flags] [snapshot]       an event (tag bits 0..3 < 6)
//!             | 6 varint(kind) varint(length) body              any other record
//!   tag bits 0..3  event kind: 0 call, 1 return, 2 yield, 3 resume, 4 raise, 5 unwind
//!   tag bit 3      a varint thread id follows (else: the previous event's thread)
//!   tag bit 4      a varint code id follows (else: the previous event's code)
//!   dt             varint, zigzag: t_ns minus the previous event's t_ns (wrapping)
//!   tag bit 7      non-zero varint flags follow (return and unwind only)
//!   tag bits 5..7  snapshot (call, return, yield and raise only): 0 none; 1 varint(length)
//!                  bytes; 2 the same, and the snapshot gets the trace's next number (from 0);
//!                  3 varint(d): the snapshot numbered (next number - 1 - d), defined earlier
//!   "previous" starts at thread 0, code 0, t_ns 0 in every chunk; snapshot numbers run
//!   through the whole trace. Varints are LEB128 (at most 10 bytes, at most 64 bits).
//!   kind 2 (code): varint id, varint-length-prefixed UTF-8 module, qualname and file,
//!                  varint first line, u64 code hash
//!   kind 3 (run statistics, at most once, codes already announced): varint count, then per
//!                  code varint id, calls, recorded; then varint lost events
//!   kinds >= 0x100: opaque to this layer            kinds 0, 1 and 4..0x100: invalid
//! code table payload (decompressed) = a record stream of kind-2 records: every code of the
//!               trace, in the order the writer added them; the same as the chunks announced
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
//! A code is announced by a kind-2 record before the first event that refers to it, and a
//! snapshot is defined before the first event that refers to it, so a file cut short by a crash
//! still names its functions and holds every snapshot its events use; the code table at the end
//! repeats the codes and the footer points to it, so a complete file is recognisable and its
//! table findable from the end. The reader walks the blocks from the start, so it needs the
//! footer only as proof of completeness and checks that footer, code table and chunks agree.
//!
//! Every byte is covered: magic and version by value, everything else by a checksum or by the
//! zero-padding rule, so any flipped bit is an error, never silently different data. A file that
//! ends before its code table (the recorder was killed) is read up to its last complete chunk and
//! reported through [`TraceReader::incomplete`]; an intact block that fails a check is an error.

mod compress;
mod error;
pub mod event;
mod format;
pub(crate) mod ids;
pub mod meta;
mod process;
pub mod reader;
mod store;
mod stream;
pub mod writer;

pub use error::TraceError;
pub use event::{Event, EventKind, EventRef, MUTATED_ARGS};
pub use format::{
    FIRST_OPAQUE_RECORD, FORMAT_VERSION, MAGIC, MAX_CHUNK_SIZE, MAX_RECORD_LEN, RECORD_CODE,
    RECORD_EVENT, RECORD_STATS,
};
pub use meta::{ArchivedCodeInfo, ArchivedTraceHeader, CodeCalls, CodeInfo, RunStats, TraceHeader};
pub use process::{child_thread, thread_process};
pub use reader::{Events, Incomplete, Record, Records, TraceReader};
pub use stream::{ArchivedEventRun, EventRun, RunLast, RunRef};
pub use writer::{AtomicFile, TraceWriter, DEFAULT_CHUNK_SIZE};
