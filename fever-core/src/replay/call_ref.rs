//! [`CallRef`]: one call of a function, written `module.qualname#N` (`N` from 1, the order in
//! which the program started that function's calls; `#N` left out means the first call).

use std::fmt;

/// A function's N-th call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallRef {
    /// `module.qualname`, e.g. `app.Shop.total` or `__main__.main.<locals>.step`.
    pub function: String,
    /// 1 for the first call.
    pub number: u32,
}

/// Why a text is not a call reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallRefError {
    #[error("{0:?} is not a function name: expected module.qualname, e.g. app.summarize")]
    Name(String),
    #[error("{0:?} is not a call number: expected #N with N = 1, 2, ...")]
    Number(String),
}

impl CallRef {
    /// The `number`-th call of `function`.
    pub fn new(function: &str, number: u32) -> Result<Self, CallRefError> {
        let valid = function.contains('.')
            && !function.starts_with('.')
            && !function.ends_with('.')
            && !function.contains("..")
            && !function.chars().any(|c| c.is_whitespace() || c == '#');
        if !valid {
            return Err(CallRefError::Name(function.to_owned()));
        }
        if number == 0 {
            return Err(CallRefError::Number("#0".into()));
        }
        Ok(Self {
            function: function.to_owned(),
            number,
        })
    }

    /// Parses `module.qualname` or `module.qualname#N`.
    pub fn parse(text: &str) -> Result<Self, CallRefError> {
        let text = text.trim();
        match text.split_once('#') {
            None => Self::new(text, 1),
            Some((function, number)) => {
                let n = number
                    .parse::<u32>()
                    .map_err(|_| CallRefError::Number(format!("#{number}")))?;
                Self::new(function, n)
            }
        }
    }
}

/// Does the recorded function `recorded` (`module.qualname` as the program ran it) answer to
/// the name `asked`? Equal names do; so does `SCRIPT.f` for `__main__.f` when the program is the
/// script `SCRIPT.py` (`script_module`), since a script runs as `__main__`.
pub fn same_function(recorded: &str, asked: &str, script_module: Option<&str>) -> bool {
    if recorded == asked {
        return true;
    }
    match (script_module, recorded.strip_prefix("__main__.")) {
        (Some(module), Some(rest)) => {
            asked.strip_prefix(module).and_then(|r| r.strip_prefix('.')) == Some(rest)
        }
        _ => false,
    }
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.function, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_numbers() {
        let c = CallRef::parse("app.summarize").unwrap();
        assert_eq!((c.function.as_str(), c.number), ("app.summarize", 1));
        let c = CallRef::parse(" app.Shop.total#12 ").unwrap();
        assert_eq!((c.function.as_str(), c.number), ("app.Shop.total", 12));
        assert_eq!(c.to_string(), "app.Shop.total#12");
        let c = CallRef::parse("__main__.main.<locals>.step#2").unwrap();
        assert_eq!(c.function, "__main__.main.<locals>.step");
    }

    #[test]
    fn a_script_answers_to_its_file_name() {
        assert!(same_function("app.f", "app.f", None));
        assert!(same_function("__main__.f", "__main__.f", Some("app")));
        assert!(same_function("__main__.C.f", "app.C.f", Some("app")));
        assert!(!same_function("__main__.f", "app.f", None));
        assert!(!same_function("__main__.f", "other.f", Some("app")));
        assert!(!same_function("__main__.f", "appx.f", Some("app")));
        assert!(!same_function("lib.f", "app.f", Some("app")));
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for bad in ["summarize", ".f", "m.", "m..f", "m.f g", "", "#3"] {
            assert!(
                matches!(CallRef::parse(bad), Err(CallRefError::Name(_))),
                "{bad}"
            );
        }
        for bad in ["m.f#", "m.f#0", "m.f#-1", "m.f#x", "m.f#1#2"] {
            assert!(
                matches!(CallRef::parse(bad), Err(CallRefError::Number(_))),
                "{bad}"
            );
        }
        assert!(CallRef::parse("m.f#x")
            .unwrap_err()
            .to_string()
            .contains("#N"));
    }
}
