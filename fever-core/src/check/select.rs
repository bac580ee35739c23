//! Which recorded calls `fever check` re-invokes: [`select`] walks a trace's spans and returns
//! one [`Case`] per selected call, with what it returned or raised and, when it cannot be
//! replayed faithfully, why; and, for `fever check --list`, how many calls were left out and why
//! ([`Unselected`]).
//!
//! A call's *level* is the number of its open ancestors (on its thread) that match the
//! patterns. Calls that match and whose level is at most [`Options::depth`] are selected: by
//! default (no pattern, depth 0) the outermost calls of the project's functions; `--select`
//! makes the outermost calls of the matching functions level 0 (a recorded script's functions,
//! module `__main__`, also match under the script's file name: `pipeline.*`). Never matching:
//! - module bodies, class bodies ([`Options::class_bodies`]) and generator expressions, which
//!   are not calls; a generator's resumptions are part of its call;
//! - without `--select`, test code ([`is_test_file`]: the tests of a pytest or unittest run and
//!   their helpers), so a recorded test suite checks the calls the tests made into the code
//!   under test, not the tests;
//! - calls that did not return in the recording (interrupted by Ctrl-C, or still running when
//!   it ended): run again, they could run forever;
//! - calls made while a module other than `__main__` was imported (from its body, at any
//!   depth): set-up such as registering rules in a module's tables, which importing the module
//!   for the check did again; run once more, it would change what the other calls see.
//!
//! A call is skipped, with its reason, when it cannot be compared with its recording:
//! - it ran, itself or below it, a version of a function that was reloaded later in the
//!   recording (`[v1]` of `[v2]`): its result belongs to code that is gone;
//! - another call of the same code with the same argument snapshot (byte for byte), both on the
//!   last versions of the code, ended differently: nondeterministic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use super::compare::same_snapshot;
use super::{CheckError, Outcome};
use crate::analysis::spans::{Closed, Opened, Outcome as SpanOutcome, SpanSink, Thread, Walker};
use crate::snapshot::{content_hash, decode, Value};
use crate::trace::{CodeInfo, TraceReader};

/// Which calls to select; the default is the outermost calls of every function.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--select` globs on `module.qualname`; empty means every function but test code.
    pub patterns: Vec<String>,
    /// `--depth`: also select calls up to this many matching levels below the outermost ones.
    pub depth: usize,
    /// Codes that are class bodies, which are not calls (the trace does not say; whoever can
    /// import the code can).
    pub class_bodies: HashSet<u32>,
    /// Codes sharing their name with others (see [`FirstWalk::shared_arguments`]) → which function of
    /// that name living now they are (one whose parameters are their calls' arguments), by an
    /// id: codes of different living functions are not versions of one (a property's getter
    /// and setter), whenever they were called.
    pub live: HashMap<u32, u64>,
    /// The trace's [`FirstWalk`], when the caller made it already (to find `live`): `select`
    /// then walks the trace once more, not twice. It must be the walk of the trace selected
    /// from.
    pub first_walk: Option<FirstWalk>,
}

/// One selected call.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Stable id: `module.qualname[k]`, the k-th selected call of that function (from 1).
    pub id: String,
    /// The function.
    pub code: CodeInfo,
    /// The recorded argument snapshot.
    pub args: Option<Vec<u8>>,
    /// What the call did during the recording, when it was recorded.
    pub expected: Option<Outcome>,
    /// Why it cannot be replayed, decided from the trace alone.
    pub skip: Option<String>,
    /// Index (among the trace's events, in file order) of the event that ended the call.
    pub end_event: usize,
    /// Code ids of the calls it was made from (the test that made it, ...), innermost first,
    /// each once: what changed the module state it ran in.
    pub callers: Vec<u32>,
    /// A generator call: the values it yielded, in order (at most [`MAX_YIELDS`]). `expected`
    /// is how it ended (`Returned`: its `StopIteration` value), when the recording shows it
    /// ended by itself; otherwise these are a prefix of what it yields.
    pub yields: Option<Vec<Vec<u8>>>,
}

/// Yielded values of one generator call that `fever check` compares (the rest are left out).
pub const MAX_YIELDS: usize = 1000;

impl Case {
    /// `module.qualname`.
    pub fn name(&self) -> String {
        self.code.full_name()
    }

    /// `file:line` of the function.
    pub fn location(&self) -> String {
        format!("{}:{}", self.code.file, self.code.first_line)
    }
}

/// Why recorded calls were not selected, for `fever check --list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Unselected {
    /// Below a selected call (deeper than `--depth`).
    Nested,
    /// Test code, without `--select`.
    TestCode,
    /// Not matching `--select`.
    NotMatching,
    /// Did not return in the recording.
    DidNotReturn,
    /// Made while a module was imported.
    ImportTime,
}

impl fmt::Display for Unselected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nested => "inside a selected call (--depth N checks N levels below)",
            Self::TestCode => "test code: the tests and their helpers (--select includes them)",
            Self::NotMatching => "not matching --select",
            Self::DidNotReturn => {
                "did not return in the recording (interrupted, or still running when it ended)"
            }
            Self::ImportTime => {
                "made while a module was imported (its set-up, which importing it runs again)"
            }
        })
    }
}

/// What [`select`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// The selected calls, in the order they were made.
    pub cases: Vec<Case>,
    /// How many calls were not selected, by reason (module and class bodies not counted).
    pub unselected: BTreeMap<Unselected, usize>,
}

/// Whether `file` (a recorded code's file) is test code of a project rooted at `root`: a
/// `test_*.py`, `*_test.py` or `conftest.py` file, or any file in a `tests`, `test` or
/// `testing` directory below the root.
pub fn is_test_file(file: &str, root: &str) -> bool {
    let path = Path::new(file);
    let relative = path.strip_prefix(root).unwrap_or(path);
    let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.strip_suffix(".py").unwrap_or(name);
    if stem.starts_with("test_") || stem.ends_with("_test") || stem == "conftest" {
        return true;
    }
    relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "test" | "testing")))
}

/// The selected calls of `reader`, in the order their calls appear in the trace.
pub fn select(reader: &TraceReader, options: &Options) -> Result<Selection, CheckError> {
    let patterns = options
        .patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| CheckError::Pattern {
                pattern: p.clone(),
                reason: e.msg.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root = reader.header().root.as_str();
    let roles: HashMap<u32, Role> = reader
        .codes()
        .iter()
        .map(|code| {
            let role = if code.qualname == "<module>" && code.module != "__main__" {
                Role::Import
            } else if !is_call(&code.qualname) || options.class_bodies.contains(&code.id) {
                Role::NotACall
            } else if patterns.is_empty() {
                if is_test_file(&code.file, root) {
                    Role::Other(Unselected::TestCode)
                } else {
                    Role::Matches
                }
            } else if patterns
                .iter()
                .any(|p| names_of(code).iter().any(|n| p.matches(n)))
            {
                Role::Matches
            } else {
                Role::Other(Unselected::NotMatching)
            };
            (code.id, role)
        })
        .collect();
    let walked;
    let first = if let Some(first) = &options.first_walk {
        first
    } else {
        walked = FirstWalk::of(reader)?;
        &walked
    };
    let mut sink = Selector {
        roles: &roles,
        stale: stale_versions(reader, &first.calls, &options.live),
        did_not_return: &first.did_not_return,
        depth: options.depth,
        stacks: HashMap::new(),
        event: 0,
        found: Vec::new(),
        results: HashMap::new(),
        unselected: BTreeMap::new(),
        suspended: HashMap::new(),
        generators_of: HashMap::new(),
    };
    walk(reader, &mut sink)?;
    let Selector {
        found,
        results,
        stale,
        unselected,
        ..
    } = sink;
    // Numbered by name, not code: a function edited during the recording has two codes.
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut cases = Vec::with_capacity(found.len());
    for call in found {
        let Some(code) = reader.code(call.code) else {
            continue;
        };
        let name = code.full_name();
        let k = counts.entry(name.clone()).or_default();
        *k += 1;
        let nondeterministic = call
            .args
            .is_some_and(|args| results.get(&(call.code, content_hash(args))) == Some(&None));
        let mut expected = call.end.as_ref().and_then(Outcome::from_span);
        let yields = call.yields.map(|values| {
            if call.frozen || values.len() > MAX_YIELDS || closed_by_consumer(call.end.as_ref()) {
                expected = None;
            }
            values
                .into_iter()
                .take(MAX_YIELDS)
                .collect::<Option<Vec<_>>>()
        });
        let skip = if let Some(ran) = call.stale {
            Some(changed_reason(reader, &stale, call.code, ran))
        } else if nondeterministic {
            Some(same_arguments_differed(call.args).to_owned())
        } else {
            match &yields {
                Some(None) => Some(
                    "its yielded values were not recorded (fever record --snapshots args)".into(),
                ),
                Some(Some(_)) if call.args.is_some() => None,
                _ => skip_reason(code, call.args, call.end.as_ref()),
            }
        };
        cases.push(Case {
            id: format!("{name}[{k}]"),
            code: code.clone(),
            args: call.args.map(<[u8]>::to_vec),
            expected,
            skip,
            end_event: call.end_event,
            callers: call.callers,
            yields: yields
                .flatten()
                .map(|values| values.into_iter().map(<[u8]>::to_vec).collect()),
        });
    }
    Ok(Selection { cases, unselected })
}

/// What [`select`]'s first walk of a trace finds: the calls that did not return, and the
/// calls of the codes sharing their name with others. Made once, it serves both the caller that
/// needs [`shared_arguments`](Self::shared_arguments) (to fill [`Options::live`]) and `select`
/// ([`Options::first_walk`]).
#[derive(Debug, Clone, Default)]
pub struct FirstWalk {
    /// The events (by index) that opened spans which did not return.
    did_not_return: HashSet<usize>,
    /// Code id of a code whose name others have too → its calls.
    calls: HashMap<u32, Calls>,
}

impl FirstWalk {
    /// Walks every event of `reader`.
    pub fn of(reader: &TraceReader) -> Result<Self, CheckError> {
        let mut unfinished = Unfinished {
            shared: shared_names(reader),
            ..Unfinished::default()
        };
        walk(reader, &mut unfinished)?;
        Ok(Self {
            did_not_return: unfinished.found,
            calls: unfinished.calls,
        })
    }

    /// The codes whose `module.qualname` another code has too (a property's getter and
    /// setter, versions of a function reloaded while recording) → the names of their first
    /// recorded call's arguments.
    pub fn shared_arguments(&self) -> impl Iterator<Item = (u32, &[String])> {
        self.calls
            .iter()
            .filter_map(|(id, calls)| Some((*id, calls.arguments.as_deref()?)))
    }
}

/// Walks every event of `reader` into `sink`, keeping the sink's event index current.
fn walk<'a, S: SpanSink<'a, Error = CheckError> + Indexed>(
    reader: &'a TraceReader,
    sink: &mut S,
) -> Result<(), CheckError> {
    let mut walker = Walker::default();
    for (index, event) in reader.events().enumerate() {
        sink.at(index);
        walker.event(event, sink)?;
    }
    walker.finish(sink)
}

/// A sink told which event it is being walked through.
trait Indexed {
    fn at(&mut self, event: usize);
}

/// The names a `--select` pattern is matched against: `module.qualname`, and for a recorded
/// script's `__main__` also `stem.qualname` after its file's name.
fn names_of(code: &CodeInfo) -> Vec<String> {
    let mut names = vec![code.full_name()];
    if code.module == "__main__" {
        if let Some(stem) = Path::new(&code.file).file_stem().and_then(|s| s.to_str()) {
            names.push(format!("{stem}.{}", code.qualname));
        }
    }
    names
}

/// Code that runs as a call of its own: not a module body, nor a generator expression (a
/// detail of the function it is in).
fn is_call(qualname: &str) -> bool {
    qualname != "<module>" && !qualname.ends_with("<genexpr>")
}

/// What a code is to the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its calls can be selected, and each is a level for the calls below it.
    Matches,
    /// Not a call at all: not counted.
    NotACall,
    /// The body of an imported module: not a call, and the calls below it are its set-up.
    Import,
    /// Not selected, for this reason.
    Other(Unselected),
}

/// Versions of functions reloaded during the recording: code id → (its version, the number of
/// versions), for every code with a later version. Only functions reachable by name count:
/// two lambdas of one function, or a nested function defined in two branches, share a name
/// without being versions of each other (a reload of the function around them is). Nor are
/// codes called with arguments of other names whose calls alternate (`calls`): a property's
/// getter (`self`) and setter (`self, value`) share a name and both live. A function
/// reloaded keeps its versions' chain however it moved or was edited, its parameters renamed
/// too: its old version is not called once the new one is. Nor are codes of two functions
/// living now (`live`: a getter and setter found in the class), whenever they were called.
/// Otherwise (a getter and its deleter, which take the same arguments, the file edited since)
/// the first called is taken as the older one, its calls skipped, never checked against the
/// other's code.
fn stale_versions(
    reader: &TraceReader,
    calls: &HashMap<u32, Calls>,
    live: &HashMap<u32, u64>,
) -> HashMap<u32, (usize, usize)> {
    let mut stale = HashMap::new();
    for ids in by_name(reader).into_values() {
        for mut ids in live_apart(ids, calls, live) {
            ids.sort_unstable();
            let n = ids.len();
            for (i, id) in ids.into_iter().enumerate().take(n - 1) {
                stale.insert(id, (i + 1, n));
            }
        }
    }
    stale
}

/// The codes `ids` of one name split into functions that live together: by the function
/// living now each is (`live`), when there are several, a code that fits none going with the
/// last that does and took the same arguments, else the next code that does (the version
/// that replaced it); else by the names of their calls'
/// arguments, when the calls of two such groups alternate; else all one.
fn live_apart(
    mut ids: Vec<u32>,
    calls: &HashMap<u32, Calls>,
    live: &HashMap<u32, u64>,
) -> Vec<Vec<u32>> {
    ids.sort_unstable();
    let mut keys: Vec<u64> = ids.iter().filter_map(|id| live.get(id).copied()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() > 1 {
        let mut chains: Vec<(u64, Vec<u32>)> = keys.iter().map(|k| (*k, Vec::new())).collect();
        let arguments = |id: &u32| calls.get(id).and_then(|c| c.arguments.as_ref());
        for (at, id) in ids.iter().enumerate() {
            let same_arguments = ids
                .iter()
                .rev()
                .filter(|other| arguments(other).is_some() && arguments(other) == arguments(id))
                .find_map(|other| live.get(other));
            let key = same_arguments.or_else(|| {
                ids[at..]
                    .iter()
                    .chain(ids[..at].iter().rev())
                    .find_map(|later| live.get(later))
            });
            if let Some(chain) = chains.iter_mut().find(|(k, _)| Some(k) == key) {
                chain.1.push(*id);
            }
        }
        return chains.into_iter().map(|(_, chain)| chain).collect();
    }
    // (argument names, codes, the events their first and last calls started at)
    let mut groups: Vec<Group<'_>> = Vec::new();
    for id in ids {
        let of = calls.get(&id);
        let names = of.and_then(|c| c.arguments.as_ref());
        let span = of.map(|c| (c.first, c.last));
        match groups.iter_mut().find(|(n, _, _)| *n == names) {
            Some((_, members, at)) => {
                members.push(id);
                *at = match (*at, span) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (at, span) => at.or(span),
                };
            }
            None => groups.push((names, vec![id], span)),
        }
    }
    let alternate = groups.iter().enumerate().any(|(i, (_, _, x))| {
        groups[i + 1..].iter().any(|(_, _, y)| match (x, y) {
            (Some((a, b)), Some((c, d))) => a < d && c < b,
            _ => false,
        })
    });
    if alternate {
        groups.into_iter().map(|(_, members, _)| members).collect()
    } else {
        vec![groups
            .into_iter()
            .flat_map(|(_, members, _)| members)
            .collect()]
    }
}

/// Codes of one name called with the same argument names, and when they were called.
type Group<'a> = (Option<&'a Vec<String>>, Vec<u32>, Option<(usize, usize)>);

/// The calls of a code that shares its name: the names of the arguments of its first call that
/// recorded them, and the events its first and last calls started at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Calls {
    arguments: Option<Vec<String>>,
    first: usize,
    last: usize,
}

/// Why a call that ran the old version `ran` of a function is skipped.
fn changed_reason(
    reader: &TraceReader,
    stale: &HashMap<u32, (usize, usize)>,
    call: u32,
    ran: u32,
) -> String {
    let name = reader
        .code(ran)
        .map_or_else(|| "?".into(), CodeInfo::full_name);
    let (version, versions) = stale.get(&ran).copied().unwrap_or((1, 2));
    let what = if ran == call { "it ran" } else { "it called" };
    format!(
        "the code changed during the recording: {what} {name} [v{version}], which was \
         reloaded later ([v{versions}] is the last)"
    )
}

/// Why a call is skipped whose recorded arguments `args` are those of another call that ended
/// differently: nondeterministic, unless the snapshot does not hold the whole of the arguments
/// (then they may have differed where it does not look).
fn same_arguments_differed(args: Option<&[u8]>) -> &'static str {
    if args.is_some_and(|bytes| decode(bytes).is_ok_and(|value| !value.is_faithful())) {
        "the same recorded arguments gave different results, but the snapshot holds only part \
         of them (a value known by its repr or type, cut at a limit, or a nested function): \
         they may have differed, or it is nondeterministic"
    } else {
        "nondeterministic: the same arguments gave different results"
    }
}

/// Why a call cannot be replayed, judged from its code and recorded snapshots.
fn skip_reason(
    code: &CodeInfo,
    args: Option<&[u8]>,
    end: Option<&SpanOutcome<'_>>,
) -> Option<String> {
    if code.qualname.contains('<') {
        return Some(format!(
            "{} is not reachable by name (a nested function, lambda or comprehension)",
            code.qualname
        ));
    }
    if args.is_none() {
        return Some("its arguments were not recorded (fever record --snapshots none)".into());
    }
    match end {
        Some(SpanOutcome::Suspended(_)) => Some("a generator or coroutine".into()),
        Some(SpanOutcome::Returned(None) | SpanOutcome::Raised(None)) => {
            Some("its result was not recorded (fever record --snapshots args)".into())
        }
        Some(SpanOutcome::Unfinished) | None => {
            Some("it did not finish during the recording".into())
        }
        Some(SpanOutcome::Returned(Some(_)) | SpanOutcome::Raised(Some(_))) => None,
    }
}

/// Whether a generator ended because its consumer closed it (`GeneratorExit`), not by itself.
fn closed_by_consumer(end: Option<&SpanOutcome<'_>>) -> bool {
    match end {
        Some(SpanOutcome::Raised(Some(bytes))) => {
            matches!(decode(bytes), Ok(Value::Exception(e)) if e.qualname == "GeneratorExit")
        }
        Some(SpanOutcome::Raised(None)) => true,
        _ => false,
    }
}

/// Whether a span ended without returning: cut off, or by `KeyboardInterrupt`.
fn did_not_return(outcome: &SpanOutcome<'_>) -> bool {
    match outcome {
        SpanOutcome::Unfinished => true,
        SpanOutcome::Raised(Some(bytes)) => {
            matches!(decode(bytes), Ok(Value::Exception(e)) if e.qualname == "KeyboardInterrupt")
        }
        _ => false,
    }
}

/// The first walk: the events (by index) that opened spans which did not return.
#[derive(Default)]
struct Unfinished {
    event: usize,
    open: HashMap<usize, Vec<usize>>,
    found: HashSet<usize>,
    /// Codes whose name other codes have too.
    shared: HashSet<u32>,
    /// Code id of those → its calls.
    calls: HashMap<u32, Calls>,
}

/// The codes reachable by name (not a lambda's, nor a nested function's) by `module.qualname`.
fn by_name(reader: &TraceReader) -> HashMap<String, Vec<u32>> {
    let mut named: HashMap<String, Vec<u32>> = HashMap::new();
    for code in reader.codes().iter().filter(|c| !c.qualname.contains('<')) {
        named.entry(code.full_name()).or_default().push(code.id);
    }
    named
}

/// The codes (reachable by name) whose `module.qualname` another code has too.
fn shared_names(reader: &TraceReader) -> HashSet<u32> {
    by_name(reader)
        .into_values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .collect()
}

impl Indexed for Unfinished {
    fn at(&mut self, event: usize) {
        self.event = event;
    }
}

impl<'a> SpanSink<'a> for Unfinished {
    type Error = CheckError;

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> Result<(), CheckError> {
        self.open.entry(thread.index).or_default().push(self.event);
        if span.resumed || !self.shared.contains(&span.code) {
            return Ok(());
        }
        let calls = self.calls.entry(span.code).or_insert(Calls {
            arguments: None,
            first: self.event,
            last: self.event,
        });
        calls.last = self.event;
        if let (None, Some(args)) = (&calls.arguments, span.args) {
            if let Ok(Value::Args(fields)) = decode(args) {
                calls.arguments = Some(fields.entries.into_iter().map(|(name, _)| name).collect());
            }
        }
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), CheckError> {
        let opened = self.open.get_mut(&thread.index).and_then(Vec::pop);
        if let (Some(opened), false) = (opened, span.resumed) {
            if did_not_return(&end.outcome) {
                self.found.insert(opened);
            }
        }
        Ok(())
    }
}

/// A selected call while the walk goes on.
struct Found<'a> {
    code: u32,
    args: Option<&'a [u8]>,
    end: Option<SpanOutcome<'a>>,
    end_event: usize,
    /// A stale version of a function it ran (itself or below it).
    stale: Option<u32>,
    /// Code ids of the open calls around it, innermost first, each once.
    callers: Vec<u32>,
    /// A generator: the values it yielded, in order, as far as they are known to be its.
    yields: Option<Vec<Option<&'a [u8]>>>,
    /// A generator whose later stretches cannot be told from another instance's: its yields
    /// are a prefix, and its end unknown.
    frozen: bool,
}

/// A suspended generator (one call of a generator function, between its stretches): its
/// entry in `found` if selected, and the span (by the event that opened it) it was called
/// from, whose end ends it as far as the selection knows (Python 3.13 closes a dropped
/// generator without events).
#[derive(Clone, Copy)]
struct Live {
    found: Option<usize>,
    parent: Option<usize>,
}

/// One open span: the index of its entry in `found` if selected, whether it counts as a
/// level for the calls below it, whether it runs while a module is imported, and the stale
/// code it ran, if any.
#[derive(Clone, Copy)]
struct Open {
    code: u32,
    /// The event that opened it.
    opened_at: usize,
    /// For a generator resuming: the call it continues, when only one could be.
    instance: Option<Live>,
    found: Option<usize>,
    matches: bool,
    importing: bool,
    stale: Option<u32>,
}

/// The [`SpanSink`] of [`select`]'s second walk.
struct Selector<'m, 'a> {
    roles: &'m HashMap<u32, Role>,
    stale: HashMap<u32, (usize, usize)>,
    did_not_return: &'m HashSet<usize>,
    depth: usize,
    /// Open spans per thread index, and how many of them match.
    stacks: HashMap<usize, (Vec<Open>, usize)>,
    /// Index of the event being walked.
    event: usize,
    found: Vec<Found<'a>>,
    /// `(code, hash of the argument bytes)` → the first outcome seen, `None` once an outcome
    /// that does not match it was seen.
    results: HashMap<(u32, u64), Option<Recorded<'a>>>,
    unselected: BTreeMap<Unselected, usize>,
    /// Suspended generators per (thread index, code).
    suspended: HashMap<(usize, u32), Vec<Live>>,
    /// The generators called from a span (by the event that opened it): (thread index, code).
    generators_of: HashMap<usize, Vec<(usize, u32)>>,
}

/// An outcome in the trace: raised (or returned), and its snapshot.
type Recorded<'a> = (bool, &'a [u8]);

impl Indexed for Selector<'_, '_> {
    fn at(&mut self, event: usize) {
        self.event = event;
    }
}

impl<'a> Selector<'_, 'a> {
    fn note_result(&mut self, code: u32, args: &[u8], end: &SpanOutcome<'a>) {
        let outcome = match end {
            SpanOutcome::Returned(Some(bytes)) => (false, *bytes),
            SpanOutcome::Raised(Some(bytes)) => (true, *bytes),
            _ => return,
        };
        let seen = self
            .results
            .entry((code, content_hash(args)))
            .or_insert(Some(outcome));
        // The comparison `fever check` makes, exactly (a repr's address is not a difference).
        if let Some((raised, first)) = *seen {
            if raised != outcome.0 || !same_snapshot(first, outcome.1, 0.0) {
                *seen = None;
            }
        }
    }
}

impl<'a> SpanSink<'a> for Selector<'_, 'a> {
    type Error = CheckError;

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> Result<(), CheckError> {
        let mut role = self
            .roles
            .get(&span.code)
            .copied()
            .unwrap_or(Role::NotACall);
        let (stack, level) = self.stacks.entry(thread.index).or_default();
        let importing = role == Role::Import || stack.last().is_some_and(|open| open.importing);
        if role == Role::Matches && self.did_not_return.contains(&self.event) {
            role = Role::Other(Unselected::DidNotReturn);
        }
        if role == Role::Matches && importing {
            role = Role::Other(Unselected::ImportTime);
        }
        let matches = role == Role::Matches;
        // A generator resuming is not a call: its call was its first stretch.
        let selected = matches && !span.resumed && *level <= self.depth;
        let found = selected.then(|| {
            let mut callers: Vec<u32> = Vec::new();
            for open in stack.iter().rev() {
                if !callers.contains(&open.code) {
                    callers.push(open.code);
                }
            }
            self.found.push(Found {
                code: span.code,
                args: span.args,
                end: None,
                end_event: self.event,
                stale: None,
                callers,
                yields: None,
                frozen: false,
            });
            self.found.len() - 1
        });
        if !selected && !span.resumed {
            let reason = match role {
                Role::Matches => Some(Unselected::Nested),
                Role::NotACall | Role::Import => None,
                Role::Other(reason) => Some(reason),
            };
            let reason = match reason {
                Some(Unselected::TestCode | Unselected::NotMatching) if *level > 0 => {
                    Some(Unselected::Nested)
                }
                other => other,
            };
            if let Some(reason) = reason {
                *self.unselected.entry(reason).or_default() += 1;
            }
        }
        let stale = self.stale.contains_key(&span.code).then_some(span.code);
        let instance = if span.resumed {
            let candidates = self.suspended.entry((thread.index, span.code)).or_default();
            if candidates.len() == 1 {
                candidates.pop()
            } else {
                // Which of them resumes is not in the trace: none is followed further.
                for live in candidates.iter() {
                    if let Some(found) = live.found.and_then(|i| self.found.get_mut(i)) {
                        found.frozen = true;
                    }
                }
                None
            }
        } else {
            None
        };
        stack.push(Open {
            code: span.code,
            opened_at: self.event,
            instance,
            found,
            matches,
            importing,
            stale,
        });
        *level += usize::from(matches);
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), CheckError> {
        let Some((stack, level)) = self.stacks.get_mut(&thread.index) else {
            return Ok(());
        };
        let Some(open) = stack.pop() else {
            return Ok(());
        };
        *level -= usize::from(open.matches);
        if let (Some(stale), Some(parent)) = (open.stale, stack.last_mut()) {
            parent.stale.get_or_insert(stale);
        }
        if let Some(found) = open.found.and_then(|i| self.found.get_mut(i)) {
            found.end = Some(end.outcome);
            found.end_event = self.event;
            found.stale = open.stale;
        }
        let suspended = matches!(end.outcome, SpanOutcome::Suspended(_));
        let continued = if span.resumed { open.instance } else { None };
        if let Some(found) = continued
            .and_then(|live| live.found)
            .and_then(|i| self.found.get_mut(i))
            .filter(|found| !found.frozen)
        {
            if let (SpanOutcome::Suspended(value), Some(yields)) = (end.outcome, &mut found.yields)
            {
                yields.push(value);
            }
            found.end = Some(end.outcome);
            found.end_event = self.event;
            found.stale = found.stale.or(open.stale);
        }
        if suspended {
            let live = if span.resumed {
                continued
            } else {
                let parent = stack.last().map(|p| p.opened_at);
                if let Some(parent) = parent {
                    self.generators_of
                        .entry(parent)
                        .or_default()
                        .push((thread.index, span.code));
                }
                if let (Some(found), SpanOutcome::Suspended(value)) =
                    (open.found.and_then(|i| self.found.get_mut(i)), end.outcome)
                {
                    found.yields = Some(vec![value]);
                }
                Some(Live {
                    found: open.found,
                    parent,
                })
            };
            if let Some(live) = live {
                self.suspended
                    .entry((thread.index, span.code))
                    .or_default()
                    .push(live);
            }
        } else if let Some(generators) = self.generators_of.remove(&open.opened_at) {
            // The span the generators were called from ended: they are dropped (or live on,
            // unfollowed: a later resume then has no candidate, or more than one).
            for key in generators {
                if let Some(lives) = self.suspended.get_mut(&key) {
                    lives.retain(|live| live.parent != Some(open.opened_at));
                }
            }
        }
        // Results of code that was replaced say nothing about whether it is deterministic.
        if let (Some(args), false, None) = (span.args, span.resumed, open.stale) {
            self.note_result(span.code, args, &end.outcome);
        }
        Ok(())
    }
}

impl Outcome {
    /// The outcome of a span that returned or raised with a snapshot.
    fn from_span(end: &SpanOutcome<'_>) -> Option<Self> {
        match end {
            SpanOutcome::Returned(Some(bytes)) => Some(Self::Returned(bytes.to_vec())),
            SpanOutcome::Raised(Some(bytes)) => Some(Self::Raised(bytes.to_vec())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, TraceHeader, TraceWriter};
    use std::collections::BTreeMap;

    fn code(id: u32, qualname: &str) -> CodeInfo {
        CodeInfo {
            id,
            module: "m".into(),
            qualname: qualname.into(),
            file: "m.py".into(),
            first_line: id + 1,
            code_hash: 0,
        }
    }

    fn call(code: u32, args: &[u8]) -> Event {
        Event::Call {
            code,
            thread: 1,
            t_ns: 0,
            args: Some(args.to_vec()),
        }
    }

    fn ret(code: u32, value: &[u8]) -> Event {
        Event::Return {
            code,
            flags: 0,
            thread: 1,
            t_ns: 0,
            value: Some(value.to_vec()),
        }
    }

    /// Codes: 0 `__main__.<module>`, 1 `main`, 2 `load`, 3 `parse`, 4 `f.<locals>.g`.
    fn trace(events: &[Event]) -> TraceReader {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        for (id, name) in ["<module>", "main", "load", "parse", "f.<locals>.g"]
            .iter()
            .enumerate()
        {
            let mut info = code(u32::try_from(id).unwrap(), name);
            if id == 0 {
                // The script's body (an imported module's would be set-up).
                info.module = "__main__".into();
            }
            writer.add_code(info).unwrap();
        }
        for event in events {
            writer.write_event(event).unwrap();
        }
        TraceReader::from_bytes(&writer.finish().unwrap()).unwrap()
    }

    fn ids(reader: &TraceReader, patterns: &[&str], depth: usize) -> Vec<String> {
        let options = Options {
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            depth,
            ..Options::default()
        };
        select(reader, &options)
            .unwrap()
            .cases
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    /// `<module>` → main(load(parse, parse), load(parse)), then a top-level parse.
    fn nested() -> TraceReader {
        trace(&[
            call(0, b"m"),
            call(1, b"a"),
            call(2, b"x"),
            call(3, b"p1"),
            ret(3, b"r1"),
            call(3, b"p2"),
            ret(3, b"r2"),
            ret(2, b"l1"),
            call(2, b"y"),
            call(3, b"p3"),
            ret(3, b"r3"),
            ret(2, b"l2"),
            ret(1, b"done"),
            call(3, b"p4"),
            ret(3, b"r4"),
            ret(0, b"none"),
        ])
    }

    fn yielded(code: u32, value: &[u8]) -> Event {
        Event::Yield {
            code,
            thread: 1,
            t_ns: 0,
            value: Some(value.to_vec()),
        }
    }

    fn resume(code: u32) -> Event {
        Event::Resume {
            code,
            thread: 1,
            t_ns: 0,
        }
    }

    /// `m.load` (code 2) as a generator: (its yields, whether its end is known), per call.
    fn generator_calls(events: &[Event]) -> Vec<(Vec<Vec<u8>>, bool)> {
        let options = Options {
            patterns: vec!["m.load".into()],
            ..Options::default()
        };
        select(&trace(events), &options)
            .unwrap()
            .cases
            .into_iter()
            .map(|c| {
                assert_eq!(c.skip, None);
                (c.yields.unwrap(), c.expected.is_some())
            })
            .collect()
    }

    /// `m.load` (code 2) yielding each of `values`, resumed after each.
    fn stretches(values: &[&[u8]]) -> Vec<Event> {
        values
            .iter()
            .flat_map(|value| [yielded(2, value), resume(2)])
            .collect()
    }

    /// One call as [`generator_calls`] gives it.
    fn yields(values: &[&[u8]], end_known: bool) -> (Vec<Vec<u8>>, bool) {
        (values.iter().map(|v| v.to_vec()).collect(), end_known)
    }

    #[test]
    fn a_generator_call_has_the_values_it_yielded_over_its_stretches() {
        let calls = generator_calls(
            &[
                vec![call(1, b"a"), call(2, b"x")],
                stretches(&[b"v1", b"v2"]),
                vec![ret(2, b"end"), ret(1, b"done")],
            ]
            .concat(),
        );
        assert_eq!(calls, [yields(&[b"v1", b"v2"], true)]);
    }

    #[test]
    fn interleaved_generators_of_one_function_keep_only_what_is_surely_theirs() {
        let calls = generator_calls(
            &[
                vec![
                    call(1, b"a"),
                    call(2, b"x"),
                    yielded(2, b"a1"),
                    call(2, b"y"),
                ],
                stretches(&[b"b1", b"a2"]),
                vec![ret(2, b"end"), ret(1, b"done")],
            ]
            .concat(),
        );
        assert_eq!(calls, [yields(&[b"a1"], false), yields(&[b"b1"], false)]);
    }

    #[test]
    fn a_generator_dropped_with_the_call_it_was_made_in_does_not_confuse_the_next() {
        // Python 3.13 closes a dropped generator without an event.
        let calls = generator_calls(
            &[
                vec![
                    call(1, b"a"),
                    call(2, b"x"),
                    yielded(2, b"a1"),
                    ret(1, b"done"),
                ],
                vec![call(1, b"b"), call(2, b"y")],
                stretches(&[b"b1", b"b2"]),
                vec![ret(2, b"end"), ret(1, b"done")],
            ]
            .concat(),
        );
        assert_eq!(
            calls,
            [yields(&[b"a1"], false), yields(&[b"b1", b"b2"], true)]
        );
    }

    #[test]
    fn outermost_calls_by_default_and_depth_goes_deeper() {
        let reader = nested();
        assert_eq!(ids(&reader, &[], 0), ["m.main[1]", "m.parse[1]"]);
        assert_eq!(
            ids(&reader, &[], 1),
            ["m.main[1]", "m.load[1]", "m.load[2]", "m.parse[1]"]
        );
        assert_eq!(ids(&reader, &[], 2).len(), 7);
    }

    #[test]
    fn class_bodies_are_not_calls() {
        let reader = nested();
        let options = Options {
            class_bodies: HashSet::from([1]),
            ..Options::default()
        };
        let ids: Vec<String> = select(&reader, &options)
            .unwrap()
            .cases
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["m.load[1]", "m.load[2]", "m.parse[1]"]);
    }

    #[test]
    fn select_makes_the_outermost_matching_calls_level_zero() {
        let reader = nested();
        assert_eq!(ids(&reader, &["m.load"], 0), ["m.load[1]", "m.load[2]"]);
        assert_eq!(ids(&reader, &["*.parse"], 0).len(), 4);
        assert_eq!(ids(&reader, &["m.l*", "m.main"], 0), ["m.main[1]"]);
        assert_eq!(ids(&reader, &["m.l*", "m.main"], 1).len(), 3);
        assert!(ids(&reader, &["other.*"], 5).is_empty());
        let err = select(
            &reader,
            &Options {
                patterns: vec!["m.[".into()],
                depth: 0,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("m.["), "{err}");
    }

    #[test]
    fn outcomes_end_events_and_skip_reasons() {
        let reader = trace(&[
            call(2, b"x"),
            Event::Raise {
                code: 2,
                thread: 1,
                t_ns: 0,
                exception: Some(b"boom".to_vec()),
            },
            Event::Unwind {
                code: 2,
                flags: 0,
                thread: 1,
                t_ns: 0,
            },
            call(4, b"x"),
            ret(4, b"v"),
            Event::Call {
                code: 3,
                thread: 1,
                t_ns: 0,
                args: None,
            },
            ret(3, b"v"),
            call(1, b"x"),
        ]);
        let selection = select(&reader, &Options::default()).unwrap();
        let cases = selection.cases;
        // The last call never returned: not selected.
        assert_eq!(cases.len(), 3);
        assert_eq!(
            selection.unselected,
            BTreeMap::from([(Unselected::DidNotReturn, 1)])
        );
        assert_eq!(cases[0].expected, Some(Outcome::Raised(b"boom".to_vec())));
        assert_eq!(cases[0].end_event, 2);
        assert_eq!(cases[0].skip, None);
        assert!(cases[1].skip.as_ref().unwrap().contains("not reachable"));
        assert!(cases[2]
            .skip
            .as_ref()
            .unwrap()
            .contains("arguments were not"));
        assert_eq!(cases[2].location(), "m.py:4");
    }

    /// A snapshot of an exception of class `qualname`.
    fn exception(qualname: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = crate::snapshot::Encoder::new(&mut out);
        enc.begin_exception("builtins", qualname, None, 10);
        enc.end(0);
        enc.finish();
        out
    }

    #[test]
    fn calls_interrupted_by_ctrl_c_are_not_selected_but_what_they_finished_is() {
        let unwind = |code| Event::Unwind {
            code,
            flags: 0,
            thread: 1,
            t_ns: 0,
        };
        let reader = trace(&[
            call(1, b"main"),
            call(2, b"x"),
            ret(2, b"l"),
            call(2, b"y"),
            Event::Raise {
                code: 2,
                thread: 1,
                t_ns: 0,
                exception: Some(exception("KeyboardInterrupt")),
            },
            unwind(2),
            unwind(1),
            call(3, b"p"),
            Event::Raise {
                code: 3,
                thread: 1,
                t_ns: 0,
                exception: Some(exception("ValueError")),
            },
            unwind(3),
        ]);
        let selection = select(&reader, &Options::default()).unwrap();
        let ids: Vec<&str> = selection.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["m.load[1]", "m.parse[1]"]);
        assert_eq!(
            selection.unselected,
            BTreeMap::from([(Unselected::DidNotReturn, 2)])
        );
    }

    #[test]
    fn test_code_is_not_selected_by_default_but_the_calls_it_made_are() {
        let codes = vec![
            code_at(0, "test_lib", "test_add", "/p/test_lib.py"),
            code_at(1, "lib", "add", "/p/lib.py"),
            code_at(2, "helpers", "make", "/p/tests/helpers.py"),
            code_at(3, "lib", "inner", "/p/lib.py"),
        ];
        let reader = written(
            "/p",
            codes,
            &[
                call(0, b"t"),
                call(2, b"h"),
                call(1, b"a"),
                ret(1, b"r"),
                ret(2, b"h"),
                call(1, b"b"),
                call(3, b"i"),
                ret(3, b"r"),
                ret(1, b"r"),
                ret(0, b"none"),
            ],
        );
        let (ids, unselected) = selected(&reader);
        assert_eq!(ids, ["lib.add[1]", "lib.add[2]"]);
        assert_eq!(
            unselected,
            BTreeMap::from([(Unselected::Nested, 1), (Unselected::TestCode, 2)])
        );
        assert_eq!(ids_of(&reader, &["test_lib.*"]), ["test_lib.test_add[1]"]);
        assert!(is_test_file("/p/pkg/tests/util.py", "/p"));
        assert!(is_test_file("/p/pkg/lib_test.py", "/p"));
        assert!(is_test_file("/p/conftest.py", "/p"));
        assert!(!is_test_file("/tests/p/lib.py", "/tests/p"));
        assert!(!is_test_file("/p/testing_lib.py", "/p"));
    }

    /// A trace of `codes` and `events` under `root`.
    fn written(root: &str, codes: Vec<CodeInfo>, events: &[Event]) -> TraceReader {
        let header = TraceHeader {
            root: root.into(),
            ..TraceHeader::default()
        };
        let mut writer = TraceWriter::new(Vec::new(), &header).unwrap();
        for code in codes {
            writer.add_code(code).unwrap();
        }
        for event in events {
            writer.write_event(event).unwrap();
        }
        TraceReader::from_bytes(&writer.finish().unwrap()).unwrap()
    }

    /// The selected ids and the unselected tally.
    fn selected(reader: &TraceReader) -> (Vec<String>, BTreeMap<Unselected, usize>) {
        let selection = select(reader, &Options::default()).unwrap();
        let ids = selection.cases.into_iter().map(|c| c.id).collect();
        (ids, selection.unselected)
    }

    fn code_at(id: u32, module: &str, qualname: &str, file: &str) -> CodeInfo {
        CodeInfo {
            id,
            module: module.into(),
            qualname: qualname.into(),
            file: file.into(),
            first_line: id + 1,
            code_hash: 0,
        }
    }

    fn ids_of(reader: &TraceReader, patterns: &[&str]) -> Vec<String> {
        ids(reader, patterns, 0)
    }

    #[test]
    fn calls_made_while_a_module_was_imported_are_not_selected() {
        let codes = vec![
            code_at(0, "__main__", "<module>", "/p/run.py"),
            code_at(1, "lib", "<module>", "/p/lib.py"),
            code_at(2, "lib", "register", "/p/lib.py"),
            code_at(3, "lib", "rule", "/p/lib.py"),
            code_at(4, "__main__", "main", "/p/run.py"),
        ];
        let reader = written(
            "/p",
            codes,
            &[
                call(0, b"m"),
                call(1, b"l"),
                call(2, b"r"),
                call(3, b"x"),
                ret(3, b"x"),
                ret(2, b"r"),
                ret(1, b"l"),
                call(4, b"a"),
                call(2, b"r"),
                ret(2, b"r"),
                ret(4, b"a"),
                ret(0, b"m"),
            ],
        );
        let (ids, unselected) = selected(&reader);
        assert_eq!(ids, ["__main__.main[1]"]);
        assert_eq!(
            unselected,
            BTreeMap::from([(Unselected::Nested, 1), (Unselected::ImportTime, 2)])
        );
        assert_eq!(ids_of(&reader, &["lib.register"]), ["lib.register[1]"]);
    }

    #[test]
    fn a_scripts_functions_match_under_its_file_name() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer
            .add_code(CodeInfo {
                id: 0,
                module: "__main__".into(),
                qualname: "main".into(),
                file: "/p/pipeline.py".into(),
                first_line: 1,
                code_hash: 0,
            })
            .unwrap();
        for event in [call(0, b"a"), ret(0, b"0")] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        assert_eq!(ids_of(&reader, &["pipeline.*"]), ["__main__.main[1]"]);
        assert_eq!(ids_of(&reader, &["__main__.main"]), ["__main__.main[1]"]);
        assert!(ids_of(&reader, &["other.*"]).is_empty());
    }

    #[test]
    fn calls_that_ran_code_reloaded_later_are_skipped_as_such_not_as_nondeterministic() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer.add_code(code(0, "f")).unwrap();
        writer.add_code(code(1, "g")).unwrap();
        writer.add_code(code(2, "f")).unwrap();
        // g(a) calls f [v1], then f is reloaded and g(a) calls f [v2]: g's results differ.
        for event in [
            call(1, b"a"),
            call(0, b"a"),
            ret(0, b"1"),
            ret(1, b"1"),
            call(1, b"a"),
            call(2, b"a"),
            ret(2, b"2"),
            ret(1, b"2"),
            call(0, b"b"),
            ret(0, b"1"),
            call(2, b"b"),
            ret(2, b"2"),
        ] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let cases = select(&reader, &Options::default()).unwrap().cases;
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        // Numbered by name across versions.
        assert_eq!(ids, ["m.g[1]", "m.g[2]", "m.f[1]", "m.f[2]"]);
        let skips: Vec<Option<&str>> = cases.iter().map(|c| c.skip.as_deref()).collect();
        assert_eq!(
            skips[0],
            Some(
                "the code changed during the recording: it called m.f [v1], which was \
                 reloaded later ([v2] is the last)"
            )
        );
        assert_eq!(skips[1], None);
        assert!(skips[2].unwrap().contains("it ran m.f [v1]"), "{skips:?}");
        assert_eq!(skips[3], None);
    }

    #[test]
    fn a_first_walk_made_by_the_caller_selects_as_select_own_walk_does() {
        use crate::snapshot::Fields;
        let args = |name: &str| {
            let mut out = Vec::new();
            Value::Args(Fields {
                entries: vec![(name.into(), Value::Int(1))],
                omitted: 0,
            })
            .encode(&mut out);
            out
        };
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer.add_code(code(0, "f")).unwrap();
        writer.add_code(code(1, "g")).unwrap();
        writer.add_code(code(2, "f")).unwrap();
        // f reloaded (its parameter renamed), and a call of g interrupted by Ctrl-C.
        for event in [
            call(0, &args("x")),
            ret(0, b"1"),
            call(2, &args("n")),
            ret(2, b"2"),
            call(1, &args("a")),
            Event::Raise {
                code: 1,
                thread: 1,
                t_ns: 0,
                exception: Some(exception("KeyboardInterrupt")),
            },
            Event::Unwind {
                code: 1,
                flags: 0,
                thread: 1,
                t_ns: 0,
            },
        ] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let first = FirstWalk::of(&reader).unwrap();
        let mut shared: Vec<(u32, Vec<String>)> = first
            .shared_arguments()
            .map(|(id, names)| (id, names.to_vec()))
            .collect();
        shared.sort();
        assert_eq!(
            shared,
            [(0, vec!["x".to_owned()]), (2, vec!["n".to_owned()])]
        );
        let own = select(&reader, &Options::default()).unwrap();
        let given = select(
            &reader,
            &Options {
                first_walk: Some(first),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(own.cases, given.cases);
        assert_eq!(own.unselected, given.unselected);
        assert_eq!(
            own.unselected,
            BTreeMap::from([(Unselected::DidNotReturn, 1)])
        );
        assert!(own.cases[0].skip.as_deref().unwrap().contains("m.f [v1]"));
    }

    #[test]
    fn codes_called_alternately_with_other_argument_names_are_not_versions_of_each_other() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        let version = |id, name, first_line, code_hash| CodeInfo {
            first_line,
            code_hash,
            ..code(id, name)
        };
        // A property's getter (line 5) and setter (line 9), then both reloaded (the getter
        // edited, the setter moved); a function moved and edited at once.
        for info in [
            version(0, "C.p", 5, 1),
            version(1, "C.p", 9, 2),
            version(2, "C.p", 5, 3),
            version(3, "C.p", 11, 2),
            version(4, "f", 20, 4),
            version(5, "f", 30, 5),
        ] {
            writer.add_code(info).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let calls = |names: &[&str], first, last| Calls {
            arguments: Some(names.iter().map(|n| (*n).to_owned()).collect()),
            first,
            last,
        };
        let mut of = HashMap::from([
            (0, calls(&["self"], 0, 10)),
            (1, calls(&["self", "value"], 5, 12)),
            (2, calls(&["self"], 20, 30)),
            (3, calls(&["self", "value"], 25, 40)),
            (4, calls(&["x"], 0, 10)),
            (5, calls(&["x"], 20, 30)),
        ]);
        let stale = stale_versions(&reader, &of, &HashMap::new());
        assert_eq!(stale.get(&0), Some(&(1, 2)));
        assert_eq!(stale.get(&1), Some(&(1, 2)));
        assert_eq!((stale.get(&2), stale.get(&3)), (None, None));
        assert_eq!((stale.get(&4), stale.get(&5)), (Some(&(1, 2)), None));
        // Parameters renamed by the reload: its old calls all came before the new ones.
        of.insert(5, calls(&["n"], 20, 30));
        let stale = stale_versions(&reader, &of, &HashMap::new());
        assert_eq!((stale.get(&4), stale.get(&5)), (Some(&(1, 2)), None));
        // A getter never called once the setter is: taken for an older version.
        of.remove(&2);
        of.insert(1, calls(&["self", "value"], 11, 12));
        let stale = stale_versions(&reader, &of, &HashMap::new());
        assert_eq!(stale.get(&0), Some(&(1, 4)));
        // Unless the getter and the setter are two functions living now.
        let live = HashMap::from([(0, 7), (1, 8), (2, 7), (3, 8)]);
        let stale = stale_versions(&reader, &of, &live);
        assert_eq!((stale.get(&0), stale.get(&2)), (Some(&(1, 2)), None));
        assert_eq!((stale.get(&1), stale.get(&3)), (Some(&(1, 2)), None));
        // A code that fits none goes with one that does and took the same arguments.
        let live = HashMap::from([(0, 7), (2, 7), (3, 8)]);
        let stale = stale_versions(&reader, &of, &live);
        assert_eq!((stale.get(&1), stale.get(&3)), (Some(&(1, 2)), None));
    }

    #[test]
    fn generator_expressions_and_resumptions_are_not_calls() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer.add_code(code(0, "gen")).unwrap();
        writer.add_code(code(1, "<genexpr>")).unwrap();
        let yielded = |code| Event::Yield {
            code,
            thread: 1,
            t_ns: 0,
            value: Some(b"y".to_vec()),
        };
        let resume = |code| Event::Resume {
            code,
            thread: 1,
            t_ns: 0,
        };
        for event in [
            call(0, b"g"),
            yielded(0),
            call(1, b"e"),
            yielded(1),
            resume(1),
            ret(1, b"n"),
            resume(0),
            ret(0, b"n"),
        ] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let cases = select(&reader, &Options::default()).unwrap().cases;
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].id, "m.gen[1]");
        // Checked by what it yielded, and how it ended.
        assert_eq!(cases[0].skip, None);
        assert_eq!(cases[0].yields, Some(vec![b"y".to_vec()]));
        assert_eq!(cases[0].expected, Some(Outcome::Returned(b"n".to_vec())));
    }

    #[test]
    fn different_results_for_the_same_arguments_are_nondeterministic() {
        let reader = trace(&[
            call(2, b"same"),
            ret(2, b"1"),
            call(2, b"same"),
            ret(2, b"2"),
            call(2, b"other"),
            ret(2, b"1"),
            call(3, b"same"),
            ret(3, b"1"),
            call(3, b"same"),
            ret(3, b"1"),
        ]);
        let cases = select(&reader, &Options::default()).unwrap().cases;
        let skipped: Vec<bool> = cases.iter().map(|c| c.skip.is_some()).collect();
        assert_eq!(skipped, [true, true, false, false, false]);
        assert!(cases[0]
            .skip
            .as_ref()
            .unwrap()
            .starts_with("nondeterministic"));
    }

    #[test]
    fn same_arguments_known_only_in_part_are_not_called_nondeterministic() {
        use crate::snapshot::{Fields, Text};
        let args = |value: Value| {
            let mut out = Vec::new();
            Value::Args(Fields {
                entries: vec![("x".into(), value)],
                omitted: 0,
            })
            .encode(&mut out);
            out
        };
        let repr = args(Value::Repr {
            type_name: "m.Thing".into(),
            text: Text::Full("<Thing>".into()),
        });
        assert!(same_arguments_differed(Some(&repr)).contains("holds only part of them"));
        let whole = args(Value::Int(1));
        assert!(same_arguments_differed(Some(&whole)).starts_with("nondeterministic"));
    }
}
