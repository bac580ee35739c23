//! The lines of a call tree as `fever show` prints them, with repetition collapsed.
//!
//! A line is a [`Group`] of calls shown once, with a count and their summed time:
//! - Among the calls of one node (or a thread's top-level calls), consecutive siblings of the
//!   same kind are one group, so a loop calling `parse` 100 times shows one line `[×100]`,
//!   while `a, b, a` keeps its order as three lines.
//! - The calls made by a group of several calls are aggregated: all of them, grouped by kind
//!   in the order each kind first appears, and so on down. `parse [×100]` shows `tokenize
//!   [×100]` under it even though `tokenize` and `emit` alternate.
//!
//! Calls are of the same kind when they run the same code, are both calls or both resumed
//! generator stretches, and ended the same way (returned, raised, suspended, unfinished), so
//! the one call of a hundred that raised stays visible. A group shows its first call's
//! arguments and outcome.
//!
//! [`Lines`] produces the lines depth-first with an explicit stack (no recursion, whatever the
//! depth of the trace) and computes each level only when it is reached.

use std::collections::HashMap;
use std::mem::Discriminant;

use super::calltree::{CallTree, Node, NodeId, ThreadTree};
use super::spans::Outcome;

/// Calls shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The first call, whose code, arguments and outcome the line shows.
    pub first: NodeId,
    /// Summed duration of all the calls.
    pub total_ns: u64,
    /// Every call, `first` included.
    members: Vec<NodeId>,
}

impl Group {
    fn new(id: NodeId, node: &Node<'_>) -> Self {
        Self {
            first: id,
            total_ns: node.duration_ns(),
            members: vec![id],
        }
    }

    fn add(&mut self, id: NodeId, node: &Node<'_>) {
        self.members.push(id);
        self.total_ns = self.total_ns.saturating_add(node.duration_ns());
    }

    /// How many calls the line stands for.
    pub fn count(&self) -> usize {
        self.members.len()
    }

    /// Every call of the line, in order (the first is [`first`](Self::first)).
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }
}

/// One line of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 0 for a thread's top-level calls.
    pub depth: usize,
    /// The calls of the line.
    pub group: Group,
}

/// What makes calls "the same" for collapsing; see the [module docs](self).
type Key<'a> = (u32, bool, Discriminant<Outcome<'a>>);

fn key<'a>(node: &Node<'a>) -> Key<'a> {
    (
        node.code,
        node.resumed,
        std::mem::discriminant(&node.outcome),
    )
}

/// Consecutive calls of the same kind, grouped.
fn consecutive(tree: &CallTree<'_>, ids: impl Iterator<Item = NodeId>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for id in ids {
        let node = tree.node(id);
        match groups.last_mut() {
            Some(group) if key(tree.node(group.first)) == key(node) => group.add(id, node),
            _ => groups.push(Group::new(id, node)),
        }
    }
    groups
}

/// The children of all of `members`, grouped by kind in order of first appearance.
fn aggregated(tree: &CallTree<'_>, members: &[NodeId]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index = HashMap::new();
    for &member in members {
        for id in tree.children(member) {
            let node = tree.node(id);
            let at = *index.entry(key(node)).or_insert(groups.len());
            match groups.get_mut(at) {
                Some(group) => group.add(id, node),
                None => groups.push(Group::new(id, node)),
            }
        }
    }
    groups
}

/// The lines under `group`.
fn children(tree: &CallTree<'_>, group: &Group) -> Vec<Group> {
    if let [only] = group.members[..] {
        consecutive(tree, tree.children(only))
    } else {
        aggregated(tree, &group.members)
    }
}

/// The lines of `thread`, depth-first, down to `max_depth` levels (`None`: all of them).
pub fn lines<'t, 'a>(
    tree: &'t CallTree<'a>,
    thread: &ThreadTree,
    max_depth: Option<usize>,
) -> Lines<'t, 'a> {
    let roots = if max_depth == Some(0) {
        Vec::new()
    } else {
        consecutive(tree, tree.roots(thread))
    };
    Lines {
        tree,
        max_depth,
        stack: vec![(0, roots.into_iter())],
    }
}

/// Iterator over the lines of a thread; see [`lines`].
#[derive(Debug)]
pub struct Lines<'t, 'a> {
    tree: &'t CallTree<'a>,
    max_depth: Option<usize>,
    /// Per level being shown: its depth and the groups still to show.
    stack: Vec<(usize, std::vec::IntoIter<Group>)>,
}

impl Iterator for Lines<'_, '_> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        loop {
            let (depth, level) = self.stack.last_mut()?;
            let depth = *depth;
            let Some(group) = level.next() else {
                self.stack.pop();
                continue;
            };
            if !matches!(self.max_depth, Some(max) if depth + 1 >= max) {
                let below = children(self.tree, &group);
                if !below.is_empty() {
                    self.stack.push((depth + 1, below.into_iter()));
                }
            }
            return Some(Line { depth, group });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use crate::trace::Event;

    /// `depth code ×count total` per line.
    fn show(events: &[Event], max_depth: Option<usize>) -> Vec<String> {
        let reader = trace(events);
        let tree = CallTree::build(reader.events());
        let thread = &tree.threads()[0];
        lines(&tree, thread, max_depth)
            .map(|l| {
                format!(
                    "{}f{} ×{} {}",
                    "  ".repeat(l.depth),
                    tree.node(l.group.first).code,
                    l.group.count(),
                    l.group.total_ns
                )
            })
            .collect()
    }

    /// `main` calls `parse` `n` times; each `parse` calls `tokenize` then `emit`.
    fn loop_of_parses(n: u64) -> Vec<Event> {
        let mut events = vec![call(1, 0, 0)];
        for i in 0..n {
            let t = 1 + i * 10;
            events.extend([
                call(1, 1, t),
                call(1, 2, t + 1),
                ret(1, 2, t + 3),
                call(1, 3, t + 4),
                ret(1, 3, t + 5),
                ret(1, 1, t + 6),
            ]);
        }
        events.push(ret(1, 0, 1 + n * 10));
        events
    }

    #[test]
    fn repeated_calls_collapse_and_their_children_aggregate() {
        assert_eq!(
            show(&loop_of_parses(100), None),
            [
                "f0 ×1 1001",
                "  f1 ×100 600",
                "    f2 ×100 200",
                "    f3 ×100 100"
            ]
        );
    }

    #[test]
    fn order_is_kept_between_different_calls() {
        let events = [
            call(1, 0, 0),
            call(1, 1, 1),
            ret(1, 1, 2),
            call(1, 2, 3),
            ret(1, 2, 4),
            call(1, 1, 5),
            ret(1, 1, 6),
            call(1, 1, 7),
            ret(1, 1, 9),
            ret(1, 0, 10),
        ];
        assert_eq!(
            show(&events, None),
            ["f0 ×1 10", "  f1 ×1 1", "  f2 ×1 1", "  f1 ×2 3"]
        );
    }

    #[test]
    fn a_call_that_raised_is_not_hidden_among_returns() {
        let mut events = vec![call(1, 0, 0)];
        for (i, raised) in [false, false, true, false].into_iter().enumerate() {
            let t = i as u64 * 2 + 1;
            events.push(call(1, 1, t));
            events.push(if raised {
                Event::Unwind {
                    code: 1,
                    flags: 0,
                    thread: 1,
                    t_ns: t + 1,
                }
            } else {
                ret(1, 1, t + 1)
            });
        }
        events.push(ret(1, 0, 20));
        assert_eq!(
            show(&events, None),
            ["f0 ×1 20", "  f1 ×2 2", "  f1 ×1 1", "  f1 ×1 1"]
        );
    }

    #[test]
    fn depth_limits_the_lines() {
        assert_eq!(
            show(&loop_of_parses(3), Some(2)),
            ["f0 ×1 31", "  f1 ×3 18"]
        );
        assert_eq!(show(&loop_of_parses(3), Some(1)), ["f0 ×1 31"]);
        assert!(show(&loop_of_parses(3), Some(0)).is_empty());
    }

    proptest::proptest! {
        /// Every call is in exactly one line: the groups partition the tree, level by level.
        #[test]
        fn every_call_is_shown_once(
            events in proptest::collection::vec(crate::analysis::spans::tests::any_event(), 0..150)
        ) {
            let reader = trace(&events);
            let tree = CallTree::build(reader.events());
            let nodes: usize = tree
                .threads()
                .iter()
                .map(|t| {
                    let mut stack: Vec<NodeId> = tree.roots(t).collect();
                    let mut n = 0;
                    while let Some(id) = stack.pop() {
                        n += 1;
                        stack.extend(tree.children(id));
                    }
                    n
                })
                .sum();
            let shown: usize = tree
                .threads()
                .iter()
                .flat_map(|t| lines(&tree, t, None))
                .map(|l| l.group.count())
                .sum();
            proptest::prop_assert_eq!(shown, nodes);
        }
    }

    #[test]
    fn deep_recursion_needs_no_stack() {
        let depth = 200_000u64;
        let mut events: Vec<Event> = (0..depth).map(|i| call(1, 0, i)).collect();
        events.extend((0..depth).map(|i| ret(1, 0, depth + i)));
        let reader = trace(&events);
        let tree = CallTree::build(reader.events());
        let lines: Vec<Line> = lines(&tree, &tree.threads()[0], None).collect();
        assert_eq!(lines.len(), 200_000);
        assert_eq!(lines.last().unwrap().depth, 199_999);
    }
}
