//! A hand check of incremental reindexing on real modules: for every 7th line of each file
//! given, three one-line edits (a character added at the line's end, the line deleted, the
//! line doubled) must give, through `reindex`, the index and reload plan that indexing and
//! planning the whole edited file gives. Prints one line per file; exits 1 on a mismatch.
//!
//! `cargo run --release -p fever-core --example reindex_check -- FILE.py...`
//! (e.g. every module of a library's sdist, or of the standard library).

use std::process::ExitCode;

use fever_core::{plan_reload, reindex, Index};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: reindex_check FILE.py...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for path in &paths {
        let Ok(old) = std::fs::read_to_string(path) else {
            eprintln!("{path}: not readable as UTF-8, skipped");
            continue;
        };
        match check(&old) {
            Ok(edits) => println!("{path}: {} lines, {edits} edits agree", old.lines().count()),
            Err(line) => {
                println!("{path}: line {line}: reindex differs from indexing the whole file");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The number of edits checked, or the first line (1-based) whose edit disagrees.
fn check(old: &str) -> Result<usize, usize> {
    let lines: Vec<&str> = old.split_inclusive('\n').collect();
    let running = Index::build(old);
    let mut edits = 0;
    for i in (0..lines.len()).step_by(7) {
        let edit = |f: &dyn Fn(&str) -> String| -> String {
            lines
                .iter()
                .enumerate()
                .map(|(j, line)| if j == i { f(line) } else { (*line).to_owned() })
                .collect()
        };
        for new in [
            edit(&|l| l.replacen('\n', "1\n", 1)),
            edit(&|_| String::new()),
            edit(&|l| format!("{l}{l}")),
        ] {
            let got = reindex(&running, old, &new);
            let index = Index::build(&new);
            if got.plan != plan_reload(&running, &index) {
                return Err(i + 1);
            }
            let mut applied = running.clone();
            got.apply(&mut applied);
            if applied != index {
                return Err(i + 1);
            }
            edits += 1;
        }
    }
    Ok(edits)
}
