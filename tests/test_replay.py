"""`fever replay`: the program runs once, recorded, and stays warm; a segment of it (a start call
to the end of an end call) is re-run in a fork of the warm process with the code as it is now.

The headless tests run the real `fever replay --start ...` on a copy of `examples/slow_boot/`
and on a small program of our own (PROGRAM), edit it while it waits, and check what a user sees.
The control-channel tests start the program side (`fever _replay-serve`) themselves and speak
its protocol (replay_support.Channel): two replays in a row, a replay that calls `os._exit` or
hangs, garbage on the socket.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import PYTHON, REPO, edit, run_fever, write
from replay_support import (CANCEL, DONE, ERROR, FAILED, FINISHED, NOT_REACHED, PING, PONG, RAISED, RELOADED, REPLAY,
                            RETURNED, UNDO, UNDONE, Channel, frame, private_socket_dir, replay_body, serve_args,
                            wait_gone)

PROGRAM = '''
import asyncio
import os
import sys
import time

MODE = {"exit": False, "hang": False}
COUNTER = []


def load():
    print("loading", flush=True)
    return [1, 2, 3]


def summarize(rows):
    total = sum(rows)
    return total


def mutate(items):
    items.append(len(items))
    return list(items)


def bump():
    COUNTER.append(1)
    return len(COUNTER)


def read_head(f):
    return f.readline().strip()


def take(gen, n):
    return [next(gen) for _ in range(n)]


def numbers():
    i = 0
    while True:
        yield i
        i += 1


def boom(x):
    y = x * 2
    raise ValueError(f"bad {y}")


def leave(code):
    if MODE["exit"]:
        os._exit(code)
    return code


def hang():
    while MODE["hang"]:
        time.sleep(0.01)
    return "done"


async def fetch(x):
    await asyncio.sleep(0)
    return x + 1


def outer(n):
    a = inner(n)
    b = inner(n + 1)
    return a + b


def inner(k):
    sq = k * k
    return sq


def main():
    rows = load()
    print("summary", summarize(rows), flush=True)
    print("mutate", mutate([1, 2]))
    print("bump", bump())
    f = open(__file__)
    print("head", read_head(f))
    gen = numbers()
    print("take", take(gen, 3))
    print("take", take(gen, 2))
    print("fetch", asyncio.run(fetch(41)))
    print("outer", outer(3))
    try:
        boom(5)
    except ValueError as e:
        print("caught", e)
    print("leave", leave(3))
    print("hang", hang())
    MODE["exit"] = MODE["hang"] = True
    if len(sys.argv) > 1:
        print("waiting for", sys.argv[1], flush=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
            time.sleep(0.02)
    print("end", flush=True)


main()
'''


@pytest.fixture
def program(tmp_path):
    return write(tmp_path / "prog.py", PROGRAM)


def replay(*args, cwd, timeout=60, stdin=""):
    return run_fever("replay", *args, cwd=cwd, timeout=timeout, stdin=stdin)


def report(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


# --------------------------------------------------------------------------------------------
# Headless: fever replay --start ...
# --------------------------------------------------------------------------------------------


def test_slow_boot_replays_the_fast_step_without_loading_again(tmp_path):
    app = tmp_path / "slow_boot"
    shutil.copytree(REPO / "examples" / "slow_boot", app)
    result = replay("--start", "app.summarize", "app.py", cwd=app)
    assert result.returncode == 0, report(result)
    assert result.stdout.count("loading data.csv") == 1, report(result)
    assert result.stdout.count("summary: 1500 sales") == 1, report(result)
    assert "locals of app.summarize#1:" in result.stdout
    assert re.search(r"^  total = 35631\.75$", result.stdout, re.M), report(result)
    assert "return value: '1500 sales, revenue 35631.75;" in result.stdout
    assert "recorded: the same" in result.stdout
    assert re.search(r"^fever: replayed app\.summarize#1 to the end of app\.summarize#1 in [\d.]+ ms$",
                     result.stderr, re.M), report(result)


def test_an_edit_while_the_program_waits_shows_the_new_value_and_its_diff(fever, program, tmp_path):
    marker = tmp_path / "go"
    p = fever.start("replay", "--start", "prog.summarize", "prog.py", str(marker), cwd=tmp_path)
    p.wait_stdout(r"^waiting for ")
    edit(program, "total = sum(rows)", "total = sum(rows) * 10")
    p.wait_stderr(r"^fever: reloaded __main__\.summarize ")
    marker.touch()
    assert p.wait_exit(60) == 0, p.report()
    out = "\n".join(p.stdout)
    assert out.count("loading") == 1, p.report()
    # The first run printed the recorded value; the replay ran the edited code.
    assert "summary 6" in p.stdout
    assert "  total = 60" in p.stdout
    assert "return value: 60" in p.stdout
    assert "recorded: 6" in p.stdout
    assert "-6" in p.stdout and "+60" in p.stdout, p.report()


def test_the_nth_call_and_an_end_call_inside_it(program, tmp_path):
    result = replay("--start", "prog.take#2", "prog.py", cwd=tmp_path)
    assert "  n = 2" in result.stdout, report(result)
    result = replay("--start", "prog.outer", "--end", "prog.inner#2", "prog.py", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    assert "locals of prog.inner#2:\n  k = 4\n  sq = 16\nreturn value: 16\nrecorded: the same" in result.stdout


def test_a_mutated_argument_is_rebuilt_from_its_snapshot(program, tmp_path):
    result = replay("--start", "prog.mutate", "prog.py", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    assert "  items = [1, 2, 2]" in result.stdout, report(result)
    assert "recorded: the same" in result.stdout
    assert re.search(r"argument items of prog\.mutate#1 may differ from the original: it was changed after "
                     r"the call started; the replay gets a copy rebuilt", result.stderr), report(result)


def test_open_file_and_generator_arguments_are_passed_as_they_are_and_named(program, tmp_path):
    result = replay("--start", "prog.take#2", "prog.py", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    # The generator ran on after take#2 started: the replay resumes it where it is now, and says so.
    assert "return value: [5, 6]" in result.stdout, report(result)
    assert "argument gen of prog.take#2 may differ from the original: a generator that ran on" in result.stderr
    result = replay("--start", "prog.read_head", "prog.py", cwd=tmp_path)
    assert "argument f of prog.read_head#1 may differ from the original: a file whose position moved from 0 to" \
        in result.stderr, report(result)
    # The file object itself was passed: the replay read the next line from where it is now.
    assert "return value: 'import os'" in result.stdout, report(result)


def test_async_def_replays_in_an_event_loop(program, tmp_path):
    result = replay("--start", "prog.fetch", "prog.py", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    assert "  x = 41\nreturn value: 42" in result.stdout, report(result)


def test_a_raising_replay_prints_its_traceback(program, tmp_path):
    result = replay("--start", "prog.boom", "prog.py", cwd=tmp_path)
    assert result.returncode == 1, report(result)
    assert "  y = 10" in result.stdout
    assert "raised: ValueError('bad 10')" in result.stdout
    assert 'raise ValueError(f"bad {y}")' in result.stdout
    assert "recorded: the same" in result.stdout


def test_break_at_end_opens_pdb_in_the_raising_frame(program, tmp_path):
    result = replay("--start", "prog.boom", "--break-at-end", "prog.py", cwd=tmp_path,
                    stdin="p y * 100\nc\n")
    assert result.returncode == 1, report(result)
    assert "(Pdb) 1000" in result.stdout, report(result)


def test_break_at_end_opens_pdb_at_the_end_calls_return(program, tmp_path):
    result = replay("--start", "prog.outer", "--end", "prog.inner#2", "--break-at-end", "prog.py",
                    cwd=tmp_path, stdin="p sq + k\nc\n")
    assert result.returncode == 0, report(result)
    assert "(Pdb) 20" in result.stdout, report(result)
    assert "return value: 16" in result.stdout


def test_os_exit_and_a_hang_in_a_replay_end_only_the_replay(program, tmp_path):
    result = replay("--start", "prog.leave", "prog.py", cwd=tmp_path)
    assert result.returncode == 1, report(result)
    assert "the replay ended with exit code 3 before its end call (os._exit?); the warm program is untouched" \
        in result.stderr, report(result)
    result = replay("--start", "prog.hang", "--timeout", "1", "prog.py", cwd=tmp_path)
    assert result.returncode == 1, report(result)
    assert "fever: warning: the replay ran for 1.0 s (--timeout): stopping it" in result.stderr, report(result)
    assert "cancelled; the warm program is untouched" in result.stderr


def test_an_end_call_that_is_not_reached(program, tmp_path):
    result = replay("--start", "prog.inner", "--end", "prog.boom", "prog.py", cwd=tmp_path)
    assert result.returncode == 1, report(result)
    assert "fever: warning: prog.boom#1 was not reached: prog.inner#1 returned 9" in result.stderr, report(result)


def test_unknown_functions_and_calls_are_errors(program, tmp_path):
    result = replay("--start", "prog.nope", "prog.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "fever: error: prog.nope was never called" in result.stderr
    result = replay("--start", "prog.outer#3", "prog.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "fever: error: prog.outer has no call #3: it was called 1 time" in result.stderr
    result = replay("--start", "summarize", "prog.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "--start" in result.stderr and "module.qualname" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_terminal_and_without_start_it_is_an_error(program, tmp_path):
    result = replay("prog.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "fever: error: fever replay shows a full-screen UI and needs a terminal" in result.stderr
    assert "loading" not in result.stdout


def test_a_missing_script(tmp_path):
    result = replay("--start", "x.f", "missing.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "fever: error: can't open file" in result.stderr


# --------------------------------------------------------------------------------------------
# The control channel, spoken directly
# --------------------------------------------------------------------------------------------


@pytest.fixture
def served(fever, program, tmp_path):
    directory = private_socket_dir()
    sock = directory / "control.sock"
    p = fever.start(*serve_args(sock, directory / "run.trace", "prog.py"), cwd=tmp_path)
    channel = Channel(sock)
    reply = channel.receive(60)
    assert reply.tag == FINISHED, p.report()
    yield p, channel, sock
    channel.close()
    shutil.rmtree(directory, ignore_errors=True)


def test_two_replays_in_a_row_start_from_the_same_state(served):
    p, channel, _ = served
    # bump() appends to a global list: the first run left one item in it.
    replies = [channel.replay("__main__.bump") for _ in range(3)]
    assert all(r.tag == DONE and r.outcome == RETURNED for r in replies), (replies, p.report())
    # Each replay saw the one item the first run left: the same return value (2) every time.
    assert replies[0].value == replies[1].value == replies[2].value
    for _ in range(2):
        reply = channel.replay("__main__.mutate")
        assert reply.tag == DONE and set(reply.locals) == {"items"}
        assert "items" in reply.notes and "rebuilt" in reply.notes["items"]


def test_a_crashing_or_hanging_replay_leaves_the_warm_program_serving(served):
    p, channel, _ = served
    reply = channel.replay("__main__.leave")
    assert reply.tag == FAILED and "exit code 3" in reply.message, reply
    channel.send(REPLAY, replay_body("__main__.hang", "__main__.hang"))
    channel.send(PING)
    assert channel.receive().tag == PONG
    channel.send(CANCEL)
    reply = channel.receive()
    assert reply.tag == FAILED and reply.message.startswith("cancelled"), reply
    reply = channel.replay("__main__.outer", "__main__.inner", number_end=2)
    assert reply.tag == DONE and reply.outcome == RETURNED
    assert set(reply.locals) == {"k", "sq"}
    reply = channel.replay("__main__.boom")
    assert reply.tag == DONE and reply.outcome == RAISED and "bad 10" in reply.message
    reply = channel.replay("__main__.inner", "__main__.boom")
    assert reply.tag == DONE and reply.outcome == NOT_REACHED and "returned 9" in reply.message
    reply = channel.replay("__main__.nope")
    assert reply.tag == FAILED and "were not kept" in reply.message
    p.assert_running()


STALLING = """
import os
import time


def stall_in_child():
    # A fork hook of the program's own that hangs in the child while the file `stall` exists
    # (removed by the first child when it is `stall-once`).
    if os.path.exists("stall-once"):
        os.remove("stall-once")
        time.sleep(120)
    if os.path.exists("stall"):
        time.sleep(120)


os.register_at_fork(after_in_child=stall_in_child)


def bump():
    return 41 + 1


print("bump", bump(), flush=True)
"""


@pytest.mark.parametrize("stall", ["stall-once", "stall"])
def test_a_replay_child_stuck_before_the_call_is_replaced_or_reported(fever, tmp_path, stall):
    write(tmp_path / "prog.py", STALLING)
    (tmp_path / stall).touch()
    directory = private_socket_dir()
    sock = directory / "control.sock"
    p = fever.start(*serve_args(sock, directory / "run.trace", "prog.py"), cwd=tmp_path)
    channel = Channel(sock)
    try:
        assert channel.receive(60).tag == FINISHED, p.report()
        reply = channel.replay("__main__.bump", timeout=60)
        if stall == "stall-once":
            # The standby forked ahead hangs in the hook: a fresh fork runs the replay.
            assert reply.tag == DONE and reply.outcome == RETURNED, (reply, p.report())
        else:
            assert reply.tag == FAILED, (reply, p.report())
            assert "did not get ready within 5 s; the warm program is untouched" in reply.message, reply
            (tmp_path / "stall").unlink()
            # The warm program serves on: the next replay's fresh fork no longer hangs.
            reply = channel.replay("__main__.bump", timeout=60)
            assert reply.tag == DONE and reply.outcome == RETURNED, (reply, p.report())
        p.assert_running()
    finally:
        channel.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_garbage_on_the_control_channel_is_answered_with_errors(served):
    p, channel, sock = served
    channel.send_raw(frame(200, b"\x01\x02"))
    assert channel.receive().tag == ERROR
    channel.send_raw(frame(PING, b"", version=9))
    reply = channel.receive()
    assert reply.tag == ERROR and "version 9" in reply.message
    channel.send_raw(frame(2, b"\xff\xff\xff\xff"))
    assert channel.receive().tag == ERROR
    channel.send_raw(struct.pack("<I", 1) + b"\x01")
    assert channel.receive().tag == ERROR
    channel.send(PING)
    assert channel.receive().tag == PONG
    p.assert_running()
    # A frame over the size limit breaks the stream: answered, then the connection ends (and
    # with its front end gone, the program side quits).
    channel.send_raw(struct.pack("<I", 1 << 30))
    reply = channel.receive()
    assert reply.tag == ERROR and "over the limit" in reply.message
    assert p.wait_exit(15) == 0, p.report()
    assert wait_gone(sock)
    assert not any("panicked" in line or "Traceback" in line for line in p.stderr), p.report()


def test_undo_over_the_control_channel(served, program):
    p, channel, _ = served
    channel.send(UNDO)
    reply = channel.receive()
    assert reply.tag == ERROR and reply.message == "there is no reload to undo", reply
    before = channel.replay("__main__.summarize")
    edit(program, "total = sum(rows)", "total = sum(rows) * 10")
    reloaded = channel.receive()
    assert reloaded.tag == RELOADED and list(reloaded.functions) == ["__main__.summarize"], reloaded
    edited = channel.replay("__main__.summarize")
    assert edited.tag == DONE and edited.value != before.value
    channel.send(UNDO)
    undone = channel.receive()
    assert undone.tag == UNDONE and undone.message == "prog.py", undone
    # The code it runs again hashes differently from the edited one.
    assert list(undone.functions) == ["__main__.summarize"]
    assert undone.functions["__main__.summarize"] not in (None, reloaded.functions["__main__.summarize"])
    again = channel.replay("__main__.summarize")
    assert again.tag == DONE and again.value == before.value
    # The file on disk keeps the edit; saving it again reloads it as usual.
    assert "sum(rows) * 10" in program.read_text()
    program.write_text(program.read_text())
    assert channel.receive().tag == RELOADED
    assert channel.replay("__main__.summarize").value == edited.value
    assert any("fever: undid the last reload of prog.py: __main__.summarize" in line for line in p.stderr), \
        p.report()


SLOW_IMPORT = """
import time

print("importing", flush=True)
time.sleep(3)


def slow(x):
    return f"scaled {x * 2}"
"""


def test_a_save_applied_once_its_import_ended_is_heard_like_any(fever, tmp_path):
    """Saved while it is still imported, the module gets the save once the import ended: the
    front end hears of the changed function as after any save, and a replay runs the new code."""
    write(tmp_path / "work.py", SLOW_IMPORT)
    write(tmp_path / "app.py", "import work\n\nprint('value', work.slow(5), flush=True)\n")
    directory = private_socket_dir()
    sock = directory / "control.sock"
    p = fever.start(*serve_args(sock, directory / "run.trace", "app.py"), cwd=tmp_path)
    try:
        channel = Channel(sock)
        p.wait_stdout(r"^importing$", timeout=30)
        edit(tmp_path / "work.py", "x * 2", "x * 3")
        p.wait_stderr(r"^fever: work\.py is still being imported; ")
        heard = [channel.receive(30) for _ in range(2)]
        reloaded = [r for r in heard if r.tag == RELOADED]
        assert [r.tag for r in heard if r.tag != RELOADED] == [FINISHED], (heard, p.report())
        assert [list(r.functions) for r in reloaded] == [["work.slow"]], (heard, p.report())
        replayed = channel.replay("work.slow")
        assert replayed.tag == DONE and b"scaled 15" in replayed.value, (replayed, p.report())
        channel.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_control_socket_is_private(served):
    _, _, sock = served
    assert oct(os.stat(sock).st_mode & 0o777) == oct(0o600)


# --------------------------------------------------------------------------------------------
# More argument kinds, -m, other debuggers
# --------------------------------------------------------------------------------------------

RESOURCES = '''
import socket
import threading


def talk(sock, lock):
    with lock:
        sock.sendall(b"ping")
        reply = sock.recv(5)
        held = lock.locked()
    return reply.decode(), held


def main():
    a, b = socket.socketpair()
    lock = threading.Lock()
    b.sendall(b"pong1pong2")
    print("talk", talk(a, lock), flush=True)
    return a, b


KEEP = main()
'''


def test_socket_and_lock_arguments_are_the_live_objects(tmp_path):
    write(tmp_path / "res.py", RESOURCES)
    result = replay("--start", "res.talk", "res.py", cwd=tmp_path, timeout=30)
    assert result.returncode == 0, report(result)
    assert "talk ('pong1', True)" in result.stdout, report(result)
    # The replay got the very socket, so it read on where the first run stopped, and the same
    # lock, free again, taken inside the replay.
    assert re.search(r"^return value: \('pong2', True\)$", result.stdout, re.M), report(result)
    assert "-    'pong1',\n+    'pong2'," in result.stdout, report(result)


NUMPY_PROGRAM = '''
import numpy as np


def scale(a, k):
    out = a * k
    return float(out.sum())


def main():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    print("scale", scale(a, 2), flush=True)
    a[0, 0] = 100.0


main()
'''


def test_a_numpy_array_argument(tmp_path):
    if subprocess.run([str(PYTHON), "-c", "import numpy"], capture_output=True).returncode:
        pytest.skip("numpy is not installed in the venv under test")
    write(tmp_path / "arr.py", NUMPY_PROGRAM)
    result = replay("--start", "arr.scale", "arr.py", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    # The array was changed after the call: the replay says so and rebuilds it from its snapshot.
    assert "return value: 30.0" in result.stdout, report(result)
    assert "recorded: the same" in result.stdout, report(result)
    assert "argument a of arr.scale#1 may differ" in result.stderr, report(result)


def test_dash_m_module_names_answer_to_the_module(tmp_path):
    package = tmp_path / "tool"
    write(package / "__init__.py", "")
    write(package / "helpers.py", "def scale(x):\n    y = x * 3\n    return y\n")
    write(package / "cli.py", "from tool.helpers import scale\n\n\ndef main():\n    return scale(7) + 1\n\n\n"
                              "print('main', main())\n")
    result = replay("--start", "tool.cli.main", "-m", "tool.cli", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    assert "return value: 22" in result.stdout and "recorded: the same" in result.stdout, report(result)
    result = replay("--start", "tool.helpers.scale", "-m", "tool.cli", cwd=tmp_path)
    assert result.returncode == 0, report(result)
    assert "  y = 21\nreturn value: 21" in result.stdout, report(result)


@pytest.mark.parametrize("debugger, module", [("pdbpp", "pdbpp"), ("ipdb", "ipdb"), ("pudb", "pudb")])
def test_other_debuggers_when_installed(program, tmp_path, debugger, module):
    if subprocess.run([str(PYTHON), "-c", f"import {module}"], capture_output=True).returncode:
        pytest.skip(f"{module} is not installed (or does not import) in the venv under test")
    if debugger == "pudb":
        pytest.skip("pudb draws a full-screen UI: driven in tmux only")
    result = replay("--start", "prog.boom", "--break-at-end", "--debugger", debugger, "prog.py", cwd=tmp_path,
                    stdin="p y * 100\nc\n")
    assert result.returncode == 1, report(result)
    assert "1000" in result.stdout, report(result)


def test_an_unknown_debugger_is_an_error(program, tmp_path):
    result = replay("--start", "prog.boom", "--debugger", "gdb", "prog.py", cwd=tmp_path)
    assert result.returncode == 2, report(result)
    assert "--debugger" in result.stderr and "loading" not in result.stdout
