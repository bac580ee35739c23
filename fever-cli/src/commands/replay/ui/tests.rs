//! The UI without a terminal: its state driven by keys, drawn on ratatui's `TestBackend`.

use fever_core::control::{EndOutcome, FunctionCode, ReplayResult};
use fever_core::snapshot::Value;
use fever_core::trace::{CodeInfo, Event, TraceHeader, TraceReader, TraceWriter};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{Action, App, Key, Mode, Program};
use super::draw::draw;
use super::tree::{Recording, Tree};

fn snap(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

/// A trace writer with the functions `app.NAME` of `names`, numbered from 0.
fn writer(names: &[&str]) -> TraceWriter<Vec<u8>> {
    let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
    for (id, name) in names.iter().enumerate() {
        w.add_code(CodeInfo {
            id: u32::try_from(id).unwrap(),
            module: "app".into(),
            qualname: (*name).into(),
            file: "/nonexistent/app.py".into(),
            first_line: 1,
            code_hash: 0,
        })
        .unwrap();
    }
    w
}

/// A recording of `main` calling `step(i)` `n` times, each `step` calling `leaf` once.
fn recording(n: u64) -> Recording {
    let mut w = writer(&["main", "step", "leaf"]);
    let call = |code, t_ns, args: Option<Vec<u8>>| Event::Call {
        code,
        thread: 1,
        t_ns,
        args,
    };
    let ret = |code, t_ns, value: Option<Vec<u8>>| Event::Return {
        code,
        flags: 0,
        thread: 1,
        t_ns,
        value,
    };
    w.write_event(&call(0, 0, None)).unwrap();
    for i in 0..n {
        let t = 1 + i * 10;
        let i = i64::try_from(i).unwrap();
        w.write_event(&call(1, t, None)).unwrap();
        w.write_event(&call(2, t + 1, None)).unwrap();
        w.write_event(&ret(2, t + 2, Some(snap(&Value::Int(i)))))
            .unwrap();
        w.write_event(&ret(1, t + 3, Some(snap(&Value::Int(i * 2)))))
            .unwrap();
    }
    w.write_event(&ret(0, n * 10 + 5, None)).unwrap();
    Recording::new(TraceReader::from_bytes(&w.finish().unwrap()).unwrap())
}

fn warm_app(n: u64) -> App {
    let mut app = App::new(false, "pdb");
    app.set_tree(Tree::new(recording(n)));
    app.program = Program::Warm(0);
    app
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.key(Key::Char(c));
    }
}

#[test]
fn repeats_collapse_and_open_into_their_calls() {
    let mut app = warm_app(3);
    let text = screen(&mut app, 120, 30);
    assert!(
        text.contains("calls (finished, exit code 0; warm)"),
        "{text}"
    );
    assert!(text.contains("- app.main(…)"), "{text}");
    assert!(
        text.contains("app.step(…) → 0") && text.contains("[×3]"),
        "{text}"
    );
    assert!(text.contains("s start  e end  r replay"), "{text}");
    // Fold main, unfold it, open step's [×3] into its calls.
    app.key(Key::Enter);
    assert!(!screen(&mut app, 120, 30).contains("app.step"));
    app.key(Key::Enter);
    app.key(Key::Down);
    app.key(Key::Char('x'));
    let text = screen(&mut app, 120, 30);
    assert_eq!(text.matches("▸ app.step(…)").count(), 3, "{text}");
    assert!(text.contains("▸ app.step(…) → 4"), "{text}");
}

#[test]
fn search_marks_and_the_replay_request() {
    let mut app = warm_app(3);
    app.key(Key::Char('/'));
    type_text(&mut app, "leaf");
    assert_eq!(app.mode, Mode::Search("leaf".into()));
    app.key(Key::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.values[0].starts_with("app.leaf#1"), "{:?}", app.values);
    // Start at main, end at the third leaf (opened out of its [×3] line).
    app.key(Key::Home);
    app.key(Key::Char('s'));
    assert_eq!(app.start.as_ref().unwrap().to_string(), "app.main#1");
    app.key(Key::Char('/'));
    type_text(&mut app, "leaf");
    app.key(Key::Enter);
    app.key(Key::Char('x'));
    app.key(Key::Down);
    app.key(Key::Down);
    app.key(Key::Down);
    app.key(Key::Char('e'));
    assert_eq!(app.end.as_ref().unwrap().to_string(), "app.leaf#3");
    app.key(Key::Char('b'));
    let Action::Replay(request) = app.key(Key::Char('r')) else {
        panic!("no replay")
    };
    assert_eq!(request.start.to_string(), "app.main#1");
    assert_eq!(request.end.to_string(), "app.leaf#3");
    assert!(request.break_at_end && app.replaying);
    assert_eq!(app.key(Key::Char('r')), Action::None);
    assert_eq!(app.key(Key::CtrlC), Action::Cancel);
    // leaf's code changed (its recorded hash is 0), step's did and went back (an undo).
    app.reloaded(vec![
        FunctionCode {
            name: "app.leaf".into(),
            code_hash: Some(1),
        },
        FunctionCode {
            name: "app.step".into(),
            code_hash: Some(0),
        },
    ]);
    let text = screen(&mut app, 140, 30);
    assert!(text.contains("◀ start") && text.contains("◀ end"), "{text}");
    assert_eq!(text.matches("✎ edited").count(), 4, "{text}");
    app.reloaded(vec![FunctionCode {
        name: "app.leaf".into(),
        code_hash: Some(0),
    }]);
    assert_eq!(screen(&mut app, 140, 30).matches("✎ edited").count(), 0);
    assert!(text.contains("break-at-end [on]"), "{text}");
}

#[test]
fn replays_need_a_start_and_a_program_and_may_run_during_the_first_run() {
    let mut app = warm_app(2);
    assert_eq!(app.key(Key::Char('r')), Action::None);
    assert!(app.status.contains("mark a start call"));
    app.program = Program::Running;
    app.key(Key::Char('s'));
    let Action::Replay(request) = app.key(Key::Char('r')) else {
        panic!("no replay while the first run goes on")
    };
    assert!(request.debug_on_raise && !request.break_at_end);
    app.replay_failed("cancelled");
    app.program = Program::Gone;
    assert_eq!(app.key(Key::Char('r')), Action::None);
    assert!(app.status.contains("nothing to replay"), "{}", app.status);
    assert_eq!(app.key(Key::Char('q')), Action::Quit);
}

#[test]
fn undo_is_asked_for_unless_a_replay_runs() {
    let mut app = warm_app(1);
    assert_eq!(app.key(Key::Char('u')), Action::Undo);
    app.key(Key::Char('s'));
    assert!(matches!(app.key(Key::Char('r')), Action::Replay(_)));
    assert_eq!(app.key(Key::Char('u')), Action::None);
    assert!(app.status.contains("a replay is running"));
}

#[test]
fn panes_resize_with_keys_within_bounds() {
    let mut app = warm_app(1);
    let border_of_tree = |app: &mut App| {
        let text = screen(app, 100, 30);
        let row: Vec<char> = text.lines().nth(1).unwrap().chars().collect();
        row.iter().skip(1).position(|c| *c == '│').unwrap() + 1
    };
    assert_eq!(border_of_tree(&mut app), 54);
    app.key(Key::Char('>'));
    app.key(Key::Char('>'));
    assert_eq!(app.layout.tree_width, 65);
    assert_eq!(border_of_tree(&mut app), 64);
    for _ in 0..20 {
        app.key(Key::Char('<'));
    }
    assert_eq!(app.layout.tree_width, 15);
    assert_eq!(border_of_tree(&mut app), 14);
    // The values pane grows from 40% of the right column's height, at most to 85%.
    let values_height = |app: &mut App| {
        let text = screen(app, 100, 42);
        let lines: Vec<&str> = text.lines().collect();
        let top = lines.iter().position(|l| l.contains(" values ")).unwrap();
        let bottom = lines.iter().position(|l| l.contains(" output ")).unwrap();
        bottom - top
    };
    let before = values_height(&mut app);
    app.key(Key::Char('+'));
    app.key(Key::Char('+'));
    assert_eq!(app.layout.values_height, 50);
    assert_eq!(values_height(&mut app), before + 4);
    for _ in 0..20 {
        app.key(Key::Char('-'));
    }
    assert_eq!(app.layout.values_height, 15);
    let text = screen(&mut app, 160, 30);
    assert!(text.contains("< > - + resize"), "{text}");
    app.key(Key::Char('?'));
    let text = screen(&mut app, 160, 30);
    assert!(text.contains("narrow or widen the call tree"), "{text}");
}

#[test]
fn a_result_shows_locals_the_value_and_the_diff() {
    let mut app = warm_app(2);
    app.key(Key::Char('s'));
    app.key(Key::Char('r'));
    app.show_result(
        &ReplayResult {
            outcome: EndOutcome::Returned(snap(&Value::Int(7))),
            locals: vec![("total".into(), snap(&Value::Int(7)))],
            notes: vec![fever_core::control::ArgNote {
                name: "f".into(),
                reason: "a file that was closed after the call started".into(),
            }],
            elapsed_ns: 2_500_000,
        },
        Some((String::new(), snap(&Value::Int(6)))),
    );
    assert!(!app.replaying);
    let text = screen(&mut app, 140, 40);
    for expected in [
        "! argument f may differ: a file that was closed",
        "  total = 7",
        "return value: 7",
        "recorded: 6",
        "-6",
        "+7",
        "replayed in 2.5 ms",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    app.replay_failed("the replay crashed: killed by signal 11 (Segmentation fault)");
    let text = screen(&mut app, 140, 40);
    assert!(
        text.contains("no result") && text.contains("Segmentation"),
        "{text}"
    );
}

#[test]
fn help_and_output() {
    let mut app = warm_app(1);
    app.add_output(b"hello \x1b[31mred\x1b[0m\r\nsecond line");
    let text = screen(&mut app, 120, 30);
    assert!(
        text.contains("hello red") && text.contains("second line"),
        "{text}"
    );
    app.key(Key::Char('?'));
    let text = screen(&mut app, 120, 30);
    assert!(
        text.contains(" keys ") && text.contains("break at end: open the debugger"),
        "{text}"
    );
    app.key(Key::Char('j'));
    assert_eq!(app.mode, Mode::Normal);
}

/// The program calls `step` once, on its own thread; child process 4242 called it twice before.
fn recording_with_a_child() -> Recording {
    let mut w = writer(&["main", "step"]);
    let child = fever_core::trace::child_thread(4242, 0);
    let event = |call: bool, code, thread, t_ns| {
        if call {
            Event::Call {
                code,
                thread,
                t_ns,
                args: None,
            }
        } else {
            Event::Return {
                code,
                flags: 0,
                thread,
                t_ns,
                value: None,
            }
        }
    };
    for (call, code, thread, t) in [
        (true, 1, child, 1),
        (false, 1, child, 2),
        (true, 1, child, 3),
        (false, 1, child, 4),
        (true, 0, 1, 10),
        (true, 1, 1, 11),
        (false, 1, 1, 12),
        (false, 0, 1, 13),
    ] {
        w.write_event(&event(call, code, thread, t)).unwrap();
    }
    Recording::new(TraceReader::from_bytes(&w.finish().unwrap()).unwrap())
}

#[test]
fn a_call_of_a_child_process_is_no_replay_start_and_is_not_counted() {
    let mut app = App::new(false, "pdb");
    app.set_tree(Tree::new(recording_with_a_child()));
    app.program = Program::Warm(0);
    let tree = app.tree.as_ref().unwrap();
    let (mut own, mut in_child) = (Vec::new(), Vec::new());
    for line in 0..8 {
        let Some(node) = tree.node_at(line) else {
            break;
        };
        match tree.child_process(node) {
            Some(pid) => {
                assert_eq!(pid, 4242);
                assert_eq!(tree.call_ref(node), None);
                in_child.push(line);
            }
            None => own.push(tree.call_ref(node).unwrap().to_string()),
        }
    }
    // The program's own step is its first call: the child's two do not count.
    assert_eq!(own, ["app.main#1", "app.step#1"]);
    assert!(!in_child.is_empty());
    app.tree.as_mut().unwrap().selected = in_child[0];
    app.key(Key::Char('s'));
    assert_eq!(app.start, None);
    assert!(
        app.status.contains("ran in child process 4242"),
        "{}",
        app.status
    );
}
