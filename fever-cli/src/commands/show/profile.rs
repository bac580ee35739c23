//! The profile table: one row per function, longest total time first.
//!
//! ```text
//! calls   total    self  total/call  function
//!     1  1.52 s  3.1 ms      1.52 s  app.main  app.py:10
//!  500*  1.20 s  1.10 s     12.0 ms  app.parse  app.py:20
//! * not every call was recorded (fever record --max-calls-per-function): times cover the
//!   recorded ones
//! ```

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use fever_core::analysis::profile::{Profile, Row};
use fever_core::units;

use fever_core::trace::TraceReader;

/// Writes the profile of `reader`'s trace, at most `limit` rows, to `out`.
pub(super) fn write(
    reader: &TraceReader,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(profile) = Profile::of_trace(reader) else {
        return Err(io::Error::other(
            "its profile record is missing or malformed",
        ));
    };
    if profile.rows.is_empty() {
        return writeln!(out, "(no calls recorded)");
    }
    let shown = &profile.rows[..limit.map_or(profile.rows.len(), |n| n.min(profile.rows.len()))];
    let root = Path::new(&reader.header().root);
    let versions = versions(reader);
    let cells: Vec<[String; 5]> = shown
        .iter()
        .map(|row| cells(reader, root, &versions, row))
        .collect();
    crate::columns::write(
        ["calls ", "total", "self", "total/call", "function"],
        &cells,
        out,
    )?;
    let more = profile.rows.len() - shown.len();
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        writeln!(out, "… {more} more function{s} (use --limit)")?;
    }
    if shown.iter().any(Row::is_partial) {
        writeln!(
            out,
            "* not every call was recorded (fever record --max-calls-per-function): times cover \
             the recorded ones"
        )?;
    }
    Ok(())
}

/// For functions with several codes in the trace (edited and reloaded while recording), the
/// version number of each code, in the order they were first run.
fn versions(reader: &TraceReader) -> HashMap<u32, usize> {
    let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
    for code in reader.codes() {
        by_name.entry(code.full_name()).or_default().push(code.id);
    }
    by_name
        .into_values()
        .filter(|ids| ids.len() > 1)
        .flat_map(|ids| ids.into_iter().enumerate().map(|(i, id)| (id, i + 1)))
        .collect()
}

/// The cells of one row; the calls cell ends in `*` for a partly recorded function, else a
/// space, so numbers stay aligned. A function reloaded while recording gets one row per version,
/// marked `[v1]`, `[v2]`, ...
fn cells(
    reader: &TraceReader,
    root: &Path,
    versions: &HashMap<u32, usize>,
    row: &Row,
) -> [String; 5] {
    let mark = if row.is_partial() { '*' } else { ' ' };
    let per_call = row
        .total_ns
        .checked_div(row.recorded)
        .map_or_else(|| "-".to_owned(), units::duration);
    let function = match reader.code(row.code) {
        Some(code) => {
            let file = Path::new(&code.file);
            let file = file
                .strip_prefix(root)
                .ok()
                .filter(|_| !root.as_os_str().is_empty())
                .unwrap_or(file);
            let version = versions
                .get(&row.code)
                .map_or_else(String::new, |v| format!(" [v{v}]"));
            format!(
                "{}{version}  {}:{}",
                code.full_name(),
                file.display(),
                code.first_line
            )
        }
        None => format!("code {}", row.code),
    };
    [
        format!("{}{mark}", row.calls),
        units::duration(row.total_ns),
        units::duration(row.self_ns),
        per_call,
        function,
    ]
}
