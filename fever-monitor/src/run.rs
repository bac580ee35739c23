//! `fever run` and `fever record` inside this interpreter: claim the monitoring tool id, start
//! the recording, the code registry, the source recorder and the file watcher, open the control
//! socket `fever attach` talks to, and run the program (the session then lives until the
//! interpreter exits: `session.rs`).

use std::path::Path;

use anyhow::{bail, Context};
use fever_core::notice::{Notice, Without};
use fever_core::settings::{RecordConfig, RunConfig, Verbosity};
use fever_core::Project;
use pyo3::prelude::*;

use crate::session::{self, Session};
use crate::watcher::FileWatcher;
use crate::{functions, monitoring, notices, profile_only, runner, sources};

/// Runs the program of `config` under fever (recording it for `record`), the project being
/// `root`; returns its exit code.
pub fn run(
    py: Python<'_>,
    config: &RunConfig,
    record: Option<&RecordConfig>,
    root: &Path,
) -> anyhow::Result<i32> {
    let tool_id = monitoring::claim(py).context("cannot register with sys.monitoring")?;
    if tool_id.is_none() {
        if record.is_some() {
            bail!("cannot record: sys.monitoring tool ids 3 and 4 are taken by other tools");
        }
        if config.verbosity >= Verbosity::Normal {
            notices::emit(&Notice::NoToolId {
                without: Without::Tracing,
            });
        }
    }
    let (recording, profiling) = match (record, tool_id) {
        (Some(record), Some(id)) if record.profile_only => {
            (None, Some(profile_only::start(py, record, root, id)?))
        }
        (Some(record), Some(id)) => (Some(session::start_recording(py, record, root, id)?), None),
        _ => (None, None),
    };
    let watcher = if config.watch {
        let project =
            Project::new(root).with_context(|| format!("cannot watch {}", root.display()))?;
        functions::install(py, project.clone())?;
        sources::install(py, project.clone())?;
        let watcher = FileWatcher::start(project, config.verbosity, None)
            .with_context(|| format!("cannot watch {}", root.display()))?;
        crate::family::top::hook_spawn(py)?;
        Some(watcher)
    } else {
        crate::attach::child::hook_spawn(py, root)?;
        None
    };
    let session = Session::new(watcher, tool_id, false);
    session::keep(
        py,
        match (recording, profiling) {
            (Some(recording), _) => session.with_recording(recording),
            (None, Some(profiling)) => session.with_profile(profiling),
            (None, None) => session,
        },
    )?;
    let command = if record.is_some() { "record" } else { "run" };
    crate::attach::open(py, tool_id, root, command, config)?;
    let ended = runner::run_once(py, &config.target, &config.args)?;
    if ended == runner::Ended::Interrupted {
        // Ctrl-C: no child of the program is left behind.
        py.detach(crate::family::top::end_all);
    }
    Ok(ended.code())
}
