//! `fever run` inside this interpreter: claim the monitoring tool id, start the code registry,
//! the source recorder and the file watcher, run the program, and tear down at interpreter exit
//! (after the program's non-daemon threads finished, so reloads keep reaching them).

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context};
use fever_cli::{messages, Host, RunConfig, Target, Verbosity};
use pyo3::prelude::*;

use crate::project::Project;
use crate::watcher::FileWatcher;
use crate::{functions, monitoring, runner, sources};

/// The [`Host`] that runs commands in the interpreter that loaded `fever._native`.
pub struct InProcess;

impl Host for InProcess {
    fn run(&self, config: &RunConfig) -> anyhow::Result<i32> {
        Python::attach(|py| run(py, config))
    }
}

/// What lives until the interpreter exits.
struct Session {
    watcher: Option<FileWatcher>,
    tool_id: Option<u8>,
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);

fn run(py: Python<'_>, config: &RunConfig) -> anyhow::Result<i32> {
    let root = match (&config.root, &config.target) {
        (Some(root), _) => root.clone(),
        (None, Target::Script(script)) => {
            if !script.is_file() {
                let abs = std::path::absolute(script).unwrap_or_else(|_| script.clone());
                bail!(
                    "can't open file '{}': No such file or directory",
                    abs.display()
                );
            }
            std::path::absolute(script)?
                .parent()
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
        }
        (None, Target::Module(_)) => std::env::current_dir()?,
    };
    if !root.is_dir() {
        bail!("--root {} is not a directory", root.display());
    }
    let tool_id = monitoring::claim(py).context("cannot register with sys.monitoring")?;
    if tool_id.is_none() && config.verbosity >= Verbosity::Normal {
        messages::info(
            "sys.monitoring tool ids 3 and 4 are taken by other tools; running without tracing",
        );
    }
    let watcher = if config.watch {
        let project =
            Project::new(&root).with_context(|| format!("cannot watch {}", root.display()))?;
        functions::install(py, project.clone())?;
        sources::install(py)?;
        Some(
            FileWatcher::start(project, config.verbosity)
                .with_context(|| format!("cannot watch {}", root.display()))?,
        )
    } else {
        None
    };
    *SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Session { watcher, tool_id });
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(shutdown, py)?,))?;
    Ok(runner::run(py, &config.target, &config.args)?)
}

/// Stops the watcher (joined with the GIL released) and frees the tool id; runs from `atexit`.
#[pyfunction]
fn shutdown(py: Python<'_>) -> PyResult<()> {
    let session = SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(Session { watcher, tool_id }) = session {
        py.detach(move || drop(watcher));
        if let Some(id) = tool_id {
            monitoring::release(py, id)?;
        }
    }
    Ok(())
}
