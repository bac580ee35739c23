//! The file watcher: a background thread that reacts to completed saves in the directories of the
//! project's running modules (close-after-write and rename-into-place, as editors' safe writes
//! do; which directories is `watched`'s) at once — no debounce — coalesces bursts, and hands each
//! changed `.py` file to the reload engine with the GIL held. Under `fever watch` it also tells
//! the develop loop what each save did ([`Loop`]). Each save goes to the program's child
//! processes too (`family`), and is reported once for all of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{select, unbounded, Receiver, Sender};
use fever_core::notice::Notice;
use fever_core::settings::Verbosity;
use fever_core::{Outcome, Project, ReloadEvent};
use notify::event::{AccessKind, AccessMode, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, EventKind};
use pyo3::prelude::*;

use crate::family::{self, top::Family};
use crate::notices;
use crate::reload::{self, Scope};
use crate::watched;

/// The develop loop's end of the watcher (`fever watch`).
pub struct Loop {
    /// Receives what each save did, after it was applied and reported.
    pub saves: Sender<Outcome>,
    /// True while the program is not running: saves then leave `__main__` alone (the loop runs
    /// the script afresh).
    pub idle: Arc<AtomicBool>,
}

/// The running watcher thread; stopped and joined on drop, which happens at interpreter exit.
/// Drop it with the GIL released (the thread may be waiting for the GIL to finish a reload).
pub struct FileWatcher {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
    /// The child processes the saves are sent to too.
    _family: Option<Family>,
}

impl FileWatcher {
    /// Watches the directories of the project's modules that ran so far before returning, and
    /// each new one's as soon as its code runs (`watched`), so a save right after an import is
    /// seen.
    pub fn start(
        project: Project,
        verbosity: Verbosity,
        develop: Option<Loop>,
    ) -> notify::Result<FileWatcher> {
        let (events_tx, events_rx) = unbounded();
        // notify's inotify thread starts here: with signals blocked, like fever's own.
        let watcher = crate::signals::without_signals(|| {
            notify::recommended_watcher(move |event: EventResult| {
                // The watcher thread sleeps through the steps of a save (opened, written,
                // created): on a busy machine the writer gets the CPU to finish it.
                if may_complete_a_save(&event) {
                    let _ = events_tx.send(event);
                }
            })
        })?;
        let root = project.canonical_root().to_path_buf();
        // Without a family socket, saves reach this process only.
        notices::set_verbosity(verbosity);
        let family = Family::open(&root).ok().flatten();
        watched::start(watcher, project.clone());
        if verbosity >= Verbosity::Verbose {
            notices::emit(&Notice::Watching { root });
        }
        let (stop, stop_rx) = unbounded();
        let thread = crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-watcher".into())
                .spawn(move || {
                    watch_loop(&project, verbosity, develop.as_ref(), &events_rx, &stop_rx);
                })
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(FileWatcher {
            stop,
            thread: Some(thread),
            _family: family,
        })
    }
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type EventResult = notify::Result<Event>;

fn watch_loop(
    project: &Project,
    verbosity: Verbosity,
    develop: Option<&Loop>,
    events: &Receiver<EventResult>,
    stop: &Receiver<()>,
) {
    loop {
        let first = select! {
            recv(stop) -> _ => return,
            recv(events) -> event => match event { Ok(event) => event, Err(_) => return },
        };
        let started = Instant::now();
        let mut batch = vec![first];
        batch.extend(events.try_iter());
        for path in saved_files(&batch, project, verbosity) {
            let scope = match develop {
                Some(develop) if develop.idle.load(Ordering::SeqCst) => Scope::SkipMain,
                _ => Scope::All,
            };
            // Read and compiled once for the children, who apply it while this process
            // does: all with the GIL taken once (taking it again can take long in a busy
            // program), since sending never waits.
            let (sent, outcome) = Python::attach(|py| {
                let shared = if family::top::has_members() {
                    std::panic::catch_unwind(|| reload::share(py, &path))
                        .ok()
                        .flatten()
                } else {
                    None
                };
                let sent = family::top::send(
                    &path,
                    scope == Scope::SkipMain,
                    shared.as_ref().map(|s| &s.prepared),
                );
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    reload::reload_shared(py, &path, scope, shared)
                }));
                (sent, outcome)
            });
            let outcome = outcome.unwrap_or_else(|_| Outcome {
                events: vec![ReloadEvent::Error {
                    file: path.display().to_string(),
                    line: None,
                    message:
                        "internal error in fever's reload engine; the running code is unchanged"
                            .into(),
                }],
                ..Outcome::default()
            });
            let (children, busy) = sent.answers();
            notices::reloaded(&outcome.events, children, busy, started.elapsed());
            if let Some(develop) = develop {
                let _ = develop.saves.send(outcome);
            }
        }
    }
}

/// Whether `event` is one [`saved_files`] looks at: a write closed, a rename, a removal (or an
/// error of the watcher's).
fn may_complete_a_save(event: &EventResult) -> bool {
    event.as_ref().map_or(true, |event| {
        matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(_))
                | EventKind::Remove(_)
        )
    })
}

/// The `.py` files whose save completed in `batch` (deduplicated, in path order).
fn saved_files(
    batch: &[EventResult],
    project: &Project,
    verbosity: Verbosity,
) -> BTreeSet<PathBuf> {
    let mut saved = BTreeSet::new();
    for event in batch.iter().flatten() {
        match event.kind {
            // A paired rename also yields `RenameMode::Both` after its `To`: one is enough.
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => {
                if let Some(path) = event.paths.last() {
                    if is_python(path) && project.watches(path) {
                        saved.insert(path.clone());
                    }
                }
            }
            EventKind::Remove(RemoveKind::File | RemoveKind::Any)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From))
                if verbosity >= Verbosity::Verbose =>
            {
                for path in event
                    .paths
                    .iter()
                    .filter(|p| is_python(p) && project.watches(p))
                {
                    notices::emit(&Notice::Removed { path: path.clone() });
                }
            }
            _ => {}
        }
    }
    saved
}

fn is_python(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "py")
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange};

    use super::*;

    #[test]
    fn only_the_last_steps_of_a_save_reach_the_watcher_thread() {
        let wakes = |kind| may_complete_a_save(&Ok(Event::new(kind)));
        assert!(wakes(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(wakes(EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(wakes(EventKind::Modify(ModifyKind::Name(RenameMode::From))));
        assert!(wakes(EventKind::Remove(RemoveKind::File)));
        assert!(!wakes(EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!wakes(EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        assert!(!wakes(EventKind::Create(CreateKind::File)));
        assert!(may_complete_a_save(&Err(notify::Error::generic("lost"))));
    }
}
