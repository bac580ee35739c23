//! The reload engine: a saved path → the modules running it → a plan (fever-core) → applied in
//! the real namespaces → typed events for the CLI to print.
//!
//! - [`compile`]: compiles one definition at its real lines and inside its enclosing classes
//!   (fever-core builds the synthetic source), and code-object surgery (line shifts).
//! - [`apply`]: carries out a plan on one module: swaps `__code__`, executes definitions and
//!   statements, deletes names.
//! - [`caches`]: clears `functools` caches of functions whose code was replaced.
//! - [`modules`]: which loaded modules run a given file.
//! - [`loaded`]: loaded modules and `sys` attributes, without an import statement.
//! - [`running`]: where replaced code is still running (thread stacks, suspended generators).
//! - [`copies`]: `from m import NAME` copies of a rebound name.
//! - [`settle`]: a save in progress (an empty or suddenly much shorter file) is waited out.
//! - [`history`]: the applied reloads, and undoing the last one.
//! - [`importing`]: whether an import in progress goes on in this process (a forked child's
//!   copy of its parent's may never end).
//! - [`later`]: a save that came while its module was being imported, applied again after.

mod apply;
mod caches;
mod compile;
mod copies;
pub mod history;
mod importing;
pub mod later;
mod loaded;
mod modules;
mod running;
mod settle;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use compile::{Ahead, AheadCodes};
use fever_core::control::Prepared;
use fever_core::source::bound_names;
use fever_core::{reindex, Outcome, Rebinds, Reindexed, ReloadEvent};
use pyo3::prelude::*;

use crate::sources;

/// Which modules a save applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every loaded module running the file.
    All,
    /// All but `__main__`: `fever watch` between runs runs the script afresh instead.
    SkipMain,
}

/// A save read and compiled once for a whole family (by the top process, before it sends the
/// save), so that no process of it reads the file or compiles the same code again.
pub struct Shared {
    /// What the members get.
    pub prepared: Prepared,
    /// The codes: as compiled here (the top), or as received.
    codes: AheadCodes,
    /// In the top: the save as it decoded and reindexed it, which its own reload takes.
    read: Option<Read>,
}

/// A save decoded and compared with the running text once, by the top, for its own reload.
struct Read {
    /// The saved bytes' [`sources::content_hash`].
    hash: u64,
    /// The running text it was compared with.
    running: Arc<sources::Source>,
    text: String,
    /// From `running` to `text`: `None` when they are the same.
    reindexed: Option<Reindexed>,
}

/// A save's content, as a reload gets it.
enum Saved {
    Bytes(Vec<u8>),
    Read(Read),
}

impl Shared {
    /// A save as the top prepared it, in a member: the bytes, and the code when this process
    /// runs the interpreter that compiled it.
    pub fn received(py: Python<'_>, mut prepared: Prepared) -> Shared {
        let compiled = std::mem::take(&mut prepared.compiled);
        let codes = if !prepared.magic.is_empty() && prepared.magic == compile::magic(py) {
            compiled
                .into_iter()
                .map(|(key, bytes)| (key, Ahead::Marshalled(bytes)))
                .collect()
        } else {
            AheadCodes::new()
        };
        Shared {
            prepared,
            codes,
            read: None,
        }
    }
}

/// The top's part of a save for its family, before it sends it: reads `path`, decodes and
/// reindexes it and compiles what changed against the text this process runs, as its own reload
/// would (which then takes all of it). `None` when there is nothing to share: no module here
/// runs the file, it cannot be read, or its save seems still in progress (each process then
/// reads it itself).
pub fn share(py: Python<'_>, path: &Path) -> Option<Shared> {
    /// Larger saved files are read by each member itself.
    const SEND_BYTES: usize = 64 << 10;
    let file = modules::running(py, path).first()?.file.clone();
    let bytes = std::fs::read(path).ok()?;
    let running = sources::get(&file)?;
    if settle::in_progress(&bytes, running.text.len()) {
        return None;
    }
    let hash = sources::content_hash(&bytes);
    // Copied only when it goes to the members.
    let sent = (bytes.len() <= SEND_BYTES).then(|| bytes.clone());
    let (read, codes) = compile::with_ahead(AheadCodes::new(), || {
        let text = decode_saved(py, &file, bytes).ok()?;
        let reindexed = (*running.text != text).then(|| {
            let reindexed = reindex(&running.index, &running.text, &text);
            if reindexed.broken().is_none() {
                let features = reindexed.future_features(&running.index, &text);
                // An error is found again, and reported, by each process's own reload.
                let _ = apply::compile_plan(py, &file, &features, &text, &reindexed.plan);
            }
            reindexed
        });
        Some(Read {
            hash,
            running,
            text,
            reindexed,
        })
    });
    let compiled = codes
        .iter()
        .filter_map(|(key, code)| match code {
            Ahead::Code(code) => Some((
                *key,
                pyo3::marshal::dumps(code.bind(py), pyo3::marshal::VERSION)
                    .ok()?
                    .as_bytes()
                    .to_vec(),
            )),
            Ahead::Marshalled(_) => None,
        })
        .collect();
    Some(Shared {
        prepared: Prepared {
            bytes: sent,
            magic: compile::magic(py).to_vec(),
            compiled,
        },
        codes,
        read,
    })
}

/// Reloads the modules running `path` after a save, with what the top [`share`]d for it if
/// anything (the save as the top read it, else its bytes, instead of reading the file; its code
/// instead of compiling); returns what happened.
pub fn reload_shared(py: Python<'_>, path: &Path, scope: Scope, shared: Option<Shared>) -> Outcome {
    match shared {
        Some(Shared {
            prepared,
            codes,
            read,
        }) => {
            let saved = read
                .map(Saved::Read)
                .or_else(|| prepared.bytes.map(Saved::Bytes));
            compile::with_ahead(codes, || reload_path(py, path, scope, saved)).0
        }
        None => reload_path(py, path, scope, None),
    }
}

/// Reloads the modules running `path`, whose saved content is `saved` (else read here).
fn reload_path(py: Python<'_>, path: &Path, scope: Scope, saved: Option<Saved>) -> Outcome {
    let modules = modules::running(py, path);
    let Some(file) = modules.first().map(|m| m.file.clone()) else {
        return Outcome::default();
    };
    let saved = match saved {
        // The top read it a moment ago, and found no save in progress.
        Some(read @ Saved::Read(_)) => read,
        Some(Saved::Bytes(bytes)) => match settled(py, path, &file, bytes) {
            Ok(bytes) => Saved::Bytes(bytes),
            Err(outcome) => return outcome,
        },
        // Deleted or renamed away: the running code stays as it is.
        None => match std::fs::read(path) {
            Ok(bytes) => match settled(py, path, &file, bytes) {
                Ok(bytes) => Saved::Bytes(bytes),
                Err(outcome) => return outcome,
            },
            Err(_) => return Outcome::default(),
        },
    };
    let modules: Vec<_> = modules
        .into_iter()
        .filter(|m| scope == Scope::All || m.name != "__main__")
        .collect();
    let hash = match &saved {
        Saved::Bytes(bytes) => sources::content_hash(bytes),
        Saved::Read(read) => read.hash,
    };
    let result = if modules.is_empty() {
        compare_only(py, &file, saved)
    } else if modules.iter().all(modules::LoadedModule::is_importing) {
        // An import in progress: its code may not have run yet (it may run the text it read
        // before this save), or be running (what is still to run of the text it read would
        // run over what this save defines).
        later::after_import(path, scope);
        Ok(Outcome {
            events: vec![ReloadEvent::Importing {
                file: display_path(&file),
            }],
            ..Outcome::default()
        })
    } else {
        reload_saved(py, &modules, saved)
    };
    match result {
        Ok(mut outcome) => {
            outcome.file = Some(file);
            outcome
        }
        // One save can arrive as several events: report a rejected content once.
        Err(error) if sources::reject(&file, hash) => Outcome {
            events: vec![error],
            file: Some(file),
            ..Outcome::default()
        },
        Err(_) => Outcome {
            file: Some(file),
            ..Outcome::default()
        },
    }
}

/// `bytes` read from `path` (running as `file`), or what it holds once a save in progress is
/// waited out; `Err` with what to report when nothing is to be applied.
fn settled(py: Python<'_>, path: &Path, file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, Outcome> {
    let running_len = sources::running_len(file).unwrap_or(0);
    if !settle::in_progress(&bytes, running_len) {
        return Ok(bytes);
    }
    let Some(bytes) = py.detach(|| settle::wait_out(path, running_len)) else {
        return Err(Outcome::default());
    };
    if settle::is_blank(&bytes) && running_len > 0 {
        // Never applied: emptying a running module would delete everything it defines.
        let events = if sources::reject(file, sources::content_hash(&bytes)) {
            vec![ReloadEvent::Held {
                file: display_path(file),
                what: "is empty".into(),
            }]
        } else {
            Vec::new()
        };
        return Err(Outcome {
            events,
            file: Some(file.to_owned()),
            ..Outcome::default()
        });
    }
    Ok(bytes)
}

/// The saved text decoded, and how the running text's index becomes its index when the top
/// already worked that out from what is still running.
fn decoded(
    py: Python<'_>,
    file: &str,
    saved: Saved,
    running: &Arc<sources::Source>,
) -> Result<(String, Option<Reindexed>), ReloadEvent> {
    Ok(match saved {
        Saved::Bytes(bytes) => (decode_saved(py, file, bytes)?, None),
        Saved::Read(read) => {
            let known = read
                .reindexed
                .filter(|_| Arc::ptr_eq(&read.running, running));
            (read.text, known)
        }
    })
}

/// For a file no module is reloaded from: whether the saved text differs from the one running,
/// and whether a statement changed.
fn compare_only(py: Python<'_>, file: &str, saved: Saved) -> Result<Outcome, ReloadEvent> {
    let Some(running) = sources::get(file) else {
        decode_saved_any(py, file, saved)?;
        return Ok(Outcome {
            changed: true,
            rebinds: Rebinds::Anything,
            ..Outcome::default()
        });
    };
    let (text, known) = decoded(py, file, saved, &running)?;
    if *running.text == text {
        return Ok(Outcome::default());
    }
    let plan = known
        .unwrap_or_else(|| reindex(&running.index, &running.text, &text))
        .plan;
    Ok(Outcome {
        changed: true,
        rebinds: rebinds(&plan, &text),
        ..Outcome::default()
    })
}

/// The saved text decoded as Python does (or the error).
fn decode_saved(py: Python<'_>, file: &str, bytes: Vec<u8>) -> Result<String, ReloadEvent> {
    sources::decode(py, bytes)
        .map_err(|message| error(file, line_of_decode_error(&message), message))
}

/// Whether the saved content decodes (else the decoding error), when no running text is known
/// to compare it with.
fn decode_saved_any(py: Python<'_>, file: &str, saved: Saved) -> Result<(), ReloadEvent> {
    match saved {
        Saved::Bytes(bytes) => decode_saved(py, file, bytes).map(|_| ()),
        Saved::Read(_) => Ok(()),
    }
}

/// What the plan's new or changed statements bind.
fn rebinds(plan: &fever_core::Plan, text: &str) -> Rebinds {
    let mut names = BTreeSet::new();
    for change in &plan.changes {
        if let fever_core::Change::Statement { new } = change {
            let Some(bound) = text.get(new.span.clone()).and_then(bound_names) else {
                return Rebinds::Anything;
            };
            names.extend(bound);
        }
    }
    if names.is_empty() {
        Rebinds::Nothing
    } else {
        Rebinds::Names(names)
    }
}

/// Applies the `saved` content to `modules` (all running the same file), or returns the error
/// that rejected it with nothing changed.
fn reload_saved(
    py: Python<'_>,
    modules: &[modules::LoadedModule<'_>],
    saved: Saved,
) -> Result<Outcome, ReloadEvent> {
    let file = &modules[0].file;
    let Some(running) = sources::get(file) else {
        decode_saved_any(py, file, saved)?;
        return Err(error(
            file,
            None,
            "fever did not see this module being imported; restart to reload it".into(),
        ));
    };
    let (text, known) = decoded(py, file, saved, &running)?;
    if *running.text == text {
        return Ok(Outcome {
            recovered: sources::accept(file),
            ..Outcome::default()
        });
    }
    let reindexed = known.unwrap_or_else(|| reindex(&running.index, &running.text, &text));
    let features = reindexed.future_features(&running.index, &text);
    if reindexed.broken().is_some() {
        if let Some(event) = compile::whole_file_error(py, &features, &text, file) {
            return Err(event);
        }
    }
    let plan = &reindexed.plan;
    let mut events = Vec::new();
    for module in modules {
        events.append(&mut apply::apply(py, module, &features, &text, plan)?);
    }
    let rebinds = rebinds(plan, &text);
    let text = Arc::new(text);
    history::record(file, &running.text, &text);
    sources::advance(file, running, text, reindexed);
    Ok(Outcome {
        events,
        changed: true,
        rebinds,
        ..Outcome::default()
    })
}

/// `file` relative to the current directory when it is under it: computed only for a message
/// (a reload that goes well needs none, and a member's reload no `getcwd`).
pub(super) fn display_path(file: &str) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            Path::new(file)
                .strip_prefix(cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| file.to_owned())
}

fn line_of_decode_error(message: &str) -> Option<usize> {
    message
        .strip_prefix("line ")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// An error in `file` (named for messages here).
fn error(file: &str, line: Option<usize>, message: String) -> ReloadEvent {
    let message = message
        .strip_prefix(&format!("line {}: ", line.unwrap_or(0)))
        .map(str::to_owned)
        .unwrap_or(message);
    ReloadEvent::Error {
        file: display_path(file),
        line,
        message,
    }
}
