//! The profile as text: the final table `fever attach` prints (the live one draws the same
//! columns with ratatui).
//!
//! ```text
//!  calls    total     self  total/call  function
//!    186  74.6 ms  53.8 ms     401 µs  __main__.tick
//! ```

use std::io::{self, Write};

use fever_core::profile::Row;
use fever_core::units;

/// The column titles.
pub const HEADER: [&str; 5] = ["calls", "total", "self", "total/call", "function"];

/// One row's cells.
pub fn cells(row: &Row) -> [String; 5] {
    [
        row.calls.to_string(),
        units::duration(row.total_ns),
        units::duration(row.self_ns),
        units::duration(row.per_call_ns()),
        row.name.clone(),
    ]
}

/// Writes `rows` as an aligned table (or a line saying no function was called).
pub fn write(rows: &[Row], out: &mut dyn Write) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "(no calls of the project's functions while attached)");
    }
    let cells: Vec<[String; 5]> = rows.iter().map(cells).collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&HEADER.map(str::to_owned)).chain(&cells) {
        let [calls, total, own, per_call, function] = row;
        writeln!(
            out,
            "{calls:>w0$}  {total:>w1$}  {own:>w2$}  {per_call:>w3$}  {function}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_under_their_titles() {
        let rows = [
            Row {
                name: "app.tick".into(),
                calls: 186,
                total_ns: 74_600_000,
                self_ns: 53_800_000,
            },
            Row {
                name: "app.leaf".into(),
                calls: 186_000,
                total_ns: 20_700_000,
                self_ns: 20_700_000,
            },
        ];
        let mut out = Vec::new();
        write(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], " calls    total     self  total/call  function");
        assert_eq!(lines[1], "   186  74.6 ms  53.8 ms      401 µs  app.tick");
        assert_eq!(lines[2], "186000  20.7 ms  20.7 ms      111 ns  app.leaf");
        let mut out = Vec::new();
        write(&[], &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("(no calls"));
    }
}
