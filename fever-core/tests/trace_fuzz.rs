//! Property tests of the trace reader: random traces round-trip, and random bytes or random
//! mutations of valid traces never make the reader panic. Some mutations are "resealed" (every
//! checksum recomputed afterwards, by an independent implementation of the layout below) so
//! they get past the checksums and reach decompression, record decoding and the cross-checks.

use fever_core::trace::{
    CodeInfo, Event, TraceHeader, TraceReader, TraceWriter, FIRST_OPAQUE_RECORD,
};
use proptest::prelude::*;
use proptest::sample::Index;
use xxhash_rust::xxh3::xxh3_64;

/// One thing the tracer can write.
#[derive(Debug, Clone)]
enum Item {
    Event(Event),
    Opaque(u32, Vec<u8>),
}

fn arb_snapshot() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..48))
}

fn arb_event(codes: u32) -> impl Strategy<Value = Event> {
    let base = (any::<u64>(), 0..codes, any::<u64>());
    prop_oneof![
        (base.clone(), arb_snapshot()).prop_map(|((thread, code, t_ns), args)| Event::Call {
            thread,
            code,
            t_ns,
            args
        }),
        (base.clone(), arb_snapshot(), any::<u32>()).prop_map(
            |((thread, code, t_ns), value, flags)| Event::Return {
                thread,
                code,
                flags,
                t_ns,
                value,
            }
        ),
        (base.clone(), arb_snapshot()).prop_map(|((thread, code, t_ns), value)| {
            Event::Yield {
                thread,
                code,
                t_ns,
                value,
            }
        }),
        base.clone()
            .prop_map(|(thread, code, t_ns)| Event::Resume { thread, code, t_ns }),
        (base.clone(), arb_snapshot()).prop_map(|((thread, code, t_ns), exception)| {
            Event::Raise {
                thread,
                code,
                t_ns,
                exception,
            }
        }),
        (base, any::<u32>()).prop_map(|((thread, code, t_ns), flags)| Event::Unwind {
            thread,
            code,
            t_ns,
            flags
        }),
    ]
}

fn arb_item(codes: u32) -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => arb_event(codes).prop_map(Item::Event),
        1 => (FIRST_OPAQUE_RECORD..=u32::MAX, prop::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(k, b)| Item::Opaque(k, b)),
    ]
}

/// A trace's content plus the writer's chunk size.
#[derive(Debug, Clone)]
struct Content {
    header: TraceHeader,
    codes: Vec<CodeInfo>,
    items: Vec<Item>,
    chunk_size: usize,
}

fn arb_content() -> impl Strategy<Value = Content> {
    (1u32..6).prop_flat_map(|n| {
        let header = (
            ".{0,20}",
            prop::collection::vec(".{0,12}", 0..4),
            any::<u64>(),
        )
            .prop_map(|(python_version, argv, started_unix_ns)| TraceHeader {
                python_version,
                argv,
                started_unix_ns,
                options: vec![("k".into(), "v".into())],
                ..TraceHeader::default()
            });
        let codes = prop::collection::vec(
            (".{0,10}", ".{0,30}", any::<u32>(), any::<u64>()),
            n as usize,
        )
        .prop_map(|v| {
            v.into_iter()
                .zip(0u32..)
                .map(|((module, qualname, first_line, code_hash), id)| CodeInfo {
                    id: id * 7 + 3,
                    module,
                    qualname,
                    file: "f.py".into(),
                    first_line,
                    code_hash,
                })
                .collect::<Vec<_>>()
        });
        (
            header,
            codes,
            prop::collection::vec(arb_item(n), 0..40),
            prop_oneof![Just(0usize), 1usize..600, Just(usize::MAX)],
        )
            .prop_map(|(header, codes, items, chunk_size)| Content {
                header,
                codes,
                items,
                chunk_size,
            })
    })
}

/// Writes `content`, adding all codes first; event code fields index into `codes`.
fn write(content: &Content) -> (Vec<u8>, Vec<Event>) {
    let mut w =
        TraceWriter::with_chunk_size(Vec::new(), &content.header, content.chunk_size).unwrap();
    for c in &content.codes {
        w.add_code(c.clone()).unwrap();
    }
    let mut events = Vec::new();
    for item in &content.items {
        match item {
            Item::Event(e) => {
                let e = with_code(e, content.codes[e.code() as usize].id);
                w.write_event(&e).unwrap();
                events.push(e);
            }
            Item::Opaque(kind, body) => w.write_record(*kind, body).unwrap(),
        }
    }
    (w.finish().unwrap(), events)
}

fn with_code(e: &Event, id: u32) -> Event {
    let mut e = e.clone();
    match &mut e {
        Event::Call { code, .. }
        | Event::Return { code, .. }
        | Event::Yield { code, .. }
        | Event::Resume { code, .. }
        | Event::Raise { code, .. }
        | Event::Unwind { code, .. } => *code = id,
    }
    e
}

/// Reads `bytes`; when that succeeds, touches everything the reader hands out.
fn read_everything(bytes: &[u8]) {
    let Ok(r) = TraceReader::from_bytes(bytes) else {
        return;
    };
    let _ = format!("{r:?} {:?}", r.incomplete().map(ToString::to_string));
    let mut events = 0u64;
    for rec in r.records() {
        if let Some(e) = rec.event() {
            let owned = Event::from(e);
            assert_eq!(owned.snapshot(), e.snapshot());
            assert!(r.code(e.code()).is_some());
            events += 1;
        }
        if let Some(c) = rec.code() {
            assert!(r.codes().contains(c));
        }
    }
    assert_eq!(events, r.event_count());
    assert_eq!(r.records().count() as u64, r.record_count());
}

fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(slot) = b.get_mut(at..at + 8) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
}

fn sum(b: &[u8], from: usize, to: usize) -> u64 {
    b.get(from..to).map_or(0, xxh3_64)
}

/// Recomputes every checksum of a (possibly mutated) trace, following the documented layout:
/// a 32-byte file header, the archived trace header, then 40-byte block headers each followed
/// by its payload padded to 8, and after the code table block a 56-byte footer. A stored
/// (uncompressed) payload's decompressed length is set to its length.
fn reseal(b: &mut [u8]) {
    let Some(header_len) = u32_at(b, 12) else {
        return;
    };
    let header_end = 32usize.saturating_add(header_len);
    if header_end > b.len() {
        return;
    }
    put_u64(b, 16, sum(b, 32, header_end));
    put_u64(b, 24, sum(b, 0, 24));
    let mut pos = align8(header_end);
    while let Some(kind) = b.get(pos..pos + 4) {
        let table = kind == b"FVCT";
        if kind != b"FVCH" && !table {
            return;
        }
        let Some(len) = u32_at(b, pos + 4) else {
            return;
        };
        let end = (pos + 40).saturating_add(len);
        if end > b.len() {
            return;
        }
        if u32_at(b, pos + 20) == Some(0) {
            b.copy_within(pos + 4..pos + 8, pos + 16);
        }
        let payload_sum = sum(b, pos + 40, end);
        put_u64(b, pos + 24, payload_sum);
        put_u64(b, pos + 32, sum(b, pos, pos + 32));
        let block_end = align8(end);
        if table {
            put_u64(b, block_end, pos as u64);
            put_u64(b, block_end + 8, (block_end - pos) as u64);
            put_u64(b, block_end + 16, payload_sum);
            put_u64(b, block_end + 40, sum(b, block_end, block_end + 40));
            return;
        }
        pos = block_end;
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Duplicate(Index, usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, mask) => {
            let at = i.index(bytes.len());
            bytes[at] ^= mask;
        }
        Mutation::Set(i, v) => {
            let at = i.index(bytes.len());
            bytes[at] = *v;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, v) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, v.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i.index(bytes.len());
            bytes.drain(at..(at + n).min(bytes.len()));
        }
        Mutation::Duplicate(i, n) => {
            let at = i.index(bytes.len());
            let copy = bytes[at..(at + n).min(bytes.len())].to_vec();
            bytes.splice(at..at, copy);
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn random_traces_round_trip(content in arb_content()) {
        let (bytes, events) = write(&content);
        let r = TraceReader::from_bytes(&bytes).unwrap();
        prop_assert!(r.is_complete());
        prop_assert_eq!(r.header(), &content.header);
        prop_assert_eq!(r.codes(), content.codes.as_slice());
        let read: Vec<Event> = r.events().map(Event::from).collect();
        prop_assert_eq!(read, events);
        let opaque: Vec<(u32, Vec<u8>)> = r
            .records()
            .filter(|rec| rec.kind() >= FIRST_OPAQUE_RECORD)
            .map(|rec| (rec.kind(), rec.body().to_vec()))
            .collect();
        let expected: Vec<(u32, Vec<u8>)> = content
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Opaque(k, b) => Some((*k, b.clone())),
                Item::Event(_) => None,
            })
            .collect();
        prop_assert_eq!(opaque, expected);
    }
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_everything(&bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_magic_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..2048),
        reseal_it in any::<bool>(),
    ) {
        let mut bytes = b"FEVERTRC\x02\0\0\0".to_vec();
        bytes.extend(tail);
        if reseal_it {
            reseal(&mut bytes);
        }
        read_everything(&bytes);
    }

    #[test]
    fn mutated_traces_never_panic(
        content in arb_content(),
        mutations in prop::collection::vec(arb_mutation(), 1..6),
        reseal_it in any::<bool>(),
    ) {
        let (mut bytes, _) = write(&content);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if reseal_it {
            reseal(&mut bytes);
        }
        read_everything(&bytes);
    }

    #[test]
    fn unresealed_flips_are_always_errors(
        content in arb_content(),
        at in any::<Index>(),
        mask in 1u8..,
    ) {
        let (mut bytes, _) = write(&content);
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        prop_assert!(TraceReader::from_bytes(&bytes).is_err(), "byte {} ^ {:#x}", at, mask);
    }
}

#[test]
fn reseal_helper_agrees_with_the_writer() {
    // If the helper's idea of the layout were wrong, the resealed cases would test nothing.
    let content = Content {
        header: TraceHeader::default(),
        codes: vec![CodeInfo::default()],
        items: (0..50)
            .map(|i| {
                Item::Event(Event::Resume {
                    thread: i,
                    code: 0,
                    t_ns: i,
                })
            })
            .collect(),
        // Chunks this small are never worth compressing.
        chunk_size: 16,
    };
    let (bytes, _) = write(&content);
    let mut resealed = bytes.clone();
    reseal(&mut resealed);
    assert_eq!(resealed, bytes);
    // A resealed payload mutation gets past the checksums to the record checks.
    let mut mutated = bytes;
    let first_block = align8(32 + u32_at(&mutated, 12).unwrap());
    assert_eq!(
        u32_at(&mutated, first_block + 20),
        Some(0),
        "the chunk is stored as is"
    );
    mutated[first_block + 40] ^= 0x40; // the tag of the first record
    reseal(&mut mutated);
    let e = TraceReader::from_bytes(&mutated).unwrap_err().to_string();
    assert!(e.starts_with("corrupted record in chunk 0 "), "{e}");
}

#[test]
fn every_resealed_flip_is_caught_by_the_structural_checks_or_reads_cleanly() {
    // With every checksum recomputed after the flip, only framing, counts, rkyv validation and
    // the cross-checks stand between a flipped bit and the caller. Nothing may panic, and the
    // deeper checks must all be reached.
    let content = Content {
        header: TraceHeader {
            argv: vec!["a.py".into(), "a long argument, stored out of line".into()],
            ..TraceHeader::default()
        },
        codes: (0..2)
            .map(|id| CodeInfo {
                id,
                module: "pkg.module".into(),
                qualname: "Class.method".into(),
                ..CodeInfo::default()
            })
            .collect(),
        items: vec![
            Item::Event(Event::Call {
                thread: 1,
                code: 0,
                t_ns: 2,
                args: Some(vec![1, 2, 3]),
            }),
            Item::Opaque(FIRST_OPAQUE_RECORD, vec![9; 5]),
            Item::Event(Event::Unwind {
                thread: 1,
                code: 1,
                t_ns: 3,
                flags: 1,
            }),
        ],
        chunk_size: 64,
    };
    let (bytes, _) = write(&content);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            reseal(&mut b);
            let outcome = match TraceReader::from_bytes(&b) {
                Ok(_) => "read".to_owned(),
                Err(e) => {
                    let msg = e.to_string();
                    // Group by message shape: drop numbers and what follows a detail colon.
                    let msg = msg.split(": ").take(2).collect::<Vec<_>>().join(": ");
                    msg.chars()
                        .filter(|c| !c.is_ascii_digit())
                        .take(60)
                        .collect()
                }
            };
            read_everything(&b);
            *seen.entry(outcome).or_default() += 1;
        }
    }
    let report = format!("{seen:#?}");
    for expected in [
        "read",
        "corrupted record in chunk  (record ): invalid tag",
        "corrupted record in chunk  (record ): invalid code",
        "corrupted trace header: ",
        "corrupted code table: ",
        "event in chunk  refers to unknown code id ",
        "corrupted footer: does not match the rest of the file",
    ] {
        assert!(
            seen.keys().any(|k| k.starts_with(expected)),
            "no outcome {expected:?} in {report}"
        );
    }
}
