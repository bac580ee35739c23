//! [`TraceError`]: why a trace could not be read or a write was refused.
//!
//! Messages are written for the user: the command line prints them as
//! `fever: error: TRACE: message`. Byte offsets count from the start of the file; chunk and
//! record numbers count from 0, as stored in the file.

use std::io;

/// Why a trace file could not be read, or why [`TraceWriter`](super::TraceWriter) refused a write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file has no bytes at all.
    #[error("empty file, not a fever trace")]
    Empty,
    /// The file does not start with the trace magic bytes.
    #[error("not a fever trace (bad magic)")]
    BadMagic,
    /// The file was written by a newer fever in a format this one does not know.
    #[error("trace format version {found} is newer than this fever ({supported})")]
    NewerVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this fever reads.
        supported: u32,
    },
    /// The file was written by an older fever in a format this one no longer reads.
    #[error(
        "trace format version {found} was recorded by an older fever; this fever reads version \
         {supported}: record the trace again"
    )]
    OlderVersion {
        /// Version in the file.
        found: u32,
        /// The version this fever reads.
        supported: u32,
    },
    /// The version field holds a version that never existed (0).
    #[error("unsupported trace format version {0}")]
    UnsupportedVersion(u32),
    /// The file ends before its header does (a file cut short later reads as incomplete).
    #[error("truncated at byte {0}, inside the trace header")]
    Truncated(u64),
    /// The fixed part of the file header fails its checksum.
    #[error("corrupted file header (checksum mismatch)")]
    CorruptFileHeader,
    /// The archived trace header fails its checksum or validation.
    #[error("corrupted trace header: {0}")]
    CorruptTraceHeader(String),
    /// A block header has an unknown kind or fails its checksum.
    #[error("corrupted header of chunk {chunk} at byte {offset}")]
    CorruptChunkHeader {
        /// Index the block was expected to have.
        chunk: u32,
        /// Offset of the block header.
        offset: u64,
    },
    /// A block carries another index than its position in the file (blocks were spliced).
    #[error("chunk {found} at byte {offset} is out of sequence (expected chunk {expected})")]
    ChunkOutOfSequence {
        /// Index the block should have.
        expected: u32,
        /// Index the block has.
        found: u32,
        /// Offset of the block header.
        offset: u64,
    },
    /// A chunk's payload fails its checksum.
    #[error("chunk {chunk} checksum mismatch (at byte {offset})")]
    ChunkChecksum {
        /// Index of the chunk.
        chunk: u32,
        /// Offset of the block header.
        offset: u64,
    },
    /// A record inside a checksummed chunk is malformed: bad framing, unknown kind, failed
    /// validation, or the wrong number of records.
    #[error("corrupted record in chunk {chunk} (record {record}): {detail}")]
    CorruptRecord {
        /// Index of the chunk.
        chunk: u32,
        /// Index of the record within the chunk.
        record: u32,
        /// What is wrong.
        detail: String,
    },
    /// An event refers to a code id no earlier code record defined.
    #[error("event in chunk {chunk} refers to unknown code id {code}")]
    UnknownCode {
        /// Index of the chunk.
        chunk: u32,
        /// The undefined code id.
        code: u32,
    },
    /// Two code records define the same id.
    #[error("code id {0} is defined twice")]
    DuplicateCode(u32),
    /// A second run-statistics record.
    #[error("the run statistics appear twice")]
    DuplicateStats,
    /// The code table at the end fails validation or disagrees with the chunks.
    #[error("corrupted code table: {0}")]
    CorruptCodeTable(String),
    /// The footer fails its checksum or disagrees with the rest of the file.
    #[error("corrupted footer: {0}")]
    CorruptFooter(String),
    /// Bytes follow the footer.
    #[error("unexpected data after the end of the trace at byte {0}")]
    TrailingData(u64),
    /// The file does not fit in this platform's address space.
    #[error("file too large for this platform")]
    TooLarge,

    /// Writer: a record body exceeds [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN).
    #[error("record of {0} bytes is too large for a trace")]
    RecordTooLarge(usize),
    /// Writer: [`TraceWriter::write_record`](super::TraceWriter::write_record) was given a kind
    /// below [`FIRST_OPAQUE_RECORD`](super::FIRST_OPAQUE_RECORD) (events, codes and statistics
    /// have their own methods; the other kinds are reserved).
    #[error("record kind {0} cannot be written as a raw record")]
    InvalidRecordKind(u32),
    /// Writer: an event refers to a code id that was never added with `add_code`.
    #[error("event refers to code id {0}, which was never added to the trace")]
    UndefinedCode(u32),
    /// Writer: a run of events given to
    /// [`TraceWriter::write_run`](super::TraceWriter::write_run) does not decode.
    #[error("invalid run of events: {0}")]
    InvalidRun(String),
    /// Writer: serializing a value failed.
    #[error("cannot serialize {what}: {detail}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The serializer's message.
        detail: String,
    },
    /// Writer: an earlier write failed, so the file may hold a partial block; nothing more is
    /// written to it.
    #[error("an earlier write to this trace failed; the trace writer is unusable")]
    WriterFailed,
}
