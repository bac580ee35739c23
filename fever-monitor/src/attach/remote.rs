//! A process that was not started under fever opens its control socket late: on Python 3.14+
//! `fever attach` runs a bootstrap script in it through `sys.remote_exec` (PEP 768), which
//! imports fever from the program's own environment and calls [`listen_for_attach`] on the
//! main thread. From then on the process is what `fever run --no-watch` would have made of it,
//! with the root the bootstrap chose as the project: the socket stays open (a later
//! `fever attach` connects at once, `fever ps` lists it) and costs nothing while nobody is
//! attached.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use fever_core::control::process_socket;
use fever_core::settings::{RunConfig, Target as Program, Verbosity};
use fever_core::Project;
use pyo3::prelude::*;

use super::{listen, target, OPEN};
use crate::errors::fever_error;
use crate::monitoring;
use crate::session::{self, Session};

/// Opens this process's control socket with `root` as the project, unless it has one already
/// (it runs under fever, or a bootstrap came before); returns the socket's path. Raises
/// `FeverError` when the socket cannot be opened.
#[pyfunction]
pub fn listen_for_attach(py: Python<'_>, root: PathBuf) -> PyResult<String> {
    let socket = process_socket(std::process::id()).display().to_string();
    if target().is_some() {
        return if OPEN.load(Ordering::SeqCst) {
            Ok(socket)
        } else {
            Err(fever_error(
                "this process's control socket could not be opened",
            ))
        };
    }
    let project = Project::new(&root).map_err(|err| {
        fever_error(format!(
            "cannot use {} as the project: {err}",
            root.display()
        ))
    })?;
    let orig_argv: Vec<String> = py
        .import("sys")?
        .getattr("orig_argv")?
        .extract()
        .unwrap_or_default();
    let run = this_program(py, root)?;
    let tool_id = monitoring::claim(py)?;
    session::keep(py, Session::new(None, tool_id, false))?;
    listen(py, tool_id, project, command_line(&orig_argv), &run)?
        .map_err(|err| fever_error(format!("cannot open the control socket {socket}: {err}")))?;
    Ok(socket)
}

/// How this process was started, as `fever run --no-watch` with the project at `root` would
/// have started it: its `sys.argv`.
pub(super) fn this_program(py: Python<'_>, root: PathBuf) -> PyResult<RunConfig> {
    let argv: Vec<String> = py
        .import("sys")?
        .getattr("argv")?
        .extract()
        .unwrap_or_default();
    Ok(RunConfig {
        target: Program::Script(argv.first().map(PathBuf::from).unwrap_or_default()),
        args: argv.iter().skip(1).cloned().collect(),
        watch: false,
        root: Some(root),
        python: None,
        verbosity: Verbosity::Quiet,
    })
}

/// What `fever ps` shows for a process started as `orig_argv` (`sys.orig_argv`): the
/// interpreter's file name, then its arguments.
fn command_line(orig_argv: &[String]) -> String {
    let mut words = orig_argv.iter();
    let python = words.next().map_or_else(
        || "python".into(),
        |p| {
            std::path::Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |name| name.to_string_lossy().into_owned())
        },
    );
    std::iter::once(python)
        .chain(words.cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::command_line;

    #[test]
    fn the_command_names_the_interpreter_by_its_file_name() {
        let argv = |words: &[&str]| words.iter().map(|&w| w.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&argv(&["/venv/bin/python3.14", "-u", "app.py", "8080"])),
            "python3.14 -u app.py 8080"
        );
        assert_eq!(command_line(&argv(&["python"])), "python");
        assert_eq!(command_line(&[]), "python");
    }
}
