//! The family channel between a program under fever and its child processes (fork, spawn or
//! forkserver, at any depth): each child connects to the top process's family socket and says
//! [`ChildMessage::Hello`] with its pid; the top process, which alone watches files, sends it each
//! save ([`ParentMessage::Reload`], with what the top [`Prepared`] for it), and the child answers with what the save did there
//! ([`ChildMessage::Applied`]). Framed like the control channel (`frame.rs`), and decoding never
//! panics either.

use super::wire::{Reader, Writer};
use super::{read_frame, write_frame, ControlError};
use crate::events::ReloadEvent;

/// What the top process says to a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentMessage {
    /// `path` was saved: apply it (save number `seq`); `skip_main` leaves `__main__` alone.
    Reload {
        seq: u64,
        path: String,
        skip_main: bool,
        /// What the top read and compiled for this save, when it could.
        prepared: Option<Prepared>,
    },
}

/// A save as the top read and compiled it, so that each child neither reads the file nor
/// compiles again: the saved bytes (unless large: copying them to each child costs more than
/// its own read), and the code objects the top compiled for the changed
/// definitions, marshalled by an interpreter whose bytecode magic number is `magic` (a child
/// running another one compiles itself), each under the hash of what was compiled (file, flags,
/// source; a child whose running text differs asks for other sources, and compiles them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prepared {
    pub bytes: Option<Vec<u8>>,
    pub magic: Vec<u8>,
    pub compiled: Vec<(u128, Vec<u8>)>,
}

impl Prepared {
    /// About how many bytes this adds to a message.
    pub fn size(&self) -> usize {
        self.bytes.as_ref().map_or(0, Vec::len)
            + self.magic.len()
            + self
                .compiled
                .iter()
                .map(|(_, code)| code.len() + 20)
                .sum::<usize>()
    }
}

/// What a child says to the top process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildMessage {
    /// The first message on a connection: the child's pid, and for a forked child the number of
    /// the last save its code has (its parent's when it forked): the saves after it are sent
    /// again. `None` for a spawned interpreter, which imports the files as they are now.
    Hello { pid: u32, seen: Option<u64> },
    /// What save number `seq` did in this child.
    Applied { seq: u64, events: Vec<ReloadEvent> },
}

const RELOAD: u8 = 1;
const HELLO: u8 = 101;
const APPLIED: u8 = 102;

impl ParentMessage {
    /// Writes this message as one frame.
    pub fn send(&self, out: &mut impl std::io::Write) -> Result<(), ControlError> {
        let mut w = Writer::default();
        let tag = match self {
            Self::Reload {
                seq,
                path,
                skip_main,
                prepared,
            } => {
                w.u64(*seq).str(path).bool(*skip_main);
                w.bool(prepared.is_some());
                if let Some(prepared) = prepared {
                    w.bool(prepared.bytes.is_some())
                        .bytes(prepared.bytes.as_deref().unwrap_or_default())
                        .bytes(&prepared.magic)
                        .count(prepared.compiled.len());
                    for (key, code) in &prepared.compiled {
                        w.bytes(&key.to_le_bytes()).bytes(code);
                    }
                }
                RELOAD
            }
        };
        write_frame(out, tag, &w.buf)
    }

    /// Reads one message.
    pub fn receive(input: &mut impl std::io::Read) -> Result<Self, ControlError> {
        let (tag, body) = read_frame(input)?;
        let mut r = Reader::new(&body);
        let message = match tag {
            RELOAD => Self::Reload {
                seq: r.u64("the save number")?,
                path: r.str("the saved path")?,
                skip_main: r.bool("skip main")?,
                prepared: if r.bool("a prepared save")? {
                    Some(read_prepared(&mut r)?)
                } else {
                    None
                },
            },
            other => return Err(unknown("parent", other)),
        };
        r.end()?;
        Ok(message)
    }
}

impl ChildMessage {
    /// Writes this message as one frame.
    pub fn send(&self, out: &mut impl std::io::Write) -> Result<(), ControlError> {
        let mut w = Writer::default();
        let tag = match self {
            Self::Hello { pid, seen } => {
                w.u32(*pid).bool(seen.is_some()).u64(seen.unwrap_or(0));
                HELLO
            }
            Self::Applied { seq, events } => {
                w.u64(*seq).count(events.len());
                for event in events {
                    write_event(&mut w, event);
                }
                APPLIED
            }
        };
        write_frame(out, tag, &w.buf)
    }

    /// Reads one message.
    pub fn receive(input: &mut impl std::io::Read) -> Result<Self, ControlError> {
        let (tag, body) = read_frame(input)?;
        Self::decode(tag, &body)
    }

    /// Decodes a message from a frame's tag and body.
    pub fn decode(tag: u8, body: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(body);
        let message = match tag {
            HELLO => {
                let pid = r.u32("the pid")?;
                let forked = r.bool("a forked child")?;
                let seen = r.u64("the last save seen")?;
                Self::Hello {
                    pid,
                    seen: Some(seen).filter(|_| forked),
                }
            }
            APPLIED => {
                let seq = r.u64("the save number")?;
                let n = r.count("the events")?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    events.push(read_event(&mut r)?);
                }
                Self::Applied { seq, events }
            }
            other => return Err(unknown("child", other)),
        };
        r.end()?;
        Ok(message)
    }
}

fn read_prepared(r: &mut Reader<'_>) -> Result<Prepared, ControlError> {
    let some = r.bool("the saved bytes")?;
    let bytes = Some(r.bytes("the saved bytes")?).filter(|_| some);
    let magic = r.bytes("the magic number")?;
    let n = r.count("the compiled code")?;
    let mut compiled = Vec::with_capacity(n);
    for _ in 0..n {
        let key: [u8; 16] = r
            .bytes("a code's key")?
            .try_into()
            .map_err(|_| ControlError::Malformed("a code's key is not 16 bytes".into()))?;
        compiled.push((u128::from_le_bytes(key), r.bytes("a marshalled code")?));
    }
    Ok(Prepared {
        bytes,
        magic,
        compiled,
    })
}

fn unknown(kind: &str, tag: u8) -> ControlError {
    ControlError::Malformed(format!("unknown {kind} message tag {tag}"))
}

fn opt_str(w: &mut Writer, v: Option<&str>) {
    w.bool(v.is_some()).str(v.unwrap_or_default());
}

fn read_opt_str(r: &mut Reader<'_>, what: &str) -> Result<Option<String>, ControlError> {
    let some = r.bool(what)?;
    let text = r.str(what)?;
    Ok(some.then_some(text))
}

fn usize_field(w: &mut Writer, v: usize) {
    w.u64(v as u64);
}

fn read_usize(r: &mut Reader<'_>, what: &str) -> Result<usize, ControlError> {
    usize::try_from(r.u64(what)?).map_err(|_| ControlError::Malformed(format!("{what} too large")))
}

fn write_event(w: &mut Writer, event: &ReloadEvent) {
    match event {
        ReloadEvent::Reloaded { name, note } => {
            w.u8(0).str(name);
            opt_str(w, note.as_deref());
        }
        ReloadEvent::Added { name } => {
            w.u8(1).str(name);
        }
        ReloadEvent::Deleted { name } => {
            w.u8(2).str(name);
        }
        ReloadEvent::Redefined { name, note } => {
            w.u8(3).str(name).str(note);
        }
        ReloadEvent::Executed {
            module,
            line,
            summary,
        } => {
            w.u8(4).str(module);
            usize_field(w, *line);
            w.str(summary);
        }
        ReloadEvent::Skipped {
            module,
            line,
            reason,
        } => {
            w.u8(5).str(module);
            usize_field(w, *line);
            w.str(reason);
        }
        ReloadEvent::Moved { name, line } => {
            w.u8(6).str(name);
            usize_field(w, *line);
        }
        ReloadEvent::CopyUpdated { name, copy } => {
            w.u8(7).str(name).str(copy);
        }
        ReloadEvent::CopyKept { name, copy } => {
            w.u8(8).str(name).str(copy);
        }
        ReloadEvent::Running { name, frames } => {
            w.u8(9).str(name).count(frames.len());
            for frame in frames {
                w.str(frame);
            }
        }
        ReloadEvent::Held { file, what } => {
            w.u8(10).str(file).str(what);
        }
        ReloadEvent::Importing { file } => {
            w.u8(12).str(file);
        }
        ReloadEvent::Error {
            file,
            line,
            message,
        } => {
            w.u8(11).str(file);
            w.bool(line.is_some());
            usize_field(w, line.unwrap_or(0));
            w.str(message);
        }
    }
}

fn read_event(r: &mut Reader<'_>) -> Result<ReloadEvent, ControlError> {
    Ok(match r.u8("an event")? {
        0 => ReloadEvent::Reloaded {
            name: r.str("a name")?,
            note: read_opt_str(r, "a note")?,
        },
        1 => ReloadEvent::Added {
            name: r.str("a name")?,
        },
        2 => ReloadEvent::Deleted {
            name: r.str("a name")?,
        },
        3 => ReloadEvent::Redefined {
            name: r.str("a name")?,
            note: r.str("a note")?,
        },
        4 => ReloadEvent::Executed {
            module: r.str("a module")?,
            line: read_usize(r, "a line")?,
            summary: r.str("a summary")?,
        },
        5 => ReloadEvent::Skipped {
            module: r.str("a module")?,
            line: read_usize(r, "a line")?,
            reason: r.str("a reason")?,
        },
        6 => ReloadEvent::Moved {
            name: r.str("a name")?,
            line: read_usize(r, "a line")?,
        },
        7 => ReloadEvent::CopyUpdated {
            name: r.str("a name")?,
            copy: r.str("a copy")?,
        },
        8 => ReloadEvent::CopyKept {
            name: r.str("a name")?,
            copy: r.str("a copy")?,
        },
        9 => {
            let name = r.str("a name")?;
            let n = r.count("frames")?;
            let mut frames = Vec::with_capacity(n);
            for _ in 0..n {
                frames.push(r.str("a frame")?);
            }
            ReloadEvent::Running { name, frames }
        }
        10 => ReloadEvent::Held {
            file: r.str("a file")?,
            what: r.str("what")?,
        },
        11 => {
            let file = r.str("a file")?;
            let has_line = r.bool("a line")?;
            let line = read_usize(r, "a line")?;
            ReloadEvent::Error {
                file,
                line: has_line.then_some(line),
                message: r.str("a message")?,
            }
        }
        12 => ReloadEvent::Importing {
            file: r.str("a file")?,
        },
        other => {
            return Err(ControlError::Malformed(format!(
                "unknown reload event tag {other}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_event() -> Vec<ReloadEvent> {
        vec![
            ReloadEvent::Reloaded {
                name: "app.f".into(),
                note: Some("rebuilt".into()),
            },
            ReloadEvent::Reloaded {
                name: "app.g".into(),
                note: None,
            },
            ReloadEvent::Added { name: "a".into() },
            ReloadEvent::Deleted { name: "d".into() },
            ReloadEvent::Redefined {
                name: "C".into(),
                note: "n".into(),
            },
            ReloadEvent::Executed {
                module: "m".into(),
                line: 3,
                summary: "X = 1".into(),
            },
            ReloadEvent::Skipped {
                module: "m".into(),
                line: 4,
                reason: "r".into(),
            },
            ReloadEvent::Moved {
                name: "f".into(),
                line: 9,
            },
            ReloadEvent::CopyUpdated {
                name: "a.X".into(),
                copy: "b.X".into(),
            },
            ReloadEvent::CopyKept {
                name: "a.X".into(),
                copy: "c.X".into(),
            },
            ReloadEvent::Running {
                name: "main".into(),
                frames: vec!["thread T at a.py:1".into()],
            },
            ReloadEvent::Held {
                file: "a.py".into(),
                what: "is empty".into(),
            },
            ReloadEvent::Importing {
                file: "a.py".into(),
            },
            ReloadEvent::Error {
                file: "a.py".into(),
                line: Some(2),
                message: "SyntaxError".into(),
            },
            ReloadEvent::Error {
                file: "a.py".into(),
                line: None,
                message: "boom".into(),
            },
        ]
    }

    #[test]
    fn messages_round_trip() {
        let child = [
            ChildMessage::Hello {
                pid: 4242,
                seen: None,
            },
            ChildMessage::Hello {
                pid: 4242,
                seen: Some(3),
            },
            ChildMessage::Applied {
                seq: 7,
                events: every_event(),
            },
        ];
        for message in child {
            let mut buf = Vec::new();
            message.send(&mut buf).unwrap();
            assert_eq!(ChildMessage::receive(&mut buf.as_slice()).unwrap(), message);
        }
        let prepared = Prepared {
            bytes: Some(b"def f():\n    return 1\n".to_vec()),
            magic: vec![0xf3, 0x0d, 0x0d, 0x0a],
            compiled: vec![(u128::MAX - 7, vec![0xe3, 1, 2]), (1 << 70, Vec::new())],
        };
        let unread = Prepared {
            bytes: None,
            ..prepared.clone()
        };
        for prepared in [
            None,
            Some(Prepared::default()),
            Some(prepared),
            Some(unread),
        ] {
            let parent = ParentMessage::Reload {
                seq: 3,
                path: "/p/app.py".into(),
                skip_main: true,
                prepared,
            };
            let mut buf = Vec::new();
            parent.send(&mut buf).unwrap();
            assert_eq!(ParentMessage::receive(&mut buf.as_slice()).unwrap(), parent);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        ChildMessage::Applied {
            seq: 1,
            events: every_event(),
        }
        .send(&mut buf)
        .unwrap();
        for cut in 0..buf.len() {
            let mut bytes = buf.clone();
            bytes[cut] ^= 0xA5;
            let _ = ChildMessage::receive(&mut bytes.as_slice());
            let _ = ChildMessage::receive(&mut &buf[..cut]);
            let _ = ParentMessage::receive(&mut bytes.as_slice());
        }
        assert!(ChildMessage::receive(&mut &b""[..]).is_err());
        let mut buf = Vec::new();
        ParentMessage::Reload {
            seq: 2,
            path: "/p/app.py".into(),
            skip_main: false,
            prepared: Some(Prepared {
                bytes: Some(b"x = 1\n".to_vec()),
                magic: vec![1, 2],
                compiled: vec![(5, vec![9; 40])],
            }),
        }
        .send(&mut buf)
        .unwrap();
        for cut in 0..buf.len() {
            let mut bytes = buf.clone();
            bytes[cut] ^= 0xA5;
            let _ = ParentMessage::receive(&mut bytes.as_slice());
            assert!(ParentMessage::receive(&mut &buf[..cut]).is_err());
        }
    }
}
