//! A measurement: what `snapshot_args` costs for small arguments (two scalars, a short list, a
//! dataclass), on the interpreter `PYO3_PYTHON` names. Run with
//! `cargo bench -p fever-monitor --bench snapshot_cost` (with `PYO3_PYTHON` and
//! `LD_LIBRARY_PATH` as for `arg_cost`; `benches/callcost.py` does it for every Python). Prints
//! the best of 7 runs of 300,000 snapshots each.

use _native::snapshot_args;
use fever_core::settings::SnapshotLimits;
use pyo3::ffi::PyObject;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn main() {
    Python::initialize();
    Python::attach(|py| {
        let ns = PyDict::new(py);
        py.run(
            c"a = 3\nb = 'abc'\nl = [1, 2.5, 'x']\nfrom dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\np = P(1, 2)",
            Some(&ns),
            None,
        )
        .expect("setup code runs");
        let get = |name: &str| ns.get_item(name).unwrap().expect("defined");
        let (a, b, l, p) = (get("a"), get("b"), get("l"), get("p"));
        measure("(3, 'abc')", &[a.as_ptr(), b.as_ptr()]);
        measure("([1, 2.5, 'x'],)", &[l.as_ptr()]);
        measure("(P(1, 2),)", &[p.as_ptr()]);
    });
}

/// Prints the best time of `snapshot_args` over `values` (the GIL is held; they are live).
fn measure(label: &str, values: &[*mut PyObject]) {
    let names = ["a", "b"];
    let limits = SnapshotLimits::default();
    let mut out = Vec::with_capacity(1 << 16);
    let n = 300_000;
    let mut best = f64::MAX;
    // The best of several runs: the machine may be busy.
    for _ in 0..7 {
        let start = std::time::Instant::now();
        for _ in 0..n {
            out.clear();
            // SAFETY: the caller holds the GIL; the values are live objects of its namespace.
            std::hint::black_box(unsafe {
                snapshot_args(&names[..values.len()], values, &limits, &mut out)
            });
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e9 / f64::from(n));
    }
    println!("snapshot_args {label}: {best:.1} ns ({} bytes)", out.len());
}
