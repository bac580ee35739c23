//! The CLI's [`Host`] in this interpreter: the commands that need Python run here, in the
//! interpreter that loaded `fever._native`, with the project root the CLI's config resolved;
//! the engine's notices are put into the CLI's words. The one module of the engine that knows
//! the CLI (besides `lib.rs`, which exposes the CLI's `main`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use fever_cli::{
    messages, project_root, CheckConfig, CheckPolicy, Checks, Debugger, Host, RecordConfig,
    RunConfig, ServeConfig, WatchConfig,
};
use fever_core::check::{Case, Checked, Unselected};
use fever_core::trace::TraceReader;
use pyo3::prelude::*;

use crate::check::{self, checker::Checker};
use crate::notices;

/// The [`Host`] that runs commands in the interpreter that loaded `fever._native`.
pub struct InProcess(());

impl InProcess {
    /// The host; from now on the engine's notices reach the user in the CLI's words.
    pub fn with_notices() -> Self {
        notices::install(messages::notice);
        Self(())
    }
}

impl Host for InProcess {
    fn run(&self, config: &RunConfig) -> anyhow::Result<i32> {
        Python::attach(|py| {
            this_python(py, config.python.as_deref())?;
            crate::run::run(py, config, None, &project_root(config)?)
        })
    }

    fn record(&self, config: &RecordConfig) -> anyhow::Result<i32> {
        Python::attach(|py| {
            this_python(py, config.run.python.as_deref())?;
            crate::run::run(py, &config.run, Some(config), &project_root(&config.run)?)
        })
    }

    fn watch(&self, config: &WatchConfig) -> anyhow::Result<i32> {
        Python::attach(|py| {
            this_python(py, config.run.python.as_deref())?;
            crate::watch::run(py, config, &project_root(&config.run)?)
        })
    }

    fn check(&self, config: &CheckConfig, policy: CheckPolicy<'_>) -> anyhow::Result<i32> {
        Python::attach(|py| {
            this_python(py, config.python.as_deref())?;
            match check::command::open(py, config)? {
                Some(checker) => policy(Some(&mut InterpreterChecks { py, checker })),
                None => policy(None),
            }
        })
    }

    fn serve(&self, config: &ServeConfig) -> anyhow::Result<i32> {
        Python::attach(|py| {
            let root = project_root(&config.record.run)?;
            crate::replay::serve(
                py,
                &config.record,
                &config.control,
                config.keep.clone(),
                config.post_mortem.map(Debugger::name),
                &root,
            )
        })
    }

    fn python(&self, _requested: Option<&Path>) -> anyhow::Result<PathBuf> {
        // This interpreter has fever installed: it runs the program side too.
        Python::attach(|py| -> PyResult<PathBuf> {
            py.import("sys")?.getattr("executable")?.extract()
        })
        .map_err(Into::into)
    }
}

/// `fever check`'s calls, checked in this interpreter.
struct InterpreterChecks<'py> {
    py: Python<'py>,
    checker: Checker,
}

impl Checks for InterpreterChecks<'_> {
    fn cases(&self) -> &[Case] {
        self.checker.cases()
    }

    fn unselected(&self) -> &BTreeMap<Unselected, usize> {
        self.checker.unselected()
    }

    fn reader(&self) -> &TraceReader {
        self.checker.reader()
    }

    fn check(&mut self, index: usize) -> anyhow::Result<Option<Checked>> {
        match self.checker.check(self.py, index) {
            Ok(checked) => Ok(Some(checked)),
            Err(err) if check::command::is_interrupt(self.py, &err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

/// Commands run in the interpreter that loaded fever: `--python` cannot choose another one.
/// Naming this interpreter is fine; another one is an error (`FEVER_PYTHON`, set for the
/// standalone binary, only a warning).
fn this_python(py: Python<'_>, python: Option<&Path>) -> anyhow::Result<()> {
    let Some(wanted) = python else {
        return Ok(());
    };
    let executable: PathBuf = py.import("sys")?.getattr("executable")?.extract()?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(wanted, &executable) {
        return Ok(());
    }
    let from_env = std::env::var_os("FEVER_PYTHON").is_some_and(|v| wanted.as_os_str() == v);
    let what = if from_env {
        format!("FEVER_PYTHON={}", wanted.display())
    } else {
        format!("--python {}", wanted.display())
    };
    let message = format!(
        "{what} has no effect: this fever is installed in {} and runs there",
        executable.display()
    );
    if from_env {
        messages::warning(&message);
        return Ok(());
    }
    bail!(
        "{message}\nhint: run `{} -m fever ...` (with fever installed there), or the standalone \
         fever binary, which starts the interpreter --python names",
        wanted.display()
    )
}
