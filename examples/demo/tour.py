#!/usr/bin/env python3
"""`make demo`: a scripted tour of fever's hot reload, about 15 seconds.

It copies shop.py (next to this file) into a temporary directory, starts `fever run shop.py` there
(the `fever` installed next to this Python), shows the program's output live, and edits the copy
on disk the way you would in an editor:

  1. price_with_tax() charges 10 % tax instead of 20 %   (a function)
  2. Cart.total() takes 10 % off                        (a method of an object that already exists)
  3. a bad save with a syntax error                      (fever says so; the program keeps running)
  4. the fix                                             (applies like any other save)

After each save the next lines show the new total while the order counter keeps counting: the
program is never restarted. Then it stops the program with Ctrl-C (SIGINT) and cleans up.
The bundled shop.py is never modified. Set NO_COLOR=1 for plain output.
"""

from __future__ import annotations

import difflib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "shop.py"
STEP_TIMEOUT = 5.0  # s: longest wait for anything fever or the program should print
TOUR_LIMIT = 20.0  # s: the whole tour
READ_PAUSE = 1.2  # s: between showing an edit and saving it, so it can be read

# ----------------------------------------------------------------------------------------------
# Output: every line says where it comes from; colour is optional decoration.

USE_COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if USE_COLOR else text


BOLD, DIM, GREEN, RED, CYAN, YELLOW = "1", "2", "32", "31", "36", "33"
T0 = time.monotonic()


def stamp() -> str:
    return paint(f"{time.monotonic() - T0:5.1f}s", DIM)


def say(text: str) -> None:
    """Narration of the tour."""
    print(f"{stamp()} {paint('>>> ' + text, BOLD + ';' + CYAN)}", flush=True)


def note(text: str) -> None:
    print(f"{stamp()}     {text}", flush=True)


def show_program(line: str) -> None:
    print(f"{stamp()}   {paint('program |', DIM)} {line}", flush=True)


def show_fever(line: str) -> None:
    if line.startswith("fever: reloaded"):
        m = re.search(r"\((\d+(?:\.\d+)?) ms\)", line)
        extra = f"   <== new code installed {m.group(1)} ms after the save was noticed" if m else ""
        print(f"{stamp()}   {paint('fever   |', DIM)} {paint(line, BOLD + ';' + GREEN)}{paint(extra, GREEN)}", flush=True)
    elif line.startswith("fever: error"):
        print(f"{stamp()}   {paint('fever   |', DIM)} {paint(line, BOLD + ';' + RED)}"
              f"{paint('   <== bad save rejected, old code keeps running', RED)}", flush=True)
    else:
        print(f"{stamp()}   {paint('fever   |', DIM)} {paint(line, YELLOW)}", flush=True)


def show_diff(old: str, new: str) -> None:
    for d in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if d.startswith(("---", "+++", "@@")):
            continue
        colour = GREEN if d.startswith("+") else RED
        print(f"          {paint(d[0] + ' ' + d[1:], colour)}", flush=True)


class TourFailed(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# The program under fever


class Program:
    """`fever run shop.py` in its own process group; its output lines arrive on a queue."""

    def __init__(self, fever: Path, workdir: Path):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([str(fever), "run", "shop.py"], cwd=str(workdir), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        self.events: queue.Queue = queue.Queue()
        self.stderr_seen: list[str] = []
        self.orders: list[tuple[int, str]] = []  # (order number, total) as printed
        for stream, kind in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            threading.Thread(target=self._read, args=(stream, kind), daemon=True).start()

    def _read(self, stream, kind):
        for line in stream:
            self.events.put((kind, line.rstrip("\n")))
        self.events.put((kind, None))

    def pump(self, seconds: float = 0.0, until=None, what: str = "") -> tuple[str, str] | None:
        """Show output for `seconds`, or until `until(kind, line)` is true (then return that line).

        With `until`, `seconds` is the timeout and running out of it raises TourFailed.
        """
        deadline = time.monotonic() + seconds
        closed = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if until is not None:
                    raise TourFailed(f"timed out after {seconds:.0f} s waiting for {what}")
                return None
            try:
                kind, line = self.events.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            if line is None:
                closed += 1
                if closed == 2:  # both streams drained: the program has ended
                    try:
                        self.proc.wait(timeout=STEP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        pass
                    if until is not None:
                        raise TourFailed(f"the program exited (code {self.proc.returncode}) while waiting for {what}")
                    return None
                continue
            if kind == "out":
                show_program(line)
                m = re.match(r"order #(\d+): .*total (\S+)", line)
                if m:
                    self.orders.append((int(m.group(1)), m.group(2)))
            else:
                show_fever(line)
                self.stderr_seen.append(line)
            if until is not None and until(kind, line):
                return kind, line

    def last_order(self) -> tuple[int, str]:
        if not self.orders:
            raise TourFailed("the program has not printed an order yet")
        return self.orders[-1]

    def stop(self, sig=signal.SIGINT) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.pump(STEP_TIMEOUT, until=lambda k, l: False, what="the program to stop")
        except TourFailed:
            pass
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass


def save(path: Path, text: str, how: str) -> None:
    if how == "in place":
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    else:  # like most editors: write a temporary file, then rename it over the original
        tmp = path.with_name("." + path.name + ".swp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise TourFailed(f"shop.py does not contain exactly one {old.strip()!r}; was it edited?")
    return text.replace(old, new)


# ----------------------------------------------------------------------------------------------
# The tour


def edit_step(prog: Program, path: Path, title: str, old: str, new: str, how: str, reload_ms: list) -> None:
    before = path.read_text(encoding="utf-8")
    after = replace_once(before, old, new)
    n0, total0 = prog.last_order()
    say(f"editing shop.py: {title}")
    show_diff(before, after)
    prog.pump(READ_PAUSE)  # time to read the change while the program keeps printing
    note(f"saving shop.py ({how})")
    save(path, after, how)
    _, line = prog.pump(STEP_TIMEOUT, what="fever's `reloaded` message",
                        until=lambda k, l: k == "err" and (l.startswith("fever: reloaded") and "ms)" in l
                                                          or l.startswith("fever: error")))
    if line.startswith("fever: error"):
        raise TourFailed(f"fever rejected a good save: {line}")
    m = re.search(r"\((\d+(?:\.\d+)?) ms\)", line)
    if m:
        reload_ms.append(float(m.group(1)))
    n_before = prog.last_order()[0]
    prog.pump(STEP_TIMEOUT, what="an order with the new total",
              until=lambda k, l: k == "out" and prog.orders and prog.orders[-1][0] > n_before
              and prog.orders[-1][1] != total0)
    n1, total1 = prog.last_order()
    note(paint(f"order #{n1} costs {total1} instead of {total0}: the new code runs in the same process, "
               f"and the counter carries on from #{n1 - 1}", GREEN))


def bad_save_step(prog: Program, path: Path) -> str:
    good = path.read_text(encoding="utf-8")
    bad = replace_once(good, "    return round(price * 1.10, 2)\n", "    return round(price * 1.10, 2\n")
    n0, total0 = prog.last_order()
    say("a bad save: a closing parenthesis goes missing in price_with_tax()")
    show_diff(good, bad)
    prog.pump(READ_PAUSE)
    note("saving shop.py (in place)")
    save(path, bad, "in place")
    _, line = prog.pump(STEP_TIMEOUT, what="fever's error message",
                        until=lambda k, l: k == "err" and l.startswith(("fever: error", "fever: reloaded")))
    if line.startswith("fever: reloaded"):
        raise TourFailed(f"fever reloaded a file with a syntax error: {line}")
    n_err = prog.last_order()[0]
    prog.pump(STEP_TIMEOUT, what="two more orders", until=lambda k, l: k == "out" and prog.orders
              and prog.orders[-1][0] >= n_err + 2)
    n1, total1 = prog.last_order()
    if total1 != total0:
        raise TourFailed(f"the total changed from {total0} to {total1} after a bad save")
    note(paint(f"the program kept running the last good code: orders #{n_err + 1}..#{n1} still cost {total1}", GREEN))
    return good


def main() -> int:
    fever = Path(sys.executable).parent / "fever"
    if not fever.exists():
        print(f"tour: {fever} not found; run `make venv` first (the tour runs with .venv/bin/python)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fever-demo-"))
    shop = work / "shop.py"
    shutil.copyfile(EXAMPLE, shop)
    prog = None
    reload_ms: list[float] = []
    try:
        print(paint("fever tour: hot reload of a running program", BOLD))
        print("  lines marked 'program |' are shop.py's own output, 'fever   |' are fever's messages,")
        print("  '>>>' is this tour narrating; the seconds on the left count from the start.")
        say(f"starting: fever run shop.py   (a copy of examples/demo/shop.py in {work})")
        prog = Program(fever, work)
        _, line = prog.pump(10.0, what="the program to start", until=lambda k, l: k == "out" and "shop open" in l)
        m = re.search(r"pid (\d+)", line)
        pid = int(m.group(1)) if m else None
        prog.pump(STEP_TIMEOUT, what="three orders", until=lambda k, l: len(prog.orders) >= 3)

        edit_step(prog, shop, "price_with_tax() charges 10 % tax instead of 20 %",
                  "    return round(price * 1.20, 2)\n", "    return round(price * 1.10, 2)\n",
                  "in place", reload_ms)
        prog.pump(0.8)
        edit_step(prog, shop, "Cart.total() takes 10 % off (the cart object was created before the edit)",
                  "        return round(sum(price_with_tax(price) * qty for _, price, qty in self.items), 2)\n",
                  "        subtotal = sum(price_with_tax(price) * qty for _, price, qty in self.items)\n"
                  "        return round(subtotal * 0.90, 2)  # 10 % off\n",
                  "like most editors: temp file + rename", reload_ms)
        prog.pump(0.8)
        bad_save_step(prog, shop)
        edit_step(prog, shop, "fix the parenthesis, and make it 5 % tax while we are at it",
                  "    return round(price * 1.10, 2\n", "    return round(price * 1.05, 2)\n",
                  "in place", reload_ms)
        prog.pump(0.8)

        say("stopping the program with Ctrl-C (SIGINT)")
        first, last = prog.orders[0][0], prog.orders[-1][0]
        code = prog.stop()
        if code is None:
            raise TourFailed(f"the program did not stop within {STEP_TIMEOUT:.0f} s of SIGINT")
        times = ", ".join(f"{x:.1f} ms" for x in reload_ms) or "not printed"
        same = f"pid {pid}, the process fever run started" if pid == prog.proc.pid else f"pid {pid}"
        print()
        print(paint("what you saw:", BOLD))
        print(f"  - 3 saves applied to the running program (fever's reload times: {times})")
        print(f"  - 1 bad save rejected with a clear error; the program kept running the last good code")
        print(f"  - one process ({same}) printed orders #{first} to #{last} without a restart; "
              f"it exited with code {code}")
        elapsed = time.monotonic() - T0
        print(f"  - elapsed: {elapsed:.1f} s" + (f" (longer than the {TOUR_LIMIT:.0f} s this tour should take)"
                                                 if elapsed > TOUR_LIMIT else ""))
        print("  try it yourself: .venv/bin/fever run examples/demo/shop.py, then edit and save it")
        return 0
    except TourFailed as e:
        print(paint(f"tour: FAILED: {e}", BOLD + ";" + RED), file=sys.stderr)
        if prog is not None and prog.stderr_seen:
            print("tour: fever's last messages:", file=sys.stderr)
            for l in prog.stderr_seen[-8:]:
                print(f"tour:   {l}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ntour: interrupted", file=sys.stderr)
        return 130
    finally:
        if prog is not None:
            prog.kill()
        shutil.rmtree(work, ignore_errors=True)


def _on_term(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    sys.exit(main())
