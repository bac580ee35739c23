//! A save that found every module running its file still being imported: in `sys.modules`, its
//! code not run yet, though perhaps already read, or running (a worker starting while the file
//! is saved; a slow module-level statement). The import runs the text it read, before or after
//! the save, and `sources` records that text (applied now, the rest of the old text would run
//! over the save's definitions); so the save is applied again once the import is over (a thread looks every few
//! milliseconds): the difference if the import ran the older text, nothing if it read the saved
//! one. What it did is told like any save (it reads the file as it is then: a later save may be
//! applied with it), by whoever the process's role installed ([`report_with`]): the top prints
//! it and tells the loop of `fever watch` or of the replay server ([`report_to`]), a member
//! answers the top with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use fever_core::Outcome;
use pyo3::prelude::*;

use super::{modules, Scope};
use crate::notices;

/// The files waiting for an import to end: the scope of their save, and the process whose
/// thread waits (a forked child has none).
static WAITING: Mutex<Option<HashMap<PathBuf, (Scope, u32)>>> = Mutex::new(None);

fn waiting() -> std::sync::MutexGuard<'static, Option<HashMap<PathBuf, (Scope, u32)>>> {
    WAITING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Is told what a save applied once its import ended did (the file, the outcome, how long since
/// it was deferred); called holding the GIL.
pub type Report = dyn Fn(Python<'_>, &Path, Outcome, Duration) + Send + Sync;

/// The [`Report`] installed, if any (else the outcome is printed).
static REPORT: Mutex<Option<Arc<Report>>> = Mutex::new(None);

/// Tells `report` what each save applied once its import ended did, from now on. The one it
/// replaces is leaked, not dropped: in a forked child it is the parent's, and may hold a
/// connection the child closed already (whose fd number may be reused).
pub fn report_with(report: Arc<Report>) {
    let old = REPORT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .replace(report);
    std::mem::forget(old);
}

/// Has each save applied once its import ended printed like any save and sent to `saves`: the
/// loop of `fever watch` or of the replay server, which acts on it as on any save.
pub fn report_to(saves: Sender<Outcome>) {
    report_with(Arc::new(
        move |_: Python<'_>, _: &Path, outcome: Outcome, elapsed: Duration| {
            if !outcome.events.is_empty() {
                notices::reloaded(&outcome.events, Vec::new(), Vec::new(), elapsed);
            }
            let _ = saves.send(outcome);
        },
    ));
}

/// The files whose save waits for an import to end, read in a child of `os.fork()` (whose copy
/// of the import runs the text it read before the save, and has no thread waiting for it)
/// without waiting for a lock another thread may have held at the fork.
pub fn waiting_at_fork() -> Vec<PathBuf> {
    WAITING
        .try_lock()
        .ok()
        .and_then(|waiting| Some(waiting.as_ref()?.keys().cloned().collect()))
        .unwrap_or_default()
}

/// Applies the save of `path` again once no module running it is being imported.
pub fn after_import(path: &Path, scope: Scope) {
    let pid = std::process::id();
    let before = waiting()
        .get_or_insert_with(HashMap::new)
        .insert(path.to_path_buf(), (scope, pid));
    if before.is_some_and(|(_, waiter)| waiter == pid) {
        return;
    }
    let waited = path.to_path_buf();
    let started = crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-after-import".into())
            .spawn(move || wait(&waited))
    });
    if started.is_err() {
        waiting().get_or_insert_with(HashMap::new).remove(path);
    }
}

fn wait(path: &Path) {
    let deferred = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
        let done = Python::attach(|py| {
            if modules::running(py, path)
                .iter()
                .any(modules::LoadedModule::is_importing)
            {
                return false;
            }
            let Some((scope, _)) = waiting().as_mut().and_then(|w| w.remove(path)) else {
                return true;
            };
            let outcome = super::reload_path(py, path, scope, None);
            let report = REPORT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            match report {
                Some(report) => report(py, path, outcome, deferred.elapsed()),
                None if !outcome.events.is_empty() => {
                    notices::reloaded(&outcome.events, Vec::new(), Vec::new(), deferred.elapsed());
                }
                None => {}
            }
            true
        });
        if done {
            return;
        }
    }
}
