"""`fever replay`'s full-screen UI, driven in tmux like a user would: keys in (`send-keys`), the
screen out (`capture-pane`). Each test runs the UI on the small program of test_replay.py in a
tmux server of its own, waits (with a timeout) for what the screen should show, and kills the
server at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import FEVER, edit, write
from test_replay import PROGRAM

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Tmux:
    """One tmux server with one window running `command` in `cwd`."""

    def __init__(self, cwd, command: str, width: int = 200, height: int = 70):
        self.server = f"fever-test-{uuid.uuid4().hex[:8]}"
        self.run("new-session", "-d", "-s", "ui", "-x", str(width), "-y", str(height), "-c", str(cwd),
                 command + "; echo EXIT=$?; sleep 120")

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True,
                              timeout=10).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", "ui", key)
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "ui", "-l", text)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ui")

    def wait_for(self, pattern: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen, re.M):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {pattern!r}; the screen:\n{screen}\n"
                            f"fever's processes (state, kernel wait channel):\n{processes()}", pytrace=False)
            time.sleep(0.1)

    def flag(self, name: str) -> str:
        return self.run("display-message", "-p", "-t", "ui", "#{" + name + "}").strip()

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True, timeout=10)


def processes() -> str:
    """fever's processes with their state and kernel wait channel: what a timeout shows."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:24,etime,args"], capture_output=True, text=True,
                         timeout=10).stdout.splitlines()
    return "\n".join(out[:1] + [line for line in out[1:] if "fever" in line and "pytest" not in line])


@pytest.fixture
def ui(tmp_path):
    sessions = []

    def start(*args: str, program: str = PROGRAM, ready: str | None = r"stays warm: mark a call with s") -> Tmux:
        write(tmp_path / "prog.py", program)
        command = " ".join(shlex.quote(a) for a in [str(FEVER), "replay", *args, "prog.py"])
        session = Tmux(tmp_path, f"cd {shlex.quote(str(tmp_path))} && {command}")
        sessions.append(session)
        if ready:
            session.wait_for(ready)
        return session

    yield start
    for session in sessions:
        session.kill()


def select(t: Tmux, name: str) -> None:
    t.keys("/")
    t.type(name)
    t.keys("Enter")
    t.wait_for(rf"^/{name}\s*$")


def in_pdb(t: Tmux, command: str, printed: str, timeout: float = 20.0) -> str:
    """Waits for pdb to have the terminal (the UI left its screen), runs `command`, waits for
    `printed`, continues with `c`, and waits for the UI's screen to be back; the pdb screen."""
    t.wait_for(r"^\(Pdb\)", timeout)
    assert t.flag("alternate_on") == "0"
    t.type(command)
    t.keys("Enter")
    screen = t.wait_for(printed)
    t.type("c")
    t.keys("Enter")
    deadline = time.monotonic() + timeout
    while t.flag("alternate_on") != "1":
        assert time.monotonic() < deadline, f"the UI did not take the screen back:\n{t.screen()}"
        time.sleep(0.1)
    return screen


def test_navigate_search_pick_and_replay(ui):
    t = ui()
    screen = t.screen()
    assert "__main__.main()" in screen and "[×2]" in screen, screen
    assert "loading" in screen  # the program's output pane
    select(t, "outer")
    t.keys("s")
    t.wait_for(r"start: __main__\.outer#1")
    t.keys("Down", "x", "Down", "Down", "e")
    t.wait_for(r"end: __main__\.inner#2")
    t.keys("r")
    screen = t.wait_for(r"recorded: the same")
    assert "k = 4" in screen and "sq = 16" in screen and "return value: 16" in screen, screen
    assert screen.count("loading") == 1, screen
    t.keys("?")
    t.wait_for(r"break at end: open the debugger")
    t.keys("Escape", "q")
    t.wait_for(r"^EXIT=0$")


def test_an_edit_is_reloaded_the_replay_shows_the_diff_and_u_undoes_it(ui, tmp_path):
    t = ui()
    select(t, "summarize")
    t.keys("s")
    edit(tmp_path / "prog.py", "total = sum(rows)", "total = sum(rows) * 10")
    t.wait_for(r"fever: reloaded __main__\.summarize")
    t.wait_for(r"summarize\(rows=\[1, 2, 3\]\) → 6 .*✎ edited")
    t.keys("r")
    screen = t.wait_for(r"return value: 60")
    assert "recorded: 6" in screen and "-6" in screen and "+60" in screen, screen
    assert screen.count("loading") == 1, screen
    # u undoes the reload: the mark goes, and the replay runs the recorded code again.
    t.keys("u")
    t.wait_for(r"undid the last reload of prog\.py \(__main__\.summarize\)")
    screen = t.screen()
    assert "✎ edited" not in screen, screen
    t.keys("r")
    screen = t.wait_for(r"return value: 6\b")
    assert "recorded: the same" in screen, screen
    # Nothing is left to undo.
    t.keys("u")
    t.wait_for(r"the program refused: there is no reload to undo")


def test_a_raising_replay_opens_pdb_and_c_returns_to_the_ui(ui):
    t = ui()
    select(t, "boom")
    t.keys("s", "b")
    t.wait_for(r"break-at-end \[on\]")
    t.keys("r")
    in_pdb(t, "p y * 3", r"^30$")
    screen = t.wait_for(r"raised: ValueError\('bad 10'\)")
    assert "y = 10" in screen


def test_ctrl_c_stops_a_hanging_replay_and_os_exit_ends_only_the_replay(ui):
    t = ui()
    select(t, "hang")
    t.keys("s", "r")
    t.wait_for(r"replaying __main__\.hang#1")
    t.keys("C-c")
    t.wait_for(r"cancelled; the warm program is untouched")
    select(t, "leave")
    t.keys("s", "r")
    t.wait_for(r"exit code 3 before its end call")
    # The warm program still replays.
    select(t, "inner")
    t.keys("s", "r")
    t.wait_for(r"return value: 9")


def test_quit_restores_the_terminal(ui):
    t = ui()
    assert t.flag("alternate_on") == "1"
    t.keys("q")
    t.wait_for(r"^EXIT=0$")
    assert t.flag("alternate_on") == "0"
    assert t.flag("cursor_flag") == "1"


def test_a_raising_replay_opens_pdb_in_the_raising_frame_without_break_at_end(ui):
    t = ui()
    select(t, "outer")
    t.wait_for(r"break-at-end \[off\]")
    # boom raises inside the start call: the debugger opens where it raised.
    select(t, "boom")
    t.keys("s", "r")
    screen = in_pdb(t, "p y, x", r"^\(10, 5\)$")
    assert "ValueError: bad 10" in screen and "-> raise ValueError" in screen, screen
    screen = t.wait_for(r"raised: ValueError\('bad 10'\)")
    assert "y = 10" in screen
    # The UI is usable again, and a replay that returns opens no debugger.
    select(t, "inner")
    t.keys("s", "r")
    t.wait_for(r"return value: 9")


CRASHING = """
def load():
    print("loading", flush=True)
    return [1, 2, 3]


def compute(rows):
    total = sum(rows)
    return total / (len(rows) - 3)


rows = load()
print("result", compute(rows))
"""


def test_the_first_runs_exception_opens_pdb_post_mortem_and_the_program_stays_warm(ui, tmp_path):
    t = ui(program=CRASHING, ready=None)
    screen = in_pdb(t, "p total, rows", r"^\(6, \[1, 2, 3\]\)$", timeout=30)
    assert "ZeroDivisionError" in screen and "loading" in screen, screen
    t.wait_for(r"finished, exit code 1; warm")
    # The fix is reloaded into the warm program and the failing call replays with it.
    edit(tmp_path / "prog.py", "total / (len(rows) - 3)", "total / len(rows)")
    t.wait_for(r"reloaded __main__\.compute")
    select(t, "compute")
    t.keys("s", "r")
    screen = t.wait_for(r"return value: 2\.0")
    assert screen.count("loading") == 1, screen


SLOW = """
import os
import sys
import time


def work(n):
    doubled = n * 2
    return doubled + 1


def idle():
    time.sleep(0.02)


print("work", work(20), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists("stop") and time.monotonic() < deadline:
    idle()
print("end", flush=True)
"""


def test_a_replay_runs_while_the_first_run_still_goes_on(ui, tmp_path):
    t = ui(program=SLOW, ready=r"work 41")
    t.wait_for(r"work\(n=20\) → 41")
    select(t, "work")
    t.keys("s", "r")
    screen = t.wait_for(r"return value: 41")
    assert "doubled = 40" in screen and "the program is running" in screen, screen
    # The first run was not disturbed: it goes on and ends when told.
    (tmp_path / "stop").touch()
    t.wait_for(r"finished, exit code 0; warm")
    t.keys("r")
    t.wait_for(r"return value: 41")
