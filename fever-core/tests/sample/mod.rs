//! The header and codes of the sample traces that `trace_format.rs` (the golden files among
//! them) and `benches/trace.rs` write.

use fever_core::trace::{CodeInfo, TraceHeader};

pub fn header() -> TraceHeader {
    TraceHeader {
        python_version: "3.12.1 (main, Jan 1 2024) [GCC 11.4.0]".into(),
        fever_version: "0.1.0".into(),
        root: "/home/ada/shop".into(),
        argv: vec!["shop.py".into(), "--fast".into()],
        pid: 4242,
        started_unix_ns: 1_700_000_000_123_456_789,
        started_monotonic_ns: 5_000,
        options: vec![("snapshots".into(), "args".into())],
    }
}

pub fn code(id: u32) -> CodeInfo {
    CodeInfo {
        id,
        module: "shop.cart".into(),
        qualname: format!("Cart.method_{id}"),
        file: "/home/ada/shop/shop/cart.py".into(),
        first_line: 10 * id + 1,
        code_hash: 0x0123_4567_89ab_cdef ^ u64::from(id),
    }
}
