//! Carrying out a plan on one loaded module, in two phases: first everything is compiled (a
//! syntax error anywhere applies nothing), then the changes are made in the real namespaces.
//!
//! Functions are never replaced by wrappers: a changed function's new code is assigned to
//! `__code__` of every function object running the old code (found through the code registry),
//! so dispatch tables, callbacks, bound methods and decorators' `__wrapped__` all see it.

use std::collections::{BTreeSet, HashMap};

use fever_core::source::{bound_names, synthetic};
use fever_core::{Change, Definition, Kind, Plan, Redefinition, ReloadEvent};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::compile::{find_code, is_code, shift_lines, Compiler};
use super::modules::LoadedModule;
use super::{caches, copies, loaded, running};
use crate::errors::fever_error;
use crate::{compat, functions, sources};

/// What phase one compiled for one change.
#[derive(Default)]
pub struct Compiled<'py> {
    /// The synthetic module to execute (definitions, statements).
    module: Option<Bound<'py, PyAny>>,
    /// The definition's own code object.
    code: Option<Bound<'py, PyAny>>,
    /// The synthetic module without decorators, executed to evaluate new default values.
    bare: Option<Bound<'py, PyAny>>,
}

/// Applies `plan` (which leads to `new_text`, whose `__future__` features are `features`) to
/// `module`.
/// Returns the events, or the first compile error (in which case nothing was changed).
pub fn apply(
    py: Python<'_>,
    module: &LoadedModule<'_>,
    features: &BTreeSet<String>,
    new_text: &str,
    plan: &Plan,
) -> Result<Vec<ReloadEvent>, ReloadEvent> {
    let (compiler, compiled) = compile_plan(py, &module.file, features, new_text, plan)?;
    let applier = Applier {
        py,
        module,
        text: new_text,
        replaced: std::cell::RefCell::default(),
    };
    let mut events = Vec::new();
    sources::applying(&module.file, || {
        for (change, compiled) in plan.changes.iter().zip(compiled) {
            match applier.apply(change, compiled) {
                Ok(mut applied) => events.append(&mut applied),
                Err(err) => events.push(compiler.error(&err)),
            }
        }
    });
    for (name, codes, functions) in applier.replaced.take() {
        match running::frames(py, &codes, &functions) {
            Ok(frames) if !frames.is_empty() => events.push(ReloadEvent::Running { name, frames }),
            Ok(_) => {}
            Err(err) => events.push(compiler.error(&err)),
        }
    }
    Ok(events)
}

/// Phase one: compiles every change of `plan` (which leads to `new_text` of `file`), or returns
/// the first error.
pub fn compile_plan<'py>(
    py: Python<'py>,
    file: &str,
    features: &BTreeSet<String>,
    new_text: &str,
    plan: &Plan,
) -> Result<(Compiler<'py>, Vec<Compiled<'py>>), ReloadEvent> {
    let compiler = Compiler::new(py, file, features).map_err(|e| compiler_error(py, &e, file))?;
    let compiled = plan
        .changes
        .iter()
        .map(|change| prepare(&compiler, change, new_text))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((compiler, compiled))
}

fn compiler_error(py: Python<'_>, err: &PyErr, file: &str) -> ReloadEvent {
    ReloadEvent::Error {
        file: super::display_path(file),
        line: None,
        message: err.value(py).to_string(),
    }
}

fn prepare<'py>(
    compiler: &Compiler<'py>,
    change: &Change,
    text: &str,
) -> Result<Compiled<'py>, ReloadEvent> {
    let definition = |def: &Definition| -> Result<Compiled<'py>, ReloadEvent> {
        let module = compiler.compile(&synthetic::definition_source(def, text))?;
        let code = if def.kind == Kind::Function {
            find_code(&module, def).map_err(|e| compiler.error(&e))?
        } else {
            None
        };
        Ok(Compiled {
            module: Some(module),
            code,
            bare: None,
        })
    };
    Ok(match change {
        Change::Code {
            new,
            signature_changed,
            ..
        } => {
            let mut compiled = definition(new)?;
            if *signature_changed {
                compiled.bare =
                    Some(compiler.compile(&synthetic::bare_definition_source(new, text))?);
            }
            compiled
        }
        Change::Redefine { new, .. } | Change::Added { new } => definition(new)?,
        Change::Statement { new } => Compiled {
            module: Some(compiler.compile(&synthetic::statement_source(new, text))?),
            ..Compiled::default()
        },
        Change::Moved { .. } | Change::Deleted { .. } => Compiled::default(),
    })
}

struct Applier<'a, 'py> {
    py: Python<'py>,
    module: &'a LoadedModule<'py>,
    /// The saved text.
    text: &'a str,
    /// Changed functions to look for in running frames once every change is made (looking runs
    /// Python code, which could let another thread run between two changes of one save):
    /// qualified name, old code objects, function objects.
    replaced: std::cell::RefCell<Vec<Replaced<'py>>>,
}

type Replaced<'py> = (String, Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>);

/// Whether a swapped function's cached results still hold: the same code moved keeps them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Results {
    Kept,
    Stale,
}

impl<'py> Applier<'_, 'py> {
    fn name(&self, def: &Definition) -> String {
        format!("{}.{}", self.module.name, def.qualname)
    }

    fn apply(&self, change: &Change, compiled: Compiled<'py>) -> PyResult<Vec<ReloadEvent>> {
        match change {
            Change::Code { old, new, .. } => self.code_changed(old, new, compiled),
            Change::Moved { old, new } => {
                let delta = i64::try_from(new.start_line).unwrap_or(0)
                    - i64::try_from(old.start_line).unwrap_or(0);
                for code in self.running_codes(old)? {
                    let shifted = shift_lines(&code, delta)?;
                    self.swap(&code, &shifted, Results::Kept)?;
                }
                Ok(vec![ReloadEvent::Moved {
                    name: self.name(new),
                    line: new.start_line,
                }])
            }
            Change::Redefine { old, new, why } => {
                let old_codes = self.running_codes(old)?;
                let module_code = compiled.module.expect("compiled in phase one");
                let before = self.top_level_values([new.name.as_str()], &new.parents)?;
                self.define(new, &module_code)?;
                if let Some(code) = &compiled.code {
                    for old_code in &old_codes {
                        // Old references (not rebound by the definition) run the new body too.
                        let _ = self.swap(old_code, code, Results::Stale);
                    }
                }
                let note = match why {
                    Redefinition::Decorators => "decorators changed: definition re-executed",
                    Redefinition::ClassHeader => {
                        "class header changed: new class object; existing instances keep the old class"
                    }
                    Redefinition::ClassShape => {
                        "fields changed: new class object; existing instances keep the old class"
                    }
                };
                let mut events = vec![ReloadEvent::Redefined {
                    name: self.name(new),
                    note: note.into(),
                }];
                events.append(&mut copies::update(self.py, self.module, &before)?);
                Ok(events)
            }
            Change::Added { new } => {
                self.define(new, &compiled.module.expect("compiled in phase one"))?;
                Ok(vec![ReloadEvent::Added {
                    name: self.name(new),
                }])
            }
            Change::Deleted { old } => self.delete(old),
            Change::Statement { new } => {
                self.statement(new, &compiled.module.expect("compiled in phase one"))
            }
        }
    }

    /// Removes a definition the saved file no longer has, unless other code of the module
    /// still refers to it by name (then it stays, and fever says so).
    fn delete(&self, old: &Definition) -> PyResult<Vec<ReloadEvent>> {
        let container = self.container(old)?;
        let exists = container.getattr("__dict__")?.contains(&old.name)?;
        if !exists {
            return Ok(Vec::new());
        }
        if old.parents.is_empty() {
            if let Some(user) = self.user_of(old)? {
                return Ok(vec![self.skipped(
                    old,
                    &format!(
                        "{} is gone from the file, but {user}() still uses it; it stays",
                        old.name
                    ),
                )]);
            }
            self.module.namespace()?.del_item(&old.name)?;
        } else {
            container.delattr(old.name.as_str())?;
        }
        Ok(vec![ReloadEvent::Deleted {
            name: self.name(old),
        }])
    }

    /// A function of the module (other than `def` itself) whose code names `def`.
    fn user_of(&self, def: &Definition) -> PyResult<Option<String>> {
        let own = format!("{}.", def.qualname);
        for code in functions::codes_in(self.py, &self.module.file) {
            let qualname = qualname_of(&code)?;
            let qualname = qualname.to_str()?;
            if qualname == def.qualname || qualname.starts_with(&own) || qualname == "<module>" {
                continue;
            }
            let names = code.getattr(pyo3::intern!(self.py, "co_names"))?;
            if names.contains(def.name.as_str())? {
                return Ok(Some(qualname.to_owned()));
            }
        }
        Ok(None)
    }

    /// The values module-level `names` have now (nothing for a definition inside a class).
    fn top_level_values<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        parents: &[(String, usize)],
    ) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        if !parents.is_empty() {
            return Ok(Vec::new());
        }
        let globals = self.module.namespace()?;
        let mut values = Vec::new();
        for name in names {
            if let Some(value) = globals.get_item(name)? {
                values.push((name.to_owned(), value));
            }
        }
        Ok(values)
    }

    fn code_changed(
        &self,
        old: &Definition,
        new: &Definition,
        compiled: Compiled<'py>,
    ) -> PyResult<Vec<ReloadEvent>> {
        let module_code = compiled.module.expect("compiled in phase one");
        let Some(code) = compiled.code else {
            return Err(fever_error(format!(
                "no code for {} in the saved file",
                new.qualname
            )));
        };
        let old_codes = self.running_codes(old)?;
        if old_codes.is_empty() {
            // Never executed (e.g. defined after the script's main loop): define it now.
            self.define(new, &module_code)?;
            return Ok(vec![ReloadEvent::Reloaded {
                name: self.name(new),
                note: Some("defined now".into()),
            }]);
        }
        let defaults = match &compiled.bare {
            Some(bare) => Some(self.fresh_function(new, bare)?),
            None => None,
        };
        let mut notes = Vec::new();
        let mut changed = Vec::new();
        for old_code in &old_codes {
            let functions = self.functions_running(old_code, old)?;
            changed.extend(functions.iter().cloned());
            if !same_freevars(old_code, &code)? {
                // The function needs other cells: rebuild it and rebind the references to it.
                let rebuilt = self.define(new, &module_code)?;
                let rebound = self.rebind(&functions, &rebuilt)?;
                notes.push(format!(
                    "free variables changed: function rebuilt, {rebound} references rebound"
                ));
                continue;
            }
            notes.extend(self.swap(old_code, &code, Results::Stale)?);
            if let Some(fresh) = &defaults {
                for function in &functions {
                    for attr in ["__defaults__", "__kwdefaults__"] {
                        function.setattr(attr, fresh.getattr(attr)?)?;
                    }
                    compat::annotations::copy(fresh, function)?;
                }
            }
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let events = vec![ReloadEvent::Reloaded {
            name: self.name(new),
            note,
        }];
        self.replaced
            .borrow_mut()
            .push((new.qualname.clone(), old_codes, changed));
        Ok(events)
    }

    /// Assigns `new` to every function running `old`, and pairs their nested code objects (closures,
    /// lambdas, generators) by name to do the same for them. Returns notes on closures that could
    /// not be updated. `results` says whether the functions' cached results (`functools`
    /// caches) are those of the new code too.
    fn swap(
        &self,
        old: &Bound<'py, PyAny>,
        new: &Bound<'py, PyAny>,
        results: Results,
    ) -> PyResult<Vec<String>> {
        let py = self.py;
        let mut notes = Vec::new();
        let functions = functions::functions_of(py, old);
        // All of them in one guard; their caches are cleared after (that may run Python code,
        // whose own code changes are not fever's).
        let mut swapped = 0;
        let assigned = functions::assigning(&self.module.file, || {
            for function in &functions {
                function.setattr(pyo3::intern!(py, "__code__"), new)?;
                swapped += 1;
            }
            PyResult::Ok(())
        });
        if results == Results::Stale {
            for function in &functions[..swapped] {
                if caches::clear_wrappers(function)? > 0 {
                    notes.push("its functools cache was cleared".to_owned());
                }
            }
        }
        assigned?;
        let mut new_nested: HashMap<String, Vec<Bound<'py, PyAny>>> = HashMap::new();
        for constant in new.getattr(pyo3::intern!(py, "co_consts"))?.try_iter()? {
            let constant = constant?;
            if is_code(&constant) {
                new_nested
                    .entry(qualname_of(&constant)?.to_str()?.to_owned())
                    .or_default()
                    .push(constant);
            }
        }
        for value in new_nested.values_mut() {
            value.reverse();
        }
        for constant in old.getattr(pyo3::intern!(py, "co_consts"))?.try_iter()? {
            let old_nested = constant?;
            if !is_code(&old_nested) {
                continue;
            }
            let qualname = qualname_of(&old_nested)?.to_str()?.to_owned();
            let Some(new_code) = new_nested.get_mut(&qualname).and_then(Vec::pop) else {
                continue;
            };
            if same_freevars(&old_nested, &new_code)? {
                notes.extend(self.swap(&old_nested, &new_code, results)?);
            } else if !functions::functions_of(self.py, &old_nested).is_empty() {
                notes.push(format!("closure {qualname}: free variables changed; existing closures keep their old code"));
            }
        }
        Ok(notes)
    }

    /// Code objects running `def` now: from the registry (matched by qualified name and first
    /// line), else from the object its namespace holds.
    fn running_codes(&self, def: &Definition) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut codes = Vec::new();
        // Looked up by first line in the registry: a file's other code objects are not touched.
        for code in functions::codes_at(self.py, &self.module.file, def.start_line) {
            if qualname_of(&code)?.to_str()? == def.qualname {
                codes.push(code);
            }
        }
        if codes.is_empty() {
            if let Ok(container) = self.container(def) {
                if let Ok(object) = container.getattr("__dict__")?.get_item(&def.name) {
                    for function in unwrap_functions(&object)? {
                        let code = function.getattr("__code__")?;
                        if qualname_of(&code)?.to_str()? == def.qualname {
                            codes.push(code);
                        }
                    }
                }
            }
        }
        Ok(codes)
    }

    /// Functions running `code` (registry, plus the namespace's object when the registry has none).
    fn functions_running(
        &self,
        code: &Bound<'py, PyAny>,
        def: &Definition,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let functions = functions::functions_of(self.py, code);
        if !functions.is_empty() {
            return Ok(functions);
        }
        let container = self.container(def)?;
        let object = container.getattr("__dict__")?.get_item(&def.name)?;
        Ok(unwrap_functions(&object)?
            .into_iter()
            .filter(|f| f.getattr("__code__").is_ok_and(|c| c.is(code)))
            .collect())
    }

    /// The module or class whose namespace holds `def`.
    fn container(&self, def: &Definition) -> PyResult<Bound<'py, PyAny>> {
        let mut object = self.module.module.clone();
        for (name, _) in &def.parents {
            object = object.getattr(name.as_str())?;
        }
        Ok(object)
    }

    /// Executes a definition's synthetic module in the real namespace (for a method: in a scratch
    /// class, then set on the real class with its `__class__` cell pointed at the real class).
    /// Returns the new object.
    fn define(
        &self,
        def: &Definition,
        module_code: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let globals = self.module.namespace()?;
        if def.parents.is_empty() {
            self.exec(module_code, &globals, None)?;
            return globals.as_any().get_item(&def.name);
        }
        let scratch = PyDict::new(self.py);
        self.exec(module_code, &globals, Some(&scratch))?;
        let mut synthetic = scratch.as_any().get_item(&def.parents[0].0)?;
        for (name, _) in &def.parents[1..] {
            synthetic = synthetic.getattr(name.as_str())?;
        }
        let object = synthetic.getattr("__dict__")?.get_item(&def.name)?;
        let real = self.container(def)?;
        for function in unwrap_functions(&object)? {
            point_class_cell(&function, &real)?;
        }
        real.setattr(def.name.as_str(), &object)?;
        Ok(object)
    }

    /// The function a bare (undecorated) definition creates, for its new default values.
    fn fresh_function(
        &self,
        def: &Definition,
        bare: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let globals = self.module.namespace()?;
        // A method's defaults may name class attributes: evaluate them in a copy of the class
        // namespace, as the class body did.
        let scratch = PyDict::new(self.py);
        if !def.parents.is_empty() {
            scratch.call_method1("update", (self.container(def)?.getattr("__dict__")?,))?;
        }
        self.exec(bare, &globals, Some(&scratch))?;
        scratch.as_any().get_item(&def.name)
    }

    fn statement(&self, def: &Definition, code: &Bound<'py, PyAny>) -> PyResult<Vec<ReloadEvent>> {
        let summary = summarize(def.text(self.text));
        let executed = ReloadEvent::Executed {
            module: self.module.name.clone(),
            line: def.start_line,
            summary,
        };
        if def.is_main_guard {
            if self.module.name == "__main__" {
                return Ok(vec![self.skipped(
                    def,
                    "the `if __name__ == \"__main__\"` block ran once; restart to run it again",
                )]);
            }
            return Ok(Vec::new());
        }
        let globals = self.module.namespace()?;
        if def.parents.is_empty() {
            let safe = def.assigns || def.keyword == "import" || def.keyword == "from";
            if self.module.name == "__main__" && !safe {
                return Ok(vec![self.skipped(
                    def,
                    "top-level code of the running script is not run again",
                )]);
            }
            let bound = bound_names(def.text(self.text)).unwrap_or_default();
            let before = self.top_level_values(bound.iter().map(String::as_str), &def.parents)?;
            self.exec(code, &globals, None)?;
            let mut events = vec![executed];
            events.append(&mut copies::update(self.py, self.module, &before)?);
            return Ok(events);
        }
        let class = self.container(def)?;
        let before = PyDict::new(self.py);
        before.call_method1("update", (class.getattr("__dict__")?,))?;
        let namespace = before.copy()?;
        self.exec(code, &globals, Some(&namespace))?;
        for (key, value) in namespace.iter() {
            let unchanged = before.get_item(&key)?.is_some_and(|old| old.is(&value));
            if !unchanged {
                class.setattr(key.cast::<pyo3::types::PyString>()?, value)?;
            }
        }
        Ok(vec![executed])
    }

    fn skipped(&self, def: &Definition, reason: &str) -> ReloadEvent {
        ReloadEvent::Skipped {
            module: self.module.name.clone(),
            line: def.start_line,
            reason: reason.into(),
        }
    }

    fn exec(
        &self,
        code: &Bound<'py, PyAny>,
        globals: &Bound<'py, PyDict>,
        locals: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<()> {
        let exec = loaded::module(self.py, "builtins")?.getattr("exec")?;
        match locals {
            Some(locals) => exec.call1((code, globals, locals))?,
            None => exec.call1((code, globals))?,
        };
        Ok(())
    }

    /// Replaces references to `old` functions in dicts and lists (found with `gc.get_referrers`,
    /// the last resort) by the function inside `new`. Returns how many references changed.
    fn rebind(&self, old: &[Bound<'py, PyAny>], new: &Bound<'py, PyAny>) -> PyResult<usize> {
        let replacement = unwrap_functions(new)?
            .into_iter()
            .next()
            .unwrap_or_else(|| new.clone());
        let get_referrers = loaded::module(self.py, "gc")?.getattr("get_referrers")?;
        let mut count = 0;
        for function in old {
            for referrer in get_referrers.call1((function,))?.try_iter()? {
                let referrer = referrer?;
                if let Ok(dict) = referrer.cast::<PyDict>() {
                    for (key, value) in dict.copy()?.iter() {
                        if value.is(function) {
                            dict.set_item(key, &replacement)?;
                            count += 1;
                        }
                    }
                } else if let Ok(list) = referrer.cast::<PyList>() {
                    for i in 0..list.len() {
                        if list.get_item(i)?.is(function) {
                            list.set_item(i, &replacement)?;
                            count += 1;
                        }
                    }
                }
            }
        }
        Ok(count)
    }
}

/// The functions inside what a namespace holds: a function, a staticmethod/classmethod's
/// `__func__`, a property's accessors, and `__wrapped__` chains.
fn unwrap_functions<'py>(object: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut found = Vec::new();
    let mut pending = vec![object.clone()];
    while let Some(item) = pending.pop() {
        if item.is_none() || found.len() > 32 {
            continue;
        }
        if item.is_instance_of::<pyo3::types::PyFunction>() {
            if let Ok(wrapped) = item.getattr("__wrapped__") {
                pending.push(wrapped);
            }
            found.push(item);
        } else if item.is_instance_of::<pyo3::types::PyType>() {
            // A class is not unwrapped: its methods are definitions of their own.
        } else if let Ok(function) = item.getattr("__func__") {
            pending.push(function);
        } else if item.hasattr("fget")? {
            for accessor in ["fget", "fset", "fdel"] {
                pending.push(item.getattr(accessor)?);
            }
        }
    }
    Ok(found)
}

/// Points a method's `__class__` cell (zero-argument `super()`) at `class`.
fn point_class_cell(function: &Bound<'_, PyAny>, class: &Bound<'_, PyAny>) -> PyResult<()> {
    let freevars: Vec<String> = function
        .getattr("__code__")?
        .getattr("co_freevars")?
        .extract()?;
    if let Some(index) = freevars.iter().position(|name| name == "__class__") {
        function
            .getattr("__closure__")?
            .get_item(index)?
            .setattr("cell_contents", class)?;
    }
    Ok(())
}

/// A code object's `co_qualname`.
fn qualname_of<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    Ok(code
        .getattr(pyo3::intern!(code.py(), "co_qualname"))?
        .cast_into::<PyString>()?)
}

/// Do `a` and `b` (code objects) have the same free variables, in the same order? Their
/// `co_freevars`, tuples of `str`, are compared as they are (equal exactly when the names are),
/// not copied out.
fn same_freevars(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    let name = pyo3::intern!(a.py(), "co_freevars");
    a.getattr(name)?.eq(b.getattr(name)?)
}

fn summarize(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default().trim();
    if first.chars().count() > 60 {
        format!("{}...", first.chars().take(57).collect::<String>())
    } else {
        first.to_owned()
    }
}
