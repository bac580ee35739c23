//! `fever replay --start CALL [--end CALL]`: runs the program once, replays one segment in the
//! warm program, prints the result, and quits. Exit code 0 when the end call returned, 1 when it
//! raised, was not reached or the replay failed (crashed, stopped by `--timeout`), 2 on errors
//! (an unknown function, a call number past the last call).

use std::time::Instant;

use anyhow::Context;
use fever_core::control::{ReplayRequest, Request, Response};
use fever_core::replay::{locate, CallRef, LocateError};
use fever_core::trace::TraceReader;

use super::program::{Ended, Heard, Program};
use super::report;
use crate::config::{Keep, ReplayConfig};
use crate::{messages, Host};

pub(super) fn run(config: &ReplayConfig, start: &CallRef, host: &dyn Host) -> anyhow::Result<i32> {
    let python = host.python(config.run.python.as_deref())?;
    let mut program =
        match Program::start(&python, &config.run, Keep::Call(start.clone()), None, None) {
            Ok(program) => program,
            Err(err) => {
                if let Some(Ended(status)) = err.downcast_ref::<Ended>() {
                    return Ok(status.code().unwrap_or(1));
                }
                return Err(err);
            }
        };
    // The first run (saves reloaded meanwhile are only news).
    let mut heard = program.hear(None)?;
    while let Some(Heard::Response(Response::Reloaded { .. })) = heard {
        heard = program.hear(None)?;
    }
    match heard {
        Some(Heard::Response(Response::Finished { .. })) => {}
        Some(Heard::Gone(status)) => {
            messages::error(&format!(
                "the program ended before its first run finished ({}); nothing to replay",
                status.map_or_else(|| "killed".into(), |s| s.to_string())
            ));
            return Ok(status.and_then(|s| s.code()).unwrap_or(1));
        }
        Some(Heard::Response(other)) => {
            anyhow::bail!("unexpected message from the program: {other:?}")
        }
        None => unreachable!("no deadline"),
    }
    // The end call is counted within the start call, which is its own function's first call.
    let end = config.end.clone().unwrap_or_else(|| CallRef {
        function: start.function.clone(),
        number: 1,
    });
    let trace = TraceReader::open(program.trace())
        .with_context(|| format!("cannot read the recording {}", program.trace().display()))?;
    let located = match locate(&trace, start, &end, config.run.script_module().as_deref()) {
        Ok(located) => located,
        Err(err @ LocateError::OnlyInChildren { .. }) => {
            messages::error(&err.to_string());
            messages::hint(
                "the workers ended with the program; to profile a worker while it runs, start \
                 the program with `fever run` and `fever attach WORKER_PID` (`fever ps` lists \
                 the workers)",
            );
            return Ok(2);
        }
        Err(err) => return Err(err.into()),
    };
    program.send(&Request::Replay(ReplayRequest {
        start: start.clone(),
        end: end.clone(),
        break_at_end: config.break_at_end,
        debug_on_raise: false,
        debugger: config.debugger.name().to_owned(),
    }))?;
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let mut cancelled = false;
    let response = loop {
        match program.hear(if cancelled { None } else { deadline })? {
            // A debugger (--break-at-end) has the terminal already: nothing to hand over.
            Some(Heard::Response(Response::Reloaded { .. } | Response::Debugging)) => {}
            Some(Heard::Response(response)) => break response,
            Some(Heard::Gone(status)) => anyhow::bail!(
                "the program ended during the replay ({})",
                status.map_or_else(|| "killed".into(), |s| s.to_string())
            ),
            None => {
                messages::warning(&format!(
                    "the replay ran for {:.1} s (--timeout): stopping it; the warm program is untouched",
                    config.timeout.map_or(0.0, |t| t.as_secs_f64())
                ));
                program.send(&Request::Cancel)?;
                cancelled = true;
            }
        }
    };
    let recorded = located.end.map(|e| e.outcome);
    let code = match response {
        Response::ReplayDone(result) => {
            let mut out = std::io::stdout().lock();
            report::print(&mut out, start, &end, &result, recorded)?;
            report::exit_code(&result)
        }
        Response::ReplayFailed { reason } => {
            messages::error(&format!("the replay of {start} gave no result: {reason}"));
            1
        }
        Response::Error { message } => anyhow::bail!("the program refused the replay: {message}"),
        other => anyhow::bail!("unexpected message from the program: {other:?}"),
    };
    program.quit();
    Ok(code)
}
