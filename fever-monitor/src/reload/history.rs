//! The engine's history of reloads, for undo (`fever replay`'s `u`; `fever run` keeps the same
//! history, for `attach`'s control channel later): every applied save is recorded (the file's
//! running text before and after, `fever_core::history`), and [`undo`] applies the text the last
//! reload replaced, with the same engine as a save. The file on disk is left as it is: the next
//! save of it is reloaded as usual.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fever_core::history::{ReloadHistory, UndoError};
use fever_core::ReloadEvent;
use pyo3::prelude::*;

use super::modules;
use crate::sources;

/// Reloads kept at most, and about how much text they may hold.
const MAX_ENTRIES: usize = 100;
const MAX_BYTES: usize = 64 << 20;

static HISTORY: Mutex<ReloadHistory> = Mutex::new(ReloadHistory::new(MAX_ENTRIES, MAX_BYTES));
/// Reloads applied so far, undos included.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set while an undo applies its text: that reload is not recorded.
    static UNDOING: Cell<bool> = const { Cell::new(false) };
}

fn history() -> std::sync::MutexGuard<'static, ReloadHistory> {
    HISTORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A save changed `file`'s running text from `before` to `after` (called by the engine).
pub(super) fn record(file: &str, before: &Arc<String>, after: &Arc<String>) {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    if !UNDOING.get() {
        history().record(file, before, after);
    }
}

/// How many reloads (undos included) changed the program so far: a picture of the program
/// taken at one generation (a standby replay's fork) is stale at another.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// What an undo did.
pub struct Undone {
    /// The file (`co_filename`) that runs its previous text again.
    pub file: String,
    /// What applying that text did, as a save's events.
    pub events: Vec<ReloadEvent>,
}

/// Undoes the last reload: its file runs the text it ran before. An error says why nothing
/// was undone (nothing to undo, the file changed behind the history, the text no longer applies).
pub fn undo(py: Python<'_>) -> Result<Undone, String> {
    let entry = history()
        .take_last(|file| sources::get(file).map(|s| s.text.clone()))
        .map_err(|err: UndoError| err.to_string())?;
    let loaded = modules::running(py, Path::new(&entry.file));
    if loaded.is_empty() {
        return Err(format!(
            "no loaded module runs {} any more; nothing was undone",
            super::display_path(&entry.file)
        ));
    }
    UNDOING.set(true);
    let applied = super::reload_saved(
        py,
        &loaded,
        super::Saved::Bytes(entry.before.as_bytes().to_vec()),
    );
    UNDOING.set(false);
    match applied {
        Ok(outcome) => Ok(Undone {
            file: entry.file,
            events: outcome.events,
        }),
        Err(event) => {
            history().push(entry);
            Err(match event {
                ReloadEvent::Error {
                    file,
                    line: Some(line),
                    message,
                } => format!("{file}:{line}: {message}; nothing was undone"),
                ReloadEvent::Error { file, message, .. } => {
                    format!("{file}: {message}; nothing was undone")
                }
                other => format!("{other:?}; nothing was undone"),
            })
        }
    }
}
