//! [`Checker`]: one trace being replayed, shared by `fever check` and the pytest plugin. It
//! holds the trace, its selected calls and the imported modules, and checks one call at a
//! time: rebuild the arguments, find the function, call it, judge the outcome (fever-core).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};
use fever_core::check::{self, judge, Case, Options, Outcome, RecordedLimits, Relocation, Verdict};
use fever_core::snapshot::{decode, Value};
use fever_core::trace::TraceReader;
use pyo3::prelude::*;
use pyo3::types::{PyFunction, PyType};

use super::imports::Modules;
use super::invoke;
use crate::rebuild;
use crate::snapshot::SnapshotLimits;

/// `co_flags` of generators, coroutines and async generators (`CO_GENERATOR`, `CO_COROUTINE`,
/// `CO_ITERABLE_COROUTINE`, `CO_ASYNC_GENERATOR`).
const SUSPENDABLE: u32 = 0x20 | 0x80 | 0x100 | 0x200;

/// The codes of `reader` that are class bodies (the code a `class` statement runs): their names
/// lead to a class. This imports the trace's modules.
fn class_bodies(
    py: Python<'_>,
    reader: &TraceReader,
    modules: &mut Modules,
) -> PyResult<HashSet<u32>> {
    let mut found = HashSet::new();
    for code in reader.codes() {
        if code.qualname.contains('<') {
            continue;
        }
        if let Ok(object) = modules.function(py, &code.module, &code.qualname)? {
            if object.is_instance_of::<PyType>() {
                found.insert(code.id);
            }
        }
    }
    Ok(found)
}

/// One trace being replayed.
pub struct Checker {
    reader: TraceReader,
    cases: Vec<Case>,
    rel_tol: f64,
    limits: SnapshotLimits,
    modules: Modules,
}

/// What checking one call found.
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// What the call did now, when it ran.
    pub now: Option<Outcome>,
}

impl Checker {
    /// Reads and validates the trace at `path` (a trace whose recording did not finish is
    /// refused), imports its modules and selects its calls.
    /// The project is looked for at `root` (`--root`), else where it was recorded, else in the
    /// current directory.
    pub fn open(
        py: Python<'_>,
        path: &Path,
        options: &Options,
        rel_tol: f64,
        root: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let reader = TraceReader::open(path)
            .with_context(|| format!("cannot read trace {}", path.display()))?;
        if let Some(incomplete) = reader.incomplete() {
            // A regression test needs every recorded call: a cut trace could pass by omission.
            bail!(
                "cannot check {}: {incomplete}; record it again",
                path.display()
            );
        }
        let relocation = Relocation::choose(&reader.header().root, root, &std::env::current_dir()?);
        let mut modules = Modules::new(py, &reader, &relocation)?;
        let options = Options {
            class_bodies: class_bodies(py, &reader, &mut modules)?,
            ..options.clone()
        };
        let mut cases = check::select(&reader, &options)?;
        for case in &mut cases {
            // Reports name the files as they are now.
            case.code.file = relocation.apply(&case.code.file).display().to_string();
        }
        let recorded = RecordedLimits::of(reader.header());
        let defaults = SnapshotLimits::default();
        let limits = SnapshotLimits {
            max_depth: recorded.depth.unwrap_or(defaults.max_depth),
            max_items: recorded.items.unwrap_or(defaults.max_items),
            max_str_bytes: recorded.string_bytes.unwrap_or(defaults.max_str_bytes),
            ..defaults
        };
        Ok(Self {
            reader,
            cases,
            rel_tol,
            limits,
            modules,
        })
    }

    /// The trace.
    pub fn reader(&self) -> &TraceReader {
        &self.reader
    }

    /// The selected calls.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// Checks call `index` of [`cases`](Self::cases). Err only for a `KeyboardInterrupt`.
    pub fn check(&mut self, py: Python<'_>, index: usize) -> PyResult<Checked> {
        let skipped = |reason: String| Checked {
            verdict: Verdict::Skipped(reason),
            now: None,
        };
        let Some(case) = self.cases.get(index) else {
            return Ok(skipped(format!("no call number {index}")));
        };
        if let Some(reason) = &case.skip {
            return Ok(skipped(reason.clone()));
        }
        let Some(Ok(Value::Args(args))) = case.args.as_deref().map(decode) else {
            return Ok(skipped("its argument snapshot is corrupt".into()));
        };
        let function = match self
            .modules
            .function(py, &case.code.module, &case.code.qualname)?
        {
            Ok(function) if function.is_instance_of::<PyFunction>() => function,
            Ok(other) => {
                let kind = other
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string());
                return Ok(skipped(format!(
                    "{} is a {kind} now, not a function",
                    case.name()
                )));
            }
            Err(reason) => return Ok(skipped(reason)),
        };
        let code = function.getattr("__code__")?;
        let flags: u32 = code.getattr("co_flags")?.extract()?;
        if flags & SUSPENDABLE != 0 {
            // Calling it would only create the generator or coroutine object.
            return Ok(skipped(format!(
                "{} is a generator or coroutine now",
                case.name()
            )));
        }
        let positional: usize = code.getattr("co_argcount")?.extract()?;
        let (args, kwargs) = match rebuild::arguments(py, &args, positional, &mut self.modules) {
            Ok(built) => built,
            Err(reason) => return Ok(skipped(format!("cannot rebuild its arguments: {reason}"))),
        };
        let now = invoke::call(py, &function, &args, &kwargs, &self.limits)?;
        Ok(Checked {
            verdict: judge(case, &now, self.rel_tol),
            now: Some(now),
        })
    }
}
