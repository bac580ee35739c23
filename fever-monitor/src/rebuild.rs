//! Snapshot values back into Python objects: the arguments of a call `fever check` re-invokes,
//! and results `fever watch --persist-cache` kept on disk.
//!
//! Only what a snapshot holds whole is rebuilt: None, bools, ints, floats, complex numbers,
//! strings, bytes, lists, tuples, sets, dicts, references to classes, functions, modules and
//! enum members, and instances of importable classes (dataclasses and plain objects through
//! `__new__` and their recorded fields set with `object.__setattr__`, named tuples through
//! `tuple.__new__`, subclasses of built-ins from their built-in contents). Anything else (a
//! truncated string, a repr, a value below the depth limit, ...) is an error naming it, which
//! the caller reports as the reason a call is skipped. No user code runs except a custom
//! `__new__`.

use fever_core::check::same_name::{self, Candidate};
use fever_core::parameters::ParameterLayout;
use fever_core::snapshot::{
    decode, Array, ArrayData, Blob, BytesKind, Fields, Object, ObjectKind, RefKind, Seq, Text,
    Value,
};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyFunction, PyInt,
    PyList, PySet, PyString, PyTuple, PyType,
};

use crate::snapshot::{snapshot_value, SnapshotLimits};

/// Finds objects by module and qualified name (importing the module if needed).
pub trait Lookup {
    /// The object `module.qualname` (`qualname` empty: the module), or why it cannot be found.
    fn lookup<'py>(
        &mut self,
        py: Python<'py>,
        module: &str,
        qualname: &str,
    ) -> Result<Bound<'py, PyAny>, String>;
}

/// `qualname` (dotted, possibly empty) looked up by attributes from `module_object`, the module
/// named `module`; a [`Lookup`] uses it once it found the module.
///
/// A class's members are read from its `__dict__` first, as they were defined, so a
/// descriptor (a property, `staticmethod`, a library's own) is not run to find them.
pub fn member<'py>(
    module_object: Bound<'py, PyAny>,
    module: &str,
    qualname: &str,
) -> Result<Bound<'py, PyAny>, String> {
    let mut object = module_object;
    for part in qualname.split('.').filter(|p| !p.is_empty()) {
        let next = if object.is_instance_of::<PyType>() {
            object
                .getattr("__dict__")
                .and_then(|d| d.get_item(part))
                .or_else(|_| object.getattr(part))
        } else {
            object.getattr(part)
        };
        object = next.map_err(|_| format!("{module}.{qualname} does not exist any more"))?;
    }
    Ok(object)
}

/// The enum member `module.Class.NAME`, found as `Class[NAME]` finds it: in the class's
/// `_member_map_`. Its `__dict__` may hold an `enum.property` under the name instead, which
/// [`member`] would return: for a member named like a mixin's property, and on Python 3.12 for
/// every member `IntEnum._convert_` made (`socket.AF_INET6`, `re.IGNORECASE`). Where the map
/// has no such entry (a class that is no enum any more, a composite flag), it is looked up as
/// any other name.
fn enum_member<'py>(
    py: Python<'py>,
    names: &mut dyn Lookup,
    module: &str,
    qualname: &str,
) -> Result<Bound<'py, PyAny>, String> {
    let mapped = qualname.rsplit_once('.').and_then(|(class, name)| {
        names
            .lookup(py, module, class)
            .ok()?
            .getattr("_member_map_")
            .and_then(|members| members.get_item(name))
            .ok()
    });
    match mapped {
        Some(member) => Ok(member),
        None => names.lookup(py, module, qualname),
    }
}

/// Follows `__func__`, `fget`, `fset`, `fdel`, `func` and `__wrapped__` from `object` (what a
/// class or module holds under a function's name: a `staticmethod`, a property, a cached
/// property, a decorator's wrapper) to the function whose code is `qualname`; `object` itself
/// if none is found. Several found (a property's getter and setter share their qualname): the
/// one [`same_name::which`] picks for the recorded code, which started on line `first_line`
/// and was called with arguments named `arguments`.
pub fn unwrap<'py>(
    object: Bound<'py, PyAny>,
    qualname: &str,
    first_line: u32,
    arguments: &[&str],
) -> Bound<'py, PyAny> {
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([object.clone()]);
    let mut seen = 0;
    while let Some(current) = queue.pop_front() {
        seen += 1;
        if seen > 16 {
            break;
        }
        if current.is_instance_of::<PyFunction>() {
            if let Some(candidate) = candidate(&current, qualname) {
                found.push((current, candidate));
                continue;
            }
        }
        for attr in ["__func__", "fget", "fset", "fdel", "func", "__wrapped__"] {
            if let Some(inner) = current.getattr(attr).ok().filter(|v| !v.is_none()) {
                queue.push_back(inner);
            }
        }
    }
    let candidates: Vec<Candidate> = found.iter().map(|(_, c)| c.clone()).collect();
    match same_name::which(&candidates, first_line, arguments) {
        Some(at) => found.swap_remove(at).0,
        None => object,
    }
}

/// Whether `function`'s code is `qualname` and its parameters are named `arguments`.
pub fn takes(function: &Bound<'_, PyAny>, qualname: &str, arguments: &[String]) -> bool {
    candidate(function, qualname).is_some_and(|c| c.parameters == arguments)
}

/// The first line and parameters of `function`, if its code is `qualname`.
fn candidate(function: &Bound<'_, PyAny>, qualname: &str) -> Option<Candidate> {
    let code = function.getattr("__code__").ok()?;
    let name: String = code.getattr("co_qualname").ok()?.extract().ok()?;
    if name != qualname {
        return None;
    }
    let int = |attr: &str| code.getattr(attr).ok()?.extract::<usize>().ok();
    let flags = int("co_flags")?;
    // `*args` (CO_VARARGS) and `**kwargs` (CO_VARKEYWORDS) follow the named parameters.
    let count = int("co_argcount")?
        + int("co_kwonlyargcount")?
        + usize::from(flags & 0x04 != 0)
        + usize::from(flags & 0x08 != 0);
    let names: Vec<String> = code.getattr("co_varnames").ok()?.extract().ok()?;
    Some(Candidate {
        first_line: code.getattr("co_firstlineno").ok()?.extract().ok()?,
        parameters: names.into_iter().take(count).collect(),
    })
}

/// Why a value cannot be rebuilt (the reason a call is skipped).
pub type Unrebuildable = String;

/// The Python object `value` stands for.
pub fn rebuild<'py>(
    py: Python<'py>,
    value: &Value,
    names: &mut dyn Lookup,
) -> Result<Bound<'py, PyAny>, Unrebuildable> {
    build(py, value, names, &mut Vec::new())
}

/// The containers and objects being rebuilt, from the outermost: the levels a snapshot's
/// [`Value::Cycle`] counts up. A list, dict or plain object exists before its contents, so
/// a cycle through it is rebuilt; a tuple, set or named tuple does not (`None`).
type Ancestors<'py> = Vec<Option<Bound<'py, PyAny>>>;

/// `f` run one level deeper, `object` being the container at that level.
fn below<'py, T>(
    path: &mut Ancestors<'py>,
    object: Option<Bound<'py, PyAny>>,
    f: impl FnOnce(&mut Ancestors<'py>) -> T,
) -> T {
    path.push(object);
    let result = f(path);
    path.pop();
    result
}

fn build<'py>(
    py: Python<'py>,
    value: &Value,
    names: &mut dyn Lookup,
    path: &mut Ancestors<'py>,
) -> Result<Bound<'py, PyAny>, Unrebuildable> {
    let err = |e: PyErr| e.to_string();
    Ok(match value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => PyInt::new(py, *i).into_any(),
        Value::BigInt {
            negative,
            magnitude,
        } => {
            let int = py
                .get_type::<PyInt>()
                .call_method1("from_bytes", (PyBytes::new(py, magnitude), "big"))
                .map_err(err)?;
            if *negative {
                int.neg().map_err(err)?
            } else {
                int
            }
        }
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Complex { re, im } => PyComplex::from_doubles(py, *re, *im).into_any(),
        // Interned like the identifier-like string constants of code are, so a sentinel such
        // as `NO_PAD = "__no__pad__"` tested with `is` is the same object again.
        Value::Str(Text::Full(s)) if is_identifier_like(s) => PyString::intern(py, s).into_any(),
        Value::Str(Text::Full(s)) => PyString::new(py, s).into_any(),
        Value::Str(Text::Truncated { .. }) => {
            return Err("a str longer than the recorded snapshot".into())
        }
        Value::Bytes {
            kind,
            blob: Blob::Data(data),
        } => match kind {
            BytesKind::Bytes => PyBytes::new(py, data).into_any(),
            BytesKind::ByteArray => PyByteArray::new(py, data).into_any(),
            BytesKind::MemoryView => py
                .import("builtins")
                .and_then(|b| b.getattr("memoryview"))
                .and_then(|m| m.call1((PyBytes::new(py, data),)))
                .map_err(err)?,
        },
        Value::Bytes {
            kind,
            blob: Blob::Hashed { len, .. },
        } => {
            return Err(format!(
                "a {} of {len} bytes recorded by its hash only",
                kind.type_name()
            ))
        }
        Value::List(seq) => {
            let list = PyList::empty(py);
            let built = below(path, Some(list.clone().into_any()), |path| {
                items(py, seq, names, path)
            })?;
            for item in built {
                list.append(item).map_err(err)?;
            }
            list.into_any()
        }
        Value::Tuple(seq) => {
            let built = below(path, None, |path| items(py, seq, names, path))?;
            PyTuple::new(py, built).map_err(err)?.into_any()
        }
        Value::Set(seq) => {
            let built = below(path, None, |path| items(py, seq, names, path))?;
            PySet::new(py, built).map_err(err)?.into_any()
        }
        Value::FrozenSet(seq) => {
            let built = below(path, None, |path| items(py, seq, names, path))?;
            PyFrozenSet::new(py, built).map_err(err)?.into_any()
        }
        Value::Dict(map) => {
            if map.omitted > 0 {
                return Err(cut("a dict", map.omitted));
            }
            let dict = PyDict::new(py);
            below(path, Some(dict.clone().into_any()), |path| {
                for (k, v) in &map.entries {
                    dict.set_item(build(py, k, names, path)?, build(py, v, names, path)?)
                        .map_err(err)?;
                }
                Ok::<(), Unrebuildable>(())
            })?;
            dict.into_any()
        }
        Value::Object(object) if object.kind == ObjectKind::Reduced => {
            let name = format!("{}.{}", object.module, object.qualname);
            below(path, None, |path| reduced(py, object, names, path))
                .map_err(|e| format!("cannot rebuild a {name}: {e}"))?
        }
        Value::Object(object) => {
            let name = format!("{}.{}", object.module, object.qualname);
            if !object.complete {
                return Err(format!("a {name} with state a snapshot cannot hold"));
            }
            let class = names.lookup(py, &object.module, &object.qualname)?;
            instance(py, &class, object, names, path)
                .map_err(|e| format!("cannot rebuild a {name}: {e}"))?
        }
        Value::Ref {
            kind: RefKind::Method,
            qualname,
            ..
        } => return Err(format!("a bound method ({qualname})")),
        Value::Ref {
            kind: RefKind::Module,
            module,
            ..
        } => names.lookup(py, module, "")?,
        Value::Ref {
            kind: RefKind::Function,
            module,
            qualname,
        } => unwrap(names.lookup(py, module, qualname)?, qualname, 0, &[]),
        Value::Ref {
            kind: RefKind::EnumMember,
            module,
            qualname,
        } => enum_member(py, names, module, qualname)?,
        Value::Ref {
            module, qualname, ..
        } => names.lookup(py, module, qualname)?,
        Value::Exception(e) => return Err(format!("an exception ({})", e.qualname)),
        Value::Array(array) => numpy_array(py, array)?,
        Value::Repr {
            type_name,
            text: Text::Full(text),
        } if REPR_CONSTRUCTED.iter().any(|(name, ..)| name == type_name) => {
            from_repr(py, type_name, text)
                .ok_or_else(|| format!("a {type_name} recorded by its repr only"))?
        }
        Value::Repr { type_name, .. } => {
            return Err(format!("a {type_name} recorded by its repr only"))
        }
        Value::Unrepresentable { type_name } | Value::Opaque { type_name } => {
            return Err(format!("a {type_name} a snapshot does not look into"))
        }
        Value::DepthLimit { type_name } => {
            return Err(format!(
            "a {type_name} recorded by its type only (the snapshot's depth limit or node budget)"
        ))
        }
        Value::Cycle { levels } => {
            let at = usize::try_from(*levels)
                .ok()
                .and_then(|levels| path.len().checked_sub(levels));
            match at.and_then(|at| path.get(at)).cloned().flatten() {
                Some(ancestor) => ancestor,
                None => return Err("a tuple or set that contains itself".into()),
            }
        }
        Value::Args(_) => return Err("arguments nested in a value".into()),
    })
}

/// Standard types whose repr is a call of their constructor with literal arguments:
/// `(type name, repr prefix, module, constructor)`. Rebuilt by parsing the arguments with
/// `ast.literal_eval` (which runs nothing) and calling the constructor.
const REPR_CONSTRUCTED: &[(&str, &str, &str, &str)] = &[
    ("range", "range(", "builtins", "range"),
    ("slice", "slice(", "builtins", "slice"),
    ("decimal.Decimal", "Decimal(", "decimal", "Decimal"),
    ("fractions.Fraction", "Fraction(", "fractions", "Fraction"),
    ("datetime.date", "datetime.date(", "datetime", "date"),
    (
        "datetime.datetime",
        "datetime.datetime(",
        "datetime",
        "datetime",
    ),
    ("datetime.time", "datetime.time(", "datetime", "time"),
    (
        "datetime.timedelta",
        "datetime.timedelta(",
        "datetime",
        "timedelta",
    ),
];

/// The value of type `type_name` whose repr is `text`, when that repr is its constructor called
/// with literal positional and keyword arguments (`datetime.timedelta(days=1)`).
fn from_repr<'py>(py: Python<'py>, type_name: &str, text: &str) -> Option<Bound<'py, PyAny>> {
    let (_, prefix, module, constructor) = REPR_CONSTRUCTED
        .iter()
        .find(|(name, ..)| *name == type_name)?;
    let inside = text.strip_prefix(prefix)?.strip_suffix(')')?;
    let ast = py.import("ast").ok()?;
    // `f(ARGS)` parsed as a call: its arguments must all be literals.
    let call = ast
        .call_method1("parse", (format!("f({inside})"), "<repr>", "eval"))
        .ok()?
        .getattr("body")
        .ok()?;
    let literal = |node: Bound<'py, PyAny>| ast.call_method1("literal_eval", (node,)).ok();
    let args: Vec<Bound<'py, PyAny>> = call
        .getattr("args")
        .ok()?
        .try_iter()
        .ok()?
        .map(|node| literal(node.ok()?))
        .collect::<Option<_>>()?;
    let kwargs = PyDict::new(py);
    for keyword in call.getattr("keywords").ok()?.try_iter().ok()? {
        let keyword = keyword.ok()?;
        let name = keyword.getattr("arg").ok()?;
        if name.is_none() {
            return None;
        }
        kwargs
            .set_item(name, literal(keyword.getattr("value").ok()?)?)
            .ok()?;
    }
    py.import(*module)
        .ok()?
        .getattr(*constructor)
        .ok()?
        .call(PyTuple::new(py, args).ok()?, Some(&kwargs))
        .ok()
}

/// A `numpy.ndarray` recorded with its data: that dtype, shape and data, in a new array.
fn numpy_array<'py>(py: Python<'py>, array: &Array) -> Result<Bound<'py, PyAny>, Unrebuildable> {
    let ArrayData::Data(data) = &array.data else {
        return Err(format!(
            "a {} recorded without its data (too big)",
            array.type_name
        ));
    };
    if array.type_name != "numpy.ndarray" {
        return Err(format!("an array ({})", array.type_name));
    }
    let err = |e: PyErr| format!("cannot rebuild a numpy.ndarray: {e}");
    let numpy = py.import("numpy").map_err(err)?;
    let flat = numpy
        .call_method1("frombuffer", (PyBytes::new(py, data), array.dtype.as_str()))
        .map_err(err)?;
    let shape = PyTuple::new(py, &array.shape).map_err(err)?;
    flat.call_method1("reshape", (shape,))
        .and_then(|a| a.call_method0("copy"))
        .map_err(err)
}

/// Made only of the characters whose string constants Python interns (letters, digits, `_`).
fn is_identifier_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The rebuilt items of a container recorded whole.
fn items<'py>(
    py: Python<'py>,
    seq: &Seq,
    names: &mut dyn Lookup,
    path: &mut Ancestors<'py>,
) -> Result<Vec<Bound<'py, PyAny>>, Unrebuildable> {
    if seq.omitted > 0 {
        return Err(cut("a container", seq.omitted));
    }
    seq.items
        .iter()
        .map(|v| build(py, v, names, path))
        .collect()
}

fn cut(what: &str, omitted: u64) -> String {
    format!("{what} with {omitted} more items than the snapshot holds")
}

/// An instance of `class` with the recorded state. A plain object or dataclass is created
/// (`__new__`) before its fields are rebuilt, so they may refer back to it.
fn instance<'py>(
    py: Python<'py>,
    class: &Bound<'py, PyAny>,
    recorded: &Object,
    names: &mut dyn Lookup,
    path: &mut Ancestors<'py>,
) -> Result<Bound<'py, PyAny>, Unrebuildable> {
    let err = |e: PyErr| e.to_string();
    let fields = &recorded.fields;
    if fields.omitted > 0 {
        return Err(cut("an object", fields.omitted));
    }
    let builtins = py.import("builtins").map_err(err)?;
    let fields_below = |path: &mut Ancestors<'py>, names: &mut dyn Lookup| {
        fields
            .entries
            .iter()
            .map(|(name, v)| Ok((name, build(py, v, names, path)?)))
            .collect::<Result<Vec<_>, Unrebuildable>>()
    };
    let (object, values) = match (recorded.kind, recorded.base.as_deref()) {
        (ObjectKind::NamedTuple, _) => {
            let values = below(path, None, |path| fields_below(path, names))?;
            let items = PyTuple::new(py, values.iter().map(|(_, v)| v)).map_err(err)?;
            let tuple = builtins.getattr("tuple").map_err(err)?;
            return tuple.call_method1("__new__", (class, items)).map_err(err);
        }
        (ObjectKind::Subclass, Some(base)) => {
            // The built-in contents are at the object's own level, not one below.
            let (contents, values) = below(path, None, |path| {
                let contents = match base {
                    Value::List(seq) => PyList::new(py, items(py, seq, names, path)?)
                        .map_err(err)?
                        .into_any(),
                    Value::Tuple(seq) => PyTuple::new(py, items(py, seq, names, path)?)
                        .map_err(err)?
                        .into_any(),
                    Value::Set(seq) => PySet::new(py, items(py, seq, names, path)?)
                        .map_err(err)?
                        .into_any(),
                    Value::FrozenSet(seq) => PyFrozenSet::new(py, items(py, seq, names, path)?)
                        .map_err(err)?
                        .into_any(),
                    Value::Dict(map) if map.omitted == 0 => {
                        let dict = PyDict::new(py);
                        for (k, v) in &map.entries {
                            dict.set_item(build(py, k, names, path)?, build(py, v, names, path)?)
                                .map_err(err)?;
                        }
                        dict.into_any()
                    }
                    other => build(py, other, names, path)?,
                };
                Ok::<_, Unrebuildable>((contents, fields_below(path, names)?))
            })?;
            let base_type = contents.get_type();
            let mutable = contents.is_instance_of::<PyList>()
                || contents.is_instance_of::<PyDict>()
                || contents.is_instance_of::<PySet>()
                || contents.is_instance_of::<PyByteArray>();
            let object = if mutable {
                let object = base_type.call_method1("__new__", (class,)).map_err(err)?;
                base_type
                    .call_method1("__init__", (&object, contents))
                    .map_err(err)?;
                object
            } else {
                base_type
                    .call_method1("__new__", (class, contents))
                    .map_err(err)?
            };
            (object, values)
        }
        _ => {
            let object = class.call_method1("__new__", (class,)).map_err(err)?;
            let values = below(path, Some(object.clone()), |path| fields_below(path, names))?;
            (object, values)
        }
    };
    let set = builtins
        .getattr("object")
        .and_then(|o| o.getattr("__setattr__"))
        .map_err(err)?;
    for (name, value) in values {
        set.call1((&object, name, value)).map_err(err)?;
    }
    Ok(object)
}

/// The object a module holds under the name the recorded `value` gives in its `__module__`
/// and `__qualname__` fields (a decorator's object standing for a function, as
/// `functools.wraps` makes them), when it is an instance of the recorded class: what the
/// recording may have passed as itself (code may compare it by identity), where a rebuilt
/// copy is another object. A partial application of it carries the same names, so this is
/// only a candidate.
pub fn named_instance<'py>(
    py: Python<'py>,
    value: &Value,
    names: &mut dyn Lookup,
) -> Option<Bound<'py, PyAny>> {
    let Value::Object(object) = value else {
        return None;
    };
    let class = names.lookup(py, &object.module, &object.qualname).ok()?;
    let field = |name: &str| {
        object.fields.entries.iter().find_map(|(n, v)| match v {
            Value::Str(Text::Full(s)) if n == name => Some(s.as_str()),
            _ => None,
        })
    };
    let (module, qualname) = (field("__module__")?, field("__qualname__")?);
    if qualname.contains('<') {
        return None;
    }
    let held = names.lookup(py, module, qualname).ok()?;
    held.is_instance(&class).unwrap_or(false).then_some(held)
}

/// The functions a [`ObjectKind::Reduced`] object may be made by, besides its own C class:
/// the standard library's reconstructors.
const RECONSTRUCTORS: &[(&str, &str)] = &[
    ("builtins", "iter"),
    ("copyreg", "__newobj__"),
    ("copyreg", "__newobj_ex__"),
    ("copyreg", "_reconstructor"),
    ("array", "_array_reconstructor"),
];

/// Whether `class` is a class of the standard library defined in C (no Python function in
/// its namespace): the only kind a snapshot records by its reduction, and the only kind
/// rebuilt from one, so a trace cannot make `fever check` call anything else.
fn is_c_stdlib_class(py: Python<'_>, class: &Bound<'_, PyAny>) -> PyResult<bool> {
    let Ok(class) = class.cast::<PyType>() else {
        return Ok(false);
    };
    let module: String = class.getattr("__module__")?.extract()?;
    let top = module
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_start_matches('_');
    let stdlib = py.import("sys")?.getattr("stdlib_module_names")?;
    if module != "builtins" && !stdlib.contains(top)? && !stdlib.contains(format!("_{top}"))? {
        return Ok(false);
    }
    for value in class
        .getattr("__dict__")?
        .call_method0("values")?
        .try_iter()?
    {
        if value?.is_instance_of::<PyFunction>() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A [`ObjectKind::Reduced`] object: its callable called with its arguments (the callable is
/// the object's own C class of the standard library, or one of [`RECONSTRUCTORS`] making
/// such a class), then `__setstate__(state)`, then its list items appended.
fn reduced<'py>(
    py: Python<'py>,
    object: &Object,
    names: &mut dyn Lookup,
    path: &mut Ancestors<'py>,
) -> Result<Bound<'py, PyAny>, Unrebuildable> {
    let err = |e: PyErr| e.to_string();
    if object.fields.omitted > 0 {
        return Err(cut("an object's reduction", object.fields.omitted));
    }
    let field = |name: &str| {
        object
            .fields
            .entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    };
    let Some(Value::Ref {
        kind,
        module,
        qualname,
    }) = field("callable")
    else {
        return Err("its reduction names no callable".into());
    };
    let callable = names.lookup(py, module, qualname)?;
    // `iter(a rebuilt sequence)`: an iterator, whose class has no importable name.
    let made_by_iter = (module.as_str(), qualname.as_str()) == ("builtins", "iter");
    let class = if made_by_iter {
        callable.clone()
    } else {
        let class = names.lookup(py, &object.module, &object.qualname)?;
        if !is_c_stdlib_class(py, &class).map_err(err)? {
            return Err("not a class of the standard library defined in C".into());
        }
        class
    };
    let args = match field("args")
        .map(|a| build(py, a, names, path))
        .transpose()?
    {
        Some(args) => args.cast_into::<PyTuple>().map_err(|e| e.to_string())?,
        None => return Err("its reduction has no arguments".into()),
    };
    let allowed = match kind {
        RefKind::Class => class
            .cast::<PyType>()
            .is_ok_and(|c| c.is_subclass(&callable).unwrap_or(false)),
        _ => {
            made_by_iter
                || RECONSTRUCTORS.contains(&(module.as_str(), qualname.as_str()))
                    && (module != "copyreg" || args.get_item(0).is_ok_and(|first| first.is(&class)))
        }
    };
    if !allowed {
        return Err(format!(
            "made by {module}.{qualname}, which fever does not call"
        ));
    }
    let made = callable.call1(&args).map_err(err)?;
    if let Some(state) = field("state") {
        let state = build(py, state, names, path)?;
        made.call_method1("__setstate__", (state,)).map_err(err)?;
    }
    if let Some(Value::List(seq)) = field("listitems") {
        for item in items(py, seq, names, path)? {
            made.call_method1("append", (item,)).map_err(err)?;
        }
    }
    Ok(made)
}

/// How a function takes its parameters, read from it as it is now: the names a recorded
/// argument snapshot (parameters in signature order: positional, `*args`, keyword-only,
/// `**kwargs`; plain names) is bound back by, and its default values.
#[derive(Debug, Default)]
pub struct Signature<'py> {
    /// `co_argcount`: positional parameters, positional-only ones included.
    pub positional: usize,
    /// The name of the `*args` parameter, if any.
    pub varargs: Option<String>,
    /// The name of the `**kwargs` parameter, if any.
    pub varkw: Option<String>,
    /// Parameters with a default value, and the value (`__defaults__`, `__kwdefaults__`).
    pub defaults: Vec<(String, Bound<'py, PyAny>)>,
}

impl<'py> Signature<'py> {
    /// The signature of `function`.
    pub fn of(function: &Bound<'py, PyAny>) -> PyResult<Self> {
        use crate::compat::{CO_VARARGS, CO_VARKEYWORDS};
        let code = function.getattr("__code__")?;
        let flags: i64 = code.getattr("co_flags")?.extract()?;
        let positional: usize = code.getattr("co_argcount")?.extract()?;
        let layout = ParameterLayout {
            positional,
            keyword_only: code.getattr("co_kwonlyargcount")?.extract()?,
            varargs: flags & CO_VARARGS != 0,
            varkw: flags & CO_VARKEYWORDS != 0,
            ..ParameterLayout::default()
        };
        let names: Vec<String> = code.getattr("co_varnames")?.extract()?;
        let varargs = layout.varargs().and_then(|i| names.get(i).cloned());
        let varkw = layout.varkw().and_then(|i| names.get(i).cloned());
        let mut defaults = Vec::new();
        let positional_defaults = function.getattr("__defaults__")?;
        if !positional_defaults.is_none() {
            let values: Vec<Bound<'py, PyAny>> = positional_defaults.extract()?;
            let first = positional.saturating_sub(values.len());
            let named = names.get(first..positional).unwrap_or_default();
            defaults.extend(named.iter().cloned().zip(values));
        }
        if let Ok(keyword_defaults) = function.getattr("__kwdefaults__")?.cast_into::<PyDict>() {
            for (name, value) in keyword_defaults.iter() {
                defaults.push((name.extract()?, value));
            }
        }
        Ok(Self {
            positional,
            varargs,
            varkw,
            defaults,
        })
    }

    /// The default value of parameter `name` when `recorded` is a snapshot of it as it is now:
    /// the very object, so a sentinel compared with `is` still is one.
    fn default_for(
        &self,
        name: &str,
        recorded: &Value,
        limits: &SnapshotLimits,
    ) -> Option<Bound<'py, PyAny>> {
        let (_, default) = self.defaults.iter().find(|(n, _)| n == name)?;
        let mut bytes = Vec::new();
        // SAFETY: the GIL is held (`default` is bound) and the object is alive.
        unsafe { snapshot_value(default.as_ptr(), limits, &mut bytes) };
        (decode(&bytes).ok()? == *recorded).then(|| default.clone())
    }
}

/// Positional and keyword arguments binding a recorded arguments snapshot to a function with
/// `signature`: positional parameters (positional-only ones too) by position, the `*args` tuple
/// spread after them, keyword-only parameters by name, the `**kwargs` dict merged in. A value
/// recorded equal to its parameter's default (snapshotted with `limits`) is that default.
pub fn arguments<'py>(
    py: Python<'py>,
    args: &Fields,
    signature: &Signature<'py>,
    names: &mut dyn Lookup,
    limits: &SnapshotLimits,
) -> Result<(Bound<'py, PyTuple>, Bound<'py, PyDict>), Unrebuildable> {
    let err = |e: PyErr| e.to_string();
    if args.omitted > 0 {
        return Err(cut("an argument list", args.omitted));
    }
    let mut list = Vec::new();
    let kwargs = PyDict::new(py);
    let mut after_star = false;
    for (name, value) in &args.entries {
        let name = name.trim_start_matches('*');
        let value = match signature.default_for(name, value, limits) {
            Some(default) => default,
            None => rebuild(py, value, names).map_err(|e| format!("argument {name}: {e}"))?,
        };
        if signature.varkw.as_deref() == Some(name) {
            kwargs.call_method1("update", (value,)).map_err(err)?;
        } else if signature.varargs.as_deref() == Some(name) {
            after_star = true;
            list.extend(
                value
                    .try_iter()
                    .map_err(err)?
                    .collect::<PyResult<Vec<_>>>()
                    .map_err(err)?,
            );
        } else if !after_star && list.len() < signature.positional {
            list.push(value);
        } else {
            kwargs.set_item(name, value).map_err(err)?;
        }
    }
    Ok((PyTuple::new(py, list).map_err(err)?, kwargs))
}
