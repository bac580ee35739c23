//! `fever replay`'s full-screen UI (ratatui over crossterm; no Python in this process). The
//! program side runs under a pseudo-terminal; its calls appear in the tree as the recording
//! grows; `s`, `e`, `r` replay segments of it (in a fork of the warm program, also while its
//! first run goes on), `u` undoes the last reload. When the program says a debugger opens (a
//! replay raised or hit its end with break-at-end, or the first run raised), the UI hands the
//! terminal over: it leaves the alternate screen, writes what the program printed since the
//! replay began (so the debugger's prompt is there), relays keys and output between the real
//! terminal and the program's, and takes the screen back at the program's next message. `q` quits with 0; the terminal
//! is restored on every exit, a panic included.
//!
//! - `app.rs`: the state and what keys do (no terminal).
//! - `tree.rs`: the call tree's model.
//! - `draw.rs`: drawing it.
//! - `pty.rs`: the program's pseudo-terminal.
//! - `measure.rs`: the UI's costs on a big recording, for a benchmark.

mod app;
mod draw;
pub(crate) mod measure;
mod pty;
#[cfg(test)]
mod tests;
mod tree;

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use fever_core::analysis::spans::Outcome;
use fever_core::control::{Request, Response};
use fever_core::replay::locate;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::program::{Heard, Program};
use crate::config::{Keep, ReplayConfig};
use crate::terminal::Screen;
use crate::Host;
use app::{Action, App, Key};

/// Calls of each function whose arguments the program side keeps for replays.
const KEEP_FIRST: u32 = 16;
/// How often the call tree is reloaded while the first run goes on.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// The program's latest output kept for a hand-over to a debugger, at most.
const RECENT_OUTPUT: usize = 64 * 1024;

/// Runs the UI; returns the exit code.
pub(crate) fn run(config: &ReplayConfig, host: &dyn Host) -> anyhow::Result<i32> {
    let python = host.python(config.run.python.as_deref())?;
    let (cols, rows) = ratatui::crossterm::terminal::size().unwrap_or((120, 40));
    let mut pty = pty::Pty::open(cols, rows).context("cannot open a pseudo-terminal")?;
    let mut program = Program::start(
        &python,
        &config.run,
        Keep::First(KEEP_FIRST),
        Some(config.debugger),
        pty.follower(),
    )?;
    pty.release_follower();
    let responses = program.listen()?;
    let output = pty.reader()?;
    let script_module = config.run.script_module();
    let mut screen = Screen::enter()?;
    let mut app = App::new(config.break_at_end, config.debugger.name());
    let mut handover = false;
    // What the program printed since the last replay began (the first run's, before one).
    let mut recent: Vec<u8> = Vec::new();
    let mut last_reload = Instant::now();
    loop {
        for bytes in output.try_iter() {
            if handover {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
            } else {
                app.add_output(&bytes);
                recent.extend_from_slice(&bytes);
                if recent.len() > RECENT_OUTPUT {
                    recent.drain(..recent.len() - RECENT_OUTPUT);
                }
            }
        }
        for heard in responses.try_iter() {
            // The debugger is done once the replay (or the first run) ends.
            let ends_debugging = matches!(
                heard,
                Heard::Gone(_)
                    | Heard::Response(
                        Response::ReplayDone(_)
                            | Response::ReplayFailed { .. }
                            | Response::Finished { .. }
                            | Response::Error { .. }
                    )
            );
            if handover && ends_debugging {
                handover = false;
                screen.take_back()?;
            }
            match heard {
                Heard::Response(Response::Debugging) => {
                    if !std::mem::replace(&mut handover, true) {
                        Screen::hand_over()?;
                        let mut out = io::stdout().lock();
                        let _ = out.write_all(&std::mem::take(&mut recent));
                        let _ = out.flush();
                    }
                }
                Heard::Response(Response::Finished { exit_code }) => {
                    app.program = app::Program::Warm(exit_code);
                    app.status = format!(
                        "the program finished (exit code {exit_code}) and stays warm: mark a call with s, replay with r"
                    );
                    reload(&mut app, &program);
                }
                Heard::Response(Response::ReplayDone(result)) => {
                    let recorded = recorded_outcome(&app, script_module.as_deref());
                    app.show_result(&result, recorded);
                }
                Heard::Response(Response::ReplayFailed { reason }) => {
                    app.replay_failed(&reason);
                }
                Heard::Response(Response::Error { message }) => {
                    app.replaying = false;
                    app.status = format!("the program refused: {message}");
                }
                Heard::Response(Response::Reloaded { functions }) => {
                    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
                    app.status = format!("reloaded {}", names.join(", "));
                    app.reloaded(functions);
                }
                Heard::Response(Response::Undone { file, functions }) => {
                    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
                    app.status = format!(
                        "undid the last reload of {file} ({}); the file on disk is unchanged",
                        if names.is_empty() {
                            "statements only".to_owned()
                        } else {
                            names.join(", ")
                        }
                    );
                    app.reloaded(functions);
                }
                Heard::Response(
                    Response::Pong
                    | Response::Status(_)
                    | Response::Attached { .. }
                    | Response::Names { .. }
                    | Response::Detached
                    | Response::Recorded { .. }
                    | Response::Children { .. }
                    | Response::EndedChildren { .. },
                ) => {}
                Heard::Gone(_) => {
                    app.program = app::Program::Gone;
                    app.replaying = false;
                    app.status = "the program side ended; q quits".into();
                }
            }
        }
        if app.program == app::Program::Running && last_reload.elapsed() >= RELOAD_EVERY {
            reload(&mut app, &program);
            last_reload = Instant::now();
        }
        if handover {
            relay_keys(&pty);
            continue;
        }
        screen.terminal.draw(|frame| draw::draw(frame, &mut app))?;
        if !event::poll(Duration::from_millis(50))? {
            continue;
        }
        let key = match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => key,
            Event::Resize(cols, rows) => {
                pty.resize(cols, rows);
                continue;
            }
            _ => continue,
        };
        let Some(key) = convert(key) else { continue };
        match app.key(key) {
            Action::None => {}
            Action::Quit => break,
            Action::Cancel => program.send(&Request::Cancel)?,
            Action::Undo => program.send(&Request::Undo)?,
            Action::Replay(request) => {
                recent.clear();
                program.send(&Request::Replay(request))?;
            }
        }
    }
    drop(screen);
    program.quit();
    Ok(0)
}

/// Reads the recording again (it is complete up to the writer's last flush).
fn reload(app: &mut App, program: &Program) {
    if let Ok(recording) = tree::Recording::open(program.trace()) {
        app.set_tree(tree::Tree::new(recording));
    }
}

/// How the marked end call ended when the program first ran, as (prefix, snapshot).
fn recorded_outcome(app: &App, script_module: Option<&str>) -> Option<(String, Vec<u8>)> {
    let tree = app.tree.as_ref()?;
    let start = app.start.as_ref()?;
    let end = app
        .end
        .clone()
        .unwrap_or_else(|| fever_core::replay::CallRef {
            function: start.function.clone(),
            number: 1,
        });
    let located = locate(tree.recording().reader(), start, &end, script_module).ok()?;
    match located.end?.outcome {
        Outcome::Returned(Some(v)) => Some((String::new(), v.to_vec())),
        Outcome::Raised(Some(e)) => Some(("raised ".into(), e.to_vec())),
        _ => None,
    }
}

/// While a debugger has the keyboard: keys from the real terminal go to the program's.
fn relay_keys(pty: &pty::Pty) {
    let mut poll = libc::pollfd {
        fd: io::stdin().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&raw mut poll, 1, 20) } > 0 {
        let mut buf = [0u8; 1024];
        // SAFETY: reading into our buffer from stdin.
        let n = unsafe { libc::read(poll.fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            pty.write(&buf[..n.unsigned_abs()]);
        }
    }
}

fn convert(key: KeyEvent) -> Option<Key> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Key::CtrlC);
    }
    Some(match key.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => return None,
    })
}
