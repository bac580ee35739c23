//! `fever watch`'s call cache, in the running interpreter.
//!
//! - `monitor.rs`: the monitoring engine's consumer that keeps per-thread stacks of project calls
//!   with the code each reached, and offers slow calls (with arguments captured at their start)
//!   to the cache — so the first run already fills it.
//! - `trampoline.rs`: a cached function's `__code__` becomes a trampoline with the same
//!   signature that looks the call up and returns a copy of the stored result, or runs the
//!   original code (and stores its result when it was slow).
//! - `codes.rs`: the project's code objects as the cache knows them (hash, name, signature).
//! - `values.rs`: argument keys, result copies, size estimates.
//! - `output.rs`: noticing printed output and files written by a call.
//! - `disk.rs`: `--persist-cache`, the cache file under `.fever/cache/`.
//!
//! The index itself (validity, LRU eviction) is plain Rust in `fever_core::cache`. Entries stay
//! valid while every function the call reached runs the code it ran then: the function watcher
//! (`functions.rs`) reports each new function and each `__code__` change to the cache, its
//! subscriber, and a changed code hash under a name drops the entries that reached the old one.
//! All state is touched with the GIL held and never while Python code runs (which could switch
//! threads); the Python objects it keeps are [`Held`], so letting one go never runs Python code
//! while it is borrowed.

mod codes;
pub(crate) mod disk;
mod monitor;
mod output;
mod trampoline;
mod values;

use std::cell::{Cell, UnsafeCell};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fever_core::cache::persist::{CacheFile, ReachedCode, StoredCall};
use fever_core::cache::{class_slot_name, slot_class, CacheIndex, CodeSlot, Entry, Key};
use fever_core::notice::{Effect, Notice};
use fever_core::settings::Verbosity;
use fever_core::{Outcome, Project, Rebinds};
use pyo3::ffi::PyObject;
use pyo3::prelude::*;

use crate::engine::clock;
use crate::snapshot::Snapped;
use crate::{functions, notices, sources};
use codes::Codes;
use trampoline::Trampolines;

/// How the cache behaves (`fever watch` options).
pub struct Settings {
    pub project: Project,
    /// Calls at least this slow are cached.
    pub min_duration: Duration,
    /// Estimated bytes of results kept.
    pub max_bytes: u64,
    pub verbosity: Verbosity,
    /// `--persist-cache`: the project root whose `.fever/cache/` keeps the cache.
    pub persist: Option<std::path::PathBuf>,
}

/// A stored result.
struct Stored {
    value: Kept,
    /// The warning about skipped output was given.
    warned: bool,
    /// What happens to it when a run ends.
    between_runs: BetweenRuns,
}

/// What a stored result becomes when a run ends.
enum BetweenRuns {
    /// Stays as it is.
    Kept,
    /// It holds the script's classes or instances of them, which the next run defines afresh:
    /// it goes back to this snapshot, rebuilt with the new classes at its next hit.
    Rebuilt(Arc<Vec<u8>>),
    /// The same, but no snapshot holds it faithfully: it is dropped.
    Dropped,
}

/// How a result is kept.
enum Kept {
    /// The object (a private copy).
    Live(Held),
    /// Its snapshot, from the cache file: rebuilt at the first hit.
    Snapshot(Arc<Vec<u8>>),
}

/// A call's arguments, read at its start: the values (owned references) and their key.
pub struct Captured {
    values: Vec<*mut PyObject>,
    key: Snapped,
    /// [`output::counters`] at the start.
    output: output::Activity,
}

impl Drop for Captured {
    fn drop(&mut self) {
        // SAFETY: captures are only dropped with the GIL held.
        let py = unsafe { Python::assume_attached() };
        for &v in &self.values {
            if !v.is_null() {
                // SAFETY: an owned reference, handed to `Held` (released later, see there).
                drop(Held::new(unsafe { Bound::from_owned_ptr(py, v) }.unbind()));
            }
        }
    }
}

/// A Python reference the cache keeps. Letting one go can run Python code (`__del__`, the
/// function watcher's hooks), which may reach the cache again; so dropping a `Held` only parks
/// the reference, and [`with`] releases what was parked once its borrow of the cache ended.
pub struct Held(Option<Py<PyAny>>);

thread_local! {
    static PARKED: std::cell::RefCell<Vec<Py<PyAny>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Held {
    pub fn new(object: Py<PyAny>) -> Self {
        Self(Some(object))
    }

    /// A new strong reference to the object.
    pub fn clone_ref(&self, py: Python<'_>) -> Py<PyAny> {
        self.0
            .as_ref()
            .map_or_else(|| py.None(), |o| o.clone_ref(py))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            PARKED.with_borrow_mut(|parked| parked.push(object));
        }
    }
}

/// Releases the references dropped while the cache was borrowed (call with no borrow alive).
fn release_parked() {
    loop {
        let parked = PARKED.take();
        if parked.is_empty() {
            return;
        }
        drop(parked);
    }
}

/// A slow call of project code that just returned (from the monitor).
pub struct SlowCall {
    /// The code object (borrowed: alive while its callback runs).
    code: *mut PyObject,
    entry: usize,
    elapsed: Duration,
    captured: Option<Box<Captured>>,
    /// Code entries the call reached, itself included.
    reached: Vec<usize>,
    /// The returned value (owned).
    value: *mut PyObject,
}

/// Everything the cache keeps.
struct Cache {
    settings: Settings,
    /// Clock rate (see `engine::clock`), and the minimum duration in ticks.
    ns_per_tick: f64,
    min_ticks: u64,
    codes: Codes,
    index: CacheIndex<Stored>,
    /// Hashes of the code whose functions get a trampoline.
    cached_codes: HashSet<u64>,
    /// Functions to give a trampoline when the next run starts.
    pending: Vec<Held>,
    trampolines: Trampolines,
    /// `--persist-cache`: where new entries are written.
    file: Option<CacheFile>,
    /// This run's hits: (function, hits, time saved), in order of first hit.
    hits: Vec<(String, u32, Duration)>,
    /// Code hashes whose reason for not being cached was already told (`-v`).
    told: HashSet<u64>,
}

/// The cache, reachable from callbacks; `None` when off.
struct GilCell(UnsafeCell<Option<Cache>>);

// SAFETY: only accessed with the GIL held, and no reference is kept across a call into Python
// (see the module docs), which serializes every access.
unsafe impl Sync for GilCell {}

static CACHE: GilCell = GilCell(UnsafeCell::new(None));

/// The cache. Safety: the GIL is held and no other reference from this function is alive.
unsafe fn state() -> Option<&'static mut Cache> {
    // SAFETY: guaranteed by the caller.
    unsafe { (*CACHE.0.get()).as_mut() }
}

/// Runs `f` on the cache (if on). `f` must not call into Python; references it drops are
/// released after it returned.
fn with<T>(_py: Python<'_>, f: impl FnOnce(&mut Cache) -> T) -> Option<T> {
    // SAFETY: the GIL is held (`_py`), and `f` does not run Python code, so nothing else can
    // take the cache while it runs.
    let result = unsafe { state() }.map(f);
    release_parked();
    result
}

thread_local! {
    /// This thread is inside the cache's own Python calls: callbacks and hooks stay out.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// How many threads have `BUSY` set: while none has, the callbacks skip reading the
/// thread-local (a call into the TLS resolver in a shared library) twice per call.
static BUSY_THREADS: AtomicU32 = AtomicU32::new(0);

#[inline(always)]
#[allow(clippy::inline_always)] // twice per call of the program
fn busy() -> bool {
    BUSY_THREADS.load(Ordering::Relaxed) != 0 && busy_here()
}

/// Is this thread inside the cache's own Python calls? Out of line: inlined, the compiler
/// computes the thread-local's address (a call) before testing `BUSY_THREADS`.
#[cold]
#[inline(never)]
fn busy_here() -> bool {
    BUSY.get()
}

fn set_busy(on: bool) {
    let was = BUSY.replace(on);
    count_busy(was, on);
}

fn count_busy(was: bool, on: bool) {
    match (was, on) {
        (false, true) => BUSY_THREADS.fetch_add(1, Ordering::Relaxed),
        (true, false) => BUSY_THREADS.fetch_sub(1, Ordering::Relaxed),
        _ => 0,
    };
}

/// Runs `f` (which calls Python) with the cache's callbacks and hooks off on this thread.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let was = BUSY.replace(true);
    count_busy(was, true);
    let result = f();
    BUSY.set(was);
    count_busy(true, was);
    result
}

/// Turns the cache on: callbacks on `tool_id`, output counting, the trampolines' entry point.
pub fn start(py: Python<'_>, tool_id: u8, settings: Settings) -> PyResult<()> {
    let budget = settings.max_bytes;
    let (stored, file) = match &settings.persist {
        Some(root) => disk::open(&disk::dir_of(root), budget),
        None => (Vec::new(), None),
    };
    let ns_per_tick = clock::quick_rate(Duration::from_millis(1));
    let min_ticks = fever_core::clock::ns_to_ticks(settings.min_duration.as_nanos(), ns_per_tick);
    let mut cache = Cache {
        file,
        ns_per_tick,
        min_ticks,
        codes: Codes::default(),
        settings,
        index: CacheIndex::new(budget),
        cached_codes: HashSet::new(),
        pending: Vec::new(),
        trampolines: Trampolines::default(),
        hits: Vec::new(),
        told: HashSet::new(),
    };
    for call in stored {
        cache.adopt(call);
    }
    let project = cache.settings.project.clone();
    // SAFETY: GIL held; nothing else references the cell yet.
    unsafe { *CACHE.0.get() = Some(cache) };
    trampoline::install_dispatch(py)?;
    output::install(py)?;
    functions::subscribe(FUNCTION_EVENTS);
    monitor::arm(py, tool_id, &project)
}

/// Turns the cache off (at exit).
pub fn stop(py: Python<'_>) -> PyResult<()> {
    if with(py, |_| ()).is_none() {
        return Ok(());
    }
    let unregistered = monitor::disarm(py);
    let restored = output::uninstall(py);
    // SAFETY: GIL held; callbacks are off, so nothing else uses the cell.
    let cache = unsafe { (*CACHE.0.get()).take() };
    drop(cache);
    release_parked();
    unregistered.and(restored)
}

/// In a child of `os.fork()`: the cache file is the parent's; the child keeps its cache in
/// memory only, and leaves the file as it is (no flush, no close mark).
pub fn after_fork_in_child(py: Python<'_>) {
    with(py, |c| std::mem::forget(c.file.take()));
}

/// A run of the program starts: gives trampolines to the functions whose calls were cached.
pub fn begin_run(py: Python<'_>) {
    let Some(pending) = with(py, |c| {
        c.hits.clear();
        for info in &mut c.codes.infos {
            info.captured = 0;
        }
        std::mem::take(&mut c.pending)
    }) else {
        return;
    };
    for function in pending {
        trampoline::install_if_cached(py, function.clone_ref(py).bind(py));
    }
}

/// A run ended: says what the cache saved, and turns results holding the script's objects
/// back into snapshots (the next run's classes are new ones).
pub fn end_run(py: Python<'_>) {
    let Some((hits, verbosity)) = with(py, |c| {
        let mut gone = Vec::new();
        for (key, entry) in c.index.iter_mut() {
            match &entry.value.between_runs {
                BetweenRuns::Rebuilt(snapshot) => {
                    entry.value.value = Kept::Snapshot(Arc::clone(snapshot));
                }
                BetweenRuns::Dropped => gone.push(*key),
                BetweenRuns::Kept => {}
            }
        }
        for key in gone {
            c.index.remove(&key);
        }
        (std::mem::take(&mut c.hits), c.settings.verbosity)
    }) else {
        return;
    };
    if verbosity < Verbosity::Normal {
        return;
    }
    for (function, count, saved) in hits {
        notices::emit(&Notice::CacheHit {
            function,
            count,
            saved,
        });
    }
}

/// A save was applied: a changed top-level statement may change what functions compute when
/// it rebinds a name they read, so the entries that reached such code go.
pub fn after_save(py: Python<'_>, outcome: &Outcome) {
    let Some(file) = &outcome.file else {
        return;
    };
    let dropped = with(py, |c| {
        let n = match &outcome.rebinds {
            Rebinds::Nothing => 0,
            Rebinds::Anything => c.index.invalidate_file(file),
            Rebinds::Names(names) => {
                let readers: HashSet<CodeSlot> = c
                    .codes
                    .infos
                    .iter()
                    .filter(|info| info.reads.iter().any(|name| names.contains(name)))
                    .map(|info| info.slot)
                    .collect();
                c.index.invalidate_reaching(&readers)
            }
        };
        (n, c.settings.verbosity)
    });
    if let Some((n, Verbosity::Verbose)) = dropped {
        if n > 0 {
            notices::emit(&Notice::CacheDropped {
                count: n,
                file: file.clone(),
            });
        }
    }
}

/// What the cache hears from the function watcher. While the cache gives a function its
/// trampoline, that code change is its own (the code registry then keeps the function under its
/// own code, which is what a reload must replace).
const FUNCTION_EVENTS: functions::Subscriber = functions::Subscriber {
    created: on_function_created,
    code_changed: on_code_changed,
    destroyed: on_function_destroyed,
    changing_code: trampoline::is_installing,
};

/// The function watcher saw project function `func` created with `code`.
///
/// # Safety
/// GIL held, live objects, called from the function watcher.
unsafe fn on_function_created(func: *mut PyObject, code: *mut PyObject) {
    if busy() {
        return;
    }
    // SAFETY: GIL held (caller).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: GIL held, live code (caller); a pending exception was set aside by the watcher.
    let cached = with(py, |c| unsafe { c.cached_entry(code) });
    if cached.flatten().is_some() {
        // SAFETY: `func` is live (caller).
        let func = unsafe { Bound::from_borrowed_ptr(py, func) };
        trampoline::install_if_cached(py, &func);
    }
}

/// The function watcher saw `func`'s code about to become `new_code` (not by the cache).
///
/// # Safety
/// GIL held, live objects, called from the function watcher.
unsafe fn on_code_changed(func: *mut PyObject, new_code: *mut PyObject) {
    if busy() {
        return;
    }
    // SAFETY: GIL held (caller).
    let py = unsafe { Python::assume_attached() };
    with(py, |c| {
        // Classifying the new code reports its hash under its name: entries that reached
        // other code under that name are dropped.
        // SAFETY: GIL held, live code (caller).
        let cached = unsafe { c.cached_entry(new_code) }.is_some();
        let had_trampoline = c.trampolines.forget(func);
        if had_trampoline || cached {
            // SAFETY: `func` is live (caller); a new strong reference.
            c.pending.push(Held::new(
                unsafe { Bound::from_borrowed_ptr(py, func) }.unbind(),
            ));
        }
    });
}

/// The function watcher saw `func` destroyed. Never skipped (not even inside the cache's own
/// Python calls): a trampoline must not outlive its function, whose address may be reused.
fn on_function_destroyed(func: *mut PyObject) {
    // SAFETY: called from the function watcher with the GIL held.
    let py = unsafe { Python::assume_attached() };
    with(py, |c| c.trampolines.forget(func));
}

impl Cache {
    /// The entry of `code` (classified on first sight) when calls of it are cached, so its
    /// functions get trampolines. Safety: GIL held, `code` live, no exception set.
    unsafe fn cached_entry(&mut self, code: *mut PyObject) -> Option<usize> {
        // SAFETY: guaranteed by the caller.
        let entry = unsafe { self.codes.entry(code, &mut self.index) }?;
        let info = &self.codes.infos[entry];
        (info.never.is_none() && self.cached_codes.contains(&info.hash)).then_some(entry)
    }

    /// Takes in a call stored by an earlier process (its result rebuilt at its first hit).
    fn adopt(&mut self, call: StoredCall) {
        let result = Arc::new(call.result);
        let reached = call
            .reached
            .iter()
            .map(|r| (self.index.slot(&r.file, &r.qualname), r.hash))
            .collect();
        let mut entry = Entry::new(
            Stored {
                value: Kept::Snapshot(Arc::clone(&result)),
                warned: false,
                // Until its first rebuild shows it holds nothing of the script's.
                between_runs: BetweenRuns::Rebuilt(result),
            },
            call.name,
            reached,
            call.bytes,
            Duration::from_nanos(call.cost_ns),
        );
        entry.printed = call.printed;
        entry.wrote_files = call.wrote_files;
        let key = Key {
            code: call.code,
            args: call.args,
        };
        if self.index.insert(key, entry).is_ok() {
            self.cached_codes.insert(call.code);
        }
    }
}

/// The stored result of a hit as a private copy for the caller: a snapshot from the cache file
/// is rebuilt once (and kept as an object from then on); `None` when it can't be (the entry is
/// dropped and the call runs).
fn take_copy<'py>(py: Python<'py>, key: &Key, found: Found) -> Option<Bound<'py, PyAny>> {
    let value = match found {
        Found::Live(value) => value.into_bound(py),
        Found::Snapshot(bytes) => {
            let Ok(value) = quietly(|| disk::rebuild(py, &bytes)) else {
                with(py, |c| c.index.remove(key));
                return None;
            };
            let from_script = quietly(|| values::footprint(&value).from_script);
            with(py, |c| {
                if let Some(e) = c.index.get(key) {
                    e.value.value = Kept::Live(Held::new(value.clone().unbind()));
                    if !from_script {
                        e.value.between_runs = BetweenRuns::Kept;
                    }
                }
            });
            value
        }
    };
    quietly(|| values::copy(&value)).ok()
}

/// Prints why calls of code `entry` are not cached (once per code, with `-v`).
fn tell(c: &mut Cache, entry: usize, reason: &str) {
    let info = &c.codes.infos[entry];
    if c.settings.verbosity >= Verbosity::Verbose && c.told.insert(info.hash) {
        notices::emit(&Notice::NotCaching {
            function: info.qualname.clone(),
            reason: reason.to_owned(),
        });
    }
}

/// From the monitor: a slow call of project code returned. Its functions get trampolines at
/// once; its result is stored when its arguments were captured and keyed.
fn offer_slow_call(slow: SlowCall) {
    // SAFETY: called from a monitoring callback, with the GIL held.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: we own this reference.
    let value = unsafe { Bound::from_owned_ptr(py, slow.value) };
    let cacheable = with(py, |c| {
        let info = &c.codes.infos[slow.entry];
        if let Some(reason) = info.never {
            if !info.body {
                tell(c, slow.entry, reason);
            }
            return false;
        }
        c.cached_codes.insert(info.hash);
        true
    });
    if cacheable != Some(true) {
        return;
    }
    // SAFETY: the code is alive while its callback runs.
    let code = unsafe { Bound::from_borrowed_ptr(py, slow.code) };
    // Later calls, in this run too, go through the trampoline.
    for function in functions::functions_of(py, &code) {
        trampoline::install_if_cached(py, &function);
    }
    let Some(captured) = slow.captured else {
        return;
    };
    let names = with(py, |c| c.codes.infos[slow.entry].arg_names.clone()).unwrap_or_default();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if !captured.key.complete {
        // SAFETY: GIL held, captured values live.
        let reason = quietly(|| unsafe { values::unkeyable_reason(&names, &captured.values) });
        with(py, |c| tell(c, slow.entry, &reason));
        return;
    }
    if captured.key.mutable {
        // SAFETY: GIL held, captured values live.
        let now = quietly(|| unsafe { values::key(&names, &captured.values) });
        if now.hash != captured.key.hash {
            with(py, |c| tell(c, slow.entry, "it changes its arguments"));
            return;
        }
    }
    store(
        py,
        slow.entry,
        captured.key.hash,
        &value,
        &slow.reached,
        slow.elapsed,
        captured.output,
    );
}

/// Stores a copy of `result` for a call of code `entry` with argument hash `args`.
fn store(
    py: Python<'_>,
    entry: usize,
    args: u64,
    result: &Bound<'_, PyAny>,
    reached: &[usize],
    cost: Duration,
    output_before: output::Activity,
) {
    let after = output::counters();
    if after.debugger != output_before.debugger {
        with(py, |c| tell(c, entry, "it ran under a debugger"));
        return;
    }
    // Sized first: a result bigger than the whole budget is never copied.
    let values::Footprint {
        bytes,
        from_script,
        classes,
    } = quietly(|| values::footprint(result));
    let budget = with(py, |c| c.settings.max_bytes).unwrap_or(0);
    if bytes > budget {
        let reason = format!(
            "its result ({}) is bigger than --cache-size",
            fever_core::units::size(bytes)
        );
        with(py, |c| tell(c, entry, &reason));
        return;
    }
    let (copy, bytes) = match quietly(|| values::copy(result)).map(|copy| (copy, bytes)) {
        Ok(copied) => copied,
        Err(err) => {
            let reason = format!("its result can't be copied ({})", err.value(py));
            with(py, |c| tell(c, entry, &reason));
            return;
        }
    };
    let persisting = with(py, |c| c.file.is_some()).unwrap_or(false);
    let snapshot = if persisting || from_script {
        quietly(|| disk::snapshot(&copy)).map(Arc::new)
    } else {
        None
    };
    with(py, |c| {
        let info = &c.codes.infos[entry];
        let key = Key {
            code: info.hash,
            args,
        };
        let name = info.qualname.clone();
        let mut reached: Vec<(CodeSlot, u64)> = reached
            .iter()
            .filter_map(|&i| c.codes.infos.get(i).map(|info| (info.slot, info.hash)))
            .collect();
        // The classes of the objects it returns: a change to the shape of one drops the entry.
        for (file, qualname) in &classes {
            if let Some(hash) = sources::class_shape(file, qualname) {
                let slot = c.index.slot(file, &class_slot_name(qualname));
                c.index.code_seen(slot, hash);
                reached.push((slot, hash));
            }
        }
        let printed = after.writes != output_before.writes;
        let wrote_files = after.file_opens != output_before.file_opens;
        let stored_call = snapshot.as_ref().map(|result| StoredCall {
            code: key.code,
            args: key.args,
            name: name.clone(),
            reached: reached
                .iter()
                .filter_map(|&(slot, hash)| {
                    let (file, qualname) = c.index.slot_name(slot)?;
                    Some(ReachedCode {
                        file: file.to_owned(),
                        qualname: qualname.to_owned(),
                        hash,
                    })
                })
                .collect(),
            cost_ns: u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX),
            bytes,
            printed,
            wrote_files,
            result: result.to_vec(),
        });
        let mut new = Entry::new(
            Stored {
                value: Kept::Live(Held::new(copy.unbind())),
                warned: false,
                between_runs: match (from_script, &snapshot) {
                    (false, _) => BetweenRuns::Kept,
                    (true, Some(snapshot)) => BetweenRuns::Rebuilt(Arc::clone(snapshot)),
                    (true, None) => BetweenRuns::Dropped,
                },
            },
            name,
            reached,
            bytes,
            cost,
        );
        new.printed = printed;
        new.wrote_files = wrote_files;
        // Refused when code it reached changed while it ran: the result is already stale.
        if let Ok(evicted) = c.index.insert(key, new) {
            if let (Some(file), Some(call)) = (&mut c.file, &stored_call) {
                file.append(call);
            }
            if c.settings.verbosity >= Verbosity::Verbose {
                for gone in evicted {
                    notices::emit(&Notice::CacheEvicted {
                        function: gone.name,
                        bytes: gone.bytes,
                    });
                }
            }
        }
    });
}

/// Whether the classes whose instances the entry for `key` returns still have the shape they had
/// (fields, decorators, bases: the objects a real call would return now look the same); drops
/// it when not.
fn classes_unchanged(c: &mut Cache, key: &Key) -> bool {
    let Some(entry) = c.index.get(key) else {
        return true;
    };
    let reached = entry.reached.clone();
    for (slot, hash) in reached {
        let Some((file, name)) = c.index.slot_name(slot) else {
            continue;
        };
        let Some(class) = slot_class(name) else {
            continue;
        };
        match sources::class_shape(file, class) {
            Some(now) if now == hash => {}
            Some(now) => {
                c.index.code_seen(slot, now);
                return false;
            }
            None => {
                c.index.remove(key);
                return false;
            }
        }
    }
    true
}

/// What a hit found.
enum Found {
    Live(Py<PyAny>),
    Snapshot(Arc<Vec<u8>>),
}

/// The stored result for `key`, counted as a hit; with the warning to give about output the
/// call had produced (once per entry).
fn hit(py: Python<'_>, key: &Key) -> Option<(Found, Option<Notice>)> {
    with(py, |c| {
        if !classes_unchanged(c, key) {
            return None;
        }
        let e = c.index.get(key)?;
        let warning = if e.value.warned {
            None
        } else if e.printed {
            Some(Notice::CacheHitSkips {
                function: e.name.clone(),
                effect: Effect::Output,
            })
        } else if e.wrote_files {
            Some(Notice::CacheHitSkips {
                function: e.name.clone(),
                effect: Effect::Files,
            })
        } else {
            None
        };
        e.value.warned = true;
        let value = match &e.value.value {
            Kept::Live(value) => Found::Live(value.clone_ref(py)),
            Kept::Snapshot(bytes) => Found::Snapshot(Arc::clone(bytes)),
        };
        let (name, cost) = (e.name.clone(), e.cost);
        match c.hits.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, count, saved)) => {
                *count += 1;
                *saved += cost;
            }
            None => c.hits.push((name, 1, cost)),
        }
        Some((value, warning))
    })
    .flatten()
}
