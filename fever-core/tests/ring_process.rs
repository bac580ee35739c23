//! A ring written by one process and followed by another, as `fever attach` uses it.
//!
//! The test binary re-runs itself as the writer: `writer_child` is ignored in normal runs and only
//! does something when the parent passes it a ring path in the environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use fever_core::ring::{ReadOutcome, RingReader, RingWriter};

const RING_ENV: &str = "FEVER_RING_TEST_PATH";
const RECORDS: u64 = 500_000;
#[allow(clippy::duration_suboptimal_units)] // `Duration::from_mins` is newer than the declared MSRV
const TIMEOUT: Duration = Duration::from_secs(120);

/// Record `i`: its index, then 0..=63 bytes derived from it.
fn payload(i: u64) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    let extra = (i.wrapping_mul(2_654_435_761) >> 9) % 64;
    p.extend((0..extra).map(|j| (i ^ j.wrapping_mul(151)).to_le_bytes()[0]));
    p
}

fn go_file(ring: &Path) -> PathBuf {
    ring.with_extension("go")
}

fn wait_for(what: &str, deadline: Instant, mut ready: impl FnMut() -> bool) {
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The writer process: creates the ring, waits for the reader to be ready, writes, closes.
#[test]
#[ignore = "run by reader_in_another_process_follows_the_writer as a child process"]
fn writer_child() {
    let Some(path) = env::var_os(RING_ENV).map(PathBuf::from) else {
        return;
    };
    let mut writer = RingWriter::create(&path, 1 << 20).expect("create ring");
    let deadline = Instant::now() + TIMEOUT;
    wait_for("the reader", deadline, || go_file(&path).exists());
    for i in 0..RECORDS {
        assert_eq!(writer.push(&payload(i)), Some(i));
    }
    writer.close();
}

/// Kills the child if the test fails before reaping it.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reader_in_another_process_follows_the_writer() {
    let dir = env::temp_dir().join(format!("fever-ring-process-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring");
    let child = Command::new(env::current_exe().unwrap())
        .args(["writer_child", "--exact", "--ignored", "--nocapture"])
        .env(RING_ENV, &path)
        // The child's libtest chatter goes to stdout; its panics (with --nocapture) to stderr.
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the writer process");
    let mut child = Reap(child);
    let deadline = Instant::now() + TIMEOUT;
    wait_for("the ring file", deadline, || path.exists());
    let mut reader = RingReader::open(&path).expect("open the ring");
    fs::write(go_file(&path), b"").unwrap();

    let mut buf = Vec::new();
    let (mut received, mut lost, mut last) = (0u64, 0u64, None);
    loop {
        assert!(Instant::now() < deadline, "reader did not finish in time");
        let closed = reader.writer_closed();
        match reader.next_record(&mut buf).expect("no corruption") {
            ReadOutcome::Record(seq) => {
                assert_eq!(buf, payload(seq), "record {seq} is intact");
                assert!(!matches!(last, Some(last) if seq <= last));
                last = Some(seq);
                received += 1;
            }
            ReadOutcome::Lost(n) => lost += n,
            ReadOutcome::Empty if closed => break,
            ReadOutcome::Empty => thread::yield_now(),
        }
    }
    wait_for("the writer to exit", deadline, || {
        child.0.try_wait().expect("wait for the writer").is_some()
    });
    let status = child.0.wait().unwrap();
    assert!(status.success(), "writer process failed: {status}");
    assert_eq!(last, Some(RECORDS - 1));
    assert_eq!(received + lost, RECORDS);
    assert_eq!(reader.writer_dropped(), 0);
    drop(reader);
    let _ = fs::remove_dir_all(&dir);
}
