//! Whether a re-invoked call did what the recording says: [`same_outcome`] compares two
//! [`Outcome`]s as snapshot values.
//!
//! Values are equal when Python would call them equal, as far as snapshots show: dicts, sets
//! and object fields regardless of order, everything else in order; floats (and complex parts)
//! within a relative tolerance (`--rel-tol`, [`DEFAULT_REL_TOL`]); NaN equals NaN; values known
//! by their repr alone compare by repr with memory addresses (`at 0x7f…`) left out, since those
//! change from run to run. Exceptions compare by type and message. A value or exception of a
//! different type never matches.

use super::set_text::same_but_item_order;
use crate::snapshot::{
    decode, Exception, Fields, Map, Object, ObjectKind, RefKind, Seq, Text, Value,
};

/// Default `--rel-tol`: absorbs the last-bit differences of floating-point libraries between
/// machines, far below any change a program's logic makes.
pub const DEFAULT_REL_TOL: f64 = 1e-9;

/// What a call did, as snapshot bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned this value.
    Returned(Vec<u8>),
    /// It raised this exception.
    Raised(Vec<u8>),
}

/// `actual` matches `expected` (see the [module docs](self)).
pub fn same_outcome(expected: &Outcome, actual: &Outcome, rel_tol: f64) -> bool {
    match (expected, actual) {
        (Outcome::Returned(old), Outcome::Returned(new))
        | (Outcome::Raised(old), Outcome::Raised(new)) => same_snapshot(old, new, rel_tol),
        _ => false,
    }
}

/// Two snapshots (both values or both exceptions) match. Snapshots that do not decode match
/// only byte for byte.
pub fn same_snapshot(old: &[u8], new: &[u8], rel_tol: f64) -> bool {
    if old == new {
        return true;
    }
    match (decode(old), decode(new)) {
        (Ok(Value::Exception(old)), Ok(Value::Exception(new))) => {
            old.module == new.module && old.qualname == new.qualname && old.message == new.message
        }
        (Ok(old), Ok(new)) => values_match(&old, &new, rel_tol),
        _ => old == new,
    }
}

/// `old` and `new` are equal, floats within `rel_tol`.
pub fn values_match(old: &Value, new: &Value, rel_tol: f64) -> bool {
    let m = |x: &Value, y: &Value| values_match(x, y, rel_tol);
    match (old, new) {
        (Value::Float(x), Value::Float(y)) => floats_close(*x, *y, rel_tol),
        (Value::Complex { re: r1, im: i1 }, Value::Complex { re: r2, im: i2 }) => {
            floats_close(*r1, *r2, rel_tol) && floats_close(*i1, *i2, rel_tol)
        }
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => ordered(x, y, &m),
        (Value::Set(x), Value::Set(y)) | (Value::FrozenSet(x), Value::FrozenSet(y)) => {
            x.omitted == y.omitted && unordered(&x.items, &y.items, |p, q| m(p, q))
        }
        (Value::Dict(x), Value::Dict(y)) => dicts(x, y, &m),
        (Value::Object(x), Value::Object(y)) => objects(x, y, &m),
        (Value::Exception(x), Value::Exception(y)) => exceptions(x, y, &m),
        (
            Value::Repr {
                type_name: t1,
                text: Text::Full(x),
            },
            Value::Repr {
                type_name: t2,
                text: Text::Full(y),
            },
        ) => t1 == t2 && without_addresses(x) == without_addresses(y),
        // Recorded before fever snapshotted C objects by their reduction: only the type is
        // known, and it is all that is compared.
        (Value::Opaque { type_name } | Value::Repr { type_name, .. }, Value::Object(object))
            if object.kind == ObjectKind::Reduced =>
        {
            *type_name == object.type_name()
        }
        (Value::Args(x), Value::Args(y)) => {
            x.omitted == y.omitted
                && x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .zip(&y.entries)
                    .all(|((n1, v1), (n2, v2))| n1 == n2 && m(v1, v2))
        }
        _ => old == new,
    }
}

/// `text` with the digits of every hexadecimal number (`0x7f3a…`) left out: default reprs
/// show the object's address.
fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at + 2]);
        rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

#[allow(clippy::float_cmp)] // exact equality first: infinities, and a tolerance of 0
fn floats_close(x: f64, y: f64, rel_tol: f64) -> bool {
    x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= rel_tol * x.abs().max(y.abs())
}

pub(super) fn ordered(x: &Seq, y: &Seq, m: &impl Fn(&Value, &Value) -> bool) -> bool {
    x.omitted == y.omitted
        && x.items.len() == y.items.len()
        && x.items.iter().zip(&y.items).all(|(p, q)| m(p, q))
}

/// `actual` differs from `expected` only in the order of the items of lists or tuples that hold
/// strings, or of the quoted strings of a set a text (an exception's message) shows: what
/// iterating a set of strings gives, whose order changes from process to process with the hash
/// seed (`PYTHONHASHSEED`).
pub fn differs_in_string_order(expected: &Outcome, actual: &Outcome, rel_tol: f64) -> bool {
    let ((Outcome::Returned(old), Outcome::Returned(new))
    | (Outcome::Raised(old), Outcome::Raised(new))) = (expected, actual)
    else {
        return false;
    };
    if same_snapshot(old, new, rel_tol) {
        return false;
    }
    match (decode(old), decode(new)) {
        (Ok(old), Ok(new)) => {
            !values_match(&old, &new, rel_tol) && any_string_order(&old, &new, rel_tol)
        }
        _ => false,
    }
}

/// Whether the snapshot `bytes` (a call's arguments) holds, anywhere, a set or frozenset of
/// strings: what the call computes from it can depend on the order the set iterates in, which
/// changes with the hash seed.
pub fn holds_string_set(bytes: &[u8]) -> bool {
    fn walk(value: &Value) -> bool {
        match value {
            Value::Set(seq) | Value::FrozenSet(seq) => {
                seq.items.iter().any(|v| matches!(v, Value::Str(_))) || seq.items.iter().any(walk)
            }
            Value::List(seq) | Value::Tuple(seq) => seq.items.iter().any(walk),
            Value::Dict(map) => map.entries.iter().any(|(k, v)| walk(k) || walk(v)),
            Value::Object(object) => {
                object.base.as_deref().is_some_and(walk)
                    || object.fields.entries.iter().any(|(_, v)| walk(v))
            }
            Value::Args(fields) => fields.entries.iter().any(|(_, v)| walk(v)),
            _ => false,
        }
    }
    decode(bytes).is_ok_and(|value| walk(&value))
}

/// [`values_match`], except that lists and tuples holding strings may list their items in any
/// order, and so may the sets of quoted strings texts show (see [`set_text`](super::set_text)).
fn any_string_order(old: &Value, new: &Value, rel_tol: f64) -> bool {
    let m = |x: &Value, y: &Value| any_string_order(x, y, rel_tol);
    let holds_strings = |seq: &Seq| seq.items.iter().any(|v| matches!(v, Value::Str(_)));
    let texts = |x: Option<&Text>, y: Option<&Text>| match (x, y) {
        (Some(Text::Full(x)), Some(Text::Full(y))) => x == y || same_but_item_order(x, y),
        _ => x == y,
    };
    match (old, new) {
        (Value::Str(x), Value::Str(y)) => texts(Some(x), Some(y)),
        (Value::Exception(x), Value::Exception(y)) => {
            x.module == y.module
                && x.qualname == y.qualname
                && texts(x.message.as_ref(), y.message.as_ref())
        }
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            if holds_strings(x) && holds_strings(y) {
                x.omitted == y.omitted && unordered(&x.items, &y.items, m)
            } else {
                ordered(x, y, &m)
            }
        }
        _ => values_match(old, new, rel_tol),
    }
}

/// Every item of `xs` matches a different item of `ys`, and there are as many (greedy: a
/// snapshot holds few items per container).
pub(super) fn unordered<T>(xs: &[T], ys: &[T], m: impl Fn(&T, &T) -> bool) -> bool {
    if xs.len() != ys.len() {
        return false;
    }
    let mut used = vec![false; ys.len()];
    xs.iter().all(|x| {
        let found = ys.iter().enumerate().position(|(i, y)| !used[i] && m(x, y));
        found.is_some_and(|i| {
            used[i] = true;
            true
        })
    })
}

fn dicts(x: &Map, y: &Map, m: &impl Fn(&Value, &Value) -> bool) -> bool {
    x.omitted == y.omitted
        && unordered(&x.entries, &y.entries, |(k1, v1), (k2, v2)| {
            m(k1, k2) && m(v1, v2)
        })
}

fn fields(x: &Fields, y: &Fields, m: &impl Fn(&Value, &Value) -> bool) -> bool {
    x.omitted == y.omitted
        && unordered(&x.entries, &y.entries, |(n1, v1), (n2, v2)| {
            n1 == n2 && m(v1, v2)
        })
}

pub(super) fn objects(x: &Object, y: &Object, m: &impl Fn(&Value, &Value) -> bool) -> bool {
    if let (Some((args1, at1)), Some((args2, at2))) = (iterator(x), iterator(y)) {
        return m(args1, args2)
            && match (at1, at2) {
                (Some(old), Some(new)) => m(old, new),
                (None, None) => true,
                _ => false,
            };
    }
    let same_base = match (&x.base, &y.base) {
        (Some(old), Some(new)) => m(old, new),
        (None, None) => true,
        _ => false,
    };
    x.kind == y.kind
        && x.module == y.module
        && x.qualname == y.qualname
        && x.complete == y.complete
        && same_base
        && fields(&x.fields, &y.fields, m)
}

/// The reduction of an iterator made by `iter(...)`: its arguments and its position (`None`
/// for 0 or none), or `None` when `object` is not one. An iterator gives no position before its
/// first item, nor once exhausted or when its argument is what is left (a dict's key iterator
/// reduces to `iter(list of the keys left)`, rebuilt as a list's iterator), so iterators compare
/// by these alone, whatever their class.
fn iterator(object: &Object) -> Option<(&Value, Option<&Value>)> {
    if object.kind != ObjectKind::Reduced {
        return None;
    }
    let field = |name: &str| {
        object
            .fields
            .entries
            .iter()
            .find_map(|(n, v)| (n == name).then_some(v))
    };
    let Some(Value::Ref {
        kind: RefKind::Builtin,
        module,
        qualname,
    }) = field("callable")
    else {
        return None;
    };
    if (module.as_str(), qualname.as_str()) != ("builtins", "iter") {
        return None;
    }
    let at = field("state").filter(|v| !matches!(v, Value::Int(0)));
    Some((field("args")?, at))
}

/// The class of the first of two equal iterators in the snapshot `bytes` (a call's arguments):
/// a snapshot records each by value, so the recording may have passed one iterator twice (as
/// `zip(*[iter(s)] * 2)` does), which the rebuilt arguments cannot.
pub fn equal_iterators(bytes: &[u8]) -> Option<String> {
    fn walk<'v>(value: &'v Value, found: &mut Vec<&'v Object>) {
        match value {
            Value::Set(seq) | Value::FrozenSet(seq) | Value::List(seq) | Value::Tuple(seq) => {
                seq.items.iter().for_each(|v| walk(v, found));
            }
            Value::Dict(map) => map.entries.iter().for_each(|(k, v)| {
                walk(k, found);
                walk(v, found);
            }),
            Value::Object(object) => {
                if iterator(object).is_some() {
                    found.push(object);
                }
                object.base.iter().for_each(|v| walk(v, found));
                object
                    .fields
                    .entries
                    .iter()
                    .for_each(|(_, v)| walk(v, found));
            }
            Value::Args(fields) => fields.entries.iter().for_each(|(_, v)| walk(v, found)),
            _ => {}
        }
    }
    let value = decode(bytes).ok()?;
    let mut found = Vec::new();
    walk(&value, &mut found);
    found.iter().enumerate().find_map(|(i, x)| {
        found[i + 1..]
            .iter()
            .any(|y| objects(x, y, &|p: &Value, q: &Value| values_match(p, q, 0.0)))
            .then(|| x.type_name())
    })
}

fn exceptions(x: &Exception, y: &Exception, m: &impl Fn(&Value, &Value) -> bool) -> bool {
    x.module == y.module
        && x.qualname == y.qualname
        && x.message == y.message
        && ordered(&x.args, &y.args, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ObjectKind;

    fn bytes(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn returned(value: &Value) -> Outcome {
        Outcome::Returned(bytes(value))
    }

    fn seq(items: Vec<Value>) -> Seq {
        Seq { items, omitted: 0 }
    }

    fn s(text: &str) -> Value {
        Value::Str(Text::Full(text.into()))
    }

    fn list(items: &[Value]) -> Value {
        Value::List(seq(items.to_vec()))
    }

    #[test]
    fn only_strings_in_another_order_differ_in_string_order() {
        let abc = returned(&list(&[s("a"), s("b"), s("c")]));
        let cab = returned(&list(&[s("c"), s("a"), s("b")]));
        assert!(differs_in_string_order(&abc, &cab, 0.0));
        // Equal is not a difference; other items are not the same strings reordered.
        assert!(!differs_in_string_order(&abc, &abc, 0.0));
        let abd = returned(&list(&[s("a"), s("b"), s("d")]));
        assert!(!differs_in_string_order(&abc, &abd, 0.0));
        let ints = returned(&list(&[Value::Int(1), Value::Int(2)]));
        let swapped = returned(&list(&[Value::Int(2), Value::Int(1)]));
        assert!(!differs_in_string_order(&ints, &swapped, 0.0));
        let nested = returned(&list(&[list(&[s("x"), s("y")]), Value::Int(3)]));
        let nested_swapped = returned(&list(&[list(&[s("y"), s("x")]), Value::Int(3)]));
        assert!(differs_in_string_order(&nested, &nested_swapped, 0.0));
    }

    #[test]
    fn a_message_listing_a_set_of_strings_in_another_order_differs_in_string_order() {
        let raised = |message: &str| Outcome::Raised(bytes(&exception("ValueError", message, 1)));
        let onpe = raised("invalid chars {'o', 'n', 'p', 'e'}");
        let epno = raised("invalid chars {'e', 'p', 'n', 'o'}");
        assert!(differs_in_string_order(&onpe, &epno, 0.0));
        assert!(!differs_in_string_order(&onpe, &onpe, 0.0));
        assert!(!differs_in_string_order(
            &onpe,
            &raised("invalid chars {'o', 'n'}"),
            0.0
        ));
        let other_type = Outcome::Raised(bytes(&exception(
            "KeyError",
            "invalid chars {'e', 'p', 'n', 'o'}",
            1,
        )));
        assert!(!differs_in_string_order(&onpe, &other_type, 0.0));
        // A returned string too.
        let text = |t: &str| Outcome::Returned(bytes(&s(t)));
        assert!(differs_in_string_order(
            &text("{'a', 'b'}"),
            &text("{'b', 'a'}"),
            0.0
        ));
    }

    /// `iter(...)`'s reduction, as a snapshot records an iterator of class `qualname`.
    fn iterator(qualname: &str, args: Value, state: Option<i64>) -> Value {
        let mut entries = vec![
            (
                "callable".into(),
                Value::Ref {
                    kind: RefKind::Builtin,
                    module: "builtins".into(),
                    qualname: "iter".into(),
                },
            ),
            ("args".into(), Value::Tuple(seq(vec![args]))),
        ];
        entries.extend(state.map(|at| ("state".into(), Value::Int(at))));
        Value::Object(Object {
            kind: ObjectKind::Reduced,
            module: "builtins".into(),
            qualname: qualname.into(),
            complete: true,
            base: None,
            fields: Fields {
                entries,
                omitted: 0,
            },
        })
    }

    #[test]
    fn iterators_compare_by_what_is_left_to_iterate() {
        let m = |x: &Value, y: &Value| values_match(x, y, 0.0);
        let empty = || list(&[]);
        // Exhausted (no position) and rebuilt from that (position 0): the same.
        let exhausted = iterator("list_iterator", empty(), None);
        assert!(m(&exhausted, &iterator("list_iterator", empty(), Some(0))));
        // A dict's key iterator reduces to the keys left, rebuilt as a list's iterator.
        let keys = iterator("dict_keyiterator", list(&[s("a")]), None);
        assert!(m(
            &keys,
            &iterator("list_iterator", list(&[s("a")]), Some(0))
        ));
        // Another position or other items differ.
        let ab = || list(&[s("a"), s("b")]);
        assert!(!m(
            &iterator("list_iterator", ab(), Some(1)),
            &iterator("list_iterator", ab(), None)
        ));
        assert!(!m(&keys, &iterator("list_iterator", list(&[s("b")]), None)));
    }

    #[test]
    fn equal_iterators_in_the_arguments_are_found() {
        let args = |items: Vec<Value>| {
            bytes(&Value::Args(Fields {
                entries: vec![("iterables".into(), Value::Tuple(seq(items)))],
                omitted: 0,
            }))
        };
        let abc = || iterator("str_ascii_iterator", s("abc"), Some(0));
        assert_eq!(
            equal_iterators(&args(vec![abc(), abc()])).as_deref(),
            Some("str_ascii_iterator")
        );
        let other = iterator("str_ascii_iterator", s("abc"), Some(1));
        assert_eq!(equal_iterators(&args(vec![abc(), other])), None);
        assert_eq!(equal_iterators(&args(vec![s("abc"), s("abc")])), None);
    }

    fn exception(qualname: &str, message: &str, arg: i64) -> Value {
        Value::Exception(Exception {
            module: "builtins".into(),
            qualname: qualname.into(),
            message: Some(Text::Full(message.into())),
            args: seq(vec![Value::Int(arg)]),
        })
    }

    #[test]
    fn floats_within_the_relative_tolerance() {
        let a = returned(&Value::List(seq(vec![Value::Float(1.0), Value::Int(2)])));
        let b = returned(&Value::List(seq(vec![
            Value::Float(1.0 + 1e-12),
            Value::Int(2),
        ])));
        let c = returned(&Value::List(seq(vec![Value::Float(1.001), Value::Int(2)])));
        assert!(same_outcome(&a, &a, 0.0));
        assert!(!same_outcome(&a, &b, 0.0));
        assert!(same_outcome(&a, &b, DEFAULT_REL_TOL));
        assert!(!same_outcome(&a, &c, DEFAULT_REL_TOL));
        assert!(same_outcome(&a, &c, 1e-2));
        let nan = returned(&Value::Float(f64::NAN));
        assert!(same_outcome(&nan, &nan, 0.0));
        let int = returned(&Value::Int(1));
        assert!(!same_outcome(&returned(&Value::Float(1.0)), &int, 1.0));
    }

    #[test]
    fn dicts_sets_and_fields_ignore_order() {
        let d1 = Value::Dict(Map {
            entries: vec![
                (Value::Int(1), Value::Float(0.5)),
                (Value::Int(2), Value::None),
            ],
            omitted: 0,
        });
        let d2 = Value::Dict(Map {
            entries: vec![
                (Value::Int(2), Value::None),
                (Value::Int(1), Value::Float(0.5)),
            ],
            omitted: 0,
        });
        assert!(values_match(&d1, &d2, 0.0));
        let object = |entries: Vec<(String, Value)>| {
            Value::Object(Object {
                kind: ObjectKind::Dataclass,
                module: "m".into(),
                qualname: "P".into(),
                complete: true,
                base: None,
                fields: Fields {
                    entries,
                    omitted: 0,
                },
            })
        };
        let p1 = object(vec![("x".into(), Value::Int(1)), ("y".into(), d1.clone())]);
        let p2 = object(vec![("y".into(), d2), ("x".into(), Value::Int(1))]);
        let p3 = object(vec![("x".into(), Value::Int(2)), ("y".into(), d1)]);
        assert!(values_match(&p1, &p2, 0.0));
        assert!(!values_match(&p1, &p3, 0.0));
        let s1 = Value::Set(seq(vec![Value::Int(1), Value::Int(2)]));
        let s2 = Value::Set(seq(vec![Value::Int(2), Value::Int(1)]));
        let s3 = Value::Set(seq(vec![Value::Int(2), Value::Int(2)]));
        assert!(values_match(&s1, &s2, 0.0));
        assert!(!values_match(&s1, &s3, 0.0));
        let l1 = Value::List(seq(vec![Value::Int(1), Value::Int(2)]));
        let l2 = Value::List(seq(vec![Value::Int(2), Value::Int(1)]));
        assert!(!values_match(&l1, &l2, 0.0));
    }

    #[test]
    fn exceptions_compare_by_type_and_message() {
        let e = Outcome::Raised(bytes(&exception("ValueError", "bad", 1)));
        let same_message = Outcome::Raised(bytes(&exception("ValueError", "bad", 2)));
        let other_message = Outcome::Raised(bytes(&exception("ValueError", "worse", 1)));
        let other_type = Outcome::Raised(bytes(&exception("KeyError", "bad", 1)));
        assert!(same_outcome(&e, &same_message, 0.0));
        assert!(!same_outcome(&e, &other_message, 0.0));
        assert!(!same_outcome(&e, &other_type, 0.0));
        let as_value = Outcome::Returned(bytes(&exception("ValueError", "bad", 1)));
        assert!(!same_outcome(&e, &as_value, 0.0));
    }

    #[test]
    fn reprs_compare_without_memory_addresses() {
        let repr = |type_name: &str, text: &str| Value::Repr {
            type_name: type_name.into(),
            text: Text::Full(text.into()),
        };
        let a = repr(
            "_thread.lock",
            "<unlocked _thread.lock object at 0x7f37c4f24880>",
        );
        let b = repr(
            "_thread.lock",
            "<unlocked _thread.lock object at 0x7f00000a0bc0>",
        );
        let locked = repr(
            "_thread.lock",
            "<locked _thread.lock object at 0x7f37c4f24880>",
        );
        let other_type = repr(
            "_thread.RLock",
            "<unlocked _thread.lock object at 0x7f37c4f24880>",
        );
        assert!(values_match(&a, &b, 0.0));
        assert!(!values_match(&a, &locked, 0.0));
        assert!(!values_match(&a, &other_type, 0.0));
        assert_eq!(without_addresses("0x1f, 0xg 0x"), "0x, 0xg 0x");
    }

    #[test]
    fn undecodable_snapshots_match_only_byte_for_byte() {
        let junk = Outcome::Returned(vec![0xff, 1, 2]);
        assert!(same_outcome(&junk, &junk, 0.0));
        assert!(!same_outcome(
            &junk,
            &Outcome::Returned(vec![0xff, 1, 3]),
            0.0
        ));
    }
}
