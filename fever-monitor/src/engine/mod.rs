//! The monitoring engine: fever's one set of sys.monitoring callbacks, and the consumers that
//! subscribe to them. Replay's checkpoints and the attach profiler extend fever here: each is one
//! more [`Consumer`] in one more [`Slot`].
//!
//! - `callbacks.rs`: the C-level callbacks `CPython` calls (`PY_START`, `PY_RESUME`, `PY_THROW`,
//!   `PY_RETURN`, `PY_YIELD`, `RAISE`, `PY_UNWIND`): each finds the code's entry and the calling
//!   thread once, then hands the event to every armed consumer that subscribed to it.
//!
//! Dispatch is static: arming a consumer of type `C` stores, per event, a plain function
//! pointer to `C::on` with the event a constant (no `dyn` call, the consumer's `match` on the
//! event folded away), and the list of slots armed for each event is kept ready ([`arm`],
//! [`disarm`]). While one consumer is armed alone (the usual case: `record`, or `watch`), the
//! callbacks registered with `sys.monitoring` are that consumer type's own, with its handlers
//! inlined; with more than one, the shared callbacks walk the list (`benches/RESULTS.md`, "The
//! monitoring engine"). The engine never names a consumer: types reach it as generics.
//! A solo callback's first test is its gate in [`Hot`]: open (its own callable's address)
//! only while its consumer is armed alone with its callbacks registered and nothing is busy;
//! then the code's row is read straight from `co_extra` and the consumer's entry straight
//! from the row, with no look at the engine, the code table or the armed list. Anything else
//! (a closed gate, a code seen for the first time, library code) takes the full path.
//! - `codes.rs`: the per-code decision, kept in the code object's `co_extra` slot: library code
//!   (it gets `DISABLE` from the local events, for good), or the address of a project code's row,
//!   which holds each consumer's own entry for it (one look-up from code to a consumer's entry).
//! - `extra_slot.rs`: reading and writing that `co_extra` slot.
//! - `clock.rs`: raw ticks in callbacks, nanoseconds elsewhere.
//! - `parked.rs`: references a consumer lets go of in a callback, released at its end.
//!
//! A consumer is armed ([`arm`]) and disarmed ([`disarm`]) while the program runs; the events
//! enabled are those the armed consumers subscribed to, so disarming the last one leaves the
//! program at dormant speed (no events, no `restart_events()`: the code that got `DISABLE` is
//! library code, which no consumer wants).
//!
//! Events are enabled globally (`set_events`), library code getting `DISABLE`. The alternative,
//! `PY_START` globally and the other events set on each project code (`set_local_events`, built
//! with the `local-events` feature for `benches/engine.py` only), measured no faster on the
//! call-heavy workloads nor on the exception-heavy one: before 3.15, `RAISE`, `PY_UNWIND` and
//! `PY_THROW` cannot be local events, so library exceptions reach the callbacks either way; and
//! it needs a Python call per project code, and a walk over them all to disarm
//! (`benches/RESULTS.md`, "The monitoring engine").
//!
//! Everything here is touched with the GIL held (callbacks, arming, the consumers' own
//! functions), which is what makes the `static`s sound. While a consumer runs Python code from
//! inside a callback it sets [`set_busy`] (which also closes the gates): callbacks re-entered
//! from that code pass their events by. Another thread that code let run (`CPython` switches
//! threads between any two bytecodes) gives the GIL back until the section ends
//! ([`wait_out_busy`]): passing its events by lost whole stretches of its calls.

mod callbacks;
pub mod clock;
pub mod codes;
pub(crate) mod extra_slot;
mod parked;
#[cfg(test)]
mod tests;
mod tool;

use std::any::{Any, TypeId};
use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use fever_core::notice::Alteration;
use fever_core::Project;

use extra_slot::ExtraSlot;
pub use parked::{park, release as release_parked};

/// Where a consumer plugs in (one consumer per slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `fever record`'s tracer.
    Tracer = 0,
    /// `fever watch`'s call cache bookkeeping.
    Cache = 1,
    /// `fever replay`'s start and end checkpoints.
    Checkpoints = 2,
    /// `fever attach`'s profiler.
    Profiler = 3,
}

/// How many slots there are.
pub const SLOTS: usize = 4;

/// The events a consumer can subscribe to (bits of [`Consumer::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start = 0,
    Resume = 1,
    Throw = 2,
    Return = 3,
    Yield = 4,
    Raise = 5,
    Unwind = 6,
}

impl Event {
    /// This event's bit in [`Consumer::events`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Every event.
    pub const ALL: u8 = 0x7f;

    /// Every start and end of a call or of a generator's step (all but `RAISE`): what a
    /// per-thread stack of calls follows.
    pub const CALLS: u8 = Self::ALL & !Self::Raise.bit();

    /// Its `sys.monitoring.events` name.
    const fn name(self) -> &'static str {
        match self {
            Self::Start => "PY_START",
            Self::Resume => "PY_RESUME",
            Self::Throw => "PY_THROW",
            Self::Return => "PY_RETURN",
            Self::Yield => "PY_YIELD",
            Self::Raise => "RAISE",
            Self::Unwind => "PY_UNWIND",
        }
    }

    /// Whether `DISABLE` can turn it off at one instruction (`PY_UNWIND` became local only in
    /// 3.15, so it is not counted).
    pub const fn local(self) -> bool {
        matches!(
            self,
            Self::Start | Self::Resume | Self::Return | Self::Yield
        )
    }

    const EVERY: [Self; 7] = [
        Self::Start,
        Self::Resume,
        Self::Throw,
        Self::Return,
        Self::Yield,
        Self::Raise,
        Self::Unwind,
    ];
}

/// Where an event happened, as a consumer sees it.
pub struct At {
    /// The calling thread's index in the engine (dense: consumers keep per-thread state in a
    /// `Vec` indexed by it).
    pub thread: usize,
    /// The calling thread's id (`threading.get_ident()`).
    pub ident: u64,
    /// The consumer's own entry for the code (what its [`Consumer::adopt`] returned).
    pub entry: u32,
    /// The code object (borrowed).
    pub code: *mut PyObject,
    /// The callback's arguments: `code, offset[, value]`.
    pub args: *const *mut PyObject,
    pub nargs: Py_ssize_t,
}

impl At {
    /// The calling thread's element of `per_thread` (indexed by [`At::thread`]), created on
    /// first use.
    #[inline]
    pub fn of_thread<'v, T: Default>(&self, per_thread: &'v mut Vec<T>) -> &'v mut T {
        if per_thread.len() <= self.thread {
            per_thread.resize_with(self.thread + 1, T::default);
        }
        &mut per_thread[self.thread]
    }

    /// The third argument (the returned or yielded value, the exception), or NULL.
    pub fn value(&self) -> *mut PyObject {
        if self.nargs >= 3 {
            // SAFETY: CPython passes `nargs` valid arguments.
            unsafe { *self.args.add(2) }
        } else {
            std::ptr::null_mut()
        }
    }

    /// The second argument, the instruction offset, or -1.
    pub fn offset(&self) -> i64 {
        // SAFETY: CPython passes `nargs` (at least 2: checked on entry) valid arguments, the
        // second an int; an overflow error (never expected) must not stay set.
        unsafe {
            let offset = ffi::PyLong_AsLongLong(*self.args.add(1));
            if offset < 0 {
                ffi::PyErr_Clear();
                return -1;
            }
            offset
        }
    }
}

/// A user of the engine's events. Its methods run inside the callbacks, with the GIL held; they
/// must not raise, panic or leave an exception set, and must wrap any Python code they run in
/// [`set_busy`]; references whose release may run the program's code go to [`park`].
///
/// # Safety
/// Implementations must uphold the rules above: the engine holds a mutable borrow of the
/// consumer while it runs, so a method that runs Python code without [`set_busy`] could be
/// re-entered.
pub unsafe trait Consumer: AsAny {
    /// The events it wants ([`Event::bit`]s).
    fn events(&self) -> u8;

    /// A project code it sees for the first time: its own entry for it, or `None` when it does
    /// not care about this code (it then never hears of it again while armed).
    ///
    /// # Safety
    /// GIL held, `code` a live code object, the current frame the code's, no exception set.
    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32>;

    /// An event of one of its codes; says whether it wants this event at this instruction
    /// again.
    ///
    /// # Safety
    /// GIL held; `at` describes the callback running now.
    unsafe fn on(&mut self, event: Event, at: &At) -> Heard;
}

/// What a consumer says of the event it just heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Heard {
    /// Keep sending it.
    Again,
    /// Not this event at this instruction again while the consumer is armed: when every
    /// consumer that heard it says so and the event is a local one ([`Event::local`]), the
    /// engine returns `DISABLE` for it; arming a consumer later re-enables every instruction
    /// (`restart_events()`).
    Enough,
}

/// A consumer as `Any`, to reach its own state ([`with`]) and to hand it back when disarmed
/// ([`disarm`]); every consumer has it.
pub trait AsAny: Any {
    fn as_any(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> AsAny for T {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A consumer's [`Consumer::on`] for one event, with the event a constant (see [`handlers`]):
/// a callback calls it through a plain function pointer, and the consumer's `match` on the
/// event folds away.
type Handler = unsafe fn(NonNull<()>, &At) -> Heard;

/// `C`'s handler for event number `E`. Safety: `consumer` is a live, unborrowed `C`; GIL held;
/// `at` is the running callback's.
unsafe fn handle<C: Consumer, const E: u8>(consumer: NonNull<()>, at: &At) -> Heard {
    // SAFETY: guaranteed by the caller.
    unsafe { (*consumer.cast::<C>().as_ptr()).on(Event::EVERY[E as usize], at) }
}

/// `C`'s handlers, in [`Event`] order.
fn handlers<C: Consumer>() -> [Handler; 7] {
    [
        handle::<C, 0>,
        handle::<C, 1>,
        handle::<C, 2>,
        handle::<C, 3>,
        handle::<C, 4>,
        handle::<C, 5>,
        handle::<C, 6>,
    ]
}

/// An armed consumer (`Box::into_raw`; back into a `Box` when disarmed), with its handlers.
struct Held {
    consumer: NonNull<dyn Consumer>,
    kind: TypeId,
    handlers: [Handler; 7],
    /// Its own callbacks, for when it is the only armed consumer.
    solo: [ffi::vectorcallfunc; 7],
}

/// The slots, by index.
const SLOT_OF: [Slot; SLOTS] = [Slot::Tracer, Slot::Cache, Slot::Checkpoints, Slot::Profiler];

/// A slot that hears of an event.
#[derive(Clone, Copy)]
struct Armed {
    slot: Slot,
    consumer: NonNull<()>,
    handler: Handler,
    /// The consumer's type.
    kind: TypeId,
}

/// Events `set_local_events` refuses before 3.15.
#[cfg(feature = "local-events")]
const GLOBAL_ONLY: u8 = Event::Raise.bit() | Event::Unwind.bit() | Event::Throw.bit();

/// The engine's state.
struct Engine {
    tool_id: u8,
    /// Bit of each [`Event`] in `sys.monitoring.events` (they differ between versions).
    bits: [u32; 7],
    /// Each slot's consumer.
    consumers: [Option<Held>; SLOTS],
    /// Events each slot subscribed to (0 when empty or disarmed).
    wants: [u8; SLOTS],
    /// For each [`Event`], the slots that hear of it, in slot order, with their handlers
    /// (rebuilt by [`Engine::rearm`] whenever `wants` changes, never reallocated).
    armed: [Vec<Armed>; 7],
    /// The shared callbacks ([`callbacks::SHARED`]).
    shared: [Py<PyAny>; 7],
    /// Each consumer type's own callbacks, made on first use.
    solos: Vec<(TypeId, [Py<PyAny>; 7])>,
    /// Whose callbacks are registered: one consumer type's, or the shared ones (`None`).
    registered: Option<TypeId>,
    /// Thread ids, by engine thread index.
    threads: Vec<u64>,
    /// The event mask last set on the tool.
    mask: u32,
    /// What the program did to the tool, first noticed when the events were set ([`tool`]).
    altered: Option<Alteration>,
}

/// The engine, reachable from callbacks; `None` before the first [`arm`].
struct GilCell<T>(UnsafeCell<T>);

// SAFETY: the cell is only accessed with the GIL held (see the module docs), which serializes
// every access; no reference escapes while Python code can run, thanks to `Hot::busy`.
unsafe impl<T> Sync for GilCell<T> {}

static ENGINE: GilCell<Option<Engine>> = GilCell(UnsafeCell::new(None));

/// What every callback reads first, in one place: whether a solo callback may take its short
/// path (one load and one comparison), and what that path needs without touching the engine or
/// the code table.
struct Hot {
    /// Set while a consumer runs Python code from a callback (see [`set_busy`]).
    busy: Cell<bool>,
    /// The thread that set `busy`.
    busy_ident: Cell<u64>,
    /// How many busy sections began; `gave_up`: the one another thread stopped waiting for.
    busy_count: Cell<u64>,
    gave_up: Cell<u64>,
    /// References are parked, to release at the callback's end (see `parked.rs`).
    parked: Cell<bool>,
    /// For each [`Event`], the callable of the consumer armed alone, while its callbacks are
    /// the registered ones and it is not busy: a solo callback called as that object may take
    /// its short path (it is then the open consumer's type's own). Null otherwise, when every
    /// callback takes the full path.
    gates: [Cell<*mut PyObject>; 7],
    /// `gates` when not busy ([`Engine::set_events`] sets them).
    open: [Cell<*mut PyObject>; 7],
    /// The consumer armed alone (while `open` is set).
    solo: Cell<*mut ()>,
    /// Its slot.
    slot: Cell<Slot>,
    /// The code table's `co_extra` slot, read directly (never through the C call).
    extra: Cell<ExtraSlot>,
    /// Index of the thread that ran the last callback.
    last: Cell<usize>,
    /// Its id (0, no thread's, before the first callback).
    last_ident: Cell<u64>,
    /// Whether a project code's instruction got `DISABLE` since the last [`arm`] ([`Heard`]).
    disabled: Cell<bool>,
}

impl Hot {
    /// Sets the gates to `open` (`true`) or closes them.
    fn set_gates(&self, open: bool) {
        for (gate, callable) in self.gates.iter().zip(&self.open) {
            gate.set(if open {
                callable.get()
            } else {
                std::ptr::null_mut()
            });
        }
    }
}

/// A closed gate.
#[allow(clippy::declare_interior_mutable_const)] // only to build `HOT`'s arrays
const CLOSED: Cell<*mut PyObject> = Cell::new(std::ptr::null_mut());

static HOT: GilCell<Hot> = GilCell(UnsafeCell::new(Hot {
    busy: Cell::new(false),
    busy_ident: Cell::new(0),
    busy_count: Cell::new(0),
    gave_up: Cell::new(0),
    parked: Cell::new(false),
    gates: [CLOSED; 7],
    open: [CLOSED; 7],
    solo: Cell::new(std::ptr::null_mut()),
    slot: Cell::new(Slot::Tracer),
    extra: Cell::new(ExtraSlot::UNSET),
    last: Cell::new(0),
    last_ident: Cell::new(0),
    disabled: Cell::new(false),
}));

/// The engine's hot state. Touch it with the GIL held only (its cells are never borrowed).
#[inline(always)]
#[allow(clippy::inline_always)] // every callback starts with it
fn hot() -> &'static Hot {
    // SAFETY: only shared references are made; every access is a `Cell` get or set, with the
    // GIL held (callbacks, and functions taking `Python` or called from them).
    unsafe { &*HOT.0.get() }
}

/// Is a consumer running Python code from a callback?
#[inline(always)]
#[allow(clippy::inline_always)] // every callback starts with it
pub(crate) fn busy() -> bool {
    hot().busy.get()
}

/// Marks the start (`true`) and end (`false`) of Python code a consumer runs from a callback:
/// the callbacks it causes meanwhile are passed by. Call with the GIL held.
pub fn set_busy(on: bool) {
    let hot = hot();
    hot.busy.set(on);
    hot.busy_ident.set(if on { thread_ident() } else { 0 });
    if on {
        hot.busy_count.set(hot.busy_count.get() + 1);
    }
    hot.set_gates(!on);
}

/// Longest a thread's event waits for another thread's busy section to end while the thread
/// running that section gets no CPU time; past it (that section waits for this thread: a lock
/// it holds; or blocks in the program's code it reached; references dropped in a callback are
/// released outside any section, `parked.rs`) the event is passed by, and so are the events
/// that come during the same section. A snapshot's Python code takes microseconds once it has
/// the GIL, but each switch of the GIL costs a trip through the OS scheduler, which a loaded
/// machine makes long: the wait is counted from the last time the section's thread was seen
/// running (its CPU clock moved), so a section that runs, however slowly, is waited out, and
/// one that blocks costs the other threads 20 ms.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Longest a thread's event waits for another thread's busy section at all (a section that
/// keeps running Python code this long is given up as one that blocks).
const BUSY_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Called by a callback that found [`busy`] set: `true` once the section, another thread's
/// (`CPython` switched threads inside the Python code it runs: a snapshot reaching
/// `copyreg._slotnames`, as any `threading.RLock` argument's does), has ended, so this thread's
/// event can be handled. This thread gives the GIL back meanwhile, so that thread can finish.
/// `false` for this thread's own section (the event is its code's), or when the section does
/// not end in time ([`BUSY_WAIT`], [`BUSY_WAIT_MAX`]).
#[cold]
pub(crate) fn wait_out_busy() -> bool {
    let hot = hot();
    if hot.busy_ident.get() == thread_ident() || hot.gave_up.get() == hot.busy_count.get() {
        return false;
    }
    let started = std::time::Instant::now();
    let mut running = Running::of(hot.busy_ident.get(), started);
    loop {
        // SAFETY: called from a callback with the GIL held and no consumer borrowed; the GIL is
        // taken back before anything else is touched.
        let state = unsafe { pyo3::ffi::PyEval_SaveThread() };
        std::thread::yield_now();
        // SAFETY: `state` is this thread's, from the call above.
        unsafe { pyo3::ffi::PyEval_RestoreThread(state) };
        if !busy() {
            return true;
        }
        let now = std::time::Instant::now();
        if running.ident == hot.busy_ident.get() {
            running.look(now);
        } else {
            // Another section (another thread's) began meanwhile: its thread is watched now.
            running = Running::of(hot.busy_ident.get(), now);
        }
        if now - running.seen >= BUSY_WAIT || now - started >= BUSY_WAIT_MAX {
            hot.gave_up.set(hot.busy_count.get());
            return false;
        }
    }
}

/// The thread running a busy section, as [`wait_out_busy`] watches it: when it was last seen
/// running (its CPU time moved).
struct Running {
    ident: u64,
    /// Its CPU clock (`None` where it cannot be read: then the wait counts from its start).
    clock: Option<libc::clockid_t>,
    cpu: Option<std::time::Duration>,
    seen: std::time::Instant,
}

impl Running {
    /// The thread `ident` (a `pthread_t`: [`thread_ident`]), seen `now`. Called with the GIL
    /// held, so the thread, inside its section, is alive.
    fn of(ident: u64, now: std::time::Instant) -> Running {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `ident` is a live thread's `pthread_t` (it holds the busy section, which it
        // cannot leave while this thread holds the GIL); `clock` is a valid out pointer.
        let got = unsafe { libc::pthread_getcpuclockid(ident as libc::pthread_t, &raw mut clock) };
        let clock = (got == 0).then_some(clock);
        Running {
            ident,
            clock,
            cpu: clock.and_then(cpu_time),
            seen: now,
        }
    }

    /// Notes `now` as seen running if its CPU time moved since the last look.
    fn look(&mut self, now: std::time::Instant) {
        let cpu = self.clock.and_then(cpu_time);
        if cpu.is_some() && cpu != self.cpu {
            self.cpu = cpu;
            self.seen = now;
        }
    }
}

/// The CPU time of the thread whose CPU clock is `clock` (`None` once it ended).
fn cpu_time(clock: libc::clockid_t) -> Option<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; a clock id of an ended thread only makes the call fail.
    let got = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    (got == 0).then(|| {
        std::time::Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

/// The calling thread's engine index and id: the last callback's, or `miss`'s for another.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback runs it
fn current_thread(miss: impl FnOnce(u64) -> (usize, u64)) -> (usize, u64) {
    let ident = thread_ident();
    let hot = hot();
    if ident == hot.last_ident.get() {
        return (hot.last.get(), ident);
    }
    miss(ident)
}

/// [`current_thread`], for a callback that holds no reference to the engine.
/// Safety: GIL held, no reference to the engine alive.
#[inline(always)]
#[allow(clippy::inline_always)] // every solo callback runs it
unsafe fn hot_thread() -> (usize, u64) {
    // SAFETY: guaranteed by the caller.
    current_thread(|ident| unsafe { other_thread(ident) })
}

/// [`hot_thread`] when the thread is not the last callback's. Safety: as [`hot_thread`].
#[cold]
unsafe fn other_thread(ident: u64) -> (usize, u64) {
    // SAFETY: guaranteed by the caller.
    match unsafe { engine() } {
        Some(e) => e.other_thread(ident),
        None => (0, ident),
    }
}

/// The engine. Safety: GIL held, not busy, no other reference from this function alive.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback takes it
unsafe fn engine() -> Option<&'static mut Engine> {
    // SAFETY: guaranteed by the caller.
    unsafe { (*ENGINE.0.get()).as_mut() }
}

/// The calling thread's `threading.get_ident()`: `pthread_self()` (`CPython`'s
/// `PyThread_get_thread_ident`), reached in one instruction instead of two calls.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback runs it
fn thread_ident() -> u64 {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    {
        let ident: u64;
        // SAFETY: on x86-64, glibc's thread control block (at %fs) holds the thread's own
        // `pthread_t` at offset 0x10 (`tcbhead_t.self`), which is what `pthread_self()` returns
        // (checked by `tests::thread_ident_is_pthread_self`).
        unsafe {
            std::arch::asm!(
                "mov {}, qword ptr fs:[0x10]",
                out(reg) ident,
                options(nostack, readonly, preserves_flags, pure)
            );
        }
        ident
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
    {
        // SAFETY: no preconditions.
        unsafe { libc::pthread_self() as u64 }
    }
}

impl Engine {
    /// Index of the calling thread.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every callback runs it
    fn thread(&mut self) -> (usize, u64) {
        current_thread(|ident| self.other_thread(ident))
    }

    /// [`Engine::thread`] when the thread is not the last callback's.
    #[cold]
    fn other_thread(&mut self, ident: u64) -> (usize, u64) {
        let index = self
            .threads
            .iter()
            .position(|&t| t == ident)
            .unwrap_or_else(|| {
                self.threads.push(ident);
                self.threads.len() - 1
            });
        let hot = hot();
        hot.last.set(index);
        hot.last_ident.set(ident);
        (index, ident)
    }

    /// Rebuilds [`Engine::armed`] from `wants` and `handlers`.
    fn rearm(&mut self) {
        for event in Event::EVERY {
            let armed = &mut self.armed[event as usize];
            armed.clear();
            for (i, slot) in SLOT_OF.into_iter().enumerate() {
                if let (true, Some(held)) = (self.wants[i] & event.bit() != 0, &self.consumers[i]) {
                    armed.push(Armed {
                        slot,
                        consumer: held.consumer.cast::<()>(),
                        handler: held.handlers[event as usize],
                        kind: held.kind,
                    });
                }
            }
        }
    }

    /// The `sys.monitoring` event mask of `events` ([`Event::bit`]s).
    fn mask_of(&self, events: u8) -> u32 {
        Event::EVERY
            .iter()
            .filter(|e| events & e.bit() != 0)
            .map(|&e| self.bits[e as usize])
            .fold(0, |mask, bit| mask | bit)
    }

    /// The events the armed consumers need.
    fn wanted(&self) -> u8 {
        self.wants.iter().fold(0u8, |all, w| all | w)
    }

    /// The global `sys.monitoring` event mask.
    #[cfg(not(feature = "local-events"))]
    fn mask(&self) -> u32 {
        self.mask_of(self.wanted())
    }

    /// The global `sys.monitoring` event mask: `PY_START`, and the events no code object can
    /// have locally before 3.15 (`RAISE`, `PY_UNWIND`, `PY_THROW`: `set_local_events` refuses
    /// them); the rest is set on each project code at its first call ([`Engine::arm_code`]).
    #[cfg(feature = "local-events")]
    fn mask(&self) -> u32 {
        let wanted = self.wanted();
        if wanted == 0 {
            return 0;
        }
        self.mask_of(Event::Start.bit() | (wanted & GLOBAL_ONLY))
    }

    /// Enables the wanted local events on project code `code` (whose row is `row`), unless
    /// done with the same events already. Runs Python code (busy).
    #[cfg(feature = "local-events")]
    #[cold]
    fn arm_code(&mut self, row: &mut codes::Row, code: *mut PyObject) {
        let mask = self.mask_of(self.wanted() & !(Event::Start.bit() | GLOBAL_ONLY));
        if row.local == mask {
            return;
        }
        row.local = mask;
        set_busy(true);
        // SAFETY: GIL held (a callback); `code` is live.
        let py = unsafe { Python::assume_attached() };
        // SAFETY: as above; a borrowed reference to the live code object.
        let code = unsafe { Bound::from_borrowed_ptr(py, code) };
        let done = py.import("sys").and_then(|sys| {
            sys.getattr("monitoring")?
                .call_method1("set_local_events", (self.tool_id, code, mask))
        });
        drop(done);
        set_busy(false);
    }

    /// Registers the callbacks the armed consumers need: the only one's own callbacks
    /// (its handlers inlined), or the shared ones that hear of an event for each consumer.
    fn set_callbacks(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut armed = self
            .wants
            .iter()
            .zip(&self.consumers)
            .filter_map(|(&w, held)| held.as_ref().filter(|_| w != 0));
        let only = match (armed.next(), armed.next()) {
            (Some(held), None) => Some((held.kind, held.solo)),
            _ => None,
        };
        let kind = only.map(|(kind, _)| kind);
        if kind == self.registered {
            return Ok(());
        }
        let callables = match only {
            None => &self.shared,
            Some((kind, solo)) => {
                let known = self.solos.iter().position(|(k, _)| *k == kind);
                let i = if let Some(i) = known {
                    i
                } else {
                    self.solos.push((kind, callbacks::callables(py, solo)?));
                    self.solos.len() - 1
                };
                &self.solos[i].1
            }
        };
        callbacks::install(py, self.tool_id, &self.bits, callables)?;
        self.registered = kind;
        Ok(())
    }

    /// Enables the events the armed consumers want, with their callbacks; opens the solo
    /// callbacks' short path ([`Hot::gates`]) once both are done, for the consumer armed alone.
    fn set_events(&mut self, py: Python<'_>) -> PyResult<()> {
        let hot = hot();
        for callable in &hot.open {
            callable.set(std::ptr::null_mut());
        }
        hot.set_gates(false);
        let monitoring = py.import("sys")?.getattr("monitoring")?;
        let registered = match self.registered {
            None => &self.shared,
            Some(kind) => self
                .solos
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(&self.shared, |(_, callables)| callables),
        };
        let standing = tool::check(
            &monitoring,
            self.tool_id,
            self.mask,
            &self.bits,
            registered,
            &mut self.altered,
        )?;
        match standing {
            tool::Standing::Taken => return Ok(()),
            tool::Standing::Ours { reinstall: true } => {
                callbacks::install(py, self.tool_id, &self.bits, registered)?;
            }
            tool::Standing::Ours { reinstall: false } => {}
        }
        self.set_callbacks(py)?;
        self.mask = self.mask();
        monitoring.call_method1("set_events", (self.tool_id, self.mask))?;
        // With local events, PY_START is on even for a consumer that did not ask for it: the
        // full path checks what each consumer subscribed to.
        if cfg!(feature = "local-events") {
            return Ok(());
        }
        let Some(kind) = self.registered else {
            return Ok(());
        };
        let solo = SLOT_OF
            .into_iter()
            .zip(self.wants.iter().zip(&self.consumers))
            .find_map(|(slot, (&w, held))| {
                held.as_ref()
                    .filter(|h| w != 0 && h.kind == kind)
                    .map(|h| (slot, h.consumer.cast::<()>().as_ptr()))
            });
        let callables = self.solos.iter().find(|(k, _)| *k == kind);
        if let (Some((slot, consumer)), Some((_, callables)), Some(extra)) =
            (solo, callables, codes::extra_slot())
        {
            hot.slot.set(slot);
            hot.extra.set(extra);
            hot.solo.set(consumer);
            for (open, callable) in hot.open.iter().zip(callables) {
                open.set(callable.as_ptr());
            }
            hot.set_gates(!hot.busy.get());
        }
        Ok(())
    }
}

/// Arms `consumer` in `slot` on tool `tool_id` (whose callbacks are registered on first use) for
/// code under `project` (the first consumer's project decides for all: they are the same root).
/// Its events are on when this returns.
pub fn arm<C: Consumer>(
    py: Python<'_>,
    tool_id: u8,
    project: &Project,
    slot: Slot,
    consumer: Box<C>,
) -> PyResult<()> {
    codes::install(project);
    // SAFETY: the GIL is held (we have `py`); no callback holds the engine while Python code
    // that can arm runs outside a busy section.
    if unsafe { engine() }.is_none() {
        let (bits, shared) = callbacks::register(py, tool_id)?;
        let engine = Engine {
            tool_id,
            bits,
            consumers: [None, None, None, None],
            wants: [0; SLOTS],
            // Room for every slot: rearming never moves them, even under a callback's loop.
            armed: std::array::from_fn(|_| Vec::with_capacity(SLOTS)),
            shared,
            solos: Vec::new(),
            registered: None,
            threads: Vec::new(),
            mask: 0,
            altered: None,
        };
        // SAFETY: as above; no callback runs before events are enabled.
        unsafe { *ENGINE.0.get() = Some(engine) };
    }
    // SAFETY: as above.
    let Some(e) = (unsafe { engine() }) else {
        return Ok(());
    };
    e.wants[slot as usize] = consumer.events();
    let consumer: Box<dyn Consumer> = consumer;
    let old = e.consumers[slot as usize].replace(Held {
        consumer: NonNull::from(Box::leak(consumer)),
        kind: TypeId::of::<C>(),
        handlers: handlers::<C>(),
        solo: callbacks::solo_callbacks::<C>(),
    });
    e.rearm();
    if let Some(old) = old {
        // The codes' entries in the slot are the old consumer's: the new one adopts afresh.
        codes::forget(slot);
        // SAFETY: it came from `Box::leak`, and nothing refers to it any more (`rearm`).
        drop(unsafe { Box::from_raw(old.consumer.as_ptr()) });
    }
    e.set_events(py)?;
    restart_disabled(py)
}

/// Re-enables the project's instructions consumers turned off ([`Heard::Enough`]): the consumer
/// just armed has not said it wants none of them. Every tool's disabled instructions come back
/// (library code's too, which gets `DISABLE` again at its next event).
fn restart_disabled(py: Python<'_>) -> PyResult<()> {
    let hot = hot();
    if hot.disabled.replace(false) {
        py.import("sys")?
            .getattr("monitoring")?
            .call_method0("restart_events")?;
    }
    Ok(())
}

/// The end of a callback for a project code's `event`, its consumers done with it (`heard`):
/// releases what they parked, then returns `DISABLE` when none wants the event here again and
/// it is a local event, else `None`.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback ends with it
fn end_of_callback(event: Event, heard: Heard) -> *mut PyObject {
    parked::release_after(event);
    if event.local() && heard == Heard::Enough {
        hot().disabled.set(true);
        crate::monitoring::disable()
    } else {
        crate::monitoring::none()
    }
}

/// Fever's tool id and what the program did to it, if anything, noticed the last time the
/// engine set its events (see [`tool`]).
pub fn altered(_py: Python<'_>) -> Option<(u8, Alteration)> {
    if busy() {
        return None;
    }
    // SAFETY: the GIL is held (`_py`) and no callback holds the engine (not busy).
    let e = unsafe { engine() }?;
    Some((e.tool_id, e.altered?))
}

/// Is a consumer in `slot`? ([`arm`] replaces the one there: check first where that matters.)
pub fn armed(_py: Python<'_>, slot: Slot) -> bool {
    // SAFETY: the GIL is held (`_py`); only the slot's presence is read.
    unsafe { engine() }.is_some_and(|e| e.consumers[slot as usize].is_some())
}

/// Disarms `slot`: its events go off (all of them when it was the last consumer) and its
/// consumer is handed back. `Ok(None)` when the slot is empty, or when a consumer is running
/// Python code from a callback (another thread's, or a `__del__` of the program's): the
/// consumer stays in place, unsubscribed and untouched.
pub fn disarm<C: Consumer>(py: Python<'_>, slot: Slot) -> PyResult<Option<Box<C>>> {
    // SAFETY: the GIL is held; while busy, only `wants` (never borrowed by a callback across
    // Python code) is changed.
    let Some(e) = (unsafe { engine() }) else {
        return Ok(None);
    };
    e.wants[slot as usize] = 0;
    e.rearm();
    e.set_events(py)?;
    if busy() {
        return Ok(None);
    }
    let held = e.consumers[slot as usize].take();
    codes::forget(slot);
    // SAFETY: it came from `Box::leak`, and nothing refers to it any more (`rearm`; not busy,
    // so no callback is inside it).
    let consumer = held.map(|h| unsafe { Box::from_raw(h.consumer.as_ptr()) });
    Ok(consumer.and_then(|c| <dyn Consumer as AsAny>::into_any(c).downcast::<C>().ok()))
}

/// Drops `slot`'s consumer without running any of its code (`mem::forget`): for a forked child,
/// whose consumer state refers to the parent's resources.
pub fn abandon<C: Consumer>(py: Python<'_>, slot: Slot) -> PyResult<()> {
    if let Some(consumer) = disarm::<C>(py, slot)? {
        std::mem::forget(consumer);
    }
    Ok(())
}

/// Runs `f` on the consumer of type `C` in `slot`, unless the slot is empty or the engine is
/// busy (a callback is running Python code: the consumer is borrowed).
pub fn with<C: Consumer, R>(_py: Python<'_>, slot: Slot, f: impl FnOnce(&mut C) -> R) -> Option<R> {
    if busy() {
        return None;
    }
    // SAFETY: the GIL is held (`_py`) and no callback is inside a consumer (not busy).
    let e = unsafe { engine() }?;
    let held = e.consumers[slot as usize].as_ref()?;
    // SAFETY: the consumer is live (armed) and unborrowed (not busy: no callback is inside it).
    let consumer = unsafe { &mut *held.consumer.as_ptr() };
    <dyn Consumer as AsAny>::as_any(consumer)
        .downcast_mut::<C>()
        .map(f)
}
