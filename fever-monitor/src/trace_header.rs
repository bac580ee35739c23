//! The header of a trace that `fever record` (or `--profile-only`, or `fever attach --record`)
//! writes: the interpreter, the command line, the project root, the start time and the
//! recording's settings.

use fever_core::settings::{RecordConfig, RecordedProcess, Target};
use fever_core::trace::TraceHeader;
use fever_core::Project;
use pyo3::prelude::*;

use crate::engine::clock;

/// The header of a trace of `record` (the program about to run), the project being `project`.
pub fn of(py: Python<'_>, record: &RecordConfig, project: &Project) -> PyResult<TraceHeader> {
    let sys = py.import("sys")?;
    let mut argv = vec![match &record.run.target {
        Target::Script(path) => path.display().to_string(),
        Target::Module(name) => format!("-m {name}"),
    }];
    argv.extend(record.run.args.iter().cloned());
    let main_thread = main_thread_ident(py, &sys)?;
    Ok(TraceHeader {
        python_version: sys.getattr("version")?.extract()?,
        fever_version: env!("CARGO_PKG_VERSION").to_owned(),
        root: project.canonical_root().display().to_string(),
        argv,
        pid: std::process::id(),
        started_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        started_monotonic_ns: clock::monotonic_ns(),
        options: record.header_options(&RecordedProcess {
            main_thread,
            clock: clock::source().into(),
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        }),
    })
}

/// The ident of the program's main thread, without importing `threading` when the program has
/// not imported it yet: that import is ~4.6 M instructions, paid by every recorded process.
fn main_thread_ident(py: Python<'_>, sys: &Bound<'_, PyModule>) -> PyResult<u64> {
    let threading = sys.getattr("modules")?.get_item("threading").ok();
    if threading.is_none() {
        // 3.13+: what `threading.main_thread().ident` is made of.
        if let Ok(ident) = py.import("_thread")?.call_method0("_get_main_thread_ident") {
            return ident.extract();
        }
    }
    let threading = match threading {
        Some(module) => module,
        None => py.import("threading")?.into_any(),
    };
    threading
        .call_method0("main_thread")?
        .getattr("ident")?
        .extract()
}
