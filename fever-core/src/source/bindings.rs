//! The names a piece of module-level code binds: assignment targets (the base name of
//! `CONFIG["k"] = ...` or `obj.attr = ...` too, since that changes what the name holds),
//! `for`/`with`/`except ... as` targets, imports, `def`/`class` names, `del` and walrus targets.
//! The call cache uses it to drop only the entries whose code reads a name an edited statement
//! rebinds. `None` means "could be anything" (`from m import *`).
//! [`from_import`] reads a `from m import a as b` statement (the reload engine updates such
//! copies when `m.a` is rebound).

use std::collections::BTreeSet;

use super::scan::scan;
use super::{Definition, Index};

/// Every name `text` binds (in any of its logical lines), or `None` when that can't be known.
pub fn bound_names(text: &str) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for line in scan(text).lines {
        let code = &text[line.text_start..line.end];
        line_bindings(code, &mut names)?;
    }
    Some(names)
}

/// A `from MODULE import ...` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromImport {
    /// The module as written, leading dots of a relative import included.
    pub module: String,
    /// `(name, alias)` pairs (the alias is the name when there is no `as`); empty for `*`.
    pub names: Vec<(String, String)>,
    /// `from m import *`.
    pub star: bool,
}

impl FromImport {
    /// The absolute module name, for an import made in a module of package `package`.
    pub fn absolute_module(&self, package: &str) -> Option<String> {
        let dots = self.module.len() - self.module.trim_start_matches('.').len();
        let rest = &self.module[dots..];
        if dots == 0 {
            return Some(rest.to_owned());
        }
        let mut parts: Vec<&str> = package.split('.').filter(|p| !p.is_empty()).collect();
        parts.truncate(parts.len().checked_sub(dots - 1)?);
        if parts.is_empty() {
            return None;
        }
        if !rest.is_empty() {
            parts.push(rest);
        }
        Some(parts.join("."))
    }
}

/// The `from ... import ...` statement `text` is, if it is one.
pub fn from_import(text: &str) -> Option<FromImport> {
    let line = scan(text).lines.into_iter().next()?;
    let code = &text[line.text_start..line.end];
    let (keyword, rest) = split_word(code);
    if keyword != "from" {
        return None;
    }
    let (module, imported) = rest.split_once(" import ")?;
    let module = module.trim();
    if module.is_empty()
        || !module
            .chars()
            .all(|c| c == '.' || c == '_' || c.is_alphanumeric())
    {
        return None;
    }
    let imported = imported
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let star = imported == "*";
    let mut names = Vec::new();
    if !star {
        for item in top_level_split(imported, b',') {
            let mut words = item.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(name), None, None) => names.push((name.to_owned(), name.to_owned())),
                (Some(name), Some("as"), Some(alias)) => {
                    names.push((name.to_owned(), alias.to_owned()));
                }
                (None, ..) => {}
                _ => return None,
            }
        }
    }
    Some(FromImport {
        module: module.to_owned(),
        names,
        star,
    })
}

/// The `__future__` features a module's `text` (indexed as `index`) turns on: the names its
/// `from __future__ import` statements import before any other statement (only a docstring may
/// precede them, as Python requires). Comments and strings that merely mention such an import are
/// not statements. Only the leading statements are read, so a big file costs no more than a small
/// one.
pub fn future_features(index: &Index, text: &str) -> BTreeSet<String> {
    future_features_in(index.items.iter(), text)
}

/// [`future_features`] from the module-level items of `text` in file order, of which only the
/// leading ones are looked at (so they may come from an index still being put together).
pub fn future_features_in<'a>(
    items: impl Iterator<Item = &'a Definition>,
    text: &str,
) -> BTreeSet<String> {
    let end = items
        .skip(1)
        .find(|item| item.keyword != "from")
        .map_or(text.len(), |item| item.span.start);
    let text = &text[..end];
    let mut features = BTreeSet::new();
    for (n, line) in scan(text).lines.iter().enumerate() {
        let code = &text[line.text_start..line.end];
        match from_import(code) {
            Some(import) if import.module == "__future__" => {
                features.extend(import.names.into_iter().map(|(name, _)| name));
            }
            _ if n == 0 && is_string_literal(code) => {}
            _ => break,
        }
    }
    features
}

/// Whether `code` (one logical line) starts with a string literal, as a docstring does.
fn is_string_literal(code: &str) -> bool {
    code.trim_start_matches(|c: char| "rRuUbBfFtT".contains(c))
        .starts_with(['"', '\''])
}

fn line_bindings(code: &str, names: &mut BTreeSet<String>) -> Option<()> {
    walrus_targets(code, names);
    let (keyword, rest) = split_word(code);
    match keyword {
        "import" => {
            for item in top_level_split(rest, b',') {
                let item = item.trim();
                match item.split_once(" as ") {
                    Some((_, alias)) => insert(names, alias),
                    None => insert(names, item.split('.').next().unwrap_or("")),
                }
            }
        }
        "from" => {
            let (_, imported) = rest.split_once(" import ")?;
            let imported = imported
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')');
            if imported.trim() == "*" {
                return None;
            }
            for item in top_level_split(imported, b',') {
                let item = item.trim();
                insert(names, item.rsplit(" as ").next().unwrap_or(item));
            }
        }
        "def" | "class" => insert(names, name_prefix(rest.trim_start())),
        "async" => return line_bindings(rest.trim_start(), names),
        "for" => {
            let target = rest.split(" in ").next().unwrap_or("");
            targets(target, names);
        }
        "with" | "except" => {
            for part in rest.split(" as ").skip(1) {
                targets(part.split([',', ':']).next().unwrap_or(""), names);
            }
        }
        "del" => targets(rest, names),
        "if" | "elif" | "else" | "while" | "try" | "finally" | "return" | "pass" | "raise"
        | "assert" | "global" | "nonlocal" | "break" | "continue" | "match" | "case" => {}
        _ => {
            let segments = top_level_split(code, b'=');
            if segments.len() > 1 {
                for target in &segments[..segments.len() - 1] {
                    // `x: int = 1`: the target is before the annotation.
                    let target = target.split(':').next().unwrap_or("");
                    let target = target
                        .trim_end_matches(['+', '-', '*', '/', '%', '&', '|', '^', '<', '>', '@']);
                    targets(target, names);
                }
            }
        }
    }
    Some(())
}

/// The base names of comma-separated targets (`a, (b, c[0]), *d, e.f`).
fn targets(text: &str, names: &mut BTreeSet<String>) {
    for part in top_level_split(text, b',') {
        let part = part.trim().trim_start_matches(['(', '[', '*', ' ']);
        if part.contains(',') {
            targets(part.trim_end_matches([')', ']']), names);
        } else {
            insert(names, name_prefix(part));
        }
    }
}

/// `NAME :=` anywhere in the line.
fn walrus_targets(code: &str, names: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(at) = rest.find(":=") {
        let before = rest[..at].trim_end();
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        insert(names, &before[start..]);
        rest = &rest[at + 2..];
    }
}

fn insert(names: &mut BTreeSet<String>, name: &str) {
    let name = name.trim();
    if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        names.insert(name.to_owned());
    }
}

/// The identifier at the start of `text`.
fn name_prefix(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first word and the rest.
fn split_word(code: &str) -> (&str, &str) {
    let word = name_prefix(code);
    (word, &code[word.len()..])
}

/// Splits at `sep` outside brackets and string literals; for `=`, comparison operators
/// (`==`, `<=`, `>=`, `!=`) and keyword arguments inside brackets are not separators.
fn top_level_split(text: &str, sep: u8) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<u8>, 0);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ if b == sep && depth == 0 => {
                    let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                    let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                    let comparison = sep == b'='
                        && (next == b'=' || matches!(prev, b'=' | b'!' | b'<' | b'>' | b':'));
                    if !comparison {
                        parts.push(&text[start..i]);
                        start = i + 1;
                    } else if next == b'=' {
                        i += 1;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_imports() {
        let imported = from_import("from config import RATE, LIMIT as L\n").unwrap();
        assert_eq!(imported.module, "config");
        assert_eq!(
            imported.names,
            [
                ("RATE".to_owned(), "RATE".to_owned()),
                ("LIMIT".to_owned(), "L".to_owned())
            ]
        );
        assert!(!imported.star);
        let multi = from_import("from .settings import (\n    A,\n    B as C,\n)\n").unwrap();
        assert_eq!(multi.names.len(), 2);
        assert_eq!(
            multi.absolute_module("pkg.sub").as_deref(),
            Some("pkg.sub.settings")
        );
        let up = from_import("from .. import x\n").unwrap();
        assert_eq!(up.absolute_module("pkg.sub").as_deref(), Some("pkg"));
        assert_eq!(up.absolute_module("pkg"), None);
        assert!(from_import("from m import *\n").unwrap().star);
        assert_eq!(from_import("import m\n"), None);
        assert_eq!(from_import("x = 1\n"), None);
    }

    fn bound(text: &str) -> Vec<String> {
        bound_names(text).unwrap().into_iter().collect()
    }

    #[test]
    fn assignments() {
        assert_eq!(bound("SCALE = 2"), ["SCALE"]);
        assert_eq!(bound("a, (b, c) = 1, (2, 3)"), ["a", "b", "c"]);
        assert_eq!(bound("x = y = 0"), ["x", "y"]);
        assert_eq!(bound("COUNT += 1"), ["COUNT"]);
        assert_eq!(bound("LIMIT: int = 5"), ["LIMIT"]);
        assert_eq!(bound("CONFIG['mode'] = 'x=1'"), ["CONFIG"]);
        assert_eq!(bound("settings.debug = True"), ["settings"]);
        assert_eq!(bound("first, *rest = items"), ["first", "rest"]);
    }

    #[test]
    fn no_bindings() {
        assert!(bound("print(summarize(load('a=b')), sep='')").is_empty());
        assert!(bound("if x == 1 and y >= 2 or z != 3:\n    run(flag=True)").is_empty());
        assert!(bound("assert a <= b").is_empty());
    }

    #[test]
    fn compound_statements_bind_inside() {
        let text = "if __name__ == '__main__':\n    rows = load()\n    print(summarize(rows))\n";
        assert_eq!(bound(text), ["rows"]);
        assert_eq!(
            bound("for i, row in enumerate(rows):\n    total += row"),
            ["i", "row", "total"]
        );
        assert_eq!(bound("with open(p) as f, lock as l:\n    pass"), ["f", "l"]);
        assert_eq!(
            bound("try:\n    x()\nexcept ValueError as err:\n    pass"),
            ["err"]
        );
        assert_eq!(bound("if (n := len(a)) > 3:\n    pass"), ["n"]);
        assert_eq!(bound("async def go():\n    pass"), ["go"]);
        assert_eq!(bound("del cache"), ["cache"]);
    }

    #[test]
    fn imports() {
        assert_eq!(bound("import os.path, json as j"), ["j", "os"]);
        assert_eq!(bound("from a.b import (c, d as e)"), ["c", "e"]);
        assert!(bound_names("from m import *").is_none());
    }

    #[test]
    fn future_features_are_the_leading_future_imports() {
        let features = |text: &str| {
            future_features(&Index::build(text), text)
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            features("from __future__ import annotations\nimport os\n"),
            ["annotations"]
        );
        // Any of several names; in brackets, after a docstring and comments.
        assert_eq!(
            features("from __future__ import division, annotations\n"),
            ["annotations", "division"]
        );
        assert_eq!(
            features(
                "\"\"\"Doc.\"\"\"\n# comment\nfrom __future__ import (\n    annotations,\n)\n"
            ),
            ["annotations"]
        );
        // A mention is no import; nor is one after another statement (Python refuses it).
        assert!(features("# from __future__ import annotations\nimport os\n").is_empty());
        assert!(features("X = 'from __future__ import annotations'\n").is_empty());
        assert!(features("import os\nfrom __future__ import annotations\n").is_empty());
        assert!(features("def f():\n    from __future__ import annotations\n").is_empty());
        // Only the leading statements are read; what follows them changes nothing.
        assert_eq!(
            features("from __future__ import annotations\ndef f():\n    pass\nfrom __future__ import division\n"),
            ["annotations"]
        );
    }
}
