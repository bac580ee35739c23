//! `fever show` on a trace of 5M events: how long writing it takes, and each way of showing
//! it (tree, profile, the three export formats), through the real `fever` binary.
//!
//! `cargo bench -p fever-cli --bench show_big`. Timings are printed, not judged;
//! `benches/show_stream.py` measures time and memory on real traces.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use fever_core::snapshot::Encoder;
use fever_core::trace::{CodeInfo, Event, TraceHeader, TraceWriter};

const MAIN: u32 = 0;
const PARSE: u32 = 1;
const TOKENIZE: u32 = 2;
const THREAD: u64 = 1;

fn main() {
    let dir = std::env::temp_dir().join(format!("fever-bench-show-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let result = std::panic::catch_unwind(|| measure(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn measure(dir: &Path) {
    let path = dir.join("big.trace");
    let started = Instant::now();
    write_trace(&path);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "wrote 5,000,002 events ({} MB) in {:.2?}",
        size / 1_000_000,
        started.elapsed()
    );
    for args in [
        &["show", "big.trace", "--max-lines", "100"][..],
        &["show", "big.trace", "--profile"],
        &["show", "big.trace", "--format", "perfetto"],
        &["show", "big.trace", "--format", "chrome"],
        &["show", "big.trace", "--format", "speedscope"],
    ] {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_fever"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("start fever");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", args.join(" "));
        println!(
            "{:<45} {:>8.2?}  {}",
            args.join(" "),
            started.elapsed(),
            stderr.lines().last().unwrap_or_default()
        );
    }
}

/// `main` > 1,250,000 × (`parse(i=...)` > `tokenize`), with argument and return snapshots.
fn write_trace(path: &Path) {
    let header = TraceHeader {
        root: "/proj".into(),
        argv: vec!["app.py".into()],
        options: vec![
            ("snapshots".into(), "all".into()),
            ("main_thread".into(), THREAD.to_string()),
        ],
        ..TraceHeader::default()
    };
    let mut w = TraceWriter::create(path, &header).unwrap();
    for (id, qualname) in [(MAIN, "main"), (PARSE, "parse"), (TOKENIZE, "tokenize")] {
        w.add_code(CodeInfo {
            id,
            module: "app".into(),
            qualname: qualname.into(),
            file: "/proj/app.py".into(),
            first_line: 1 + 10 * id,
            code_hash: u64::from(id),
        })
        .unwrap();
    }
    let call = |code, t_ns, args| Event::Call {
        code,
        thread: THREAD,
        t_ns,
        args,
    };
    let ret = |code, t_ns, value| Event::Return {
        code,
        flags: 0,
        thread: THREAD,
        t_ns,
        value,
    };
    let no_args = snapshot(|e| {
        e.begin_args();
        e.end(0);
    });
    w.write_event(&call(MAIN, 0, no_args)).unwrap();
    let mut t = 0;
    for i in 0..1_250_000i64 {
        t += 10;
        let args = snapshot(|e| {
            e.begin_args();
            e.field("i");
            e.int(i);
            e.end(0);
        });
        w.write_event(&call(PARSE, t, args)).unwrap();
        w.write_event(&call(TOKENIZE, t + 1, None)).unwrap();
        w.write_event(&ret(TOKENIZE, t + 3, None)).unwrap();
        w.write_event(&ret(PARSE, t + 5, snapshot(|e| e.int(2))))
            .unwrap();
    }
    w.write_event(&ret(
        MAIN,
        t + 100,
        snapshot(|e| {
            e.none();
        }),
    ))
    .unwrap();
    w.finish().unwrap();
}

#[allow(clippy::unnecessary_wraps)] // events take `Option`s; a recorded snapshot is `Some`
fn snapshot(write: impl FnOnce(&mut Encoder<'_>)) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut e = Encoder::new(&mut buf);
    write(&mut e);
    e.finish();
    Some(buf)
}
