//! The real terminal for the full-screen views (`fever replay`'s UI, `fever attach`'s live
//! table): raw mode and the alternate screen while one shows, restored when it is dropped and
//! by the panic hook it installs.

use std::io;

use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

/// The terminal in raw mode on the alternate screen, restored when dropped (and on a panic).
pub(crate) struct Screen {
    pub terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

impl Screen {
    pub fn enter() -> io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(Self {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
        })
    }

    /// Gives the terminal to another program (raw mode stays: keys are relayed as they are).
    pub fn hand_over() -> io::Result<()> {
        execute!(io::stdout(), LeaveAlternateScreen, cursor::Show)
    }

    /// Takes the terminal back after [`Self::hand_over`].
    pub fn take_back(&mut self) -> io::Result<()> {
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        self.terminal.clear()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = std::panic::take_hook();
    }
}
