//! Perfetto's protobuf trace format, the export that opens large runs in <https://ui.perfetto.dev>.
//!
//! The file is a `Trace`: a sequence of `TracePacket`s, each written as soon as the walk
//! produces it, so memory stays flat however long the run. All packets belong to one
//! sequence (`trusted_packet_sequence_id`):
//! 1. the process's `TrackDescriptor`, with `SEQ_INCREMENTAL_STATE_CLEARED` and the interned
//!    names of the debug annotations (args, return, ...);
//! 2. a thread's `TrackDescriptor` (pid, tid, name, parent = the process track) before its
//!    first slice;
//! 3. per span, a `TrackEvent` `TYPE_SLICE_BEGIN` (name as an interned `name_iid`, the
//!    function's name sent in `InternedData.event_names` with its first use; the arguments as a
//!    debug annotation) and a `TYPE_SLICE_END` (return value, exception or yielded value).
//!    Perfetto merges the annotations of a begin/end pair into one slice.
//!
//! Field numbers are from Perfetto's protos (`protos/perfetto/trace/...`), quoted in [`field`].

use std::io::{self, BufWriter, Write};

use super::common::{Context, VALUE_CHARS};
use super::protobuf::{put_varint, Message};
use crate::analysis::spans::{self, Closed, Opened, Outcome, SpanSink, Thread};
use crate::analysis::text;
use crate::trace::TraceReader;

/// Field numbers and enum values, with the declaration each comes from.
mod field {
    // trace.proto, message Trace
    /// `repeated TracePacket packet = 1;`
    pub const TRACE_PACKET: u32 = 1;

    // trace_packet.proto, message TracePacket
    /// `optional uint64 timestamp = 8;` (nanoseconds, default clock)
    pub const TIMESTAMP: u32 = 8;
    /// `uint32 trusted_packet_sequence_id = 10;`
    pub const TRUSTED_PACKET_SEQUENCE_ID: u32 = 10;
    /// `TrackEvent track_event = 11;`
    pub const TRACK_EVENT: u32 = 11;
    /// `optional InternedData interned_data = 12;`
    pub const INTERNED_DATA: u32 = 12;
    /// `optional uint32 sequence_flags = 13;`
    pub const SEQUENCE_FLAGS: u32 = 13;
    /// `TrackDescriptor track_descriptor = 60;`
    pub const TRACK_DESCRIPTOR: u32 = 60;
    /// `enum SequenceFlags { SEQ_INCREMENTAL_STATE_CLEARED = 1; ... }`
    pub const SEQ_INCREMENTAL_STATE_CLEARED: u64 = 1;
    /// `enum SequenceFlags { ... SEQ_NEEDS_INCREMENTAL_STATE = 2; }`
    pub const SEQ_NEEDS_INCREMENTAL_STATE: u64 = 2;

    // track_event/track_descriptor.proto, message TrackDescriptor
    /// `optional uint64 uuid = 1;`
    pub const TRACK_UUID: u32 = 1;
    /// `optional ProcessDescriptor process = 3;`
    pub const TRACK_PROCESS: u32 = 3;
    /// `optional ThreadDescriptor thread = 4;`
    pub const TRACK_THREAD: u32 = 4;
    /// `optional uint64 parent_uuid = 5;`
    pub const TRACK_PARENT_UUID: u32 = 5;

    // track_event/process_descriptor.proto, message ProcessDescriptor
    /// `optional int32 pid = 1;`
    pub const PROCESS_PID: u32 = 1;
    /// `repeated string cmdline = 2;`
    pub const PROCESS_CMDLINE: u32 = 2;
    /// `optional string process_name = 6;`
    pub const PROCESS_NAME: u32 = 6;

    // track_event/thread_descriptor.proto, message ThreadDescriptor
    /// `optional int32 pid = 1;`
    pub const THREAD_PID: u32 = 1;
    /// `optional int32 tid = 2;`
    pub const THREAD_TID: u32 = 2;
    /// `optional string thread_name = 5;`
    pub const THREAD_NAME: u32 = 5;

    // track_event/track_event.proto, message TrackEvent
    /// `repeated DebugAnnotation debug_annotations = 4;`
    pub const EVENT_DEBUG_ANNOTATIONS: u32 = 4;
    /// `optional Type type = 9;`
    pub const EVENT_TYPE: u32 = 9;
    /// `uint64 name_iid = 10;` (interned `EventName`)
    pub const EVENT_NAME_IID: u32 = 10;
    /// `optional uint64 track_uuid = 11;`
    pub const EVENT_TRACK_UUID: u32 = 11;
    /// `enum Type { ... TYPE_SLICE_BEGIN = 1; ... }`
    pub const TYPE_SLICE_BEGIN: u64 = 1;
    /// `enum Type { ... TYPE_SLICE_END = 2; ... }`
    pub const TYPE_SLICE_END: u64 = 2;

    // interned_data/interned_data.proto, message InternedData
    /// `repeated EventName event_names = 2;`
    pub const INTERNED_EVENT_NAMES: u32 = 2;
    /// `repeated DebugAnnotationName debug_annotation_names = 3;`
    pub const INTERNED_DEBUG_ANNOTATION_NAMES: u32 = 3;
    // track_event.proto `message EventName` and debug_annotation.proto
    // `message DebugAnnotationName`: both `optional uint64 iid = 1; optional string name = 2;`
    pub const INTERNED_IID: u32 = 1;
    pub const INTERNED_NAME: u32 = 2;

    // track_event/debug_annotation.proto, message DebugAnnotation
    /// `uint64 name_iid = 1;` (interned `DebugAnnotationName`)
    pub const ANNOTATION_NAME_IID: u32 = 1;
    /// `bool bool_value = 2;`
    pub const ANNOTATION_BOOL: u32 = 2;
    /// `string string_value = 6;`
    pub const ANNOTATION_STRING: u32 = 6;
}

/// The sequence every packet belongs to (any non-zero id).
const SEQUENCE_ID: u64 = 1;
/// The process's track; a thread's track is this plus 1 plus the thread's position.
const PROCESS_UUID: u64 = 1;
/// A child process's track is this plus its pid (above any thread's track).
const CHILD_PROCESS_UUID: u64 = 1 << 40;

/// Debug annotation names, interned as iids 1, 2, ... in this order.
const ANNOTATIONS: [&str; 7] = [
    "args",
    "return",
    "exception",
    "yield",
    "resumed",
    "unfinished",
    "mutated_args",
];
const ARGS: u64 = 1;
const RETURN: u64 = 2;
const EXCEPTION: u64 = 3;
const YIELD: u64 = 4;
const RESUMED: u64 = 5;
const UNFINISHED: u64 = 6;
const MUTATED_ARGS: u64 = 7;

/// Writes the trace of `reader` to `out` as a Perfetto protobuf trace; returns `out`, flushed.
pub fn write<W: Write>(reader: &TraceReader, out: W) -> io::Result<W> {
    let context = Context::new(reader);
    let mut sink = Perfetto {
        out: BufWriter::with_capacity(1 << 16, out),
        packet: Message::default(),
        head: Vec::new(),
        interned: vec![false; context.codes.len()],
        children: Vec::new(),
        context,
    };
    sink.process()?;
    spans::walk(reader.events(), &mut sink)?;
    sink.out
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
}

struct Perfetto<'r, W: Write> {
    out: BufWriter<W>,
    /// The packet being encoded.
    packet: Message,
    /// Scratch space for a packet's key and length.
    head: Vec<u8>,
    /// Per code position: its name has been interned.
    interned: Vec<bool>,
    /// The child processes described so far.
    children: Vec<u32>,
    context: Context<'r>,
}

impl<W: Write> Perfetto<'_, W> {
    /// The first packet: clears the sequence's state, interns the annotation names and
    /// describes the process.
    fn process(&mut self) -> io::Result<()> {
        let context = &self.context;
        let p = &mut self.packet;
        p.clear();
        p.uint(field::TRUSTED_PACKET_SEQUENCE_ID, SEQUENCE_ID);
        p.uint(field::SEQUENCE_FLAGS, field::SEQ_INCREMENTAL_STATE_CLEARED);
        p.message(field::INTERNED_DATA, |m| {
            for (iid, name) in (1..).zip(ANNOTATIONS) {
                m.message(field::INTERNED_DEBUG_ANNOTATION_NAMES, |n| {
                    n.uint(field::INTERNED_IID, iid);
                    n.string(field::INTERNED_NAME, name);
                });
            }
        });
        p.message(field::TRACK_DESCRIPTOR, |d| {
            d.uint(field::TRACK_UUID, PROCESS_UUID);
            d.message(field::TRACK_PROCESS, |p| {
                p.uint(field::PROCESS_PID, u64::from(context.pid));
                p.string(field::PROCESS_CMDLINE, "python");
                for arg in context.argv {
                    p.string(field::PROCESS_CMDLINE, arg);
                }
                p.string(field::PROCESS_NAME, &context.command);
            });
        });
        self.emit()
    }

    /// Describes a child process of the recorded one (before its first thread).
    fn child_process(&mut self, uuid: u64, pid: u32, name: &str) -> io::Result<()> {
        let p = &mut self.packet;
        p.clear();
        p.uint(field::TRUSTED_PACKET_SEQUENCE_ID, SEQUENCE_ID);
        p.message(field::TRACK_DESCRIPTOR, |d| {
            d.uint(field::TRACK_UUID, uuid);
            d.message(field::TRACK_PROCESS, |p| {
                p.uint(field::PROCESS_PID, u64::from(pid));
                p.string(field::PROCESS_NAME, name);
            });
        });
        self.emit()
    }

    /// Writes the encoded packet as one `Trace.packet` field.
    fn emit(&mut self) -> io::Result<()> {
        let bytes = self.packet.bytes();
        let head = &mut self.head;
        head.clear();
        put_varint(head, u64::from(field::TRACE_PACKET << 3 | 2));
        put_varint(head, bytes.len() as u64);
        self.out.write_all(head)?;
        self.out.write_all(bytes)
    }

    /// Starts a packet of a track event at `t_ns`.
    fn event_packet(&mut self, t_ns: u64) {
        let p = &mut self.packet;
        p.clear();
        p.uint(field::TIMESTAMP, self.context.time(t_ns));
        p.uint(field::TRUSTED_PACKET_SEQUENCE_ID, SEQUENCE_ID);
        p.uint(field::SEQUENCE_FLAGS, field::SEQ_NEEDS_INCREMENTAL_STATE);
    }
}

fn thread_uuid(thread: Thread) -> u64 {
    PROCESS_UUID + 1 + thread.index as u64
}

fn string_annotation(m: &mut Message, name_iid: u64, value: &str) {
    m.message(field::EVENT_DEBUG_ANNOTATIONS, |a| {
        a.uint(field::ANNOTATION_NAME_IID, name_iid);
        a.string(field::ANNOTATION_STRING, value);
    });
}

fn flag_annotation(m: &mut Message, name_iid: u64) {
    m.message(field::EVENT_DEBUG_ANNOTATIONS, |a| {
        a.uint(field::ANNOTATION_NAME_IID, name_iid);
        a.uint(field::ANNOTATION_BOOL, 1);
    });
}

impl<'a, W: Write> SpanSink<'a> for Perfetto<'_, W> {
    type Error = io::Error;

    fn thread(&mut self, thread: Thread, _first_ns: u64) -> io::Result<()> {
        let (pid, tid) = (self.context.pid(thread), self.context.tid(thread));
        let label = self.context.thread_label(thread);
        let process = match self.context.child_name(thread) {
            Some(name) => {
                let uuid = CHILD_PROCESS_UUID + u64::from(pid);
                if !self.children.contains(&pid) {
                    self.children.push(pid);
                    self.child_process(uuid, pid, &name)?;
                }
                uuid
            }
            None => PROCESS_UUID,
        };
        let p = &mut self.packet;
        p.clear();
        p.uint(field::TRUSTED_PACKET_SEQUENCE_ID, SEQUENCE_ID);
        p.message(field::TRACK_DESCRIPTOR, |d| {
            d.uint(field::TRACK_UUID, thread_uuid(thread));
            d.uint(field::TRACK_PARENT_UUID, process);
            d.message(field::TRACK_THREAD, |t| {
                t.uint(field::THREAD_PID, u64::from(pid));
                t.uint(field::THREAD_TID, u64::from(tid));
                t.string(field::THREAD_NAME, &label);
            });
        });
        self.emit()
    }

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> io::Result<()> {
        let position = self.context.position(span.code);
        let iid = position as u64 + 1;
        let first_use = self
            .interned
            .get_mut(position)
            .is_some_and(|seen| !std::mem::replace(seen, true));
        self.event_packet(span.start_ns);
        let name = self.context.name(position);
        let p = &mut self.packet;
        if first_use {
            p.message(field::INTERNED_DATA, |m| {
                m.message(field::INTERNED_EVENT_NAMES, |n| {
                    n.uint(field::INTERNED_IID, iid);
                    n.string(field::INTERNED_NAME, name);
                });
            });
        }
        p.message(field::TRACK_EVENT, |e| {
            e.uint(field::EVENT_TYPE, field::TYPE_SLICE_BEGIN);
            e.uint(field::EVENT_TRACK_UUID, thread_uuid(thread));
            e.uint(field::EVENT_NAME_IID, iid);
            if let Some(args) = text::args(span.args, VALUE_CHARS) {
                string_annotation(e, ARGS, &args);
            }
            if span.resumed {
                flag_annotation(e, RESUMED);
            }
        });
        self.emit()
    }

    fn close(&mut self, thread: Thread, _span: &Opened<'a>, end: &Closed<'a>) -> io::Result<()> {
        self.event_packet(end.end_ns);
        self.packet.message(field::TRACK_EVENT, |e| {
            e.uint(field::EVENT_TYPE, field::TYPE_SLICE_END);
            e.uint(field::EVENT_TRACK_UUID, thread_uuid(thread));
            match end.outcome {
                Outcome::Returned(value) => {
                    if let Some(value) = text::value(value, VALUE_CHARS) {
                        string_annotation(e, RETURN, &value);
                    }
                }
                Outcome::Raised(exception) => {
                    let exception = text::value(exception, VALUE_CHARS);
                    string_annotation(e, EXCEPTION, exception.as_deref().unwrap_or("?"));
                }
                Outcome::Suspended(value) => {
                    let value = text::value(value, VALUE_CHARS);
                    string_annotation(e, YIELD, value.as_deref().unwrap_or("?"));
                }
                Outcome::Unfinished => flag_annotation(e, UNFINISHED),
            }
            if end.mutated_args {
                flag_annotation(e, MUTATED_ARGS);
            }
        });
        self.emit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use crate::trace::{Event, TraceHeader};
    use std::collections::HashMap;

    /// A decoded protobuf field value.
    #[derive(Debug, Clone, Copy)]
    enum Value<'b> {
        Int(u64),
        Bytes(&'b [u8]),
    }

    impl<'b> Value<'b> {
        fn int(self) -> u64 {
            match self {
                Value::Int(v) => v,
                Value::Bytes(_) => panic!("not a varint"),
            }
        }

        fn bytes(self) -> &'b [u8] {
            match self {
                Value::Bytes(b) => b,
                Value::Int(_) => panic!("not length-delimited"),
            }
        }
    }

    fn varint(buf: &[u8], at: &mut usize) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let byte = buf[*at];
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
        }
        panic!("varint too long");
    }

    /// Decodes one message into its fields, in order; panics on malformed input.
    fn fields(buf: &[u8]) -> Vec<(u32, Value<'_>)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < buf.len() {
            let key = varint(buf, &mut at);
            let field = u32::try_from(key >> 3).unwrap();
            match key & 7 {
                0 => out.push((field, Value::Int(varint(buf, &mut at)))),
                2 => {
                    let len = usize::try_from(varint(buf, &mut at)).unwrap();
                    out.push((field, Value::Bytes(&buf[at..at + len])));
                    at += len;
                }
                other => panic!("unexpected wire type {other}"),
            }
        }
        out
    }

    fn get<'b>(fields: &[(u32, Value<'b>)], number: u32) -> Option<Value<'b>> {
        fields.iter().find(|(f, _)| *f == number).map(|(_, v)| *v)
    }

    fn all<'b>(fields: &[(u32, Value<'b>)], number: u32) -> Vec<Value<'b>> {
        fields
            .iter()
            .filter(|(f, _)| *f == number)
            .map(|(_, v)| *v)
            .collect()
    }

    #[test]
    fn slices_balance_per_thread_and_names_are_interned_once() {
        let mut reader_events = vec![call(1, 0, 1000), call(2, 1, 1001)];
        for i in 0..50 {
            reader_events.push(call(1, 2, 1002 + i * 2));
            reader_events.push(ret(1, 2, 1003 + i * 2));
        }
        reader_events.extend([
            Event::Yield {
                code: 1,
                thread: 2,
                t_ns: 1200,
                value: None,
            },
            Event::Resume {
                code: 1,
                thread: 2,
                t_ns: 1300,
            },
            ret(1, 0, 1400),
            // Thread 2's generator stays open: it ends unfinished.
        ]);
        let reader = trace(&reader_events);
        let out = write(&reader, Vec::new()).unwrap();

        let packets: Vec<_> = fields(&out)
            .into_iter()
            .map(|(f, v)| {
                assert_eq!(f, field::TRACE_PACKET);
                fields(v.bytes())
            })
            .collect();
        // Process, two threads, and a begin and an end per span (1 + 50 + 2 + 2 resumed).
        assert_eq!(packets.len(), 1 + 2 + 2 * (1 + 50 + 1 + 1));
        let first = &packets[0];
        assert_eq!(
            get(first, field::SEQUENCE_FLAGS).unwrap().int(),
            field::SEQ_INCREMENTAL_STATE_CLEARED
        );
        let interned = fields(get(first, field::INTERNED_DATA).unwrap().bytes());
        assert_eq!(
            all(&interned, field::INTERNED_DEBUG_ANNOTATION_NAMES).len(),
            ANNOTATIONS.len()
        );

        let mut names: HashMap<u64, String> = HashMap::new();
        let mut depth: HashMap<u64, i64> = HashMap::new();
        let mut last_time: HashMap<u64, u64> = HashMap::new();
        let mut begun: HashMap<u64, Vec<String>> = HashMap::new();
        let mut threads = Vec::new();
        for packet in &packets {
            assert_eq!(
                get(packet, field::TRUSTED_PACKET_SEQUENCE_ID)
                    .unwrap()
                    .int(),
                SEQUENCE_ID
            );
            if let Some(data) = get(packet, field::INTERNED_DATA) {
                for name in all(&fields(data.bytes()), field::INTERNED_EVENT_NAMES) {
                    let name = fields(name.bytes());
                    let iid = get(&name, field::INTERNED_IID).unwrap().int();
                    let text = get(&name, field::INTERNED_NAME).unwrap().bytes();
                    let text = String::from_utf8(text.to_vec()).unwrap();
                    assert!(
                        names.insert(iid, text).is_none(),
                        "name {iid} interned twice"
                    );
                }
            }
            if let Some(track) = get(packet, field::TRACK_DESCRIPTOR) {
                let track = fields(track.bytes());
                if let Some(thread) = get(&track, field::TRACK_THREAD) {
                    let thread = fields(thread.bytes());
                    let name = get(&thread, field::THREAD_NAME).unwrap().bytes();
                    threads.push(String::from_utf8(name.to_vec()).unwrap());
                    assert_eq!(
                        get(&track, field::TRACK_PARENT_UUID).unwrap().int(),
                        PROCESS_UUID
                    );
                }
            }
            let Some(event) = get(packet, field::TRACK_EVENT) else {
                continue;
            };
            assert_eq!(
                get(packet, field::SEQUENCE_FLAGS).unwrap().int(),
                field::SEQ_NEEDS_INCREMENTAL_STATE
            );
            let event = fields(event.bytes());
            let track = get(&event, field::EVENT_TRACK_UUID).unwrap().int();
            let time = get(packet, field::TIMESTAMP).unwrap().int();
            assert!(time >= last_time.get(&track).copied().unwrap_or(0));
            last_time.insert(track, time);
            let d = depth.entry(track).or_default();
            match get(&event, field::EVENT_TYPE).unwrap().int() {
                field::TYPE_SLICE_BEGIN => {
                    *d += 1;
                    let iid = get(&event, field::EVENT_NAME_IID).unwrap().int();
                    begun.entry(track).or_default().push(names[&iid].clone());
                }
                field::TYPE_SLICE_END => {
                    *d -= 1;
                    assert!(*d >= 0, "slice end without a begin");
                }
                other => panic!("unexpected event type {other}"),
            }
        }
        assert!(depth.values().all(|&d| d == 0));
        assert_eq!(threads, ["thread 1", "thread 2"]);
        assert_eq!(names.len(), 3);
        let thread1 = &begun[&(PROCESS_UUID + 1)];
        assert_eq!(thread1.len(), 51);
        assert_eq!(thread1[0], "m.f0");
        assert!(thread1[1..].iter().all(|n| n == "m.f2"));
        assert_eq!(begun[&(PROCESS_UUID + 2)], ["m.f1", "m.f1"]);
        // Times count from the first event.
        assert_eq!(last_time[&(PROCESS_UUID + 1)], 400);
    }

    #[test]
    fn the_main_thread_gets_the_process_id() {
        let mut writer = crate::trace::TraceWriter::new(
            Vec::new(),
            &TraceHeader {
                pid: 4242,
                argv: vec!["app.py".into()],
                options: vec![("main_thread".into(), "7".into())],
                ..TraceHeader::default()
            },
        )
        .unwrap();
        writer.add_code(crate::trace::CodeInfo::default()).unwrap();
        writer.write_event(&call(7, 0, 5)).unwrap();
        writer.write_event(&call(8, 0, 6)).unwrap();
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let out = write(&reader, Vec::new()).unwrap();
        let tids: Vec<(u64, String)> = fields(&out)
            .into_iter()
            .filter_map(|(_, packet)| {
                let packet = fields(packet.bytes());
                let track = fields(get(&packet, field::TRACK_DESCRIPTOR)?.bytes());
                let thread = fields(get(&track, field::TRACK_THREAD)?.bytes());
                assert_eq!(get(&thread, field::THREAD_PID).unwrap().int(), 4242);
                let name = get(&thread, field::THREAD_NAME).unwrap().bytes();
                Some((
                    get(&thread, field::THREAD_TID).unwrap().int(),
                    String::from_utf8(name.to_vec()).unwrap(),
                ))
            })
            .collect();
        assert_eq!(
            tids,
            [
                (4242, "thread 7 (main)".to_owned()),
                (4244, "thread 8".to_owned())
            ]
        );
    }

    #[test]
    fn a_childs_threads_are_under_a_process_of_its_own() {
        let mut writer = crate::trace::TraceWriter::new(
            Vec::new(),
            &TraceHeader {
                pid: 4242,
                options: vec![("main_thread".into(), "7".into())],
                ..TraceHeader::default()
            },
        )
        .unwrap();
        writer.add_code(crate::trace::CodeInfo::default()).unwrap();
        let child = crate::trace::child_thread(4300, 0);
        writer.write_event(&call(7, 0, 5)).unwrap();
        writer.write_event(&call(child, 0, 6)).unwrap();
        writer
            .write_event(&call(crate::trace::child_thread(4300, 1), 0, 7))
            .unwrap();
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let out = write(&reader, Vec::new()).unwrap();
        let mut processes = Vec::new();
        let mut threads = Vec::new();
        for (_, packet) in fields(&out) {
            let packet = fields(packet.bytes());
            let Some(track) = get(&packet, field::TRACK_DESCRIPTOR) else {
                continue;
            };
            let track = fields(track.bytes());
            let uuid = get(&track, field::TRACK_UUID).unwrap().int();
            if let Some(process) = get(&track, field::TRACK_PROCESS) {
                let process = fields(process.bytes());
                processes.push((uuid, get(&process, field::PROCESS_PID).unwrap().int()));
            }
            if let Some(thread) = get(&track, field::TRACK_THREAD) {
                let thread = fields(thread.bytes());
                threads.push((
                    get(&track, field::TRACK_PARENT_UUID).unwrap().int(),
                    get(&thread, field::THREAD_PID).unwrap().int(),
                    get(&thread, field::THREAD_TID).unwrap().int(),
                ));
            }
        }
        let child_uuid = CHILD_PROCESS_UUID + 4300;
        // The recorded process, then the child, described once, before its first thread.
        assert_eq!(processes, [(PROCESS_UUID, 4242), (child_uuid, 4300)]);
        assert_eq!(
            threads,
            [
                (PROCESS_UUID, 4242, 4242),
                (child_uuid, 4300, 4300),
                (child_uuid, 4300, 4301)
            ]
        );
    }
}
