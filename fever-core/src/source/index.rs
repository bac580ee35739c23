//! The definitions of a Python file: functions, classes (with their methods and nested classes)
//! and top-level statements, each with its qualified name, line range and content hashes.

use std::collections::HashMap;
use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use super::scan::{scan, LogicalLine};

/// What a [`Definition`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `def` or `async def`.
    Function,
    /// `class`; its body is indexed in [`Definition::children`].
    Class,
    /// Any other statement (assignment, import, `if`, `for`, ...), simple or compound.
    Statement,
}

/// One definition or statement of a module or class body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub kind: Kind,
    /// The bound name (empty for statements).
    pub name: String,
    /// Python's `__qualname__`, e.g. `Outer.Inner.method` (empty for statements).
    pub qualname: String,
    /// Enclosing classes, outermost first, with the indentation of their `class` line.
    pub parents: Vec<(String, usize)>,
    /// First line, including decorators (Python's `co_firstlineno` of a decorated function).
    pub start_line: usize,
    /// Last line of the body.
    pub end_line: usize,
    /// Indentation of the definition's lines.
    pub indent: usize,
    /// Byte range of the whole text, from the start of the first line.
    pub span: Range<usize>,
    /// Byte range of the decorator lines (empty when there are none).
    pub decorators: Range<usize>,
    /// Hash of the whole text (position independent).
    pub hash: u64,
    /// Hash of the decorators.
    pub decorators_hash: u64,
    /// Hash of the header: `def name(params) -> ret` or `class Name(bases)`.
    pub header_hash: u64,
    /// First word of a statement (`if`, `import`, `x`, ...): tells compound statements apart.
    pub keyword: String,
    /// The statement is `if __name__ == "__main__":`.
    pub is_main_guard: bool,
    /// The statement is a simple assignment (`x = ...`, `x += ...`, `x: T = ...`).
    pub assigns: bool,
    /// The statement is an annotated name (`x: T` or `x: T = ...`), a field of a dataclass.
    pub annotated: bool,
    /// Items of a class body.
    pub children: Vec<Definition>,
}

impl Definition {
    /// The text of this definition in `source` (the text it was indexed from).
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.span.clone()]
    }

    /// True for compound statements (`if`, `for`, `while`, `try`, `with`, `match`, `async ...`).
    pub fn is_compound_statement(&self) -> bool {
        self.kind == Kind::Statement && COMPOUND.contains(&self.keyword.as_str())
    }

    /// For a class: a hash of what its instances are made of — decorators, header and the
    /// statements of its body (fields, class attributes, `__slots__`), not its methods (a method
    /// that runs while a value is built is code of its own).
    pub fn shape_hash(&self) -> u64 {
        let mut parts = vec![self.decorators_hash, self.header_hash];
        parts.extend(
            self.children
                .iter()
                .filter(|item| item.kind == Kind::Statement)
                .map(|item| item.hash),
        );
        let bytes: Vec<u8> = parts.iter().flat_map(|h| h.to_le_bytes()).collect();
        xxh3_64(&bytes)
    }
}

/// The index of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Module-level items in file order.
    pub items: Vec<Definition>,
    /// First line where the structure is broken (lexically, or by indentation Python would
    /// reject); the file needs Python's compiler for an exact message.
    pub broken: Option<usize>,
    /// How many module-level items have each qualified name, kept with `items` so that an edit
    /// can tell whether a name is defined elsewhere in the file without reading all of it.
    names: HashMap<String, usize>,
}

const COMPOUND: [&str; 8] = [
    "if", "for", "while", "try", "with", "match", "async", "case",
];
const CLAUSES: [&str; 4] = ["elif", "else", "except", "finally"];

impl Index {
    /// Indexes `text`.
    pub fn build(text: &str) -> Index {
        let scanned = scan(text);
        let mut builder = Builder {
            text,
            lines: &scanned.lines,
            next: 0,
            broken: scanned.broken,
        };
        let items = builder.block(0, &[]);
        if builder.next < builder.lines.len() {
            // Lines left over at a deeper indentation than any open block: unexpected indent.
            builder
                .broken
                .get_or_insert(builder.lines[builder.next].first_line);
        }
        let mut index = Index {
            items: Vec::new(),
            broken: builder.broken,
            names: HashMap::new(),
        };
        index.splice(0..0, items);
        index
    }

    /// How many module-level items are named `qualname`.
    pub(crate) fn occurrences(&self, qualname: &str) -> usize {
        self.names.get(qualname).copied().unwrap_or(0)
    }

    /// Replaces the module-level items in `range` by `items`.
    pub(crate) fn splice(&mut self, range: Range<usize>, items: Vec<Definition>) {
        for item in &self.items[range.clone()] {
            if let Some(count) = self.names.get_mut(item.qualname.as_str()) {
                *count -= 1;
                if *count == 0 {
                    self.names.remove(item.qualname.as_str());
                }
            }
        }
        for item in &items {
            if !item.qualname.is_empty() {
                *self.names.entry(item.qualname.clone()).or_default() += 1;
            }
        }
        self.items.splice(range, items);
    }
}

struct Builder<'a> {
    text: &'a str,
    lines: &'a [LogicalLine],
    next: usize,
    broken: Option<usize>,
}

impl<'a> Builder<'a> {
    fn line_text(&self, line: &LogicalLine) -> &'a str {
        &self.text[line.text_start..line.end]
    }

    /// Items of a block whose lines are indented by exactly `indent`.
    fn block(&mut self, indent: usize, parents: &[(String, usize)]) -> Vec<Definition> {
        let mut items = Vec::new();
        while self.next < self.lines.len() {
            let line = &self.lines[self.next];
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                self.broken.get_or_insert(line.first_line);
                break;
            }
            items.push(self.item(indent, parents));
        }
        items
    }

    fn item(&mut self, indent: usize, parents: &[(String, usize)]) -> Definition {
        let first = self.next;
        while self.next + 1 < self.lines.len()
            && self.line_text(&self.lines[self.next]).starts_with('@')
            && self.lines[self.next + 1].indent == indent
        {
            self.next += 1;
        }
        let head_index = self.next;
        let lines = self.lines;
        let head = &lines[head_index];
        let head_text = self.line_text(head);
        let words: Vec<&str> = head_text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .take(3)
            .collect();
        let (kind, name) = match words.as_slice() {
            ["def", name, ..] | ["async", "def", name] => (Kind::Function, (*name).to_owned()),
            ["class", name, ..] => (Kind::Class, (*name).to_owned()),
            _ => (Kind::Statement, String::new()),
        };
        let keyword = words.first().map(|w| (*w).to_owned()).unwrap_or_default();
        self.next += 1;
        let inline_body = head
            .colon
            .is_some_and(|colon| !self.text[colon + 1..head.end].trim().is_empty());
        let opens_block = kind != Kind::Statement || COMPOUND.contains(&keyword.as_str());
        let mut children = Vec::new();
        if opens_block && !inline_body {
            if kind == Kind::Class
                && self.next < self.lines.len()
                && self.lines[self.next].indent > indent
            {
                let body_indent = self.lines[self.next].indent;
                let mut inner = parents.to_vec();
                inner.push((name.clone(), indent));
                children = self.block(body_indent, &inner);
                if self.next < self.lines.len() && self.lines[self.next].indent > indent {
                    self.broken.get_or_insert(self.lines[self.next].first_line);
                }
            }
            self.skip_deeper(indent);
        }
        if kind == Kind::Statement && COMPOUND.contains(&keyword.as_str()) {
            // `elif`/`else`/`except`/`finally` clauses belong to the same statement.
            while self.next < self.lines.len() && self.lines[self.next].indent == indent {
                let clause = self.line_text(&self.lines[self.next]);
                let word: String = clause
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !CLAUSES.contains(&word.as_str()) {
                    break;
                }
                let clause_line = &self.lines[self.next];
                let clause_inline = clause_line
                    .colon
                    .is_some_and(|c| !self.text[c + 1..clause_line.end].trim().is_empty());
                self.next += 1;
                if !clause_inline {
                    self.skip_deeper(indent);
                }
            }
        }
        let last = &lines[self.next - 1];
        let first_line = &lines[first];
        let span = first_line.start..last.end;
        let decorators = first_line.start..head.start;
        let header_end = if kind == Kind::Statement {
            head.end
        } else {
            head.colon.unwrap_or(head.end)
        };
        let qualname = if kind == Kind::Statement {
            String::new()
        } else {
            parents
                .iter()
                .map(|(n, _)| n.as_str())
                .chain([name.as_str()])
                .collect::<Vec<_>>()
                .join(".")
        };
        let is_main_guard = kind == Kind::Statement
            && keyword == "if"
            && head_text.contains("__name__")
            && head_text.contains("__main__");
        let simple = kind == Kind::Statement && !COMPOUND.contains(&keyword.as_str());
        let assigns = simple && head.assigns;
        let annotated = simple
            && head.colon.is_some_and(|colon| {
                let target = self.text[head.text_start..colon].trim_end();
                !target.is_empty()
                    && target
                        .bytes()
                        .all(|b| b == b'_' || b.is_ascii_alphanumeric())
            });
        Definition {
            kind,
            name,
            qualname,
            parents: parents.to_vec(),
            start_line: first_line.first_line,
            end_line: last.last_line,
            indent,
            hash: xxh3_64(self.text[span.clone()].as_bytes()),
            decorators_hash: xxh3_64(self.text[decorators.clone()].as_bytes()),
            header_hash: xxh3_64(&self.text.as_bytes()[head.text_start..header_end]),
            span,
            decorators,
            keyword,
            is_main_guard,
            assigns,
            annotated,
            children,
        }
    }

    /// Skips the lines of a body: every following line indented deeper than `indent`.
    fn skip_deeper(&mut self, indent: usize) {
        while self.next < self.lines.len() && self.lines[self.next].indent > indent {
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_shape_ignores_its_methods() {
        let class =
            "@dataclass\nclass P:\n    x: int\n\n    def norm(self):\n        return self.x\n";
        let shape = |text: &str| Index::build(text).items[0].shape_hash();
        assert_eq!(
            shape(class),
            shape(&class.replace("return self.x", "return 2"))
        );
        assert_eq!(
            shape(class),
            shape(&format!("\n\n{class}")),
            "position independent"
        );
        assert_ne!(
            shape(class),
            shape(&class.replace("x: int", "x: int\n    y: int = 0"))
        );
        assert_ne!(shape(class), shape(&class.replace("@dataclass\n", "")));
        assert_ne!(
            shape(class),
            shape(&class.replace("class P:", "class P(Base):"))
        );
    }

    fn names(items: &[Definition]) -> Vec<(Kind, String, usize, usize)> {
        items
            .iter()
            .map(|d| (d.kind, d.qualname.clone(), d.start_line, d.end_line))
            .collect()
    }

    const SAMPLE: &str = r#"import os

X = 1

@decorator
def f(a, b=2):
    def inner():
        return a
    return inner

class C(Base):
    """Doc."""
    attr = 3

    @property
    def p(self):
        return 1

    @p.setter
    def p(self, value):
        pass

    class Inner:
        def m(self): return 2

async def g():
    await x

if __name__ == "__main__":
    f(1)
else:
    pass
"#;

    #[test]
    fn indexes_definitions_with_qualnames_and_lines() {
        let index = Index::build(SAMPLE);
        assert_eq!(index.broken, None);
        assert_eq!(
            names(&index.items),
            vec![
                (Kind::Statement, String::new(), 1, 1),
                (Kind::Statement, String::new(), 3, 3),
                (Kind::Function, "f".into(), 5, 9),
                (Kind::Class, "C".into(), 11, 24),
                (Kind::Function, "g".into(), 26, 27),
                (Kind::Statement, String::new(), 29, 32),
            ]
        );
        let class = &index.items[3];
        assert_eq!(
            names(&class.children),
            vec![
                (Kind::Statement, String::new(), 12, 12),
                (Kind::Statement, String::new(), 13, 13),
                (Kind::Function, "C.p".into(), 15, 17),
                (Kind::Function, "C.p".into(), 19, 21),
                (Kind::Class, "C.Inner".into(), 23, 24),
            ]
        );
        assert_eq!(
            names(&class.children[4].children),
            vec![(Kind::Function, "C.Inner.m".into(), 24, 24)]
        );
        assert_eq!(
            class.children[4].children[0].parents,
            vec![("C".into(), 0), ("Inner".into(), 4)]
        );
        assert!(index.items[5].is_main_guard);
        assert!(index.items[5].is_compound_statement());
    }

    #[test]
    fn hashes_ignore_position_but_not_content() {
        let a = Index::build("def f():\n    return 1\n");
        let b = Index::build("\n\n# moved\ndef f():\n    return 1\n");
        let c = Index::build("def f():\n    return 2\n");
        assert_eq!(a.items[0].hash, b.items[0].hash);
        assert_eq!(b.items[0].start_line, 4);
        assert_ne!(a.items[0].hash, c.items[0].hash);
        assert_eq!(a.items[0].header_hash, c.items[0].header_hash);
        let d = Index::build("def f(x=1):\n    return 1\n");
        assert_ne!(a.items[0].header_hash, d.items[0].header_hash);
    }

    #[test]
    fn decorators_are_part_of_the_definition() {
        let index = Index::build("@a\n@b(1)\ndef f():\n    pass\n");
        let f = &index.items[0];
        assert_eq!((f.start_line, f.end_line), (1, 4));
        assert_eq!(
            &"@a\n@b(1)\ndef f():\n    pass\n"[f.decorators.clone()],
            "@a\n@b(1)\n"
        );
    }

    #[test]
    fn broken_structure_is_reported() {
        assert_eq!(Index::build("x = 1\n    y = 2\n").broken, Some(2));
        assert_eq!(Index::build("def f(:\n    pass\n").broken, Some(1));
        assert_eq!(
            Index::build("class C:\n        a = 1\n    b = 2\n").broken,
            Some(3)
        );
        assert_eq!(Index::build(SAMPLE).broken, None);
    }

    #[test]
    fn try_except_is_one_statement() {
        let index = Index::build(
            "try:\n    import x\nexcept ImportError:\n    x = None\nfinally:\n    pass\ny = 1\n",
        );
        assert_eq!(index.items.len(), 2);
        assert_eq!((index.items[0].start_line, index.items[0].end_line), (1, 6));
    }

    #[test]
    fn one_line_class_and_def() {
        let index = Index::build("class E(Exception): pass\ndef f(): return 1\n");
        assert_eq!(
            names(&index.items),
            vec![
                (Kind::Class, "E".into(), 1, 1),
                (Kind::Function, "f".into(), 2, 2)
            ]
        );
    }
}
