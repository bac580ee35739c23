//! Calls that differ from their recording only where their result holds a value their module
//! made at import from random, the clock, `uuid` or `os.urandom` (a module-level id, a start
//! time): each import makes another value, so such a difference is not a regression.
//!
//! The recorded and the current result are walked together: they must have the same shape, and
//! every part that differs must be one of the values made at import as they are now (`made`,
//! and their parts), or a string holding one whose text around it is the recorded string's too.
//! Only distinctive values count (a string of 8 characters or more, a float with a fraction, an
//! int past 32 bits, bytes, and containers holding one), so a regression that happens to return
//! a small number or a short word found in such a value is still a failure.

use super::compare::{values_match, Outcome};
use crate::snapshot::{decode, Blob, Text, Value};

/// Whether `now` differs from `expected` only in values made at import (see the
/// [module docs](self)); `made`: the snapshots of the values the called function reads.
pub fn differs_only_in_made(
    expected: &Outcome,
    now: &Outcome,
    made: &[Vec<u8>],
    rel_tol: f64,
) -> bool {
    let ((Outcome::Returned(old), Outcome::Returned(new))
    | (Outcome::Raised(old), Outcome::Raised(new))) = (expected, now)
    else {
        return false;
    };
    let (Ok(old), Ok(new)) = (decode(old), decode(new)) else {
        return false;
    };
    let made: Vec<Value> = made.iter().filter_map(|m| decode(m).ok()).collect();
    let mut parts = Vec::new();
    for value in &made {
        distinctive_parts(value, &mut parts);
    }
    !parts.is_empty() && explained(&old, &new, &parts, rel_tol)
}

/// Adds to `parts` every part of `value` (itself included) that is distinctive; returns whether
/// `value` is.
fn distinctive_parts<'a>(value: &'a Value, parts: &mut Vec<&'a Value>) -> bool {
    let any = |items: &mut dyn Iterator<Item = &'a Value>, parts: &mut Vec<&'a Value>| {
        let mut found = false;
        for item in items {
            found |= distinctive_parts(item, parts);
        }
        found
    };
    let distinctive = match value {
        Value::Str(Text::Full(s)) => s.chars().count() >= 8,
        Value::Float(x) => x.is_finite() && x.fract() != 0.0,
        Value::Int(i) => i.unsigned_abs() >= 1 << 32,
        Value::BigInt { .. } => true,
        Value::Bytes {
            blob: Blob::Data(data),
            ..
        } => data.len() >= 8,
        Value::List(seq) | Value::Tuple(seq) | Value::Set(seq) | Value::FrozenSet(seq) => {
            any(&mut seq.items.iter(), parts)
        }
        Value::Dict(map) => any(&mut map.entries.iter().map(|(_, v)| v), parts),
        Value::Object(object) => {
            let base = object
                .base
                .as_deref()
                .is_some_and(|b| distinctive_parts(b, parts));
            any(&mut object.fields.entries.iter().map(|(_, v)| v), parts) || base
        }
        _ => false,
    };
    if distinctive {
        parts.push(value);
    }
    distinctive
}

/// Whether `new` is `old` but for parts explained by `made` (see the [module docs](self)).
fn explained(old: &Value, new: &Value, made: &[&Value], rel_tol: f64) -> bool {
    if values_match(old, new, rel_tol) || made.iter().any(|m| values_match(m, new, rel_tol)) {
        return true;
    }
    let same = |old: &Value, new: &Value| explained(old, new, made, rel_tol);
    match (old, new) {
        (Value::Str(Text::Full(old)), Value::Str(Text::Full(new))) => {
            made.iter().any(|m| match m {
                Value::Str(Text::Full(m)) => holds_in_place(old, new, m),
                _ => false,
            })
        }
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            x.omitted == y.omitted
                && x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|(p, q)| same(p, q))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.omitted == y.omitted
                && x.entries.len() == y.entries.len()
                && x.entries.iter().all(|(k, v)| {
                    y.entries
                        .iter()
                        .find(|(k2, _)| values_match(k, k2, rel_tol))
                        .is_some_and(|(_, v2)| same(v, v2))
                })
        }
        (Value::Object(x), Value::Object(y)) => {
            x.module == y.module
                && x.qualname == y.qualname
                && x.kind == y.kind
                && x.fields.omitted == y.fields.omitted
                && x.fields.entries.len() == y.fields.entries.len()
                && match (&x.base, &y.base) {
                    (Some(a), Some(b)) => same(a, b),
                    (None, None) => true,
                    _ => false,
                }
                && x.fields
                    .entries
                    .iter()
                    .zip(&y.fields.entries)
                    .all(|((n1, v1), (n2, v2))| n1 == n2 && same(v1, v2))
        }
        _ => false,
    }
}

/// Whether `new` holds `made` with the recorded `old` text around it: `old` starts with what
/// comes before it in `new` and ends with what comes after.
fn holds_in_place(old: &str, new: &str, made: &str) -> bool {
    new.match_indices(made).any(|(at, _)| {
        let (before, after) = (&new[..at], &new[at + made.len()..]);
        old.len() >= before.len() + after.len() && old.starts_with(before) && old.ends_with(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Map;

    fn snap(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn s(text: &str) -> Value {
        Value::Str(Text::Full(text.into()))
    }

    fn dict(entries: &[(&str, Value)]) -> Value {
        Value::Dict(Map {
            entries: entries.iter().map(|(k, v)| (s(k), v.clone())).collect(),
            omitted: 0,
        })
    }

    fn only_made(old: &Value, new: &Value, made: &[Value]) -> bool {
        let made: Vec<Vec<u8>> = made.iter().map(snap).collect();
        differs_only_in_made(
            &Outcome::Returned(snap(old)),
            &Outcome::Returned(snap(new)),
            &made,
            1e-9,
        )
    }

    const OLD: &str = "6b139e7bbf5ad4ed8d4063bf6235b4d2";
    const NOW: &str = "0f3c2a9e55d1b7c48a6e2f0d9b3c7a15";

    #[test]
    fn a_result_differing_where_it_holds_a_value_made_at_import_is_explained() {
        // boltons' get_profile(): {"guid": str(INSTANCE_ID), ...}; INSTANCE_ID is NOW now.
        let old = dict(&[("guid", s(OLD)), ("n", Value::Int(1))]);
        let new = dict(&[("guid", s(NOW)), ("n", Value::Int(1))]);
        assert!(only_made(&old, &new, &[s(NOW)]));
        // Inside a longer string, with the same text around it.
        let old = s(&format!("id-{OLD}!"));
        let new = s(&format!("id-{NOW}!"));
        assert!(only_made(&old, &new, &[s(NOW)]));
        // A part of a value made at import (START_TIME_INFO's time_utc), and a float.
        let started = dict(&[
            ("time_utc", s("2026-12-05 11:20:16.123")),
            ("offset", Value::Float(0.0)),
        ]);
        let old = dict(&[
            ("time_utc", s("2026-12-04 09:00:00.456")),
            ("t", Value::Float(1.5)),
        ]);
        let new = dict(&[
            ("time_utc", s("2026-12-05 11:20:16.123")),
            ("t", Value::Float(2.25)),
        ]);
        assert!(only_made(&old, &new, &[started, Value::Float(2.25)]));
    }

    #[test]
    fn a_difference_elsewhere_or_in_another_shape_is_not() {
        let made = [s(NOW)];
        // Another field changed too.
        let old = dict(&[("guid", s(OLD)), ("n", Value::Int(1))]);
        let new = dict(&[("guid", s(NOW)), ("n", Value::Int(2))]);
        assert!(!only_made(&old, &new, &made));
        // The text around it changed.
        assert!(!only_made(
            &s(&format!("id-{OLD}")),
            &s(&format!("ID-{NOW}")),
            &made
        ));
        // A key more.
        let new = dict(&[("guid", s(NOW)), ("n", Value::Int(1)), ("m", Value::Int(1))]);
        assert!(!only_made(&old, &new, &made));
        // len(TOKEN) + 1: a number, not the value.
        assert!(!only_made(&Value::Int(32), &Value::Int(33), &made));
        // A small number or a short word of a value made at import does not explain anything.
        let config = dict(&[
            ("seed", Value::Float(0.25)),
            ("retries", Value::Int(3)),
            ("mode", s("fast")),
        ]);
        assert!(!only_made(
            &Value::Int(6),
            &Value::Int(3),
            std::slice::from_ref(&config)
        ));
        assert!(!only_made(&s("slow"), &s("fast"), &[config]));
        // Nothing distinctive made: nothing explained.
        assert!(!only_made(&Value::Int(1), &Value::Int(2), &[Value::Int(2)]));
        // A return where a raise was recorded.
        let made: Vec<Vec<u8>> = vec![snap(&s(NOW))];
        assert!(!differs_only_in_made(
            &Outcome::Returned(snap(&s(OLD))),
            &Outcome::Raised(snap(&s(NOW))),
            &made,
            1e-9
        ));
    }
}
