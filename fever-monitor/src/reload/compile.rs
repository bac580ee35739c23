//! Compiling one definition or statement of a saved file so that its code objects look exactly as
//! if the whole file had been compiled: real file name, real line numbers and enclosing classes
//! (the synthetic sources fever-core's [`synthetic`](fever_core::source::synthetic) builds), and
//! the module's `__future__` flags; code-object surgery (line shifts).
//!
//! A definition is compiled alone and its code objects moved to its real lines afterwards, so a
//! definition at the end of a big file costs what it costs at the top. Python's messages name
//! the lines they are about: when compiling alone fails or warns (a `SyntaxWarning`, say), the
//! definition is compiled again at its real lines, padded, and that compile's error or warnings
//! are what the user sees.
//! Code compiled ahead (the top process compiles a save once for its family, see
//! [`with_ahead`]) is taken instead of compiling again.

use std::cell::RefCell;
use std::collections::HashMap;

use std::collections::BTreeSet;

use fever_core::source::synthetic::Synthetic;
use fever_core::{Definition, ReloadEvent};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use xxhash_rust::xxh3::Xxh3;

use super::loaded;

/// A code object compiled ahead: as this process compiled it, or marshalled by another.
pub enum Ahead {
    Code(Py<PyAny>),
    Marshalled(Vec<u8>),
}

/// Code compiled ahead, by [`key`].
pub type AheadCodes = HashMap<u128, Ahead>;

thread_local! {
    /// Installed by [`with_ahead`] on the thread that reloads.
    static AHEAD: RefCell<Option<AheadCodes>> = const { RefCell::new(None) };
}

/// Runs `f` with `codes` compiled ahead: every compile on this thread meanwhile takes its code
/// from them when it compiles the same thing, and adds what it compiled. Returns `f`'s result
/// and the codes after (the top sends what it compiled to its family, then reloads itself with
/// the same codes).
pub fn with_ahead<R>(codes: AheadCodes, f: impl FnOnce() -> R) -> (R, AheadCodes) {
    let previous = AHEAD.replace(Some(codes));
    let result = f();
    let codes = AHEAD.replace(previous).unwrap_or_default();
    (result, codes)
}

/// This interpreter's bytecode magic number (`importlib.util.MAGIC_NUMBER`, from the C API: a
/// forked child asks at its first save, where importing `importlib.util` would cost most of
/// that save): code marshalled by a process with another one is not loaded.
pub fn magic(py: Python<'_>) -> &'static [u8] {
    static MAGIC: pyo3::sync::PyOnceLock<Vec<u8>> = pyo3::sync::PyOnceLock::new();
    MAGIC.get_or_init(py, || {
        // SAFETY: the GIL is held. The magic's two bytes, then `\r\n`, as a little-endian
        // number; -1 with an error set when the import machinery is broken.
        let token = unsafe { pyo3::ffi::PyImport_GetMagicNumber() };
        if let Ok(token) = u32::try_from(token) {
            token.to_le_bytes().to_vec()
        } else {
            let _ = PyErr::take(py);
            Vec::new()
        }
    })
}

/// What identifies a compile: the file, the flags, the first line and the source.
fn key(file: &str, flags: i64, first_line: usize, source: &str) -> u128 {
    let mut h = Xxh3::new();
    h.update(&(file.len() as u64).to_le_bytes());
    h.update(file.as_bytes());
    h.update(&flags.to_le_bytes());
    h.update(&(first_line as u64).to_le_bytes());
    h.update(source.as_bytes());
    h.digest128()
}

/// The code compiled ahead under `key`, if any (a marshalled one is loaded once).
fn take_ahead(py: Python<'_>, key: u128) -> Option<Bound<'_, PyAny>> {
    AHEAD.with_borrow_mut(|codes| {
        let entry = codes.as_mut()?.get_mut(&key)?;
        if let Ahead::Marshalled(bytes) = entry {
            let code = pyo3::marshal::loads(py, bytes).ok().filter(is_code)?;
            *entry = Ahead::Code(code.unbind());
        }
        match entry {
            Ahead::Code(code) => Some(code.bind(py).clone()),
            Ahead::Marshalled(_) => None,
        }
    })
}

/// Keeps what this thread compiled, when codes compiled ahead are installed.
fn keep_ahead(key: u128, code: &Bound<'_, PyAny>) {
    AHEAD.with_borrow_mut(|codes| {
        if let Some(codes) = codes.as_mut() {
            codes.insert(key, Ahead::Code(code.clone().unbind()));
        }
    });
}

/// Compiles synthetic sources for one file.
pub struct Compiler<'py> {
    py: Python<'py>,
    file: String,
    flags: i64,
    /// Looked up at the first compile: a save whose code was all compiled ahead (a member's)
    /// needs none of it.
    tools: std::cell::OnceCell<Tools<'py>>,
}

/// What compiling calls: `compile`, and `warnings.filters` with the filter put first in it while
/// compiling alone (any warning becomes an error there, so that the padded compile gives it at
/// the right line).
struct Tools<'py> {
    compile: Bound<'py, PyAny>,
    filters: Option<(Bound<'py, PyList>, Bound<'py, PyTuple>)>,
}

impl<'py> Tools<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let compile = loaded::module(py, "builtins")?.getattr("compile")?;
        let filters = loaded::module(py, "warnings")
            .and_then(|w| w.getattr("filters"))
            .ok()
            .and_then(|f| f.cast_into::<PyList>().ok())
            .map(|filters| -> PyResult<_> {
                let warning = py.get_type::<pyo3::exceptions::PyWarning>();
                let strict = ("error", py.None(), warning, py.None(), 0).into_pyobject(py)?;
                Ok((filters, strict))
            })
            .transpose()?;
        Ok(Tools { compile, filters })
    }
}

impl<'py> Compiler<'py> {
    /// `features` are the saved file's `__future__` features: `annotations` applies to every
    /// part.
    pub fn new(py: Python<'py>, file: &str, features: &BTreeSet<String>) -> PyResult<Self> {
        let flags = if features.contains("annotations") {
            loaded::module(py, "__future__")?
                .getattr("annotations")?
                .getattr("compiler_flag")?
                .extract()?
        } else {
            0
        };
        Ok(Compiler {
            py,
            file: file.to_owned(),
            flags,
            tools: std::cell::OnceCell::new(),
        })
    }

    fn tools(&self) -> PyResult<&Tools<'py>> {
        if let Some(tools) = self.tools.get() {
            return Ok(tools);
        }
        let tools = Tools::new(self.py)?;
        Ok(self.tools.get_or_init(|| tools))
    }

    /// Compiles `source` as module code of this file, at its real lines; a failure becomes an
    /// error event.
    /// Code compiled ahead for the same source is taken instead.
    pub fn compile(&self, source: &Synthetic) -> Result<Bound<'py, PyAny>, ReloadEvent> {
        let key = key(&self.file, self.flags, source.first_line, &source.text);
        if let Some(code) = take_ahead(self.py, key) {
            return Ok(code);
        }
        let code = self.compile_at_lines(source)?;
        keep_ahead(key, &code);
        Ok(code)
    }

    fn compile_at_lines(&self, source: &Synthetic) -> Result<Bound<'py, PyAny>, ReloadEvent> {
        let offset = i64::try_from(source.line_offset()).unwrap_or(0);
        if offset > 0 {
            if let Some(code) = self.compile_alone(&source.text) {
                return shift_lines(&code, offset).map_err(|e| self.error(&e));
            }
        }
        self.compile_text(&source.padded())
    }

    /// `text` compiled as it is, when that neither raises nor warns.
    fn compile_alone(&self, text: &str) -> Option<Bound<'py, PyAny>> {
        let (filters, strict) = self.tools().ok()?.filters.as_ref()?;
        filters.insert(0, strict).ok()?;
        let code = self.call_compile(text);
        // Found by identity: the compile runs no Python code, but a warning's filter could.
        if let Some(at) = filters.iter().position(|filter| filter.is(strict)) {
            let _ = filters.del_item(at);
        }
        code.ok()
    }

    /// Compiles `text` as module code of this file; a failure becomes an error event.
    pub fn compile_text(&self, text: &str) -> Result<Bound<'py, PyAny>, ReloadEvent> {
        self.call_compile(text).map_err(|e| self.error(&e))
    }

    fn call_compile(&self, text: &str) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(self.py);
        kwargs.set_item("flags", self.flags)?;
        kwargs.set_item("dont_inherit", true)?;
        let compile = &self.tools()?.compile;
        crate::sources::own_compile(|| compile.call((text, &self.file, "exec"), Some(&kwargs)))
    }

    /// The error event for `err` raised by compiling or running code of this file.
    pub fn error(&self, err: &PyErr) -> ReloadEvent {
        error_event(self.py, err, &self.file)
    }
}

/// The code object of `def` inside a compiled synthetic module.
pub fn find_code<'py>(
    module_code: &Bound<'py, PyAny>,
    def: &Definition,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut code = module_code.clone();
    for name in def
        .parents
        .iter()
        .map(|(n, _)| n.as_str())
        .chain([def.name.as_str()])
    {
        match child_code(&code, name)? {
            Some(child) => code = child,
            None => return Ok(None),
        }
    }
    Ok(Some(code))
}

fn child_code<'py>(code: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    for constant in code.getattr("co_consts")?.try_iter()? {
        let constant = constant?;
        if is_code(&constant) && constant.getattr("co_name")?.extract::<String>()? == name {
            return Ok(Some(constant));
        }
    }
    Ok(None)
}

pub fn is_code(object: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a Bound is a live object and proves the GIL is held.
    unsafe { pyo3::ffi::PyCode_Check(object.as_ptr()) != 0 }
}

/// A copy of `code` (and of its nested code objects) with line numbers moved by `delta`.
pub fn shift_lines<'py>(code: &Bound<'py, PyAny>, delta: i64) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let consts = code
        .getattr("co_consts")?
        .try_iter()?
        .map(|c| {
            let c = c?;
            if is_code(&c) {
                shift_lines(&c, delta)
            } else {
                Ok(c)
            }
        })
        .collect::<PyResult<Vec<_>>>()?;
    let first: i64 = code.getattr("co_firstlineno")?.extract()?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("co_firstlineno", (first + delta).max(1))?;
    kwargs.set_item("co_consts", PyTuple::new(py, consts)?)?;
    code.call_method("replace", (), Some(&kwargs))
}

/// When the index saw broken structure: Python's own message for the whole file, or `None` when
/// the file compiles after all.
pub fn whole_file_error(
    py: Python<'_>,
    features: &BTreeSet<String>,
    text: &str,
    file: &str,
) -> Option<ReloadEvent> {
    let compiler = Compiler::new(py, file, features).ok()?;
    compiler.compile_text(text).err()
}

/// `FILE:LINE: Type: message` for an exception from compiling or running code of `file`: the line
/// of a `SyntaxError`, or of the innermost traceback frame in the file.
pub fn error_event(py: Python<'_>, err: &PyErr, file: &str) -> ReloadEvent {
    let value = err.value(py);
    let type_name = value
        .get_type()
        .name()
        .map_or_else(|_| "Exception".into(), |n| n.to_string());
    let is_syntax = err.is_instance_of::<pyo3::exceptions::PySyntaxError>(py);
    let (line, message) = if is_syntax {
        let line = value
            .getattr("lineno")
            .ok()
            .and_then(|l| l.extract::<usize>().ok());
        let msg = value
            .getattr("msg")
            .ok()
            .and_then(|m| m.extract::<String>().ok())
            .unwrap_or_default();
        (line, msg)
    } else {
        (
            traceback_line(py, err, file),
            value.str().map(|s| s.to_string()).unwrap_or_default(),
        )
    };
    let message = if message.is_empty() {
        type_name
    } else {
        format!("{type_name}: {message}")
    };
    ReloadEvent::Error {
        file: super::display_path(file),
        line,
        message,
    }
}

fn traceback_line(py: Python<'_>, err: &PyErr, file: &str) -> Option<usize> {
    let mut tb = err.traceback(py).map(Bound::into_any);
    let mut line = None;
    while let Some(entry) = tb.filter(|t| !t.is_none()) {
        let frame_file: Option<String> = entry
            .getattr("tb_frame")
            .and_then(|f| f.getattr("f_code")?.getattr("co_filename")?.extract())
            .ok();
        if frame_file.as_deref() == Some(file) {
            line = entry.getattr("tb_lineno").and_then(|l| l.extract()).ok();
        }
        tb = entry.getattr("tb_next").ok();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_is_importlibs() {
        Python::initialize();
        Python::attach(|py| {
            let expected: Vec<u8> = py
                .import("importlib.util")
                .unwrap()
                .getattr("MAGIC_NUMBER")
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(magic(py), expected.as_slice());
        });
    }

    fn marshalled(py: Python<'_>, codes: &AheadCodes) -> AheadCodes {
        codes
            .iter()
            .map(|(key, code)| {
                let Ahead::Code(code) = code else {
                    panic!("compiled here")
                };
                let bytes = pyo3::marshal::dumps(code.bind(py), pyo3::marshal::VERSION).unwrap();
                (*key, Ahead::Marshalled(bytes.as_bytes().to_vec()))
            })
            .collect()
    }

    #[test]
    fn code_compiled_ahead_is_taken_for_the_same_compile_only() {
        Python::initialize();
        Python::attach(|py| {
            let source = |text: &str| Synthetic {
                text: text.to_owned(),
                first_line: 1,
            };
            let text = &source("def f():\n    return 1\n");
            let features = BTreeSet::new();
            let compiler = Compiler::new(py, "/p/app.py", &features).unwrap();
            let (first, codes) = with_ahead(AheadCodes::new(), || compiler.compile(text).unwrap());
            assert_eq!(codes.len(), 1);
            let received = marshalled(py, &codes);
            // The same source: the same code object; another: compiled, and kept too.
            let ((again, other), codes) = with_ahead(codes, || {
                (
                    compiler.compile(text).unwrap(),
                    compiler.compile(&source("x = 3\n")).unwrap(),
                )
            });
            assert!(again.is(&first));
            assert!(!other.is(&first));
            assert_eq!(codes.len(), 2);
            // Received marshalled (as a member does): an equal code object.
            let (loaded, _) = with_ahead(received, || compiler.compile(text).unwrap());
            assert!(!loaded.is(&first));
            assert!(loaded.eq(&first).unwrap());
            // Another file, or bytes that are no code: compiled here.
            let elsewhere = Compiler::new(py, "/p/other.py", &features).unwrap();
            let key = key("/p/app.py", 0, 1, &text.text);
            let garbage = AheadCodes::from([(key, Ahead::Marshalled(b"\xff\x00".to_vec()))]);
            let ((theirs, mine), _) = with_ahead(garbage, || {
                (
                    elsewhere.compile(text).unwrap(),
                    compiler.compile(text).unwrap(),
                )
            });
            let file: String = theirs.getattr("co_filename").unwrap().extract().unwrap();
            assert_eq!(file, "/p/other.py");
            assert!(is_code(&mine) && mine.eq(&first).unwrap());
            // Outside `with_ahead`, nothing is kept.
            assert!(!compiler.compile(text).unwrap().is(&first));
        });
    }

    #[test]
    fn a_compiler_whose_code_all_comes_ahead_looks_nothing_up() {
        Python::initialize();
        Python::attach(|py| {
            let text = &Synthetic {
                text: "def f():\n    return 1\n".to_owned(),
                first_line: 1,
            };
            let features = BTreeSet::new();
            let top = Compiler::new(py, "/p/app.py", &features).unwrap();
            let (_, codes) = with_ahead(AheadCodes::new(), || top.compile(text).unwrap());
            assert!(top.tools.get().is_some());
            // A member's: the code is received, so `compile` and the warning filters are not
            // looked up; the first real compile looks them up.
            let member = Compiler::new(py, "/p/app.py", &features).unwrap();
            let (code, _) = with_ahead(marshalled(py, &codes), || member.compile(text).unwrap());
            assert!(is_code(&code));
            assert!(member.tools.get().is_none());
            let (other, _) = with_ahead(marshalled(py, &codes), || {
                member
                    .compile(&Synthetic {
                        text: "x = 3\n".to_owned(),
                        first_line: 1,
                    })
                    .unwrap()
            });
            assert!(is_code(&other));
            assert!(member.tools.get().is_some());
        });
    }
}
