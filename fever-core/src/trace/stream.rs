//! The record stream inside a chunk (before compression): how events, code announcements, run
//! statistics and opaque records are encoded as bytes, and decoded again with every field
//! checked. The only place that knows this encoding; see the table in the [module docs](super).
//!
//! Events are small because they repeat their neighbours: the thread and the code are written
//! only when they differ from the previous event's in the chunk, the timestamp as a signed
//! difference from the previous event's, every number as a LEB128 varint. A snapshot of 8 bytes
//! or more is written once per trace and referred to by its number afterwards (interned by a
//! 128-bit content hash), so a value passed a million times is stored once. Every chunk starts
//! from a fresh thread, code and timestamp, so a chunk decodes without the ones before it
//! except for the codes and snapshots they defined (which a prefix of the file always holds).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::mem::MaybeUninit;

use rkyv::{Archive, Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use super::event::{EventKind, EventRef};
use super::ids::IdHasher;
use super::meta::{CodeCalls, CodeInfo, RunStats};
use crate::varint::VarintError;

/// Tag bits 0..3: the event kind (0..=5), or [`TAG_RECORD`] for any other record.
const KIND_MASK: u8 = 0b0000_0111;
/// Tag value of a non-event record: varint kind, varint length, body.
pub(crate) const TAG_RECORD: u8 = 6;
/// Tag bit: the thread differs from the previous event's; a varint thread id follows.
const NEW_THREAD: u8 = 1 << 3;
/// Tag bit: the code differs from the previous event's; a varint code id follows.
const NEW_CODE: u8 = 1 << 4;
/// Tag bits 5..7: how the snapshot is stored (one of the `SNAP_*` values).
const SNAP_SHIFT: u8 = 5;
const SNAP_MASK: u8 = 0b0110_0000;
/// No snapshot.
const SNAP_NONE: u8 = 0;
/// Snapshot bytes inline (varint length, bytes), not numbered.
const SNAP_INLINE: u8 = 1;
/// Snapshot bytes inline and numbered: the trace's next snapshot number refers to them.
const SNAP_DEFINE: u8 = 2;
/// A snapshot defined earlier: varint `next number - 1 - its number`.
const SNAP_REF: u8 = 3;
/// Tag bit: non-zero flags follow as a varint (`Return` and `Unwind` only).
const HAS_FLAGS: u8 = 1 << 7;

/// Snapshots shorter than this are always inline: a reference would not be much shorter.
const MIN_INTERNED: usize = 8;
/// The writer forgets its interned snapshots when it has this many (a reference is only ever
/// an optimisation, so forgetting bounds memory and loses nothing).
const MAX_INTERNED: usize = 1 << 20;

const KINDS: [EventKind; 6] = [
    EventKind::Call,
    EventKind::Return,
    EventKind::Yield,
    EventKind::Resume,
    EventKind::Raise,
    EventKind::Unwind,
];

fn kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Call => 0,
        EventKind::Return => 1,
        EventKind::Yield => 2,
        EventKind::Resume => 3,
        EventKind::Raise => 4,
        EventKind::Unwind => 5,
    }
}

fn has_snapshot(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Call | EventKind::Return | EventKind::Yield | EventKind::Raise
    )
}

fn has_flags(kind: EventKind) -> bool {
    matches!(kind, EventKind::Return | EventKind::Unwind)
}

/// The kind of the event whose tag is `tag`, once the tag is checked: a snapshot or flags only
/// on the kinds that have them.
fn event_kind(tag: u8) -> Result<EventKind, String> {
    let kind = *KINDS
        .get(usize::from(tag & KIND_MASK))
        .ok_or_else(|| format!("invalid record tag {tag:#04x}"))?;
    let mode = (tag & SNAP_MASK) >> SNAP_SHIFT;
    if (mode != SNAP_NONE && !has_snapshot(kind)) || (tag & HAS_FLAGS != 0 && !has_flags(kind)) {
        return Err(format!("invalid tag {tag:#04x} for a {kind:?} event"));
    }
    Ok(kind)
}

pub(crate) use crate::varint::put as put_varint;

/// The zigzag code of `d` read as a two's complement signed difference: small differences of
/// either sign become small numbers.
#[allow(clippy::cast_possible_wrap)] // a bit-pattern reinterpretation
fn zigzag(d: u64) -> u64 {
    crate::varint::zigzag(d as i64)
}

/// The difference whose zigzag code is `z`.
#[allow(clippy::cast_sign_loss)] // a bit-pattern reinterpretation
fn unzigzag(z: u64) -> u64 {
    crate::varint::unzigzag(z) as u64
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// What the previous event of the chunk had; the next one is written as a difference.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Previous {
    thread: u64,
    code: u32,
    t_ns: u64,
}

/// Interned snapshots: 128-bit content hash to number.
type Interned = HashMap<u128, u32, BuildHasherDefault<IdHasher>>;

/// The writer's side: appends records to a chunk buffer.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    previous: Previous,
    interned: Interned,
    /// Number of the next defined snapshot.
    next_snapshot: u32,
}

impl Encoder {
    /// Call at the start of every chunk.
    pub fn start_chunk(&mut self) {
        self.previous = Previous::default();
    }

    /// Appends `event` to `out`.
    pub fn event(&mut self, event: EventRef<'_>, out: &mut Vec<u8>) {
        let kind = event.kind();
        let snapshot = event.snapshot().filter(|_| has_snapshot(kind));
        let (mode, reference) = match snapshot {
            None => (SNAP_NONE, 0),
            Some(s) if s.len() < MIN_INTERNED => (SNAP_INLINE, 0),
            Some(s) => self.intern(s),
        };
        let flags = if has_flags(kind) { event.flags() } else { 0 };
        self.previous = put_event(
            out,
            self.previous,
            kind,
            (event.thread(), event.code(), event.t_ns(), flags),
            (mode, snapshot, reference),
        );
    }

    /// Continues after events appended whole ([`TraceWriter::write_run`]), the last of which
    /// had `last`.
    ///
    /// [`TraceWriter::write_run`]: super::TraceWriter::write_run
    pub fn continue_after(&mut self, last: RunLast) {
        self.previous = Previous {
            thread: last.thread,
            code: last.code,
            t_ns: last.t_ns,
        };
    }

    /// Appends the events of a run's record stream `run` from `at` on, which a previous event
    /// equal to this encoder's was written before (the run's start, or its first event written
    /// by [`event`](Self::event)), and returns how many events it held. Events without a
    /// snapshot, and those whose snapshot is too short to number, are copied as they are; a
    /// snapshot to number changes only its event's tag (it defines the snapshot) or is replaced
    /// by its reference. Each event's head is skipped by its varints without being decoded.
    ///
    /// On an error (a record that is not an event of a run: a bad tag, a numbered snapshot, a
    /// length past the end) `out` holds a part of the run: the caller cuts it back and
    /// [`restore`](Self::restore)s the encoder.
    pub fn run_tail(
        &mut self,
        run: &[u8],
        mut at: usize,
        out: &mut Vec<u8>,
    ) -> Result<u32, String> {
        let mut copied = at;
        let mut events = 0u32;
        while at < run.len() {
            let start = at;
            let tag = run[at];
            event_kind(tag)?;
            at += 1;
            // The time difference, and the thread, code and flags when the tag says so.
            let varints = 1
                + usize::from(tag & NEW_THREAD != 0)
                + usize::from(tag & NEW_CODE != 0)
                + usize::from(tag & HAS_FLAGS != 0);
            for _ in 0..varints {
                at = skip_varint(run, at)?;
            }
            events += 1;
            match (tag & SNAP_MASK) >> SNAP_SHIFT {
                SNAP_NONE => {}
                SNAP_INLINE => {
                    let len_at = at;
                    let mut c = Cursor { bytes: run, at };
                    let snapshot = c.bytes()?;
                    at = c.at;
                    if snapshot.len() < MIN_INTERNED {
                        continue;
                    }
                    let (mode, reference) = self.intern(snapshot);
                    if mode == SNAP_INLINE {
                        continue;
                    }
                    out.extend_from_slice(&run[copied..start]);
                    out.push((tag & !SNAP_MASK) | (mode << SNAP_SHIFT));
                    if mode == SNAP_DEFINE {
                        out.extend_from_slice(&run[start + 1..at]);
                    } else {
                        out.extend_from_slice(&run[start + 1..len_at]);
                        put_varint(out, reference);
                    }
                    copied = at;
                }
                _ => return Err(format!("invalid snapshot in tag {tag:#04x} of a run")),
            }
        }
        out.extend_from_slice(&run[copied..]);
        Ok(events)
    }

    /// What [`restore`](Self::restore) goes back to.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            previous: self.previous,
            next_snapshot: self.next_snapshot,
        }
    }

    /// Forgets what was encoded since `checkpoint` (the snapshots numbered since included),
    /// after the caller cut those bytes off its chunk.
    pub fn restore(&mut self, checkpoint: Checkpoint) {
        self.previous = checkpoint.previous;
        if self.next_snapshot != checkpoint.next_snapshot {
            self.interned.retain(|_, n| *n < checkpoint.next_snapshot);
            self.next_snapshot = checkpoint.next_snapshot;
        }
    }

    /// Whether `snapshot` is defined now or referred to, and the reference.
    fn intern(&mut self, snapshot: &[u8]) -> (u8, u64) {
        let hash = xxh3_128(snapshot);
        if let Some(&n) = self.interned.get(&hash) {
            return (SNAP_REF, u64::from(self.next_snapshot - 1 - n));
        }
        if self.interned.len() >= MAX_INTERNED {
            self.interned.clear();
        }
        let Some(next) = self.next_snapshot.checked_add(1) else {
            return (SNAP_INLINE, 0);
        };
        self.interned.insert(hash, self.next_snapshot);
        self.next_snapshot = next;
        (SNAP_DEFINE, 0)
    }

    /// Appends a non-event record of `kind` with `body`.
    pub fn record(kind: u32, body: &[u8], out: &mut Vec<u8>) {
        out.push(TAG_RECORD);
        put_varint(out, u64::from(kind));
        put_bytes(out, body);
    }
}

/// An [`Encoder`]'s state at one point, to go back to ([`Encoder::restore`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpoint {
    previous: Previous,
    next_snapshot: u32,
}

/// Where the varint at `bytes[at..]` ends (at most 10 bytes; not checked further).
#[inline(always)]
#[allow(clippy::inline_always)] // once per field of every event the writer copies
fn skip_varint(bytes: &[u8], mut at: usize) -> Result<usize, String> {
    for _ in 0..10 {
        let b = *bytes.get(at).ok_or("cut off inside a number")?;
        at += 1;
        if b < 0x80 {
            return Ok(at);
        }
    }
    Err("number too long".into())
}

/// Appends one event record, written as a difference from `p`: `fields` are its thread, code,
/// time and flags (0 for kinds without flags), `snap` how its snapshot is stored (a `SNAP_*`
/// mode, the bytes, the reference). Returns what the next event is written against.
#[inline(always)]
#[allow(clippy::inline_always)] // every event of a recording runs it, in the program's thread
fn put_event(
    out: &mut Vec<u8>,
    p: Previous,
    kind: EventKind,
    (thread, code, t_ns, flags): (u64, u32, u64, u32),
    (mode, snapshot, reference): (u8, Option<&[u8]>, u64),
) -> Previous {
    let mut tag = kind_code(kind) | (mode << SNAP_SHIFT);
    if thread != p.thread {
        tag |= NEW_THREAD;
    }
    if code != p.code {
        tag |= NEW_CODE;
    }
    if flags != 0 {
        tag |= HAS_FLAGS;
    }
    out.push(tag);
    if tag & NEW_THREAD != 0 {
        put_varint(out, thread);
    }
    if tag & NEW_CODE != 0 {
        put_varint(out, u64::from(code));
    }
    put_varint(out, zigzag(t_ns.wrapping_sub(p.t_ns)));
    if flags != 0 {
        put_varint(out, u64::from(flags));
    }
    match (mode, snapshot) {
        (SNAP_INLINE | SNAP_DEFINE, Some(s)) => put_bytes(out, s),
        (SNAP_REF, _) => put_varint(out, reference),
        _ => {}
    }
    Previous { thread, code, t_ns }
}

/// Room for the longest event head (tag, thread, code, time difference, flags: 31 bytes), a
/// power of two.
const MAX_HEAD: usize = 32;

/// Writes `v` as a varint into `head` at `*n`, moving `n` past it. `n` stays below [`MAX_HEAD`]
/// (the mask only spares a bounds check).
#[inline(always)]
#[allow(clippy::inline_always, clippy::cast_possible_truncation)] // hot; 7 bits at a time
fn head_varint(head: &mut [MaybeUninit<u8>; MAX_HEAD], n: &mut usize, mut v: u64) {
    // Time deltas between a program's events take one or two bytes: both written at once,
    // without the loop and without a branch on which (it would be mispredicted about every
    // other event when the deltas straddle 128 ns, as a recursion's do). The second byte is
    // kept only for a two-byte varint (the next field overwrites it otherwise).
    if v < 0x4000 {
        let high = v & !0x7f;
        let two = usize::from(high != 0);
        // The low 7 bits, the continuation bit when there is a second byte, then the high 7
        // bits (`v + high` moves them up one bit, to the second byte).
        let bytes = ((v + high) as u16 | ((two as u16) << 7)).to_le_bytes();
        debug_assert!(*n + 2 <= MAX_HEAD);
        // SAFETY: the fields before a field under 0x4000 take at most 26 bytes (tag 1, thread
        // 10, code 5, time 10), so its two bytes are inside `head`.
        unsafe {
            head.as_mut_ptr()
                .add(*n)
                .cast::<[u8; 2]>()
                .write_unaligned(bytes);
        }
        *n += 1 + two;
        return;
    }
    while v >= 0x80 {
        head[*n & (MAX_HEAD - 1)] = MaybeUninit::new((v as u8) | 0x80);
        *n += 1;
        v >>= 7;
    }
    head[*n & (MAX_HEAD - 1)] = MaybeUninit::new(v as u8);
    *n += 1;
}

/// One thread's events, encoded by that thread as they happen (while the program runs, in its
/// callbacks) exactly as a chunk that starts with them would hold them, so the writer appends
/// them whole ([`TraceWriter::write_run`]): no per-event work after the callback. Snapshots are
/// stored inline; the writer numbers them (event by event) when it appends a run that has any.
///
/// [`TraceWriter::write_run`]: super::TraceWriter::write_run
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRun {
    /// The record stream of the events.
    bytes: Vec<u8>,
    /// How many events it holds.
    events: u32,
    /// The largest code id of its events.
    max_code: u32,
    /// Whether any event carries a snapshot.
    snapshots: bool,
    /// The last event's thread, code and time.
    last: RunLast,
}

/// The last event of an [`EventRun`]: what the events after it are written against.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLast {
    pub thread: u64,
    pub code: u32,
    pub t_ns: u64,
}

impl EventRun {
    /// Appends an event of `kind` on `thread` in `code` at `t_ns`; `flags` counts for returns and
    /// unwinds only, `snapshot` for calls, returns, yields and raises only.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every event of a recording runs it, in the program's thread
    pub fn push(
        &mut self,
        kind: EventKind,
        (thread, code, t_ns): (u64, u32, u64),
        flags: u32,
        snapshot: Option<&[u8]>,
    ) {
        let snapshot = snapshot.filter(|_| has_snapshot(kind));
        let flags = if has_flags(kind) { flags } else { 0 };
        let mode = if snapshot.is_some() {
            self.snapshots = true;
            SNAP_INLINE
        } else {
            SNAP_NONE
        };
        // The event's head (tag, thread, code, time, flags), written in place: one capacity
        // check instead of one per byte.
        self.bytes.reserve(MAX_HEAD);
        let len = self.bytes.len();
        let Some(head) = self
            .bytes
            .spare_capacity_mut()
            .first_chunk_mut::<MAX_HEAD>()
        else {
            unreachable!("room for MAX_HEAD bytes was reserved")
        };
        let p = self.last;
        let mut tag = kind_code(kind) | (mode << SNAP_SHIFT);
        let mut n = 1;
        if thread != p.thread {
            tag |= NEW_THREAD;
            head_varint(head, &mut n, thread);
        }
        if code != p.code {
            tag |= NEW_CODE;
            head_varint(head, &mut n, u64::from(code));
            // `max_code` already counts the previous event's code (0 in an empty run).
            self.max_code = self.max_code.max(code);
        }
        head_varint(head, &mut n, zigzag(t_ns.wrapping_sub(p.t_ns)));
        if flags != 0 {
            tag |= HAS_FLAGS;
            head_varint(head, &mut n, u64::from(flags));
        }
        head[0] = MaybeUninit::new(tag);
        // SAFETY: the first `n` (at most 1 + 10 + 5 + 10 + 5 < MAX_HEAD) spare bytes were
        // written just above.
        unsafe { self.bytes.set_len(len + n) };
        if let Some(s) = snapshot {
            put_bytes(&mut self.bytes, s);
        }
        self.last = RunLast { thread, code, t_ns };
        self.events += 1;
    }

    /// How many events it holds.
    pub fn len(&self) -> u32 {
        self.events
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Its size in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Empties it (keeping its buffer).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.events = 0;
        self.max_code = 0;
        self.snapshots = false;
        self.last = RunLast::default();
    }

    /// As the writer takes it.
    pub fn as_ref(&self) -> RunRef<'_> {
        RunRef {
            bytes: &self.bytes,
            events: self.events,
            max_code: self.max_code,
            snapshots: self.snapshots,
            last: self.last,
        }
    }
}

impl ArchivedEventRun {
    /// As the writer takes it (a run read back from the live ring, already validated).
    pub fn as_ref(&self) -> RunRef<'_> {
        RunRef {
            bytes: self.bytes.as_slice(),
            events: self.events.to_native(),
            max_code: self.max_code.to_native(),
            snapshots: self.snapshots,
            last: RunLast {
                thread: self.last.thread.to_native(),
                code: self.last.code.to_native(),
                t_ns: self.last.t_ns.to_native(),
            },
        }
    }
}

/// An [`EventRun`], borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) events: u32,
    pub(crate) max_code: u32,
    pub(crate) snapshots: bool,
    pub(crate) last: RunLast,
}

impl RunRef<'_> {
    /// Checks that the run is what [`EventRun::push`] makes (a run read back from the live ring
    /// may be garbage: a writer that crashed, a bug): exactly `events` events, each with a valid
    /// tag, its numbers canonical varints and its inline snapshot within the bytes, no code
    /// above `max_code`, the last one `last`. A run that passes is appended whole without
    /// corrupting the trace; one that does not is refused. One pass over the bytes, which the
    /// drain makes on every run: the common event is read from one 8-byte word
    /// ([`RunWalk::short_events`]), any other (and the last few bytes) field by field
    /// ([`RunWalk::event`]).
    pub(crate) fn check(&self) -> Result<(), String> {
        let b = self.bytes;
        let mut w = RunWalk::default();
        loop {
            w = w.short_events(b);
            if w.at >= b.len() {
                break;
            }
            w = w.event(b)?;
            w.events += 1;
        }
        if w.largest_code > self.max_code {
            return Err(format!("a code above the run's largest, {}", self.max_code));
        }
        if w.events != self.events as usize {
            return Err(format!("{} events, {} announced", w.events, self.events));
        }
        let last = Previous {
            thread: self.last.thread,
            code: self.last.code,
            t_ns: self.last.t_ns,
        };
        if w.events > 0 && w.p != last {
            return Err("its last event is not the one announced".into());
        }
        Ok(())
    }
}

/// Where [`RunRef::check`] is in a run, and what it read so far (passed by value, so that it
/// stays in registers).
#[derive(Debug, Default, Clone, Copy)]
struct RunWalk {
    at: usize,
    /// The previous event's thread, code and time.
    p: Previous,
    events: usize,
    /// The largest code of the events read.
    largest_code: u32,
}

impl RunWalk {
    /// Reads the short events from `at` on, up to the first other event or the last 7 bytes:
    /// events with no new thread, no flags, no snapshot, a new code of 1 or 2 bytes if any and a
    /// time difference of 1 to 3 bytes (what a program's events almost always are), each read
    /// from the 8 bytes at its start: one bounds check per event, not one per byte. Leaves to
    /// [`event`](Self::event) any other event, and bytes that are not an event, which it reads
    /// or refuses.
    #[inline(always)]
    #[allow(clippy::inline_always, clippy::cast_possible_truncation)] // the drain's inner loop
    fn short_events(self, b: &[u8]) -> Self {
        // Locals, not fields: they stay in registers.
        let RunWalk {
            mut at,
            mut p,
            mut events,
            mut largest_code,
        } = self;
        while let Some(&word) = b.get(at..at + 8).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_le_bytes(word);
            let tag = word as u8;
            if !SHORT_TAGS[usize::from(tag)] {
                break;
            }
            let mut rest = word >> 8;
            let mut len = 1;
            if tag & NEW_CODE != 0 {
                let Some((code, n)) = word_varint(rest, 2) else {
                    break;
                };
                // Kept even if the event is left to `event`, which reads the same code.
                p.code = code as u32; // below 2^14
                largest_code = largest_code.max(p.code);
                rest >>= 8 * n;
                len += n;
            }
            let Some((dt, n)) = word_varint(rest, 3) else {
                break;
            };
            p.t_ns = p.t_ns.wrapping_add(unzigzag(dt));
            at += len + n;
            events += 1;
        }
        RunWalk {
            at,
            p,
            events,
            largest_code,
        }
    }

    /// Reads the event at `at`, any event [`EventRun::push`] makes, each field checked.
    #[inline(never)] // the rare case: kept out of the loop of short events
    fn event(mut self, b: &[u8]) -> Result<Self, String> {
        let tag = b[self.at];
        self.at += 1;
        if !RUN_TAGS[usize::from(tag)] {
            return Err(format!("invalid tag {tag:#04x} in a run"));
        }
        if tag & NEW_THREAD != 0 {
            self.p.thread = run_varint(b, &mut self.at)?;
        }
        if tag & NEW_CODE != 0 {
            self.p.code = u32::try_from(run_varint(b, &mut self.at)?)
                .map_err(|_| "a code out of range in a run")?;
            self.largest_code = self.largest_code.max(self.p.code);
        }
        self.p.t_ns = self
            .p
            .t_ns
            .wrapping_add(unzigzag(run_varint(b, &mut self.at)?));
        if tag & HAS_FLAGS != 0
            && !(1..=u64::from(u32::MAX)).contains(&run_varint(b, &mut self.at)?)
        {
            return Err("flags out of range in a run".into());
        }
        if tag & SNAP_MASK != 0 {
            let len = run_varint(b, &mut self.at)?;
            self.at = usize::try_from(len)
                .ok()
                .and_then(|len| self.at.checked_add(len))
                .filter(|&end| end <= b.len())
                .ok_or("a snapshot runs past the end of its run")?;
        }
        Ok(self)
    }
}

/// The canonical varint in the low bytes of `word` (little-endian) if it takes at most
/// `max_len` (2 or 3) bytes: its value and length.
#[inline(always)]
#[allow(clippy::inline_always)] // twice per event the drain checks
fn word_varint(word: u64, max_len: usize) -> Option<(u64, usize)> {
    let [b0, b1, b2] = [word & 0xff, (word >> 8) & 0xff, (word >> 16) & 0xff];
    if b0 < 0x80 {
        return Some((b0, 1));
    }
    // A last byte 0 after others is redundant: the strict reader refuses it.
    if b1 < 0x80 {
        return (b1 != 0).then_some(((b0 & 0x7f) | (b1 << 7), 2));
    }
    (max_len >= 3 && b2 < 0x80 && b2 != 0)
        .then_some(((b0 & 0x7f) | ((b1 & 0x7f) << 7) | (b2 << 14), 3))
}

/// Which tags an event of an [`EventRun`] may have: an event kind, a snapshot (inline) or flags
/// only on the kinds that have them.
const RUN_TAGS: [bool; 256] = run_tags(false);

/// The tags of the events [`RunWalk::short_events`] reads: an event kind, a new code or not,
/// nothing else.
const SHORT_TAGS: [bool; 256] = run_tags(true);

const fn run_tags(short: bool) -> [bool; 256] {
    let mut ok = [false; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // below 256
        let tag = i as u8;
        let kind = tag & KIND_MASK;
        let mode = (tag & SNAP_MASK) >> SNAP_SHIFT;
        // Kind codes (`kind_code`): snapshots on calls, returns, yields and raises; flags on
        // returns and unwinds.
        let snapshot = mode == SNAP_NONE || (mode == SNAP_INLINE && matches!(kind, 0 | 1 | 2 | 4));
        let flags = tag & HAS_FLAGS == 0 || matches!(kind, 1 | 5);
        ok[i] = kind < 6
            && if short {
                tag & !(KIND_MASK | NEW_CODE) == 0
            } else {
                snapshot && flags
            };
        i += 1;
    }
    ok
}

/// A varint of a run (most are one byte).
#[inline(always)]
#[allow(clippy::inline_always)] // several per event the check reads field by field
fn run_varint(b: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    match b.get(*at) {
        Some(&x) if x < 0x80 => {
            *at += 1;
            Ok(u64::from(x))
        }
        _ => crate::varint::read(b, at).map_err(|_| "a bad number in a run"),
    }
}

/// The body of a code record.
pub(crate) fn encode_code(code: &CodeInfo) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + code.module.len() + code.qualname.len() + code.file.len() + 8);
    put_varint(&mut out, u64::from(code.id));
    put_bytes(&mut out, code.module.as_bytes());
    put_bytes(&mut out, code.qualname.as_bytes());
    put_bytes(&mut out, code.file.as_bytes());
    put_varint(&mut out, u64::from(code.first_line));
    out.extend_from_slice(&code.code_hash.to_le_bytes());
    out
}

/// The body of a run-statistics record.
pub(crate) fn encode_stats(stats: &RunStats) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + stats.calls.len() * 6);
    put_varint(&mut out, stats.calls.len() as u64);
    for c in &stats.calls {
        put_varint(&mut out, u64::from(c.code));
        put_varint(&mut out, c.calls);
        put_varint(&mut out, c.recorded);
    }
    put_varint(&mut out, stats.lost_events);
    out
}

/// Reads fields from a byte slice; every read is checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        crate::varint::read(self.bytes, &mut self.at).map_err(|e| {
            match e {
                VarintError::End => "cut off inside a number",
                VarintError::Overflow => "number too large",
                VarintError::Overlong => "overlong number",
                VarintError::TooLong => "number too long",
            }
            .to_owned()
        })
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| format!("{what} out of range"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length out of range".to_owned())?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("length {len} runs past the end"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn str(&mut self, what: &str) -> Result<String, String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| format!("{what} is not UTF-8"))
    }

    fn u64_le(&mut self) -> Result<u64, String> {
        let end = self.at + 8;
        let b = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| "cut off inside a hash".to_owned())?;
        self.at = end;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn finish(&self, what: &str) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes after the end of {what}",
                self.bytes.len() - self.at
            ))
        }
    }
}

/// Decodes the body of a code record; it must be exactly one code.
pub(crate) fn decode_code(body: &[u8]) -> Result<CodeInfo, String> {
    let mut c = Cursor { bytes: body, at: 0 };
    let code = CodeInfo {
        id: c.u32("code id")?,
        module: c.str("module")?,
        qualname: c.str("qualname")?,
        file: c.str("file")?,
        first_line: c.u32("first line")?,
        code_hash: c.u64_le()?,
    };
    c.finish("the code")?;
    Ok(code)
}

/// Decodes the body of a run-statistics record.
pub(crate) fn decode_stats(body: &[u8]) -> Result<RunStats, String> {
    let mut c = Cursor { bytes: body, at: 0 };
    let n = c.varint()?;
    // Each entry takes at least 3 bytes: a larger count cannot be right (and must not allocate).
    if n > body.len() as u64 / 3 {
        return Err(format!("{n} entries cannot fit in {} bytes", body.len()));
    }
    let mut calls = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for _ in 0..n {
        calls.push(CodeCalls {
            code: c.u32("code id")?,
            calls: c.varint()?,
            recorded: c.varint()?,
        });
    }
    let stats = RunStats {
        calls,
        lost_events: c.varint()?,
    };
    c.finish("the run statistics")?;
    Ok(stats)
}

/// One decoded record.
/// Where an event's snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Snap<'a> {
    /// None recorded.
    None,
    /// These bytes, not numbered.
    Inline(&'a [u8]),
    /// These bytes, which get this snapshot number.
    Define(&'a [u8], usize),
    /// The snapshot with this number, defined earlier in the trace.
    Ref(usize),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Decoded<'a> {
    /// An event (its snapshot not filled in) and where its snapshot is.
    Event { event: EventRef<'a>, snap: Snap<'a> },
    /// Any other record.
    Other { kind: u32, body: &'a [u8] },
}

/// The reader's side: decodes the records of one decompressed chunk after the other; knows how
/// many snapshots the trace defined before, so it checks every reference.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
    previous: Previous,
    /// Snapshots defined by the records decoded so far, in every chunk.
    defined: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder of `buf`, before its next chunk, after `defined` snapshots were defined.
    pub fn new(buf: &'a [u8], defined: usize) -> Self {
        Self {
            buf,
            at: 0,
            end: 0,
            previous: Previous::default(),
            defined,
        }
    }

    /// Continues with the chunk at `buf[start..end]`.
    pub fn start_chunk(&mut self, start: usize, end: usize) {
        self.at = start;
        self.end = end.min(self.buf.len());
        self.previous = Previous::default();
    }

    /// Whether the chunk is used up.
    pub fn is_done(&self) -> bool {
        self.at >= self.end
    }

    /// Where the next record starts in the buffer.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The next record of the chunk.
    pub fn next(&mut self) -> Result<Decoded<'a>, String> {
        let buf = self.buf.get(..self.end).unwrap_or_default();
        let mut c = Cursor {
            bytes: buf,
            at: self.at,
        };
        let tag = *buf
            .get(c.at)
            .ok_or_else(|| "cut off before a record".to_owned())?;
        c.at += 1;
        let kind_bits = tag & KIND_MASK;
        if kind_bits == TAG_RECORD {
            if tag != TAG_RECORD {
                return Err(format!("invalid record tag {tag:#04x}"));
            }
            let kind = c.u32("record kind")?;
            let body = c.bytes()?;
            self.at = c.at;
            return Ok(Decoded::Other { kind, body });
        }
        let kind = event_kind(tag)?;
        let mode = (tag & SNAP_MASK) >> SNAP_SHIFT;
        let p = self.previous;
        let thread = if tag & NEW_THREAD != 0 {
            c.varint()?
        } else {
            p.thread
        };
        let code = if tag & NEW_CODE != 0 {
            c.u32("code id")?
        } else {
            p.code
        };
        let t_ns = p.t_ns.wrapping_add(unzigzag(c.varint()?));
        let flags = if tag & HAS_FLAGS != 0 {
            match c.u32("flags")? {
                0 => return Err("flags present but zero".into()),
                f => f,
            }
        } else {
            0
        };
        let snap = match mode {
            SNAP_NONE => Snap::None,
            SNAP_INLINE => Snap::Inline(c.bytes()?),
            SNAP_DEFINE => {
                let bytes = c.bytes()?;
                self.defined += 1;
                Snap::Define(bytes, self.defined - 1)
            }
            _ => {
                let back = c.varint()?;
                let n = (self.defined as u64)
                    .checked_sub(1)
                    .and_then(|last| last.checked_sub(back))
                    .ok_or_else(|| {
                        format!("refers to snapshot -{back}, which was never defined")
                    })?;
                Snap::Ref(usize::try_from(n).map_err(|_| "snapshot number out of range")?)
            }
        };
        self.at = c.at;
        self.previous = Previous { thread, code, t_ns };
        Ok(Decoded::Event {
            event: EventRef {
                kind,
                code,
                flags,
                thread,
                t_ns,
                snapshot: None,
            },
            snap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Event;

    fn decode_all(buf: &[u8]) -> Vec<Event> {
        let mut snapshots = Vec::new();
        let mut d = Decoder::new(buf, 0);
        d.start_chunk(0, buf.len());
        let mut out = Vec::new();
        while !d.is_done() {
            match d.next().unwrap() {
                Decoded::Event { mut event, snap } => {
                    event.snapshot = match snap {
                        Snap::None => None,
                        Snap::Inline(bytes) => Some(bytes),
                        Snap::Define(bytes, n) => {
                            assert_eq!(n, snapshots.len());
                            snapshots.push(bytes);
                            Some(bytes)
                        }
                        Snap::Ref(n) => Some(snapshots[n]),
                    };
                    out.push(Event::from(event));
                }
                Decoded::Other { .. } => {}
            }
        }
        out
    }

    /// `EventRun::push` writes what `put_event` (the writer's encoding) writes, across the
    /// one-, two- and many-byte varints of each field and a change of thread, code or flags.
    #[test]
    fn a_run_encodes_each_event_as_the_writer_does() {
        let kinds = [
            EventKind::Call,
            EventKind::Return,
            EventKind::Yield,
            EventKind::Unwind,
        ];
        let codes = [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u32::MAX];
        let steps = [
            0,
            1,
            63,
            64,
            0x1fff,
            0x2000,
            1 << 40,
            u64::MAX,
            u64::MAX - 0x1fff,
        ];
        let mut run = EventRun::default();
        let mut expected = Vec::new();
        let mut p = Previous::default();
        let mut t_ns = 1u64 << 50;
        let mut n = 0u32;
        for (i, &code) in codes.iter().enumerate() {
            for (j, &step) in steps.iter().enumerate() {
                for (k, &kind) in kinds.iter().enumerate() {
                    t_ns = t_ns.wrapping_add(step);
                    let thread = if (i + j + k) % 5 == 0 { 7 } else { 3 };
                    let flags = u32::from(kind == EventKind::Return && j == 2);
                    let snapshot = (i + k) % 4 == 1 && has_snapshot(kind);
                    let snapshot = snapshot.then_some(b"snap".as_slice());
                    run.push(kind, (thread, code, t_ns), flags, snapshot);
                    let mode = if snapshot.is_some() {
                        SNAP_INLINE
                    } else {
                        SNAP_NONE
                    };
                    let fields = (thread, code, t_ns, if has_flags(kind) { flags } else { 0 });
                    p = put_event(&mut expected, p, kind, fields, (mode, snapshot, 0));
                    n += 1;
                }
            }
        }
        assert_eq!(run.as_ref().bytes, expected.as_slice());
        assert_eq!(run.len(), n);
        assert_eq!(run.as_ref().max_code, u32::MAX);
        let decoded = decode_all(&expected);
        assert_eq!(decoded.len(), n as usize);
        assert_eq!(decoded.last().map(Event::t_ns), Some(t_ns));
    }

    #[test]
    fn time_differences_of_either_sign_stay_small() {
        for d in [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1, 12345] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
        assert_eq!((zigzag(0), zigzag(u64::MAX), zigzag(1)), (0, 1, 2));
        let mut c = Cursor {
            bytes: &[0x80, 0x00],
            at: 0,
        };
        assert_eq!(c.varint(), Err("overlong number".into()));
    }

    #[test]
    fn repeated_snapshots_are_stored_once_and_events_shrink_to_a_few_bytes() {
        let mut e = Encoder::default();
        let mut buf = Vec::new();
        let big = vec![7u8; 100];
        let mut events = Vec::new();
        for i in 0..100u64 {
            let call = Event::Call {
                thread: 1 << 40,
                code: 3,
                t_ns: 1_000_000_000 + i * 100,
                args: Some(big.clone()),
            };
            let ret = Event::Return {
                thread: 1 << 40,
                code: 3,
                flags: u32::from(i == 5),
                t_ns: 1_000_000_050 + i * 100,
                value: Some(vec![1, 2]),
            };
            e.event((&call).into(), &mut buf);
            e.event((&ret).into(), &mut buf);
            events.extend([call, ret]);
        }
        // The first call holds the snapshot; every other event takes at most 6 bytes.
        assert!(buf.len() < 100 + 30 + 199 * 6, "{}", buf.len());
        assert_eq!(decode_all(&buf), events);
    }

    #[test]
    fn every_kind_round_trips_and_wraps_around_in_time() {
        let mut e = Encoder::default();
        let mut buf = Vec::new();
        let events = [
            Event::Call {
                thread: u64::MAX,
                code: u32::MAX,
                t_ns: u64::MAX,
                args: Some(vec![9; 20]),
            },
            Event::Yield {
                thread: 0,
                code: 0,
                t_ns: 0,
                value: Some(vec![9; 20]),
            },
            Event::Resume {
                thread: 0,
                code: 0,
                t_ns: 5,
            },
            Event::Raise {
                thread: 0,
                code: 1,
                t_ns: 4,
                exception: Some(Vec::new()),
            },
            Event::Unwind {
                thread: 0,
                code: 1,
                t_ns: 4,
                flags: u32::MAX,
            },
        ];
        for ev in &events {
            e.event(ev.into(), &mut buf);
        }
        Encoder::record(0x100, b"opaque", &mut buf);
        assert_eq!(decode_all(&buf), events);
    }

    #[test]
    fn codes_and_stats_round_trip_and_reject_extra_bytes() {
        let code = CodeInfo {
            id: 7,
            module: "m".into(),
            qualname: "f".into(),
            file: "m.py".into(),
            first_line: 3,
            code_hash: u64::MAX,
        };
        let body = encode_code(&code);
        assert_eq!(decode_code(&body), Ok(code));
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode_code(&longer).is_err());
        assert!(decode_code(&body[..body.len() - 1]).is_err());
        let stats = RunStats {
            calls: vec![CodeCalls {
                code: 7,
                calls: 1 << 40,
                recorded: 3,
            }],
            lost_events: 2,
        };
        assert_eq!(decode_stats(&encode_stats(&stats)), Ok(stats));
        assert!(decode_stats(&[0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    /// What `RunRef::check` answered before it read short events from words: every event field
    /// by field, each code checked as it is read.
    fn check_field_by_field(run: RunRef<'_>) -> bool {
        let b = run.bytes;
        let mut w = RunWalk::default();
        while w.at < b.len() {
            match w.event(b) {
                Ok(next) if next.largest_code <= run.max_code => w = next,
                _ => return false,
            }
            w.events += 1;
        }
        let last = Previous {
            thread: run.last.thread,
            code: run.last.code,
            t_ns: run.last.t_ns,
        };
        w.events == run.events as usize && (w.events == 0 || w.p == last)
    }

    /// A run of short events only (codes of 1 and 2 bytes, time differences of 1 to 3, backwards
    /// too), and one with events that are not: new threads, flags, snapshots, codes of 3 bytes,
    /// time differences of 5.
    fn mixed_runs() -> Vec<EventRun> {
        let mut short = EventRun::default();
        let mut t = 1_000u64;
        for i in 0..200usize {
            let code = [0, 5, 127, 128, 300, 16_383, 7][i % 7];
            t += [1, 63, 64, 100, 8_191, 8_192][i % 6];
            let t = if i % 11 == 0 { t - 70 } else { t };
            let kind = [EventKind::Call, EventKind::Return, EventKind::Resume][i % 3];
            short.push(kind, (0, code, t), 0, None);
        }
        let mut mixed = EventRun::default();
        for i in 0..60u32 {
            let (thread, code) = (u64::from(1 + i % 2), i * 700);
            let t = u64::from(i) * 1_000 + if i % 4 == 0 { 1 << 30 } else { 0 };
            let snapshot = (i % 5 == 0).then_some(&b"abc"[..]);
            mixed.push(EventKind::Call, (thread, code, t), 0, None);
            mixed.push(
                EventKind::Return,
                (thread, code, t + 5),
                u32::from(i % 3 == 0),
                None,
            );
            mixed.push(EventKind::Raise, (2, 3, t + 9), 0, snapshot);
        }
        vec![short, mixed]
    }

    #[test]
    fn the_run_check_refuses_exactly_what_reading_every_field_refuses() {
        for run in mixed_runs() {
            let good = run.as_ref();
            assert_eq!(good.check(), Ok(()));
            assert!(check_field_by_field(good));
            let same = |r: RunRef<'_>, why: &str| {
                assert_eq!(r.check().is_ok(), check_field_by_field(r), "{why}");
            };
            // Cut anywhere (inside a varint included), every byte changed to values that end or
            // continue a varint, are no tag, or set a tag's bits.
            for len in 0..good.bytes.len() {
                let mut cut = good;
                cut.bytes = &good.bytes[..len];
                same(cut, &format!("cut at {len}"));
            }
            let mut bytes = good.bytes.to_vec();
            for at in 0..bytes.len() {
                let was = bytes[at];
                for b in [
                    0,
                    1,
                    0x7f,
                    0x80,
                    0xff,
                    was ^ 0x80,
                    was ^ NEW_CODE,
                    was ^ NEW_THREAD,
                ] {
                    bytes[at] = b;
                    let mut changed = good;
                    changed.bytes = &bytes;
                    same(changed, &format!("{b:#04x} at {at}"));
                }
                bytes[at] = was;
            }
            for (events, max_code) in [
                (good.events - 1, good.max_code),
                (good.events + 1, good.max_code),
                (good.events, good.max_code - 1),
            ] {
                let mut wrong = good;
                (wrong.events, wrong.max_code) = (events, max_code);
                assert!(
                    wrong.check().is_err(),
                    "{events} events, codes to {max_code}"
                );
            }
            let mut wrong_last = good;
            wrong_last.last.t_ns += 1;
            assert!(wrong_last.check().is_err());
        }
    }

    #[test]
    fn short_events_are_read_from_their_words_and_others_left_to_the_field_by_field_reading() {
        let mut run = EventRun::default();
        run.push(EventKind::Call, (0, 300, 100), 0, None);
        // Tag, code 300 in 2 bytes, time difference 200 in 2 bytes, then the next bytes.
        assert_eq!(run.as_ref().bytes, [0x10, 0xac, 0x02, 0xc8, 0x01]);
        let bytes = [0x10, 0xac, 0x02, 0xc8, 0x01, 0x99, 0x99, 0x99, 0, 0, 0, 0];
        let w = RunWalk::default().short_events(&bytes);
        assert_eq!((w.at, w.p.code, w.p.t_ns), (5, 300, 100));
        assert_eq!((w.events, w.largest_code), (1, 300));
        for (word, why) in [
            ([0x10, 0xac, 0x82, 0x01, 0, 0, 0, 0], "a code of 3 bytes"),
            (
                [0x10, 0xac, 0x00, 0x01, 0, 0, 0, 0],
                "a redundant zero byte",
            ),
            (
                [0x10, 0x05, 0x80, 0x80, 0x80, 0x01, 0, 0],
                "a time difference of 4 bytes",
            ),
            (
                [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "a varint going on",
            ),
            ([0x06, 0, 0, 0, 0, 0, 0, 0], "not an event"),
            ([0x08, 1, 0, 0, 0, 0, 0, 0], "a new thread"),
            ([0x81, 1, 0, 0, 0, 0, 0, 0], "flags"),
        ] {
            // (A code it read stays: `event` reads the same one.)
            let w = RunWalk::default().short_events(&word);
            assert_eq!((w.at, w.events), (0, 0), "{why}");
        }
        // Nor the last 7 bytes (events of 2 bytes here: a call, no time difference).
        assert_eq!(RunWalk::default().short_events(&[0; 7]).events, 0);
        assert_eq!(RunWalk::default().short_events(&[0; 14]).events, 4);
    }
}
