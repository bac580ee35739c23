//! The call tree as text: a `== thread N ==` header per thread, then a line per group of calls
//! (see `fever_core::analysis::collapse`), indented two spaces per level:
//!
//! ```text
//! == thread 140234 (main) ==
//! app.main(…) → 8  1.52 s
//!   app.parse(line='a b') → ['a', 'b']  [×100]  1.20 s
//!   app.store(rows=[…]) raised KeyError('x') (mutated args)  3.1 ms
//! ```
//!
//! Arguments and values are shortened; a group shows its first call's. After `max_lines`
//! lines the rest are only counted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use fever_core::analysis::calltree::CallTree;
use fever_core::analysis::collapse::{self, Line};
use fever_core::analysis::spans::Outcome;
use fever_core::analysis::text;
use fever_core::trace::TraceReader;
use fever_core::units;

/// How long shortened arguments and values may be.
const VALUE_CHARS: usize = 60;

/// Writes the tree of `reader`'s trace to `out`.
pub(super) fn write(
    reader: &TraceReader,
    depth: Option<usize>,
    max_lines: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let tree = CallTree::build(reader.events());
    let names: HashMap<u32, String> = reader
        .codes()
        .iter()
        .map(|code| (code.id, code.full_name()))
        .collect();
    let main = text::main_thread(reader.header());
    let full = |printed: usize| max_lines.is_some_and(|max| printed >= max);
    let mut printed = 0;
    let mut hidden: u64 = 0;
    for (i, thread) in tree.threads().iter().enumerate() {
        if !full(printed) {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "== {} ==", text::thread_label(thread.ident, main))?;
        }
        for line in collapse::lines(&tree, thread, depth) {
            if full(printed) {
                hidden += 1;
            } else {
                printed += 1;
                writeln!(out, "{}", line_text(&tree, &names, &line))?;
            }
        }
    }
    if hidden > 0 {
        writeln!(out, "… {hidden} more lines (use --max-lines)")?;
    }
    Ok(())
}

/// One line: indentation, call, outcome, marks, count and time.
fn line_text(tree: &CallTree<'_>, names: &HashMap<u32, String>, line: &Line) -> String {
    let node = tree.node(line.group.first);
    let name = names.get(&node.code).map_or("?", String::as_str);
    let mut text = "  ".repeat(line.depth);
    text.push_str(&text::call(name, node.args, VALUE_CHARS));
    match node.outcome {
        Outcome::Returned(value) | Outcome::Suspended(value) => {
            if let Some(value) = text::value(value, VALUE_CHARS) {
                text.push_str(" → ");
                text.push_str(&value);
            }
        }
        Outcome::Raised(exception) => {
            text.push_str(" raised ");
            let exception = text::value(exception, VALUE_CHARS);
            text.push_str(exception.as_deref().unwrap_or("an exception"));
        }
        Outcome::Unfinished => {}
    }
    let marks = [
        (node.resumed, " (resumed)"),
        (
            matches!(node.outcome, Outcome::Suspended(_)),
            " (suspended)",
        ),
        (node.outcome == Outcome::Unfinished, " (unfinished)"),
        (node.mutated_args, " (mutated args)"),
    ];
    for (_, mark) in marks.iter().filter(|(on, _)| *on) {
        text.push_str(mark);
    }
    if line.group.count() > 1 {
        let _ = write!(text, "  [×{}]", line.group.count());
    }
    text.push_str("  ");
    text.push_str(&units::duration(line.group.total_ns));
    text
}
