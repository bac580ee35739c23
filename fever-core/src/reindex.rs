//! A save as a change of the running text: the reload plan, and the edit that turns the running
//! text's index into the saved text's, at a cost that grows with the change, not the file.
//!
//! The running text and the saved one share a prefix and a suffix. Only the top-level items the
//! bytes in between touch, and one item on each side of them, are indexed again (from the saved
//! text, as a piece on its own); the items before are kept and the items after are kept shifted,
//! in place: [`Reindexed::apply`] splices the running index rather than building a new one, so
//! the untouched items are neither copied nor dropped. When no line moved, the plan is that of
//! the re-indexed items alone. Whenever the change cannot be confined that way — a structure
//! already broken, a piece that does not end at a top-level statement, names the piece shares
//! with the rest of the file, lines added or removed (every later definition moves) — the whole
//! file is indexed and planned as [`Index::build`] and [`plan_reload`] do, so the result is
//! always theirs.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use crate::plan::{plan_items, plan_reload, Plan};
use crate::source::{future_features, future_features_in, Definition, Index};

/// What a save comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reindexed {
    /// The changes from the running text's index to the saved text's.
    pub plan: Plan,
    edit: Edit,
}

/// How the running text's index becomes the saved text's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    /// The module-level items in `range` are replaced by `items`; the items after them move by
    /// `bytes` (a wrapping difference: either direction), their lines unchanged.
    Splice {
        range: Range<usize>,
        items: Vec<Definition>,
        bytes: usize,
    },
    /// The saved text indexed as a whole.
    Whole(Index),
}

impl Reindexed {
    /// The first line where the saved text's structure is broken (see [`Index::broken`]).
    pub fn broken(&self) -> Option<usize> {
        match &self.edit {
            Edit::Splice { .. } => None,
            Edit::Whole(index) => index.broken,
        }
    }

    /// The saved text's `__future__` features ([`future_features`]); `running` is the index
    /// [`reindex`] was given, `text` the saved text.
    pub fn future_features(&self, running: &Index, text: &str) -> BTreeSet<String> {
        match &self.edit {
            Edit::Splice { range, items, .. } => {
                future_features_in(running.items[..range.start].iter().chain(items), text)
            }
            Edit::Whole(index) => future_features(index, text),
        }
    }

    /// Turns `running`, the index [`reindex`] was given, into the saved text's index.
    pub fn apply(self, running: &mut Index) {
        match self.edit {
            Edit::Splice {
                range,
                items,
                bytes,
            } => {
                let after = range.start + items.len();
                running.splice(range, items);
                if bytes != 0 {
                    for item in &mut running.items[after..] {
                        shift_by(item, bytes);
                    }
                }
            }
            Edit::Whole(index) => *running = index,
        }
    }
}

/// Clause keywords that continue the compound statement before them.
const CLAUSES: [&str; 4] = ["elif", "else", "except", "finally"];

/// Plans the reload of `new`, a saved version of `old` (which `running` indexes), and how to
/// index it.
pub fn reindex(running: &Index, old: &str, new: &str) -> Reindexed {
    confined(running, old, new).unwrap_or_else(|| {
        let index = Index::build(new);
        let plan = plan_reload(running, &index);
        Reindexed {
            plan,
            edit: Edit::Whole(index),
        }
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
    if old_lines != new_lines || !names_stay_apart(running, lo..hi, &fresh.items) {
        return None;
    }
    let plan = plan_items(&items[lo..hi], &fresh.items);
    Some(Reindexed {
        plan,
        edit: Edit::Splice {
            range: lo..hi,
            items: fresh.items,
            bytes: new_end.wrapping_sub(old_end),
        },
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
/// can count otherwise. The running index's name counts answer it without reading the rest.
fn names_stay_apart(running: &Index, range: Range<usize>, fresh: &[Definition]) -> bool {
    let replaced = &running.items[range];
    let mut here: HashMap<&str, usize> = HashMap::new();
    for item in replaced {
        *here.entry(item.qualname.as_str()).or_default() += 1;
    }
    replaced.iter().chain(fresh).all(|item| {
        let name = item.qualname.as_str();
        name.is_empty() || running.occurrences(name) == here.get(name).copied().unwrap_or(0)
    })
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

/// Bytes compared at a time (each comparison is a `memcmp`) before the last block is compared
/// byte by byte: a 10,000-function file has half a megabyte in common with its saved version.
const BLOCK: usize = 256;

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut same = 0;
    while same + BLOCK <= n && a[same..same + BLOCK] == b[same..same + BLOCK] {
        same += BLOCK;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a_end, b_end) = (a.len(), b.len());
    let mut same = 0;
    while same + BLOCK <= n
        && a[a_end - same - BLOCK..a_end - same] == b[b_end - same - BLOCK..b_end - same]
    {
        same += BLOCK;
    }
    same + a[..a_end - same]
        .iter()
        .rev()
        .zip(b[..b_end - same].iter().rev())
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

    /// `reindex` gives exactly what indexing and planning the whole file gives: the plan, the
    /// future features, and the index once applied to the running one.
    fn same_as_whole(old: &str, new: &str) {
        let running = Index::build(old);
        let got = reindex(&running, old, new);
        let index = Index::build(new);
        assert_eq!(got.plan, plan_reload(&running, &index), "plan of {new:?}");
        assert_eq!(got.broken(), index.broken, "broken in {new:?}");
        assert_eq!(
            got.future_features(&running, new),
            future_features(&index, new),
            "future features of {new:?}"
        );
        let mut applied = running.clone();
        got.apply(&mut applied);
        assert_eq!(applied, index, "index of {new:?}");
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

    #[test]
    fn saves_in_a_row_keep_the_running_index_equal_to_the_whole_files() {
        let mut text = module(30, "'v0'");
        let mut running = Index::build(&text);
        let saves = [
            text.replace("return 'v0'\n", "return 'version 1'\n"),
            text.replace("x * 3 + 1", "x * 3 + 100"),
            text.replace("x * 3 + 1", "x * 3 + 100")
                .replace("def f20(x):", "def g20(x):"),
            text.replace("def f10(x):", "def f11(x):"),
            text.replace(
                "def f29(x):\n    y = x * 29 + 1\n",
                "def f29(x):\n    y = x\n",
            ),
        ];
        for (n, save) in saves.iter().enumerate() {
            let got = reindex(&running, &text, save);
            assert_eq!(
                got.plan,
                plan_reload(&running, &Index::build(save)),
                "save {n}"
            );
            got.apply(&mut running);
            assert_eq!(running, Index::build(save), "save {n}");
            text.clone_from(save);
        }
    }

    #[test]
    fn only_the_changed_items_are_indexed_again() {
        let old = module(200, "'v1'");
        let running = Index::build(&old);
        let new = old.replace("return 'v1'\n", "return 'v22'\n");
        let got = reindex(&running, &old, &new);
        let Edit::Splice { range, items, .. } = &got.edit else {
            panic!("not confined");
        };
        assert!(range.len() <= 3 && items.len() <= 3, "{range:?}");
        // Its name is defined elsewhere too: the whole file decides which `C` is which.
        let twice = format!("{old}\nclass C:\n    pass\n");
        let running = Index::build(&twice);
        let edited = twice.replace("        return 'v1'", "        return 'v2'");
        assert!(matches!(
            reindex(&running, &twice, &edited).edit,
            Edit::Whole(_)
        ));
        same_as_whole(&twice, &edited);
    }

    #[test]
    fn common_ends_are_found_across_blocks() {
        let a: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        for at in [0, 1, 255, 256, 257, 1000, 1999] {
            let mut b = a.clone();
            b[at] ^= 1;
            assert_eq!(common_prefix(&a, &b), at, "prefix, change at {at}");
            assert_eq!(
                common_suffix(&a, &b),
                a.len() - at - 1,
                "suffix, change at {at}"
            );
        }
        assert_eq!(common_prefix(&a, &a[..700]), 700);
        assert_eq!(common_suffix(&a, &a[1300..]), 700);
        assert_eq!(common_prefix(&a, &a), a.len());
        assert_eq!(common_suffix(b"", &a), 0);
    }
}
