//! What the tracer puts in the ring buffer while the program runs, and how those records become
//! trace events.
//!
//! Callbacks must cost a few nanoseconds, so they append fixed-size [`RawEvent`]s (raw clock
//! ticks, no snapshot bytes inline) to a per-thread batch; a full batch becomes one ring record:
//! an rkyv archive of [`LiveRecord::Events`], whose snapshots sit in one byte area after the
//! events. A code is announced by a [`LiveRecord::Code`] record before any batch refers to it. The
//! reader side ([`LiveRecord::access`], [`write_batch`]) validates every record with bytecheck,
//! since a ring file is shared memory, and turns batches into [`Event`]s for a trace file.

use std::io::Write;

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::trace::{CodeInfo, EventKind, EventRef, TraceError, TraceWriter};

/// One record of the live ring.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LiveRecord {
    /// A code seen for the first time; announced before any event refers to it.
    Code(CodeInfo),
    /// Events of one thread, in order.
    Events(EventBatch),
}

/// A run of events of one thread and the snapshot bytes they refer to.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    /// Thread id (`threading.get_ident()`).
    pub thread: u64,
    /// The events, in the order they happened.
    pub events: Vec<RawEvent>,
    /// Snapshot bytes: event `i` with `snapshot_len > 0` owns the next `snapshot_len - 1` bytes.
    pub snapshots: Vec<u8>,
}

/// Kinds of [`RawEvent`], in [`Event`] order.
pub mod kind {
    /// `PY_START`.
    pub const CALL: u8 = 0;
    /// `PY_RETURN`.
    pub const RETURN: u8 = 1;
    /// `PY_YIELD`.
    pub const YIELD: u8 = 2;
    /// `PY_RESUME`.
    pub const RESUME: u8 = 3;
    /// `RAISE`.
    pub const RAISE: u8 = 4;
    /// `PY_UNWIND`.
    pub const UNWIND: u8 = 5;
}

/// One event as a callback records it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// Raw clock ticks; the drain converts them to monotonic nanoseconds.
    pub ticks: u64,
    /// Code id.
    pub code: u32,
    /// 0 when the event has no snapshot, else 1 + its length in [`EventBatch::snapshots`].
    pub snapshot_len: u32,
    /// One of [`kind`].
    pub kind: u8,
    /// The call's flags on a return or unwind ([`crate::trace::MUTATED_ARGS`]).
    pub flags: u8,
}

/// Why a ring record could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The bytes are not a valid archive (a foreign or damaged ring).
    #[error("invalid live record: {0}")]
    Invalid(String),
    /// An event names a kind that does not exist or snapshot bytes the batch does not hold.
    #[error("inconsistent event batch: {0}")]
    Inconsistent(&'static str),
    /// Writing the trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl LiveRecord {
    /// Serializes `self` into `out` (cleared first), ready to push into the ring.
    pub fn encode_into(&self, out: &mut AlignedVec) -> Result<(), LiveError> {
        out.clear();
        let taken = std::mem::take(out);
        match rkyv::api::high::to_bytes_in::<_, rancor::Error>(self, taken) {
            Ok(bytes) => {
                *out = bytes;
                Ok(())
            }
            Err(e) => Err(LiveError::Invalid(e.to_string())),
        }
    }

    /// Validates a record read from the ring (`bytes` must be 16-aligned: copy it into an
    /// [`AlignedVec`] first).
    pub fn access(bytes: &[u8]) -> Result<&ArchivedLiveRecord, LiveError> {
        rkyv::access::<ArchivedLiveRecord, rancor::Error>(bytes)
            .map_err(|e| LiveError::Invalid(e.to_string()))
    }
}

/// Appends the events of `batch` to `out`, converting ticks to nanoseconds with `to_ns`;
/// returns how many were written. Every code must have been added to `out` already.
pub fn write_batch<W: Write>(
    batch: &ArchivedEventBatch,
    to_ns: impl Fn(u64) -> u64,
    out: &mut TraceWriter<W>,
) -> Result<u64, LiveError> {
    write_batch_as(batch, batch.thread.to_native(), Some, to_ns, out)
}

/// [`write_batch`] for a batch of another process (a child's ring): its events are written as
/// thread `thread`'s, and its code ids translated by `code` (`None`: a code its ring never
/// announced, which makes the batch inconsistent).
pub fn write_batch_as<W: Write>(
    batch: &ArchivedEventBatch,
    thread: u64,
    code: impl Fn(u32) -> Option<u32>,
    to_ns: impl Fn(u64) -> u64,
    out: &mut TraceWriter<W>,
) -> Result<u64, LiveError> {
    let bytes = batch.snapshots.as_slice();
    let mut at = 0usize;
    for raw in batch.events.iter() {
        let len = raw.snapshot_len.to_native();
        let snapshot = if len == 0 {
            None
        } else {
            let end = at
                .checked_add(len as usize - 1)
                .filter(|&end| end <= bytes.len())
                .ok_or(LiveError::Inconsistent(
                    "snapshot past the end of the batch",
                ))?;
            let s = &bytes[at..end];
            at = end;
            Some(s)
        };
        let kind = match raw.kind {
            kind::CALL => EventKind::Call,
            kind::RETURN => EventKind::Return,
            kind::YIELD => EventKind::Yield,
            kind::RESUME => EventKind::Resume,
            kind::RAISE => EventKind::Raise,
            kind::UNWIND => EventKind::Unwind,
            _ => return Err(LiveError::Inconsistent("unknown event kind")),
        };
        let code = code(raw.code.to_native())
            .ok_or(LiveError::Inconsistent("a code its ring never announced"))?;
        out.write_event(EventRef::from_parts(
            kind,
            code,
            thread,
            to_ns(raw.ticks.to_native()),
            u32::from(raw.flags),
            snapshot,
        ))?;
    }
    Ok(batch.events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, TraceHeader, TraceReader, MUTATED_ARGS};

    fn code(id: u32) -> CodeInfo {
        CodeInfo {
            id,
            module: "m".into(),
            qualname: format!("f{id}"),
            file: "m.py".into(),
            first_line: 1,
            code_hash: 7,
        }
    }

    fn batch() -> EventBatch {
        let ev = |kind, code, ticks, snapshot_len, flags| RawEvent {
            ticks,
            code,
            snapshot_len,
            kind,
            flags,
        };
        EventBatch {
            thread: 42,
            events: vec![
                ev(kind::CALL, 0, 10, 3, 0),
                ev(kind::CALL, 1, 11, 0, 0),
                ev(kind::RAISE, 1, 12, 1, 0),
                ev(kind::UNWIND, 1, 13, 0, 0),
                ev(kind::RETURN, 0, 20, 2, 1),
            ],
            snapshots: vec![1, 2, 9],
        }
    }

    #[test]
    fn a_batch_round_trips_through_the_ring_encoding_into_trace_events() {
        let mut buf = AlignedVec::new();
        LiveRecord::Events(batch()).encode_into(&mut buf).unwrap();
        let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&buf).unwrap() else {
            panic!("not a batch");
        };
        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        w.add_code(code(0)).unwrap();
        w.add_code(code(1)).unwrap();
        assert_eq!(write_batch(archived, |t| t * 100, &mut w).unwrap(), 5);
        let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
        let events: Vec<Event> = r.events().map(Event::from).collect();
        assert_eq!(
            events,
            [
                Event::Call {
                    code: 0,
                    thread: 42,
                    t_ns: 1000,
                    args: Some(vec![1, 2])
                },
                Event::Call {
                    code: 1,
                    thread: 42,
                    t_ns: 1100,
                    args: None
                },
                Event::Raise {
                    code: 1,
                    thread: 42,
                    t_ns: 1200,
                    exception: Some(vec![])
                },
                Event::Unwind {
                    code: 1,
                    flags: 0,
                    thread: 42,
                    t_ns: 1300
                },
                Event::Return {
                    code: 0,
                    flags: MUTATED_ARGS,
                    thread: 42,
                    t_ns: 2000,
                    value: Some(vec![9])
                },
            ]
        );
    }

    #[test]
    fn inconsistent_batches_and_garbage_are_errors() {
        let mut bad = batch();
        bad.events[4].snapshot_len = 5;
        let mut buf = AlignedVec::new();
        LiveRecord::Events(bad).encode_into(&mut buf).unwrap();
        let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&buf).unwrap() else {
            panic!("not a batch");
        };
        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        w.add_code(code(0)).unwrap();
        w.add_code(code(1)).unwrap();
        assert!(matches!(
            write_batch(archived, |t| t, &mut w),
            Err(LiveError::Inconsistent(_))
        ));

        let mut unknown = batch();
        unknown.events[0].kind = 9;
        LiveRecord::Events(unknown).encode_into(&mut buf).unwrap();
        let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&buf).unwrap() else {
            panic!("not a batch");
        };
        assert!(write_batch(archived, |t| t, &mut w).is_err());

        let mut garbage = AlignedVec::<16>::new();
        garbage.extend_from_slice(&[0xAB; 64]);
        assert!(LiveRecord::access(&garbage).is_err());
    }
}
