//! The trace file format: round trips, incomplete (crashed) traces, every kind of corruption,
//! sizes, and the committed golden files: `tests/golden/v2.trace` (the current format) and
//! `tests/golden/v1.trace` (the format before compression, which is refused by name).
//!
//! Regenerate the current golden file after a deliberate format change (and bump the format
//! version if traces already exist in the wild):
//! `cargo test -p fever-core --test trace_format -- --ignored write_golden`

use std::path::PathBuf;

mod sample;

use fever_core::trace::{
    CodeCalls, CodeInfo, Event, EventKind, RunStats, TraceError, TraceHeader, TraceReader,
    TraceWriter, DEFAULT_CHUNK_SIZE, FIRST_OPAQUE_RECORD, FORMAT_VERSION, RECORD_CODE,
    RECORD_EVENT, RECORD_STATS,
};
use sample::{code, header};

/// Event `i` of a deterministic sequence that cycles through every kind, with snapshots of
/// varied lengths (none, empty, up to 39 bytes).
fn event(i: u64, code: u32) -> Event {
    let thread = 100 + i % 2;
    let t_ns = 5_000 + i * 1_000;
    let snapshot = match i % 4 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            (0..(i * 7 % 40))
                .map(|b| (b * 31 + i).to_le_bytes()[0])
                .collect(),
        ),
    };
    match i % 6 {
        0 => Event::Call {
            thread,
            code,
            t_ns,
            args: snapshot,
        },
        1 => Event::Return {
            thread,
            code,
            flags: u32::from(i % 4 == 3),
            t_ns,
            value: snapshot,
        },
        2 => Event::Yield {
            thread,
            code,
            t_ns,
            value: snapshot,
        },
        3 => Event::Resume { thread, code, t_ns },
        4 => Event::Raise {
            thread,
            code,
            t_ns,
            exception: snapshot,
        },
        _ => Event::Unwind {
            thread,
            code,
            t_ns,
            flags: 0,
        },
    }
}

/// What a test trace holds, in the order it was written.
struct Sample {
    codes: Vec<CodeInfo>,
    events: Vec<Event>,
}

/// Writes `n_events` events over `n_codes` codes; each code is added just before its first
/// event, and an opaque record follows every 5th event.
fn write_sample(n_codes: u32, n_events: u64, chunk_size: usize) -> (Vec<u8>, Sample) {
    let mut w = TraceWriter::with_chunk_size(Vec::new(), &header(), chunk_size).unwrap();
    let mut sample = Sample {
        codes: Vec::new(),
        events: Vec::new(),
    };
    for i in 0..n_events {
        let id = u32::try_from(i).unwrap() % n_codes.max(1);
        if sample.codes.iter().all(|c| c.id != id) {
            w.add_code(code(id)).unwrap();
            sample.codes.push(code(id));
        }
        let e = event(i, id);
        w.write_event(&e).unwrap();
        sample.events.push(e);
        if i % 5 == 4 {
            w.write_record(FIRST_OPAQUE_RECORD + 1, &i.to_le_bytes()[..3])
                .unwrap();
        }
    }
    (w.finish().unwrap(), sample)
}

/// The small trace used by the exhaustive tests and committed as the golden file.
fn small_trace() -> (Vec<u8>, Sample) {
    write_sample(3, 14, 48)
}

fn events_of(r: &TraceReader) -> Vec<Event> {
    r.events().map(Event::from).collect()
}

/// Offset of the first block: the trace header ends there.
fn header_end(bytes: &[u8]) -> usize {
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    (32 + len).next_multiple_of(8)
}

/// A path in the temporary directory, unique to this test process; tests remove their files.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fever-test-{}-{name}", std::process::id()))
}

#[test]
fn round_trip_of_every_event_kind_across_many_chunks() {
    let (bytes, sample) = write_sample(7, 3_000, 256);
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert!(r.is_complete());
    assert_eq!(r.incomplete(), None);
    assert_eq!(r.header(), &header());
    assert_eq!(r.codes(), sample.codes.as_slice());
    assert_eq!(r.code(3), Some(&code(3)));
    assert_eq!(r.code(99), None);
    assert_eq!(events_of(&r), sample.events);
    assert_eq!(r.event_count(), 3_000);
    assert_eq!(r.record_count(), 3_000 + 7 + 600);
    assert!(r.chunk_count() > 50, "{} chunks", r.chunk_count());
    assert_eq!(r.file_len(), bytes.len() as u64);
    for kind in [
        EventKind::Call,
        EventKind::Return,
        EventKind::Yield,
        EventKind::Resume,
        EventKind::Raise,
        EventKind::Unwind,
    ] {
        assert!(r.events().any(|e| e.kind() == kind), "{kind:?}");
    }
    // Archived accessors agree with the owned events.
    for (a, e) in r.events().zip(&sample.events) {
        assert_eq!(
            (a.kind(), a.thread(), a.code(), a.t_ns(), a.snapshot()),
            (e.kind(), e.thread(), e.code(), e.t_ns(), e.snapshot())
        );
    }
}

#[test]
fn records_come_back_in_write_order() {
    let (bytes, sample) = write_sample(2, 10, 64);
    let r = TraceReader::from_bytes(&bytes).unwrap();
    let kinds: Vec<u32> = r.records().map(|rec| rec.kind()).collect();
    // code 0, event 0, code 1, event 1, events 2..=4, opaque, events 5..=9, opaque
    let mut expected = vec![RECORD_CODE, RECORD_EVENT, RECORD_CODE];
    expected.extend([RECORD_EVENT; 4]);
    expected.push(FIRST_OPAQUE_RECORD + 1);
    expected.extend([RECORD_EVENT; 5]);
    expected.push(FIRST_OPAQUE_RECORD + 1);
    assert_eq!(kinds, expected);
    for rec in r.records() {
        assert_eq!(rec.event().is_some(), rec.kind() == RECORD_EVENT);
        assert_eq!(rec.code().is_some(), rec.kind() == RECORD_CODE);
    }
    let opaque: Vec<&[u8]> = r
        .records()
        .filter(|rec| rec.kind() >= FIRST_OPAQUE_RECORD)
        .map(|rec| rec.body())
        .collect();
    assert_eq!(opaque, [&4u64.to_le_bytes()[..3], &9u64.to_le_bytes()[..3]]);
    let codes: Vec<CodeInfo> = r.records().filter_map(|x| x.code()).cloned().collect();
    assert_eq!(codes, sample.codes);
}

#[test]
fn empty_trace_round_trips() {
    let bytes = TraceWriter::new(Vec::new(), &header())
        .unwrap()
        .finish()
        .unwrap();
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert!(r.is_complete());
    assert_eq!(r.header(), &header());
    assert_eq!(r.codes(), &[]);
    assert_eq!(r.events().count(), 0);
    assert_eq!((r.chunk_count(), r.record_count()), (0, 0));

    let bytes = TraceWriter::new(Vec::new(), &TraceHeader::default())
        .unwrap()
        .finish()
        .unwrap();
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert_eq!(r.header(), &TraceHeader::default());
}

#[test]
fn one_record_per_chunk_and_huge_chunks_both_work() {
    for chunk_size in [0, 1, usize::MAX] {
        let (bytes, sample) = write_sample(2, 30, chunk_size);
        let r = TraceReader::from_bytes(&bytes).unwrap();
        assert_eq!(events_of(&r), sample.events, "chunk size {chunk_size}");
        let expected_chunks = if chunk_size <= 1 { 30 + 2 + 6 } else { 1 };
        assert_eq!(r.chunk_count(), expected_chunks, "chunk size {chunk_size}");
    }
}

#[test]
fn large_snapshots_round_trip() {
    let mut w = TraceWriter::with_chunk_size(Vec::new(), &header(), 4096).unwrap();
    w.add_code(code(1)).unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let e = Event::Call {
        thread: 1,
        code: 1,
        t_ns: 2,
        args: Some(big),
    };
    w.write_event(&e).unwrap();
    w.write_event(&event(7, 1)).unwrap();
    let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
    assert_eq!(events_of(&r), [e, event(7, 1)]);
}

#[test]
fn refused_records_leave_the_writer_usable() {
    let mut w = TraceWriter::new(Vec::new(), &header()).unwrap();
    w.add_code(code(1)).unwrap();
    let e = event(2, 1);
    w.write_event(&e).unwrap();
    for kind in [
        0,
        RECORD_EVENT,
        RECORD_CODE,
        RECORD_STATS,
        4,
        FIRST_OPAQUE_RECORD - 1,
    ] {
        assert!(matches!(
            w.write_record(kind, b"x"),
            Err(TraceError::InvalidRecordKind(k)) if k == kind
        ));
    }
    assert!(matches!(
        w.write_event(&event(0, 5)),
        Err(TraceError::UndefinedCode(5))
    ));
    assert!(matches!(
        w.add_code(code(1)),
        Err(TraceError::DuplicateCode(1))
    ));
    // Refused records leave the writer usable and nothing behind.
    w.write_event(&e).unwrap();
    let r = TraceReader::from_bytes(&w.finish().unwrap()).unwrap();
    assert_eq!(events_of(&r), [e.clone(), e]);
    assert_eq!(r.record_count(), 3);
}

/// A deterministic stream of calls and returns like a recursive function's, timestamps tens of
/// nanoseconds apart.
fn recursive_calls(n: u64, mut args: impl FnMut(u64) -> Option<Vec<u8>>) -> Vec<Event> {
    let mut t = 1_000_000_000_000u64;
    (0..n)
        .map(|i| {
            t += 40 + (i * 7919) % 60;
            if i % 2 == 0 {
                Event::Call {
                    thread: 140_000_000_000_000,
                    code: 1,
                    t_ns: t,
                    args: args(i),
                }
            } else {
                Event::Return {
                    thread: 140_000_000_000_000,
                    code: 1,
                    flags: 0,
                    t_ns: t,
                    value: args(i),
                }
            }
        })
        .collect()
}

fn write_events(events: &[Event], chunk_size: usize) -> Vec<u8> {
    let mut w = TraceWriter::with_chunk_size(Vec::new(), &header(), chunk_size).unwrap();
    w.add_code(code(1)).unwrap();
    for e in events {
        w.write_event(e).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn timing_only_events_take_a_few_bytes() {
    let events = recursive_calls(200_000, |_| None);
    let bytes = write_events(&events, DEFAULT_CHUNK_SIZE);
    // Measured: about 1.1 bytes per event (the goal is at most 8).
    assert!(bytes.len() < 2 * events.len(), "{} bytes", bytes.len());
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert_eq!(events_of(&r), events);
}

#[test]
fn repeated_snapshots_are_stored_once_across_chunks() {
    // Five distinct 200-byte arguments, passed over and over; small chunks, so most events
    // refer to a snapshot defined in an earlier chunk.
    let snapshot = |i: u64| {
        let k = i % 5;
        Some(
            (0..200u64)
                .map(|b| (b * 13 + k * 101).to_le_bytes()[0])
                .collect(),
        )
    };
    let events = recursive_calls(5_000, snapshot);
    let bytes = write_events(&events, 4096);
    assert!(bytes.len() < 5_000 * 4, "{} bytes", bytes.len());
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert!(r.chunk_count() > 3, "{} chunks", r.chunk_count());
    assert_eq!(events_of(&r), events);
    // A trace cut at any block boundary holds every snapshot its events refer to.
    for end in block_offsets(&bytes) {
        let r = TraceReader::from_bytes(&bytes[..end]).unwrap();
        let read = events_of(&r);
        assert_eq!(read, events[..read.len()], "cut at {end}");
    }
}

#[test]
fn incompressible_chunks_are_stored_as_is() {
    // Snapshots of random bytes, all different: zstd cannot shrink them.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let events = recursive_calls(200, |_| {
        Some(
            (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect(),
        )
    });
    let bytes = write_events(&events, 1 << 12);
    let first = header_end(&bytes);
    assert_eq!(&bytes[first + 20..first + 24], &[0; 4], "codec: stored");
    assert_eq!(events_of(&TraceReader::from_bytes(&bytes).unwrap()), events);
}

#[test]
fn dropped_writer_leaves_a_readable_incomplete_trace() {
    let path = temp_path("crash.trace");
    let mut expected = Vec::new();
    {
        let mut w = TraceWriter::create(&path, &header()).unwrap();
        w.add_code(code(0)).unwrap();
        for i in 0..500 {
            let e = event(i, 0);
            w.write_event(&e).unwrap();
            expected.push(e);
        }
        // Dropped without `finish`, as when the recorder unwinds.
    }
    let r = TraceReader::open(&path).unwrap();
    let incomplete = *r.incomplete().unwrap();
    assert_eq!(incomplete.readable_len, incomplete.file_len);
    assert_eq!(incomplete.chunks, r.chunk_count() as u64);
    assert!(incomplete.to_string().starts_with("incomplete trace"));
    assert_eq!(r.header(), &header());
    assert_eq!(r.codes(), [code(0)]);
    assert_eq!(events_of(&r), expected);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn flush_makes_everything_so_far_durable() {
    let mut w = TraceWriter::with_chunk_size(Vec::new(), &header(), 1 << 20).unwrap();
    w.add_code(code(0)).unwrap();
    w.write_event(&event(0, 0)).unwrap();
    w.flush().unwrap();
    assert!(w.bytes_written() > 0);
    assert_eq!(w.record_count(), 2);
    // Simulate a crash: take the bytes written so far without finishing.
    let written = usize::try_from(w.bytes_written()).unwrap();
    let bytes = w.finish().unwrap();
    let r = TraceReader::from_bytes(&bytes[..written]).unwrap();
    assert!(!r.is_complete());
    assert_eq!(events_of(&r), [event(0, 0)]);
}

#[test]
fn atomic_create_renames_on_commit() {
    let path = temp_path("atomic.trace");
    let tmp = temp_path("atomic.trace.tmp");
    let _ = std::fs::remove_file(&path);
    let mut w = TraceWriter::create_atomic(&path, &header()).unwrap();
    w.add_code(code(0)).unwrap();
    w.write_event(&event(0, 0)).unwrap();
    w.flush().unwrap();
    assert!(tmp.exists() && !path.exists());
    // While recording, the temporary file reads as an incomplete trace.
    assert!(!TraceReader::open(&tmp).unwrap().is_complete());
    assert_eq!(w.commit().unwrap(), path);
    assert!(path.exists() && !tmp.exists());
    let r = TraceReader::open(&path).unwrap();
    assert!(r.is_complete());
    assert_eq!(events_of(&r), [event(0, 0)]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn truncation_at_every_offset_is_an_error_or_a_prefix() {
    let (bytes, sample) = small_trace();
    let first_block = header_end(&bytes);
    let mut last_events = 0;
    for len in 0..bytes.len() {
        let result = TraceReader::from_bytes(&bytes[..len]);
        if len < first_block {
            let err = result.unwrap_err();
            match len {
                0 => assert!(matches!(err, TraceError::Empty)),
                _ => assert!(
                    matches!(err, TraceError::Truncated(n) if n == len as u64),
                    "{len}: {err}"
                ),
            }
            continue;
        }
        let r = result.unwrap_or_else(|e| panic!("truncated at {len}: {e}"));
        let incomplete = r.incomplete().unwrap_or_else(|| panic!("{len} complete"));
        assert_eq!(incomplete.file_len, len as u64);
        assert!(incomplete.readable_len <= len as u64);
        let events = events_of(&r);
        assert_eq!(events, sample.events[..events.len()], "{len}");
        assert_eq!(r.codes(), &sample.codes[..r.codes().len()]);
        assert!(events.len() >= last_events, "{len}");
        last_events = events.len();
        // Every event's code is known even in a cut-off trace.
        assert!(r.events().all(|e| r.code(e.code()).is_some()));
    }
    assert_eq!(last_events, sample.events.len());
    assert!(TraceReader::from_bytes(&bytes).unwrap().is_complete());
}

#[test]
fn every_flipped_bit_is_an_error() {
    let (bytes, _) = small_trace();
    assert!(bytes.len() > 500, "{} bytes", bytes.len());
    let mut mutated = bytes.clone();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            mutated[at] ^= 1 << bit;
            if let Ok(r) = TraceReader::from_bytes(&mutated) {
                panic!("bit {bit} of byte {at} flipped, still read: {r:?}");
            }
            mutated[at] ^= 1 << bit;
        }
    }
}

#[test]
fn foreign_empty_and_short_files() {
    let err = |bytes: &[u8]| TraceReader::from_bytes(bytes).unwrap_err().to_string();
    assert_eq!(err(b""), "empty file, not a fever trace");
    assert_eq!(
        err(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        "not a fever trace (bad magic)"
    );
    assert_eq!(err(b"hello"), "not a fever trace (bad magic)");
    assert_eq!(err(&[0; 4096]), "not a fever trace (bad magic)");
    assert_eq!(
        err(b"FEVER"),
        "truncated at byte 5, inside the trace header"
    );
    assert_eq!(
        err(b"FEVERTRC\x01\0"),
        "truncated at byte 10, inside the trace header"
    );
    let (bytes, _) = small_trace();
    assert_eq!(
        err(&bytes[..40]),
        "truncated at byte 40, inside the trace header"
    );
    let path = temp_path("does-not-exist.trace");
    let e = TraceReader::open(&path).unwrap_err();
    assert!(matches!(e, TraceError::Io(_)), "{e}");
}

#[cfg(unix)]
#[test]
fn open_rejects_a_foreign_file_before_reading_it() {
    // Endless: reading it whole would never finish.
    assert!(matches!(
        TraceReader::open("/dev/zero").unwrap_err(),
        TraceError::BadMagic
    ));
    let path = temp_path("newer.trace");
    std::fs::write(
        &path,
        b"FEVERTRC\x09\0\0\0 and a layout this fever cannot know",
    )
    .unwrap();
    assert!(matches!(
        TraceReader::open(&path).unwrap_err(),
        TraceError::NewerVersion { found: 9, .. }
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn newer_and_unknown_versions_are_named() {
    let (mut bytes, _) = small_trace();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let e = TraceReader::from_bytes(&bytes).unwrap_err();
    assert!(matches!(
        e,
        TraceError::NewerVersion {
            found: 7,
            supported: FORMAT_VERSION
        }
    ));
    assert_eq!(
        e.to_string(),
        format!("trace format version 7 is newer than this fever ({FORMAT_VERSION})")
    );
    // A newer version is recognised from the first 12 bytes alone: its layout may differ.
    let e = TraceReader::from_bytes(b"FEVERTRC\x03\0\0\0").unwrap_err();
    assert!(matches!(e, TraceError::NewerVersion { found: 3, .. }));
    bytes[8..12].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        TraceReader::from_bytes(&bytes).unwrap_err().to_string(),
        "unsupported trace format version 0"
    );
}

#[test]
fn corruption_messages_name_the_chunk() {
    let (bytes, _) = small_trace();
    let first = header_end(&bytes);
    // A payload byte of chunk 0.
    let mut b = bytes.clone();
    b[first + 40] ^= 0x10;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        format!("chunk 0 checksum mismatch (at byte {first})")
    );
    // Its header.
    let mut b = bytes.clone();
    b[first + 5] ^= 0x10;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        format!("corrupted header of chunk 0 at byte {first}")
    );
    // The trace header, the fixed header and the footer.
    let mut b = bytes.clone();
    b[40] ^= 1;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        "corrupted trace header: checksum mismatch"
    );
    let mut b = bytes.clone();
    b[13] ^= 1;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        "corrupted file header (checksum mismatch)"
    );
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 1] ^= 1;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        "corrupted footer: bad end magic"
    );
    b[n - 1] ^= 1;
    b[n - 20] ^= 1;
    assert_eq!(
        TraceReader::from_bytes(&b).unwrap_err().to_string(),
        "corrupted footer: checksum mismatch"
    );
}

/// Offsets of every block header (found by kind; the test traces hold no such bytes elsewhere).
fn block_offsets(bytes: &[u8]) -> Vec<usize> {
    (header_end(bytes)..bytes.len().saturating_sub(4))
        .step_by(8)
        .filter(|&i| &bytes[i..i + 4] == b"FVCH" || &bytes[i..i + 4] == b"FVCT")
        .collect()
}

#[test]
fn spliced_and_appended_files_are_errors() {
    let (bytes, _) = small_trace();
    let blocks = block_offsets(&bytes);
    assert!(blocks.len() >= 4, "{blocks:?}");
    // A chunk cut out of the middle.
    let spliced = [&bytes[..blocks[1]], &bytes[blocks[2]..]].concat();
    let e = TraceReader::from_bytes(&spliced).unwrap_err();
    assert!(
        matches!(
            e,
            TraceError::ChunkOutOfSequence {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "chunk 2 at byte {} is out of sequence (expected chunk 1)",
            blocks[1]
        )
    );
    // A chunk repeated.
    let doubled = [&bytes[..blocks[2]], &bytes[blocks[1]..]].concat();
    assert!(matches!(
        TraceReader::from_bytes(&doubled).unwrap_err(),
        TraceError::ChunkOutOfSequence {
            expected: 2,
            found: 1,
            ..
        }
    ));
    // Data after the footer.
    let appended = [&bytes[..], b"more"].concat();
    assert_eq!(
        TraceReader::from_bytes(&appended).unwrap_err().to_string(),
        format!(
            "unexpected data after the end of the trace at byte {}",
            bytes.len()
        )
    );
    // Two traces concatenated.
    let twice = [&bytes[..], &bytes[..]].concat();
    assert!(TraceReader::from_bytes(&twice).is_err());
}

#[test]
fn zero_filled_tail_reads_as_incomplete() {
    let (bytes, sample) = small_trace();
    let blocks = block_offsets(&bytes);
    // A crash after the file was extended but before the data reached the disk.
    let mut b = bytes[..blocks[2]].to_vec();
    b.resize(b.len() + 4096, 0);
    let r = TraceReader::from_bytes(&b).unwrap();
    let incomplete = r.incomplete().unwrap();
    assert_eq!(incomplete.readable_len, blocks[2] as u64);
    assert_eq!(r.chunk_count(), 2);
    assert_eq!(
        events_of(&r),
        sample.events[..usize::try_from(r.event_count()).unwrap()]
    );
    // Zeros followed by anything else are corruption.
    b.push(1);
    assert!(matches!(
        TraceReader::from_bytes(&b).unwrap_err(),
        TraceError::CorruptChunkHeader { chunk: 2, .. }
    ));
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v2.trace")
}

/// Rewrites the golden file from the current writer. Run by hand after a deliberate format
/// change (see the top of this file).
#[test]
#[ignore = "rewrites tests/golden/v2.trace"]
fn write_golden() {
    let (bytes, _) = small_trace();
    std::fs::write(golden_path(), bytes).unwrap();
}

#[test]
fn a_version_1_trace_is_named_as_recorded_by_an_older_fever() {
    let v1 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1.trace");
    let e = TraceReader::open(v1).unwrap_err();
    assert!(
        matches!(e, TraceError::OlderVersion { found: 1, .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "trace format version 1 was recorded by an older fever; this fever reads version 2: \
         record the trace again"
    );
}

#[test]
fn golden_v2_trace_reads_with_the_expected_content() {
    let r = TraceReader::open(golden_path()).unwrap();
    assert!(r.is_complete());
    let h = r.header();
    assert_eq!(h.python_version, "3.12.1 (main, Jan 1 2024) [GCC 11.4.0]");
    assert_eq!(h.fever_version, "0.1.0");
    assert_eq!(h.root, "/home/ada/shop");
    assert_eq!(h.argv, ["shop.py", "--fast"]);
    assert_eq!(h.pid, 4242);
    assert_eq!(h.started_unix_ns, 1_700_000_000_123_456_789);
    assert_eq!(h.started_monotonic_ns, 5_000);
    assert_eq!(h.options, [("snapshots".to_owned(), "args".to_owned())]);

    let names: Vec<String> = r.codes().iter().map(CodeInfo::full_name).collect();
    assert_eq!(
        names,
        [
            "shop.cart.Cart.method_0",
            "shop.cart.Cart.method_1",
            "shop.cart.Cart.method_2"
        ]
    );
    let c = r.code(2).unwrap();
    assert_eq!(
        (c.file.as_str(), c.first_line, c.code_hash),
        ("/home/ada/shop/shop/cart.py", 21, 0x0123_4567_89ab_cdef ^ 2)
    );

    let events = events_of(&r);
    assert_eq!(events.len(), 14);
    assert_eq!(r.record_count(), 14 + 3 + 2);
    assert_eq!(r.chunk_count(), 6);
    assert_eq!(
        events[0],
        Event::Call {
            thread: 100,
            code: 0,
            t_ns: 5_000,
            args: None
        }
    );
    assert_eq!(
        events[1],
        Event::Return {
            thread: 101,
            code: 1,
            flags: 0,
            t_ns: 6_000,
            value: Some(Vec::new())
        }
    );
    assert_eq!(
        events[2],
        Event::Yield {
            thread: 100,
            code: 2,
            t_ns: 7_000,
            value: Some(
                (0..14u8)
                    .map(|b| b.wrapping_mul(31).wrapping_add(2))
                    .collect()
            )
        }
    );
    assert_eq!(
        events[3],
        Event::Resume {
            thread: 101,
            code: 0,
            t_ns: 8_000
        }
    );
    assert_eq!(
        events[4],
        Event::Raise {
            thread: 100,
            code: 1,
            t_ns: 9_000,
            exception: None
        }
    );
    assert_eq!(
        events[5],
        Event::Unwind {
            thread: 101,
            code: 2,
            t_ns: 10_000,
            flags: 0,
        }
    );
    assert_eq!(events, small_trace().1.events);
}

#[test]
fn writer_output_is_byte_identical_to_the_golden_file() {
    // Fails when the writer's output changes: regenerate the golden file deliberately (and
    // bump FORMAT_VERSION if released fevers wrote the old format).
    let golden = std::fs::read(golden_path()).unwrap();
    assert!(
        small_trace().0 == golden,
        "the writer no longer produces tests/golden/v2.trace"
    );
}

#[test]
fn run_statistics_round_trip_and_are_checked() {
    let stats = RunStats {
        calls: vec![
            CodeCalls {
                code: 0,
                calls: 1_000_000,
                recorded: 10_000,
            },
            CodeCalls {
                code: 1,
                calls: 3,
                recorded: 3,
            },
        ],
        lost_events: 7,
    };
    let mut w = TraceWriter::new(Vec::new(), &header()).unwrap();
    w.add_code(code(0)).unwrap();
    w.add_code(code(1)).unwrap();
    // Unknown codes and a second statistics record are refused, and the writer stays usable.
    let unknown = RunStats {
        calls: vec![CodeCalls {
            code: 9,
            calls: 1,
            recorded: 1,
        }],
        lost_events: 0,
    };
    assert!(matches!(
        w.write_stats(&unknown),
        Err(TraceError::UndefinedCode(9))
    ));
    w.write_stats(&stats).unwrap();
    assert!(matches!(
        w.write_stats(&stats),
        Err(TraceError::DuplicateStats)
    ));
    let bytes = w.finish().unwrap();
    let r = TraceReader::from_bytes(&bytes).unwrap();
    assert_eq!(r.stats(), Some(&stats));
    let kinds: Vec<u32> = r.records().map(|rec| rec.kind()).collect();
    assert_eq!(kinds, [RECORD_CODE, RECORD_CODE, RECORD_STATS]);

    // A trace without statistics (a crashed recording) reads with none.
    let (plain, _) = small_trace();
    assert_eq!(TraceReader::from_bytes(&plain).unwrap().stats(), None);
}
