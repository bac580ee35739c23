//! `fever record --profile-only`: `fever attach`'s profiler (`profiler.rs`, counting in
//! the callbacks) armed for the whole run, and at exit its counts written as a trace with the
//! codes, the run statistics and one profile record (`fever_core::analysis::profile`), and no
//! events. A forked child is not profiled (its counts would land in the parent's region).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use fever_core::analysis::profile::{Profile, Row, RECORD_PROFILE};
use fever_core::notice::Notice;
use fever_core::settings::{RecordConfig, Verbosity};
use fever_core::trace::{CodeCalls, RunStats, TraceHeader, TraceWriter};
use fever_core::Project;
use pyo3::prelude::*;

use crate::engine::{self, Slot};
use crate::profiler::Profiler;
use crate::{notices, trace_header};

/// A run being profiled.
pub struct ProfileRun {
    output: PathBuf,
    header: TraceHeader,
    verbosity: Verbosity,
}

/// Arms the profiler for the program about to run, the project being `root`.
pub fn start(
    py: Python<'_>,
    record: &RecordConfig,
    root: &Path,
    tool_id: u8,
) -> anyhow::Result<ProfileRun> {
    let project = Project::new(root).with_context(|| format!("cannot read {}", root.display()))?;
    let header = trace_header::of(py, record, &project)?;
    let path = std::env::temp_dir().join(format!(".fever-profile-{}", std::process::id()));
    let profiler = Profiler::create(&path, Arc::new(Mutex::new(Vec::new())))
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Mapped: the name is not needed.
    let _ = std::fs::remove_file(&path);
    engine::arm(py, tool_id, &project, Slot::Profiler, Box::new(profiler))
        .context("cannot turn profiling on")?;
    Ok(ProfileRun {
        // Absolute, so the trace lands where asked after the program changed directory.
        output: std::path::absolute(&record.output).unwrap_or_else(|_| record.output.clone()),
        header,
        verbosity: record.run.verbosity,
    })
}

/// In a forked child: the profiler stops (it would count into the parent's region).
pub fn stop_in_child(py: Python<'_>) -> PyResult<()> {
    engine::disarm::<Profiler>(py, Slot::Profiler).map(drop)
}

/// Disarms the profiler and writes the trace; prints the summary line (or why it failed).
pub fn finish(py: Python<'_>, run: ProfileRun) -> PyResult<()> {
    let Some(profiler) = engine::disarm::<Profiler>(py, Slot::Profiler)? else {
        notices::emit(&Notice::TracerBusyAtExit);
        return Ok(());
    };
    match py.detach(|| write(&run, &profiler)) {
        Ok((calls, functions, bytes)) => {
            if run.verbosity >= Verbosity::Normal {
                notices::emit(&Notice::Recorded {
                    calls,
                    functions,
                    path: run.output,
                    bytes,
                });
            }
        }
        Err(err) => notices::emit(&Notice::RecordingFailed {
            error: format!("{err:#}"),
        }),
    }
    Ok(())
}

/// Writes the trace of `profiler`'s counts; returns the calls, the functions called and the
/// trace's size.
fn write(run: &ProfileRun, profiler: &Profiler) -> anyhow::Result<(u64, usize, u64)> {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let ns = |ticks: u64| (ticks as f64 * profiler.ns_per_tick()) as u64;
    let mut writer = TraceWriter::create_atomic(&run.output, &run.header)
        .with_context(|| format!("cannot write {}", run.output.display()))?;
    let mut rows = Vec::new();
    for (code, counters) in profiler.counted() {
        writer.add_code(code.clone())?;
        rows.push(Row {
            code: code.id,
            calls: counters.calls,
            recorded: counters.calls,
            total_ns: ns(counters.total_ticks),
            self_ns: ns(counters.self_ticks),
        });
    }
    let profile = Profile::counted(rows);
    let calls = profile.rows.iter().map(|row| row.calls).sum();
    let mut counted: Vec<CodeCalls> = profile
        .rows
        .iter()
        .map(|row| CodeCalls {
            code: row.code,
            calls: row.calls,
            recorded: row.calls,
        })
        .collect();
    counted.sort_by_key(|c| c.code);
    writer.write_stats(&RunStats {
        calls: counted,
        lost_events: 0,
    })?;
    writer.write_record(RECORD_PROFILE, &profile.encode())?;
    let path = writer.commit()?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    Ok((calls, profile.rows.len(), bytes))
}
