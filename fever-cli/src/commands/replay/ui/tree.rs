//! The call tree pane's model: a recording opened once, its calls as collapsed lines
//! (`fever_core::analysis::collapse`: repeated calls are one line `[×N]`), and what is shown of
//! them: folded subtrees, expanded repeats (a `[×N]` line opened into its N calls), the selected
//! line, search by name. Lines are formatted only when drawn, so a recording of a million calls
//! costs its lines once and each frame only the visible ones.

use std::collections::HashMap;
use std::path::Path;

use fever_core::analysis::calltree::{CallTree, NodeId};
use fever_core::analysis::collapse::lines;
use fever_core::analysis::spans::Outcome;
use fever_core::replay::CallRef;
use fever_core::snapshot::{render_args_short, render_short};
use fever_core::trace::{thread_process, TraceError, TraceReader};

/// A recording and its call tree (which borrows the recording's bytes).
pub struct Recording {
    // Declared before `reader`, so it is dropped first: it borrows from `*reader`.
    tree: CallTree<'static>,
    reader: Box<TraceReader>,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        Ok(Self::new(TraceReader::open(path)?))
    }

    pub fn new(reader: TraceReader) -> Self {
        let reader = Box::new(reader);
        // SAFETY: the tree borrows the reader's bytes, which live in the box as long as `self`
        // (never moved out, never replaced without the tree), and the tree is dropped first.
        let borrowed: &'static TraceReader = unsafe { &*std::ptr::from_ref(reader.as_ref()) };
        let tree = CallTree::build(borrowed.events());
        Self { tree, reader }
    }

    pub fn tree(&self) -> &CallTree<'_> {
        &self.tree
    }

    pub fn reader(&self) -> &TraceReader {
        &self.reader
    }
}

/// One line of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub depth: usize,
    /// The calls the line stands for (one, or a collapsed repeat).
    pub members: Vec<NodeId>,
    /// A `[×N]` line opened into its calls (shown as one line each, below it).
    pub opened: bool,
    /// The lines below this one are hidden.
    pub folded: bool,
    /// Summed time of the calls.
    pub total_ns: u64,
}

/// The tree pane's model.
pub struct Tree {
    recording: Recording,
    names: HashMap<u32, String>,
    rows: Vec<Row>,
    /// What is shown: (row, member index for an opened repeat's calls).
    visible: Vec<(usize, Option<usize>)>,
    pub selected: usize,
    /// Calls of each function in the program's own process, by start time, for call numbers
    /// (`module.qualname#N`).
    starts: HashMap<String, Vec<(u64, u64)>>,
    /// The calls made in child processes, with the child's pid: no replay starts there.
    in_child_processes: HashMap<NodeId, u32>,
}

impl Tree {
    pub fn new(recording: Recording) -> Self {
        let names: HashMap<u32, String> = recording
            .reader()
            .codes()
            .iter()
            .map(|c| (c.id, format!("{}.{}", c.module, c.qualname)))
            .collect();
        let tree = recording.tree();
        let mut rows = Vec::new();
        let mut starts: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        let mut in_child_processes = HashMap::new();
        for thread in tree.threads() {
            let child = thread_process(thread.ident).map(|(pid, _)| pid);
            for line in lines(tree, thread, None) {
                rows.push(Row {
                    depth: line.depth,
                    members: line.group.members().to_vec(),
                    opened: false,
                    folded: false,
                    total_ns: line.group.total_ns,
                });
                for &id in line.group.members() {
                    let node = tree.node(id);
                    if let Some(pid) = child {
                        in_child_processes.insert(id, pid);
                    } else if !node.resumed {
                        if let Some(name) = names.get(&node.code) {
                            starts
                                .entry(name.clone())
                                .or_default()
                                .push((node.start_ns, thread.ident));
                        }
                    }
                }
            }
        }
        for list in starts.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let mut tree = Self {
            recording,
            names,
            rows,
            visible: Vec::new(),
            selected: 0,
            starts,
            in_child_processes,
        };
        tree.relayout();
        tree
    }

    /// Recomputes the visible lines after a fold or an opened repeat.
    fn relayout(&mut self) {
        let keep = self.visible.get(self.selected).copied();
        self.visible.clear();
        let mut hidden_below: Option<usize> = None;
        for (i, row) in self.rows.iter().enumerate() {
            if let Some(depth) = hidden_below {
                if row.depth > depth {
                    continue;
                }
                hidden_below = None;
            }
            self.visible.push((i, None));
            if row.opened {
                self.visible
                    .extend((0..row.members.len()).map(|m| (i, Some(m))));
            }
            if row.folded {
                hidden_below = Some(row.depth);
            }
        }
        self.selected = keep
            .and_then(|k| self.visible.iter().position(|&v| v == k))
            .unwrap_or(self.selected.min(self.visible.len().saturating_sub(1)));
    }

    pub fn line_count(&self) -> usize {
        self.visible.len()
    }

    /// The calls of the visible line `index` (one for an opened repeat's call).
    fn calls(&self, index: usize) -> Option<&[NodeId]> {
        let &(row, member) = self.visible.get(index)?;
        let members = &self.rows[row].members;
        Some(match member {
            Some(m) => &members[m..=m],
            None => members,
        })
    }

    /// The node shown by the visible line `index`.
    pub fn node_at(&self, index: usize) -> Option<NodeId> {
        self.calls(index).and_then(|c| c.first().copied())
    }

    pub fn name_of(&self, node: NodeId) -> &str {
        let code = self.recording.tree().node(node).code;
        self.names.get(&code).map_or("?", String::as_str)
    }

    /// The text of visible line `index`: indentation, `name(args) → value  time [×N]`, with
    /// `+`/`-` for folded/unfolded subtrees and `▸` for an opened repeat's calls.
    pub fn line(&self, index: usize, width: usize) -> String {
        let Some(&(row_index, member)) = self.visible.get(index) else {
            return String::new();
        };
        let row = &self.rows[row_index];
        let Some(calls) = self.calls(index) else {
            return String::new();
        };
        let tree = self.recording.tree();
        let node = tree.node(calls[0]);
        let has_children = self
            .rows
            .get(row_index + 1)
            .is_some_and(|next| next.depth > row.depth);
        let mark = match (member, has_children, row.folded) {
            (Some(_), _, _) => "▸ ",
            (None, true, true) => "+ ",
            (None, true, false) => "- ",
            (None, false, _) => "  ",
        };
        let indent = "  ".repeat(row.depth + usize::from(member.is_some()));
        let budget = width.saturating_sub(indent.len() + 20).max(10);
        let args = node
            .args
            .map_or_else(|| "…".to_owned(), |a| render_args_short(a, budget / 2));
        let outcome = match node.outcome {
            Outcome::Returned(Some(v)) => format!(" → {}", render_short(v, budget / 3)),
            Outcome::Raised(Some(e)) => format!(" raised {}", render_short(e, budget / 3)),
            Outcome::Raised(None) => " raised".into(),
            Outcome::Suspended(_) => " (suspended)".into(),
            Outcome::Unfinished => " (running)".into(),
            Outcome::Returned(None) => String::new(),
        };
        let total = if member.is_some() {
            node.duration_ns()
        } else {
            row.total_ns
        };
        let count = if member.is_none() && calls.len() > 1 {
            format!(" [×{}]", calls.len())
        } else {
            String::new()
        };
        format!(
            "{indent}{mark}{}({args}){outcome}  {}{count}",
            self.name_of(calls[0]),
            duration(total)
        )
    }

    /// Folds or unfolds the selected line's subtree; on a `[×N]` line with nothing below,
    /// opens or closes its calls instead.
    pub fn toggle(&mut self) {
        let Some(&(row, member)) = self.visible.get(self.selected) else {
            return;
        };
        if member.is_some() {
            return;
        }
        let has_children = self
            .rows
            .get(row + 1)
            .is_some_and(|next| next.depth > self.rows[row].depth);
        if has_children {
            self.rows[row].folded = !self.rows[row].folded;
        } else if self.rows[row].members.len() > 1 {
            self.rows[row].opened = !self.rows[row].opened;
        }
        self.relayout();
    }

    /// Opens or closes the selected `[×N]` line into its calls.
    pub fn toggle_repeats(&mut self) {
        if let Some(&(row, None)) = self.visible.get(self.selected) {
            if self.rows[row].members.len() > 1 {
                self.rows[row].opened = !self.rows[row].opened;
                self.relayout();
            }
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// Selects the next visible line after the selection whose function name contains `text`
    /// (wrapping around); false when none does.
    pub fn search(&mut self, text: &str) -> bool {
        let n = self.visible.len();
        for step in 1..=n {
            let i = (self.selected + step) % n;
            if let Some(node) = self.node_at(i) {
                if self.name_of(node).contains(text) {
                    self.selected = i;
                    return true;
                }
            }
        }
        false
    }

    /// The child process `node` ran in, if it did not run in the program's own process.
    pub fn child_process(&self, node: NodeId) -> Option<u32> {
        self.in_child_processes.get(&node).copied()
    }

    /// The call reference (`module.qualname#N`) of `node` (`None` for a resumed stretch and a
    /// call in a child process).
    pub fn call_ref(&self, node: NodeId) -> Option<CallRef> {
        let n = self.recording.tree().node(node);
        if n.resumed {
            return None;
        }
        let name = self.name_of(node).to_owned();
        let list = self.starts.get(&name)?;
        // Sorted by start: a binary search, since every visible line asks on every frame.
        let position = list.partition_point(|&(start, _)| start < n.start_ns);
        if list
            .get(position)
            .is_none_or(|&(start, _)| start != n.start_ns)
        {
            return None;
        }
        CallRef::new(&name, u32::try_from(position + 1).ok()?).ok()
    }

    /// The number of `end` among the calls of its function that started within `start`
    /// (itself included): what `Request::Replay` calls the end call's number.
    pub fn end_number(&self, start: NodeId, end: NodeId) -> u32 {
        let tree = self.recording.tree();
        let (s, e) = (tree.node(start), tree.node(end));
        let name = self.name_of(end);
        let count = self.starts.get(name).map_or(0, |list| {
            list.iter()
                .filter(|&&(t, _)| t >= s.start_ns && t <= e.start_ns)
                .count()
        });
        u32::try_from(count.max(1)).unwrap_or(1)
    }

    pub fn recording(&self) -> &Recording {
        &self.recording
    }
}

/// `1.2 ms`-style durations.
pub fn duration(ns: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let n = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", n / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", n / 1e6)
    } else {
        format!("{:.2} s", n / 1e9)
    }
}
