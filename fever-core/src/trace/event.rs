//! [`Event`]: what the tracer records for each monitoring event of the project's code, and
//! [`EventRef`], an event as the reader hands it out (its snapshot borrowed from the trace). How
//! an event is stored is the record stream's business (`stream.rs`).
//!
//! Every event carries the thread it happened on, the code id it happened in (see
//! [`CodeInfo`](super::CodeInfo)) and a monotonic timestamp in nanoseconds (relate it to wall-clock
//! time with [`TraceHeader::started_monotonic_ns`](super::TraceHeader::started_monotonic_ns)).
//! Snapshot payloads (arguments, return values, exceptions) are opaque bytes here: the value
//! model that fills them lives elsewhere, and `None` means no snapshot was taken.
//!
//! A consistent call tree per thread is `Call` ... (`Yield` `Resume`)* ... `Return` or `Unwind`,
//! with any number of `Raise` inside; the trace layer stores events and does not check nesting.

/// Flag on a `Return` or `Unwind`: an argument's structural hash changed during the call, so
/// the call's argument snapshot is the only record of what it was called with.
pub const MUTATED_ARGS: u32 = 1;

/// One monitoring event (the `sys.monitoring` event it comes from is named on each variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// `PY_START`: a function started (a new frame, not a resumed generator).
    Call {
        /// Code id.
        code: u32,
        /// Thread id (`threading.get_ident()`).
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
        /// Snapshot of the arguments.
        args: Option<Vec<u8>>,
    },
    /// `PY_RETURN`: the function returned.
    Return {
        /// Code id.
        code: u32,
        /// [`MUTATED_ARGS`] and future per-call marks.
        flags: u32,
        /// Thread id.
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
        /// Snapshot of the return value.
        value: Option<Vec<u8>>,
    },
    /// `PY_YIELD`: a generator or coroutine suspended.
    Yield {
        /// Code id.
        code: u32,
        /// Thread id.
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
        /// Snapshot of the yielded value.
        value: Option<Vec<u8>>,
    },
    /// `PY_RESUME`: a generator or coroutine resumed.
    Resume {
        /// Code id.
        code: u32,
        /// Thread id.
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
    },
    /// `RAISE`: an exception was raised in the function.
    Raise {
        /// Code id.
        code: u32,
        /// Thread id.
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
        /// Snapshot of the exception.
        exception: Option<Vec<u8>>,
    },
    /// `PY_UNWIND`: the function exited by an exception.
    Unwind {
        /// Code id.
        code: u32,
        /// [`MUTATED_ARGS`] and future per-call marks.
        flags: u32,
        /// Thread id.
        thread: u64,
        /// Monotonic time in nanoseconds.
        t_ns: u64,
    },
}

/// The variant of an [`Event`] without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::Call`].
    Call,
    /// [`Event::Return`].
    Return,
    /// [`Event::Yield`].
    Yield,
    /// [`Event::Resume`].
    Resume,
    /// [`Event::Raise`].
    Raise,
    /// [`Event::Unwind`].
    Unwind,
}

impl Event {
    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Call { .. } => EventKind::Call,
            Self::Return { .. } => EventKind::Return,
            Self::Yield { .. } => EventKind::Yield,
            Self::Resume { .. } => EventKind::Resume,
            Self::Raise { .. } => EventKind::Raise,
            Self::Unwind { .. } => EventKind::Unwind,
        }
    }

    /// The thread the event happened on.
    pub fn thread(&self) -> u64 {
        match self {
            Self::Call { thread, .. }
            | Self::Return { thread, .. }
            | Self::Yield { thread, .. }
            | Self::Resume { thread, .. }
            | Self::Raise { thread, .. }
            | Self::Unwind { thread, .. } => *thread,
        }
    }

    /// The code id the event happened in.
    pub fn code(&self) -> u32 {
        match self {
            Self::Call { code, .. }
            | Self::Return { code, .. }
            | Self::Yield { code, .. }
            | Self::Resume { code, .. }
            | Self::Raise { code, .. }
            | Self::Unwind { code, .. } => *code,
        }
    }

    /// Monotonic time of the event in nanoseconds.
    pub fn t_ns(&self) -> u64 {
        match self {
            Self::Call { t_ns, .. }
            | Self::Return { t_ns, .. }
            | Self::Yield { t_ns, .. }
            | Self::Resume { t_ns, .. }
            | Self::Raise { t_ns, .. }
            | Self::Unwind { t_ns, .. } => *t_ns,
        }
    }

    /// The call's flags ([`MUTATED_ARGS`]) on a `Return` or `Unwind`, 0 on other events.
    pub fn flags(&self) -> u32 {
        match self {
            Self::Return { flags, .. } | Self::Unwind { flags, .. } => *flags,
            _ => 0,
        }
    }

    /// The snapshot the event carries (arguments, value or exception), if any.
    pub fn snapshot(&self) -> Option<&[u8]> {
        match self {
            Self::Call { args: s, .. }
            | Self::Return { value: s, .. }
            | Self::Yield { value: s, .. }
            | Self::Raise { exception: s, .. } => s.as_deref(),
            Self::Resume { .. } | Self::Unwind { .. } => None,
        }
    }
}

/// An event read from a trace: the fields of an [`Event`], with its snapshot borrowed from the
/// reader (no copy). Convert with `Event::from` to own one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventRef<'a> {
    pub(crate) kind: EventKind,
    pub(crate) code: u32,
    pub(crate) flags: u32,
    pub(crate) thread: u64,
    pub(crate) t_ns: u64,
    pub(crate) snapshot: Option<&'a [u8]>,
}

impl<'a> EventRef<'a> {
    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The thread the event happened on.
    pub fn thread(&self) -> u64 {
        self.thread
    }

    /// The code id the event happened in.
    pub fn code(&self) -> u32 {
        self.code
    }

    /// Monotonic time of the event in nanoseconds.
    pub fn t_ns(&self) -> u64 {
        self.t_ns
    }

    /// The call's flags ([`MUTATED_ARGS`]) on a `Return` or `Unwind`, 0 on other events.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The snapshot the event carries (arguments, value or exception), if any; borrowed from
    /// the trace, no copy.
    pub fn snapshot(&self) -> Option<&'a [u8]> {
        self.snapshot
    }
}

impl From<EventRef<'_>> for Event {
    fn from(e: EventRef<'_>) -> Self {
        Self::from_parts(
            e.kind,
            e.code,
            e.thread,
            e.t_ns,
            e.flags,
            e.snapshot.map(<[u8]>::to_vec),
        )
    }
}

impl Event {
    /// The event of `kind` with these fields; `flags` is dropped by kinds without flags and
    /// `snapshot` by kinds without a snapshot.
    pub fn from_parts(
        kind: EventKind,
        code: u32,
        thread: u64,
        t_ns: u64,
        flags: u32,
        snapshot: Option<Vec<u8>>,
    ) -> Self {
        match kind {
            EventKind::Call => Self::Call {
                thread,
                code,
                t_ns,
                args: snapshot,
            },
            EventKind::Return => Self::Return {
                thread,
                code,
                flags,
                t_ns,
                value: snapshot,
            },
            EventKind::Yield => Self::Yield {
                thread,
                code,
                t_ns,
                value: snapshot,
            },
            EventKind::Resume => Self::Resume { thread, code, t_ns },
            EventKind::Raise => Self::Raise {
                thread,
                code,
                t_ns,
                exception: snapshot,
            },
            EventKind::Unwind => Self::Unwind {
                thread,
                code,
                t_ns,
                flags,
            },
        }
    }
}

impl<'a> From<&'a Event> for EventRef<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            kind: e.kind(),
            code: e.code(),
            flags: e.flags(),
            thread: e.thread(),
            t_ns: e.t_ns(),
            snapshot: e.snapshot(),
        }
    }
}

impl<'a> EventRef<'a> {
    /// The event of `kind` with these fields, borrowing `snapshot`; `flags` is dropped by kinds
    /// without flags and `snapshot` by kinds without a snapshot, as in [`Event::from_parts`].
    pub fn from_parts(
        kind: EventKind,
        code: u32,
        thread: u64,
        t_ns: u64,
        flags: u32,
        snapshot: Option<&'a [u8]>,
    ) -> Self {
        let flags = if matches!(kind, EventKind::Return | EventKind::Unwind) {
            flags
        } else {
            0
        };
        let snapshot = snapshot.filter(|_| !matches!(kind, EventKind::Resume | EventKind::Unwind));
        Self {
            kind,
            code,
            flags,
            thread,
            t_ns,
            snapshot,
        }
    }
}
