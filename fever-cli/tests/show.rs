//! `fever show` end to end: traces written with `TraceWriter`, read by the real binary.
//!
//! The realistic trace (`realistic`) has two threads, recursion, a generator that yields and
//! resumes, an exception unwinding two frames, 100 repeated calls to collapse, run statistics
//! with a function recorded only twice of 1000 calls, and 3 lost events. Its times are round
//! numbers so the profile's totals can be computed by hand (see `profile_numbers`).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fever_core::snapshot::Encoder;
use fever_core::trace::{
    CodeCalls, CodeInfo, Event, RunStats, TraceHeader, TraceWriter, MUTATED_ARGS,
};

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }

    /// Exit 0, no panic.
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        assert!(!self.stderr.contains("panicked"), "{}", self.describe());
        self
    }
}

/// Runs `fever ARGS` in `cwd`, killed after 120 s.
fn fever<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fever"))
        .args(args)
        .current_dir(cwd)
        // `show` must not need Python: make any attempt to start one fail.
        .env("FEVER_PYTHON", "/nonexistent/python3")
        .env("PATH", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fever");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).map(|_| buf)
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = String::new();
        err.read_to_string(&mut buf).map(|_| buf)
    });
    let status = wait(&mut child, Duration::from_mins(2));
    Output {
        code: status.code(),
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    }
}

fn wait(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for fever") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fever did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("fever-show-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Building traces

/// The snapshot `write` encodes, as events carry it.
#[allow(clippy::unnecessary_wraps)] // events take `Option`s; a recorded snapshot is `Some`
fn snapshot(write: impl FnOnce(&mut Encoder<'_>)) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut e = Encoder::new(&mut buf);
    write(&mut e);
    e.finish();
    Some(buf)
}

fn args(fields: &[(&str, i64)]) -> Option<Vec<u8>> {
    snapshot(|e| {
        e.begin_args();
        for (name, value) in fields {
            e.field(name);
            e.int(*value);
        }
        e.end(0);
    })
}

fn str_args(name: &str, value: &str) -> Option<Vec<u8>> {
    snapshot(|e| {
        e.begin_args();
        e.field(name);
        e.str(value);
        e.end(0);
    })
}

fn int(value: i64) -> Option<Vec<u8>> {
    snapshot(|e| e.int(value))
}

fn string(value: &str) -> Option<Vec<u8>> {
    snapshot(|e| e.str(value))
}

fn none() -> Option<Vec<u8>> {
    snapshot(|e| {
        e.none();
    })
}

fn value_error(message: &str) -> Option<Vec<u8>> {
    snapshot(|e| {
        e.begin_exception("builtins", "ValueError", Some(message), 200);
        e.str(message);
        e.end(0);
    })
}

/// Events in file order, with times in nanoseconds from `T0`.
#[derive(Default)]
struct Events(Vec<Event>);

const T0: u64 = 7_000_000_000;
const MAIN: u64 = 111;
const WORKER: u64 = 222;

impl Events {
    fn call(&mut self, thread: u64, code: u32, t: u64, args: Option<Vec<u8>>) {
        self.0.push(Event::Call {
            code,
            thread,
            t_ns: T0 + t,
            args,
        });
    }

    fn ret(&mut self, thread: u64, code: u32, t: u64, value: Option<Vec<u8>>) {
        self.ret_flags(thread, code, t, value, 0);
    }

    fn ret_flags(&mut self, thread: u64, code: u32, t: u64, value: Option<Vec<u8>>, flags: u32) {
        self.0.push(Event::Return {
            code,
            flags,
            thread,
            t_ns: T0 + t,
            value,
        });
    }
}

const CODES: [(&str, &str, u32); 10] = [
    ("main", "/proj/app.py", 1),
    ("fact", "/proj/app.py", 10),
    ("gen", "/proj/app.py", 20),
    ("outer", "/proj/app.py", 30),
    ("middle", "/proj/app.py", 35),
    ("inner", "/proj/app.py", 40),
    ("parse", "/proj/app.py", 50),
    ("tokenize", "/proj/app.py", 55),
    ("worker", "/proj/worker.py", 1),
    ("hot", "/proj/app.py", 60),
];
const MAIN_FN: u32 = 0;
const FACT: u32 = 1;
const GEN: u32 = 2;
const OUTER: u32 = 3;
const MIDDLE: u32 = 4;
const INNER: u32 = 5;
const PARSE: u32 = 6;
const TOKENIZE: u32 = 7;
const WORKER_FN: u32 = 8;
const HOT: u32 = 9;

fn header() -> TraceHeader {
    TraceHeader {
        python_version: "3.12.1 (main, Jan  1 2024) [GCC 11.4.0]".into(),
        fever_version: "0.1.0".into(),
        root: "/proj".into(),
        argv: vec!["app.py".into(), "--n".into(), "3".into()],
        pid: 4242,
        started_unix_ns: 1_700_000_000_000_000_000,
        started_monotonic_ns: T0,
        options: vec![
            ("snapshots".into(), "all".into()),
            ("main_thread".into(), MAIN.to_string()),
        ],
    }
}

fn codes() -> Vec<CodeInfo> {
    (0u32..)
        .zip(CODES)
        .map(|(id, (qualname, file, first_line))| CodeInfo {
            id,
            module: "app".into(),
            qualname: qualname.into(),
            file: file.into(),
            first_line,
            code_hash: u64::from(id),
        })
        .collect()
}

/// The events of the realistic trace; see the module docs and `expected_tree`.
fn realistic_events() -> Vec<Event> {
    let mut e = Events::default();
    e.call(MAIN, MAIN_FN, 0, args(&[]));
    // Recursion: fact(3) [10, 70] µs > fact(2) [20, 60] > fact(1) [30, 50].
    e.call(MAIN, FACT, 10_000, args(&[("n", 3)]));
    e.call(MAIN, FACT, 20_000, args(&[("n", 2)]));
    e.call(MAIN, FACT, 30_000, args(&[("n", 1)]));
    e.ret(MAIN, FACT, 50_000, int(1));
    // The worker thread starts [50, 550] µs and calls tokenize [100, 200].
    e.call(WORKER, WORKER_FN, 50_000, None);
    e.ret(MAIN, FACT, 60_000, int(2));
    e.ret(MAIN, FACT, 70_000, int(6));
    e.call(WORKER, TOKENIZE, 100_000, None);
    // A generator: called [100, 110] (yields 2), resumed [120, 130] (yields 1), resumed
    // [140, 150] (returns).
    e.call(MAIN, GEN, 100_000, args(&[("n", 2)]));
    e.0.push(Event::Yield {
        code: GEN,
        thread: MAIN,
        t_ns: T0 + 110_000,
        value: int(2),
    });
    for (start, end, value) in [(120_000, 130_000, Some(1)), (140_000, 150_000, None)] {
        e.0.push(Event::Resume {
            code: GEN,
            thread: MAIN,
            t_ns: T0 + start,
        });
        match value {
            Some(v) => e.0.push(Event::Yield {
                code: GEN,
                thread: MAIN,
                t_ns: T0 + end,
                value: int(v),
            }),
            None => e.ret(MAIN, GEN, end, none()),
        }
    }
    e.ret(WORKER, TOKENIZE, 200_000, None);
    // An exception raised in inner [220, 250] unwinds middle [210, 280]; outer [200, 300]
    // catches it and returns, its argument mutated.
    e.call(MAIN, OUTER, 200_000, args(&[("x", 5)]));
    e.call(MAIN, MIDDLE, 210_000, args(&[("x", 5)]));
    e.call(MAIN, INNER, 220_000, args(&[("x", 5)]));
    e.0.push(Event::Raise {
        code: INNER,
        thread: MAIN,
        t_ns: T0 + 240_000,
        exception: value_error("bad 5"),
    });
    for (code, t) in [(INNER, 250_000), (MIDDLE, 280_000)] {
        e.0.push(Event::Unwind {
            code,
            flags: 0,
            thread: MAIN,
            t_ns: T0 + t,
        });
    }
    e.ret_flags(MAIN, OUTER, 300_000, string("caught"), MUTATED_ARGS);
    // 100 calls of parse, 4 µs each, each calling tokenize for 2 µs.
    for i in 0..100 {
        let t = 400_000 + i * 5_000;
        e.call(MAIN, PARSE, t, str_args("line", &format!("a b {i}")));
        e.call(MAIN, TOKENIZE, t + 1_000, None);
        e.ret(MAIN, TOKENIZE, t + 3_000, None);
        e.ret(MAIN, PARSE, t + 4_000, int(2));
        if i == 30 {
            e.ret(WORKER, WORKER_FN, 550_000, None);
        }
    }
    // hot: 1000 calls, the first 2 recorded.
    e.call(MAIN, HOT, 900_000, None);
    e.ret(MAIN, HOT, 901_000, None);
    e.call(MAIN, HOT, 902_000, None);
    e.ret(MAIN, HOT, 903_000, None);
    e.ret(MAIN, MAIN_FN, 1_000_000, none());
    e.0
}

fn realistic_stats() -> RunStats {
    let counts = [
        (1, 1),
        (3, 3),
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 1),
        (100, 100),
        (101, 101),
        (1, 1),
        (1000, 2),
    ];
    RunStats {
        calls: (0u32..)
            .zip(counts)
            .map(|(code, (calls, recorded))| CodeCalls {
                code,
                calls,
                recorded,
            })
            .collect(),
        lost_events: 3,
    }
}

/// Writes the realistic trace to `path` (small chunks, so it can be cut between them).
fn realistic(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        TraceWriter::with_chunk_size(std::io::BufWriter::new(file), &header(), 512).unwrap();
    for code in codes() {
        w.add_code(code).unwrap();
    }
    for event in realistic_events() {
        w.write_event(&event).unwrap();
    }
    w.write_stats(&realistic_stats()).unwrap();
    w.finish().unwrap();
}

fn realistic_in(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("run.trace");
    realistic(&path);
    path
}

/// Lines with runs of whitespace as one space.
fn squeezed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tree

fn expected_tree(exception: &str) -> Vec<String> {
    [
        "== thread 111 (main) ==",
        "app.main() → None  1.00 ms",
        "  app.fact(n=3) → 6  60.0 µs",
        "    app.fact(n=2) → 2  40.0 µs",
        "      app.fact(n=1) → 1  20.0 µs",
        "  app.gen(n=2) → 2 (suspended)  10.0 µs",
        "  app.gen(…) → 1 (resumed) (suspended)  10.0 µs",
        "  app.gen(…) → None (resumed)  10.0 µs",
        "  app.outer(x=5) → 'caught' (mutated args)  100 µs",
        "    app.middle(x=5) raised EXC  70.0 µs",
        "      app.inner(x=5) raised EXC  30.0 µs",
        "  app.parse(line='a b 0') → 2  [×100]  400 µs",
        "    app.tokenize(…)  [×100]  200 µs",
        "  app.hot(…)  [×2]  2.00 µs",
        "",
        "== thread 222 ==",
        "app.worker(…)  500 µs",
        "  app.tokenize(…)  100 µs",
    ]
    .iter()
    .map(|l| l.replace("EXC", exception))
    .collect()
}

/// How the snapshot module shows the exception of the realistic trace.
fn shown_exception() -> String {
    fever_core::snapshot::render_short(&value_error("bad 5").unwrap(), 60)
}

#[test]
fn tree_of_a_realistic_trace() {
    let dir = TempDir::new("tree");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace"]).ok();
    let exception = shown_exception();
    assert!(exception.contains("ValueError"), "{exception}");
    assert_eq!(
        out.stdout().lines().collect::<Vec<_>>(),
        expected_tree(&exception)
    );
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        stderr,
        [
            "fever: run.trace: Python 3.12.1, app.py --n 3, 1210 calls of 10 functions, 1.00 ms",
            "fever: warning: run.trace: 3 events were lost while recording (the recorder fell \
             behind); calls around them may show as unfinished",
        ],
        "{}",
        out.describe()
    );
}

#[test]
fn depth_and_max_lines() {
    let dir = TempDir::new("depth");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace", "--depth", "2"]).ok();
    let full = expected_tree(&shown_exception());
    let shallow: Vec<&String> = full.iter().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(out.stdout().lines().collect::<Vec<_>>(), shallow);

    let out = fever(dir.path(), &["show", "run.trace", "--max-lines", "3"]).ok();
    assert_eq!(
        out.stdout().lines().collect::<Vec<_>>(),
        [
            full[0].as_str(),
            full[1].as_str(),
            full[2].as_str(),
            full[3].as_str(),
            "… 12 more lines (use --max-lines)"
        ]
    );
    let out = fever(dir.path(), &["show", "run.trace", "--max-lines", "0"]).ok();
    assert_eq!(out.stdout().lines().count(), full.len());
}

#[test]
fn an_unfinished_trace_is_shown_with_a_warning() {
    let dir = TempDir::new("unfinished");
    let path = dir.path().join("cut.trace");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut w = TraceWriter::new(file, &header()).unwrap();
        for code in codes() {
            w.add_code(code).unwrap();
        }
        let mut e = Events::default();
        e.call(MAIN, MAIN_FN, 0, None);
        e.call(MAIN, FACT, 1_000, args(&[("n", 9)]));
        e.ret(MAIN, FACT, 3_000, int(1));
        e.call(MAIN, HOT, 4_000, None);
        for event in e.0 {
            w.write_event(&event).unwrap();
        }
        w.flush().unwrap();
        // Dropped without `finish`: no code table, no footer, as after a crash.
    }
    let out = fever(dir.path(), &["show", "cut.trace"]).ok();
    assert_eq!(
        out.stdout().lines().collect::<Vec<_>>(),
        [
            "== thread 111 (main) ==",
            "app.main(…) (unfinished)  4.00 µs",
            "  app.fact(n=9) → 1  2.00 µs",
            "  app.hot(…) (unfinished)  0 ns",
        ]
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with(
            "fever: warning: cut.trace is incomplete (the recording was cut short); showing the 4 \
             events before byte "
        )),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("3 calls of 3 functions"),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// The profile

#[test]
fn profile_numbers() {
    let dir = TempDir::new("profile");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace", "--profile"]).ok();
    // Totals count recursion once; self time excludes every span inside, including the
    // generator's stretches under main; hot's 1000 calls were recorded twice.
    assert_eq!(
        squeezed(&out.stdout()),
        [
            "calls total self total/call function",
            "1 1.00 ms 408 µs 1.00 ms app.main app.py:1",
            "1 500 µs 400 µs 500 µs app.worker worker.py:1",
            "100 400 µs 200 µs 4.00 µs app.parse app.py:50",
            "101 300 µs 300 µs 2.97 µs app.tokenize app.py:55",
            "1 100 µs 30.0 µs 100 µs app.outer app.py:30",
            "1 70.0 µs 40.0 µs 70.0 µs app.middle app.py:35",
            "3 60.0 µs 60.0 µs 20.0 µs app.fact app.py:10",
            "1 30.0 µs 30.0 µs 30.0 µs app.gen app.py:20",
            "1 30.0 µs 30.0 µs 30.0 µs app.inner app.py:40",
            "1000* 2.00 µs 2.00 µs 1.00 µs app.hot app.py:60",
            "* not every call was recorded (fever record --max-calls-per-function): times cover \
             the recorded ones",
        ],
        "{}",
        out.describe()
    );
    // Columns line up: every row is as wide as the header up to the function column.
    let lines: Vec<String> = out.stdout().lines().map(str::to_owned).collect();
    let column = lines[0].find("function").unwrap();
    for line in &lines[1..11] {
        let function: String = line.chars().skip(column).collect();
        assert!(
            function.starts_with("app."),
            "{line:?} misaligned\n{}",
            out.stdout()
        );
    }

    let out = fever(
        dir.path(),
        &["show", "run.trace", "--profile", "--limit", "3"],
    )
    .ok();
    let lines = squeezed(&out.stdout());
    assert_eq!(lines.len(), 5, "{}", out.describe());
    assert!(lines[3].ends_with("app.parse app.py:50"));
    assert_eq!(lines[4], "… 7 more functions (use --limit)");
}

// ---------------------------------------------------------------------------------------------
// Exports

/// A protobuf field value: varint or bytes.
#[derive(Debug, Clone, Copy)]
enum Field<'b> {
    Int(u64),
    Bytes(&'b [u8]),
}

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let byte = buf[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
    }
    panic!("varint too long");
}

/// One message's fields, in order; panics unless `buf` is exactly a sequence of fields.
fn decode(buf: &[u8]) -> Vec<(u32, Field<'_>)> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < buf.len() {
        let key = varint(buf, &mut at);
        let number = u32::try_from(key >> 3).unwrap();
        match key & 7 {
            0 => fields.push((number, Field::Int(varint(buf, &mut at)))),
            2 => {
                let len = usize::try_from(varint(buf, &mut at)).unwrap();
                fields.push((number, Field::Bytes(&buf[at..at + len])));
                at += len;
            }
            wire => panic!("wire type {wire}"),
        }
    }
    fields
}

fn field<'b>(fields: &[(u32, Field<'b>)], number: u32) -> Option<Field<'b>> {
    fields.iter().find(|(n, _)| *n == number).map(|(_, f)| *f)
}

fn int_field(fields: &[(u32, Field<'_>)], number: u32) -> Option<u64> {
    match field(fields, number)? {
        Field::Int(v) => Some(v),
        Field::Bytes(_) => None,
    }
}

fn bytes_field<'b>(fields: &[(u32, Field<'b>)], number: u32) -> Option<&'b [u8]> {
    match field(fields, number)? {
        Field::Bytes(b) => Some(b),
        Field::Int(_) => None,
    }
}

/// Spans of the realistic trace: main 1, fact 3, gen 3, outer/middle/inner 3, parse 100,
/// tokenize 100 + 1, hot 2, worker 1.
const SPANS: usize = 214;

/// The last stderr line of an export: `fever: wrote PATH (SIZE): open it at URL`.
fn wrote_line(out: &Output) -> String {
    out.stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn perfetto_export() {
    let dir = TempDir::new("perfetto");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace", "--format", "perfetto"]).ok();
    assert!(out.stdout.is_empty());
    let path = dir.path().join("run.pftrace");
    let data = std::fs::read(&path).unwrap();
    let wrote = wrote_line(&out);
    assert!(
        wrote.starts_with("fever: wrote run.pftrace (")
            && wrote.ends_with("): open it at https://ui.perfetto.dev"),
        "{wrote}"
    );
    assert!(!dir.path().join("run.pftrace.tmp").exists());

    // Trace.packet = 1; TracePacket: timestamp 8, trusted_packet_sequence_id 10,
    // track_event 11, interned_data 12, sequence_flags 13, track_descriptor 60.
    let packets: Vec<Vec<(u32, Field<'_>)>> = decode(&data)
        .into_iter()
        .map(|(number, packet)| {
            assert_eq!(number, 1);
            match packet {
                Field::Bytes(b) => decode(b),
                Field::Int(_) => panic!("a packet is a message"),
            }
        })
        .collect();
    assert_eq!(packets.len(), 1 + 2 + 2 * SPANS);
    assert_eq!(
        int_field(&packets[0], 13),
        Some(1),
        "SEQ_INCREMENTAL_STATE_CLEARED first"
    );
    let mut names = std::collections::HashMap::new();
    let mut depth = std::collections::HashMap::<u64, i64>::new();
    let mut thread_names = Vec::new();
    let mut begun = std::collections::HashMap::<String, usize>::new();
    for packet in &packets {
        assert_eq!(int_field(packet, 10), Some(1));
        if let Some(data) = bytes_field(packet, 12) {
            // InternedData.event_names = 2: EventName { iid = 1, name = 2 }.
            for (number, name) in decode(data) {
                if let (2, Field::Bytes(name)) = (number, name) {
                    let name = decode(name);
                    let text = String::from_utf8(bytes_field(&name, 2).unwrap().to_vec()).unwrap();
                    assert!(names.insert(int_field(&name, 1).unwrap(), text).is_none());
                }
            }
        }
        if let Some(track) = bytes_field(packet, 60) {
            // TrackDescriptor.thread = 4: ThreadDescriptor { pid 1, tid 2, thread_name 5 }.
            if let Some(thread) = bytes_field(&decode(track), 4) {
                let thread = decode(thread);
                assert_eq!(int_field(&thread, 1), Some(4242));
                let name = bytes_field(&thread, 5).unwrap();
                thread_names.push((
                    int_field(&thread, 2).unwrap(),
                    String::from_utf8(name.to_vec()).unwrap(),
                ));
            }
        }
        if let Some(event) = bytes_field(packet, 11) {
            // TrackEvent: type 9 (1 begin, 2 end), name_iid 10, track_uuid 11.
            let event = decode(event);
            let track = int_field(&event, 11).unwrap();
            let d = depth.entry(track).or_default();
            match int_field(&event, 9) {
                Some(1) => {
                    *d += 1;
                    let name = &names[&int_field(&event, 10).unwrap()];
                    *begun.entry(name.clone()).or_default() += 1;
                }
                Some(2) => *d -= 1,
                other => panic!("event type {other:?}"),
            }
            assert!(*d >= 0);
        }
    }
    assert!(depth.values().all(|&d| d == 0), "{depth:?}");
    assert_eq!(depth.len(), 2);
    assert_eq!(
        thread_names,
        [
            (4242, "thread 111 (main)".to_owned()),
            (4244, "thread 222".to_owned())
        ]
    );
    assert_eq!(names.len(), 10, "each name interned once: {names:?}");
    assert_eq!(begun["app.parse"], 100);
    assert_eq!(begun["app.tokenize"], 101);
    assert_eq!(begun["app.gen"], 3);

    // `-o -` writes the same bytes to stdout, and nothing next to the trace.
    std::fs::remove_file(&path).unwrap();
    let out = fever(
        dir.path(),
        &["show", "run.trace", "--format", "perfetto", "-o", "-"],
    )
    .ok();
    assert_eq!(out.stdout, data);
    assert!(!path.exists());
    assert!(!out.stderr.contains("wrote"));
}

#[test]
fn chrome_export() {
    let dir = TempDir::new("chrome");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace", "--format", "chrome"]).ok();
    let wrote = wrote_line(&out);
    assert!(
        wrote.starts_with("fever: wrote run.chrome.json (")
            && wrote.contains("open it at https://ui.perfetto.dev"),
        "{wrote}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.chrome.json")).unwrap())
            .unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert_eq!((count("B"), count("E")), (SPANS, SPANS));
    assert!(events.iter().all(|e| e["pid"] == 4242));
    let thread_names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(thread_names, ["thread 111 (main)", "thread 222"]);
    let fact = events
        .iter()
        .find(|e| e["ph"] == "B" && e["name"] == "app.fact")
        .unwrap();
    assert_eq!(fact["args"]["args"], "n=3");
    assert_eq!(fact["tid"], 4242);
    assert!((fact["ts"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    let inner_end = events
        .iter()
        .filter(|e| e["ph"] == "E")
        .find(|e| e["args"]["exception"].is_string())
        .unwrap();
    assert!(inner_end["args"]["exception"]
        .as_str()
        .unwrap()
        .contains("ValueError"));
    assert_eq!(doc["otherData"]["command"], "python app.py --n 3");

    let custom = dir.path().join("sub");
    std::fs::create_dir(&custom).unwrap();
    let out = fever(
        dir.path(),
        &[
            "show",
            "run.trace",
            "--format",
            "chrome",
            "-o",
            "sub/x.json",
        ],
    )
    .ok();
    assert!(wrote_line(&out).starts_with("fever: wrote sub/x.json ("));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(custom.join("x.json")).unwrap()).unwrap();
    assert_eq!(again, doc);
}

#[test]
fn speedscope_export() {
    let dir = TempDir::new("speedscope");
    realistic_in(&dir);
    let out = fever(dir.path(), &["show", "run.trace", "--format", "speedscope"]).ok();
    let wrote = wrote_line(&out);
    assert!(
        wrote.starts_with("fever: wrote run.speedscope.json (")
            && wrote.ends_with("open it at https://www.speedscope.app"),
        "{wrote}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.speedscope.json")).unwrap())
            .unwrap();
    assert_eq!(
        doc["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let frames = doc["shared"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 10);
    assert_eq!(frames[8]["name"], "app.worker");
    assert_eq!(frames[8]["file"], "/proj/worker.py");
    let profiles = doc["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(doc["activeProfileIndex"], 0);
    assert_eq!(profiles[0]["name"], "thread 111 (main)");
    let mut total = 0;
    for profile in profiles {
        let mut stack = Vec::new();
        let mut last = 0;
        for event in profile["events"].as_array().unwrap() {
            let at = event["at"].as_u64().unwrap();
            assert!(at >= last);
            last = at;
            let frame = event["frame"].as_u64().unwrap();
            match event["type"].as_str().unwrap() {
                "O" => stack.push(frame),
                "C" => assert_eq!(stack.pop(), Some(frame)),
                other => panic!("{other}"),
            }
            total += 1;
        }
        assert!(stack.is_empty());
        assert!(profile["endValue"].as_u64().unwrap() >= last);
    }
    assert_eq!(total, 2 * SPANS);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = TempDir::new("pipe");
    let path = dir.path().join("wide.trace");
    let mut w = TraceWriter::create(&path, &header()).unwrap();
    for code in codes() {
        w.add_code(code).unwrap();
    }
    // 20,000 alternating calls: nothing collapses, the tree is far bigger than a pipe buffer.
    let mut e = Events::default();
    for i in 0..20_000 {
        let code = u32::try_from(i % 2).unwrap() + 1;
        e.call(MAIN, code, i * 10, None);
        e.ret(MAIN, code, i * 10 + 5, None);
    }
    for event in e.0 {
        w.write_event(&event).unwrap();
    }
    w.finish().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fever"))
        .args(["show", "wide.trace", "--max-lines", "0"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed now (like `| head`).
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = wait(&mut child, Duration::from_mins(2));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Unreadable traces

/// Asserts exit 2 with one `fever: error: PATH: ...` line first on stderr, nothing on stdout,
/// and no export file left behind; returns the error line.
fn assert_error(dir: &Path, name: &str, args: &[&str]) -> String {
    let mut argv = vec!["show", name];
    argv.extend(args);
    let out = fever(dir, &argv);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let first = out.stderr.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with(&format!("fever: error: {name}: ")),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".pftrace") || n.contains(".json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    first
}

#[test]
fn unreadable_traces_are_errors() {
    let dir = TempDir::new("errors");
    let good = realistic_in(&dir);
    let data = std::fs::read(&good).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();

    write("empty.trace", b"");
    let mut random = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        random.push(x.to_le_bytes()[2]);
    }
    write("random.trace", &random);
    write("header-cut.trace", &data[..40]);
    let mut flipped = data.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x04;
    write("flipped.trace", &flipped);
    let mut future = data.clone();
    future[8..12].copy_from_slice(&99u32.to_le_bytes());
    write("future.trace", &future);
    std::fs::create_dir(dir.path().join("folder.trace")).unwrap();

    for args in [&[][..], &["--profile"], &["--format", "perfetto"]] {
        let e = assert_error(dir.path(), "empty.trace", args);
        assert!(e.ends_with("empty file, not a fever trace"), "{e}");
        let e = assert_error(dir.path(), "random.trace", args);
        assert!(e.ends_with("not a fever trace (bad magic)"), "{e}");
        let e = assert_error(dir.path(), "header-cut.trace", args);
        assert!(e.contains("truncated"), "{e}");
        let e = assert_error(dir.path(), "flipped.trace", args);
        assert!(e.contains("checksum") || e.contains("corrupted"), "{e}");
        let e = assert_error(dir.path(), "future.trace", args);
        assert!(e.contains("version 99"), "{e}");
        let e = assert_error(dir.path(), "folder.trace", args);
        assert!(e.ends_with("is a directory, not a trace file"), "{e}");
        let e = assert_error(dir.path(), "missing.trace", args);
        assert!(e.ends_with("no such file"), "{e}");
    }
}

#[test]
fn every_cut_of_a_trace_is_an_error_or_a_warning() {
    let dir = TempDir::new("cuts");
    let good = realistic_in(&dir);
    let data = std::fs::read(&good).unwrap();
    let mut readable = 0;
    for cut in (1..data.len()).step_by(data.len() / 16) {
        std::fs::write(dir.path().join("cut.trace"), &data[..cut]).unwrap();
        let out = fever(dir.path(), &["show", "cut.trace", "--profile"]);
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        match out.code {
            Some(0) => {
                readable += 1;
                assert!(
                    out.stderr
                        .contains("fever: warning: cut.trace is incomplete"),
                    "{}",
                    out.describe()
                );
            }
            Some(2) => assert!(
                out.stderr.starts_with("fever: error: cut.trace: "),
                "{}",
                out.describe()
            ),
            other => panic!("exit {other:?}\n{}", out.describe()),
        }
    }
    assert!(
        readable > 10,
        "cuts after the header read as incomplete traces"
    );
}

#[test]
fn contradicting_options_are_usage_errors() {
    let dir = TempDir::new("usage");
    realistic_in(&dir);
    let out = fever(
        dir.path(),
        &["show", "run.trace", "--profile", "--format", "chrome"],
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--profile"), "{}", out.describe());
    let out = fever(dir.path(), &["show", "run.trace", "-o", "run.trace"]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("is the trace being shown"),
        "{}",
        out.describe()
    );
    assert!(!std::fs::read(dir.path().join("run.trace"))
        .unwrap()
        .is_empty());
}
