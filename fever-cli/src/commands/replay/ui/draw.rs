//! Drawing the UI (ratatui): the call tree on the left; the source of the selected call, its
//! values (or the last replay's result) and the program's output on the right, sized by
//! `App::layout`; a footer with the keys and the status; `?` shows the help over everything. Only the visible lines of the tree
//! are formatted.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Mode, Program};

/// The keys, as the help shows them.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓ j k PgUp PgDn g G", "move in the call tree"),
    (
        "Enter / Space",
        "fold or unfold the calls below; open a [×N] line into its calls",
    ),
    ("x", "open or close a [×N] line into its calls"),
    (
        "/ NAME Enter, n",
        "select the next call whose function name contains NAME",
    ),
    ("s", "mark the selected call as the replay's start"),
    (
        "e",
        "mark the selected call as its end (default: the start)",
    ),
    (
        "r",
        "replay: run the start call again with the code as it is now",
    ),
    (
        "b",
        "break at end: open the debugger when the end call returns",
    ),
    (
        "u",
        "undo the last reload: the program runs its previous code again",
    ),
    ("< >", "narrow or widen the call tree"),
    ("- +", "shrink or grow the values pane"),
    ("Ctrl-C", "stop a running replay"),
    ("?", "this help (any key closes it)"),
    ("q", "quit"),
];

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    let [main, footer] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let sizes = app.layout;
    let [left, right] = Layout::horizontal([
        Constraint::Percentage(sizes.tree_width),
        Constraint::Percentage(100 - sizes.tree_width),
    ])
    .areas(main);
    let rest = 100 - sizes.values_height;
    let [source, values, output] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Percentage(rest / 2),
            Constraint::Percentage(sizes.values_height),
            Constraint::Percentage(rest - rest / 2),
        ])
        .areas(right);
    draw_tree(frame, app, left);
    draw_source(frame, app, source);
    draw_lines(frame, "values", &app.values, values, false);
    let output_lines: Vec<String> = app.output_lines().map(str::to_owned).collect();
    draw_lines(frame, "output", &output_lines, output, true);
    draw_footer(frame, app, footer);
    if app.mode == Mode::Help {
        draw_help(frame, area);
    }
}

fn draw_tree(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let title = match app.program {
        Program::Running => " calls (the program is running) ".to_owned(),
        Program::Warm(code) => format!(" calls (finished, exit code {code}; warm) "),
        Program::Gone => " calls (the program ended) ".to_owned(),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(tree) = app.tree.as_ref() else {
        frame.render_widget(Paragraph::new("no calls recorded yet"), inner);
        return;
    };
    let height = usize::from(inner.height);
    let first = tree
        .selected
        .saturating_sub(height / 2)
        .min(tree.line_count().saturating_sub(height));
    let width = usize::from(inner.width);
    let lines: Vec<Line<'_>> = (first..tree.line_count().min(first + height))
        .map(|i| {
            let node = tree.node_at(i);
            let call = node.and_then(|n| tree.call_ref(n));
            let mut text = tree.line(i, width);
            if node.is_some_and(|n| app.is_edited(tree, n)) {
                text.push_str("  ✎ edited");
            }
            if call.is_some() && call == app.start {
                text.push_str("  ◀ start");
            }
            if call.is_some() && call == app.end {
                text.push_str("  ◀ end");
            }
            let style = if i == tree.selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            Line::from(Span::styled(text, style))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_source(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let block = Block::default().borders(Borders::ALL);
    let inner = block.inner(area);
    let Some((file, first_line, lines)) = app.source() else {
        frame.render_widget(block.title(" source "), area);
        return;
    };
    let title = format!(" {file}:{first_line} ");
    let start = usize::try_from(first_line).unwrap_or(1).saturating_sub(1);
    let text: Vec<Line<'_>> = lines
        .iter()
        .enumerate()
        .skip(start)
        .take(usize::from(inner.height))
        .map(|(i, l)| Line::from(format!("{:>4} {l}", i + 1)))
        .collect();
    frame.render_widget(Paragraph::new(text).block(block.title(title)), area);
}

fn draw_lines(frame: &mut Frame<'_>, title: &str, lines: &[String], area: Rect, tail: bool) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "));
    let height = usize::from(block.inner(area).height);
    let skip = if tail {
        lines.len().saturating_sub(height)
    } else {
        0
    };
    let text: Vec<Line<'_>> = lines
        .iter()
        .skip(skip)
        .take(height)
        .map(|l| Line::from(l.as_str()))
        .collect();
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_footer(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let keys = format!(
        "s start  e end  r replay  b break-at-end [{}]  u undo  / search  Enter fold  x open ×N  < > - + resize  ? help  q quit",
        if app.break_at_end { "on" } else { "off" }
    );
    let status = match &app.mode {
        Mode::Search(text) => format!("/{text}"),
        _ => app.status.clone(),
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                keys,
                Style::default().add_modifier(Modifier::BOLD),
            )),
            Line::from(status),
        ]),
        area,
    );
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let width = area.width.min(90);
    let height = area.height.min(u16::try_from(HELP.len()).unwrap_or(20) + 2);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(key, what)| Line::from(format!("{key:<24} {what}")))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}
