//! Values a module made from a source of nondeterminism (random, the clock, `os.urandom`) while
//! it was imported: a random instance id, a start time. They differ from process to process,
//! so a call that returns one differs from its recording with nothing changed in the code.
//!
//! [`differs_only_by`] tells such a difference from a regression: every part of the result
//! that differs must now be one of those values (equal to it, of the same kind as the recorded
//! part), or a text that holds one's text (8 characters or more) with the rest of the text as recorded. Any other
//! difference (another key, another length, a changed value that is not one of them) is a
//! failure, so the module's other functions, and the rest of the same result, stay checked.

use super::compare::{values_match, Outcome};
use crate::snapshot::{decode, Text, Value};

/// A made text shorter than this is too common to be told apart inside another text.
const MIN_TEXT: usize = 8;

/// One module-level value made while the module's import read a source.
#[derive(Debug, Clone, PartialEq)]
pub struct MadeAtImport {
    /// `module.NAME`.
    pub name: String,
    /// The source read, e.g. `os.urandom (random.SystemRandom)`.
    pub source: String,
    /// Snapshots of the value, of the values it holds (a dict's values, a list's items) and of
    /// their texts (`str()`).
    pub values: Vec<Value>,
}

/// The indices into `made` of the values that make up every difference between `expected`
/// and `actual` (both returned values, or both exceptions); `None` when any difference is
/// something else or there is none.
pub fn differs_only_by(
    expected: &Outcome,
    actual: &Outcome,
    made: &[MadeAtImport],
    rel_tol: f64,
) -> Option<Vec<usize>> {
    let (old, new) = match (expected, actual) {
        (Outcome::Returned(old), Outcome::Returned(new))
        | (Outcome::Raised(old), Outcome::Raised(new)) => (decode(old).ok()?, decode(new).ok()?),
        _ => return None,
    };
    let mut used = Vec::new();
    let walk = Walk { made, rel_tol };
    (walk.explained(&old, &new, &mut used) && !used.is_empty()).then(|| {
        used.sort_unstable();
        used.dedup();
        used
    })
}

struct Walk<'a> {
    made: &'a [MadeAtImport],
    rel_tol: f64,
}

impl Walk<'_> {
    /// `old` and `new` match, or differ only by made values (whose indices go to `used`).
    fn explained(&self, old: &Value, new: &Value, used: &mut Vec<usize>) -> bool {
        if values_match(old, new, self.rel_tol) {
            return true;
        }
        if let Some(at) = self.whole(old, new) {
            used.push(at);
            return true;
        }
        match (old, new) {
            (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
                x.omitted == y.omitted
                    && x.items.len() == y.items.len()
                    && self.all(x.items.iter().zip(&y.items), used)
            }
            (Value::Dict(x), Value::Dict(y)) => {
                if x.omitted != y.omitted || x.entries.len() != y.entries.len() {
                    return false;
                }
                let mut pairs = Vec::new();
                for (key, value) in &y.entries {
                    let Some((_, was)) = x
                        .entries
                        .iter()
                        .find(|(k, _)| values_match(k, key, self.rel_tol))
                    else {
                        return false;
                    };
                    pairs.push((was, value));
                }
                self.all(pairs, used)
            }
            (Value::Object(x), Value::Object(y)) => {
                let names = |o: &crate::snapshot::Object| -> Vec<String> {
                    o.fields.entries.iter().map(|(n, _)| n.clone()).collect()
                };
                if x.kind != y.kind
                    || x.module != y.module
                    || x.qualname != y.qualname
                    || x.fields.omitted != y.fields.omitted
                    || names(x) != names(y)
                {
                    return false;
                }
                let bases = match (&x.base, &y.base) {
                    (Some(a), Some(b)) => self.explained(a, b, used),
                    (None, None) => true,
                    _ => false,
                };
                bases
                    && self.all(
                        x.fields
                            .entries
                            .iter()
                            .zip(&y.fields.entries)
                            .map(|((_, a), (_, b))| (a, b)),
                        used,
                    )
            }
            (Value::Exception(x), Value::Exception(y)) => {
                let messages = match (&x.message, &y.message) {
                    (Some(a), Some(b)) => a == b || self.text(a, b, used),
                    (None, None) => true,
                    _ => false,
                };
                x.module == y.module
                    && x.qualname == y.qualname
                    && messages
                    && x.args.items.len() == y.args.items.len()
                    && self.all(x.args.items.iter().zip(&y.args.items), used)
            }
            (Value::Str(a), Value::Str(b)) => self.text(a, b, used),
            _ => false,
        }
    }

    /// Every pair is [`explained`](Self::explained).
    fn all<'v>(
        &self,
        pairs: impl IntoIterator<Item = (&'v Value, &'v Value)>,
        used: &mut Vec<usize>,
    ) -> bool {
        pairs.into_iter().all(|(o, n)| self.explained(o, n, used))
    }

    /// The made value `new` is, `old` being of the same kind.
    fn whole(&self, old: &Value, new: &Value) -> Option<usize> {
        if std::mem::discriminant(old) != std::mem::discriminant(new) {
            return None;
        }
        if let (Value::Object(a), Value::Object(b)) = (old, new) {
            if a.type_name() != b.type_name() {
                return None;
            }
        }
        self.made.iter().position(|made| {
            made.values
                .iter()
                .any(|value| values_match(value, new, self.rel_tol))
        })
    }

    /// `new` is `old` with one made text in place of a part of it: what comes before and
    /// after the made text is as recorded.
    fn text(&self, old: &Text, new: &Text, used: &mut Vec<usize>) -> bool {
        let (Text::Full(old), Text::Full(new)) = (old, new) else {
            return false;
        };
        for (at, made) in self.made.iter().enumerate() {
            for value in &made.values {
                let Value::Str(Text::Full(part)) = value else {
                    continue;
                };
                if part.chars().count() < MIN_TEXT {
                    continue;
                }
                for (start, _) in new.match_indices(part.as_str()) {
                    let (before, after) = (&new[..start], &new[start + part.len()..]);
                    if old.len() >= before.len() + after.len()
                        && old.starts_with(before)
                        && old.ends_with(after)
                    {
                        used.push(at);
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Map;

    fn encode(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn text(s: &str) -> Value {
        Value::Str(Text::Full(s.into()))
    }

    fn dict(entries: &[(&str, Value)]) -> Value {
        Value::Dict(Map {
            entries: entries.iter().map(|(k, v)| (text(k), v.clone())).collect(),
            omitted: 0,
        })
    }

    fn made(values: Vec<Value>) -> Vec<MadeAtImport> {
        vec![MadeAtImport {
            name: "eco.INSTANCE_ID".into(),
            source: "os.urandom".into(),
            values,
        }]
    }

    fn check(old: &Value, new: &Value, made: &[MadeAtImport]) -> Option<Vec<usize>> {
        differs_only_by(
            &Outcome::Returned(encode(old)),
            &Outcome::Returned(encode(new)),
            made,
            1e-9,
        )
    }

    #[test]
    fn a_part_that_is_now_the_made_value_is_explained() {
        let made = made(vec![text("6538eb165ae9c316")]);
        let old = dict(&[("guid", text("2e4f77be65faf516")), ("user", text("root"))]);
        let new = dict(&[("guid", text("6538eb165ae9c316")), ("user", text("root"))]);
        assert_eq!(check(&old, &new, &made), Some(vec![0]));
    }

    #[test]
    fn any_other_difference_is_not() {
        let made = made(vec![text("6538eb165ae9c316")]);
        let old = dict(&[("guid", text("2e4f77be65faf516")), ("user", text("root"))]);
        let new = dict(&[("guid", text("6538eb165ae9c316")), ("user", text("toor"))]);
        assert_eq!(check(&old, &new, &made), None);
        // A part changed otherwise, a key gone, nothing made.
        let cut = dict(&[("guid", text("6538eb16")), ("user", text("root"))]);
        assert_eq!(check(&old, &cut, &made), None);
        let gone = dict(&[("guid", text("6538eb165ae9c316"))]);
        assert_eq!(check(&old, &gone, &made), None);
        assert_eq!(check(&old, &new, &[]), None);
        // The same value: nothing to explain.
        assert_eq!(check(&old, &old, &made), None);
    }

    #[test]
    fn a_text_holding_the_made_text_with_the_rest_as_recorded_is_explained() {
        let made = made(vec![text("2026-12-05 04:45:21")]);
        let old = text("started at 2026-12-05 02:14:53 by root");
        let new = text("started at 2026-12-05 04:45:21 by root");
        assert_eq!(check(&old, &new, &made), Some(vec![0]));
        let edited = text("started: 2026-12-05 04:45:21 by root");
        assert_eq!(check(&old, &edited, &made), None);
    }

    #[test]
    fn a_made_value_stands_only_for_a_part_of_its_kind() {
        let made = made(vec![text("ab"), Value::Int(7_000_000)]);
        assert_eq!(
            check(&text("12345678"), &Value::Int(7_000_000), &made),
            None
        );
        assert_eq!(
            check(&Value::Int(3), &Value::Int(7_000_000), &made),
            Some(vec![0])
        );
        // Too short to be found inside a text.
        assert_eq!(check(&text("x cd y"), &text("x ab y"), &made), None);
    }
}
