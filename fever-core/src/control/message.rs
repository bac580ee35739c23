//! The messages of the control channel and their encoding (see `wire.rs`).
//!
//! The front end sends [`Request`]s; the program answers each with one [`Response`], and says
//! [`Response::Finished`] unasked when its first run ended and it waits, warm, for replays.
//!
//! `fever ps` and `fever attach` speak on the same channel to any process fever runs:
//! [`Request::Status`] (and [`Request::Children`], [`Request::EndedChildren`]), then
//! [`Request::Attach`] (or [`Request::AttachRecording`]), [`Request::Names`] while attached, and
//! [`Request::Detach`].
//! The format grows by adding messages, never by changing a body: new requests and responses
//! take the next free tag, and a receiver answers a tag it does not know with
//! [`Response::Error`].

use super::wire::{Reader, Writer};
use super::{read_frame, write_frame, ControlError};
use crate::replay::CallRef;

/// What the front end asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Are you there? (Answered with [`Response::Pong`].)
    Ping,
    /// Re-run a segment of the warm program in a forked child.
    Replay(ReplayRequest),
    /// Stop the replay in progress (its child is killed; the warm program is untouched).
    Cancel,
    /// End the program (it exits with code 0).
    Quit,
    /// Undo the last reload: the program runs the code it ran before that save (answered with
    /// [`Response::Undone`], or [`Response::Error`] when there is nothing to undo).
    Undo,
    /// Who are you? (Answered with [`Response::Status`].)
    Status,
    /// Start profiling the project's code (answered with [`Response::Attached`]); the profile
    /// lasts until [`Request::Detach`] or until this connection closes.
    Attach,
    /// The names of the profiled functions from entry `from` on (answered with
    /// [`Response::Names`]).
    Names { from: u32 },
    /// Stop profiling (answered with [`Response::Detached`], or [`Response::Recorded`] after
    /// [`Request::AttachRecording`]).
    Detach,
    /// [`Request::Attach`], and a trace of the attached window written to `trace` (an absolute
    /// path, written by the program) as `fever record` writes one; both start and stop together.
    AttachRecording { trace: String },
    /// Your child processes under fever? (Answered with [`Response::Children`]; an earlier fever
    /// answers [`Response::Error`], as for any tag it does not know.)
    Children,
    /// Your child processes under fever that have ended? (Answered with
    /// [`Response::EndedChildren`].)
    EndedChildren,
}

/// What a process under fever says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    pub pid: u32,
    /// The command it runs, as typed (`fever run app.py --port 8000`).
    pub command: String,
    /// The project root.
    pub root: String,
    /// Someone is attached now.
    pub attached: bool,
}

/// A segment to replay: from the `start` call, re-run with the arguments it first had, to the
/// return (or exception) of the `end` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub start: CallRef,
    pub end: CallRef,
    /// Open the debugger in the end call's frame when it returns (and where it raises).
    pub break_at_end: bool,
    /// Open the debugger post-mortem in the raising frame when the replay raises.
    pub debug_on_raise: bool,
    /// Which debugger: `pdb`, `pdbpp`, `ipdb` or `pudb`.
    pub debugger: String,
}

/// What the program says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Pong,
    /// The program's first run ended with this exit code; it stays warm, and everything it did
    /// is in the trace file.
    Finished {
        exit_code: i32,
    },
    /// A replay reached its end call (or its start call ended without reaching it).
    ReplayDone(ReplayResult),
    /// A replay produced no result: the reason (cancelled, crashed, `os._exit`, no such call).
    ReplayFailed {
        reason: String,
    },
    /// The request could not be read or is not allowed now.
    Error {
        message: String,
    },
    /// A save changed these functions in the warm program (said unasked).
    Reloaded {
        functions: Vec<FunctionCode>,
    },
    /// The last reload was undone: `file` runs its previous text again, which changed these
    /// functions.
    Undone {
        file: String,
        functions: Vec<FunctionCode>,
    },
    /// A debugger opens on the program's terminal now (in a replay, or post-mortem on the first
    /// run's uncaught exception): the front end gives it the keyboard until the next response.
    Debugging,
    /// What the process is ([`Request::Status`]).
    Status(ProcessStatus),
    /// Profiling is on; its counters are in the shared region at `region`
    /// ([`crate::profile::Region`]).
    Attached {
        region: String,
    },
    /// Names of profiled functions, entries `from`, `from + 1`, ...
    Names {
        from: u32,
        names: Vec<String>,
    },
    /// Profiling is off again.
    Detached,
    /// Profiling is off again, and the trace of the attached window is complete: `calls` calls
    /// of `functions` functions, `bytes` big, `lost_events` events lost by the trace writer.
    Recorded {
        calls: u64,
        functions: u64,
        bytes: u64,
        lost_events: u64,
    },
    /// The process's children under fever ([`Request::Children`]): forked or spawned, at any
    /// depth, the processes that receive its saves, by pid.
    Children {
        pids: Vec<u32>,
    },
    /// The children that joined the process's family and have ended since
    /// ([`Request::EndedChildren`]), by pid (the most recent ones: the list is bounded).
    EndedChildren {
        pids: Vec<u32>,
    },
}

/// A function whose code a reload changed: its name (`module.qualname`) and the content hash of
/// the code it runs now (`CodeInfo::code_hash`'s), `None` when it is gone or cannot be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCode {
    pub name: String,
    pub code_hash: Option<u64>,
}

/// What a replay found at its end call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayResult {
    pub outcome: EndOutcome,
    /// The end call's local variables at its end, as snapshots, in the frame's order.
    pub locals: Vec<(String, Vec<u8>)>,
    /// Arguments of the start call that may differ from the ones it first had.
    pub notes: Vec<ArgNote>,
    /// From the fork to the end call's end.
    pub elapsed_ns: u64,
}

/// How the end call ended in the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// It returned this value (a snapshot).
    Returned(Vec<u8>),
    /// It raised this exception (a snapshot), with Python's formatted traceback.
    Raised {
        exception: Vec<u8>,
        traceback: String,
    },
    /// The start call ended without calling the end function: how it ended.
    NotReached { how: String },
}

/// An argument of the start call that may not be what it was when the call first ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgNote {
    pub name: String,
    pub reason: String,
}

const PING: u8 = 1;
const REPLAY: u8 = 2;
const CANCEL: u8 = 3;
const QUIT: u8 = 4;
const UNDO: u8 = 5;
const STATUS: u8 = 6;
const ATTACH: u8 = 7;
const NAMES: u8 = 8;
const DETACH: u8 = 9;
const ATTACH_RECORDING: u8 = 10;
const CHILDREN: u8 = 11;
const ENDED_CHILDREN: u8 = 12;

const PONG: u8 = 101;
const FINISHED: u8 = 102;
const DONE: u8 = 103;
const FAILED: u8 = 104;
const ERROR: u8 = 105;
const RELOADED: u8 = 106;
const UNDONE: u8 = 107;
const DEBUGGING: u8 = 108;
const STATUS_OF: u8 = 109;
const ATTACHED: u8 = 110;
const NAMES_OF: u8 = 111;
const DETACHED: u8 = 112;
const RECORDED: u8 = 113;
const CHILDREN_OF: u8 = 114;
const ENDED_CHILDREN_OF: u8 = 115;

/// [`ReplayRequest`]'s flags byte.
const BREAK_AT_END: u8 = 1;
const DEBUG_ON_RAISE: u8 = 2;

const RETURNED: u8 = 1;
const RAISED: u8 = 2;
const NOT_REACHED: u8 = 3;

fn call_ref(w: &mut Writer, call: &CallRef) {
    w.str(&call.function).u32(call.number);
}

fn read_call_ref(r: &mut Reader<'_>, what: &str) -> Result<CallRef, ControlError> {
    let function = r.str(what)?;
    let number = r.u32(what)?;
    CallRef::new(&function, number).map_err(|err| ControlError::Malformed(err.to_string()))
}

fn function_codes(w: &mut Writer, functions: &[FunctionCode]) {
    w.count(functions.len());
    for function in functions {
        w.str(&function.name);
        match function.code_hash {
            Some(hash) => w.bool(true).u64(hash),
            None => w.bool(false),
        };
    }
}

fn read_function_codes(r: &mut Reader<'_>) -> Result<Vec<FunctionCode>, ControlError> {
    let mut functions = Vec::new();
    for _ in 0..r.count("the reloaded functions")? {
        let name = r.str("a function's name")?;
        let code_hash = if r.bool("whether the function has code")? {
            Some(r.u64("a code hash")?)
        } else {
            None
        };
        functions.push(FunctionCode { name, code_hash });
    }
    Ok(functions)
}

fn pids(w: &mut Writer, pids: &[u32]) {
    w.count(pids.len());
    for pid in pids {
        w.u32(*pid);
    }
}

fn read_pids(r: &mut Reader<'_>) -> Result<Vec<u32>, ControlError> {
    let mut pids = Vec::new();
    for _ in 0..r.count("the children")? {
        pids.push(r.u32("a child's pid")?);
    }
    Ok(pids)
}

fn unknown(kind: &str, tag: u8) -> ControlError {
    ControlError::Malformed(format!("unknown {kind} tag {tag}"))
}

impl Request {
    /// Writes this request as one frame.
    pub fn send(&self, out: &mut impl std::io::Write) -> Result<(), ControlError> {
        let mut w = Writer::default();
        let tag = match self {
            Self::Ping => PING,
            Self::Cancel => CANCEL,
            Self::Quit => QUIT,
            Self::Undo => UNDO,
            Self::Status => STATUS,
            Self::Children => CHILDREN,
            Self::EndedChildren => ENDED_CHILDREN,
            Self::Attach => ATTACH,
            Self::Detach => DETACH,
            Self::AttachRecording { trace } => {
                w.str(trace);
                ATTACH_RECORDING
            }
            Self::Names { from } => {
                w.u32(*from);
                NAMES
            }
            Self::Replay(r) => {
                call_ref(&mut w, &r.start);
                call_ref(&mut w, &r.end);
                let flags = if r.break_at_end { BREAK_AT_END } else { 0 }
                    | if r.debug_on_raise { DEBUG_ON_RAISE } else { 0 };
                w.u8(flags).str(&r.debugger);
                REPLAY
            }
        };
        write_frame(out, tag, &w.buf)
    }

    /// Reads one request.
    pub fn receive(input: &mut impl std::io::Read) -> Result<Self, ControlError> {
        let (tag, body) = read_frame(input)?;
        Self::decode(tag, &body)
    }

    /// Decodes a request from a frame's tag and body.
    pub fn decode(tag: u8, body: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(body);
        let request = match tag {
            PING => Self::Ping,
            CANCEL => Self::Cancel,
            QUIT => Self::Quit,
            UNDO => Self::Undo,
            STATUS => Self::Status,
            CHILDREN => Self::Children,
            ENDED_CHILDREN => Self::EndedChildren,
            ATTACH => Self::Attach,
            DETACH => Self::Detach,
            ATTACH_RECORDING => Self::AttachRecording {
                trace: r.str("the trace's path")?,
            },
            NAMES => Self::Names {
                from: r.u32("the first entry")?,
            },
            REPLAY => {
                let start = read_call_ref(&mut r, "the start call")?;
                let end = read_call_ref(&mut r, "the end call")?;
                let flags = r.u8("the replay's flags")?;
                if flags & !(BREAK_AT_END | DEBUG_ON_RAISE) != 0 {
                    return Err(ControlError::Malformed(format!(
                        "unknown replay flags {flags:#x}"
                    )));
                }
                Self::Replay(ReplayRequest {
                    start,
                    end,
                    break_at_end: flags & BREAK_AT_END != 0,
                    debug_on_raise: flags & DEBUG_ON_RAISE != 0,
                    debugger: r.str("the debugger")?,
                })
            }
            other => return Err(unknown("request", other)),
        };
        r.end()?;
        Ok(request)
    }
}

impl Response {
    /// Writes this response as one frame.
    pub fn send(&self, out: &mut impl std::io::Write) -> Result<(), ControlError> {
        let mut w = Writer::default();
        let tag = match self {
            Self::Pong => PONG,
            Self::Finished { exit_code } => {
                w.i32(*exit_code);
                FINISHED
            }
            Self::ReplayFailed { reason } => {
                w.str(reason);
                FAILED
            }
            Self::Error { message } => {
                w.str(message);
                ERROR
            }
            Self::Reloaded { functions } => {
                function_codes(&mut w, functions);
                RELOADED
            }
            Self::Undone { file, functions } => {
                w.str(file);
                function_codes(&mut w, functions);
                UNDONE
            }
            Self::Debugging => DEBUGGING,
            Self::Detached => DETACHED,
            Self::Children { pids: children } => {
                pids(&mut w, children);
                CHILDREN_OF
            }
            Self::EndedChildren { pids: children } => {
                pids(&mut w, children);
                ENDED_CHILDREN_OF
            }
            Self::Status(status) => {
                w.u32(status.pid)
                    .str(&status.command)
                    .str(&status.root)
                    .bool(status.attached);
                STATUS_OF
            }
            Self::Attached { region } => {
                w.str(region);
                ATTACHED
            }
            Self::Recorded {
                calls,
                functions,
                bytes,
                lost_events,
            } => {
                w.u64(*calls).u64(*functions).u64(*bytes).u64(*lost_events);
                RECORDED
            }
            Self::Names { from, names } => {
                w.u32(*from).count(names.len());
                for name in names {
                    w.str(name);
                }
                NAMES_OF
            }
            Self::ReplayDone(result) => {
                match &result.outcome {
                    EndOutcome::Returned(value) => w.u8(RETURNED).bytes(value),
                    EndOutcome::Raised {
                        exception,
                        traceback,
                    } => w.u8(RAISED).bytes(exception).str(traceback),
                    EndOutcome::NotReached { how } => w.u8(NOT_REACHED).str(how),
                };
                w.count(result.locals.len());
                for (name, value) in &result.locals {
                    w.str(name).bytes(value);
                }
                w.count(result.notes.len());
                for note in &result.notes {
                    w.str(&note.name).str(&note.reason);
                }
                w.u64(result.elapsed_ns);
                DONE
            }
        };
        write_frame(out, tag, &w.buf)
    }

    /// Reads one response.
    pub fn receive(input: &mut impl std::io::Read) -> Result<Self, ControlError> {
        let (tag, body) = read_frame(input)?;
        Self::decode(tag, &body)
    }

    /// Decodes a whole frame held in `bytes`; `None` when there are no bytes at all.
    pub fn decode_frame(bytes: &[u8]) -> Option<Result<Self, ControlError>> {
        (!bytes.is_empty()).then(|| Self::receive(&mut &bytes[..]))
    }

    /// Decodes a response from a frame's tag and body.
    pub fn decode(tag: u8, body: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(body);
        let response = match tag {
            PONG => Self::Pong,
            FINISHED => Self::Finished {
                exit_code: r.i32("the exit code")?,
            },
            FAILED => Self::ReplayFailed {
                reason: r.str("the reason")?,
            },
            ERROR => Self::Error {
                message: r.str("the message")?,
            },
            RELOADED => Self::Reloaded {
                functions: read_function_codes(&mut r)?,
            },
            UNDONE => Self::Undone {
                file: r.str("the file")?,
                functions: read_function_codes(&mut r)?,
            },
            DEBUGGING => Self::Debugging,
            DETACHED => Self::Detached,
            CHILDREN_OF => Self::Children {
                pids: read_pids(&mut r)?,
            },
            ENDED_CHILDREN_OF => Self::EndedChildren {
                pids: read_pids(&mut r)?,
            },
            RECORDED => Self::Recorded {
                calls: r.u64("the calls")?,
                functions: r.u64("the functions")?,
                bytes: r.u64("the size")?,
                lost_events: r.u64("the lost events")?,
            },
            STATUS_OF => Self::Status(ProcessStatus {
                pid: r.u32("the pid")?,
                command: r.str("the command")?,
                root: r.str("the root")?,
                attached: r.bool("whether someone is attached")?,
            }),
            ATTACHED => Self::Attached {
                region: r.str("the region's path")?,
            },
            NAMES_OF => {
                let from = r.u32("the first entry")?;
                let mut names = Vec::new();
                for _ in 0..r.count("the names")? {
                    names.push(r.str("a function's name")?);
                }
                Self::Names { from, names }
            }
            DONE => {
                let outcome = match r.u8("the outcome")? {
                    RETURNED => EndOutcome::Returned(r.bytes("the return value")?),
                    RAISED => EndOutcome::Raised {
                        exception: r.bytes("the exception")?,
                        traceback: r.str("the traceback")?,
                    },
                    NOT_REACHED => EndOutcome::NotReached {
                        how: r.str("how the start call ended")?,
                    },
                    other => return Err(unknown("outcome", other)),
                };
                let mut locals = Vec::new();
                for _ in 0..r.count("the locals")? {
                    locals.push((r.str("a local's name")?, r.bytes("a local's value")?));
                }
                let mut notes = Vec::new();
                for _ in 0..r.count("the argument notes")? {
                    notes.push(ArgNote {
                        name: r.str("an argument's name")?,
                        reason: r.str("an argument's note")?,
                    });
                }
                Self::ReplayDone(ReplayResult {
                    outcome,
                    locals,
                    notes,
                    elapsed_ns: r.u64("the elapsed time")?,
                })
            }
            other => return Err(unknown("response", other)),
        };
        r.end()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        vec![
            Request::Ping,
            Request::Cancel,
            Request::Quit,
            Request::Undo,
            Request::Status,
            Request::Children,
            Request::EndedChildren,
            Request::Attach,
            Request::Detach,
            Request::Names { from: 7 },
            Request::AttachRecording {
                trace: "/tmp/w.trace".into(),
            },
            Request::Replay(ReplayRequest {
                start: CallRef::parse("app.Shop.total#3").unwrap(),
                end: CallRef::parse("app.tax").unwrap(),
                break_at_end: true,
                debug_on_raise: false,
                debugger: "pdb".into(),
            }),
            Request::Replay(ReplayRequest {
                start: CallRef::parse("app.f").unwrap(),
                end: CallRef::parse("app.f").unwrap(),
                break_at_end: false,
                debug_on_raise: true,
                debugger: "ipdb".into(),
            }),
        ]
    }

    fn responses() -> Vec<Response> {
        vec![
            Response::Pong,
            Response::Finished { exit_code: -3 },
            Response::ReplayFailed {
                reason: "cancelled".into(),
            },
            Response::Error {
                message: "é".into(),
            },
            Response::Reloaded {
                functions: vec![
                    FunctionCode {
                        name: "app.f".into(),
                        code_hash: Some(u64::MAX),
                    },
                    FunctionCode {
                        name: "app.C.g".into(),
                        code_hash: None,
                    },
                ],
            },
            Response::Undone {
                file: "app.py".into(),
                functions: vec![FunctionCode {
                    name: "app.f".into(),
                    code_hash: Some(7),
                }],
            },
            Response::Debugging,
            Response::Detached,
            Response::Children { pids: vec![] },
            Response::EndedChildren {
                pids: vec![7, 4_194_304],
            },
            Response::Children {
                pids: vec![43, 4_194_304],
            },
            Response::Recorded {
                calls: 3,
                functions: 2,
                bytes: u64::MAX,
                lost_events: 1,
            },
            Response::Status(ProcessStatus {
                pid: 42,
                command: "fever run app.py".into(),
                root: "/src".into(),
                attached: true,
            }),
            Response::Attached {
                region: "/run/fever/42.profile".into(),
            },
            Response::Names {
                from: 3,
                names: vec!["app.f".into(), "app.C.g".into()],
            },
            Response::ReplayDone(ReplayResult {
                outcome: EndOutcome::Raised {
                    exception: vec![1, 2],
                    traceback: "Traceback".into(),
                },
                locals: vec![("x".into(), vec![3]), ("y".into(), vec![])],
                notes: vec![ArgNote {
                    name: "f".into(),
                    reason: "moved".into(),
                }],
                elapsed_ns: 42,
            }),
            Response::ReplayDone(ReplayResult {
                outcome: EndOutcome::Returned(vec![9]),
                locals: vec![],
                notes: vec![],
                elapsed_ns: 0,
            }),
            Response::ReplayDone(ReplayResult {
                outcome: EndOutcome::NotReached {
                    how: "returned 3".into(),
                },
                locals: vec![],
                notes: vec![],
                elapsed_ns: 1,
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for request in requests() {
            let mut buf = Vec::new();
            request.send(&mut buf).unwrap();
            assert_eq!(Request::receive(&mut buf.as_slice()).unwrap(), request);
        }
        for response in responses() {
            let mut buf = Vec::new();
            response.send(&mut buf).unwrap();
            assert_eq!(Response::receive(&mut buf.as_slice()).unwrap(), response);
        }
    }

    #[test]
    fn cut_or_padded_bodies_are_malformed_not_panics() {
        for response in responses() {
            let mut buf = Vec::new();
            response.send(&mut buf).unwrap();
            let (tag, body) = read_frame(&mut buf.as_slice()).unwrap();
            for cut in 0..body.len() {
                assert!(
                    Response::decode(tag, &body[..cut]).is_err(),
                    "{response:?} cut at {cut}"
                );
            }
            let mut padded = body.clone();
            padded.push(0);
            assert!(Response::decode(tag, &padded).is_err());
        }
        assert!(Request::decode(200, &[]).is_err());
        assert!(Request::decode(PING, &[0]).is_err());
        // A replay naming a call #0 is refused by CallRef's own rules.
        let mut w = Writer::default();
        w.str("m.f").u32(0).str("m.f").u32(1).u8(0).str("pdb");
        assert!(Request::decode(REPLAY, &w.buf).is_err());
        // Flags this version does not know are refused.
        let mut w = Writer::default();
        w.str("m.f").u32(1).str("m.f").u32(1).u8(4).str("pdb");
        assert!(Request::decode(REPLAY, &w.buf).is_err());
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)] // bytes cut from a random u64 on purpose
    fn random_bytes_never_panic() {
        // A small deterministic generator (xorshift) is enough to shake the decoders.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 5) & 0xff) as u8)
                .collect();
            let tag = (state >> 56) as u8;
            let _ = Request::decode(tag, &bytes);
            let _ = Response::decode(tag, &bytes);
            let _ = Request::receive(&mut bytes.as_slice());
        }
    }
}
