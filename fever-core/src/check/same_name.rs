//! Functions found under one name that share a qualified name: a property's getter, setter and
//! deleter are all `Class.name`. [`which`] tells which of them a recorded code is, so the
//! setter's recorded calls are not re-run on the getter.

/// What is known of one function found under the recorded name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its code's first line (`co_firstlineno`).
    pub first_line: u32,
    /// Its parameters' names, in order.
    pub parameters: Vec<String>,
}

/// The index in `candidates` of the function the recorded code is, called with arguments named
/// `arguments`: the one whose parameters are those names and that starts on the recorded
/// `first_line`; else the only one whose parameters are those names (the file changed since:
/// a getter and its setter never take the same); else the one starting on `first_line` (a
/// getter and its deleter take the same); else the first (`None` when there are none).
pub fn which(candidates: &[Candidate], first_line: u32, arguments: &[&str]) -> Option<usize> {
    let fits = |c: &Candidate| {
        c.parameters
            .iter()
            .map(String::as_str)
            .eq(arguments.iter().copied())
    };
    let at_line = |c: &Candidate| c.first_line == first_line;
    if let Some(at) = candidates.iter().position(|c| fits(c) && at_line(c)) {
        return Some(at);
    }
    let fitting: Vec<usize> = (0..candidates.len())
        .filter(|&i| fits(&candidates[i]))
        .collect();
    if let [only] = fitting[..] {
        return Some(only);
    }
    candidates
        .iter()
        .position(at_line)
        .or((!candidates.is_empty()).then_some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(first_line: u32, parameters: &[&str]) -> Candidate {
        Candidate {
            first_line,
            parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn the_recorded_first_line_tells_a_setter_from_its_getter() {
        let property = [candidate(10, &["self"]), candidate(14, &["self", "value"])];
        assert_eq!(which(&property, 14, &["self", "value"]), Some(1));
        assert_eq!(which(&property, 10, &["self"]), Some(0));
        // A getter and its deleter take the same parameters: the line tells them apart.
        let deleter = [candidate(10, &["self"]), candidate(14, &["self"])];
        assert_eq!(which(&deleter, 14, &["self"]), Some(1));
    }

    #[test]
    fn moved_code_is_told_by_its_parameters_else_the_first_is_taken() {
        let property = [candidate(12, &["self"]), candidate(16, &["self", "value"])];
        assert_eq!(which(&property, 14, &["self", "value"]), Some(1));
        assert_eq!(which(&property, 10, &["self"]), Some(0));
        // Moved so far that the getter starts where the setter did: still the setter.
        assert_eq!(which(&property, 12, &["self", "value"]), Some(1));
        // Parameters that fit none, or several: the first.
        assert_eq!(which(&property, 10, &["other"]), Some(0));
        let twins = [candidate(12, &["self"]), candidate(16, &["self"])];
        assert_eq!(which(&twins, 10, &["self"]), Some(0));
        assert_eq!(which(&[], 10, &["self"]), None);
    }
}
