//! Text tables with aligned columns, as `fever show --profile` and `fever attach` print their
//! profiles: each column but the last right-aligned to its widest cell, two spaces apart.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Writes `header` and `rows` to `out`, one line each, aligned.
pub(crate) fn write<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    let mut line = String::new();
    for row in std::iter::once(&header).chain(rows) {
        line.clear();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:>width$}  ");
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_but_the_last_are_right_aligned_two_spaces_apart() {
        let mut out = Vec::new();
        let rows = [
            ["1".to_owned(), "µs".to_owned(), "a".to_owned()],
            ["100".to_owned(), "x".to_owned(), "long name".to_owned()],
        ];
        super::write(["n", "time", "name"], &rows, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  n  time  name\n  1    µs  a\n100     x  long name\n"
        );
    }
}
