//! Calls that ran with a test's patches: a recorded result holding a `unittest.mock` object that
//! the call's arguments do not hold came from a patch the test made (`mock.patch("pkg.mod.f")`
//! through any chain of modules, `monkeypatch.setattr`, a mock stored anywhere the call reads).
//! A re-run without the test's patches cannot make that object again, so such a call that
//! differs is skipped, naming the mock's class, not failed (semver 3.0.4's
//! `__main__.main()`, which returned the test's patched `cli.main`'s mock).

use super::compare::Outcome;
use super::select::Case;
use crate::snapshot::{decode, Value};

/// The module `unittest.mock`'s objects say they come from.
const MOCK_MODULE: &str = "unittest.mock";

/// The class of a `unittest.mock` object held anywhere in `values`.
fn mock_among<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    values.into_iter().find_map(mock_in)
}

/// The class of a `unittest.mock` object held anywhere in `value` (`None` if none is).
fn mock_in(value: &Value) -> Option<String> {
    match value {
        Value::Object(object) if object.module == MOCK_MODULE => Some(object.type_name()),
        Value::Object(object) => object
            .base
            .as_deref()
            .and_then(mock_in)
            .or_else(|| mock_among(object.fields.entries.iter().map(|(_, v)| v))),
        Value::Repr { type_name, .. }
        | Value::Opaque { type_name }
        | Value::Unrepresentable { type_name }
        | Value::DepthLimit { type_name }
            if type_name.starts_with("unittest.mock.") =>
        {
            Some(type_name.clone())
        }
        Value::List(seq) | Value::Tuple(seq) | Value::Set(seq) | Value::FrozenSet(seq) => {
            mock_among(&seq.items)
        }
        Value::Dict(map) => mock_among(map.entries.iter().flat_map(|(k, v)| [k, v])),
        Value::Exception(exception) => mock_among(&exception.args.items),
        Value::Args(fields) => mock_among(fields.entries.iter().map(|(_, v)| v)),
        _ => None,
    }
}

/// The class of a `unittest.mock` object in the snapshot `bytes` (`None` if none, or if it
/// cannot be read).
fn mock_held(bytes: &[u8]) -> Option<String> {
    decode(bytes).ok().as_ref().and_then(mock_in)
}

/// Why `case`, whose re-run differs, is skipped when its recorded result holds a mock its
/// arguments do not (see the [module docs](self)); `None` otherwise.
pub fn patched_result(case: &Case) -> Option<String> {
    let (Outcome::Returned(bytes) | Outcome::Raised(bytes)) = case.expected.as_ref()?;
    let mock = mock_held(bytes)?;
    if case
        .args
        .as_deref()
        .is_some_and(|args| mock_held(args).is_some())
    {
        return None;
    }
    Some(format!(
        "ran with the test's patches: its recorded result holds a {mock} that its arguments do \
         not, made by a patch (unittest.mock), which a re-run without the test cannot make again"
    ))
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
    fn a_mock_in_the_result_and_not_in_the_arguments_is_a_patchs() {
        let mock = object(MOCK_MODULE, "MagicMock");
        let reason = patched_result(&case(&[Value::None], &mock)).expect("skipped");
        assert!(
            reason.contains("holds a unittest.mock.MagicMock"),
            "{reason}"
        );
        // Anywhere in the result: a dict's value, a list's item, an object's field.
        let nested = Value::Dict(Map {
            entries: vec![(
                Value::Int(1),
                Value::List(Seq {
                    items: vec![mock.clone()],
                    omitted: 0,
                }),
            )],
            omitted: 0,
        });
        assert!(patched_result(&case(&[], &nested)).is_some());
        let repr = Value::Repr {
            type_name: "unittest.mock.Mock".into(),
            text: crate::snapshot::Text::Full("<Mock id='1'>".into()),
        };
        assert!(patched_result(&case(&[], &repr)).is_some());
    }

    #[test]
    fn a_mock_the_arguments_hold_too_or_no_mock_is_judged_as_usual() {
        let mock = object(MOCK_MODULE, "Mock");
        // The call was given the mock: what it does with it is checked.
        assert_eq!(
            patched_result(&case(std::slice::from_ref(&mock), &mock)),
            None
        );
        assert_eq!(patched_result(&case(&[], &object("shop", "Cart"))), None);
        assert_eq!(patched_result(&case(&[], &Value::Int(3))), None);
        // A class named like a mock elsewhere is not one.
        assert_eq!(
            patched_result(&case(&[], &object("mylib.mock", "Mock"))),
            None
        );
    }
}
