"""`fever replay`: how fast a warm program re-runs a segment, and what recording under replay costs.

- warm replay latency: the program side (`fever _replay-serve`) runs `examples/slow_boot` once;
  then a replay of `app.summarize` is asked over the control socket N times, PAUSE apart (a user
  pressing `r`), each timed from the request leaving to the result (the end call's locals and
  return value) arriving: the child (a standby forked ahead while the program idles), the call
  re-run in it, snapshots, the pipe, the socket. The UI adds one frame to this (see the frame
  time). Compared with plain `python app.py`, the cold run a replay saves.
- the same on a program holding ~1 GB (a 1 GiB bytearray, every page written, and 1 M small
  tuples), the case `gc.freeze()` and copy-on-write are for; also back to back (each request
  sent as soon as the last result arrived), where the request waits for the next standby's fork,
  i.e. what a replay costs when it has to fork (the page-table copy).
- UI frame time on a million calls: `cargo bench -p fever-cli --bench replay_ui` (ratatui's
  TestBackend, 200×60 cells, a recording of 1,000,000 calls), the mean of one run of 200 frames.
- recording overhead under replay against `fever record`: the in-script time of
  `workloads/tracing_walk.py` (4.5 M calls with container arguments) under plain python,
  `fever record` and the replay program side (which also keeps the first 16 calls of each
  function for replays).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (BENCHES, REPO, Ctx, bench_env, fmt_ms, fmt_ratio, fmt_s, log, md_table, median, run_capture,
                    time_process)

NAME = "replay"
TITLE = "`fever replay`: warm replay latency, frame time, recording overhead"
GOAL_REPLAY_MS = 50.0
GOAL_FRAME_MS = 16.0
# Between two replays, as a user pressing `r` (the standby fork happens meanwhile).
PAUSE_S = 0.25

BIG = '''
import time

blob = bytearray(b"x") * (1 << 30)
rows = [(i, str(i)) for i in range(1_000_000)]


def step(rows):
    return sum(i for i, _ in rows[:1000])


print("step", step(rows))
'''


def _frame(tag: int, body: bytes = b"") -> bytes:
    return struct.pack("<I", len(body) + 2) + bytes([2, tag]) + body


def _text(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<I", len(data)) + data


def _receive(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise EOFError("the program side closed the connection")
            out += chunk
        return out
    (length,) = struct.unpack("<I", exact(4))
    payload = exact(length)
    return payload[1], payload[2:]


def _serve(ctx: Ctx, cwd: Path, script: str, stdout) -> tuple[subprocess.Popen, socket.socket, Path]:
    directory = Path(tempfile.mkdtemp(prefix="fever-bench-replay-"))
    sock_path = directory / "control.sock"
    p = subprocess.Popen([str(ctx.fever), "_replay-serve", "--control", str(sock_path), "--trace",
                          str(directory / "run.trace"), "--keep-first", "16", "--no-watch", script],
                         cwd=cwd, env=bench_env(), stdout=stdout, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(str(sock_path))
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError("the program side did not start")
            time.sleep(0.01)
    s.settimeout(300)
    return p, s, directory


def _stop(p: subprocess.Popen, s: socket.socket, directory: Path) -> None:
    try:
        s.sendall(_frame(4))
        p.wait(30)
    finally:
        s.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _replays(ctx: Ctx, cwd: Path, script: str, function: str, n: int,
             pause: float = PAUSE_S) -> tuple[list[float], float]:
    """Latencies (ms) of `n` replays of `function#1`, `pause` s apart (the first too, after the
    first run), and the first run's wall time (s)."""
    started = time.perf_counter()
    p, s, directory = _serve(ctx, cwd, script, subprocess.DEVNULL)
    try:
        tag, _ = _receive(s)
        first_run = time.perf_counter() - started
        if tag != 102:
            raise RuntimeError(f"expected Finished, got tag {tag}")
        body = _text(function) + struct.pack("<I", 1) + _text(function) + struct.pack("<I", 1) + b"\x00" + _text("pdb")
        latencies = []
        for _ in range(n):
            time.sleep(pause)
            t0 = time.perf_counter()
            s.sendall(_frame(2, body))
            tag, reply = _receive(s)
            latencies.append((time.perf_counter() - t0) * 1e3)
            if tag != 103 or reply[0] != 1:
                raise RuntimeError(f"the replay did not return: tag {tag}")
    finally:
        _stop(p, s, directory)
    return latencies, first_run


RAW_FORK = """
import gc, os, time
blob = bytearray(b"x") * (1 << 30)
rows = [(i, str(i)) for i in range(1_000_000)]
best = None
for _ in range(5):
    gc.freeze()
    t = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"x")
        os._exit(0)
    os.read(r, 1)
    ms = (time.perf_counter() - t) * 1e3
    os.waitpid(pid, 0)
    gc.unfreeze()
    best = ms if best is None else min(best, ms)
print(best)
"""


def _raw_fork_ms(ctx: Ctx) -> float:
    """Best of 5: `os.fork()` to the child running, in a plain python holding the same ~1 GB."""
    r = run_capture([str(ctx.python), "-c", RAW_FORK], timeout=300, env=bench_env())
    return float(r.stdout.strip().splitlines()[-1])


def _in_script(out: str) -> float:
    m = re.search(r"in-script seconds: ([\d.]+)", out)
    if not m:
        raise RuntimeError(f"no in-script time in {out[-500:]!r}")
    return float(m[1])


def _overhead(ctx: Ctx, rounds: int) -> dict:
    script = str(BENCHES / "workloads" / "tracing_walk.py")
    times = {"python": [], "fever record": [], "fever replay (program side)": []}
    with tempfile.TemporaryDirectory(prefix="fever-bench-replay-rec-") as tmp:
        for i in range(rounds):
            r = run_capture([str(ctx.python), script], timeout=600, cwd=tmp, env=bench_env())
            times["python"].append(_in_script(r.stdout))
            r = run_capture([str(ctx.fever), "record", "-q", "-o", os.path.join(tmp, "t.trace"), script],
                            timeout=600, cwd=tmp, env=bench_env())
            times["fever record"].append(_in_script(r.stdout))
            with tempfile.TemporaryFile("w+") as out:
                p, s, directory = _serve(ctx, Path(tmp), script, out)
                try:
                    _receive(s)
                finally:
                    _stop(p, s, directory)
                out.seek(0)
                times["fever replay (program side)"].append(_in_script(out.read()))
            log(f"overhead round {i + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
    return {k: min(v) for k, v in times.items()}


def _frame_time() -> dict:
    env = dict(os.environ, CARGO_TARGET_DIR=str(REPO / "target" / "rust"))
    r = run_capture(["cargo", "bench", "--quiet", "-p", "fever-cli", "--bench", "replay_ui"],
                    timeout=1800, cwd=REPO, env=env)
    m = re.search(r"calls=(\d+) load_ms=([\d.]+) frame_ms=([\d.]+) open_x_ms=([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError(f"no frame time in the bench's output: {r.stdout[-1000:]} {r.stderr[-2000:]}")
    return {"calls": int(m[1]), "load_ms": float(m[2]), "frame_ms": float(m[3]), "open_ms": float(m[4])}


def run(ctx: Ctx) -> dict:
    n = ctx.rounds(20, 10)
    with tempfile.TemporaryDirectory(prefix="fever-bench-replay-") as tmp:
        app = Path(tmp) / "slow_boot"
        shutil.copytree(REPO / "examples" / "slow_boot", app)
        cold = min(time_process([str(ctx.python), "app.py"], cwd=app, timeout=120).wall
                   for _ in range(ctx.rounds(3, 2)))
        latencies, _ = _replays(ctx, app, "app.py", "app.summarize", n)
        log(f"slow_boot: replay median {median(latencies):.1f} ms; cold run {cold:.3f} s")
        (Path(tmp) / "big.py").write_text(BIG)
        big, big_first = _replays(ctx, Path(tmp), "big.py", "__main__.step", n)
        log(f"1 GB: replay median {median(big):.1f} ms (first run {big_first:.1f} s)")
        big_now, _ = _replays(ctx, Path(tmp), "big.py", "__main__.step", n, pause=0.0)
        log(f"1 GB back to back: replay median {median(big_now):.1f} ms")
    return {
        "n": n,
        "cold_s": cold,
        "replay_ms": latencies,
        "big_ms": big,
        "big_now_ms": big_now,
        "raw_fork_ms": _raw_fork_ms(ctx),
        "overhead": _overhead(ctx, ctx.rounds(5, 3)),
        "frame": _frame_time(),
    }


def render(res: dict) -> str:
    m, big = median(res["replay_ms"]), median(res["big_ms"])
    o = res["overhead"]
    f = res["frame"]
    rows = [
        [f"replay of `app.summarize` on slow_boot, warm (request → locals and value back), "
         f"{PAUSE_S:g} s apart",
         f"{fmt_ms(m)} median, {fmt_ms(min(res['replay_ms']))} best, {fmt_ms(max(res['replay_ms']))} worst "
         f"({res['n']} replays)",
         f"plain `python app.py` (cold, loads again): {fmt_s(res['cold_s'])}, "
         f"{res['cold_s'] * 1e3 / m:.0f}× the replay"],
        ["the same on a program holding ~1 GB (1 GiB bytearray written + 1 M tuples)",
         f"{fmt_ms(big)} median, {fmt_ms(min(res['big_ms']))} best, {fmt_ms(max(res['big_ms']))} worst",
         f"a bare `os.fork()` of plain python holding the same: {fmt_ms(res['raw_fork_ms'])} (best of 5)"],
        ["the same, back to back (each replay waits for the next standby's fork)",
         f"{fmt_ms(median(res['big_now_ms']))} median, {fmt_ms(min(res['big_now_ms']))} best, "
         f"{fmt_ms(max(res['big_now_ms']))} worst", "what a replay costs when it has to fork"],
        [f"UI frame on {f['calls']:,} calls (200×60 cells, TestBackend)", fmt_ms(f["frame_ms"], 2),
         f"building the tree: {fmt_ms(f['load_ms'], 0)} once; opening a [×333,333] line: {fmt_ms(f['open_ms'])}"],
        ["`tracing_walk.py` in-script: python / `fever record` / replay program side",
         f"{fmt_s(o['python'])} / {fmt_s(o['fever record'])} / {fmt_s(o['fever replay (program side)'])}",
         f"replay ÷ record: {fmt_ratio(o['fever replay (program side)'] / o['fever record'])}; "
         f"record ÷ python: {fmt_ratio(o['fever record'] / o['python'])}"],
    ]
    return "\n".join([
        md_table(["measured", "time", "compared"], rows), "",
        "Replays are timed at the control socket (what `fever replay`'s UI waits for before drawing the "
        "values pane; drawing is one frame more). While the program idles after its first run (no "
        "thread of its own alive, no reload since), a standby child is forked ahead and waits for the "
        "next request, so the page-table copy of the fork, which grows with the memory held, is off "
        "the replay's path. pyttd restores a checkpoint in 50–300 ms (its own "
        "figures, not measured here). The recording under replay is `fever record`'s tracer with the "
        "replay hooks: the first 16 calls of each function keep references to their arguments.",
    ])


def summary(res: dict) -> list[list[str]]:
    m, big, frame = median(res["replay_ms"]), median(res["big_ms"]), res["frame"]["frame_ms"]
    o = res["overhead"]
    ratio = o["fever replay (program side)"] / o["fever record"]
    return [
        ["`fever replay`: request → end call's values, slow_boot, warm", f"≤{GOAL_REPLAY_MS:.0f} ms",
         fmt_ms(m), "yes" if m <= GOAL_REPLAY_MS else "no"],
        ["`fever replay`: the same holding ~1 GB", f"≤{GOAL_REPLAY_MS:.0f} ms", fmt_ms(big),
         "yes" if big <= GOAL_REPLAY_MS else "no"],
        ["`fever replay` UI frame on 1 M calls", f"≤{GOAL_FRAME_MS:.0f} ms", fmt_ms(frame, 2),
         "yes" if frame <= GOAL_FRAME_MS else "no"],
        ["recording under replay vs `fever record`", "the same", fmt_ratio(ratio),
         "yes" if ratio <= 1.05 else "no"],
    ]


if __name__ == "__main__":
    sys.exit("run through benches/run.py --only replay")
