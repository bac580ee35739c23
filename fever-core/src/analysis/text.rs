//! How the views (tree, exports) show threads, calls and snapshots, so they all agree.

use super::spans::Snapshot;
use crate::settings::MAIN_THREAD_OPTION;
use crate::snapshot::{render_args_short, render_short};
use crate::trace::TraceHeader;

/// The main thread's ident, if the recorder noted it.
pub fn main_thread(header: &TraceHeader) -> Option<u64> {
    header
        .options
        .iter()
        .find(|(key, _)| key == MAIN_THREAD_OPTION)
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// `thread 140234 (main)`, or without `(main)` for other threads; `process 4242 thread 1` for
/// the first thread of the child process 4242.
pub fn thread_label(ident: u64, main: Option<u64>) -> String {
    if let Some((pid, n)) = crate::trace::thread_process(ident) {
        format!("process {pid} thread {}", u64::from(n) + 1)
    } else if main == Some(ident) {
        format!("thread {ident} (main)")
    } else {
        format!("thread {ident}")
    }
}

/// `name(x=1, y='a')` with the arguments shortened to about `max_chars`, or `name(…)` when the
/// arguments were not recorded.
pub fn call(name: &str, args: Snapshot<'_>, max_chars: usize) -> String {
    match args {
        Some(bytes) => format!("{name}({})", render_args_short(bytes, max_chars)),
        None => format!("{name}(…)"),
    }
}

/// The arguments alone (`x=1, y='a'`), if recorded.
pub fn args(args: Snapshot<'_>, max_chars: usize) -> Option<String> {
    args.map(|bytes| render_args_short(bytes, max_chars))
}

/// A value or exception, shortened to about `max_chars`, if recorded.
pub fn value(value: Snapshot<'_>, max_chars: usize) -> Option<String> {
    value.map(|bytes| render_short(bytes, max_chars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_thread_comes_from_the_header_options() {
        let mut header = TraceHeader::default();
        assert_eq!(main_thread(&header), None);
        header.options = vec![
            ("snapshots".into(), "all".into()),
            (MAIN_THREAD_OPTION.into(), "140234".into()),
        ];
        assert_eq!(main_thread(&header), Some(140_234));
        assert_eq!(thread_label(140_234, Some(140_234)), "thread 140234 (main)");
        assert_eq!(thread_label(7, Some(140_234)), "thread 7");
        assert_eq!(
            thread_label(crate::trace::child_thread(4242, 0), Some(140_234)),
            "process 4242 thread 1"
        );
        header.options = vec![(MAIN_THREAD_OPTION.into(), "nope".into())];
        assert_eq!(main_thread(&header), None);
    }

    #[test]
    fn calls_without_recorded_arguments_say_so() {
        assert_eq!(call("m.f", None, 60), "m.f(…)");
        assert!(call("m.f", Some(&[]), 60).starts_with("m.f("));
        assert_eq!(args(None, 60), None);
        assert_eq!(value(None, 60), None);
    }
}
