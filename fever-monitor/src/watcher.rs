//! The file watcher: a background thread that reacts to completed saves under the project root
//! (close-after-write and rename-into-place, as editors' safe writes do) at once — no debounce —
//! coalesces bursts, and hands each changed `.py` file to the reload engine with the GIL held.
//! Under `fever watch` it also tells the develop loop what each save did ([`Loop`]).

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
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use pyo3::prelude::*;

use crate::notices;
use crate::reload::{self, Scope};

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
}

impl FileWatcher {
    /// Watches every directory under the project root (except ignored ones) before returning, so a
    /// save right after start-up is seen.
    pub fn start(
        project: Project,
        verbosity: Verbosity,
        develop: Option<Loop>,
    ) -> notify::Result<FileWatcher> {
        let (events_tx, events_rx) = unbounded();
        // notify's inotify thread starts here: with signals blocked, like fever's own.
        let mut watcher = crate::signals::without_signals(|| {
            notify::recommended_watcher(move |event| {
                let _ = events_tx.send(event);
            })
        })?;
        let mut dirs = 0;
        watch_tree(&mut watcher, &project, project.canonical_root(), &mut dirs)?;
        if verbosity >= Verbosity::Verbose {
            notices::emit(&Notice::Watching {
                root: project.canonical_root().to_path_buf(),
                directories: dirs,
            });
        }
        let (stop, stop_rx) = unbounded();
        let thread = crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-watcher".into())
                .spawn(move || {
                    watch_loop(
                        watcher,
                        &project,
                        verbosity,
                        develop.as_ref(),
                        &events_rx,
                        &stop_rx,
                    );
                })
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(FileWatcher {
            stop,
            thread: Some(thread),
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

fn watch_tree(
    watcher: &mut RecommendedWatcher,
    project: &Project,
    dir: &Path,
    count: &mut usize,
) -> notify::Result<()> {
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    *count += 1;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let path = entry.path();
        if is_dir && project.watches(&path) {
            // A directory that vanished meanwhile is not an error.
            let _ = watch_tree(watcher, project, &path, count);
        }
    }
    Ok(())
}

type EventResult = notify::Result<Event>;

fn watch_loop(
    mut watcher: RecommendedWatcher,
    project: &Project,
    verbosity: Verbosity,
    develop: Option<&Loop>,
    events: &Receiver<EventResult>,
    stop: &Receiver<()>,
) {
    loop {
        let first = select! {
            recv(stop) -> _ => return leave_to_exit(watcher),
            recv(events) -> event => match event { Ok(event) => event, Err(_) => return },
        };
        let started = Instant::now();
        let mut batch = vec![first];
        batch.extend(events.try_iter());
        for path in saved_files(&batch, project, &mut watcher, verbosity) {
            let scope = match develop {
                Some(develop) if develop.idle.load(Ordering::SeqCst) => Scope::SkipMain,
                _ => Scope::All,
            };
            let outcome = std::panic::catch_unwind(|| {
                Python::attach(|py| reload::reload_path(py, &path, scope))
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
            report(&outcome.events, verbosity, started);
            if let Some(develop) = develop {
                let _ = develop.saves.send(outcome);
            }
        }
    }
}

/// fever stops watching only when the interpreter exits. Removing the inotify watches one by one
/// and closing the instance makes the kernel wait for a grace period each (measured: 7 ms and
/// more at exit); the process exit releases them anyway, so the watcher is handed to it.
fn leave_to_exit(watcher: RecommendedWatcher) {
    std::mem::forget(watcher);
}

/// The `.py` files whose save completed in `batch` (deduplicated, in path order); also starts
/// watching new directories.
fn saved_files(
    batch: &[EventResult],
    project: &Project,
    watcher: &mut RecommendedWatcher,
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
            EventKind::Create(CreateKind::Folder | CreateKind::Any) => {
                for path in &event.paths {
                    if path.is_dir() && project.watches(path) {
                        let _ = watch_tree(watcher, project, path, &mut 0);
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

fn report(events: &[ReloadEvent], verbosity: Verbosity, started: Instant) {
    let shown: Vec<ReloadEvent> = match verbosity {
        Verbosity::Quiet => events
            .iter()
            .filter(|e| matches!(e, ReloadEvent::Error { .. }))
            .cloned()
            .collect(),
        _ => events.to_vec(),
    };
    notices::emit(&Notice::Reloaded {
        events: shown,
        verbose: verbosity >= Verbosity::Verbose,
        elapsed: started.elapsed(),
    });
}
