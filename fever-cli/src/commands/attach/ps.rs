//! `fever ps`: the processes under fever as a tree. Every process fever runs answers on its
//! control socket (its status), children of a program included; a program also names the
//! children in its family. Each child is shown under its nearest ancestor under fever (a
//! forkserver's children under the program: the forkserver itself runs no fever), with the pid
//! of its real parent. Sockets of processes that ended are removed on the way.

use std::collections::BTreeMap;

use fever_core::control::{parent_pid, processes};

use super::client::Client;
use crate::messages;

/// How far up the process tree a child's ancestor under fever is looked for.
const MAX_DEPTH: usize = 64;

/// A process as `fever ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Process {
    pid: u32,
    ppid: Option<u32>,
    /// Someone is attached; `None` for a child without a control socket of its own (its
    /// program named it).
    attached: Option<bool>,
    root: String,
    command: String,
    /// The process it is shown under.
    under: Option<u32>,
}

impl Process {
    fn row(&self, branch: &str) -> [String; 5] {
        let dash = || "-".to_owned();
        [
            self.pid.to_string(),
            self.ppid.map_or_else(dash, |p| p.to_string()),
            self.attached
                .map_or_else(dash, |a| if a { "yes" } else { "no" }.to_owned()),
            self.root.clone(),
            format!("{branch}{}", self.command),
        ]
    }
}

/// `fever ps`: one line per process running under fever, its children under it.
pub(crate) fn ps() -> anyhow::Result<i32> {
    let mut found = BTreeMap::new();
    let mut members = Vec::new();
    for pid in processes() {
        let Ok(mut client) = Client::connect(pid) else {
            continue;
        };
        let Ok(status) = client.status() else {
            continue;
        };
        members.extend(
            client
                .children()
                .into_iter()
                .map(|child| (pid, child, status.root.clone())),
        );
        found.insert(
            pid,
            Process {
                pid,
                ppid: parent_pid(pid),
                attached: Some(status.attached),
                root: status.root,
                command: status.command,
                under: None,
            },
        );
    }
    for (top, pid, root) in members {
        found.entry(pid).or_insert_with(|| Process {
            pid,
            ppid: parent_pid(pid),
            attached: None,
            root,
            command: "child without a control socket".into(),
            under: Some(top),
        });
    }
    if found.is_empty() {
        messages::info("no process is running under fever");
        return Ok(0);
    }
    let pids: Vec<u32> = found.keys().copied().collect();
    for process in found.values_mut() {
        if let Some(ancestor) = ancestor_among(process.pid, &pids, parent_pid) {
            process.under = Some(ancestor);
        }
    }
    let mut out = std::io::stdout().lock();
    crate::columns::write(
        ["PID", "PPID", "ATTACHED", "ROOT", "COMMAND"],
        &rows(&found),
        &mut out,
    )?;
    Ok(0)
}

/// The nearest ancestor of `pid` among `pids` (sorted), following `parent`.
fn ancestor_among(pid: u32, pids: &[u32], parent: impl Fn(u32) -> Option<u32>) -> Option<u32> {
    let mut at = pid;
    for _ in 0..MAX_DEPTH {
        at = parent(at).filter(|&p| p > 1)?;
        if pids.binary_search(&at).is_ok() {
            return Some(at);
        }
    }
    None
}

/// The rows in display order: each process followed by those under it (by pid), their
/// commands behind the tree's branches.
fn rows(found: &BTreeMap<u32, Process>) -> Vec<[String; 5]> {
    let mut under: BTreeMap<Option<u32>, Vec<&Process>> = BTreeMap::new();
    for process in found.values() {
        let parent = process.under.filter(|u| found.contains_key(u));
        under.entry(parent).or_default().push(process);
    }
    let mut rows = Vec::new();
    add(&mut rows, &under, None, "", 0);
    rows
}

fn add(
    rows: &mut Vec<[String; 5]>,
    under: &BTreeMap<Option<u32>, Vec<&Process>>,
    parent: Option<u32>,
    indent: &str,
    depth: usize,
) {
    let Some(children) = under.get(&parent).filter(|_| depth < MAX_DEPTH) else {
        return;
    };
    for (i, process) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, more) = match (parent, last) {
            (None, _) => ("", ""),
            (Some(_), true) => ("└─ ", "   "),
            (Some(_), false) => ("├─ ", "│  "),
        };
        rows.push(process.row(&format!("{indent}{branch}")));
        add(
            rows,
            under,
            Some(process.pid),
            &format!("{indent}{more}"),
            depth + 1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, ppid: u32, under: Option<u32>, command: &str) -> Process {
        Process {
            pid,
            ppid: Some(ppid),
            attached: Some(false),
            root: "/p".into(),
            command: command.into(),
            under,
        }
    }

    #[test]
    fn children_are_listed_under_their_parents_once() {
        let found: BTreeMap<u32, Process> = [
            process(10, 1, None, "fever run app.py"),
            process(12, 10, Some(10), "ForkPoolWorker-2"),
            process(11, 10, Some(10), "ForkPoolWorker-1"),
            process(13, 11, Some(11), "forked child"),
            process(20, 1, None, "fever watch b.py"),
        ]
        .into_iter()
        .map(|p| (p.pid, p))
        .collect();
        let commands: Vec<String> = rows(&found).into_iter().map(|r| r[4].clone()).collect();
        assert_eq!(
            commands,
            [
                "fever run app.py",
                "├─ ForkPoolWorker-1",
                "│  └─ forked child",
                "└─ ForkPoolWorker-2",
                "fever watch b.py"
            ]
        );
    }

    #[test]
    fn the_nearest_ancestor_under_fever_is_found_past_others() {
        // 30 (a forkserver, not under fever) is the parent of 31; 10 is the program.
        let parents = |pid| match pid {
            31 => Some(30),
            30 => Some(10),
            10 => Some(1),
            _ => None,
        };
        assert_eq!(ancestor_among(31, &[10, 31], parents), Some(10));
        assert_eq!(ancestor_among(10, &[10, 31], parents), None);
        assert_eq!(ancestor_among(99, &[10], parents), None);
    }
}
