//! A save as a change of the running text: the saved text's index and the reload plan, at a cost
//! that grows with the change, not the file.
//!
//! The running text and the saved one share a prefix and a suffix. Only the top-level items the
//! bytes in between touch, and one item on each side of them, are indexed again (from the saved
//! text, as a piece on its own); the items before are kept and the items after are kept shifted.
//! When no line moved, the plan is that of the re-indexed items alone. Whenever the change cannot
//! be confined that way — a structure already broken, a piece that does not end at a top-level
//! statement, names the piece shares with the rest of the file, lines added or removed (every
//! later definition moves) — the whole file is indexed and planned as [`Index::build`] and
//! [`plan_reload`] do, so the result is always theirs.

use std::collections::HashSet;

use crate::plan::{plan_reload, Plan};
use crate::source::{Definition, Index};

/// What a save comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reindexed {
    /// The index of the saved text (equal to `Index::build` of it).
    pub index: Index,
    /// The changes from the running text's index to it.
    pub plan: Plan,
}

/// Clause keywords that continue the compound statement before them.
const CLAUSES: [&str; 4] = ["elif", "else", "except", "finally"];

/// Indexes `new`, a saved version of `old` (which `running` indexes), and plans the reload.
pub fn reindex(running: &Index, old: &str, new: &str) -> Reindexed {
    confined(running, old, new).unwrap_or_else(|| {
        let index = Index::build(new);
        let plan = plan_reload(running, &index);
        Reindexed { index, plan }
    })
}

/// The result when the change stays within a few top-level items, else `None`.
fn confined(running: &Index, old: &str, new: &str) -> Option<Reindexed> {
    if running.broken.is_some() {
        return None;
    }
    let items = &running.items;
    let prefix = common_prefix(old.as_bytes(), new.as_bytes());
    let suffix = common_suffix(&old.as_bytes()[prefix..], &new.as_bytes()[prefix..]);
    let old_changed_end = old.len() - suffix;
    let first = items.partition_point(|item| item.span.end <= prefix);
    let last = items.partition_point(|item| item.span.start < old_changed_end);
    let lo = first.saturating_sub(1);
    let hi = (last.max(first) + 1).min(items.len());
    let (start, start_line) = match items.get(lo) {
        Some(item) if lo > 0 => (item.span.start, item.start_line),
        _ => (0, 1),
    };
    let old_end = items.get(hi).map_or(old.len(), |item| item.span.start);
    if items
        .get(hi)
        .is_some_and(|item| CLAUSES.contains(&item.keyword.as_str()))
    {
        return None;
    }
    let new_end = (old_end + new.len()).checked_sub(old.len())?;
    let piece = new.get(start..new_end)?;
    let mut fresh = Index::build(piece);
    if fresh.broken.is_some() || ends_open(piece) {
        return None;
    }
    for item in &mut fresh.items {
        shift(item, start, start_line - 1);
    }
    let old_lines = old[start..old_end].matches('\n').count();
    let new_lines = piece.matches('\n').count();
    if old_lines != new_lines || !names_stay_apart(items, lo, hi, &fresh.items) {
        return None;
    }
    let before = Index {
        items: items[lo..hi].to_vec(),
        broken: None,
    };
    let plan = plan_reload(&before, &fresh);
    let shift_bytes = new_end.wrapping_sub(old_end);
    let mut index = Vec::with_capacity(lo + fresh.items.len() + items.len() - hi);
    index.extend_from_slice(&items[..lo]);
    index.append(&mut fresh.items);
    index.extend(items[hi..].iter().map(|item| {
        let mut item = item.clone();
        shift_by(&mut item, shift_bytes);
        item
    }));
    Some(Reindexed {
        index: Index {
            items: index,
            broken: None,
        },
        plan,
    })
}

/// Whether `piece` ends where the next line could not start a statement of its own: after a
/// decorator or a line continuation.
fn ends_open(piece: &str) -> bool {
    let last = piece
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with('#'));
    last.is_some_and(|line| line.starts_with('@') || line.ends_with('\\'))
}

/// Whether the names the re-indexed items define (before and after the save) are defined nowhere
/// else in the file: definitions are matched by name and occurrence, which only the whole file
/// can count otherwise.
fn names_stay_apart(items: &[Definition], lo: usize, hi: usize, fresh: &[Definition]) -> bool {
    let names: HashSet<&str> = items[lo..hi]
        .iter()
        .chain(fresh)
        .filter(|item| !item.qualname.is_empty())
        .map(|item| item.qualname.as_str())
        .collect();
    names.is_empty()
        || !items[..lo]
            .iter()
            .chain(&items[hi..])
            .any(|item| names.contains(item.qualname.as_str()))
}

/// Moves `item` (indexed from a piece of text) to byte `offset` and `lines` lines further.
fn shift(item: &mut Definition, offset: usize, lines: usize) {
    item.span = item.span.start + offset..item.span.end + offset;
    item.decorators = item.decorators.start + offset..item.decorators.end + offset;
    item.start_line += lines;
    item.end_line += lines;
    for child in &mut item.children {
        shift(child, offset, lines);
    }
}

/// Moves `item` by `delta` bytes (a wrapping difference: either direction), its lines unchanged.
fn shift_by(item: &mut Definition, delta: usize) {
    item.span = item.span.start.wrapping_add(delta)..item.span.end.wrapping_add(delta);
    item.decorators =
        item.decorators.start.wrapping_add(delta)..item.decorators.end.wrapping_add(delta);
    for child in &mut item.children {
        shift_by(child, delta);
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(n: usize, target: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("import math\n\n");
        for i in 0..n {
            let _ = write!(
                out,
                "def f{i}(x):\n    y = x * {i} + 1\n    return math.sqrt(y) + {i}\n\n"
            );
        }
        let _ = write!(
            out,
            "class C:\n    def m(self):\n        return {target}\n\n\ndef target():\n    return {target}\n"
        );
        out
    }

    /// `reindex` gives exactly what indexing and planning the whole file gives.
    fn same_as_whole(old: &str, new: &str) {
        let running = Index::build(old);
        let got = reindex(&running, old, new);
        let index = Index::build(new);
        assert_eq!(got.index, index, "index of {new:?}");
        assert_eq!(got.plan, plan_reload(&running, &index), "plan of {new:?}");
    }

    #[test]
    fn a_confined_change_is_indexed_and_planned_like_the_whole_file() {
        let old = module(50, "'v1'");
        let running = Index::build(&old);
        let new = old.replace("return 'v1'\n", "return 'v2'\n");
        assert!(confined(&running, &old, &new).is_some());
        same_as_whole(&old, &new);
        let one = old.replace("x * 7 + 1", "x * 7 + 2");
        assert!(confined(&running, &old, &one).is_some());
        same_as_whole(&old, &one);
    }

    #[test]
    fn every_kind_of_edit_gives_what_the_whole_file_gives() {
        let old = module(20, "'v1'");
        let edits: Vec<String> = vec![
            old.clone(),
            old.replace("def f3(x):\n", "def f3(x, z=1):\n"),
            old.replace("def f3(x):\n", "@cache\ndef f3(x):\n"),
            old.replace("    return math.sqrt(y) + 3\n", "    return (\n        1"),
            old.replace("def f5(x):\n", "x = '''\ndef f5(x):\n"),
            old.replace("def f5(x):\n", "def f5(x):\n    '''doc'''\n"),
            old.replace(
                "def f6(x):\n    y = x * 6 + 1\n    return math.sqrt(y) + 6\n\n",
                "",
            ),
            old.replace("def f6(x):\n", "def f2(x):\n"),
            old.replace("def f6(x):\n", "def g(x):\n"),
            old.replace(
                "def f7(x):\n",
                "if True:\n    pass\nelse:\n    pass\ndef f7(x):\n",
            ),
            old.replace("import math\n", "import math, os\n"),
            old.replace(
                "    return math.sqrt(y) + 9\n\n",
                "    return math.sqrt(y) + 9\n\n@d\n",
            ),
            old.replace(
                "    return math.sqrt(y) + 9\n",
                "    return math.sqrt(y) + \\\n",
            ),
            old.replace("        return 'v1'", "        return 'v2'"),
            old.replace("\n\nclass C:", "\n\nclass C(B):"),
            format!("{old}\ndef late():\n    pass\n"),
            old.replace("def f0(x):", "# a comment\ndef f0(x):"),
            old.replace("    y = x * 4 + 1\n", "  y = x * 4 + 1\n"),
            String::new(),
        ];
        for new in &edits {
            same_as_whole(&old, new);
        }
        // And from a broken running text.
        same_as_whole(&edits[3], &old);
    }
}
