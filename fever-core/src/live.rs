//! What the tracer puts in the ring buffer while the program runs, and how those records reach
//! the trace file.
//!
//! Callbacks must cost a few nanoseconds, so each thread encodes its events itself, as they
//! happen, into an [`EventRun`] (the trace's own record stream, times already in nanoseconds); a
//! full run becomes one ring record, an rkyv archive of [`LiveRecord::Events`]. A code is
//! announced by a [`LiveRecord::Code`] record before any run refers to it. The reader side
//! ([`LiveRecord::access`]) validates every record with bytecheck, since a ring file is shared
//! memory, and the trace writer appends a run whole ([`TraceWriter::write_run`]) once a walk over
//! its events found them what the tracer makes: a run the ring's framing let through but whose
//! events are garbage is refused, never copied into the trace.
//!
//! [`TraceWriter::write_run`]: crate::trace::TraceWriter::write_run

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::trace::{CodeInfo, EventRun};

/// One record of the live ring.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LiveRecord {
    /// A code seen for the first time; announced before any event refers to it.
    Code(CodeInfo),
    /// Events of one thread, in order.
    Events(EventRun),
}

/// Why a ring record could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The bytes are not a valid archive (a foreign or damaged ring).
    #[error("invalid live record: {0}")]
    Invalid(String),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{
        Event, EventKind, EventRef, TraceError, TraceHeader, TraceReader, TraceWriter,
    };

    fn run(thread: u64, t0: u64, snapshot: Option<&[u8]>) -> EventRun {
        let mut run = EventRun::default();
        run.push(EventKind::Call, (thread, 0, t0), 0, snapshot);
        run.push(EventKind::Call, (thread, 1, t0 + 100), 0, None);
        run.push(EventKind::Raise, (thread, 1, t0 + 200), 0, None);
        run.push(EventKind::Unwind, (thread, 1, t0 + 300), 0, None);
        run.push(EventKind::Return, (thread, 0, t0 + 1000), 1, None);
        run
    }

    fn through_the_ring(run: EventRun) -> AlignedVec {
        let mut buf = AlignedVec::new();
        LiveRecord::Events(run).encode_into(&mut buf).unwrap();
        buf
    }

    fn events_of(thread: u64, t0: u64, args: Option<Vec<u8>>) -> Vec<Event> {
        vec![
            Event::Call {
                code: 0,
                thread,
                t_ns: t0,
                args,
            },
            Event::Call {
                code: 1,
                thread,
                t_ns: t0 + 100,
                args: None,
            },
            Event::Raise {
                code: 1,
                thread,
                t_ns: t0 + 200,
                exception: None,
            },
            Event::Unwind {
                code: 1,
                flags: 0,
                thread,
                t_ns: t0 + 300,
            },
            Event::Return {
                code: 0,
                flags: 1,
                thread,
                t_ns: t0 + 1000,
                value: None,
            },
        ]
    }

    #[test]
    fn runs_of_two_threads_round_trip_through_the_ring_into_trace_events() {
        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        w.add_code(CodeInfo::sample(0)).unwrap();
        w.add_code(CodeInfo::sample(1)).unwrap();
        let big = vec![9u8; 20];
        // Whole (starting the chunk, then after another thread's), and event by event (a
        // snapshot), which numbers the snapshot so its repeat is stored once.
        let runs = [
            run(42, 1_000, None),
            run(43, 5_000, None),
            run(42, 9_000, Some(&big)),
            run(43, 12_000, Some(&big)),
        ];
        for r in runs {
            let buf = through_the_ring(r);
            let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&buf).unwrap() else {
                panic!("not a run");
            };
            assert_eq!(w.write_run(archived.as_ref()).unwrap(), 5);
        }
        let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
        let events: Vec<Event> = r.events().map(Event::from).collect();
        let mut expected = events_of(42, 1_000, None);
        expected.extend(events_of(43, 5_000, None));
        expected.extend(events_of(42, 9_000, Some(big.clone())));
        expected.extend(events_of(43, 12_000, Some(big)));
        assert_eq!(events, expected);
    }

    #[test]
    fn a_childs_run_is_written_with_its_codes_and_thread_renamed() {
        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        // The program's codes 0 and 1, then the child's 0 and 1 under the trace's 1 and 1 << 31.
        w.add_code(CodeInfo::sample(0)).unwrap();
        w.add_code(CodeInfo::sample(1)).unwrap();
        w.add_code(CodeInfo::sample(1 << 31)).unwrap();
        let child_code = |c: u32| [1, 1 << 31].get(c as usize).copied();
        w.write_run(run(42, 1_000, None).as_ref()).unwrap();
        let buf = through_the_ring(run(7, 5_000, Some(&[1, 2, 3])));
        let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&buf).unwrap() else {
            panic!("not a run");
        };
        let written = w.write_run_as(archived.as_ref(), |e| {
            Some(EventRef::from_parts(
                e.kind(),
                child_code(e.code())?,
                e.thread() + 100,
                e.t_ns(),
                e.flags(),
                e.snapshot(),
            ))
        });
        assert_eq!(written.unwrap(), 5);
        // A code the child never announced refuses its run, and nothing of it is written.
        let refused = w.write_run_as(run(7, 6_000, None).as_ref(), |e| {
            (e.code() == 0).then_some(e)
        });
        assert!(matches!(refused, Err(TraceError::InvalidRun(_))));
        let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
        let events: Vec<Event> = r.events().map(Event::from).collect();
        let mut expected = events_of(42, 1_000, None);
        for e in &events_of(107, 5_000, Some(vec![1, 2, 3])) {
            let e: EventRef<'_> = e.into();
            expected.push(Event::from(EventRef::from_parts(
                e.kind(),
                child_code(e.code()).unwrap(),
                e.thread(),
                e.t_ns(),
                e.flags(),
                e.snapshot(),
            )));
        }
        assert_eq!(events, expected);
    }

    #[test]
    fn runs_with_unknown_codes_or_bad_bytes_are_refused_and_garbage_is_an_error() {
        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        w.add_code(CodeInfo::sample(0)).unwrap();
        assert!(matches!(
            w.write_run(run(1, 0, None).as_ref()),
            Err(TraceError::UndefinedCode(1))
        ));
        w.add_code(CodeInfo::sample(1)).unwrap();
        let mut cut = through_the_ring(run(1, 0, Some(&[1, 2, 3])));
        let ArchivedLiveRecord::Events(archived) = LiveRecord::access(&cut).unwrap() else {
            panic!("not a run");
        };
        let mut bad = archived.as_ref();
        bad.bytes = &bad.bytes[..bad.bytes.len() - 1];
        assert!(matches!(w.write_run(bad), Err(TraceError::InvalidRun(_))));
        cut.clear();
        assert_eq!(w.write_run(run(1, 0, None).as_ref()).unwrap(), 5);
        let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
        assert_eq!(r.events().count(), 5);

        let mut garbage = AlignedVec::<16>::new();
        garbage.extend_from_slice(&[0xAB; 64]);
        assert!(LiveRecord::access(&garbage).is_err());
    }

    /// The drain's reading of a real ring file whose bytes were damaged (a writer that crashed
    /// mid-record, a stray write): a record header out of bounds, a run whose events are
    /// garbage inside a valid archive. Each is an error, the rest is written, and the trace reads.
    #[test]
    fn damaged_records_of_a_ring_file_are_refused_and_the_others_reach_the_trace() {
        use crate::ring::{ReadOutcome, RingReader, RingWriter};
        let dir = std::env::temp_dir().join(format!("fever-live-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ring");
        let mut ring = RingWriter::create(&path, 1 << 16).unwrap();
        let mut encoded = AlignedVec::new();
        for id in 0..2 {
            LiveRecord::Code(CodeInfo::sample(id))
                .encode_into(&mut encoded)
                .unwrap();
            ring.push(&encoded).unwrap();
        }
        let runs: Vec<EventRun> = (0..6).map(|i| run(40 + i, i * 1_000, None)).collect();
        for r in &runs {
            LiveRecord::Events(r.clone())
                .encode_into(&mut encoded)
                .unwrap();
            ring.push(&encoded).unwrap();
        }
        ring.flush();
        let mut file = std::fs::read(&path).unwrap();
        // Run 1's events: garbage in the middle of its bytes (the archive around them intact).
        let bytes = runs[1].as_ref().bytes;
        let at = file.windows(bytes.len()).position(|w| w == bytes).unwrap();
        for b in &mut file[at + 2..at + bytes.len() - 2] {
            *b = 0xFF;
        }
        // Run 4's record header: a length past the end of what was published.
        let bytes = runs[4].as_ref().bytes;
        let at = file.windows(bytes.len()).position(|w| w == bytes).unwrap();
        let header = (0..at)
            .rev()
            .find(|&h| h % 8 == 0 && file[h + 4..h + 8] == 0x5245_4331u32.to_le_bytes())
            .unwrap();
        file[header..header + 4].copy_from_slice(&0x00ff_fff0u32.to_le_bytes());
        drop(ring);
        let damaged = dir.join("damaged");
        std::fs::write(&damaged, &file).unwrap();
        let mut reader = RingReader::open(&damaged).unwrap();

        let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        let (mut buf, mut aligned) = (Vec::new(), AlignedVec::<16>::new());
        let (mut corrupt, mut written) = (0, Vec::new());
        loop {
            match reader.next_record(&mut buf) {
                Ok(ReadOutcome::Record(_)) => {
                    aligned.clear();
                    aligned.extend_from_slice(&buf);
                    match LiveRecord::access(&aligned) {
                        Ok(ArchivedLiveRecord::Code(info)) => {
                            w.add_code(CodeInfo::from(info)).unwrap();
                        }
                        Ok(ArchivedLiveRecord::Events(run)) => match w.write_run(run.as_ref()) {
                            Ok(_) => written.push(run.as_ref().last.thread),
                            Err(TraceError::InvalidRun(_)) => corrupt += 1,
                            Err(e) => panic!("{e}"),
                        },
                        Err(_) => corrupt += 1,
                    }
                }
                Ok(ReadOutcome::Empty) => break,
                Ok(ReadOutcome::Lost(n)) => panic!("lost {n}"),
                // The reader moves on to the newest record published.
                Err(_) => corrupt += 1,
            }
        }
        assert_eq!(corrupt, 2);
        // Run 1 refused; the reader skipped from run 4's bad header to the end.
        assert_eq!(written, [40, 42, 43]);
        let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
        let events: Vec<Event> = r.events().map(Event::from).collect();
        let expected: Vec<Event> = [0, 2, 3]
            .into_iter()
            .flat_map(|i| events_of(40 + i, i * 1_000, None))
            .collect();
        assert_eq!(events, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
