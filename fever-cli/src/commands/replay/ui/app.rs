//! The UI's state and what keys do to it, with no terminal involved (tested on its own): the
//! call tree, the marked start and end calls, the `--break-at-end` toggle, the values pane's
//! text (the selected call as recorded, or the last replay's result), the program's output, the
//! status line, the input mode (normal, search, help), the panes' sizes, and the code each
//! reloaded function runs now (a node is edited while it differs from the recorded code).

use std::collections::HashMap;

use fever_core::analysis::calltree::NodeId;
use fever_core::analysis::spans::Outcome;
use fever_core::control::{EndOutcome, FunctionCode, ReplayRequest, ReplayResult};
use fever_core::replay::{outcome_text, value_diff, CallRef};
use fever_core::snapshot::{render_args_short, render_short};

use super::tree::Tree;

/// Output lines kept for the output pane.
const OUTPUT_LINES: usize = 5000;

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a search after `/`.
    Search(String),
    /// The `?` help over everything.
    Help,
}

/// The program side's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// Its first run is going on.
    Running,
    /// Its first run ended with this exit code; it is warm.
    Warm(i32),
    /// It is gone.
    Gone,
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Replay(ReplayRequest),
    Cancel,
    Undo,
}

/// A key, as the UI sees it (the terminal's key events are converted into these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    CtrlC,
}

pub struct App {
    pub tree: Option<Tree>,
    pub start: Option<CallRef>,
    start_node: Option<usize>,
    pub end: Option<CallRef>,
    end_node: Option<usize>,
    pub break_at_end: bool,
    pub debugger: String,
    pub output: Vec<String>,
    partial: String,
    pub values: Vec<String>,
    /// The values pane shows a replay's result (until another call is selected).
    pub showing_result: bool,
    pub status: String,
    pub mode: Mode,
    pub program: Program,
    pub replaying: bool,
    last_search: String,
    /// Source files' lines, by path.
    sources: HashMap<String, Vec<String>>,
    /// The code hash each reloaded function (`module.qualname`) runs now (`None`: gone).
    current_code: HashMap<String, Option<u64>>,
    /// The panes' sizes.
    pub layout: Layout,
}

/// The panes' sizes, in percent: the call tree's width, and the values pane's share of the
/// right column's height (the source and output panes share the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub tree_width: u16,
    pub values_height: u16,
}

impl Layout {
    const STEP: u16 = 5;
    const MIN: u16 = 15;
    const MAX: u16 = 85;

    fn resize(&mut self, key: char) -> bool {
        let (value, grow) = match key {
            '>' => (&mut self.tree_width, true),
            '<' => (&mut self.tree_width, false),
            '+' | '=' => (&mut self.values_height, true),
            '-' => (&mut self.values_height, false),
            _ => return false,
        };
        *value = if grow {
            (*value + Self::STEP).min(Self::MAX)
        } else {
            value.saturating_sub(Self::STEP).max(Self::MIN)
        };
        true
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            tree_width: 55,
            values_height: 40,
        }
    }
}

impl App {
    pub fn new(break_at_end: bool, debugger: &str) -> Self {
        Self {
            tree: None,
            start: None,
            start_node: None,
            end: None,
            end_node: None,
            break_at_end,
            debugger: debugger.to_owned(),
            output: Vec::new(),
            partial: String::new(),
            values: Vec::new(),
            showing_result: false,
            status: "the program is running".into(),
            mode: Mode::Normal,
            program: Program::Running,
            replaying: false,
            last_search: String::new(),
            sources: HashMap::new(),
            current_code: HashMap::new(),
            layout: Layout::default(),
        }
    }

    /// A save (or an undo) changed these functions' code.
    pub fn reloaded(&mut self, functions: Vec<FunctionCode>) {
        for function in functions {
            self.current_code.insert(function.name, function.code_hash);
        }
    }

    /// Does `node` run other code now than when it was recorded?
    pub fn is_edited(&self, tree: &Tree, node: NodeId) -> bool {
        let Some(now) = self.current_code.get(tree.name_of(node)) else {
            return false;
        };
        let code = tree.recording().tree().node(node).code;
        let recorded = tree.recording().reader().code(code).map(|c| c.code_hash);
        *now != recorded
    }

    /// Adds the program's output (bytes from its terminal); escape sequences are dropped.
    pub fn add_output(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut in_escape = false;
        for c in text.chars() {
            match c {
                '\x1b' => in_escape = true,
                c if in_escape => in_escape = !c.is_ascii_alphabetic(),
                '\n' => self.output.push(std::mem::take(&mut self.partial)),
                '\r' => {}
                c => self.partial.push(c),
            }
        }
        if self.output.len() > OUTPUT_LINES {
            self.output.drain(..self.output.len() - OUTPUT_LINES);
        }
    }

    /// The output lines, with the unfinished last one.
    pub fn output_lines(&self) -> impl Iterator<Item = &str> {
        self.output
            .iter()
            .map(String::as_str)
            .chain((!self.partial.is_empty()).then_some(self.partial.as_str()))
    }

    /// A (new) recording of the program's calls.
    pub fn set_tree(&mut self, tree: Tree) {
        let selected = self.tree.as_ref().map_or(0, |t| t.selected);
        self.tree = Some(tree);
        if let Some(t) = self.tree.as_mut() {
            t.selected = selected.min(t.line_count().saturating_sub(1));
        }
        self.start_node = None;
        self.end_node = None;
        if !self.showing_result {
            self.show_selected();
        }
    }

    /// Handles one key.
    pub fn key(&mut self, key: Key) -> Action {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => Action::None,
            Mode::Search(mut text) => {
                match key {
                    Key::Enter => {
                        self.last_search.clone_from(&text);
                        self.find_next();
                    }
                    Key::Esc | Key::CtrlC => {}
                    Key::Backspace => {
                        text.pop();
                        self.mode = Mode::Search(text);
                    }
                    Key::Char(c) => {
                        text.push(c);
                        self.mode = Mode::Search(text);
                    }
                    _ => self.mode = Mode::Search(text),
                }
                Action::None
            }
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: Key) -> Action {
        let page = 20;
        match key {
            Key::Char('q') => return Action::Quit,
            Key::CtrlC => {
                if self.replaying {
                    self.status = "stopping the replay...".into();
                    return Action::Cancel;
                }
                self.status = "press q to quit".into();
            }
            Key::Char('?') => self.mode = Mode::Help,
            Key::Char('/') => self.mode = Mode::Search(String::new()),
            Key::Char('n') => self.find_next(),
            Key::Up | Key::Char('k') => self.move_by(-1),
            Key::Down | Key::Char('j') => self.move_by(1),
            Key::PageUp => self.move_by(-page),
            Key::PageDown => self.move_by(page),
            Key::Home | Key::Char('g') => self.move_by(isize::MIN / 2),
            Key::End | Key::Char('G') => self.move_by(isize::MAX / 2),
            Key::Enter | Key::Char(' ') => {
                if let Some(t) = self.tree.as_mut() {
                    t.toggle();
                }
            }
            Key::Char('x') => {
                if let Some(t) = self.tree.as_mut() {
                    t.toggle_repeats();
                }
            }
            Key::Char('b') => {
                self.break_at_end = !self.break_at_end;
                self.status = format!(
                    "break at end: {}",
                    if self.break_at_end { "on" } else { "off" }
                );
            }
            Key::Char('s') => self.mark(true),
            Key::Char('e') => self.mark(false),
            Key::Char('r') => return self.replay(),
            Key::Char('u') => {
                if self.replaying {
                    self.status = "a replay is running (Ctrl-C stops it)".into();
                } else {
                    self.status = "undoing the last reload...".into();
                    return Action::Undo;
                }
            }
            Key::Char(c) if self.layout.resize(c) => {}
            _ => {}
        }
        Action::None
    }

    fn move_by(&mut self, delta: isize) {
        if let Some(t) = self.tree.as_mut() {
            t.move_by(delta);
        }
        self.show_selected();
    }

    fn find_next(&mut self) {
        let text = self.last_search.clone();
        if text.is_empty() {
            return;
        }
        let found = self.tree.as_mut().is_some_and(|t| t.search(&text));
        self.status = if found {
            format!("/{text}")
        } else {
            format!("no call of a function matching {text:?}")
        };
        self.show_selected();
    }

    /// Marks the selected call as the start (`s`) or the end (`e`).
    fn mark(&mut self, start: bool) {
        let Some(tree) = self.tree.as_ref() else {
            self.status = "no calls yet".into();
            return;
        };
        let Some(node) = tree.node_at(tree.selected) else {
            return;
        };
        let Some(call) = tree.call_ref(node) else {
            self.status = match tree.child_process(node) {
                Some(pid) => format!(
                    "this call ran in child process {pid}: a replay re-runs calls of the \
                     program's own process"
                ),
                None => "a resumed generator stretch is not a call: pick its call".into(),
            };
            return;
        };
        if start {
            self.status = format!("start: {call} (the end is the start until e marks one)");
            self.start = Some(call);
            self.start_node = Some(node);
            self.end = None;
            self.end_node = None;
        } else {
            self.status = format!("end: {call}");
            self.end = Some(call);
            self.end_node = Some(node);
        }
    }

    fn replay(&mut self) -> Action {
        if self.replaying {
            self.status = "a replay is running (Ctrl-C stops it)".into();
            return Action::None;
        }
        if self.program == Program::Gone {
            self.status = "the program side ended: nothing to replay".into();
            return Action::None;
        }
        let (Some(start), Some(tree)) = (self.start.clone(), self.tree.as_ref()) else {
            self.status = "mark a start call with s first".into();
            return Action::None;
        };
        let end = match (&self.end, self.start_node, self.end_node) {
            (Some(end), Some(s), Some(e)) => CallRef {
                function: end.function.clone(),
                number: tree.end_number(s, e),
            },
            _ => CallRef {
                function: start.function.clone(),
                number: 1,
            },
        };
        self.replaying = true;
        self.status = format!("replaying {start} to the end of {end}...");
        Action::Replay(ReplayRequest {
            start,
            end,
            break_at_end: self.break_at_end,
            debug_on_raise: true,
            debugger: self.debugger.clone(),
        })
    }

    /// The values pane for the selected call, as recorded.
    pub fn show_selected(&mut self) {
        self.showing_result = false;
        self.values.clear();
        let Some(tree) = self.tree.as_ref() else {
            return;
        };
        let Some(node_id) = tree.node_at(tree.selected) else {
            return;
        };
        let node = tree.recording().tree().node(node_id);
        let name = tree.name_of(node_id).to_owned();
        let call = tree.call_ref(node_id);
        self.values.push(call.map_or(name, |c| c.to_string()));
        match node.args {
            Some(args) => self
                .values
                .push(format!("arguments: {}", render_args_short(args, 300))),
            None => self.values.push("arguments: (not recorded)".into()),
        }
        self.values.push(match node.outcome {
            Outcome::Returned(Some(v)) => format!("returned: {}", render_short(v, 300)),
            Outcome::Raised(Some(e)) => format!("raised: {}", render_short(e, 300)),
            Outcome::Suspended(Some(v)) => format!("yielded: {}", render_short(v, 300)),
            Outcome::Unfinished => "still running".into(),
            _ => "result: (not recorded)".into(),
        });
        self.values.push(format!(
            "time: {}",
            super::tree::duration(node.duration_ns())
        ));
    }

    /// A replay's result, with the recorded outcome of its end call (`recorded`, rendered).
    pub fn show_result(&mut self, result: &ReplayResult, recorded: Option<(String, Vec<u8>)>) {
        self.replaying = false;
        self.showing_result = true;
        self.values.clear();
        #[allow(clippy::cast_precision_loss)]
        let ms = result.elapsed_ns as f64 / 1e6;
        self.status = format!("replayed in {ms:.1} ms");
        for note in &result.notes {
            self.values.push(format!(
                "! argument {} may differ: {}",
                note.name, note.reason
            ));
        }
        self.values.push("locals:".into());
        for (name, value) in &result.locals {
            self.values
                .push(format!("  {name} = {}", render_short(value, 300)));
        }
        let now: (&str, &[u8]) = match &result.outcome {
            EndOutcome::Returned(v) => {
                self.values
                    .push(format!("return value: {}", render_short(v, 300)));
                ("", v)
            }
            EndOutcome::Raised {
                exception,
                traceback,
            } => {
                self.values
                    .push(format!("raised: {}", render_short(exception, 300)));
                self.values.extend(traceback.lines().map(str::to_owned));
                ("raised ", exception)
            }
            EndOutcome::NotReached { how } => {
                self.values
                    .push(format!("the end call was not reached: {how}"));
                return;
            }
        };
        match recorded {
            None => self.values.push("recorded: (not in the recording)".into()),
            Some((prefix, bytes)) => match value_diff((&prefix, &bytes), now) {
                None => self.values.push("recorded: the same".into()),
                Some(diff) => {
                    self.values.push(format!(
                        "recorded: {}",
                        outcome_text(&prefix, &bytes).trim_end()
                    ));
                    self.values.extend(diff.lines().map(str::to_owned));
                }
            },
        }
    }

    /// A replay that gave no result.
    pub fn replay_failed(&mut self, reason: &str) {
        self.replaying = false;
        self.showing_result = true;
        self.values = vec![format!("the replay gave no result: {reason}")];
        self.status = "replay failed; the warm program is untouched".into();
    }

    /// The source lines of the selected call's function: (file, first line, lines).
    pub fn source(&mut self) -> Option<(String, u32, &[String])> {
        let tree = self.tree.as_ref()?;
        let node = tree.node_at(tree.selected)?;
        let code = tree.recording().tree().node(node).code;
        let info = tree.recording().reader().code(code)?;
        let (file, line) = (info.file.clone(), info.first_line);
        let lines = self.sources.entry(file.clone()).or_insert_with(|| {
            std::fs::read_to_string(&file)
                .map(|t| t.lines().map(str::to_owned).collect())
                .unwrap_or_default()
        });
        Some((file, line, lines.as_slice()))
    }
}
