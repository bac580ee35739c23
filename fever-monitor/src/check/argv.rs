//! [`Argv`]: the recorded program's `sys.argv` while the check imports its modules and runs its
//! calls, so that code reading it (a profile of the process, an argument parser at import)
//! sees what it saw when recorded; the check's own `sys.argv` is back when it is dropped.

use std::path::Path;

use fever_core::check::Relocation;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// `sys.argv` as the recorded program had it: its script as given (moved with the project), or
/// for `-m module` the file `runpy` put first, which is the recorded `__main__`'s (`main_file`,
/// already relocated; nothing is imported to find it). `None` when the trace names no program,
/// or a `-m` run recorded no call of its `__main__`.
pub fn recorded(
    argv: &[String],
    main_file: Option<&Path>,
    relocation: &Relocation,
) -> Option<Vec<String>> {
    let (first, rest) = argv.split_first()?;
    let first = match first.strip_prefix("-m ") {
        Some(_) => main_file?.display().to_string(),
        None => relocation.apply(first).display().to_string(),
    };
    Some(std::iter::once(first).chain(rest.iter().cloned()).collect())
}

/// `sys.argv` replaced until dropped.
pub struct Argv<'py> {
    sys: Option<Bound<'py, PyAny>>,
    previous: Option<Bound<'py, PyAny>>,
}

impl<'py> Argv<'py> {
    /// `sys.argv` is `argv` (a new list) until the guard is dropped; nothing changes for `None`.
    pub fn enter(py: Python<'py>, argv: Option<&[String]>) -> Self {
        let unchanged = Self {
            sys: None,
            previous: None,
        };
        let (Some(argv), Ok(sys)) = (argv, py.import("sys")) else {
            return unchanged;
        };
        let previous = sys.getattr("argv").ok();
        match PyList::new(py, argv).and_then(|list| sys.setattr("argv", list)) {
            Ok(()) => Self {
                sys: Some(sys.into_any()),
                previous,
            },
            Err(_) => unchanged,
        }
    }
}

impl Drop for Argv<'_> {
    fn drop(&mut self) {
        if let (Some(sys), Some(previous)) = (&self.sys, &self.previous) {
            let _ = sys.setattr("argv", previous);
        }
    }
}
