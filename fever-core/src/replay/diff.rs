//! [`value_diff`]: a replayed value against the recorded one, as `fever check` compares them
//! (values, floats within a tolerance), shown as a unified diff of their pretty forms.

use crate::check::compare::{same_snapshot, DEFAULT_REL_TOL};
use crate::check::report::recorded_vs_now;
use crate::snapshot::{decode, render_pretty};

/// The pretty form of a snapshot (`prefix` before it, e.g. `raised `).
pub fn outcome_text(prefix: &str, bytes: &[u8]) -> String {
    match decode(bytes) {
        Ok(value) => format!("{prefix}{}", render_pretty(&value)),
        Err(err) => format!("{prefix}<corrupt snapshot: {err}>\n"),
    }
}

/// `None` when `now` matches `recorded`; else the unified diff from one to the other
/// (headed `--- recorded` / `+++ now`). Either side is `(prefix, snapshot)`.
pub fn value_diff(recorded: (&str, &[u8]), now: (&str, &[u8])) -> Option<String> {
    if recorded.0 == now.0 && same_snapshot(recorded.1, now.1, DEFAULT_REL_TOL) {
        return None;
    }
    let old = outcome_text(recorded.0, recorded.1);
    let new = outcome_text(now.0, now.1);
    Some(recorded_vs_now(&old, &new, "values"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Value;

    fn snap(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    #[test]
    fn equal_values_have_no_diff_and_changed_ones_do() {
        let a = snap(&Value::Float(1.0));
        let b = snap(&Value::Float(1.0 + 1e-12));
        let c = snap(&Value::Float(2.5));
        assert_eq!(value_diff(("", &a), ("", &b)), None);
        let diff = value_diff(("", &a), ("", &c)).unwrap();
        assert!(
            diff.contains("--- recorded") && diff.contains("-1.0") && diff.contains("+2.5"),
            "{diff}"
        );
        assert!(value_diff(("", &a), ("raised ", &a)).is_some());
    }
}
