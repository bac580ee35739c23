//! [`CallTree`]: the spans of every thread as a tree of calls.
//!
//! Nodes live in one arena in the order they started, linked to their first child and next
//! sibling, so a tree of millions of calls costs one allocation growth pattern and no
//! recursion to build, walk or drop. Snapshots are borrowed from the trace, never copied.
//! What a node is (a call, a resumed generator stretch, how it ended) is decided by
//! [`spans`](super::spans).

use std::convert::Infallible;

use super::spans::{self, Closed, Opened, Outcome, Snapshot, SpanSink, Thread};
use crate::trace::EventRef;

/// Index of a node in its [`CallTree`].
pub type NodeId = usize;

/// No node (end of a sibling list, no children).
const NONE: NodeId = NodeId::MAX;

/// One span: a call, or one stretch of a generator or coroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// Code id of the function.
    pub code: u32,
    /// Start, in the trace's monotonic nanoseconds.
    pub start_ns: u64,
    /// End, never before the start.
    pub end_ns: u64,
    /// Argument snapshot; `None` when not recorded, and for resumed spans.
    pub args: Snapshot<'a>,
    /// How the span ended.
    pub outcome: Outcome<'a>,
    /// The span continues a suspended generator or coroutine.
    pub resumed: bool,
    /// An argument changed during the call.
    pub mutated_args: bool,
    first_child: NodeId,
    next_sibling: NodeId,
}

impl Node<'_> {
    /// How long the span ran, children included.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// The calls of one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadTree {
    /// The thread's `threading.get_ident()`.
    pub ident: u64,
    first_root: NodeId,
}

/// Per-thread call trees, threads in the order they first appear.
#[derive(Debug, Clone, Default)]
pub struct CallTree<'a> {
    nodes: Vec<Node<'a>>,
    threads: Vec<ThreadTree>,
}

impl<'a> CallTree<'a> {
    /// Builds the trees of `events` (a trace's events in file order).
    pub fn build(events: impl IntoIterator<Item = EventRef<'a>>) -> Self {
        let mut builder = Builder::default();
        match spans::walk(events, &mut builder) {
            Ok(()) => builder.tree,
            Err(never) => match never {},
        }
    }

    /// The threads, in the order they first appear.
    pub fn threads(&self) -> &[ThreadTree] {
        &self.threads
    }

    /// The node `id`.
    ///
    /// # Panics
    /// If `id` is not a node of this tree (ids come from [`roots`](Self::roots) and
    /// [`children`](Self::children)).
    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id]
    }

    /// The top-level calls of `thread`, in order.
    pub fn roots(&self, thread: &ThreadTree) -> Siblings<'_, 'a> {
        Siblings {
            nodes: &self.nodes,
            next: thread.first_root,
        }
    }

    /// The calls made by node `id`, in order.
    pub fn children(&self, id: NodeId) -> Siblings<'_, 'a> {
        Siblings {
            nodes: &self.nodes,
            next: self.nodes.get(id).map_or(NONE, |n| n.first_child),
        }
    }
}

/// Iterator over a list of sibling nodes; see [`CallTree::children`].
#[derive(Debug, Clone)]
pub struct Siblings<'t, 'a> {
    nodes: &'t [Node<'a>],
    next: NodeId,
}

impl Iterator for Siblings<'_, '_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let id = self.next;
        self.next = self.nodes.get(id)?.next_sibling;
        Some(id)
    }
}

/// Links nodes as the walker opens and closes spans.
#[derive(Default)]
struct Builder<'a> {
    tree: CallTree<'a>,
    /// Per thread: the open nodes, each with its last child so far.
    stacks: Vec<Vec<(NodeId, NodeId)>>,
    /// Per thread: the last top-level node so far.
    last_roots: Vec<NodeId>,
}

impl<'a> SpanSink<'a> for Builder<'a> {
    type Error = Infallible;

    fn thread(&mut self, thread: Thread, _first_ns: u64) -> Result<(), Infallible> {
        self.tree.threads.push(ThreadTree {
            ident: thread.ident,
            first_root: NONE,
        });
        self.stacks.push(Vec::new());
        self.last_roots.push(NONE);
        Ok(())
    }

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> Result<(), Infallible> {
        let id = self.tree.nodes.len();
        self.tree.nodes.push(Node {
            code: span.code,
            start_ns: span.start_ns,
            end_ns: span.start_ns,
            args: span.args,
            outcome: Outcome::Unfinished,
            resumed: span.resumed,
            mutated_args: false,
            first_child: NONE,
            next_sibling: NONE,
        });
        let Some(stack) = self.stacks.get_mut(thread.index) else {
            return Ok(());
        };
        // The previous sibling to link from, or the slot of the first child / root.
        let previous = if let Some((parent, last_child)) = stack.last_mut() {
            let previous = *last_child;
            *last_child = id;
            if previous == NONE {
                if let Some(parent) = self.tree.nodes.get_mut(*parent) {
                    parent.first_child = id;
                }
            }
            previous
        } else {
            let Some(last_root) = self.last_roots.get_mut(thread.index) else {
                return Ok(());
            };
            let previous = *last_root;
            *last_root = id;
            if previous == NONE {
                if let Some(t) = self.tree.threads.get_mut(thread.index) {
                    t.first_root = id;
                }
            }
            previous
        };
        if let Some(previous) = self.tree.nodes.get_mut(previous) {
            previous.next_sibling = id;
        }
        stack.push((id, NONE));
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        _span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), Infallible> {
        let open = self.stacks.get_mut(thread.index).and_then(Vec::pop);
        if let Some(node) = open.and_then(|(id, _)| self.tree.nodes.get_mut(id)) {
            node.end_ns = end.end_ns;
            node.outcome = end.outcome;
            node.mutated_args = end.mutated_args;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use crate::trace::Event;
    use proptest::prelude::*;

    /// The tree as indented lines: `code start-end`.
    fn render(tree: &CallTree<'_>) -> Vec<String> {
        let mut out = Vec::new();
        for thread in tree.threads() {
            out.push(format!("thread {}", thread.ident));
            let mut stack: Vec<(usize, NodeId)> =
                tree.roots(thread).map(|id| (0, id)).collect::<Vec<_>>();
            stack.reverse();
            while let Some((depth, id)) = stack.pop() {
                let n = tree.node(id);
                out.push(format!(
                    "{}f{} {}-{}{}",
                    "  ".repeat(depth),
                    n.code,
                    n.start_ns,
                    n.end_ns,
                    if n.resumed { " resumed" } else { "" }
                ));
                let mut kids: Vec<_> = tree.children(id).map(|c| (depth + 1, c)).collect();
                kids.reverse();
                stack.extend(kids);
            }
        }
        out
    }

    #[test]
    fn threads_are_separate_trees() {
        let reader = trace(&[
            call(1, 0, 0),
            call(2, 3, 1),
            call(1, 1, 2),
            ret(1, 1, 3),
            call(1, 2, 4),
            call(2, 4, 5),
            ret(1, 2, 6),
            ret(1, 0, 7),
            call(1, 5, 8),
            ret(2, 4, 9),
        ]);
        let tree = CallTree::build(reader.events());
        assert_eq!(
            render(&tree),
            [
                "thread 1", "f0 0-7", "  f1 2-3", "  f2 4-6", "f5 8-8", "thread 2", "f3 1-9",
                "  f4 5-9",
            ]
        );
        let f5 = tree.roots(&tree.threads()[0]).nth(1).unwrap();
        assert_eq!(tree.node(f5).outcome, Outcome::Unfinished);
    }

    #[test]
    fn snapshots_are_borrowed_from_the_trace() {
        let reader = trace(&[
            Event::Call {
                code: 0,
                thread: 1,
                t_ns: 0,
                args: Some(vec![1, 2]),
            },
            Event::Return {
                code: 0,
                flags: 1,
                thread: 1,
                t_ns: 5,
                value: Some(vec![3]),
            },
        ]);
        let tree = CallTree::build(reader.events());
        let root = tree.roots(&tree.threads()[0]).next().unwrap();
        let node = tree.node(root);
        assert_eq!(node.args, Some(&[1u8, 2][..]));
        assert_eq!(node.outcome, Outcome::Returned(Some(&[3u8][..])));
        assert!(node.mutated_args);
        assert_eq!(node.duration_ns(), 5);
        // Borrowed: the bytes point into the reader's buffer.
        let event_args = reader.events().next().unwrap().snapshot().unwrap();
        assert!(std::ptr::eq(node.args.unwrap(), event_args));
    }

    proptest! {
        /// Every span becomes exactly one node, children lie within their parents and are in
        /// order, and every node is reachable exactly once.
        #[test]
        fn trees_are_well_formed(
            events in proptest::collection::vec(
                (0..6u8, 0..3u64, 0..4u32, 0..50u64).prop_map(|(k, thread, code, t_ns)| match k {
                    0 | 1 => call(thread, code, t_ns),
                    2 => ret(thread, code, t_ns),
                    3 => Event::Yield { code, thread, t_ns, value: None },
                    4 => Event::Resume { code, thread, t_ns },
                    _ => Event::Unwind { code, flags: 0, thread, t_ns },
                }),
                0..150,
            )
        ) {
            let reader = trace(&events);
            let tree = CallTree::build(reader.events());
            let starts = events
                .iter()
                .filter(|e| matches!(e, Event::Call { .. } | Event::Resume { .. }))
                .count();
            let mut seen = vec![false; starts];
            let mut stack: Vec<NodeId> = tree.threads().iter().flat_map(|t| tree.roots(t)).collect();
            while let Some(id) = stack.pop() {
                prop_assert!(!seen[id]);
                seen[id] = true;
                let n = tree.node(id);
                prop_assert!(n.start_ns <= n.end_ns);
                let mut previous_end = n.start_ns;
                for child in tree.children(id) {
                    let c = tree.node(child);
                    prop_assert!(c.start_ns >= previous_end && c.end_ns <= n.end_ns);
                    previous_end = c.end_ns;
                    stack.push(child);
                }
            }
            prop_assert!(seen.iter().all(|&s| s));
        }
    }
}
