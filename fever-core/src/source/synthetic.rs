//! Synthetic sources: one definition or statement of a saved file alone, placed at its real
//! line numbers and wrapped in its enclosing classes (as empty `class` headers), so that compiling
//! it gives code objects that look as if the whole file had been compiled: right line numbers,
//! zero-argument `super()`, the `__class__` cell, name mangling. A [`Synthetic`] is the text
//! and the line it starts at: compiled alone and its code objects' lines shifted, it costs what
//! the definition costs, wherever it is in the file; [`Synthetic::padded`] is the same text after
//! that many blank lines, which compiles at the real lines as it is (for Python's own messages).

use super::index::Definition;

/// A piece of source that belongs at line `first_line` of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synthetic {
    pub text: String,
    pub first_line: usize,
}

impl Synthetic {
    /// The text after blank lines up to `first_line`: compiled, its lines are the real ones.
    pub fn padded(&self) -> String {
        "\n".repeat(self.first_line.saturating_sub(1)) + &self.text
    }

    /// How many lines the code compiled from `text` alone must move to reach the real ones.
    pub fn line_offset(&self) -> usize {
        self.first_line.saturating_sub(1)
    }
}

/// A definition (function or class) alone, at its real lines, inside its enclosing classes.
pub fn definition_source(def: &Definition, text: &str) -> Synthetic {
    let parents = def.parents.len();
    let mut source = String::new();
    for (name, indent) in &def.parents {
        source.push_str(&" ".repeat(*indent));
        source.push_str("class ");
        source.push_str(name);
        source.push_str(":\n");
    }
    source.push_str(def.text(text));
    source.push('\n');
    Synthetic {
        text: source,
        first_line: 1 + def.start_line.saturating_sub(1 + parents),
    }
}

/// A definition without its decorators (left as blank lines, so nothing but the `def` runs),
/// at its real lines, to be executed in a copy of its namespace for its default values.
pub fn bare_definition_source(def: &Definition, text: &str) -> Synthetic {
    let decorator_lines = text[def.decorators.clone()].matches('\n').count();
    let mut source = in_namespace(def);
    source.text.push_str(&"\n".repeat(decorator_lines));
    source
        .text
        .push_str(&text[def.decorators.end..def.span.end]);
    source.text.push('\n');
    source
}

/// A statement alone at its real lines, to be executed in its namespace (or a copy of it).
pub fn statement_source(def: &Definition, text: &str) -> Synthetic {
    let mut source = in_namespace(def);
    source.text.push_str(def.text(text));
    source.text.push('\n');
    source
}

/// Where a piece of `def`'s namespace starts: at `def`'s line; a class-body item is nested under
/// `if True:` (on the line before) so that its indentation compiles and it runs in whatever
/// namespace it is executed in (a copy of the class's), reading class attributes as the class
/// body did.
fn in_namespace(def: &Definition) -> Synthetic {
    if def.parents.is_empty() {
        Synthetic {
            text: String::new(),
            first_line: def.start_line.max(1),
        }
    } else {
        Synthetic {
            text: "if True:\n".to_owned(),
            first_line: def.start_line.saturating_sub(1).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Index;

    const TEXT: &str = "import x\n\nclass C:\n    a = 1\n\n    @deco\n    def m(self):\n        return super().m()\n";

    #[test]
    fn definition_source_keeps_lines_and_classes() {
        let index = Index::build(TEXT);
        let method = &index.items[1].children[1];
        let source = definition_source(method, TEXT);
        assert_eq!(
            source.padded(),
            "\n\n\n\nclass C:\n    @deco\n    def m(self):\n        return super().m()\n"
        );
        assert_eq!(source.line_offset(), 4);
        assert!(source.text.starts_with("class C:\n"));
        let bare = bare_definition_source(method, TEXT);
        assert_eq!(
            bare.padded(),
            "\n\n\n\nif True:\n\n    def m(self):\n        return super().m()\n"
        );
        assert_eq!(bare.first_line, 5);
    }

    #[test]
    fn class_statement_source_is_nested_under_if() {
        let index = Index::build(TEXT);
        let statement = &index.items[1].children[0];
        let source = statement_source(statement, TEXT);
        assert_eq!(source.padded(), "\n\nif True:\n    a = 1\n");
        assert_eq!(source.text, "if True:\n    a = 1\n");
        let import = &index.items[0];
        let source = statement_source(import, TEXT);
        assert_eq!(source.padded(), "import x\n");
        assert_eq!(source.line_offset(), 0);
    }

    #[test]
    fn a_definition_deep_in_a_file_is_no_longer_than_itself() {
        let text = "x = 1\n".repeat(5000) + "def f():\n    return 1\n";
        let index = Index::build(&text);
        let source = definition_source(index.items.last().unwrap(), &text);
        assert_eq!(source.text, "def f():\n    return 1\n");
        assert_eq!(source.first_line, 5001);
        assert_eq!(source.padded().lines().count(), 5002);
    }
}
