//! `fever check TRACE`'s policy: check every selected call, print each difference on stdout as
//! it is found, then `--junit`, `--update` and the summary line on stderr (with a hint when it
//! checked too little to mean much), and the exit code; `--list` prints the selection instead.
//! The calls are checked in an interpreter, by the host's [`Checks`].

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};
use fever_core::check::{junit_xml, rewrite_file, Summary, Tested, Unselected, Verdict};

use super::show::output::deliver;
use crate::config::{CheckAction, CheckConfig, Output, Verbosity};
use crate::{messages, Checks};

/// Exit code after Ctrl-C, as Python gives.
const INTERRUPTED: i32 = 130;

/// Runs `fever check` on the opened trace (`None`: Ctrl-C while the project's modules were
/// imported); returns the exit code.
pub fn run(config: &CheckConfig, checks: Option<&mut dyn Checks>) -> anyhow::Result<i32> {
    let Some(checker) = checks else {
        return Ok(INTERRUPTED);
    };
    if checker.cases().is_empty() {
        if !config.select.is_empty() {
            bail!(
                "no recorded call matches --select {}",
                config.select.join(" --select ")
            );
        }
        if config.verbosity >= Verbosity::Normal {
            messages::warning("the trace holds no calls of the project's functions to check");
        }
    }
    if config.action == CheckAction::List {
        list(checker);
        return Ok(0);
    }
    let mut verdicts = Vec::with_capacity(checker.cases().len());
    let mut new_outcomes = HashMap::new();
    let mut interrupted = false;
    for index in 0..checker.cases().len() {
        let started = Instant::now();
        let Some(checked) = checker.check(index)? else {
            interrupted = true;
            break;
        };
        let seconds = started.elapsed().as_secs_f64();
        let case = &checker.cases()[index];
        match &checked.verdict {
            Verdict::Failed(report) => {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{report}");
                let _ = stdout.flush();
                if let Some(now) = checked.now {
                    new_outcomes.insert(case.end_event, now);
                }
            }
            Verdict::Skipped(reason) if config.verbosity >= Verbosity::Verbose => {
                messages::info(&format!("skipped {}: {reason}", case.id));
            }
            _ => {}
        }
        verdicts.push((checked.verdict, seconds));
    }
    let mut summary = Summary::default();
    for (verdict, _) in &verdicts {
        summary.add(verdict);
    }
    if let Some(path) = &config.junit {
        let tested: Vec<Tested<'_>> = checker
            .cases()
            .iter()
            .zip(&verdicts)
            .map(|(case, (verdict, seconds))| Tested {
                case,
                verdict,
                seconds: *seconds,
            })
            .collect();
        let xml = junit_xml(&format!("fever check {}", config.trace.display()), &tested);
        deliver(&Output::File(path.clone()), |out| {
            out.write_all(xml.as_bytes())
        })?;
    }
    if config.verbosity >= Verbosity::Normal {
        let note = if interrupted { " (interrupted)" } else { "" };
        messages::info(&format!("{summary}{note}"));
        if summary.skipped > 0 && summary.passed + summary.failed == 0 && !interrupted {
            // Passing by checking nothing is worth a second look in CI.
            messages::warning("no recorded call could be checked");
            if config.verbosity < Verbosity::Verbose {
                messages::hint("see why with `fever check -v`");
            }
        } else if summary.passed + summary.failed <= 1
            && !interrupted
            && config.select.is_empty()
            && config.depth == 0
            && checker
                .unselected()
                .get(&Unselected::Nested)
                .is_some_and(|n| *n > 0)
        {
            // One call, e.g. a script's main() returning 0, says little about the code below it.
            let n = checker.unselected()[&Unselected::Nested];
            messages::hint(&format!(
                "only the outermost call was checked; {n} recorded call{} below it can be \
                 checked too: `--depth 1` (one level down), `--select 'MODULE.*'`, or see them \
                 with `--list`",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    if interrupted {
        return Ok(INTERRUPTED);
    }
    if config.action == CheckAction::Update && !new_outcomes.is_empty() {
        rewrite_file(checker.reader(), &new_outcomes, &config.trace)
            .with_context(|| format!("cannot update {}", config.trace.display()))?;
        if config.verbosity >= Verbosity::Normal {
            let n = new_outcomes.len();
            let s = if n == 1 { "" } else { "s" };
            messages::info(&format!(
                "updated {n} recorded result{s} in {}",
                config.trace.display()
            ));
        }
        return Ok(0);
    }
    Ok(summary.exit_code())
}

/// `--list`: each selected call on stdout, `id  file:line` and what checking does with it
/// (`check`, or `skip: reason`), then on stderr how many calls were not selected and why.
fn list(checker: &dyn Checks) {
    let mut stdout = std::io::stdout().lock();
    for case in checker.cases() {
        let what = case
            .skip
            .as_deref()
            .map_or_else(|| "check".to_owned(), |reason| format!("skip: {reason}"));
        let _ = writeln!(stdout, "{}  {}  {what}", case.id, case.location());
    }
    let _ = stdout.flush();
    let n = checker.cases().len();
    messages::info(&format!(
        "{n} call{} selected",
        if n == 1 { "" } else { "s" }
    ));
    for (reason, count) in checker.unselected() {
        messages::info(&format!("not selected: {count} {reason}"));
    }
}
