//! [`Checker`]: one trace being replayed, shared by `fever check` and the pytest plugin. It
//! holds the trace, its selected calls and the imported modules, and checks one call at a
//! time: rebuild the arguments, find the function, call it (within `--timeout`, twice with
//! `--twice`), judge the outcome (fever-core). A call that differs from its recording after
//! it reached a source of nondeterminism ([`sources`](super::sources)), or whose two runs
//! differ, is skipped as nondeterministic, naming the source.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use std::collections::BTreeMap;

use fever_core::check::{
    self, differs_in_string_order, equal_iterators, failure_without_result, holds_string_set,
    judge, judge_yields, patched_result, same_outcome, Case, Checked, FirstWalk, Options, Outcome,
    Relocation, Unselected, Verdict,
};
use fever_core::settings::{is_profile_only, recorded_cwd};
use fever_core::snapshot::{decode, Value};
use fever_core::trace::TraceReader;
use pyo3::prelude::*;
use pyo3::types::{PyFunction, PyType};

use super::argv::{self, Argv};
use super::caller::Caller;
use super::imports::Modules;
use super::invoke::{self, Called, Conditions, Stepped};
use super::sources::Sources;
use super::state::State;
use crate::rebuild;
use crate::snapshot::SnapshotLimits;

/// `co_flags` of generators, coroutines and async generators (`CO_GENERATOR`, `CO_COROUTINE`,
/// `CO_ITERABLE_COROUTINE`, `CO_ASYNC_GENERATOR`).
const SUSPENDABLE: u32 = 0x20 | 0x80 | 0x100 | 0x200;
/// `CO_GENERATOR`.
const GENERATOR: u32 = 0x20;

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

/// The codes of `reader` that share their name with others (found by its `first` walk), each
/// with the function living now that it is (one taking the arguments its calls were given), by
/// that function's address.
fn live_functions(
    py: Python<'_>,
    reader: &TraceReader,
    first: &FirstWalk,
    modules: &mut Modules,
) -> PyResult<HashMap<u32, u64>> {
    let mut live = HashMap::new();
    for (id, arguments) in first.shared_arguments() {
        let Some(code) = reader.code(id) else {
            continue;
        };
        let names: Vec<&str> = arguments.iter().map(String::as_str).collect();
        if let Ok(function) = modules.function_of(py, code, &names)? {
            if rebuild::takes(&function, &code.qualname, arguments) {
                live.insert(id, function.as_ptr() as u64);
            }
        }
    }
    Ok(live)
}

/// The functions (those found by name) of the codes `ids` (the calls a call was made from).
fn callers<'py>(
    py: Python<'py>,
    reader: &TraceReader,
    modules: &mut Modules,
    ids: &[u32],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut found = Vec::new();
    for code in ids.iter().filter_map(|id| reader.code(*id)) {
        if code.qualname.contains('<') {
            continue;
        }
        if let Ok(function) = modules.function(py, &code.module, &code.qualname)? {
            found.push(function);
        }
    }
    Ok(found)
}

/// One generator call to step through: `steps` values taken from it.
struct Step<'a, 'py> {
    function: &'a Bound<'py, PyAny>,
    recorded: &'a fever_core::snapshot::Fields,
    signature: &'a rebuild::Signature<'py>,
    conditions: Conditions<'a>,
    steps: usize,
}

/// What a generator yielded, how it ended (if it did), and the sources of nondeterminism it
/// reached.
type Yielded = (Vec<Vec<u8>>, Option<Outcome>, Vec<String>);

impl Step<'_, '_> {
    /// Rebuilds the arguments, calls and steps; `None` when the arguments cannot be rebuilt
    /// or the time limit passed.
    fn run(
        &self,
        py: Python<'_>,
        modules: &mut Modules,
        sources: &Sources,
    ) -> PyResult<Option<Yielded>> {
        let Ok((args, kwargs)) = rebuild::arguments(
            py,
            self.recorded,
            self.signature,
            modules,
            self.conditions.limits,
        ) else {
            return Ok(None);
        };
        sources.reset(py, &self.function.getattr("__code__")?)?;
        let stepped = invoke::call_generator(
            py,
            self.function,
            &args,
            &kwargs,
            self.conditions,
            self.steps,
        )?;
        let reached = sources.reached(py)?;
        Ok(match stepped {
            Stepped::Finished(yielded, end) => Some((yielded, end, reached)),
            Stepped::TimedOut => None,
        })
    }
}

/// Why a call whose result differs only by `what` depends on string hashes is skipped.
fn hash_randomized(what: &str) -> String {
    format!(
        "nondeterministic: {what}; hashes of strings change from process to process (hash \
         randomization: a fixed PYTHONHASHSEED when recording and checking avoids it)"
    )
}

/// Why a call whose arguments hold a set of strings, and whose result differs, is skipped.
const STRING_SET: &str = "its arguments hold a set of strings, which iterates in another order";

/// Why a call that differs is skipped when its arguments hold two equal iterators (`None` if
/// they do not): the recording may have passed one iterator twice, and the rebuilt arguments
/// hold two.
fn shared_iterator(case: &Case) -> Option<String> {
    let class = case.args.as_deref().and_then(equal_iterators)?;
    Some(format!(
        "its arguments hold equal {class} objects, which may have been one iterator when \
         recorded (a snapshot keeps values, not which objects were the same)"
    ))
}

/// The failure of a call that ran past its time limit.
fn timed_out(case: &Case, seconds: f64) -> String {
    failure_without_result(
        case,
        &format!("timed out after {seconds} s (raise the limit with --timeout)"),
    )
}

/// Whether `case` raised a `Warning` in the recording: the warning filters then made warnings
/// errors (pytest's `-W error`, `filterwarnings = error`), and the check does the same.
fn raised_a_warning(py: Python<'_>, case: &Case, modules: &mut Modules) -> bool {
    let Some(Outcome::Raised(bytes)) = &case.expected else {
        return false;
    };
    let Ok(Value::Exception(exception)) = decode(bytes) else {
        return false;
    };
    let Ok(class) = rebuild::Lookup::lookup(modules, py, &exception.module, &exception.qualname)
    else {
        return false;
    };
    let warning = py.get_type::<pyo3::exceptions::PyWarning>();
    class
        .cast_into::<PyType>()
        .is_ok_and(|class| class.is_subclass(&warning).unwrap_or(false))
}

/// How calls are re-invoked and compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// `--rel-tol`.
    pub rel_tol: f64,
    /// `--timeout`, seconds per call; `None`: no limit.
    pub timeout: Option<f64>,
    /// `--twice`: run each call twice, skip it when the two runs differ.
    pub twice: bool,
}

/// One trace being replayed.
pub struct Checker {
    reader: TraceReader,
    cases: Vec<Case>,
    unselected: BTreeMap<Unselected, usize>,
    settings: Settings,
    limits: SnapshotLimits,
    modules: Modules,
    sources: Sources,
    caller: Caller,
    state: State,
    /// The recorded working directory, where the project is now (if it exists).
    cwd: Option<PathBuf>,
    /// The recorded program's `sys.argv`, if known.
    argv: Option<Vec<String>>,
    /// String hashes, so the iteration order of sets of strings, change from process to
    /// process (no fixed `PYTHONHASHSEED`).
    random_hashes: bool,
}

/// The working directory changed for a while: back where it was when dropped.
struct WorkingDir(Option<PathBuf>);

impl WorkingDir {
    fn enter(dir: Option<&Path>) -> Self {
        let Some(dir) = dir else {
            return Self(None);
        };
        let previous = std::env::current_dir().ok();
        match std::env::set_current_dir(dir) {
            Ok(()) => Self(previous),
            Err(_) => Self(None),
        }
    }
}

impl Drop for WorkingDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::env::set_current_dir(dir);
        }
    }
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
        settings: Settings,
        root: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let reader = TraceReader::open(path)
            .with_context(|| format!("cannot read trace {}", path.display()))?;
        if is_profile_only(reader.header()) {
            bail!(
                "cannot check {}: it was recorded with `fever record --profile-only`, which \
                 keeps no calls to run again; record it without --profile-only",
                path.display()
            );
        }
        if let Some(incomplete) = reader.incomplete() {
            // A regression test needs every recorded call: a cut trace could pass by omission.
            bail!(
                "cannot check {}: {incomplete}; record it again",
                path.display()
            );
        }
        let relocation = Relocation::choose(&reader.header().root, root, &std::env::current_dir()?);
        // Before the project is imported, so its `from random import choice` is watched too.
        let sources = Sources::load(py)?;
        let cwd = recorded_cwd(reader.header())
            .map(|dir| relocation.apply(dir))
            .filter(|dir| dir.is_dir());
        let _cwd = WorkingDir::enter(cwd.as_deref());
        let mut modules = Modules::new(py, &reader, &relocation)?;
        let main_file = modules
            .main_file()
            .map(Path::to_path_buf)
            .or_else(|| argv::module_file(py, &reader.header().argv));
        let argv = argv::recorded(&reader.header().argv, main_file.as_deref(), &relocation);
        let _argv = Argv::enter(py, argv.as_deref());
        let first_walk = FirstWalk::of(&reader)?;
        let options = Options {
            class_bodies: class_bodies(py, &reader, &mut modules)?,
            live: live_functions(py, &reader, &first_walk, &mut modules)?,
            first_walk: Some(first_walk),
            ..options.clone()
        };
        let check::Selection {
            mut cases,
            unselected,
        } = check::select(&reader, &options)?;
        for case in &mut cases {
            // Reports name the files as they are now.
            case.code.file = relocation.apply(&case.code.file).display().to_string();
        }
        let limits = SnapshotLimits::recorded(reader.header());
        Ok(Self {
            reader,
            cases,
            unselected,
            settings,
            limits,
            modules,
            sources,
            caller: Caller::load(py)?,
            state: State::load(py)?,
            cwd,
            argv,
            random_hashes: std::env::var("PYTHONHASHSEED").map_or(true, |seed| seed == "random")
                && py
                    .import("sys")?
                    .getattr("flags")?
                    .getattr("hash_randomization")?
                    .is_truthy()?,
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

    /// How many recorded calls were not selected, by reason.
    pub fn unselected(&self) -> &BTreeMap<Unselected, usize> {
        &self.unselected
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
        let _cwd = WorkingDir::enter(self.cwd.as_deref());
        let _argv = Argv::enter(py, self.argv.as_deref());
        let Some(Ok(Value::Args(recorded))) = case.args.as_deref().map(decode) else {
            return Ok(skipped("its argument snapshot is corrupt".into()));
        };
        let names: Vec<&str> = recorded.entries.iter().map(|(n, _)| n.as_str()).collect();
        let function = match self.modules.function_of(py, &case.code, &names)? {
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
            // Its module imported when recorded and raises now: the code is broken.
            Err(reason) if self.modules.is_broken(&case.code.module) => {
                return Ok(Checked {
                    verdict: Verdict::Failed(failure_without_result(case, &reason)),
                    now: None,
                })
            }
            Err(reason) => return Ok(skipped(reason)),
        };
        let code = function.getattr("__code__")?;
        let flags: u32 = code.getattr("co_flags")?.extract()?;
        let generator = flags & SUSPENDABLE == GENERATOR;
        if flags & SUSPENDABLE != 0 && !generator {
            // Calling it would only create the coroutine object.
            return Ok(skipped(format!(
                "{} is a coroutine or async generator (not checked)",
                case.name()
            )));
        }
        if generator != case.yields.is_some() && case.expected.is_none() {
            return Ok(skipped(format!(
                "{} was {}a generator when recorded",
                case.name(),
                if generator { "not " } else { "" }
            )));
        }
        let Ok(signature) = rebuild::Signature::of(&function) else {
            return Ok(skipped(format!(
                "{} has a signature fever cannot read",
                case.name()
            )));
        };
        let (args, kwargs) =
            match rebuild::arguments(py, &recorded, &signature, &mut self.modules, &self.limits) {
                Ok(built) => built,
                Err(reason) => {
                    return Ok(skipped(format!("cannot rebuild its arguments: {reason}")))
                }
            };
        let timeout = self.settings.timeout;
        let conditions = Conditions {
            limits: &self.limits,
            timeout,
            warnings_as_errors: raised_a_warning(py, case, &mut self.modules),
        };
        if generator {
            drop((args, kwargs));
            let step = Step {
                function: &function,
                recorded: &recorded,
                signature: &signature,
                conditions,
                steps: case.yields.as_ref().map_or(0, Vec::len)
                    + usize::from(case.expected.is_some()),
            };
            let Some((yielded, end, reached)) = step.run(py, &mut self.modules, &self.sources)?
            else {
                return Ok(Checked {
                    verdict: Verdict::Failed(timed_out(case, timeout.unwrap_or_default())),
                    now: None,
                });
            };
            let mut verdict = judge_yields(case, &yielded, end.as_ref(), self.settings.rel_tol);
            if matches!(verdict, Verdict::Failed(_)) && !reached.is_empty() {
                verdict = Verdict::Skipped(format!(
                    "nondeterministic: it used {} and what it yields differs",
                    reached.join(", ")
                ));
            }
            if let (Verdict::Failed(_), Some(reason)) = (&verdict, shared_iterator(case)) {
                verdict = Verdict::Skipped(reason);
            }
            if matches!(verdict, Verdict::Failed(_))
                && self.random_hashes
                && case.args.as_deref().is_some_and(holds_string_set)
            {
                verdict = Verdict::Skipped(hash_randomized(STRING_SET));
            }
            if matches!(verdict, Verdict::Failed(_)) {
                let callers = callers(py, &self.reader, &mut self.modules, &case.callers)?;
                if let Some(reason) = self.state.explain(py, &function, None, &callers)? {
                    verdict = Verdict::Skipped(reason);
                }
            }
            if self.settings.twice && !matches!(verdict, Verdict::Skipped(_)) {
                let same = step.run(py, &mut self.modules, &self.sources)?.is_some_and(
                    |(again, again_end, _)| {
                        let rel_tol = self.settings.rel_tol;
                        again.len() == yielded.len()
                            && again.iter().zip(&yielded).all(|(a, b)| {
                                same_outcome(
                                    &Outcome::Returned(a.clone()),
                                    &Outcome::Returned(b.clone()),
                                    rel_tol,
                                )
                            })
                            && match (&again_end, &end) {
                                (Some(a), Some(b)) => same_outcome(a, b, rel_tol),
                                (None, None) => true,
                                _ => false,
                            }
                    },
                );
                if !same {
                    verdict = Verdict::Skipped(
                        "nondeterministic: two runs gave different results".into(),
                    );
                }
            }
            return Ok(Checked { verdict, now: None });
        }
        let caller_module = case
            .callers
            .first()
            .and_then(|id| self.reader.code(*id))
            .and_then(|code| self.modules.imported(py, &code.module));
        let callable = self.caller.of(py, &function, caller_module.as_ref())?;
        self.sources.reset(py, &code)?;
        let (now, returned) = match invoke::call(py, &callable, &args, &kwargs, conditions)? {
            Called::Finished(now, returned) => (now, returned),
            Called::TimedOut => {
                let seconds = timeout.unwrap_or_default();
                return Ok(Checked {
                    verdict: Verdict::Failed(timed_out(case, seconds)),
                    now: None,
                });
            }
        };
        let reached = self.sources.reached(py)?;
        let mut verdict = judge(case, &now, self.settings.rel_tol);
        if matches!(verdict, Verdict::Failed(_)) {
            // `self` recorded as a copy of a module's object (a decorated function): the
            // recording may have had that very object, which identity tests tell apart.
            let held = recorded
                .entries
                .first()
                .and_then(|(_, value)| rebuild::named_instance(py, value, &mut self.modules));
            if let Some(held) = held {
                let mut items: Vec<Bound<'_, PyAny>> = args.iter().collect();
                items[0] = held;
                let args = pyo3::types::PyTuple::new(py, items)?;
                if let Called::Finished(again, _) =
                    invoke::call(py, &callable, &args, &kwargs, conditions)?
                {
                    if judge(case, &again, self.settings.rel_tol) == Verdict::Passed {
                        verdict = Verdict::Passed;
                    } else if !same_outcome(&again, &now, self.settings.rel_tol) {
                        let name = args.get_item(0).map_or_else(
                            |_| "?".into(),
                            |held| {
                                let part = |a: &str| {
                                    held.getattr(a)
                                        .map_or_else(|_| "?".into(), |n| n.to_string())
                                };
                                format!("{}.{}", part("__module__"), part("__qualname__"))
                            },
                        );
                        verdict = Verdict::Skipped(format!(
                            "depends on module state: its first argument stands for the \
                             module's object {name}, and the result differs from the recording \
                             both with a copy and with that object (whose state when recorded \
                             is not known)"
                        ));
                    }
                }
            }
        }
        if matches!(verdict, Verdict::Failed(_)) && !reached.is_empty() {
            verdict = Verdict::Skipped(format!(
                "nondeterministic: it used {} and its result differs",
                reached.join(", ")
            ));
        }
        if let (Verdict::Failed(_), Some(reason)) = (&verdict, shared_iterator(case)) {
            verdict = Verdict::Skipped(reason);
        }
        if let (Verdict::Failed(_), Some(reason)) =
            (&verdict, patched_result(case, &now, self.settings.rel_tol))
        {
            verdict = Verdict::Skipped(reason);
        }
        let reordered = |expected: &Option<Outcome>| {
            expected
                .as_ref()
                .is_some_and(|e| differs_in_string_order(e, &now, self.settings.rel_tol))
        };
        if matches!(verdict, Verdict::Failed(_)) && self.random_hashes {
            let what = if case.code.qualname.ends_with("__hash__") {
                Some("a hash")
            } else if reordered(&case.expected) {
                Some("the same strings in another order, as iterating a set of strings gives")
            } else if case.args.as_deref().is_some_and(holds_string_set) {
                Some(STRING_SET)
            } else {
                None
            };
            if let Some(what) = what {
                verdict = Verdict::Skipped(hash_randomized(what));
            }
        }
        if matches!(verdict, Verdict::Failed(_)) {
            let callers = callers(py, &self.reader, &mut self.modules, &case.callers)?;
            if let Some(reason) = self
                .state
                .explain(py, &function, returned.as_ref(), &callers)?
            {
                verdict = Verdict::Skipped(reason);
            }
        }
        if self.settings.twice && !matches!(verdict, Verdict::Skipped(_)) {
            let (args, kwargs) = match rebuild::arguments(
                py,
                &recorded,
                &signature,
                &mut self.modules,
                &self.limits,
            ) {
                Ok(built) => built,
                Err(reason) => {
                    return Ok(skipped(format!("cannot rebuild its arguments: {reason}")))
                }
            };
            self.sources.reset(py, &code)?;
            match invoke::call(py, &callable, &args, &kwargs, conditions)? {
                Called::Finished(again, _) if same_outcome(&now, &again, self.settings.rel_tol) => {
                }
                Called::Finished(..) => {
                    let mut used = reached;
                    for source in self.sources.reached(py)? {
                        if !used.contains(&source) {
                            used.push(source);
                        }
                    }
                    let used = if used.is_empty() {
                        String::new()
                    } else {
                        format!(" (it used {})", used.join(", "))
                    };
                    verdict = Verdict::Skipped(format!(
                        "nondeterministic: two runs gave different results{used}"
                    ));
                }
                Called::TimedOut => {
                    verdict = Verdict::Failed(timed_out(case, timeout.unwrap_or_default()));
                }
            }
        }
        Ok(Checked {
            verdict,
            now: Some(now),
        })
    }
}
