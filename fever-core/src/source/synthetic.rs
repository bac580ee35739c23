//! Synthetic sources: one definition or statement of a saved file alone, padded with blank
//! lines to its real line numbers and wrapped in its enclosing classes (as empty `class`
//! headers), so that compiling it gives code objects that look as if the whole file had been
//! compiled: right line numbers, zero-argument `super()`, the `__class__` cell, name mangling.

use super::index::Definition;

/// A definition (function or class) alone, at its real lines, inside its enclosing classes.
pub fn definition_source(def: &Definition, text: &str) -> String {
    let parents = def.parents.len();
    let mut source = "\n".repeat(def.start_line.saturating_sub(1 + parents));
    for (name, indent) in &def.parents {
        source.push_str(&" ".repeat(*indent));
        source.push_str("class ");
        source.push_str(name);
        source.push_str(":\n");
    }
    source.push_str(def.text(text));
    source.push('\n');
    source
}

/// A definition without its decorators (left as blank lines, so nothing but the `def` runs),
/// at its real lines, to be executed in a copy of its namespace for its default values.
pub fn bare_definition_source(def: &Definition, text: &str) -> String {
    let decorator_lines = text[def.decorators.clone()].matches('\n').count();
    let mut source = in_namespace_prefix(def);
    source.push_str(&"\n".repeat(decorator_lines));
    source.push_str(&text[def.decorators.end..def.span.end]);
    source.push('\n');
    source
}

/// A statement alone at its real lines, to be executed in its namespace (or a copy of it).
pub fn statement_source(def: &Definition, text: &str) -> String {
    let mut source = in_namespace_prefix(def);
    source.push_str(def.text(text));
    source.push('\n');
    source
}

/// Padding up to the line before `def`; a class-body item is nested under `if True:` so that its
/// indentation compiles and it runs in whatever namespace it is executed in (a copy of the
/// class's), reading class attributes as the class body did.
fn in_namespace_prefix(def: &Definition) -> String {
    if def.parents.is_empty() {
        "\n".repeat(def.start_line.saturating_sub(1))
    } else {
        "\n".repeat(def.start_line.saturating_sub(2)) + "if True:\n"
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
            source,
            "\n\n\n\nclass C:\n    @deco\n    def m(self):\n        return super().m()\n"
        );
        let bare = bare_definition_source(method, TEXT);
        assert_eq!(
            bare,
            "\n\n\n\nif True:\n\n    def m(self):\n        return super().m()\n"
        );
    }

    #[test]
    fn class_statement_source_is_nested_under_if() {
        let index = Index::build(TEXT);
        let statement = &index.items[1].children[0];
        assert_eq!(
            statement_source(statement, TEXT),
            "\n\nif True:\n    a = 1\n"
        );
        let import = &index.items[0];
        assert_eq!(statement_source(import, TEXT), "import x\n");
    }
}
