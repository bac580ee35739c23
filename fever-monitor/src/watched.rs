//! What the file watcher watches: the directory of each project module whose code runs (the
//! script's included), as the audit hook in `sources` reports it, never the whole tree under the
//! root. The cost follows the program's imports, not the size of the tree it starts in: a script
//! started from a home directory watches that one directory. A module imported late, from a
//! directory created after start-up, gets its directory watched before its code runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use fever_core::Project;

/// The watcher and what it watches.
#[derive(Default)]
struct Watched {
    /// The live watcher, the project and the process that started it (a forked child has no
    /// watcher thread: asking it to watch would wait forever).
    live: Option<(RecommendedWatcher, Project, u32)>,
    /// Directories of the modules that ran, as their code objects spell them.
    seen: HashSet<PathBuf>,
    /// The same, resolved: watched once there is a watcher.
    dirs: Vec<PathBuf>,
}

static WATCHED: Mutex<Option<Watched>> = Mutex::new(None);

fn watched() -> MutexGuard<'static, Option<Watched>> {
    WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands `watcher` the directories of the modules that ran so far and of every module that runs
/// from now on. The watcher lives until the process exits (the kernel releases its watches then,
/// faster than removing them one by one).
pub fn start(mut watcher: RecommendedWatcher, project: Project) {
    let mut guard = watched();
    let state = guard.get_or_insert_with(Watched::default);
    state.dirs.retain(|dir| {
        project.watches(dir) && watcher.watch(dir, RecursiveMode::NonRecursive).is_ok()
    });
    state.live = Some((watcher, project, std::process::id()));
}

/// The code of project module `file` is about to run (the GIL is held): its directory is watched
/// from now on. Never fails or panics: a directory that cannot be watched is left out.
pub fn module_ran(file: &str) {
    let Some(dir) = Path::new(file).parent() else {
        return;
    };
    let _ = std::panic::catch_unwind(|| {
        let mut guard = watched();
        let state = guard.get_or_insert_with(Watched::default);
        if !state.seen.insert(dir.to_path_buf()) {
            return;
        }
        let Ok(dir) = dir.canonicalize() else {
            return;
        };
        if state.dirs.contains(&dir) {
            return;
        }
        match &mut state.live {
            None => state.dirs.push(dir),
            Some((watcher, project, pid)) => {
                if *pid == std::process::id()
                    && project.watches(&dir)
                    && watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok()
                {
                    state.dirs.push(dir);
                }
            }
        }
    });
}
