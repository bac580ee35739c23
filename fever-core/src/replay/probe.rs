//! [`Probe`]: what fever notes about an argument of a call it may replay, once when the call
//! starts and once more at replay time, in the forked child. The replay passes the very objects
//! the call first got (so open files, locks, sockets, generators, cycles and arrays stay what
//! they are), and a [`Difference`] between the two probes says why one may not be what the call
//! first saw.

use std::fmt;

/// One argument's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A value, by the structural hash of its snapshot.
    Value { hash: u64 },
    /// A generator or coroutine: its frame's last instruction offset (`None`: finished) and
    /// the structural hash of its frame's locals (a loop that yields at one place moves only
    /// those).
    Generator { position: Option<i64>, state: u64 },
    /// An open file (anything with `tell()` and `closed`): its position (`None` when `tell()`
    /// fails, e.g. a pipe) and whether it is closed.
    File { position: Option<i64>, closed: bool },
}

/// Why an argument may differ from what the call first got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Its value changed after the call started (by the call itself or by later code).
    Changed,
    /// A generator ran on since (or finished): the replay resumes it where it is now.
    Advanced,
    /// A file's position moved (from, to): the replay reads or writes from the new position.
    Moved(Option<i64>, Option<i64>),
    /// The file was closed since.
    Closed,
    /// Not the same kind of object any more (never expected: the same object is kept).
    Replaced,
}

impl Probe {
    /// How `now` differs from `self` (taken when the call started); `None` when it does not.
    pub fn difference(&self, now: &Probe) -> Option<Difference> {
        match (*self, *now) {
            (Probe::Value { hash: a }, Probe::Value { hash: b }) => {
                (a != b).then_some(Difference::Changed)
            }
            (
                Probe::Generator {
                    position: a,
                    state: s,
                },
                Probe::Generator {
                    position: b,
                    state: t,
                },
            ) => (a != b || s != t).then_some(Difference::Advanced),
            (Probe::File { closed: false, .. }, Probe::File { closed: true, .. }) => {
                Some(Difference::Closed)
            }
            (Probe::File { position: a, .. }, Probe::File { position: b, .. }) => {
                (a != b).then_some(Difference::Moved(a, b))
            }
            _ => Some(Difference::Replaced),
        }
    }
}

fn position(p: Option<i64>) -> String {
    p.map_or_else(|| "unknown".into(), |p| p.to_string())
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed => f.write_str(
                "it was changed after the call started, and its snapshot cannot rebuild it; the replay gets it as it is now",
            ),
            Difference::Advanced => f.write_str(
                "a generator that ran on after the call started; the replay resumes it where it is now",
            ),
            Difference::Moved(a, b) => write!(
                f,
                "a file whose position moved from {} to {} after the call started; the replay continues from {}",
                position(*a),
                position(*b),
                position(*b)
            ),
            Difference::Closed => f.write_str("a file that was closed after the call started"),
            Difference::Replaced => f.write_str("it is not the kind of object it was"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_and_their_words() {
        let v = |hash| Probe::Value { hash };
        assert_eq!(v(1).difference(&v(1)), None);
        assert_eq!(v(1).difference(&v(2)), Some(Difference::Changed));
        let g = |position, state| Probe::Generator { position, state };
        assert_eq!(g(Some(0), 1).difference(&g(Some(0), 1)), None);
        assert_eq!(
            g(Some(0), 1).difference(&g(None, 1)),
            Some(Difference::Advanced)
        );
        assert_eq!(
            g(Some(8), 1).difference(&g(Some(8), 2)),
            Some(Difference::Advanced)
        );
        let file = |position, closed| Probe::File { position, closed };
        assert_eq!(file(Some(3), false).difference(&file(Some(3), false)), None);
        let moved = file(Some(0), false)
            .difference(&file(Some(12), false))
            .unwrap();
        assert!(moved.to_string().contains("moved from 0 to 12"), "{moved}");
        assert_eq!(
            file(Some(0), false).difference(&file(None, true)),
            Some(Difference::Closed)
        );
        assert_eq!(v(1).difference(&g(None, 0)), Some(Difference::Replaced));
    }
}
