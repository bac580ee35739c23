//! Does an import still go on in this process? A module in `sys.modules` whose
//! `__spec__._initializing` is set is being imported while a thread runs its code or the import
//! system on its way to it. A child of `os.fork()` copies that flag of every import in progress
//! in its parent, but only the thread that forked, so an import can never end there: another
//! thread of the parent ran it, or the forking thread did and the child never goes back to it
//! (a `multiprocessing` process runs its target under `BaseProcess._bootstrap`, which ends the
//! process with `os._exit`). Such a module counts as imported: a save applies to it at once.
//! A child of `os.fork()` at a module's top level does run the rest of that import.
//!
//! Where an import goes on: a thread's live frames (from the one running now to the first
//! process bootstrap, below which nothing runs again) hold a `<module>` frame of the file or a
//! frame of the import system (an import whose code has not started yet). Any other import in
//! progress makes the answer "still importing" too: never wrong, only later.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrame, PyString};

use super::{loaded, running};

/// What a frame runs, as far as an import is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// A module's top level (`<module>`), of this file.
    Module(String),
    /// The import system (`importlib._bootstrap`, `importlib._bootstrap_external`).
    Import,
    /// A process's start (`BaseProcess._bootstrap`): the frames below it never run again.
    ProcessStart,
    Other,
}

/// Do `frames` (a thread's stack, innermost first) go on with the import of `file`?
fn imports(frames: impl IntoIterator<Item = Frame>, file: &str) -> bool {
    for frame in frames {
        match frame {
            Frame::ProcessStart => return false,
            Frame::Import => return true,
            Frame::Module(f) if f == file => return true,
            Frame::Module(_) | Frame::Other => {}
        }
    }
    false
}

/// Does some thread of this process go on with the import of the module whose code file is
/// `file` (its `co_filename`)? Yes when the stacks cannot be read.
pub fn goes_on(py: Python<'_>, file: &str) -> bool {
    stacks_import(py, file).unwrap_or(true)
}

fn stacks_import(py: Python<'_>, file: &str) -> PyResult<bool> {
    let current = loaded::sys_attr(py, c"_current_frames")?.call0()?;
    for top in current.cast::<PyDict>()?.values() {
        let Ok(top) = top.cast_into::<PyFrame>() else {
            continue;
        };
        let mut frames = Vec::new();
        let mut frame = Some(top);
        while let Some(f) = frame {
            let kind = kind_of(&running::code_of(&f))?;
            let last = matches!(kind, Frame::ProcessStart | Frame::Import);
            frames.push(kind);
            if last {
                break;
            }
            frame = running::back_of(&f);
        }
        if imports(frames, file) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn kind_of(code: &Bound<'_, PyAny>) -> PyResult<Frame> {
    let py = code.py();
    let filename = code.getattr(pyo3::intern!(py, "co_filename"))?;
    let filename = filename.cast::<PyString>()?.to_str()?;
    if filename.starts_with("<frozen importlib._bootstrap") {
        return Ok(Frame::Import);
    }
    let qualname = code.getattr(pyo3::intern!(py, "co_qualname"))?;
    Ok(match qualname.cast::<PyString>()?.to_str()? {
        "<module>" => Frame::Module(filename.to_owned()),
        "BaseProcess._bootstrap" => Frame::ProcessStart,
        _ => Frame::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(file: &str) -> Frame {
        Frame::Module(file.into())
    }

    #[test]
    fn the_thread_running_the_module_s_code_goes_on_with_its_import() {
        let stack = [
            Frame::Other,
            module("/p/work.py"),
            Frame::Import,
            module("/p/app.py"),
        ];
        assert!(imports(stack, "/p/work.py"));
    }

    #[test]
    fn a_thread_in_the_import_system_may_be_on_its_way_to_the_module_s_code() {
        assert!(imports([Frame::Other, Frame::Import], "/p/work.py"));
    }

    #[test]
    fn a_process_started_inside_the_import_never_goes_back_to_it() {
        let stack = [
            Frame::Other,
            Frame::ProcessStart,
            Frame::Other,
            module("/p/work.py"),
            Frame::Import,
        ];
        assert!(!imports(stack, "/p/work.py"));
    }

    #[test]
    fn a_thread_running_other_code_does_not_import_the_module() {
        assert!(!imports([Frame::Other, module("/p/app.py")], "/p/work.py"));
        assert!(!imports([], "/p/work.py"));
    }
}
