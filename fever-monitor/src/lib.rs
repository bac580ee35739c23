//! `fever._native`: the extension module behind the `fever` command.
//!
//! - [`host`]: the CLI's host in this interpreter: the commands that need Python start here.
//! - [`session`]: `fever run` in this interpreter, and what lives until the interpreter exits.
//! - [`attach`]: the control socket every process fever runs opens (or, on Python 3.14+, a
//!   process `fever attach` loads fever into), and `fever attach`'s profiler.
//! - [`watch`]: `fever watch`, the develop loop (run, wait for a save, run again).
//! - [`cache`]: `fever watch`'s call cache (trampolines, monitoring, stored results).
//! - [`check`]: `fever check` and the pytest plugin's `CheckSession`: replaying a trace.
//! - [`replay`]: `fever replay`'s program side: a warm program re-running segments in forks.
//! - [`runner`]: runs a script or module exactly as `python` would.
//! - [`watcher`]: the file-watcher thread that turns saves into reloads.
//! - [`family`]: child processes (fork, spawn, forkserver) join the top process, which sends
//!   them each save.
//! - [`watched`]: which directories it watches: those of the project's modules that ran.
//! - [`reload`]: the reload engine (plan from fever-core, applied in the real namespaces).
//! - [`functions`]: the live code registry fed by `CPython`'s function watcher.
//! - [`sources`]: the text each project module is running.
//! - [`monitoring`]: fever's sys.monitoring tool id.
//! - [`engine`]: the one monitoring engine: sys.monitoring callbacks and the consumers that
//!   subscribe to them (the tracer, the cache's bookkeeping, replay's checkpoints).
//! - [`tracer`]: `fever record`'s engine consumer, live ring and trace writer.
//! - [`snapshot`]: argument and return-value snapshots of Python objects.
//! - [`code_object`]: facts about code objects (parameters, content hash).
//! - [`rebuild`]: Python objects rebuilt from snapshots.
//! - [`notices`]: how the engine speaks: typed notices to the sink the CLI installed.
//! - [`signals`]: fever's threads never take the program's signals.
//! - [`errors`]: `FeverError`, the exception fever raises into Python.
//! - [`compat`]: everything that differs between Python versions (C-API declarations pyo3-ffi
//!   lacks, reading strings, sys.monitoring changes, code that is never a user call).

mod attach;
mod cache;
mod check;
mod code_object;
mod compat;
mod engine;
mod errors;
mod family;
mod functions;
mod host;
mod module_code;
mod monitoring;
mod notices;
mod profile_only;
mod profiler;
mod rebuild;
mod reload;
mod replay;
mod run;
mod runner;
mod session;
mod signals;
mod snapshot;
mod sources;
mod trace_header;
mod tracer;
mod watch;
mod watched;
mod watcher;

use pyo3::prelude::*;

/// For `benches/snapshot_cost.rs`, which measures it; not an API.
#[doc(hidden)]
pub use snapshot::snapshot_args;

/// Runs the fever command line with `argv` (`argv[0]` is the program name); returns the exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| fever_cli::main(argv, &host::InProcess::with_notices()))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    engine::clock::mark();
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(cli_main, module)?)?;
    module.add_function(wrap_pyfunction!(family::member::join_family, module)?)?;
    module.add_function(wrap_pyfunction!(family::top::family_pids, module)?)?;
    module.add_function(wrap_pyfunction!(attach::listen_for_attach, module)?)?;
    module.add_function(wrap_pyfunction!(attach::listen_as_child, module)?)?;
    module.add_class::<check::py::CheckSession>()?;
    module.add("FeverError", module.py().get_type::<errors::FeverError>())?;
    Ok(())
}
