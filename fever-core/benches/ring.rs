//! Ring buffer throughput: one writer pushing small (32-byte) records, alone and with a reader
//! thread following it. Goal: at least 100M records/s for the writer alone.
//!
//! Run with `cargo bench -p fever-core --bench ring`; divan reports time per batch and, through
//! the item counter, records per second. Ring files go to `/dev/shm` when it exists (where a live
//! ring belongs: no write-back to disk), else to the system temp dir. `FEVER_BENCH_VERBOSE=1`
//! prints how much of the stream the concurrent reader kept up with.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use fever_core::ring::{ReadOutcome, RingReader, RingWriter, DEFAULT_PUBLISH_EVERY};

fn main() {
    divan::main();
}

/// Records pushed per timed iteration, so the timer's own cost is negligible.
const BATCH: usize = 4096;
const PAYLOAD: [u8; 32] = [0xA5; 32];

/// A ring file in a fresh directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("fever-ring-bench-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bench dir");
        Scratch(dir)
    }

    fn ring(&self) -> PathBuf {
        self.0.join("ring")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes one full lap so the timed part measures the steady state, not the page faults of
/// touching a fresh mapping (`writer_first_lap` measures those).
fn warm_up(writer: &mut RingWriter) {
    for _ in 0..=(writer.capacity() / 48) {
        writer.push(&PAYLOAD);
    }
}

/// One writer, no reader, 32-byte payloads (48 bytes framed), by ring capacity.
#[divan::bench(args = [1 << 20, 64 << 20])]
fn writer_alone(bencher: Bencher, capacity: u64) {
    let scratch = Scratch::new("alone");
    let mut writer = RingWriter::create(scratch.ring(), capacity).expect("create ring");
    warm_up(&mut writer);
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        for _ in 0..BATCH {
            black_box(writer.push(black_box(&PAYLOAD)));
        }
    });
}

#[allow(clippy::cast_precision_loss)] // a percentage for display
/// One writer with a reader thread polling and copying out every record it can, in a 1 MiB ring,
/// by how many records the writer appends between two publications of the head.
#[divan::bench(args = [1, 8, DEFAULT_PUBLISH_EVERY, 512])]
fn writer_with_reader(bencher: Bencher, publish_every: u32) {
    with_reader(bencher, publish_every, 1 << 20);
}

/// The same in a 64 MiB ring, which the reader's cache cannot hold.
#[divan::bench(args = [DEFAULT_PUBLISH_EVERY])]
fn writer_with_reader_64mib(bencher: Bencher, publish_every: u32) {
    with_reader(bencher, publish_every, 64 << 20);
}

#[allow(clippy::cast_precision_loss)] // a percentage for display
fn with_reader(bencher: Bencher, publish_every: u32, capacity: u64) {
    let scratch = Scratch::new("reader");
    let mut writer = RingWriter::create(scratch.ring(), capacity)
        .expect("create ring")
        .publish_every(publish_every);
    warm_up(&mut writer);
    let mut reader = RingReader::open(scratch.ring()).expect("open ring");
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let follower = {
        let (stop, read) = (Arc::clone(&stop), Arc::clone(&read));
        thread::spawn(move || {
            let mut buf = Vec::with_capacity(64);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match reader.next_record(&mut buf) {
                    Ok(ReadOutcome::Record(_)) => n += 1,
                    Ok(ReadOutcome::Empty) => std::hint::spin_loop(),
                    Ok(ReadOutcome::Lost(_)) | Err(_) => {}
                }
            }
            read.store(n, Ordering::Relaxed);
            reader.lost()
        })
    };
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        for _ in 0..BATCH {
            black_box(writer.push(black_box(&PAYLOAD)));
        }
    });
    stop.store(true, Ordering::Relaxed);
    let lost = follower.join().expect("reader thread");
    let read = read.load(Ordering::Relaxed);
    let total = read + lost;
    if total > 0 && std::env::var_os("FEVER_BENCH_VERBOSE").is_some() {
        eprintln!(
            "  publish every {publish_every}: reader read {read} records, lost {lost} ({:.1}% read)",
            100.0 * read as f64 / total as f64
        );
    }
}

/// One writer filling a fresh 64 MiB ring: the first lap pays a page fault per 4 KiB page.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn writer_first_lap(bencher: Bencher) {
    const CAPACITY: u64 = 64 << 20;
    let records = usize::try_from(CAPACITY / 48).unwrap_or(usize::MAX);
    bencher
        .counter(ItemsCount::new(records))
        .with_inputs(|| {
            let scratch = Scratch::new("lap");
            let writer = RingWriter::create(scratch.ring(), CAPACITY).expect("create ring");
            (scratch, writer)
        })
        .bench_local_values(|(scratch, mut writer)| {
            for _ in 0..records {
                black_box(writer.push(black_box(&PAYLOAD)));
            }
            (scratch, writer)
        });
}

/// The reader alone: copying out 32-byte records already in a 64 MiB ring.
#[divan::bench]
fn reader_alone(bencher: Bencher) {
    let scratch = Scratch::new("read");
    let mut writer = RingWriter::create(scratch.ring(), 64 << 20).expect("create ring");
    let records = (64 << 20) / 48 / 2;
    for _ in 0..records {
        writer.push(&PAYLOAD);
    }
    writer.flush();
    let mut buf = Vec::with_capacity(64);
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| RingReader::open(scratch.ring()).expect("open ring"))
        .bench_local_values(|mut reader| {
            for _ in 0..BATCH {
                black_box(reader.next_record(&mut buf).ok());
            }
            reader
        });
}
