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
    crate::columns::write(HEADER, &cells, out)
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
