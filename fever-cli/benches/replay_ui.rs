//! `fever replay`'s UI on a recording of a million calls (`main` calling `step(i)` 333,333
//! times, each `step` calling `leaf`): building the call tree, a frame on a 200×60 test
//! backend (the mean of 200), opening a `[×N]` line. No terminal, no program.
//!
//! `cargo bench -p fever-cli --bench replay_ui`; `benches/replay.py` reads its line.

use fever_cli::frame_costs;
use fever_core::snapshot::Value;
use fever_core::trace::{CodeInfo, Event, TraceHeader, TraceReader, TraceWriter};

fn main() {
    let costs = frame_costs(recording(333_333), 200);
    println!(
        "calls=1000000 load_ms={:.1} frame_ms={:.3} open_x_ms={:.1}",
        costs.load.as_secs_f64() * 1e3,
        costs.frame.as_secs_f64() * 1e3,
        costs.open.as_secs_f64() * 1e3
    );
}

/// `main` calling `step(i)` `n` times, each `step` calling `leaf` once (`2n + 1` calls).
fn recording(n: u64) -> TraceReader {
    let mut w = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
    for (id, name) in (0..).zip(["main", "step", "leaf"]) {
        w.add_code(CodeInfo {
            id,
            module: "app".into(),
            qualname: name.into(),
            file: "/nonexistent/app.py".into(),
            first_line: 1,
            code_hash: 0,
        })
        .unwrap();
    }
    let snap = |v: Value| {
        let mut out = Vec::new();
        v.encode(&mut out);
        Some(out)
    };
    let call = |code, t_ns| Event::Call {
        code,
        thread: 1,
        t_ns,
        args: None,
    };
    let ret = |code, t_ns, value| Event::Return {
        code,
        flags: 0,
        thread: 1,
        t_ns,
        value,
    };
    w.write_event(&call(0, 0)).unwrap();
    for i in 0..n {
        let t = 1 + i * 10;
        let i = i64::try_from(i).unwrap();
        w.write_event(&call(1, t)).unwrap();
        w.write_event(&call(2, t + 1)).unwrap();
        w.write_event(&ret(2, t + 2, snap(Value::Int(i)))).unwrap();
        w.write_event(&ret(1, t + 3, snap(Value::Int(i * 2))))
            .unwrap();
    }
    w.write_event(&ret(0, n * 10 + 5, None)).unwrap();
    TraceReader::from_bytes(&w.finish().unwrap()).unwrap()
}
