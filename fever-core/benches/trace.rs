//! Trace format throughput, and how compressors compare on a real trace's record streams.
//!
//! `cargo bench -p fever-core --bench trace` writes a ~100 MB trace in memory (1000 codes, half
//! the events with a 24-byte snapshot) and prints how fast it is written, validated, opened
//! from a file and iterated. With `FEVER_TRACE=PATH` it then compresses the record streams of
//! that trace (e.g. one `fever record` wrote of a real library's test suite) with zstd levels 1
//! (with its default window and a 4 MiB one) and 3 and LZ4 at several chunk sizes: the measurement behind the choice in
//! `src/trace/compress.rs`. Timings are printed, not judged.

use std::time::Instant;

use fever_core::trace::{Event, TraceReader, TraceWriter};

#[path = "../tests/sample/mod.rs"]
mod sample;

use sample::{code, header};

fn main() {
    throughput_of_a_100_mb_trace();
    if let Ok(path) = std::env::var("FEVER_TRACE") {
        compression_of_a_real_trace(&path);
    }
}

#[allow(clippy::cast_precision_loss)]
fn throughput_of_a_100_mb_trace() {
    let t = Instant::now();
    let mut w = TraceWriter::new(Vec::new(), &header()).unwrap();
    for id in 0..1000 {
        w.add_code(code(id)).unwrap();
    }
    let mut n = 0u64;
    while w.bytes_written() < 100_000_000 {
        // Half the events carry a 24-byte snapshot, like small arguments.
        let call = n & 1 == 0;
        let code = u32::try_from(n % 1000).unwrap();
        let e = if call {
            Event::Call {
                thread: 1,
                code,
                t_ns: n,
                args: Some(vec![7u8; 24]),
            }
        } else {
            Event::Return {
                thread: 1,
                code,
                flags: 0,
                t_ns: n,
                value: None,
            }
        };
        w.write_event(&e).unwrap();
        n += 1;
    }
    let bytes = w.finish().unwrap();
    let write = t.elapsed();
    let mb = bytes.len() as f64 / 1e6;
    let t = Instant::now();
    let r = TraceReader::from_bytes(&bytes).unwrap();
    let validate = t.elapsed();
    assert_eq!(r.event_count(), n);
    drop(r);
    let path = std::env::temp_dir().join(format!(
        "fever-bench-{}-throughput.trace",
        std::process::id()
    ));
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);

    let t = Instant::now();
    let r = TraceReader::open(&path).unwrap();
    let open = t.elapsed();
    let t = Instant::now();
    let sum: u64 = r.events().map(|e| e.t_ns() ^ u64::from(e.code())).sum();
    let iterate = t.elapsed();
    let t = Instant::now();
    let owned = r
        .events()
        .map(Event::from)
        .filter(|e| e.snapshot().is_some())
        .count();
    let to_owned = t.elapsed();
    println!(
        "{n} events, {mb:.1} MB ({:.1} bytes/event)\n\
         write to memory    {write:>10.2?} {:>6.0} MB/s\n\
         validate in memory {validate:>10.2?} {:>6.0} MB/s {:>5.1} ns/event\n\
         open (read+valid.) {open:>10.2?} {:>6.0} MB/s\n\
         iterate archived   {iterate:>10.2?}\n\
         iterate to owned   {to_owned:>10.2?}   [{sum} {owned}]",
        mb * 1e6 / n as f64,
        mb / write.as_secs_f64(),
        mb / validate.as_secs_f64(),
        validate.as_nanos() as f64 / n as f64,
        mb / open.as_secs_f64(),
    );
    std::fs::remove_file(&path).unwrap();
}

#[allow(clippy::cast_precision_loss)]
fn compression_of_a_real_trace(path: &str) {
    let r = TraceReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw: Vec<u8> = r.record_streams().collect::<Vec<_>>().concat();
    let events = r.event_count() as f64;
    println!(
        "{path}: {} bytes on disk, {} bytes of record stream, {} events",
        r.file_len(),
        raw.len(),
        r.event_count()
    );
    for chunk in [256 << 10, 1 << 20, 4 << 20] {
        for (level, window_log) in [(1, 0), (1, 22), (3, 0)] {
            let t = Instant::now();
            let mut z = zstd::bulk::Compressor::new(level).unwrap();
            if window_log > 0 {
                z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log))
                    .unwrap();
            }
            let total: usize = raw
                .chunks(chunk)
                .map(|c| z.compress(c).unwrap().len())
                .sum();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "chunk {:>5} KiB  zstd {level} window_log {window_log}: {total:>11} bytes ({:.1} B/event) {:>6.0} MB/s",
                chunk >> 10,
                total as f64 / events,
                raw.len() as f64 / 1e6 / secs
            );
        }
        let t = Instant::now();
        let total: usize = raw
            .chunks(chunk)
            .map(|c| lz4_flex::block::compress(c).len())
            .sum();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "chunk {:>5} KiB  lz4_flex: {total:>11} bytes ({:.1} B/event) {:>6.0} MB/s",
            chunk >> 10,
            total as f64 / events,
            raw.len() as f64 / 1e6 / secs
        );
    }
}
