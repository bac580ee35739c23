//! The trampoline a cached function runs instead of its own code: a function with the same
//! parameters (so Python binds arguments and applies the function's own defaults exactly as
//! before) whose body hands every parameter, in signature order, to fever's cache with a token
//! naming the function. It also declares the function's free variables (`nonlocal`, never read,
//! so an empty cell is fine), so its code object can be assigned to `__code__` of a closure
//! (Python requires the same number of free variables).

use std::fmt::Write as _;

/// A function's parameters as its code object lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    /// The function's name (`co_name`).
    pub name: String,
    /// Positional-only parameters (before `/`).
    pub positional_only: Vec<String>,
    /// Positional-or-keyword parameters.
    pub positional: Vec<String>,
    /// `*args`.
    pub varargs: Option<String>,
    /// Keyword-only parameters.
    pub keyword_only: Vec<String>,
    /// `**kwargs`.
    pub varkw: Option<String>,
    /// `co_freevars`.
    pub freevars: Vec<String>,
}

/// Name of the callable the trampoline calls (fever puts it in `builtins`).
pub const DISPATCH: &str = "__fever_cache_call__";

/// Name of the factory the source defines; calling it returns the trampoline function.
pub const FACTORY: &str = "__fever_trampoline__";

impl Signature {
    /// Every parameter in the order the trampoline passes them.
    pub fn parameters(&self) -> impl Iterator<Item = &String> {
        self.positional_only
            .iter()
            .chain(&self.positional)
            .chain(&self.varargs)
            .chain(&self.keyword_only)
            .chain(&self.varkw)
    }

    /// Python source defining [`FACTORY`], which returns the trampoline for `token`.
    pub fn trampoline_source(&self, token: u64) -> String {
        let mut params: Vec<String> = self.positional_only.clone();
        if !self.positional_only.is_empty() {
            params.push("/".into());
        }
        params.extend(self.positional.iter().cloned());
        match &self.varargs {
            Some(name) => params.push(format!("*{name}")),
            None if !self.keyword_only.is_empty() => params.push("*".into()),
            None => {}
        }
        params.extend(self.keyword_only.iter().cloned());
        if let Some(name) = &self.varkw {
            params.push(format!("**{name}"));
        }
        let mut source = format!("def {FACTORY}():\n");
        if !self.freevars.is_empty() {
            let _ = writeln!(source, "    {} = None", self.freevars.join(" = "));
        }
        // One line: every instruction of the trampoline maps to the function's `def` line.
        let nonlocal = if self.freevars.is_empty() {
            String::new()
        } else {
            format!("nonlocal {}; ", self.freevars.join(", "))
        };
        let args: Vec<String> = std::iter::once(token.to_string())
            .chain(self.parameters().cloned())
            .collect();
        let _ = writeln!(
            source,
            "    def {}({}): {nonlocal}return {DISPATCH}({})",
            self.name,
            params.join(", "),
            args.join(", ")
        );
        let _ = writeln!(source, "    return {}", self.name);
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_kind_of_parameter() {
        let sig = Signature {
            name: "load".into(),
            positional_only: names(&["a"]),
            positional: names(&["b", "c"]),
            varargs: Some("rest".into()),
            keyword_only: names(&["d"]),
            varkw: Some("options".into()),
            freevars: names(&["__class__", "scale"]),
        };
        assert_eq!(
            sig.trampoline_source(7),
            "def __fever_trampoline__():\n    __class__ = scale = None\n    \
             def load(a, /, b, c, *rest, d, **options): nonlocal __class__, scale; \
             return __fever_cache_call__(7, a, b, c, rest, d, options)\n    return load\n"
        );
    }

    #[test]
    fn keyword_only_without_varargs_and_no_parameters() {
        let sig = Signature {
            name: "f".into(),
            keyword_only: names(&["x"]),
            ..Signature::default()
        };
        assert!(sig.trampoline_source(1).contains("def f(*, x):"));
        let bare = Signature {
            name: "g".into(),
            ..Signature::default()
        };
        let source = bare.trampoline_source(2);
        assert!(source.contains("def g(): return"));
        assert!(source.contains("return __fever_cache_call__(2)"));
    }
}
