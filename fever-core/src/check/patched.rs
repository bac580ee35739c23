//! Calls that ran with a test's patches: a recorded result holding a `unittest.mock` object that
//! the call's arguments do not hold got it from a patch the test made (`mock.patch("pkg.mod.f")`
//! through any chain of modules, `monkeypatch.setattr`, a mock stored anywhere the call reads).
//! A re-run without the test's patches cannot make that object again: a call whose result
//! differs only where the recording holds such a mock (and the re-run holds none) is skipped,
//! naming the mock's class, not failed; any other difference still fails (semver 3.0.4's
//! `__main__.main()`, which returned the test's patched `cli.main`'s mock).

use super::compare::{objects, ordered, unordered, values_match, Outcome};
use super::select::Case;
use crate::snapshot::{decode, Value};

/// The module `unittest.mock`'s objects say they come from.
const MOCK_MODULE: &str = "unittest.mock";

/// Whether `value` is a mock (`Mock`, `MagicMock`, `AsyncMock`, `NonCallableMock`, ... of
/// `unittest.mock`; not a `sentinel` or a `call`, which tests pass around and functions return),
/// not what it holds.
fn is_mock(value: &Value) -> bool {
    let mock_class = |module: &str, qualname: &str| {
        module == MOCK_MODULE && !qualname.contains('.') && qualname.ends_with("Mock")
    };
    match value {
        Value::Object(object) => mock_class(&object.module, &object.qualname),
        Value::Repr { type_name, .. }
        | Value::Opaque { type_name }
        | Value::Unrepresentable { type_name }
        | Value::DepthLimit { type_name } => type_name
            .strip_prefix(MOCK_MODULE)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|qualname| mock_class(MOCK_MODULE, qualname)),
        _ => false,
    }
}

/// The class of a `unittest.mock` object held anywhere in `values`.
fn mock_among<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    values.into_iter().find_map(mock_in)
}

/// The class of a `unittest.mock` object held anywhere in `value` (`None` if none is).
fn mock_in(value: &Value) -> Option<String> {
    if is_mock(value) {
        return Some(match value {
            Value::Object(object) => object.type_name(),
            Value::Repr { type_name, .. }
            | Value::Opaque { type_name }
            | Value::Unrepresentable { type_name }
            | Value::DepthLimit { type_name } => type_name.clone(),
            _ => MOCK_MODULE.into(),
        });
    }
    match value {
        Value::Object(object) => object
            .base
            .as_deref()
            .and_then(mock_in)
            .or_else(|| mock_among(object.fields.entries.iter().map(|(_, v)| v))),
        Value::List(seq) | Value::Tuple(seq) | Value::Set(seq) | Value::FrozenSet(seq) => {
            mock_among(&seq.items)
        }
        Value::Dict(map) => mock_among(map.entries.iter().flat_map(|(k, v)| [k, v])),
        Value::Exception(exception) => mock_among(&exception.args.items),
        Value::Args(fields) => mock_among(fields.entries.iter().map(|(_, v)| v)),
        _ => None,
    }
}

/// Whether `new` is `old` but where `old` is a mock and `new` is none (the same shape around).
fn only_at_mocks(old: &Value, new: &Value, rel_tol: f64) -> bool {
    if values_match(old, new, rel_tol) {
        return true;
    }
    if is_mock(old) {
        // A mock now too: the call makes its own, and what differs is checked as usual.
        return !is_mock(new);
    }
    let same = |old: &Value, new: &Value| only_at_mocks(old, new, rel_tol);
    match (old, new) {
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            ordered(x, y, &same)
        }
        // Each recorded entry paired with its own entry now, by a key equal to its own.
        (Value::Dict(x), Value::Dict(y)) => {
            x.omitted == y.omitted
                && unordered(&x.entries, &y.entries, |(k1, v1), (k2, v2)| {
                    values_match(k1, k2, rel_tol) && same(v1, v2)
                })
        }
        (Value::Object(x), Value::Object(y)) => objects(x, y, &same),
        _ => false,
    }
}

/// Why `case`, whose re-run gave `now` (which differs from its recording), is skipped when it
/// differs only where its recorded result holds a mock its arguments do not (see the
/// [module docs](self)); `None` otherwise.
pub fn patched_result(case: &Case, now: &Outcome, rel_tol: f64) -> Option<String> {
    let expected = case.expected.as_ref()?;
    let (Outcome::Returned(old) | Outcome::Raised(old)) = expected;
    let old = decode(old).ok()?;
    let mock = mock_in(&old)?;
    if case
        .args
        .as_deref()
        .is_some_and(|args| decode(args).ok().as_ref().and_then(mock_in).is_some())
    {
        return None;
    }
    let explained = match (expected, now) {
        // The call returned the patch's mock: what the real code does instead, returning or
        // raising, cannot be compared with it.
        (Outcome::Returned(_), Outcome::Returned(new) | Outcome::Raised(new)) if is_mock(&old) => {
            decode(new).is_ok_and(|new| !is_mock(&new))
        }
        (Outcome::Returned(_), Outcome::Returned(new))
        | (Outcome::Raised(_), Outcome::Raised(new)) => {
            decode(new).is_ok_and(|new| only_at_mocks(&old, &new, rel_tol))
        }
        _ => false,
    };
    explained.then(|| {
        format!(
            "ran with the test's patches: its recorded result holds a {mock} that its arguments \
             do not, made by a patch (unittest.mock), and differs only there; a re-run without \
             the test cannot make it again"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Fields, Map, Object, ObjectKind, Seq};
    use crate::trace::CodeInfo;

    fn snap(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn object(module: &str, qualname: &str) -> Value {
        Value::Object(Object {
            kind: ObjectKind::Plain,
            module: module.into(),
            qualname: qualname.into(),
            complete: false,
            base: None,
            fields: Fields {
                entries: vec![("_mock_name".into(), Value::None)],
                omitted: 0,
            },
        })
    }

    fn skipped(args: &[Value], expected: &Value, now: &Value) -> Option<String> {
        patched_result(&case(args, expected), &Outcome::Returned(snap(now)), 1e-9)
    }

    fn case(args: &[Value], expected: &Value) -> Case {
        Case {
            id: "cli.main[1]".into(),
            code: CodeInfo {
                id: 0,
                module: "cli".into(),
                qualname: "main".into(),
                file: "/src/cli.py".into(),
                first_line: 3,
                code_hash: 0,
            },
            args: Some(snap(&Value::Args(Fields {
                entries: args
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("a{i}"), v.clone()))
                    .collect(),
                omitted: 0,
            }))),
            expected: Some(Outcome::Returned(snap(expected))),
            skip: None,
            end_event: 0,
            callers: Vec::new(),
            yields: None,
        }
    }

    #[test]
    fn a_result_differing_only_where_a_patchs_mock_was_is_skipped() {
        let mock = object(MOCK_MODULE, "MagicMock");
        let reason = skipped(&[Value::None], &mock, &Value::Int(0)).expect("skipped");
        assert!(
            reason.contains("holds a unittest.mock.MagicMock"),
            "{reason}"
        );
        // The real code raises now: still nothing to compare the mock with.
        let raised = patched_result(
            &case(&[], &mock),
            &Outcome::Raised(snap(&Value::Int(2))),
            1e-9,
        );
        assert!(raised.is_some());
        // Inside a container, the rest the same.
        let pair = |a: Value, b: Value| {
            Value::Tuple(Seq {
                items: vec![a, b],
                omitted: 0,
            })
        };
        assert!(skipped(
            &[],
            &pair(Value::Int(6), mock.clone()),
            &pair(Value::Int(6), Value::None)
        )
        .is_some());
        let repr = Value::Repr {
            type_name: "unittest.mock.Mock".into(),
            text: crate::snapshot::Text::Full("<Mock id='1'>".into()),
        };
        let keyed = |v: Value| {
            Value::Dict(Map {
                entries: vec![(Value::Int(1), v)],
                omitted: 0,
            })
        };
        assert!(skipped(&[], &keyed(repr), &keyed(Value::Int(4))).is_some());
    }

    #[test]
    fn any_other_difference_or_a_mock_the_call_makes_or_is_given_fails() {
        let mock = object(MOCK_MODULE, "MagicMock");
        let pair = |a: Value, b: Value| {
            Value::Tuple(Seq {
                items: vec![a, b],
                omitted: 0,
            })
        };
        // (compute(x), patched()): compute regressed.
        assert_eq!(
            skipped(
                &[],
                &pair(Value::Int(6), mock.clone()),
                &pair(Value::Int(9), Value::None)
            ),
            None
        );
        // A mock now too: the call makes its own.
        let other = Value::Object(Object {
            kind: ObjectKind::Plain,
            module: MOCK_MODULE.into(),
            qualname: "MagicMock".into(),
            complete: false,
            base: None,
            fields: Fields {
                entries: vec![("value".into(), Value::Int(9))],
                omitted: 0,
            },
        });
        assert_eq!(skipped(&[], &mock, &other), None);
        // The call was given the mock: what it does with it is checked.
        assert_eq!(
            skipped(std::slice::from_ref(&mock), &mock, &Value::None),
            None
        );
        // No mock recorded.
        assert_eq!(skipped(&[], &object("shop", "Cart"), &Value::None), None);
        assert_eq!(skipped(&[], &Value::Int(3), &Value::Int(4)), None);
        // A sentinel is not a mock.
        assert_eq!(
            skipped(&[], &object(MOCK_MODULE, "_SentinelObject"), &Value::None),
            None
        );
        // Keys that match each other pair one to one: the changed value is compared.
        let handler = || Value::Opaque {
            type_name: "app.Handler".into(),
        };
        let dict = |a: Value, b: Value| {
            Value::Dict(Map {
                entries: vec![(handler(), a), (handler(), b)],
                omitted: 0,
            })
        };
        assert_eq!(
            skipped(
                &[],
                &dict(mock.clone(), Value::Int(1)),
                &dict(Value::Int(1), Value::Int(999))
            ),
            None
        );
        assert!(skipped(
            &[],
            &dict(mock.clone(), Value::Int(1)),
            &dict(Value::Int(0), Value::Int(1))
        )
        .is_some());
        // A class named like a mock elsewhere is not one.
        assert_eq!(
            skipped(&[], &object("mylib.mock", "Mock"), &Value::None),
            None
        );
        // Another shape around it.
        assert_eq!(
            skipped(
                &[],
                &pair(Value::Int(6), mock.clone()),
                &Value::List(Seq {
                    items: vec![Value::Int(6), Value::None],
                    omitted: 0
                })
            ),
            None
        );
    }
}
