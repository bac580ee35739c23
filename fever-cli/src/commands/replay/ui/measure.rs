//! What the UI costs on a big recording, for `benches/replay_ui.rs` (not an API): building its
//! call tree, a frame (a key and a redraw on a 200×60 `TestBackend`, no terminal), opening a
//! `[×N]` line into its calls.

use std::time::{Duration, Instant};

use fever_core::trace::TraceReader;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{App, Key, Program};
use super::draw::draw;
use super::tree::{Recording, Tree};

/// The UI's costs on one recording.
#[derive(Debug)]
pub struct FrameCosts {
    /// Building the call tree of the whole recording.
    pub load: Duration,
    /// One frame, the mean of `frames` (Page Down and Down in turn).
    pub frame: Duration,
    /// Opening the `[×N]` line the frames ended on.
    pub open: Duration,
}

/// Measures the UI on `recording`, drawing `frames` frames.
///
/// # Panics
/// If drawing on the test backend fails (it does not).
#[must_use]
pub fn frame_costs(recording: TraceReader, frames: u32) -> FrameCosts {
    let started = Instant::now();
    let mut app = App::new(false, "pdb");
    app.set_tree(Tree::new(Recording::new(recording)));
    app.program = Program::Warm(0);
    let load = started.elapsed();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("a test backend");
    let started = Instant::now();
    for i in 0..frames {
        app.key(if i % 2 == 0 { Key::PageDown } else { Key::Down });
        terminal
            .draw(|f| draw(f, &mut app))
            .expect("drawing on a test backend");
    }
    let frame = started.elapsed() / frames.max(1);
    let started = Instant::now();
    app.key(Key::Char('x'));
    FrameCosts {
        load,
        frame,
        open: started.elapsed(),
    }
}
