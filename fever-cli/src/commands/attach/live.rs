//! The live table on a terminal (ratatui over crossterm): refreshed every second; `t`, `s`, `c`
//! sort by total, self, calls (Tab cycles); `q`, Esc or Ctrl-C detach.

use std::time::{Duration, Instant};

use fever_core::profile::SortKey;
use fever_core::units;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::table::{cells, HEADER};
use super::{Ended, Profile, REFRESH};
use crate::config::AttachConfig;
use crate::terminal::Screen;

/// Runs the live table until the user quits, `--duration` passes, or the process exits.
pub(super) fn run(
    profile: &mut Profile,
    config: &AttachConfig,
    sort: &mut SortKey,
) -> anyhow::Result<Ended> {
    let mut screen = Screen::enter()?;
    let mut last: Option<Instant> = None;
    loop {
        if config
            .duration
            .is_some_and(|d| profile.started.elapsed() >= d)
        {
            return Ok(Ended::Done);
        }
        if last.is_none_or(|t| t.elapsed() >= REFRESH) {
            last = Some(Instant::now());
            if !profile.refresh() {
                return Ok(Ended::Gone);
            }
            screen
                .terminal
                .draw(|frame| draw(frame, profile, config, *sort))?;
        }
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let chosen = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(Ended::Done),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Ok(Ended::Done)
            }
            KeyCode::Char('t') => SortKey::Total,
            KeyCode::Char('s') => SortKey::SelfTime,
            KeyCode::Char('c') => SortKey::Calls,
            KeyCode::Tab => sort.next(),
            _ => continue,
        };
        *sort = chosen;
        screen
            .terminal
            .draw(|frame| draw(frame, profile, config, *sort))?;
    }
}

fn draw(frame: &mut Frame<'_>, profile: &Profile, config: &AttachConfig, sort: SortKey) {
    let [title, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let elapsed = u64::try_from(profile.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let sorted = match sort {
        SortKey::Total => "total",
        SortKey::SelfTime => "self",
        SortKey::Calls => "calls",
    };
    frame.render_widget(
        Paragraph::new(Line::from(format!(
            "fever attach {}: `{}`, attached {}, sorted by {sorted}",
            profile.client.pid,
            profile.command,
            units::duration(elapsed)
        ))),
        title,
    );
    let rows = profile.rows(sort, config.top);
    let header = Row::new(HEADER.map(Cell::from)).style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(
        rows.iter().map(|row| Row::new(cells(row).map(Cell::from))),
        [
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(11),
            Constraint::Min(20),
        ],
    )
    .header(header);
    frame.render_widget(table, body);
    frame.render_widget(
        Paragraph::new("t total  s self  c calls  Tab next sort  q detach"),
        keys,
    );
}
